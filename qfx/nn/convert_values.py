"""Conversion rules of :func:`qfx.quantize_` for calls that compute values: constant scales and offsets, softmax,
tabulated functions, clamps, ReLU6 / Hardtanh and leaky ReLU (the shape and pooling rules are in
:mod:`qfx.nn.convert`)."""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

from qfx.format import FixedFormat, Overflow
from qfx.nn.activations import QArgMax, QClip, QLeakyReLU, QPReLU, QScale, QSoftmax, QTable
from qfx.nn.convert_base import Context, QuantizeError, call_name, fitted, where
from qfx.nn.convert_base import refuse as _refuse
from qfx.nn.convert_base import what as _what
from qfx.nn.elementwise import QReLU
from qfx.tables import BOUNDED, check_table_input, function_range

__all__ = [
    "add_constant", "clamp", "constant", "constant_affine", "hardtanh", "leaky", "leaky_slope_format",
    "multiply_constant", "softmax", "table", "table_function",
]  # fmt: skip


def is_constant(node: object) -> bool:
    """A module attribute, or a computation on attributes and numbers only (``self.mean.view(1, -1, 1)``)."""
    if not isinstance(node, fx.Node):
        return False
    if node.op == "get_attr":
        return True
    inputs = node.all_input_nodes
    return node.op in ("call_function", "call_method") and bool(inputs) and all(is_constant(n) for n in inputs)


def constant(ctx: Context, value: object) -> torch.Tensor | None:
    """A multiplier or offset that is a constant: a number, a module attribute tensor, or a computation on them
    (evaluated here, in float64)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    if not is_constant(value):
        return None
    if value.op == "get_attr":
        obj = ctx.gm
        for part in value.target.split("."):
            obj = getattr(obj, part)
        return obj.detach().to(torch.float64) if isinstance(obj, torch.Tensor) else None
    args, kwargs = fx.node.map_arg((value.args, value.kwargs), lambda n: constant(ctx, n))
    try:
        with torch.no_grad():
            if value.op == "call_method":
                out = getattr(args[0], value.target)(*args[1:], **kwargs)
            else:
                out = value.target(*args, **kwargs)
    except Exception:  # not a computation on tensors (an attribute that is a module, ...): not a constant
        return None
    return out.detach().to(torch.float64) if isinstance(out, torch.Tensor) else None


def broadcast(node: fx.Node, value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A number, or one value per channel shaped to broadcast over (N, C, ...)."""
    if value.numel() != 1 and tuple(value.reshape(-1).shape) != (shape[1],):
        raise _refuse(node, f"a constant of shape {tuple(value.shape)} is neither a number nor one per channel")
    return value.reshape((1, -1) + (1,) * (len(shape) - 2)) if value.numel() != 1 else value


def constant_affine(ctx: Context, node: fx.Node, x: fx.Node, scale: torch.Tensor, offset: torch.Tensor | None):
    """``x * scale + offset`` (constants) as a QScale: the scale in the weight width, the offset in the bias width."""
    shape, c = ctx.shapes[x.name], ctx.config
    scale = broadcast(node, scale, shape)
    fmt = fitted(c.weight_width, scale.abs().max().item(), bool((scale < 0).any()), c.weight_quant, Overflow.SAT)
    if offset is None:
        return QScale(scale, fmt, ctx.act(node), learn=ctx.learn), [x]
    offset = broadcast(node, offset, shape)
    offset_fmt = fitted(c.bias_width, offset.abs().max().item(), bool((offset < 0).any()), c.weight_quant,
                        Overflow.SAT)  # fmt: skip
    return QScale(scale, fmt, ctx.act(node), learn=ctx.learn, offset=offset, offset_format=offset_fmt), [x]


def multiply_constant(ctx: Context, node: fx.Node, a: dict) -> tuple[nn.Module, list]:
    x, other = a["input"], a["other"]
    if node.target in (operator.mul, torch.mul, "mul", operator.imul) and constant(ctx, x) is not None:
        x, other = other, x
    value = constant(ctx, other)
    if value is None or not isinstance(x, fx.Node):
        if node.target in (operator.truediv, torch.div, "div"):
            raise _refuse(node, "only division by a constant is supported (not by a tensor)")
        raise _refuse(node, "only a product of a tensor and a constant, or of two tensors, is supported")
    if node.target in (operator.truediv, torch.div, "div"):
        value = 1.0 / value
    return constant_affine(ctx, node, x, value, None)


def add_constant(ctx: Context, node: fx.Node, a: dict, subtract: bool) -> tuple[nn.Module, list]:
    """``x + d``, ``d + x``, ``x - d``, ``d - x`` for a constant ``d`` (a tensor and a constant)."""
    x, other = a["input"], a["other"]
    one = torch.tensor(1.0, dtype=torch.float64)
    if constant(ctx, x) is not None and isinstance(other, fx.Node):  # d + x, d - x
        return constant_affine(ctx, node, other, -one if subtract else one, constant(ctx, x))
    offset = constant(ctx, other)
    if offset is None or not isinstance(x, fx.Node):
        raise _refuse(node, "only a tensor and a constant, or two tensors added, are supported")
    return constant_affine(ctx, node, x, one, -offset if subtract else offset)


#: Why a log-softmax is refused under softmax="table" (for the module and the function alike).
LOG_SOFTMAX_WHY = ("a log-softmax has no table; it keeps the order of the logits, so quantize with "
                   "QuantizeConfig(softmax='logits') (removed) or softmax='argmax' (the class index)")  # fmt: skip


def softmax(ctx: Context, node: fx.Node, a: dict) -> tuple[nn.Module | None, list]:
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


def leaky(ctx: Context, node: fx.Node, slope: float) -> QLeakyReLU:
    c = ctx.config
    return QLeakyReLU(slope, leaky_slope_format(c, slope), ctx.act(node), learn=ctx.learn)


def prelu(
    ctx: Context, node: fx.Node, weight: torch.Tensor, weight_width: int | None = None, out_width: int | None = None
) -> QPReLU:
    """PReLU with ``weight``'s slopes in the weight width (signed when one is negative), binary point fitted."""
    c = ctx.config
    w = weight.detach().to(torch.float64)
    fmt = fitted(weight_width or c.weight_width, w.abs().max().item(), bool(w.min() < 0), c.weight_quant, Overflow.SAT)
    return QPReLU(w, fmt, ctx.act(node, out_width), learn=ctx.learn)


def leaky_slope_format(config, slope: float) -> FixedFormat:
    """The slope's format: the weight width, binary point fitted to the slope (unsigned, 0 < slope < 1)."""
    return fitted(config.weight_width, abs(float(slope)), False, config.weight_quant, Overflow.SAT)


def hardtanh(ctx: Context, node: fx.Node, lo: float, hi: float) -> nn.Module:
    """ReLU6 / Hardtanh: a clipped ReLU when the lower bound is 0, else a clip."""
    if lo == 0:
        return QReLU(ctx.act(node, signed=False), max_value=float(hi), learn=ctx.learn)
    return QClip(lo, hi, ctx.act(node, signed=lo < 0), learn=ctx.learn)
