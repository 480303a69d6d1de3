"""Element-wise and pooling QFX layers: ReLU, residual add, batch norm as a fixed-point affine, pools, flatten.

Each computes its exact result in float64 (inputs are fixed-point values of at most 53 bits whose sums and
products here stay within float64's significand) and casts it into its output format, as the hardware's assignment
does. Results come back in the input's dtype when the output format fits it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from qfx.format import FixedFormat
from qfx.functional import cast
from qfx.khot import project_khot
from qfx.nn.quantizer import FixedQuantizer

__all__ = [
    "QAbs",
    "QAdd",
    "QAvgPool2d",
    "QBatchNorm1d",
    "QBatchNorm2d",
    "QExtremum",
    "QFlatten",
    "QGlobalAvgPool2d",
    "QInput",
    "QMaxPool2d",
    "QMul",
    "QReLU",
]

DEFAULT_ACTIVATION = "ap_ufixed<8,3,AP_RND,AP_SAT>"
DEFAULT_SUM = "ap_fixed<9,4,AP_RND,AP_SAT>"
DEFAULT_RECIPROCAL = "ap_ufixed<18,0,AP_RND,AP_SAT>"


class QInput(FixedQuantizer):
    """Quantizes the network's input: the format source of the first layer."""


def _out(q: FixedQuantizer, exact: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Cast the exact float64 result into ``q``'s format and return it in ``like``'s dtype when that holds it."""
    return q(exact).to(q.result_dtype(like.dtype))


class QReLU(nn.Module):
    """``relu(x)`` (optionally clipped at ``max_value``) cast into the output format."""

    def __init__(
        self, output: FixedFormat | str = DEFAULT_ACTIVATION, *, max_value: float | None = None, learn: bool = True
    ) -> None:
        super().__init__()
        if max_value is not None and not max_value > 0:
            raise ValueError(f"max_value must be > 0, not {max_value}")
        self.max_value = max_value
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(x)  # exact in any dtype: no arithmetic
        if self.max_value is not None:
            y = torch.clamp(y, max=self.max_value)
        return _out(self.output_quantizer, y, x)


class QAdd(nn.Module):
    """Residual sum ``a + b``, or the difference ``a - b`` (``subtract``), cast into the output format (the sum or
    difference itself is exact)."""

    def __init__(self, output: FixedFormat | str = DEFAULT_SUM, *, learn: bool = True, subtract: bool = False) -> None:
        super().__init__()
        self.subtract = bool(subtract)
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        b = b.to(torch.float64)
        exact = a.to(torch.float64) + (-b if getattr(self, "subtract", False) else b)  # older models: no attribute
        return _out(self.output_quantizer, exact, a)


class QExtremum(nn.Module):
    """``torch.maximum(a, b)`` or ``torch.minimum(a, b)`` (``kind``: "max" or "min") of two tensors of one shape,
    cast into the output format. The hardware computes ``b + relu(a - b)`` / ``a - relu(a - b)``, every step exact."""

    def __init__(self, kind: str, output: FixedFormat | str = DEFAULT_SUM, *, learn: bool = True) -> None:
        super().__init__()
        if kind not in ("max", "min"):
            raise ValueError(f"kind must be 'max' or 'min', not {kind!r}")
        self.kind = kind
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(f"torch.{self.kind}imum of shapes {tuple(a.shape)} and {tuple(b.shape)}: one shape needed")
        pick = torch.maximum if self.kind == "max" else torch.minimum
        return _out(self.output_quantizer, pick(a.to(torch.float64), b.to(torch.float64)), a)


class QMul(nn.Module):
    """The element-wise product ``a * b`` of two tensors of one shape (a gate, ``x * torch.sigmoid(x)``), or of a
    feature map and one value per channel (N, C, 1, ...) (squeeze-and-excitation), exact in float64, cast into the
    output format. The inputs' widths must leave the product within float64's 53 bits
    (checked when the layer is built from its producers' formats, and again at export)."""

    def __init__(self, output: FixedFormat | str = DEFAULT_SUM, *, learn: bool = True) -> None:
        super().__init__()
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _out(self.output_quantizer, a.to(torch.float64) * b.to(torch.float64), a)


class QAbs(nn.Module):
    """``|x|`` cast into the (unsigned) output format; the hardware computes ``relu(x) - (x - relu(x))``."""

    def __init__(self, output: FixedFormat | str = DEFAULT_ACTIVATION, *, learn: bool = True) -> None:
        super().__init__()
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _out(self.output_quantizer, x.to(torch.float64).abs(), x)


class QFlatten(nn.Flatten):
    """``nn.Flatten``: moves values, changes none (the format is the input's)."""


class QMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d``: the maximum of fixed-point values is one of them, so the format is the input's."""


def _shift_or_reciprocal(area: int, reciprocal: FixedFormat) -> float:
    """The exact factor that divides a window sum by ``area``: 2**-k for a power of two, else 1/area rounded
    into the ``reciprocal`` format (a constant the hardware multiplies by)."""
    if area & (area - 1) == 0:
        return 2.0 ** -int(math.log2(area))
    return float(cast(torch.tensor([1.0 / area], dtype=torch.float64), reciprocal).item())


class QAvgPool2d(nn.Module):
    """Average pooling in fixed point: window sum (exact), then a shift (power-of-two area) or a multiplication by
    the reciprocal of the area rounded into ``reciprocal``, cast into the output format."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        *,
        output: FixedFormat | str = DEFAULT_ACTIVATION,
        reciprocal: FixedFormat | str = DEFAULT_RECIPROCAL,
        learn: bool = True,
        squeeze: int | None = None,
    ) -> None:
        super().__init__()
        self.squeeze = squeeze  # x.mean(dim) over one spatial dim: the pooled dim is removed after the pool
        self.kernel_size = nn.modules.utils._pair(kernel_size)
        self.stride = nn.modules.utils._pair(stride if stride is not None else kernel_size)
        self.padding = nn.modules.utils._pair(padding)
        self.reciprocal = FixedFormat.parse(reciprocal) if isinstance(reciprocal, str) else reciprocal
        self.factor = _shift_or_reciprocal(self.kernel_size[0] * self.kernel_size[1], self.reciprocal)
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sums = F.avg_pool2d(x.to(torch.float64), self.kernel_size, self.stride, self.padding, divisor_override=1)
        y = _out(self.output_quantizer, sums * self.factor, x)
        squeeze = getattr(self, "squeeze", None)  # absent in models saved before it existed
        return y if squeeze is None else y.squeeze(squeeze)


class QGlobalAvgPool2d(nn.Module):
    """Mean over height and width (shape N, C), with the division done as in :class:`QAvgPool2d`."""

    def __init__(
        self,
        *,
        output: FixedFormat | str = DEFAULT_ACTIVATION,
        reciprocal: FixedFormat | str = DEFAULT_RECIPROCAL,
        learn: bool = True,
    ) -> None:
        super().__init__()
        self.reciprocal = FixedFormat.parse(reciprocal) if isinstance(reciprocal, str) else reciprocal
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = _shift_or_reciprocal(x.shape[-1] * x.shape[-2], self.reciprocal)
        return _out(self.output_quantizer, x.to(torch.float64).sum(dim=(-2, -1)) * factor, x)


class QBatchNorm2d(nn.BatchNorm2d):
    """Batch norm as the hardware runs it: ``y = x * scale + shift`` per channel, with ``scale`` and ``shift``
    fixed-point (learned binary points), cast into the output format.

    ``scale = gamma / sqrt(var + eps)`` and ``shift = beta - mean * scale`` come from the batch statistics in
    training and the running ones in evaluation, exactly as ``nn.BatchNorm2d`` would use them; only their
    quantized values reach the output, so training sees the arithmetic the hardware does.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        *,
        scale: FixedFormat | str = "ap_fixed<10,4,AP_RND_CONV,AP_SAT>",
        shift: FixedFormat | str = "ap_fixed<12,5,AP_RND_CONV,AP_SAT>",
        output: FixedFormat | str = DEFAULT_SUM,
        learn: bool = True,
        khot: int | None = None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine=True, track_running_stats=True)
        self.khot = khot
        self.scale_quantizer = FixedQuantizer(scale, learn_binary_point=learn, channels=num_features)
        self.shift_quantizer = FixedQuantizer(shift, learn_binary_point=learn, channels=num_features)
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def folded_affine(self, x: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-channel (scale, shift) before quantization; batch statistics of ``x`` in training mode."""
        if self.training and x is not None:
            dims = (0, *range(2, x.dim()))
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            with torch.no_grad():
                n = x.numel() / x.shape[1]
                self.num_batches_tracked += 1
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                unbiased = var.detach() * (n / max(n - 1, 1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight / torch.sqrt(var + self.eps)
        return scale, self.bias - mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.folded_affine(x)
        scale_q = self.scale_quantizer(scale)
        if self.khot is not None:  # multiplier-free scale: shifts and adds
            scale_q = project_khot(scale_q, self.scale_quantizer.format, self.khot)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        scale_q = scale_q.to(torch.float64).reshape(shape)
        shift_q = self.shift_quantizer(shift).to(torch.float64).reshape(shape)
        return _out(self.output_quantizer, x.to(torch.float64) * scale_q + shift_q, x)


class QBatchNorm1d(QBatchNorm2d):
    """:class:`QBatchNorm2d` for ``nn.BatchNorm1d`` inputs: (N, C) features or (N, C, L) sequences."""
