"""How :func:`qfx.quantize_` turns each traced function or tensor-method call into QFX layers.

Every call in the traced ``forward`` is one of: shape plumbing (``x.size(0)``, ``x.shape[1]``: no tensor, kept),
a reshape that keeps the batch (``torch.flatten``, ``view``, ``reshape``: kept, the format is the input's), a
dropout (removed: gone in evaluation), or a computation that becomes a QFX layer (``F.relu`` -> :class:`QReLU`,
``torch.cat`` -> :class:`QCat`, ``torch.sigmoid`` -> :class:`QTable`, ...). Anything else is refused, naming the
call and its source line, so that no float operation passes silently.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import fx, nn
from torch.nn import functional as F

from qfx.format import FixedFormat, Overflow, Quant
from qfx.nn.activations import QArgMax, QClip, QLeakyReLU, QScale, QSoftmax, QTable
from qfx.nn.elementwise import QAdd, QAvgPool2d, QMaxPool2d, QReLU
from qfx.nn.quantizer import FixedQuantizer
from qfx.nn.shape import QAvgPool1d, QCat, QGlobalAvgPool, QMaxPool1d, QPad, QUpsample
from qfx.tables import BOUNDED, check_table_input, function_range

__all__ = ["Context", "QuantizeError", "call_name", "convert_call", "where"]


class QuantizeError(ValueError):
    """The model holds something :func:`qfx.quantize_` cannot make fixed point; the message names it."""


def int_bits_for(max_abs: float, signed: bool) -> int:
    """Fewest integer bits whose range holds ``max_abs`` (at least -16, for all-zero tensors)."""
    if not max_abs > 0:
        return -16
    bits = math.floor(math.log2(max_abs)) + 1
    return bits + 1 if signed else bits


def fitted(width: int, max_abs: float, signed: bool, quant: Quant, overflow: Overflow) -> FixedFormat:
    """``width`` bits with the binary point that holds ``max_abs``."""
    return FixedFormat(width, int_bits_for(max_abs, signed), signed, quant, overflow)


def where(node: fx.Node) -> str:
    """`` at forward line N (code)`` for a traced node (empty when the tracer recorded no user frame)."""
    frame = node.meta.get("qfx_frame")
    if frame is None:
        return ""
    file, line, code, function = frame
    code = f" ({code.strip()})" if code and code.strip() else ""
    return f" at {function} line {line} of {Path(file).name}{code}"


def call_name(node: fx.Node) -> str:
    """``torch.nn.functional.gelu``, ``torch.cat``, ``Tensor.view``, ``operator.mul``: the call as users know it."""
    return f"Tensor.{node.target}" if node.op == "call_method" else _target_name(node.target)


def _target_name(target: object) -> str:
    name = getattr(target, "__name__", str(target))
    for module, prefix in ((F, "torch.nn.functional"), (torch, "torch"), (operator, "operator")):
        if getattr(module, name, None) is target:
            return f"{prefix}.{name}"
    return f"{getattr(target, '__module__', '')}.{name}".lstrip(".")


@dataclass
class Context:
    """What the conversion of one call needs: the traced module, the calibration record, the formats' sources."""

    gm: fx.GraphModule
    config: object  # qfx.QuantizeConfig
    max_abs: dict[str, float]
    minimum: dict[str, float]
    shapes: dict[str, tuple[int, ...]]
    producer: dict[str, FixedQuantizer] = field(default_factory=dict)

    @property
    def learn(self) -> bool:
        return self.config.mode == "qat"

    def act(self, node: fx.Node, width: int | None = None, signed: bool = True) -> FixedFormat:
        """An activation format of ``width`` bits (default: the config's) fitted to ``node``'s calibrated range."""
        c = self.config
        return fitted(width or c.activation_width, self.max_abs.get(node.name, 0.0), signed, c.quant, c.overflow)

    def source(self, value: object, node: fx.Node, what: str) -> FixedQuantizer:
        """The quantizer whose format ``value`` (an input of ``node``) is in; refuses a float tensor."""
        if isinstance(value, fx.Node) and value.name in self.producer:
            return self.producer[value.name]
        got = value.name if isinstance(value, fx.Node) else repr(value)
        raise QuantizeError(
            f"{what}{where(node)}: its input {got} is not a fixed-point tensor (it does not come from a QFX layer)"
        )


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
_sig((torch.mean, "mean"), "input dim keepdim")
_sig((torch.cat, torch.concat), "tensors dim")
_sig((F.interpolate,), "input size scale_factor mode align_corners recompute_scale_factor antialias")
_sig((F.pad,), "input pad mode value")
_sig((operator.add, torch.add, "add", operator.iadd, operator.sub, torch.sub, "sub", operator.isub), "input other")
_sig((operator.neg, torch.neg, "neg"), "input")
_sig((operator.mul, torch.mul, "mul", operator.truediv, torch.div, "div"), "input other")
_sig((F.softmax, torch.softmax, "softmax"), "input dim")
_sig((F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout), "input p training")
_DEFAULTS = {
    "min_val": -1.0, "max_val": 1.0, "negative_slope": 0.01, "stride": None, "padding": 0, "dilation": 1,
    "ceil_mode": False, "return_indices": False, "count_include_pad": True, "divisor_override": None,
    "start_dim": 0, "end_dim": -1, "dim": None, "keepdim": False, "size": None, "scale_factor": None,
    "mode": None, "align_corners": None, "value": None, "min": None, "max": None, "alpha": 1.0, "approximate": "none",
    "beta": 1.0, "threshold": 20.0,
}  # fmt: skip


def _bind(node: fx.Node) -> dict:
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
_DROPOUTS = {F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout}


def _what(node: fx.Node) -> str:
    """``module <name>`` or ``call <function>``: the layer a node is, as messages name it."""
    return f"module {node.target}" if node.op == "call_module" else f"call {call_name(node)}"


def _refuse(node: fx.Node, why: str) -> QuantizeError:
    return QuantizeError(f"call {call_name(node)}{where(node)}: {why}")


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


def _mean(ctx: Context, node: fx.Node, a: dict) -> nn.Module:
    in_shape = ctx.shapes[a["input"].name]
    rank = len(in_shape)
    dims = a["dim"]
    dims = sorted(d % rank for d in _ints(dims, 1)) if dims is not None else None
    if rank < 3 or dims != list(range(2, rank)):
        raise _refuse(node, f"only a mean over every spatial dim of (N, C, ...) is supported, not dims {a['dim']}")
    return QGlobalAvgPool(keepdim=bool(a["keepdim"]), output=ctx.act(node), learn=ctx.learn)


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


def _constant(ctx: Context, value: object) -> torch.Tensor | None:
    """A multiplier that is a constant: a number or a module attribute tensor."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    if isinstance(value, fx.Node) and value.op == "get_attr":
        obj = ctx.gm
        for part in value.target.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, torch.Tensor):
            return obj.detach().to(torch.float64)
    return None


def _broadcast(node: fx.Node, value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A number, or one value per channel shaped to broadcast over (N, C, ...)."""
    if value.numel() != 1 and tuple(value.reshape(-1).shape) != (shape[1],):
        raise _refuse(node, f"a constant of shape {tuple(value.shape)} is neither a number nor one per channel")
    return value.reshape((1, -1) + (1,) * (len(shape) - 2)) if value.numel() != 1 else value


def _constant_affine(ctx: Context, node: fx.Node, x: fx.Node, scale: torch.Tensor, offset: torch.Tensor | None):
    """``x * scale + offset`` (constants) as a QScale: the scale in the weight width, the offset in the bias width."""
    shape, c = ctx.shapes[x.name], ctx.config
    scale = _broadcast(node, scale, shape)
    fmt = fitted(c.weight_width, scale.abs().max().item(), bool((scale < 0).any()), c.weight_quant, Overflow.SAT)
    if offset is None:
        return QScale(scale, fmt, ctx.act(node), learn=ctx.learn), [x]
    offset = _broadcast(node, offset, shape)
    offset_fmt = fitted(c.bias_width, offset.abs().max().item(), bool((offset < 0).any()), c.weight_quant,
                        Overflow.SAT)  # fmt: skip
    return QScale(scale, fmt, ctx.act(node), learn=ctx.learn, offset=offset, offset_format=offset_fmt), [x]


def _scale(ctx: Context, node: fx.Node, a: dict) -> tuple[nn.Module, list]:
    x, other = a["input"], a["other"]
    if node.target in (operator.mul, torch.mul, "mul") and _constant(ctx, x) is not None:
        x, other = other, x
    value = _constant(ctx, other)
    if value is None or not isinstance(x, fx.Node):
        raise _refuse(node, "only multiplication of a tensor by a constant is supported (not of two tensors)")
    if node.target in (operator.truediv, torch.div, "div"):
        value = 1.0 / value
    return _constant_affine(ctx, node, x, value, None)


def _add_constant(ctx: Context, node: fx.Node, a: dict, subtract: bool) -> tuple[nn.Module, list]:
    """``x + d``, ``d + x``, ``x - d``, ``d - x`` for a constant ``d`` (a tensor and a constant)."""
    x, other = a["input"], a["other"]
    one = torch.tensor(1.0, dtype=torch.float64)
    if _constant(ctx, x) is not None and isinstance(other, fx.Node):  # d + x, d - x
        return _constant_affine(ctx, node, other, -one if subtract else one, _constant(ctx, x))
    offset = _constant(ctx, other)
    if offset is None or not isinstance(x, fx.Node):
        raise _refuse(node, "only a tensor and a constant, or two tensors added, are supported")
    return _constant_affine(ctx, node, x, one, -offset if subtract else offset)


def _softmax(ctx: Context, node: fx.Node, a: dict) -> tuple[nn.Module | None, list]:
    x = a["input"]
    shape = ctx.shapes[x.name]
    if a.get("dtype") is not None or a["dim"] is None or a["dim"] % len(shape) != len(shape) - 1:
        raise _refuse(node, f"softmax over dim {a['dim']}: only the last dim (dim=-1, or 1 of (N, F)) is supported")
    mode = ctx.config.softmax
    if mode == "logits":
        return None, [x]
    if mode == "argmax":
        return QArgMax(shape[-1]), [x]
    source = ctx.source(x, node, f"call {call_name(node)}")
    check_table_input(source.format, f"{_what(node)} (softmax){where(node)}")
    widths = {k: getattr(ctx.config, k) for k in ("exp_width", "index_width", "recip_width")}
    out = fitted(ctx.config.activation_width, 1.0, False, ctx.config.quant, ctx.config.overflow)
    return QSoftmax(source, out, learn=ctx.learn, **widths), [x]


def table(ctx: Context, node: fx.Node, function: str, x: object, what: str) -> QTable:
    """A table of ``function`` reading ``x``'s producer format; refused here when that format is too wide. Its
    output format holds the calibrated range of a bounded function (sigmoid, tanh), else the function's whole range
    over the input format (so no table entry saturates)."""
    source = ctx.source(x, node, what)
    check_table_input(source.format, f"{_what(node)} ({function} table){where(node)}")
    c = ctx.config
    if function in BOUNDED:
        lo, hi = BOUNDED[function]
        out = fitted(c.activation_width, min(ctx.max_abs.get(node.name, hi), hi), lo < 0, c.quant, c.overflow)
    else:
        lo, hi = function_range(function, source.format)
        out = fitted(c.activation_width, max(abs(lo), abs(hi)), lo < 0, c.quant, c.overflow)
    return QTable(function, source, out)


def table_function(node: fx.Node, kind: str, *, alpha: float = 1.0, approximate: str = "none", beta: float = 1.0,
                   threshold: float = 20.0) -> str:  # fmt: skip
    """The tabulated function for a GELU / ELU / softplus with these parameters; refuses what has no table."""
    if kind == "gelu":
        if approximate not in ("none", "tanh"):
            raise QuantizeError(f"{node}: GELU approximate={approximate!r} is not one of 'none', 'tanh'")
        return "gelu" if approximate == "none" else "gelu_tanh"
    if kind == "elu" and float(alpha) != 1.0:
        raise QuantizeError(f"{node}: ELU with alpha={alpha} has no table; only alpha=1")
    if kind == "softplus" and (float(beta) != 1.0 or float(threshold) != 20.0):
        raise QuantizeError(f"{node}: softplus with beta={beta}, threshold={threshold} has no table; only 1 and 20")
    return kind


def clamp(ctx: Context, node: fx.Node, source_fmt: FixedFormat, lo: object, hi: object, what: str) -> nn.Module:
    """``torch.clamp(x, lo, hi)`` with number bounds (either may be None: then the input format's own end, which
    never clips), as a clipped ReLU or a clip."""
    if not all(b is None or (isinstance(b, (int, float)) and not isinstance(b, bool)) for b in (lo, hi)):
        raise QuantizeError(f"{what}{where(node)}: the bounds must be numbers (not tensors)")
    if lo is None and hi is None:
        raise QuantizeError(f"{what}{where(node)}: at least one of min and max is needed")
    low = float(lo) if lo is not None else source_fmt.min_code * source_fmt.lsb
    high = float(hi) if hi is not None else source_fmt.max_code * source_fmt.lsb
    if not low < high:
        raise QuantizeError(f"{what}{where(node)}: clamping {source_fmt} to [{low}, {high}] leaves no range")
    return hardtanh(ctx, node, low, high)


def _leaky(ctx: Context, node: fx.Node, slope: float) -> QLeakyReLU:
    c = ctx.config
    return QLeakyReLU(slope, leaky_slope_format(c, slope), ctx.act(node), learn=ctx.learn)


def leaky_slope_format(config, slope: float) -> FixedFormat:
    """The slope's format: the weight width, binary point fitted to the slope (unsigned, 0 < slope < 1)."""
    return fitted(config.weight_width, abs(float(slope)), False, config.weight_quant, Overflow.SAT)


def hardtanh(ctx: Context, node: fx.Node, lo: float, hi: float) -> nn.Module:
    """ReLU6 / Hardtanh: a clipped ReLU when the lower bound is 0, else a clip."""
    if lo == 0:
        return QReLU(ctx.act(node, signed=False), max_value=float(hi), learn=ctx.learn)
    return QClip(lo, hi, ctx.act(node, signed=lo < 0), learn=ctx.learn)


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
        return _leaky(ctx, node, float(a["negative_slope"])), [x], False
    if t in _POOLS:
        module, through = _pool(ctx, node, a, _POOLS[t])
        return module, [x], through
    if t in (torch.mean, "mean"):
        return _mean(ctx, node, a), [x], False
    if t in (torch.cat, torch.concat):
        tensors = list(a["tensors"])
        sources = [ctx.source(s, node, f"call {call_name(node)}") for s in tensors]
        rank = len(ctx.shapes[tensors[0].name])
        dim = a["dim"] if a["dim"] is not None else 0
        if dim % rank != 1:
            raise _refuse(node, f"concatenation along dim {dim}: only channels/features (dim=1) are supported")
        signed = any(s.format.signed for s in sources)
        return QCat(1, ctx.act(node, signed=signed), learn=ctx.learn), tensors, False
    if t is F.interpolate:
        return _interpolate(node, a, ctx), [x], True
    if t is F.pad:
        return _pad(node, a, ctx), [x], True
    if t in (operator.add, torch.add, "add", operator.iadd, operator.sub, torch.sub, "sub", operator.isub):
        subtract = t in (operator.sub, torch.sub, "sub", operator.isub)
        if node.kwargs.get("alpha", 1) != 1:
            raise _refuse(node, "alpha != 1 is not supported")
        tensors = [v for v in (x, a["other"]) if isinstance(v, fx.Node) and _constant(ctx, v) is None]
        if len(tensors) == 2:
            if subtract:
                raise _refuse(node, "the difference of two tensors is not supported (a tensor and a constant is)")
            return QAdd(ctx.act(node), learn=ctx.learn), [x, a["other"]], False
        return (*_add_constant(ctx, node, a, subtract), False)
    if t in (operator.neg, torch.neg, "neg"):
        return (*_constant_affine(ctx, node, x, torch.tensor(-1.0, dtype=torch.float64), None), False)
    if t in (operator.mul, torch.mul, "mul", operator.truediv, torch.div, "div"):
        return (*_scale(ctx, node, a), False)
    if t in (torch.clamp, "clamp", torch.clip, "clip"):
        what = f"call {call_name(node)}"
        return clamp(ctx, node, ctx.source(x, node, what).format, a["min"], a["max"], what), [x], False
    if t in _TABLES:
        what = f"call {call_name(node)}"
        params = {k: a[k] for k in ("alpha", "approximate", "beta", "threshold") if k in a}
        function = table_function(what + where(node), _TABLES[t], **params)
        return table(ctx, node, function, x, what), [x], False
    if t in (F.softmax, torch.softmax, "softmax"):
        return (*_softmax(ctx, node, a), False)
    if t in (F.log_softmax, torch.log_softmax, "log_softmax"):
        if ctx.config.softmax == "table":
            raise _refuse(node, "a log-softmax has no table; it keeps the order of the logits, so quantize "
                          "with QuantizeConfig(softmax='logits') (removed) or softmax='argmax' (the class index)")
        return (*_softmax(ctx, node, a), False)
    raise AssertionError(f"internal: no rule for {call_name(node)}")


def supported_calls() -> list[str]:
    """The function and method calls quantize_ understands (for error messages and docs)."""
    names = set()
    for t in list(_SIGNATURES) + list(_SHAPE_ONLY) + list(_RESHAPES) + list(_TRANSPOSES):
        if isinstance(t, str):
            names.add(f"Tensor.{t}")
        else:
            names.add(_target_name(t))
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
    if not _is_tensor(ctx, node):  # a Python value: shape plumbing, or a tensor leaving the fixed-point model
        from_tensor = any(_is_tensor(ctx, a) for a in node.all_input_nodes)
        query = (node.op == "call_method" and t in _SHAPE_ONLY) or (t is getattr and node.args[1] in _QUERIES)
        if from_tensor and not query:
            raise _refuse(
                node, "turns a tensor into a Python value, which leaves the fixed-point model; only shape queries "
                "(x.shape, x.size(), x.dim()) are supported",
            )  # fmt: skip
        return
    if t is operator.getitem or t is getattr:
        raise _refuse(node, "indexing a tensor is not supported")
    supported = t in _SIGNATURES or t in _RESHAPES or t in _TRANSPOSES
    if not supported or (node.op == "call_method") != isinstance(t, str):
        raise _refuse(node, "not supported by quantize_; supported: " + ", ".join(supported_calls()))
    if t in _TRANSPOSES:
        _check_input_transpose(ctx, node)
        ctx.producer[node.name] = ctx.source(node.args[0], node, f"call {call_name(node)}")
        return
    if t in _RESHAPES:
        src = node.args[0] if node.args else node.kwargs.get("input")
        in_shape, out_shape = ctx.shapes.get(getattr(src, "name", "")), ctx.shapes.get(node.name)
        if in_shape is None or out_shape is None or in_shape[0] != out_shape[0] or len(out_shape) < 2:
            raise _refuse(node, f"reshaping {in_shape} to {out_shape} must keep the batch dimension first")
        ctx.producer[node.name] = ctx.source(src, node, f"call {call_name(node)}")
        return
    a = _bind(node)  # inplace=True is moot: the QFX layer that replaces the call writes a new tensor
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
