"""Activation layers beyond ReLU: clip (Hardtanh), leaky ReLU, tables (sigmoid, tanh), softmax, argmax, and a
multiplication by a constant.

Each computes exactly what the IR interpreter computes for its node (:mod:`qfx.ir.interpret`): the exact result,
then the cast into the output format. The table-based functions read the tables of :mod:`qfx.tables` built for the
*current* input format (the producer's quantizer, which QAT may move) and the output format; the tables are cached
per format pair. Their gradient is the float function's (straight-through estimator).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from qfx.format import FixedFormat, Overflow, Quant
from qfx.functional import cast
from qfx.nn.elementwise import DEFAULT_ACTIVATION, DEFAULT_SUM, _out
from qfx.nn.layers import FormatSource, _Source, input_format
from qfx.nn.quantizer import FixedQuantizer
from qfx.tables import FUNCTIONS, SoftmaxSpec, check_table_input, function_table, softmax_codes

__all__ = ["QArgMax", "QClip", "QLeakyReLU", "QPReLU", "QScale", "QSoftmax", "QTable", "argmax_format", "table_codes"]

#: The float function whose gradient each table passes back in training (straight-through).
_TORCH_FUNCTIONS = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish,
    "silu": F.silu, "elu": F.elu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "softplus": F.softplus, "mish": F.mish,
}  # fmt: skip


def _parse(fmt: FixedFormat | str) -> FixedFormat:
    return FixedFormat.parse(fmt) if isinstance(fmt, str) else fmt


def table_codes(x: torch.Tensor, fmt: FixedFormat, what: str) -> torch.Tensor:
    """Integer codes (int64) of ``x``, whose values must all be codes of ``fmt`` (the producer's output format)."""
    scaled = x.detach().to(torch.float64) * 2.0**fmt.frac_bits
    codes = torch.round(scaled)
    if not torch.equal(codes, scaled) or (
        codes.numel() and (codes.min().item() < fmt.min_code or codes.max().item() > fmt.max_code)
    ):
        raise ValueError(f"{what}: its input holds values that are not codes of {fmt} (the format it was given)")
    return codes.to(torch.int64)


class _Input:
    """The input format source of a layer that reads its input's codes (a table, the softmax)."""

    _input: _Source

    @property
    def input_source(self) -> FormatSource:
        """Where the input format comes from: a fixed format or the producer's output quantizer."""
        return self._input.source

    @input_source.setter
    def input_source(self, source: FormatSource) -> None:
        self._input = _Source(source)


class QClip(nn.Module):
    """``clamp(x, min_value, max_value)`` (Hardtanh) cast into the output format; the bounds are compared exactly."""

    def __init__(
        self, min_value: float, max_value: float, output: FixedFormat | str = DEFAULT_SUM, *, learn: bool = True
    ) -> None:
        super().__init__()
        if not min_value < max_value:
            raise ValueError(f"min_value ({min_value}) must be below max_value ({max_value})")
        self.min_value, self.max_value = float(min_value), float(max_value)
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _out(self.output_quantizer, torch.clamp(x.to(torch.float64), self.min_value, self.max_value), x)


class QLeakyReLU(nn.Module):
    """``x if x >= 0 else alpha * x`` with ``alpha`` the slope rounded into ``slope_format`` (an exact fixed-point
    constant, e.g. 0.01 in 8 bits is ap_ufixed<8,-6>: 164 * 2**-14 = 0.010009765625), cast into the output format.
    The product is exact (float64); the hardware multiplies by the same constant."""

    def __init__(
        self,
        slope: float,
        slope_format: FixedFormat | str,
        output: FixedFormat | str = DEFAULT_SUM,
        *,
        learn: bool = True,
    ) -> None:
        super().__init__()
        self.slope_format = _parse(slope_format)
        alpha = float(cast(torch.tensor([float(slope)], dtype=torch.float64), self.slope_format).item())
        if not 0 < alpha < 1:
            raise ValueError(
                f"LeakyReLU slope {slope} becomes {alpha} in {self.slope_format}; it must lie strictly between 0 and 1"
            )
        self.alpha = alpha
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    @property
    def alpha_code(self) -> int:
        """The slope's integer code in :attr:`slope_format`."""
        return round(self.alpha * 2.0**self.slope_format.frac_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x64 = x.to(torch.float64)
        return _out(self.output_quantizer, torch.where(x64 >= 0, x64, x64 * self.alpha), x)


class QPReLU(nn.Module):
    """PReLU: ``x if x >= 0 else a[c] * x``, one trainable slope per channel (axis 1) or one for all, rounded into
    ``slope_format`` in the forward pass (straight-through gradient); the exact product (float64) is cast into the
    output format. The hardware computes ``relu(x) + a[c] * (x - relu(x))`` with the same constants."""

    def __init__(
        self,
        weight: torch.Tensor,
        slope_format: FixedFormat | str,
        output: FixedFormat | str = DEFAULT_SUM,
        *,
        learn: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(weight, dtype=torch.float32).detach().clone().reshape(-1))
        self.slope_quantizer = FixedQuantizer(slope_format, learn_binary_point=False)
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def slopes(self) -> torch.Tensor:
        """The slopes as the hardware holds them (float64, one per channel or one)."""
        return self.slope_quantizer(self.weight).to(torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.slopes().to(x.device)
        if a.numel() > 1:
            if x.dim() < 2 or x.shape[1] != a.numel():
                raise ValueError(f"PReLU has {a.numel()} slopes, its input {tuple(x.shape)} as many channels on axis 1")
            a = a.reshape(1, -1, *([1] * (x.dim() - 2)))
        x64 = x.to(torch.float64)
        return _out(self.output_quantizer, torch.where(x64 >= 0, x64, x64 * a), x)


class QScale(nn.Module):
    """``x * c + d`` for constants ``c`` and ``d`` (numbers, or per-channel values broadcasting over x) rounded into
    ``scale_format`` and ``offset_format``; the exact result is cast into the output format. ``x * c``, ``x / c``,
    ``x + d``, ``x - d``, ``d - x`` and ``-x`` are all this layer."""

    def __init__(
        self,
        value: float | torch.Tensor,
        scale_format: FixedFormat | str,
        output: FixedFormat | str = DEFAULT_SUM,
        *,
        learn: bool = True,
        offset: float | torch.Tensor | None = None,
        offset_format: FixedFormat | str | None = None,
    ) -> None:
        super().__init__()
        self.scale_format = _parse(scale_format)
        value = torch.as_tensor(value, dtype=torch.float64).detach().clone()
        self.register_buffer("scale", cast(value, self.scale_format))
        if (offset is None) != (offset_format is None):
            raise ValueError("an offset needs its format (offset_format), and a format its offset")
        self.offset_format = _parse(offset_format) if offset_format is not None else None
        if offset is None:
            self.offset = None
        else:
            offset = torch.as_tensor(offset, dtype=torch.float64).detach().clone()
            self.register_buffer("offset", cast(offset, self.offset_format))
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.to(torch.float64) * self.scale.to(x.device)
        offset = getattr(self, "offset", None)  # absent in models saved before offsets existed
        return _out(self.output_quantizer, y if offset is None else y + offset.to(x.device), x)


def _straight_through(y: torch.Tensor, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """``y`` in the forward pass, the gradient of ``f`` (a float function of ``x``) in the backward one."""
    if not torch.is_grad_enabled() or not x.requires_grad:
        return y
    return y.detach() + (f - f.detach()).to(y.dtype)


class QTable(_Input, nn.Module):
    """A tabulated function (``"sigmoid"``, ``"tanh"``, ... :data:`qfx.tables.FUNCTIONS`) of the input code:
    ``y = table[code(x) - min_code]``.

    The table is :func:`qfx.tables.function_table` for the current input format and the output format, so the
    output needs no further cast. The output format's binary point is fixed (set at calibration: to the function's
    bound, or to its range over the input format); the input's may be learned by its producer, and the table
    follows it.
    """

    def __init__(self, function: str, input: FormatSource, output: FixedFormat | str = DEFAULT_ACTIVATION) -> None:
        super().__init__()
        if function not in FUNCTIONS:
            raise ValueError(f"no table for function {function!r}; tabulated: {', '.join(FUNCTIONS)}")
        self.function = function
        self.input_source = input
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=False)
        self._tables: dict[tuple[str, str], torch.Tensor] = {}

    def table(self) -> tuple[np.ndarray, FixedFormat, FixedFormat]:
        """(output codes per input code, input format, output format) for the current formats."""
        in_fmt, out_fmt = input_format(self.input_source), self.output_quantizer.format
        return function_table(self.function, in_fmt, out_fmt), in_fmt, out_fmt

    def _table(self, in_fmt: FixedFormat, out_fmt: FixedFormat, device: torch.device) -> torch.Tensor:
        key = (str(in_fmt), str(out_fmt))
        if key not in self._tables:
            self._tables[key] = torch.from_numpy(function_table(self.function, in_fmt, out_fmt))
        return self._tables[key].to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_fmt, out_fmt = input_format(self.input_source), self.output_quantizer.format
        check_table_input(in_fmt, self.function)
        index = table_codes(x, in_fmt, self.function) - in_fmt.min_code
        y = self._table(in_fmt, out_fmt, x.device)[index].to(torch.float64) * 2.0**-out_fmt.frac_bits
        y = y.to(self.output_quantizer.result_dtype(x.dtype))
        return _straight_through(y, x, _TORCH_FUNCTIONS[self.function](x))

    def extra_repr(self) -> str:
        return f"{self.function}, output {self.output_quantizer.format}"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tables"] = {}  # a cache: rebuilt on demand
        return state


class QSoftmax(_Input, nn.Module):
    """Fixed-point softmax over the last axis: :func:`qfx.tables.softmax_codes` with the
    :class:`~qfx.tables.SoftmaxSpec` of the current input format (exact result in ``spec.acc``), cast into the
    output format. The gradient is the float softmax's."""

    def __init__(
        self,
        input: FormatSource,
        output: FixedFormat | str = "ap_ufixed<8,1,AP_RND,AP_SAT>",
        *,
        learn: bool = True,
        exp_width: int = 12,
        index_width: int = 10,
        recip_width: int = 12,
    ) -> None:
        super().__init__()
        self.input_source = input
        self.widths = {"exp_width": exp_width, "index_width": index_width, "recip_width": recip_width}
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)
        self._specs: dict[tuple[str, int], SoftmaxSpec] = {}

    def spec(self, length: int) -> SoftmaxSpec:
        """The softmax spec for ``length`` values of the current input format (cached)."""
        in_fmt = input_format(self.input_source)
        key = (str(in_fmt), length)
        if key not in self._specs:
            self._specs[key] = SoftmaxSpec.build(in_fmt, length, **self.widths)
        return self._specs[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spec(x.shape[-1])
        codes = table_codes(x, spec.in_fmt, "softmax").cpu().numpy()
        acc = softmax_codes(codes, spec)
        exact = torch.from_numpy(np.ldexp(acc.astype(np.float64), -spec.acc.frac_bits)).to(x.device)
        y = _out(self.output_quantizer, exact, x)
        return _straight_through(y, x, torch.softmax(x, dim=-1))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_specs"] = {}
        return state


def argmax_format(length: int) -> FixedFormat:
    """ap_ufixed<B, B> with 2**B >= ``length``: the index of one of ``length`` values."""
    bits = max(1, math.ceil(math.log2(length))) if length > 1 else 1
    return FixedFormat(bits, bits, False, Quant.TRN, Overflow.SAT)


class QArgMax(nn.Module):
    """Index of the largest value over the last axis (first one on ties), as a value of :func:`argmax_format`:
    a classifier's output when the hardware needs the class, not the probabilities. Not differentiable."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length
        self.output_quantizer = FixedQuantizer(argmax_format(length), learn_binary_point=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.length:
            raise ValueError(f"argmax over {self.length} values, but the last axis has {x.shape[-1]}")
        return torch.argmax(x, dim=-1).to(x.dtype if x.is_floating_point() else torch.float32)
