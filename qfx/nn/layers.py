"""QFX layers: every tensor they produce is an exact fixed-point value in a declared format.

A compute layer quantizes its weight and bias, multiplies-and-accumulates exactly (the accumulator format follows
the ap_fixed result-type rules, see :mod:`qfx.nn.exact`), and casts the accumulator into its output format with
:func:`qfx.cast` semantics, as the hardware's assignment does. The input format is declared (a format, or the
quantizer of the layer that produces the input); only its width bound decides the compute dtype, so the choice is
static and ``torch.compile`` friendly.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from qfx.format import FixedFormat
from qfx.khot import project_khot, project_khot_learned
from qfx.nn.exact import accumulator_format, exact_arithmetic
from qfx.nn.mac import MacPlan, exact_mac, plan_mac
from qfx.nn.quantizer import FixedQuantizer

__all__ = ["FormatSource", "QConv1d", "QConv2d", "QLinear", "fold_batchnorm", "input_format"]

FormatSource = FixedFormat | FixedQuantizer | str

DEFAULT_WEIGHT = "ap_fixed<8,1,AP_RND_CONV,AP_SAT>"
DEFAULT_BIAS = "ap_fixed<12,4,AP_RND_CONV,AP_SAT>"
DEFAULT_OUTPUT = "ap_fixed<8,4,AP_RND,AP_SAT>"


def input_format(source: FormatSource) -> FixedFormat:
    """The current format of an input source."""
    if isinstance(source, FixedQuantizer):
        return source.format
    return FixedFormat.parse(source) if isinstance(source, str) else source


def _width_bound(source: FormatSource) -> int:
    return source.max_width if isinstance(source, FixedQuantizer) else input_format(source).width


class _Source:
    """Holds an input source without registering a producer's quantizer as a second parent module."""

    def __init__(self, source: FormatSource) -> None:
        if not isinstance(source, FixedQuantizer):
            source = input_format(source)
        self.source = source


def _quantizer(fmt: FixedFormat | str, learn: bool, channels: int | None = None) -> FixedQuantizer:
    return FixedQuantizer(fmt, learn_binary_point=learn, channels=channels, channel_axis=0)


class _QMac(nn.Module):
    """Shared parts of QLinear and QConv2d: quantizers, exact accumulation, output cast."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    def _setup_quantizers(
        self,
        input: FormatSource,
        weight: FixedFormat | str,
        bias: FixedFormat | str,
        output: FixedFormat | str,
        learn_binary_point: bool,
        per_channel: bool,
        out_channels: int,
        khot: int | None,
    ) -> None:
        if khot is not None and not 1 <= khot <= 8:
            raise ValueError(f"khot must be between 1 and 8 nonzero digits, not {khot}")
        self.khot = khot
        self.last_macs: int | None = None  # multiply-accumulates per sample in the last forward (resource_cost)
        self._input = _Source(input)
        self.weight_quantizer = _quantizer(weight, learn_binary_point, out_channels if per_channel else None)
        self.bias_quantizer = _quantizer(bias, learn_binary_point) if self.bias is not None else None
        self.output_quantizer = _quantizer(output, learn_binary_point)

    @property
    def input_source(self) -> FormatSource:
        """Where the input format comes from: a fixed format or the producer's output quantizer."""
        return self._input.source

    @input_source.setter
    def input_source(self, source: FormatSource) -> None:
        self._input = _Source(source)

    def terms(self) -> int:
        """Products summed into one output (the fan-in)."""
        raise NotImplementedError

    def accumulator_format(self) -> FixedFormat:
        """The exact accumulator format for the current input, weight and bias formats."""
        bias = self.bias_quantizer.format if self.bias_quantizer is not None else None
        return accumulator_format(input_format(self.input_source), self.weight_quantizer.format, self.terms(), bias)

    def mac_plan(self) -> MacPlan:
        """How the multiply-accumulate runs exactly (float32, float32 in weight limbs, or float64): see
        :mod:`qfx.nn.mac`. Chosen from the width bounds and signedness of the input and weight formats and the
        fan-in, once per layer (again only if one of those changes), never from data."""
        src, wq = self.input_source, self.weight_quantizer
        x_signed = src.mode.signed if isinstance(src, FixedQuantizer) else input_format(src).signed
        key = (_width_bound(src), x_signed, wq.max_width, wq.mode.signed, self.terms())
        cached = self.__dict__.get("_mac_plan_cache")
        if cached is None or cached[0] != key:
            cached = (key, plan_mac(*key))
            self.__dict__["_mac_plan_cache"] = cached
        return cached[1]

    def _limbs(self) -> int:
        """Weight limbs of the plan (0: float64)."""
        return self.mac_plan().limbs

    def quantized_weight(self) -> torch.Tensor:
        """The weight as the hardware holds it: in the weight format, K-hot projected when ``khot`` is set."""
        q = self.weight_quantizer
        w = q(self.weight)
        if self.khot is not None:  # at most khot signed powers of two per weight: shift-and-add hardware
            if q.frac_bits.dim() == 0 and not q.learn_width:  # the width is static: the binary point stays on device
                frac = q.frac_bits.clamp(*q.frac_bits_range)
                w = project_khot_learned(w, frac, q.static_format(), self.khot, q.result_dtype(self.weight.dtype))
            else:
                w = project_khot(w, q.format, self.khot)
        return w

    def _mac(self, x: torch.Tensor, op) -> torch.Tensor:
        w, wq = self.quantized_weight(), self.weight_quantizer
        acc = exact_mac(self, op, x, w, wq.frac_bits.detach().clamp(*wq.frac_bits_range), self.mac_plan())
        if self.bias_quantizer is not None:
            with exact_arithmetic(x.device.type):
                b = self.bias_quantizer(self.bias).to(torch.float64)
                acc = acc.to(torch.float64) + b.reshape((-1,) + (1,) * (acc.dim() - 2))
        self.last_macs = (acc[0].numel() if acc.dim() > 1 else acc.numel()) * self.terms()
        return self.output_quantizer(acc).to(self.output_quantizer.result_dtype(x.dtype))


class QLinear(_QMac, nn.Linear):
    """``nn.Linear`` with fixed-point weight, bias and output (and a declared input format)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        input: FormatSource,
        weight: FixedFormat | str = DEFAULT_WEIGHT,
        bias_format: FixedFormat | str = DEFAULT_BIAS,
        output: FixedFormat | str = DEFAULT_OUTPUT,
        learn_binary_point: bool = True,
        per_channel: bool = False,
        khot: int | None = None,
    ) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._setup_quantizers(input, weight, bias_format, output, learn_binary_point, per_channel, out_features, khot)

    def terms(self) -> int:
        return self.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mac(x, F.linear)


class _QConvNd(_QMac):
    """Shared by QConv1d and QConv2d: the torch convolution's constructor (``_conv``), then the quantizers."""

    _conv: type[nn.Module]  # nn.Conv1d or nn.Conv2d: the torch class the subclass also derives from

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        input: FormatSource,
        weight: FixedFormat | str = DEFAULT_WEIGHT,
        bias_format: FixedFormat | str = DEFAULT_BIAS,
        output: FixedFormat | str = DEFAULT_OUTPUT,
        learn_binary_point: bool = True,
        per_channel: bool = False,
        khot: int | None = None,
    ) -> None:
        self._conv.__init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self._setup_quantizers(input, weight, bias_format, output, learn_binary_point, per_channel, out_channels, khot)

    def terms(self) -> int:
        return (self.in_channels // self.groups) * math.prod(self.kernel_size)


class QConv2d(_QConvNd, nn.Conv2d):
    """``nn.Conv2d`` (stride, padding, dilation, groups) with fixed-point weight, bias and output. Arguments: those of
    ``nn.Conv2d``, then the keyword-only formats of :class:`QLinear` (``input``, ``weight``, ``bias_format``,
    ``output``, ``learn_binary_point``, ``per_channel``, ``khot``)."""

    _conv = nn.Conv2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            # cuDNN may pick an FFT or Winograd algorithm (cudnn.benchmark, or its heuristics for large kernels):
            # those transform the operands and do not add exactly. im2col and a GEMM only ever add products.
            return self._mac(x, _GemmConv2d(self.weight.shape, self.stride, self.padding, self.dilation, self.groups))

        def conv(xc: torch.Tensor, wc: torch.Tensor) -> torch.Tensor:
            return F.conv2d(xc, wc, None, self.stride, self.padding, self.dilation, self.groups)

        return self._mac(x, conv)


class QConv1d(_QConvNd, nn.Conv1d):
    """``nn.Conv1d`` (stride, padding incl. ``'same'``, dilation, groups, depthwise) with fixed-point weight, bias
    and output (arguments as :class:`QConv2d`). It runs as a 2-D convolution of height 1, so its accumulation is
    exact by the same means as :class:`QConv2d` (weight limbs in float32, or float64; im2col + GEMM on CUDA)."""

    _conv = nn.Conv1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride, dilation = (1, self.stride[0]), (1, self.dilation[0])
        padding = self.padding if isinstance(self.padding, str) else (0, self.padding[0])
        if x.is_cuda:
            shape = torch.Size((*self.weight.shape[:2], 1, self.kernel_size[0]))
            gemm = _GemmConv2d(shape, stride, padding, dilation, self.groups)

            def conv(xc: torch.Tensor, wc: torch.Tensor) -> torch.Tensor:
                return gemm(xc.unsqueeze(2), wc.unsqueeze(2)).squeeze(2)
        else:

            def conv(xc: torch.Tensor, wc: torch.Tensor) -> torch.Tensor:
                out = F.conv2d(xc.unsqueeze(2), wc.unsqueeze(2), None, stride, padding, dilation, self.groups)
                return out.squeeze(2)

        return self._mac(x, conv)


class _GemmConv2d:
    """``F.conv2d`` (no bias) as im2col + batched matrix product; the columns are built once per input dtype and
    shared by the weight limbs. Exact wherever every partial sum is (TF32 is off inside :func:`exact_arithmetic`)."""

    def __init__(self, weight_shape: torch.Size, stride, padding, dilation, groups: int) -> None:
        self.kernel = tuple(weight_shape[2:])
        self.stride, self.dilation, self.groups = stride, dilation, groups
        self.pad: list[int] = []  # F.pad order: left, right, top, bottom
        if padding == "same":  # torch puts the odd pixel of an even total on the right / bottom
            for d, k in zip(reversed(dilation), reversed(self.kernel), strict=True):
                total = d * (k - 1)
                self.pad += [total // 2, total - total // 2]
        elif padding != "valid":
            self.pad = [padding[1], padding[1], padding[0], padding[0]]
        self._cols: dict[torch.dtype, tuple[torch.Tensor, tuple[int, int]]] = {}

    def _columns(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if x.dtype not in self._cols:
            if any(self.pad):
                x = F.pad(x, self.pad)
            (kh, kw), (dh, dw), (sh, sw) = self.kernel, self.dilation, self.stride
            out_hw = ((x.shape[2] - dh * (kh - 1) - 1) // sh + 1, (x.shape[3] - dw * (kw - 1) - 1) // sw + 1)
            cols = F.unfold(x, self.kernel, dilation=self.dilation, stride=self.stride)  # (N, C*kh*kw, L)
            self._cols[x.dtype] = (cols.unflatten(1, (self.groups, -1)), out_hw)  # (N, G, C/G*kh*kw, L)
        return self._cols[x.dtype]

    def __call__(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        cols, out_hw = self._columns(x)
        out = torch.matmul(w.reshape(self.groups, w.shape[0] // self.groups, -1), cols)  # (N, G, Cout/G, L)
        return out.reshape(x.shape[0], w.shape[0], *out_hw)


def fold_batchnorm(layer: QLinear | QConv1d | QConv2d, bn: nn.Module) -> QLinear | QConv1d | QConv2d:
    """A layer of the same kind computing ``bn(layer(x))`` with one multiply-accumulate: weight ``w * scale``, bias
    ``b * scale + shift`` (the batch norm's running statistics), in the layer's weight and bias widths with binary
    points re-calibrated to the folded values, and the batch norm's output format. ``layer`` is a QLinear
    (``bn`` a QBatchNorm1d on features), a QConv1d or a QConv2d.

    Folding changes the arithmetic (one rounding instead of two), so the folded layer is a new fixed-point layer,
    not a bit-exact rewrite: fine-tune it with QAT after folding, as the hardware will run the folded one.
    """
    from qfx.nn.elementwise import QBatchNorm2d

    channels = layer.out_features if isinstance(layer, QLinear) else layer.out_channels
    if not isinstance(bn, QBatchNorm2d) or bn.num_features != channels:
        kind = "QBatchNorm2d" if isinstance(layer, QConv2d) else "QBatchNorm1d"
        raise ValueError(f"fold_batchnorm needs a {kind} with {channels} channels, not {bn!r}")
    with torch.no_grad():
        scale, shift = bn.eval().folded_affine()
        weight = layer.weight * scale.reshape((-1,) + (1,) * (layer.weight.dim() - 1))
        bias = (layer.bias if layer.bias is not None else torch.zeros_like(shift)) * scale + shift

    def fitted(q: FixedQuantizer, values: torch.Tensor) -> FixedFormat:
        fmt = q.format
        top = values.abs().max().item()
        int_bits = math.floor(math.log2(top)) + 2 if top > 0 else fmt.int_bits
        return FixedFormat(fmt.width, int_bits, True, fmt.quant, fmt.overflow)

    bias_q = layer.bias_quantizer if layer.bias_quantizer is not None else _quantizer(DEFAULT_BIAS, False)
    formats = dict(
        input=layer.input_source, weight=fitted(layer.weight_quantizer, weight), bias_format=fitted(bias_q, bias),
        output=bn.output_quantizer.format, learn_binary_point=layer.weight_quantizer.learn_binary_point,
        khot=layer.khot,
    )  # fmt: skip
    if isinstance(layer, QLinear):
        folded = QLinear(layer.in_features, layer.out_features, True, **formats)
    else:
        folded = type(layer)(
            layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
            layer.groups, True, **formats,
        )  # fmt: skip
    with torch.no_grad():
        folded.weight.copy_(weight)
        folded.bias.copy_(bias)
    return folded.train(layer.training)
