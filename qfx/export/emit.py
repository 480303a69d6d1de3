"""QONNX nodes of each QFX layer (the rows of the op contract): multiply-accumulates, batch norm, pools, clips,
tables, softmax, concatenation, upsampling, padding.

Every emitter returns the name of the tensor holding the layer's output, already cast into its output format.
Convolutions (and window sums) run in float32 where their sums fit 24 bits (onnxruntime's Conv), else with float64
operands (valid ONNX, exact up to 53 bits; :func:`qfx.export.execute_qonnx` lowers them to MatMul to run them).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from qfx.export.builder import F32, F64, MAX_FLOAT32_BITS, Builder, ExportError, sum_type, weight_format
from qfx.export.ops import DOMAIN, fits_float32, output_dtype
from qfx.format import FixedFormat
from qfx.nn import (
    FixedQuantizer,
    QAbs,
    QAdd,
    QArgMax,
    QAvgPool1d,
    QAvgPool2d,
    QBatchNorm2d,
    QCat,
    QClip,
    QConv1d,
    QConv2d,
    QExtremum,
    QFlatten,
    QGlobalAvgPool2d,
    QLeakyReLU,
    QLinear,
    QMaxPool1d,
    QMaxPool2d,
    QMul,
    QPad,
    QPReLU,
    QReLU,
    QScale,
    QSoftmax,
    QTable,
    QUpsample,
)
from qfx.nn.elementwise import _shift_or_reciprocal
from qfx.nn.layers import input_format
from qfx.result_types import grow_bits

__all__ = ["LEAVES", "emit_module", "flatten"]

#: QFX modules the export sees as single layers.
LEAVES = (
    FixedQuantizer, QLinear, QConv1d, QConv2d, QBatchNorm2d, QReLU, QAdd, QAvgPool1d, QAvgPool2d, QGlobalAvgPool2d,
    QClip, QLeakyReLU, QPReLU, QScale, QTable, QSoftmax, QArgMax, QCat, QUpsample, QPad, QMaxPool1d, QMaxPool2d,
    QFlatten, QAbs, QExtremum, QMul,
)  # fmt: skip
_IDENTITY = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)


def conv_pads(m: QConv1d | QConv2d) -> list[int]:
    """ONNX ``pads`` (all begins, then all ends) of a convolution, ``'same'`` resolved as PyTorch pads it (the odd
    pixel of an even total at the end: bottom / right)."""
    if m.padding == "same":
        totals = [d * (k - 1) for k, d in zip(m.kernel_size, m.dilation, strict=True)]
        return [t // 2 for t in totals] + [t - t // 2 for t in totals]
    if m.padding == "valid":
        return [0] * (2 * len(m.kernel_size))
    return list(m.padding) * 2


def _per_channel(values: torch.Tensor, rank: int) -> torch.Tensor:
    """Per-channel constants shaped to broadcast over (N, C, ...) of ``rank`` dims: (C,), (C, 1) or (C, 1, 1)."""
    return values.reshape((-1,) + (1,) * (rank - 2))


def _mac(b: Builder, name: str, m: QLinear | QConv1d | QConv2d, x: str) -> str:
    """MatMul/Conv with quantized constants, bias added in float64, output cast."""
    w_fmt = weight_format(m.weight_quantizer)
    x_fmt = input_format(m.input_source)
    if isinstance(m, QLinear):
        w = b.constant(f"{name}_weight", m.quantized_weight().t(), w_fmt)
        acc = b.arith("MatMul", [x, w], f"{name}_matmul")
    else:
        if m.padding_mode != "zeros":
            raise ExportError(f"module {b.label}: only zero padding can be exported")
        t = sum_type(b, x_fmt.width + w_fmt.width + grow_bits(m.terms()), "the convolution's product sum")
        w = b.constant(f"{name}_weight", m.quantized_weight(), w_fmt, dtype=np.float32 if t == F32 else np.float64)
        inputs = [b.as_float32(x), w] if t == F32 else [b.as_float64(x), b.as_float64(w)]
        acc = b.node(
            "Conv", inputs, f"{name}_conv", kernel_shape=list(m.kernel_size), strides=list(m.stride),
            pads=conv_pads(m), dilations=list(m.dilation), group=m.groups,
        )  # fmt: skip
    if m.khot is not None:
        b.khot[acc] = m.khot
    if m.bias_quantizer is not None:
        bias = m.bias_quantizer(m.bias)
        if not isinstance(m, QLinear):
            bias = _per_channel(bias, m.weight.dim())
        acc = b.arith("Add", [acc, b.constant(f"{name}_bias", bias, m.bias_quantizer.format)], f"{name}_bias_add")
    return b.cast(acc, m.output_quantizer.format, name)


def _batchnorm(b: Builder, name: str, m: QBatchNorm2d, x: str, rank: int) -> str:
    from qfx.khot import project_khot

    scale, shift = m.folded_affine()
    scale_q = m.scale_quantizer(scale)
    if m.khot is not None:
        scale_q = project_khot(scale_q, m.scale_quantizer.format, m.khot)
    s = b.constant(f"{name}_scale", _per_channel(scale_q, rank), weight_format(m.scale_quantizer))
    shift_q = _per_channel(m.shift_quantizer(shift), rank)
    t = b.constant(f"{name}_shift", shift_q, weight_format(m.shift_quantizer))
    product = b.arith("Mul", [x, s], f"{name}_mul")
    if m.khot is not None:
        b.khot[product] = m.khot
    y = b.arith("Add", [product, t], f"{name}_add")
    return b.cast(y, m.output_quantizer.format, name)


def _pool_factor(b: Builder, name: str, area: int, reciprocal: FixedFormat) -> str:
    """The constant a window sum is multiplied by: 2**-k (power-of-two area) or the rounded reciprocal."""
    value = torch.tensor(_shift_or_reciprocal(area, reciprocal), dtype=torch.float64)
    pow2 = area & (area - 1) == 0
    fmt = FixedFormat(1, 1 - int(math.log2(area)), signed=False) if pow2 else reciprocal
    return b.constant(f"{name}_factor", value, fmt)


def _avgpool(b: Builder, name: str, m: QAvgPool1d | QAvgPool2d, x: str, shape: tuple[int, ...], x_fmt) -> str:
    """Window sum as a depthwise Conv by ones, times the factor, cast."""
    if isinstance(m, QAvgPool1d):
        kernel, stride, pads = [m.kernel_size], [m.stride], [m.padding] * 2
    else:
        kernel, stride, pads = list(m.kernel_size), list(m.stride), list(m.padding) * 2
    area = math.prod(kernel)
    t = sum_type(b, x_fmt.width + grow_bits(area), "the window sum")
    channels = shape[1]
    ones = b.init(f"{name}_ones", np.ones((channels, 1, *kernel), dtype=np.float32 if t == F32 else np.float64))
    sums = b.node(
        "Conv", [b.as_float32(x) if t == F32 else b.as_float64(x), ones], f"{name}_window_sum",
        kernel_shape=kernel, strides=stride, pads=pads, group=channels,
    )  # fmt: skip
    y = b.arith("Mul", [sums, _pool_factor(b, name, area, m.reciprocal)], f"{name}_scale")
    return b.cast(y, m.output_quantizer.format, name)


def _global_avgpool(b: Builder, name: str, m: QGlobalAvgPool2d, x: str, shape, out_shape) -> str:
    axes = b.init(f"{name}_axes", np.arange(2, len(shape), dtype=np.int64))
    keepdims = int(len(out_shape) == len(shape))
    sums = b.node("ReduceSum", [b.as_float64(x), axes], f"{name}_sum", keepdims=keepdims)
    if not getattr(m, "mean", True):  # x.sum(dims): the exact sum, cast
        return b.cast(sums, m.output_quantizer.format, name)
    y = b.arith("Mul", [sums, _pool_factor(b, name, math.prod(shape[2:]), m.reciprocal)], f"{name}_scale")
    return b.cast(y, m.output_quantizer.format, name)


def _maxpool(b: Builder, name: str, m: nn.MaxPool1d | nn.MaxPool2d, x: str) -> str:
    n = 1 if isinstance(m, nn.MaxPool1d) else 2
    tup = nn.modules.utils._single if n == 1 else nn.modules.utils._pair
    k, s, p, d = (tup(v) for v in (m.kernel_size, m.stride or m.kernel_size, m.padding, m.dilation))
    if m.ceil_mode or d != tup(1) or m.return_indices:
        raise ExportError(f"module {b.label}: max pooling with ceil_mode, dilation or indices cannot be exported")
    return b.node("MaxPool", [x], name, kernel_shape=list(k), strides=list(s), pads=list(p) * 2)


def _leaky(b: Builder, name: str, m: QLeakyReLU, x: str, x_fmt: FixedFormat) -> str:
    code = m.alpha_code
    significant = (code >> ((code & -code).bit_length() - 1)).bit_length()
    if x_fmt.width + significant > MAX_FLOAT32_BITS:
        raise ExportError(
            f"module {b.label}: x * alpha needs {x_fmt.width + significant} bits, but onnxruntime's LeakyRelu runs "
            "in float32 (24-bit significand); narrow the input or the slope's width"
        )
    y = b.node("LeakyRelu", [b.as_float32(x)], f"{name}_leaky_relu", alpha=m.alpha)
    return b.cast(y, m.output_quantizer.format, name)


def _prelu(b: Builder, name: str, m: QPReLU, x: str, shape, x_fmt: FixedFormat) -> str:
    """``relu(x) + a[c] * (x - relu(x))`` in float64: what the hardware computes (the IR reads it back as a relu,
    a difference, a per-channel product and a sum), exact while the product's bits fit float64's 53."""
    fmt = m.slope_quantizer.format
    if x_fmt.width + 1 + fmt.width > 53:
        raise ExportError(
            f"module {b.label}: x * slope needs {x_fmt.width + 1 + fmt.width} bits, more than float64's 53; narrow the "
            "input or the slope's width"
        )
    slopes = m.slopes().detach()
    slopes = _per_channel(slopes, len(shape)) if slopes.numel() > 1 else slopes.reshape(())
    r = b.node("Relu", [b.as_float64(x)], f"{name}_relu")
    negative = b.arith("Sub", [x, r], f"{name}_negative")
    scaled = b.arith("Mul", [negative, b.constant(f"{name}_slope", slopes, fmt)], f"{name}_mul")
    return b.cast(b.arith("Add", [r, scaled], f"{name}_add"), m.output_quantizer.format, name)


def _product(b: Builder, name: str, m: QMul, args: list[str]) -> str:
    """``a * b`` in float64, exact while the two formats' widths add up to at most 53 bits."""
    bits = sum(f.width for f in b.input_formats if f is not None)
    if bits > 53:
        raise ExportError(f"module {b.label}: the product needs {bits} bits, more than float64's 53; narrow its inputs")
    return b.cast(b.arith("Mul", args, f"{name}_mul"), m.output_quantizer.format, name)


def _table(b: Builder, name: str, m: QTable, x: str) -> str:
    table, in_fmt, out_fmt = m.table()
    t = b.init(f"{name}_table", table.astype(np.int64))
    y = b.node(
        "FixedTable", [x, t], name, domain=DOMAIN, function=m.function, in_format=str(in_fmt), out_format=str(out_fmt)
    )
    b.dtypes[y] = F32 if output_dtype(out_fmt) is np.float32 else F64
    return y


def _softmax(b: Builder, name: str, m: QSoftmax, x: str, shape: tuple[int, ...]) -> str:
    spec = m.spec(shape[-1])
    exp = b.init(f"{name}_exp_table", spec.exp_table.astype(np.int64))
    recip = b.init(f"{name}_recip_table", spec.recip_table.astype(np.int64))
    y = b.node(
        "FixedSoftmax", [x, exp, recip], f"{name}_softmax", domain=DOMAIN, in_format=str(spec.in_fmt),
        exp_format=str(spec.exp_fmt), index_format=str(spec.index_fmt), recip_format=str(spec.recip_fmt), axis=-1,
    )  # fmt: skip
    b.dtypes[y] = F32 if fits_float32(spec.acc) else F64
    return b.cast(y, m.output_quantizer.format, name)


def _argmax(b: Builder, name: str, m: QArgMax, x: str) -> str:
    index = b.node("ArgMax", [x], f"{name}_argmax", axis=-1, keepdims=0)
    b.dtypes[index] = 7  # INT64
    return b.cast(b.node("Cast", [index], f"{name}_float", to=F32), m.output_quantizer.format, name)


def _pad(b: Builder, name: str, m: QPad, x: str) -> str:
    if len(m.pads) == 2:
        left, right = m.pads
        pads = [0, 0, left, 0, 0, right]
    else:
        left, right, top, bottom = m.pads
        pads = [0, 0, top, left, 0, 0, bottom, right]
    return b.node("Pad", [x, b.init(f"{name}_pads", np.array(pads, dtype=np.int64))], name, mode="constant")


def _upsample(b: Builder, name: str, m: QUpsample, x: str, x_fmt: FixedFormat | None) -> str:
    if x_fmt is not None and not fits_float32(x_fmt):
        raise ExportError(f"module {b.label}: onnxruntime's Resize runs in float32, which cannot hold {x_fmt}")
    scales = b.init(f"{name}_scales", np.array([1.0, 1.0, *m.scale], dtype=np.float32))
    return b.node(
        "Resize", [b.as_float32(x), "", scales], name, mode="nearest", coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )  # fmt: skip


def flatten(b: Builder, name: str, x: str, start: int, end: int, out_shape: tuple[int, ...]) -> str:
    """Flatten (from dim 1 to the end) or a Reshape to ``out_shape`` (batch kept)."""
    if start == 1 and end == -1:
        return b.node("Flatten", [x], name, axis=1)
    target = b.init(f"{name}_shape", np.array([-1, *out_shape[1:]], dtype=np.int64))
    return b.node("Reshape", [x, target], name)


def emit_module(b: Builder, name: str, m: nn.Module, args: list[str], shape, out_shape, x_fmt) -> str:
    """The nodes of module ``m`` applied to the tensors ``args`` (``shape``/``x_fmt``: the first input's)."""
    if isinstance(m, FixedQuantizer):
        if m.frac_bits.dim() > 0:
            raise ExportError(f"module {b.label}: a per-channel activation quantizer cannot be exported")
        return b.cast(args[0], m.format, name)
    if isinstance(m, (QLinear, QConv1d, QConv2d)):
        return _mac(b, name, m, args[0])
    if isinstance(m, QBatchNorm2d):
        return _batchnorm(b, name, m, args[0], len(shape))
    if isinstance(m, QReLU):
        if m.max_value is None:
            y = b.node("Relu", [args[0]], f"{name}_relu")
        else:
            x = b.as_float64(args[0])  # the bound may not be a float32
            lo, hi = b.init(f"{name}_min", np.array(0.0)), b.init(f"{name}_max", np.array(float(m.max_value)))
            y = b.node("Clip", [x, lo, hi], f"{name}_clip")
        return b.cast(y, m.output_quantizer.format, name)
    if isinstance(m, QClip):
        lo, hi = b.init(f"{name}_min", np.array(m.min_value)), b.init(f"{name}_max", np.array(m.max_value))
        return b.cast(b.node("Clip", [b.as_float64(args[0]), lo, hi], f"{name}_clip"), m.output_quantizer.format, name)
    if isinstance(m, QAdd):
        op = "Sub" if getattr(m, "subtract", False) else "Add"
        return b.cast(b.arith(op, args[:2], f"{name}_{op.lower()}"), m.output_quantizer.format, name)
    if isinstance(m, QScale):
        value = m.scale.reshape(m.scale.shape[1:]) if m.scale.dim() > 1 else m.scale
        c = b.constant(f"{name}_scale", value, m.scale_format)
        y = b.arith("Mul", [args[0], c], f"{name}_mul")
        offset = getattr(m, "offset", None)
        if offset is not None:
            d = b.constant(f"{name}_offset", offset.reshape(offset.shape[1:]) if offset.dim() > 1 else offset,
                           m.offset_format)  # fmt: skip
            y = b.arith("Add", [y, d], f"{name}_add")
        return b.cast(y, m.output_quantizer.format, name)
    if isinstance(m, (QAvgPool1d, QAvgPool2d)):
        y = _avgpool(b, name, m, args[0], shape, x_fmt)
        if getattr(m, "squeeze", None) is None:
            return y
        target = b.init(f"{name}_shape", np.array([-1, *out_shape[1:]], dtype=np.int64))
        return b.node("Reshape", [y, target], f"{name}_squeeze")
    if isinstance(m, QGlobalAvgPool2d):
        return _global_avgpool(b, name, m, args[0], shape, out_shape)
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
        return _maxpool(b, name, m, args[0])
    if isinstance(m, QLeakyReLU):
        return _leaky(b, name, m, args[0], x_fmt)
    if isinstance(m, QPReLU):
        return _prelu(b, name, m, args[0], shape, x_fmt)
    if isinstance(m, QMul):
        return _product(b, name, m, args[:2])
    if isinstance(m, QAbs):  # relu(x) - (x - relu(x))
        r = b.node("Relu", [b.as_float64(args[0])], f"{name}_relu")
        negative = b.arith("Sub", [args[0], r], f"{name}_negative")
        return b.cast(b.arith("Sub", [r, negative], f"{name}_sub"), m.output_quantizer.format, name)
    if isinstance(m, QExtremum):  # b + relu(a - b), a - relu(a - b)
        above = b.node("Relu", [b.arith("Sub", args[:2], f"{name}_difference")], f"{name}_relu")
        picked = b.arith("Add", [args[1], above], f"{name}_max") if m.kind == "max" else \
            b.arith("Sub", [args[0], above], f"{name}_min")
        return b.cast(picked, m.output_quantizer.format, name)
    if isinstance(m, QTable):
        return _table(b, name, m, args[0])
    if isinstance(m, QSoftmax):
        return _softmax(b, name, m, args[0], shape)
    if isinstance(m, QArgMax):
        return _argmax(b, name, m, args[0])
    if isinstance(m, QCat):
        joined = b.node("Concat", [b.as_float64(a) for a in args], f"{name}_concat", axis=m.dim % len(shape))
        return b.cast(joined, m.output_quantizer.format, name)
    if isinstance(m, QUpsample):
        return _upsample(b, name, m, args[0], x_fmt)
    if isinstance(m, QPad):
        return _pad(b, name, m, args[0])
    if isinstance(m, nn.Flatten):
        return flatten(b, name, args[0], m.start_dim, m.end_dim, out_shape)
    if isinstance(m, _IDENTITY):
        return args[0]
    raise ExportError(f"module {b.label}: {type(m).__name__} is not a QFX layer; run qfx.quantize_ on the model first")
