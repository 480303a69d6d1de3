"""How :func:`qfx.quantize_` turns each traced function or tensor-method call into QFX layers.

Every call in the traced ``forward`` is one of: shape plumbing (``x.size(0)``, ``x.shape[1]``: no tensor, kept),
a reshape that keeps the batch (``torch.flatten``, ``view``, ``reshape``: kept, the format is the input's), a
dropout (removed: gone in evaluation), or a computation that becomes a QFX layer (``F.relu`` -> :class:`QReLU`,
``torch.cat`` -> :class:`QCat`, ``torch.sigmoid`` -> :class:`QTable`, ...). Anything else is refused, naming the
call and its source line, so that no float operation passes silently.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
from torch import fx, nn
from torch.nn import functional as F

from qfx.ir.graph import is_channel_gate
from qfx.nn.convert_base import Context, QuantizeError, call_name, fitted, int_bits_for, target_name, where
from qfx.nn.convert_base import refuse as _refuse
from qfx.nn.convert_values import (
    LOG_SOFTMAX_WHY,
    add_constant,
    clamp,
    constant,
    constant_affine,
    hardtanh,
    is_constant,
    leaky,
    multiply_constant,
    prelu,
    softmax,
    table,
    table_function,
)  # fmt: skip
from qfx.nn.elementwise import QAbs, QAdd, QAvgPool2d, QExtremum, QMaxPool2d, QMul, QReLU
from qfx.nn.shape import QAvgPool1d, QCat, QGlobalAvgPool, QMaxPool1d, QPad, QUpsample

__all__ = [
    "Context", "QuantizeError", "adaptive_max_pool", "adaptive_pool", "avg_pool", "call_name", "convert_call",
    "fitted", "int_bits_for", "new_axes_only", "supported_calls", "transpose_perm", "where",
]  # fmt: skip


# ------------------------------------------------------------------------------------------------ signatures
_SIGNATURES: dict[object, tuple[str, ...]] = {}


def _sig(targets: tuple, params: str) -> None:
    for t in targets:
        _SIGNATURES[t] = tuple(params.split())


_sig((F.relu, torch.relu, "relu", F.relu6, F.sigmoid, torch.sigmoid, "sigmoid", F.tanh, torch.tanh, "tanh"), "input")
_sig((F.hardtanh,), "input min_val max_val")
_sig((torch.clamp, "clamp", torch.clip, "clip"), "input min max")
_sig((F.hardsigmoid, F.hardswish, F.silu, F.mish), "input")
_sig((F.elu,), "input alpha")
_sig((F.gelu,), "input approximate")
_sig((F.softplus,), "input beta threshold")
_sig((F.leaky_relu,), "input negative_slope")
_sig((F.max_pool1d, F.max_pool2d), "input kernel_size stride padding dilation ceil_mode return_indices")
_sig((F.avg_pool1d,), "input kernel_size stride padding ceil_mode count_include_pad")
_sig((F.avg_pool2d,), "input kernel_size stride padding ceil_mode count_include_pad divisor_override")
_sig((F.adaptive_avg_pool1d, F.adaptive_avg_pool2d), "input output_size")
_sig((F.adaptive_max_pool1d, F.adaptive_max_pool2d), "input output_size return_indices")
_sig((F.log_softmax, torch.log_softmax, "log_softmax"), "input dim")
_sig((torch.flatten, "flatten"), "input start_dim end_dim")
_sig((torch.mean, "mean", torch.sum, "sum"), "input dim keepdim")
_sig((torch.cat, torch.concat), "tensors dim")
_sig((F.interpolate,), "input size scale_factor mode align_corners recompute_scale_factor antialias")
_sig((F.pad,), "input pad mode value")
_sig((operator.add, torch.add, "add", operator.iadd, operator.sub, torch.sub, "sub", operator.isub), "input other")
_sig((operator.neg, torch.neg, "neg"), "input")
_sig((operator.mul, torch.mul, "mul", operator.imul, operator.truediv, torch.div, "div"), "input other")
_sig((F.softmax, torch.softmax, "softmax"), "input dim")
_sig((torch.abs, "abs"), "input")
_sig((torch.maximum, "maximum", torch.minimum, "minimum", torch.max, "max", torch.min, "min"), "input other")
_sig((F.prelu,), "input weight")
_sig((F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout), "input p training")
_DEFAULTS = {
    "min_val": -1.0, "max_val": 1.0, "negative_slope": 0.01, "stride": None, "padding": 0, "dilation": 1,
    "ceil_mode": False, "return_indices": False, "count_include_pad": True, "divisor_override": None,
    "start_dim": 0, "end_dim": -1, "dim": None, "keepdim": False, "size": None, "scale_factor": None,
    "mode": None, "align_corners": None, "value": None, "min": None, "max": None, "alpha": 1.0, "approximate": "none",
    "beta": 1.0, "threshold": 20.0,
}  # fmt: skip


def _bind(ctx: Context, node: fx.Node) -> dict:
    """The call's arguments by parameter name, shape queries among them replaced by their values."""
    node = _with_shape_values(ctx, node)
    key = node.target
    params = _SIGNATURES[key]
    bound = {p: _DEFAULTS.get(p) for p in params}
    if node.target in (F.interpolate,):
        bound["mode"] = "nearest"
    if node.target is F.pad:
        bound["mode"] = "constant"
    for p, v in zip(params, node.args, strict=False):
        bound[p] = v
    bound.update({k: v for k, v in node.kwargs.items() if k in bound or k in ("inplace", "dtype")})
    return bound


class _Args:
    """A call's arguments with the values of shape queries in place of their nodes (what :func:`_bind` reads)."""

    def __init__(self, node: fx.Node, args: tuple, kwargs: dict) -> None:
        self.target, self.op, self.name, self.meta = node.target, node.op, node.name, node.meta
        self.args, self.kwargs = args, kwargs


def _with_shape_values(ctx: Context, node: fx.Node) -> fx.Node | _Args:
    def value(n: fx.Node) -> object:
        return ctx.values[n.name] if n.name in ctx.values and n.name not in ctx.shapes else n

    if not any(n.name in ctx.values for n in node.all_input_nodes):
        return node
    return _Args(node, fx.node.map_arg(node.args, value), fx.node.map_arg(node.kwargs, value))


# ------------------------------------------------------------------------------------------------ rules
_SHAPE_ONLY = {"size", "dim"}
_QUERIES = {"shape", "ndim", "dtype", "device"}
_RESHAPES = {torch.flatten, "flatten", "view", "reshape", "contiguous", torch.reshape, torch.unsqueeze, "unsqueeze",
             torch.squeeze, "squeeze"}  # fmt: skip
_TABLES = {F.sigmoid: "sigmoid", torch.sigmoid: "sigmoid", "sigmoid": "sigmoid", F.tanh: "tanh", torch.tanh: "tanh",
           "tanh": "tanh", F.hardsigmoid: "hardsigmoid", F.hardswish: "hardswish", F.silu: "silu", F.mish: "mish",
           F.elu: "elu", F.gelu: "gelu", F.softplus: "softplus"}  # fmt: skip
_POOLS = {F.max_pool1d: 1, F.avg_pool1d: 1, F.adaptive_avg_pool1d: 1}
_POOLS.update({F.max_pool2d: 2, F.avg_pool2d: 2, F.adaptive_avg_pool2d: 2})
_POOLS.update({F.adaptive_max_pool1d: 1, F.adaptive_max_pool2d: 2})
_EXTREMA = {torch.maximum: "max", "maximum": "max", torch.max: "max", "max": "max", torch.minimum: "min",
            "minimum": "min", torch.min: "min", "min": "min"}  # fmt: skip
_EXPANDS = {"expand_as", "expand"}
_PRODUCTS = {operator.mul, torch.mul, "mul", operator.imul}
_DROPOUTS = {F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout}


def _ints(value: object, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _pool(ctx: Context, node: fx.Node, a: dict, dims: int) -> tuple[nn.Module, bool]:
    """F.max_pool / F.avg_pool / F.adaptive_avg_pool as a module; True when it passes the format through."""
    t = node.target
    in_shape = ctx.shapes[a["input"].name]
    if t in (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d):
        return adaptive_pool(ctx, node, in_shape, _ints(a["output_size"], dims), call_name(node)), False
    if t in (F.adaptive_max_pool1d, F.adaptive_max_pool2d):
        if a["return_indices"]:
            raise _refuse(node, "max pooling with return_indices is not supported")
        return adaptive_max_pool(node, in_shape, _ints(a["output_size"], dims), f"call {call_name(node)}"), True
    kernel = _ints(a["kernel_size"], dims)
    stride = _ints(a["stride"], dims) if a["stride"] not in (None, [], ()) else kernel
    padding = _ints(a["padding"], dims)
    if a["ceil_mode"]:
        raise _refuse(node, "ceil_mode=True is not supported (windows past the edge)")
    if t in (F.max_pool1d, F.max_pool2d):
        if a["return_indices"] or _ints(a["dilation"], dims) != (1,) * dims:
            raise _refuse(node, "max pooling with dilation or return_indices is not supported")
        return (QMaxPool1d if dims == 1 else QMaxPool2d)(kernel, stride, padding), True
    if any(padding) and not a["count_include_pad"]:
        raise _refuse(node, "average pooling with count_include_pad=False divides by a varying count")
    if a.get("divisor_override") is not None:
        raise _refuse(node, "divisor_override is not supported")
    return avg_pool(ctx, node, kernel, stride, padding), False


def avg_pool(ctx: Context, node: fx.Node, kernel, stride, padding) -> nn.Module:
    """QAvgPool1d/2d with the node's calibrated output format."""
    kw = dict(output=ctx.act(node), learn=ctx.learn)
    if len(kernel) == 1:
        return QAvgPool1d(kernel[0], stride[0], padding[0], **kw)
    return QAvgPool2d(kernel, stride, padding, **kw)


def adaptive_pool(ctx: Context, node: fx.Node, in_shape, out_size, what: str) -> nn.Module:
    """An adaptive average pool whose windows are exact (input size divisible by output size)."""
    kernel = _windows(node, in_shape[2:], out_size, what, "average")
    if tuple(kernel) == tuple(in_shape[2:]):
        return QGlobalAvgPool(keepdim=True, output=ctx.act(node), learn=ctx.learn)
    return avg_pool(ctx, node, kernel, kernel, (0,) * len(kernel))


def _windows(node: fx.Node, spatial, out_size, what: str, kind: str) -> tuple[int, ...]:
    """The window (= stride) of an adaptive pool from ``spatial`` to ``out_size``; refused when they differ."""
    if len(spatial) != len(out_size):
        raise QuantizeError(f"{what}{where(node)}: output size {out_size} does not match the input {tuple(spatial)}")
    out_size = tuple(s if o is None else o for s, o in zip(spatial, out_size, strict=True))
    if any(s % o for s, o in zip(spatial, out_size, strict=True)):
        raise QuantizeError(
            f"{what}{where(node)}: adaptive {kind} pooling from {tuple(spatial)} to {out_size} has windows of "
            "different sizes (the input size must be a multiple of the output size)"
        )
    return tuple(s // o for s, o in zip(spatial, out_size, strict=True))


def adaptive_max_pool(node: fx.Node, in_shape, out_size, what: str) -> nn.Module:
    """An adaptive max pool whose windows are all the same (a global max pool when the output is 1): a max pool."""
    kernel = _windows(node, in_shape[2:], out_size, what, "max")
    return QMaxPool1d(kernel[0], kernel[0]) if len(kernel) == 1 else QMaxPool2d(kernel, kernel)


def _mean(ctx: Context, node: fx.Node, a: dict, mean: bool = True) -> nn.Module:
    """``x.mean(dims)`` / ``x.sum(dims)`` over every spatial dim: a global average pool, or its sum; a mean over
    the rows or the columns of (N, C, H, W) only: an average pool whose window is that dim."""
    in_shape = ctx.shapes[a["input"].name]
    rank = len(in_shape)
    dims = a["dim"]
    dims = sorted(d % rank for d in _ints(dims, 1)) if dims is not None else None
    if mean and rank == 4 and dims in ([2], [3]):  # over rows or columns only: an average pool across that dim
        kernel = (in_shape[2], 1) if dims == [2] else (1, in_shape[3])
        squeeze = None if a["keepdim"] else dims[0]
        return QAvgPool2d(kernel, kernel, 0, output=ctx.act(node), learn=ctx.learn, squeeze=squeeze)
    if rank < 3 or dims != list(range(2, rank)):
        what = "mean" if mean else "sum"
        rows = ", or a mean over the rows or the columns of (N, C, H, W)," if mean else ""
        raise _refuse(node, f"only a {what} over every spatial dim of (N, C, ...){rows} is supported, not dims "
                      f"{a['dim']}")  # fmt: skip
    return QGlobalAvgPool(keepdim=bool(a["keepdim"]), output=ctx.act(node), learn=ctx.learn, mean=mean)


def _interpolate(node: fx.Node, a: dict, ctx: Context) -> nn.Module:
    if a["mode"] != "nearest":
        raise _refuse(node, f"interpolation mode {a['mode']!r} is not supported; only 'nearest' moves values exactly")
    in_shape, out_shape = ctx.shapes[a["input"].name], ctx.shapes[node.name]
    factors = []
    for i, o in zip(in_shape[2:], out_shape[2:], strict=True):
        if o % i:
            raise _refuse(node, f"upsampling {tuple(in_shape[2:])} to {tuple(out_shape[2:])} is not by integer factors")
        factors.append(o // i)
    if a["scale_factor"] is not None:
        given = _ints(a["scale_factor"], len(factors))
        if any(float(g) != f for g, f in zip(given, factors, strict=True)):
            raise _refuse(node, f"scale factor {a['scale_factor']} is not an integer")
    return QUpsample(tuple(factors))


def _pad(node: fx.Node, a: dict, ctx: Context) -> nn.Module:
    rank = len(ctx.shapes[a["input"].name])
    pads = tuple(a["pad"])
    if a["mode"] not in ("constant", None):
        raise _refuse(node, f"padding mode {a['mode']!r} is not supported; only zero (constant) padding")
    if a["value"] not in (None, 0, 0.0):
        raise _refuse(node, f"padding with the value {a['value']} is not supported; only zero padding")
    if rank not in (3, 4) or len(pads) > 2 * (rank - 2) or len(pads) % 2:
        raise _refuse(node, f"padding {pads} of a {rank}-D tensor: only the spatial dims of (N, C, L) or (N, C, H, W)")
    if any(not isinstance(p, int) or p < 0 for p in pads):
        raise _refuse(node, f"padding {pads}: only non-negative integers")
    return QPad(pads + (0,) * (2 * (rank - 2) - len(pads)))


def _build(ctx: Context, node: fx.Node, a: dict) -> tuple[nn.Module | None, list, bool]:
    """(module, tensor inputs, passes the format through) for a computing call."""
    t, x = node.target, a.get("input")
    if t in (F.relu, torch.relu, "relu"):
        return QReLU(ctx.act(node, signed=False), learn=ctx.learn), [x], False
    if t is F.relu6:
        return hardtanh(ctx, node, 0.0, 6.0), [x], False
    if t is F.hardtanh:
        return hardtanh(ctx, node, float(a["min_val"]), float(a["max_val"])), [x], False
    if t is F.leaky_relu:
        return leaky(ctx, node, float(a["negative_slope"])), [x], False
    if t in _POOLS:
        module, through = _pool(ctx, node, a, _POOLS[t])
        return module, [x], through
    if t in (torch.mean, "mean", torch.sum, "sum"):
        return _mean(ctx, node, a, mean=t in (torch.mean, "mean")), [x], False
    if t in (torch.cat, torch.concat):
        tensors = list(a["tensors"])
        sources = [ctx.source(s, node, f"call {call_name(node)}") for s in tensors]
        rank = len(ctx.shapes[tensors[0].name])
        dim = a["dim"] if a["dim"] is not None else 0
        if dim % rank == 0 or (rank == 2 and dim % rank != 1):
            raise _refuse(node, f"concatenation along dim {dim}: only channels/features or spatial dims (not the "
                          "batch) are supported")  # fmt: skip
        signed = any(s.format.signed for s in sources)
        return QCat(dim % rank, ctx.act(node, signed=signed), learn=ctx.learn), tensors, False
    if t is F.interpolate:
        return _interpolate(node, a, ctx), [x], True
    if t is F.pad:
        return _pad(node, a, ctx), [x], True
    if t in (operator.add, torch.add, "add", operator.iadd, operator.sub, torch.sub, "sub", operator.isub):
        subtract = t in (operator.sub, torch.sub, "sub", operator.isub)
        if node.kwargs.get("alpha", 1) != 1:
            raise _refuse(node, "alpha != 1 is not supported")
        tensors = [v for v in (x, a["other"]) if isinstance(v, fx.Node) and constant(ctx, v) is None]
        if len(tensors) == 2:
            return QAdd(ctx.act(node), learn=ctx.learn, subtract=subtract), [x, a["other"]], False
        return (*add_constant(ctx, node, a, subtract), False)
    if t in (operator.neg, torch.neg, "neg"):
        return (*constant_affine(ctx, node, x, torch.tensor(-1.0, dtype=torch.float64), None), False)
    if t in (operator.mul, torch.mul, "mul", operator.imul) and _two_tensors(ctx, x, a["other"]):
        return _product(ctx, node, x, a["other"]), [x, a["other"]], False
    if t in (operator.mul, torch.mul, "mul", operator.imul, operator.truediv, torch.div, "div"):
        return (*multiply_constant(ctx, node, a), False)
    if t in (torch.clamp, "clamp", torch.clip, "clip"):
        what = f"call {call_name(node)}"
        return clamp(ctx, node, ctx.source(x, node, what).format, a["min"], a["max"], what), [x], False
    if t in _TABLES:
        what = f"call {call_name(node)}"
        params = {k: a[k] for k in ("alpha", "approximate", "beta", "threshold") if k in a}
        function = table_function(what + where(node), _TABLES[t], **params)
        return table(ctx, node, function, x, what), [x], False
    if t in (F.softmax, torch.softmax, "softmax"):
        return (*softmax(ctx, node, a), False)
    if t in (torch.abs, "abs"):
        return QAbs(ctx.act(node, signed=False), learn=ctx.learn), [x], False
    if t in _EXTREMA:
        other = a["other"]
        if not isinstance(other, fx.Node) or other.name not in ctx.shapes or constant(ctx, other) is not None:
            raise _refuse(node, "only the element-wise maximum or minimum of two tensors is supported (not a "
                          "reduction over a dim, nor against a constant: use torch.clamp)")  # fmt: skip
        if ctx.shapes[x.name] != ctx.shapes[other.name]:
            raise _refuse(node, f"tensors of shapes {ctx.shapes[x.name]} and {ctx.shapes[other.name]}: one shape "
                          "is needed (no broadcasting)")  # fmt: skip
        signed = any(ctx.source(v, node, f"call {call_name(node)}").format.signed for v in (x, other))
        return QExtremum(_EXTREMA[t], ctx.act(node, signed=signed), learn=ctx.learn), [x, other], False
    if t is F.prelu:
        weight = constant(ctx, a["weight"])
        if weight is None:
            raise _refuse(node, "the slopes must be a parameter or buffer of the model, not computed from the input")
        return prelu(ctx, node, weight), [x], False
    if t in (F.log_softmax, torch.log_softmax, "log_softmax"):
        if ctx.config.softmax == "table":
            raise _refuse(node, LOG_SOFTMAX_WHY)
        return (*softmax(ctx, node, a), False)
    raise AssertionError(f"internal: no rule for {call_name(node)}")


def _two_tensors(ctx: Context, x: object, other: object) -> bool:
    """Whether both operands are tensors of the model (not constants)."""
    return all(isinstance(v, fx.Node) and v.name in ctx.shapes and constant(ctx, v) is None for v in (x, other))


def _product(ctx: Context, node: fx.Node, a: fx.Node, b: fx.Node) -> QMul:
    """``a * b`` of two tensors of one shape, or of a map and a per-channel gate (squeeze-and-excitation); their
    formats' widths must leave the product within 53 bits."""
    sa, sb = ctx.shapes[a.name], ctx.shapes[b.name]
    if sa != sb and not (is_channel_gate(sa[1:], sb[1:]) or is_channel_gate(sb[1:], sa[1:])):
        raise _refuse(node, f"a product of shapes {sa} and {sb}: only tensors of one shape, or a feature map and one "
                      "value per channel (N, C, 1, ...), are multiplied")  # fmt: skip
    what = f"call {call_name(node)}"
    fa, fb = (ctx.source(v, node, what).format for v in (a, b))
    if fa.width + fb.width > 53:
        raise _refuse(node, f"the product of {fa} and {fb} needs {fa.width + fb.width} bits; at most 53 are exact")
    return QMul(ctx.act(node, signed=fa.signed or fb.signed), learn=ctx.learn)


def new_axes_only(index: object) -> bool:
    """Whether an index only adds axes (``x[:, :, None, None]``, ``x[..., None]``): whole slices, ``...`` and
    ``None``, at least one ``None``."""
    items = index if isinstance(index, tuple) else (index,)
    whole = all(i is None or i is Ellipsis or (isinstance(i, slice) and i == slice(None)) for i in items)
    return whole and any(i is None for i in items)


def supported_calls() -> list[str]:
    """The function and method calls quantize_ understands (for error messages and docs)."""
    names = set()
    for t in list(_SIGNATURES) + list(_SHAPE_ONLY) + list(_RESHAPES) + list(_TRANSPOSES) + list(_EXPANDS):
        if isinstance(t, str):
            names.add(f"Tensor.{t}")
        else:
            names.add(target_name(t))
    return sorted(names)


_TRANSPOSES = {torch.permute, "permute", torch.transpose, "transpose"}


def transpose_perm(node: fx.Node, rank: int) -> tuple[int, ...]:
    """The axes (batch first) a ``permute``/``transpose`` call puts its input's axes in."""
    args = list(node.args[1:])
    if node.target in (torch.permute, "permute"):
        dims = node.kwargs.get("dims", args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args)
        return tuple(int(d) % rank for d in dims)
    d0, d1 = (node.kwargs.get(k, v) for k, v in zip(("dim0", "dim1"), args + [None] * (2 - len(args)), strict=True))
    perm = list(range(rank))
    perm[int(d0) % rank], perm[int(d1) % rank] = perm[int(d1) % rank], perm[int(d0) % rank]
    return tuple(perm)


def _check_input_transpose(ctx: Context, node: fx.Node) -> None:
    """A transpose is the host's: only of the model's input (e.g. channels-last to channels-first), batch first."""
    from qfx.nn.elementwise import QInput

    x = node.args[0]
    if not isinstance(x, fx.Node) or not isinstance(ctx.producer.get(x.name), QInput):
        raise _refuse(node, "a transpose inside the network moves every value; only the model's input may be "
                            "transposed (the host does it before the first cast)")  # fmt: skip
    if transpose_perm(node, len(ctx.shapes[x.name]))[0] != 0:
        raise _refuse(node, "a transpose that moves the batch axis is not supported")


def _is_tensor(ctx: Context, node: fx.Node) -> bool:
    return node.name in ctx.shapes


def convert_call(ctx: Context, node: fx.Node, insert: Callable[[fx.Node, nn.Module, list], fx.Node]) -> None:
    """Convert one ``call_function`` / ``call_method`` node in place (``insert`` adds a module call after it)."""
    t = node.target
    if is_constant(node):  # a computation on module attributes only: its readers take its value (constant())
        return
    if not _is_tensor(ctx, node):  # a Python value: shape plumbing, or a tensor leaving the fixed-point model
        from_tensor = any(_is_tensor(ctx, a) for a in node.all_input_nodes)
        query = (node.op == "call_method" and t in _SHAPE_ONLY) or (t is getattr and node.args[1] in _QUERIES)
        if from_tensor and not query:
            raise _refuse(
                node, "turns a tensor into a Python value, which leaves the fixed-point model; only shape queries "
                "(x.shape, x.size(), x.dim()) are supported",
            )  # fmt: skip
        return
    if (t is operator.getitem and not new_axes_only(node.args[1])) or t is getattr:
        raise _refuse(node, "indexing a tensor is not supported")
    supported = t in _SIGNATURES or t in _RESHAPES or t in _TRANSPOSES or t in _EXPANDS or t is operator.getitem
    if not supported or (node.op == "call_method") != isinstance(t, str):
        raise _refuse(node, "not supported by quantize_; supported: " + ", ".join(supported_calls()))
    if t in _EXPANDS:  # y.expand_as(x) as a factor of x: the product broadcasts a per-channel gate itself
        if not node.users or any(u.target not in _PRODUCTS for u in node.users):
            raise _refuse(node, "expanding a tensor is supported only as a factor of a product (x * y.expand_as(x))")
        node.replace_all_uses_with(node.args[0])
        ctx.gm.graph.erase_node(node)
        return
    if t in _TRANSPOSES:
        _check_input_transpose(ctx, node)
        ctx.producer[node.name] = ctx.source(node.args[0], node, f"call {call_name(node)}")
        return
    if t in _RESHAPES or t is operator.getitem:  # getitem: x[:, :, None, None], an unsqueeze
        src = node.args[0] if node.args else node.kwargs.get("input")
        in_shape, out_shape = ctx.shapes.get(getattr(src, "name", "")), ctx.shapes.get(node.name)
        if in_shape is None or out_shape is None or in_shape[0] != out_shape[0] or len(out_shape) < 2:
            raise _refuse(node, f"reshaping {in_shape} to {out_shape} must keep the batch dimension first")
        ctx.producer[node.name] = ctx.source(src, node, f"call {call_name(node)}")
        return
    a = _bind(ctx, node)  # inplace=True is moot: the QFX layer that replaces the call writes a new tensor
    if t in _DROPOUTS:
        node.replace_all_uses_with(a["input"])
        ctx.gm.graph.erase_node(node)
        return
    module, inputs, through = _build(ctx, node, a)
    for x in inputs:
        ctx.source(x, node, f"call {call_name(node)}")
    if module is None:  # removed (softmax="logits")
        node.replace_all_uses_with(inputs[0])
        ctx.gm.graph.erase_node(node)
        return
    new = insert(node, module, inputs)
    ctx.producer[new.name] = ctx.producer[inputs[0].name] if through else module.output_quantizer
