"""Trainable widths and the resource cost that keeps them small."""

from __future__ import annotations

import torch
from torch import nn

from qfx.nn.layers import _QMac
from qfx.nn.quantizer import FixedQuantizer

__all__ = ["enable_width_learning", "resource_cost"]


def enable_width_learning(model: nn.Module, max_width: int) -> None:
    """Make the width of every quantizer in ``model`` trainable, up to ``max_width`` bits."""
    if not 1 <= max_width <= 24:
        raise ValueError(f"max_width must be between 1 and 24, not {max_width}")
    for q in model.modules():
        if isinstance(q, FixedQuantizer):
            if q.format.width > max_width:
                raise ValueError(f"a quantizer is already {q.format.width} bits wide, more than max_width={max_width}")
            q.learn_width = True
            q.max_width = max_width
            q.width.requires_grad_(True)


def resource_cost(model: nn.Module) -> torch.Tensor:
    """Sum over compute layers of input bits x weight bits x multiply-accumulates (of the last forward pass).

    Differentiable in the (trainable) widths: add ``factor * resource_cost(model)`` to the loss to trade accuracy
    for hardware. Call it after a forward pass, which records each layer's MAC count.
    """
    total: torch.Tensor | None = None
    for layer in model.modules():
        if isinstance(layer, _QMac):
            if layer.last_macs is None:
                raise ValueError("resource_cost needs a forward pass first (it counts the MACs of the last one)")
            source = layer.input_source
            in_bits = source.width.mean() if isinstance(source, FixedQuantizer) else torch.tensor(float(source.width))
            w_bits = layer.weight_quantizer.width.mean()
            term = in_bits.to(w_bits.device) * w_bits * float(layer.last_macs)
            total = term if total is None else total + term
    if total is None:
        raise ValueError("the model has no QLinear or QConv2d layer")
    return total
