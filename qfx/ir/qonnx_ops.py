"""QONNX -> IR: the readers of windowed ops (Conv/pool attributes in 1-D and 2-D), activations, value moves and the
qfx-domain table ops. Each function takes the importer's builder and one ONNX node; see :mod:`qfx.ir.qonnx`.

A 1-D op on an (N, C, L) tensor becomes the 2-D IR node with H = 1: kernel (1, K), stride (1, S), padding
(0, left, 0, right), dilation (1, D).
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import onnx

from qfx.format import FixedFormat
from qfx.ir.constants import fitted_format, sanitize
from qfx.ir.graph import (
    Affine,
    ArgMax,
    Clip,
    Concat,
    GlobalSum,
    LeakyRelu,
    Lookup,
    MaxPool2d,
    Pad,
    Relu,
    Softmax,
    SumPool2d,
    Tensor,
    Upsample,
)
from qfx.result_types import grow_bits, product_format, union_format

if TYPE_CHECKING:
    from qfx.ir.qonnx import _Builder

__all__ = ["IRError", "attrs", "quoted"]


class IRError(ValueError):
    """The QONNX graph cannot become an exact fixed-point IR; the message names the node and why."""


def quoted(name: str) -> str:
    """A node or tensor name as messages show it: bare when it is a plain token, else in double quotes."""
    return name if re.fullmatch(r"[\w./:-]+", name) else json.dumps(name, ensure_ascii=False)


def attrs(node: onnx.NodeProto) -> dict:
    """The node's attributes by name, strings decoded."""
    out = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in out.items()}


def fail(node: onnx.NodeProto, why: str) -> IRError:
    return IRError(f"node {quoted(node.name)} ({node.op_type}): {why}")


def has_input(node: onnx.NodeProto, i: int) -> bool:
    return len(node.input) > i and bool(node.input[i])


def fmt_attr(node: onnx.NodeProto, a: dict, name: str) -> FixedFormat:
    if name not in a:
        raise fail(node, f"has no {name} attribute")
    try:
        return FixedFormat.parse(a[name])
    except ValueError as e:
        raise fail(node, f"{name}: {e}") from None


def code_of(value: float, fmt: FixedFormat) -> int:
    """The code of a value that ``fmt`` holds exactly (a multiple of its LSB)."""
    return int(np.ldexp(np.float64(value), fmt.frac_bits))


# ---------------------------------------------------------------------------------------------------- windows
def _explicit_pads(node, a: dict, rank: int, kernel, stride, dilation, in_hw) -> list[int]:
    """ONNX pads [begin..., end...] from ``pads`` or ``auto_pad`` (SAME_UPPER puts the odd pixel at the end)."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(a.get("pads", [0] * 2 * rank))
    elif auto == "VALID":
        pads = [0] * 2 * rank
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for n, k, s, d in zip(in_hw, kernel, stride, dilation, strict=True):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        pads = begin + end
    else:
        raise fail(node, f"auto_pad {auto} is not an ONNX padding mode")
    if len(pads) != 2 * rank:
        raise fail(node, f"pads {pads} do not match a {rank}-D window")
    if any(p < 0 for p in pads):
        raise fail(node, f"negative pads {pads} (cropping) are not supported")
    return pads


Pair = tuple[int, int]


def window(
    node: onnx.NodeProto, a: dict, kernel: tuple[int, ...], in_shape: tuple[int, ...]
) -> tuple[Pair, Pair, tuple[int, int, int, int], Pair]:
    """(kernel, stride, padding, dilation) of a 1-D or 2-D Conv/pool as the 2-D IR reads them (H = 1 for 1-D).

    ``in_shape`` is the input's shape without batch, (C, L) or (C, H, W); its rank must match the kernel's.
    """
    rank = len(kernel)
    if rank not in (1, 2) or len(in_shape) != rank + 1:
        raise fail(
            node,
            f"only 1-D windows on (C, L) and 2-D windows on (C, H, W) tensors are supported, not a {rank}-D "
            f"kernel {list(kernel)} on a tensor of shape {list(in_shape)}",
        )
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != tuple(kernel):
        raise fail(node, f"kernel_shape {a['kernel_shape']} differs from the weight's {list(kernel)}")
    stride, dilation = tuple(a.get("strides", [1] * rank)), tuple(a.get("dilations", [1] * rank))
    if len(stride) != rank or len(dilation) != rank or min(stride + dilation) < 1:
        raise fail(node, f"strides {list(stride)} or dilations {list(dilation)} do not fit a {rank}-D window")
    pads = _explicit_pads(node, a, rank, kernel, stride, dilation, in_shape[1:])
    if rank == 1:
        return (1, kernel[0]), (1, stride[0]), (0, pads[0], 0, pads[1]), (1, dilation[0])
    return tuple(kernel), stride, (pads[0], pads[1], pads[2], pads[3]), dilation


def sum_format(x: FixedFormat, terms: int) -> FixedFormat:
    """Exact format of a sum of ``terms`` values of ``x``."""
    return FixedFormat(x.width + grow_bits(terms), x.int_bits + grow_bits(terms), x.signed)


def pool(b: _Builder, node: onnx.NodeProto, cls: type[MaxPool2d | SumPool2d], divide: bool = False) -> str:
    """MaxPool (window maximum) or the window sum of an AveragePool (``divide``: the caller divides)."""
    a = attrs(node)
    if a.get("ceil_mode", 0) or a.get("storage_order", 0) or any(d != 1 for d in a.get("dilations", ())):
        raise fail(node, "pooling with ceil_mode, dilations or storage_order is not supported")
    if "kernel_shape" not in a:
        raise fail(node, "has no kernel_shape")
    x = b.act(node, 0)
    kernel, stride, padding, _ = window(node, a, tuple(a["kernel_shape"]), b.tensors[x].shape)
    kw = dict(kernel=kernel, stride=stride, padding=padding)
    if divide:
        return b.summed(node, cls, x, math.prod(kernel), **kw)
    b.emit(cls, node, [x], b.fmt(x, node), **kw)
    return node.output[0]


def pow2_mean(b: _Builder, node: onnx.NodeProto, sums: str, area: int) -> None:
    """Divide the sums (tensor ``sums``) by a power-of-two ``area``: an exact multiplication by 2**-k (Affine)."""
    if area & (area - 1):
        raise IRError(
            f"node {quoted(node.name)}: averaging over {area} values is not exact in fixed point (not a power "
            "of two); use a sum and a multiplication by a quantized reciprocal"
        )
    fmt = FixedFormat(1, 1 - int(math.log2(area)), signed=False)
    acc = product_format(b.tensors[sums].fmt, fmt)
    out = node.output[0]
    b.tensors[out] = Tensor(out, b.shape(out), acc)
    codes = np.ones(b.tensors[sums].shape[0], dtype=np.int64)
    b.nodes.append(Affine(sanitize(node.name + "_mean", b.names), [sums], out, acc, scale=codes, scale_fmt=fmt))


def global_sum(b: _Builder, node: onnx.NodeProto) -> None:
    """GlobalAveragePool / ReduceMean (sum, then an exact 2**-k) and ReduceSum over every spatial axis of a
    (C, H, W) or (C, L) map."""
    a, x = attrs(node), b.act(node, 0)
    shape = b.tensors[x].shape
    if len(shape) not in (2, 3):
        raise fail(node, f"expects a (C, L) or (C, H, W) tensor, not {list(shape)}")
    rank, area = len(shape) + 1, math.prod(shape[1:])
    if node.op_type in ("ReduceSum", "ReduceMean"):
        axes = a.get("axes")
        if axes is None and has_input(node, 1):
            axes = [int(v) for v in np.asarray(b.const(node, 1, "axes").values).ravel()]
        if not axes or sorted(ax % rank for ax in axes) != list(range(2, rank)):
            raise fail(node, f"reduces over axes {axes}, not over every spatial axis {list(range(2, rank))}")
    if node.op_type == "ReduceSum":
        b.emit(GlobalSum, node, [x], sum_format(b.fmt(x, node), area))
        return
    sums = b.summed(node, GlobalSum, x, area)
    pow2_mean(b, node, sums, area)


def average_pool(b: _Builder, node: onnx.NodeProto) -> None:
    """AveragePool (padding counted) over a power-of-two area: window sum, then an exact 2**-k."""
    a = attrs(node)
    if any(a.get("pads", ())) and not a.get("count_include_pad", 0):
        raise fail(node, "AveragePool excluding padding divides by a varying count")
    sums = pool(b, node, SumPool2d, divide=True)
    pow2_mean(b, node, sums, math.prod(a["kernel_shape"]))


def max_pool(b: _Builder, node: onnx.NodeProto) -> None:
    """MaxPool 1-D or 2-D (padding never wins) -> MaxPool2d."""
    if len(node.output) > 1 and node.output[1]:
        raise fail(node, "the indices output of MaxPool is not supported")
    pool(b, node, MaxPool2d)


# ---------------------------------------------------------------------------------------------------- activations
def _bound(b: _Builder, node: onnx.NodeProto, i: int, name: str, a: dict) -> float | None:
    """Clip's bound ``i`` (1: min, 2: max) from its constant input, or the opset-6 attribute; None: unbounded."""
    if has_input(node, i):
        values = np.asarray(b.const(node, i, name).values, dtype=np.float64)
        if values.size != 1:
            raise fail(node, f"its {name} must be one number, not an array of shape {values.shape}")
        value = float(values.item())
    elif name in a:
        value = float(a[name])
    else:
        return None
    if np.isnan(value):
        raise fail(node, f"its {name} is NaN")
    return None if abs(value) >= float(np.finfo(np.float32).max) else value


def clip(b: _Builder, node: onnx.NodeProto) -> None:
    """Clip(0, max) is a (clipped) Relu; any other bounds a Clip. Bounds become codes of ``acc``, the union of
    the input's format and the bounds' exact formats."""
    a, x = attrs(node), b.act(node, 0)
    x_fmt = b.fmt(x, node)
    lo, hi = _bound(b, node, 1, "min", a), _bound(b, node, 2, "max", a)
    bounds = [v for v in (lo, hi) if v is not None]
    acc = union_format([x_fmt] + [fitted_format(np.array(v)) for v in bounds])
    if lo == 0.0:
        if hi is None:
            b.emit(Relu, node, [x], x_fmt)
        else:
            b.emit(Relu, node, [x], acc, max_code=code_of(hi, acc))
        return
    min_code = None if lo is None else code_of(lo, acc)
    max_code = None if hi is None else code_of(hi, acc)
    b.emit(Clip, node, [x], acc, min_code=min_code, max_code=max_code)


def leaky_relu(b: _Builder, node: onnx.NodeProto) -> None:
    """LeakyRelu(alpha): alpha (a float32) exactly as a fixed-point constant; ``acc`` holds both branches."""
    x = b.act(node, 0)
    x_fmt = b.fmt(x, node)
    alpha = float(np.float32(attrs(node).get("alpha", 0.01)))
    if alpha == 0.0:
        b.emit(Relu, node, [x], x_fmt)
        return
    if not 0.0 < alpha < 1.0:
        raise fail(node, f"slope alpha = {alpha!r} is outside (0, 1), which the IR's LeakyRelu does not support")
    alpha_fmt = fitted_format(np.array(alpha))  # unsigned, frac_bits >= 1 for 0 < alpha < 1
    acc = union_format([x_fmt, product_format(x_fmt, alpha_fmt)])  # frac = F_x + F_alpha, int bits of x
    b.emit(LeakyRelu, node, [x], acc, alpha=code_of(alpha, alpha_fmt), alpha_fmt=alpha_fmt)


# ---------------------------------------------------------------------------------------------------- value moves
def _ints(b: _Builder, node: onnx.NodeProto, i: int, what: str) -> list[int]:
    values = np.asarray(b.const(node, i, what).values)
    if values.ndim > 1 or not np.all(values == np.round(values)):
        raise fail(node, f"its {what} must be a list of integers, not {values.tolist()}")
    return [int(v) for v in values.ravel()]


def _spatial_pads(node: onnx.NodeProto, begin: list[int], end: list[int]) -> tuple[int, int, int, int]:
    """IR padding (top, left, bottom, right) from per-axis ONNX pads of an (N, C, L) or (N, C, H, W) tensor."""
    if any(p < 0 for p in begin + end):
        raise fail(node, f"negative pads {begin + end} (cropping) are not supported")
    if begin[0] or end[0] or begin[1] or end[1]:
        raise fail(node, f"pads {begin + end} pad the batch or channel axis; only spatial padding is supported")
    if len(begin) == 3:
        return (0, begin[2], 0, end[2])
    return (begin[2], begin[3], end[2], end[3])


def pad(b: _Builder, node: onnx.NodeProto) -> None:
    """Pad(mode="constant", value 0) of a (C, L) or (C, H, W) map: pads from the initializer or the attribute."""
    a, x = attrs(node), b.act(node, 0)
    shape = b.tensors[x].shape
    if a.get("mode", "constant") != "constant":
        raise fail(node, f"mode {a['mode']!r} is not supported; only constant zero padding is")
    value = 0.0
    if has_input(node, 2):
        values = np.asarray(b.const(node, 2, "constant value").values, dtype=np.float64)
        value = float(values.ravel()[0]) if values.size == 1 else float("nan")
    elif "value" in a:
        value = float(a["value"])
    if value != 0.0:
        raise fail(node, f"pads with the value {value}; only zero padding is supported")
    if len(shape) not in (2, 3):
        raise fail(node, f"pads a tensor of shape {list(shape)}; only (C, L) and (C, H, W) maps are supported")
    rank = len(shape) + 1
    pads = _ints(b, node, 1, "pads") if has_input(node, 1) else list(a.get("pads", []))
    axes = _ints(b, node, 3, "axes") if has_input(node, 3) else list(range(rank))
    if len(pads) != 2 * len(axes) or len({ax % rank for ax in axes}) != len(axes):
        raise fail(node, f"pads {pads} do not match axes {axes} of a rank-{rank} tensor")
    begin, end = [0] * rank, [0] * rank
    for k, ax in enumerate(axes):
        begin[ax % rank], end[ax % rank] = pads[k], pads[len(axes) + k]
    b.emit(Pad, node, [x], b.fmt(x, node), padding=_spatial_pads(node, begin, end))


def nearest_source_index(mode: str, rounding: str, i: int, scale: int, length: int) -> int | None:
    """The input index ONNX's nearest Resize reads for output index ``i`` (exact rational arithmetic); None for
    a coordinate mode it has no formula for here."""
    out_len, s, j = length * scale, Fraction(scale), Fraction(i)
    if mode == "asymmetric":
        x = j / s
    elif mode in ("half_pixel", "half_pixel_symmetric") or (mode == "pytorch_half_pixel" and out_len > 1):
        x = (j + Fraction(1, 2)) / s - Fraction(1, 2)  # half_pixel_symmetric: the same when sizes divide exactly
    elif mode == "pytorch_half_pixel":
        x = Fraction(0)
    elif mode == "tf_half_pixel_for_nn":
        x = (j + Fraction(1, 2)) / s
    elif mode == "align_corners":
        x = Fraction(0) if out_len == 1 else j * (length - 1) / (out_len - 1)
    else:
        return None
    if rounding == "floor":
        k = math.floor(x)
    elif rounding == "ceil":
        k = math.ceil(x)
    elif rounding == "round_prefer_floor":
        k = math.ceil(x - Fraction(1, 2))
    elif rounding == "round_prefer_ceil":
        k = math.floor(x + Fraction(1, 2))
    else:
        return None
    return min(max(k, 0), length - 1)


def _upsample_scales(b: _Builder, node: onnx.NodeProto, a: dict, shape: tuple[int, ...]) -> list[int]:
    """Integer scale factors of the spatial axes of a Resize/Upsample (from scales, or sizes / input sizes)."""
    rank = len(shape) + 1
    if node.op_type == "Upsample":
        scales = [float(v) for v in (a["scales"] if "scales" in a else np.ravel(b.const(node, 1, "scales").values))]
    elif has_input(node, 3):
        sizes = _ints(b, node, 3, "sizes")
        if a.get("keep_aspect_ratio_policy", "stretch") != "stretch" or "axes" in a:
            raise fail(node, "sizes with axes or a keep_aspect_ratio_policy are not supported; give scales")
        if len(sizes) != rank:
            raise fail(node, f"sizes {sizes} do not match a rank-{rank} tensor")
        full = tuple(b.model.get_tensor_shape(node.input[0]) or (1, *shape))
        if any(o % n for o, n in zip(sizes, full, strict=True)):
            raise fail(node, f"sizes {sizes} are not integer multiples of the input's {list(full)}")
        scales = [o // n for o, n in zip(sizes, full, strict=True)]
    else:
        scale_input = 2 if len(node.input) > 2 else 1  # Resize-10 has (X, scales)
        if not has_input(node, scale_input):
            raise fail(node, "has neither scales nor sizes")
        scales = [float(v) for v in np.ravel(b.const(node, scale_input, "scales").values)]
        if "axes" in a:
            raise fail(node, "scales with axes are not supported; give a scale for every axis")
    if len(scales) != rank:
        raise fail(node, f"scales {scales} do not match a rank-{rank} tensor")
    if not all(math.isfinite(s) and s == int(s) and s >= 1 for s in scales):
        raise fail(node, f"scales {scales} are not all integers >= 1 (only nearest upsampling by integer factors "
                   "is supported)")  # fmt: skip
    scales = [int(s) for s in scales]
    if scales[:2] != [1, 1]:
        raise fail(node, f"scales {scales} resize the batch or channel axis")
    return scales[2:]


def resize(b: _Builder, node: onnx.NodeProto) -> None:
    """Resize/Upsample in nearest mode by integer factors, whenever its coordinate and rounding modes pick the
    same input pixel as ``i // scale`` (asymmetric + floor, half_pixel + round, ...) -> Upsample."""
    a, x = attrs(node), b.act(node, 0)
    shape = b.tensors[x].shape
    if len(shape) not in (2, 3):
        raise fail(node, f"resizes a tensor of shape {list(shape)}; only (C, L) and (C, H, W) maps are supported")
    if a.get("mode", "nearest") != "nearest":
        raise fail(node, f"mode {a['mode']!r} is not supported; only nearest upsampling by integer factors is")
    scales = _upsample_scales(b, node, a, shape)
    if node.op_type == "Upsample" or (node.op_type == "Resize" and len(node.input) == 2):
        mode, rounding = "asymmetric", "floor"  # Upsample-7/9 and Resize-10 pick floor(i / scale)
    else:
        mode = a.get("coordinate_transformation_mode", "half_pixel")
        rounding = a.get("nearest_mode", "round_prefer_floor")
    for s, n in zip(scales, shape[1:], strict=True):
        picks = [nearest_source_index(mode, rounding, i, s, n) for i in range(s * n)]
        if picks != [i // s for i in range(s * n)]:
            raise fail(
                node,
                f"coordinate_transformation_mode {mode!r} with nearest_mode {rounding!r} at scale {s} does not "
                "repeat each pixel (use asymmetric + floor)",
            )
    b.emit(Upsample, node, [x], b.fmt(x, node), scale=(1, scales[0]) if len(scales) == 1 else tuple(scales))


def concat(b: _Builder, node: onnx.NodeProto) -> None:
    """Concat along a non-batch axis: ``acc`` is the union of the input formats (every value exact)."""
    xs = [b.act(node, i) for i in range(len(node.input))]
    rank = len(b.tensors[xs[0]].shape) + 1
    axis = attrs(node).get("axis")
    if axis is None or not -rank <= axis < rank:
        raise fail(node, f"axis {axis} is not an axis of a rank-{rank} tensor")
    if axis % rank == 0:
        raise fail(node, "concatenates along the batch axis")
    acc = union_format([b.fmt(x, node) for x in xs])
    b.emit(Concat, node, xs, acc, axis=axis % rank - 1)


def argmax(b: _Builder, node: onnx.NodeProto) -> None:
    """ArgMax over the last axis (first index on ties) -> ArgMax, codes of ap_ufixed<B, B>, 2**B >= length."""
    a, x = attrs(node), b.act(node, 0)
    shape = b.tensors[x].shape
    b.fmt(x, node)
    if not shape or a.get("axis", 0) % (len(shape) + 1) != len(shape):
        raise fail(node, f"axis {a.get('axis', 0)} is not the last axis of a tensor of shape (N, {list(shape)})")
    if a.get("select_last_index", 0):
        raise fail(node, "select_last_index=1 (last index on ties) is not supported")
    bits = max(1, grow_bits(shape[-1]))
    b.emit(ArgMax, node, [x], FixedFormat(bits, bits, signed=False))


# ---------------------------------------------------------------------------------------------------- tables
def _table(b: _Builder, node: onnx.NodeProto, i: int, what: str, entries: int, fmt: FixedFormat) -> np.ndarray:
    """A table initializer: ``entries`` integer codes of ``fmt``."""
    values = np.asarray(b.const(node, i, what).values)
    if values.ndim != 1 or values.size != entries:
        raise fail(node, f"its {what} has shape {list(values.shape)}, not [{entries}] (one entry per input code)")
    if not np.all(values == np.round(values)):
        raise fail(node, f"its {what} holds non-integer values")
    codes = values.astype(np.int64)
    if codes.min() < fmt.min_code or codes.max() > fmt.max_code:
        raise fail(node, f"its {what} holds codes outside {fmt}")
    return codes


def _inside(node: onnx.NodeProto, x_fmt: FixedFormat, in_fmt: FixedFormat, same_lsb: bool) -> None:
    """Every value of ``x_fmt`` is a code of ``in_fmt`` (and with ``same_lsb``, the LSBs are equal)."""
    fine = x_fmt.frac_bits == in_fmt.frac_bits if same_lsb else x_fmt.frac_bits <= in_fmt.frac_bits
    if not (fine and in_fmt.min <= x_fmt.min and x_fmt.max <= in_fmt.max):
        raise fail(node, f"its input is {x_fmt}, whose values are not all codes of its in_format {in_fmt}")


def fixed_table(b: _Builder, node: onnx.NodeProto) -> None:
    """FixedTable(x, table) -> Lookup; the table is re-indexed to the input tensor's format when that is a
    narrower type inside ``in_format``."""
    a, x = attrs(node), b.act(node, 0)
    x_fmt = b.fmt(x, node)
    in_fmt, out_fmt = fmt_attr(node, a, "in_format"), fmt_attr(node, a, "out_format")
    table = _table(b, node, 1, "table", 1 << in_fmt.width, out_fmt)
    _inside(node, x_fmt, in_fmt, same_lsb=False)
    codes = np.arange(x_fmt.min_code, x_fmt.max_code + 1, dtype=np.int64) << (in_fmt.frac_bits - x_fmt.frac_bits)
    table = table[codes - in_fmt.min_code]
    function = re.sub(r"[^0-9A-Za-z_]", "_", str(a.get("function", "")))[:64] or "table"  # a name, never code
    b.emit(Lookup, node, [x], out_fmt, table=table, function=function)


def fixed_softmax(b: _Builder, node: onnx.NodeProto) -> None:
    """FixedSoftmax(x, exp_table, recip_table) -> Softmax with the :class:`qfx.tables.SoftmaxSpec` of the node's
    attributes and tables; ``acc`` = ``spec.acc``."""
    from qfx.tables import SoftmaxSpec

    a, x = attrs(node), b.act(node, 0)
    x_fmt, shape = b.fmt(x, node), b.tensors[x].shape
    if not shape or a.get("axis", -1) % (len(shape) + 1) != len(shape):
        raise fail(node, f"axis {a.get('axis', -1)} is not the last axis of a tensor of shape (N, {list(shape)})")
    in_fmt, exp_fmt = fmt_attr(node, a, "in_format"), fmt_attr(node, a, "exp_format")
    index_fmt, recip_fmt = fmt_attr(node, a, "index_format"), fmt_attr(node, a, "recip_format")
    if index_fmt.signed or exp_fmt.signed:
        raise fail(node, f"exp_format {exp_fmt} and index_format {index_fmt} must be unsigned")
    _inside(node, x_fmt, in_fmt, same_lsb=True)
    exp_table = _table(b, node, 1, "exp table", 1 << in_fmt.width, exp_fmt)
    recip_table = _table(b, node, 2, "reciprocal table", 1 << index_fmt.width, recip_fmt)
    spec = SoftmaxSpec(in_fmt, shape[-1], exp_fmt, index_fmt, recip_fmt, exp_table, recip_table)
    b.emit(Softmax, node, [x], spec.acc, spec=spec)
