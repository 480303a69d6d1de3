"""How a QFX layer multiplies and accumulates exactly: the plan (float32, float32 in weight limbs, or float64), chosen
once per layer from the width bounds of its formats, and the autograd function that runs it.

A float32 product sum is exact when every partial sum, in whatever order the library adds, is an integer number of
``lsb_x * lsb_w`` below 2**24 in magnitude: that holds when ``n * max|code_x| * max|code_w| <= 2**24``. Where it
does not, the weight codes are split into limbs of fewer bits, each limb's sum is exact in float32 and float64 adds
them; where even three limbs do not suffice, the layer computes in float64. The bound depends on widths and
signedness only (never on data or on the binary points a QAT run moves), so the plan is fixed per layer.

Only the forward value needs to be exact: the gradient of a product sum is the same whether or not its weight was
split, so the backward pass runs one float32 product per operand (the operation's own backward for convolutions
and linear layers, a recomputation through autograd for any other operation), not one per limb.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from qfx.nn.exact import exact_arithmetic

__all__ = ["MacPlan", "exact_mac", "plan_mac"]

_F32_EXACT = 2**24
_F64_EXACT = 2**53


def _max_code(width: int, signed: bool) -> int:
    return 1 << (width - 1) if signed else (1 << width) - 1


@dataclass(frozen=True)
class MacPlan:
    """``limbs`` float32 products summed in float64 (1: a plain float32 product; 0: float64 throughout)."""

    limbs: int
    step_bits: int  # bits per weight limb below the top one

    def describe(self) -> str:
        """``float32``, ``float32 x 2 limbs`` or ``float64``: what the layer's multiply-accumulate runs in."""
        if self.limbs == 0:
            return "float64"
        return "float32" if self.limbs == 1 else f"float32 x {self.limbs} limbs"


def plan_mac(x_width: int, x_signed: bool, w_width: int, w_signed: bool, terms: int) -> MacPlan:
    """The cheapest exact plan for sums of ``terms`` products of such codes (widths are upper bounds)."""
    max_x = _max_code(x_width, x_signed)
    if terms * max_x * _max_code(w_width, w_signed) > _F64_EXACT:
        raise ValueError(
            f"a sum of {terms} products of {x_width}- and {w_width}-bit codes may need more than 53 bits: "
            "no float holds it exactly"
        )
    for limbs in (1, 2, 3):
        step = math.ceil(w_width / limbs)
        # limbs below the top hold step bits (0 .. 2**step - 1); the top one the rest of the code, floored
        top = _max_code(w_width, w_signed) >> (step * (limbs - 1)) if limbs > 1 else _max_code(w_width, w_signed)
        piece = max(top, (1 << step) - 1) if limbs > 1 else top
        if terms * max_x * piece <= _F32_EXACT:
            return MacPlan(limbs, step)
    return MacPlan(0, 0)


def weight_limbs(w: torch.Tensor, frac_bits: torch.Tensor, plan: MacPlan) -> list[torch.Tensor]:
    """``w`` (values of a format with ``frac_bits``, per tensor or per output channel) as ``plan.limbs`` exact
    pieces summing to it: the top ones are multiples of ``2**(i * step_bits)`` LSBs, the last is the remainder."""
    if plan.limbs == 1:
        return [w]
    from qfx.kernel import exp2_exact

    frac = torch.round(frac_bits.detach())
    if frac.dim() == 1:
        frac = frac.reshape((-1,) + (1,) * (w.dim() - 1))
    pieces, rest = [], w.detach()
    for i in range(plan.limbs - 1, 0, -1):
        unit = exp2_exact(i * plan.step_bits - frac).to(w.dtype)  # exact power-of-two arithmetic
        top = torch.floor(rest / unit) * unit
        pieces.append(top)
        rest = rest - top
    return [*pieces, rest]


Op = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _vjp(layer: nn.Module, op: Op, x: torch.Tensor, w: torch.Tensor, g: torch.Tensor, needs: tuple[bool, bool]):
    """(grad_x, grad_w) of ``op(x, w)`` for the cotangent ``g``, in float32, each None where not needed."""
    if isinstance(layer, nn.Linear):
        gx = g @ w if needs[0] else None
        gw = g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1]) if needs[1] else None
        return gx, gw
    conv = isinstance(layer, nn.modules.conv._ConvNd)
    if conv and not isinstance(layer.padding, str) and layer.padding_mode == "zeros" and not layer.transposed:
        gx, gw, _ = torch.ops.aten.convolution_backward(
            g, x, w, None, layer.stride, layer.padding, layer.dilation, False, [0] * len(layer.stride),
            layer.groups, [needs[0], needs[1], False],
        )  # fmt: skip
        return gx, gw
    with torch.enable_grad():  # any other operation: recompute it once and differentiate
        xd, wd = x.detach().requires_grad_(needs[0]), w.detach().requires_grad_(needs[1])
        y = op(xd, wd)
        wanted = [t for t in (xd, wd) if t.requires_grad]
        grads = iter(torch.autograd.grad(y, wanted, g))
        return (next(grads) if needs[0] else None), (next(grads) if needs[1] else None)


class _ExactMac(torch.autograd.Function):
    """Exact ``op(x, w)`` by the plan (float64 result); float32 gradients, one product per operand."""

    @staticmethod
    def forward(ctx, x, w, frac_bits, plan: MacPlan, op: Op, layer: nn.Module):
        ctx.save_for_backward(x, w)
        ctx.op, ctx.layer = op, layer
        with exact_arithmetic(x.device.type):
            if plan.limbs == 0:
                return op(x.to(torch.float64), w.to(torch.float64))
            xf = x.to(torch.float32)
            acc = None
            for piece in weight_limbs(w.to(torch.float32), frac_bits, plan):
                part = op(xf, piece).to(torch.float64)
                acc = part if acc is None else acc.add_(part)
            return acc

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        gx, gw = _vjp(ctx.layer, ctx.op, x.to(torch.float32), w.to(torch.float32), grad.to(torch.float32), needs)
        gx = gx.to(x.dtype) if gx is not None else None
        gw = gw.to(w.dtype) if gw is not None else None
        return gx, gw, None, None, None, None


def exact_mac(layer: nn.Module, op: Op, x: torch.Tensor, w: torch.Tensor, frac_bits: torch.Tensor, plan: MacPlan):
    """``op(x, w)`` (a product sum, linear in each operand) computed exactly by ``plan``: float32 for a one-limb
    plan, float64 otherwise. ``frac_bits`` are the weight format's (the limb split needs the LSB)."""
    if plan.limbs == 1:
        with exact_arithmetic(x.device.type):
            return op(x.to(torch.float32), w.to(torch.float32))
    return _ExactMac.apply(x, w, frac_bits, plan, op, layer)
