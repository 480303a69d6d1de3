"""What every conversion rule of :func:`qfx.quantize_` shares: the error, the context of one call, formats fitted
to calibrated ranges, and how messages name a call and its line in ``forward``."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import fx
from torch.nn import functional as F

from qfx.format import FixedFormat, Overflow, Quant
from qfx.nn.quantizer import FixedQuantizer

__all__ = ["Context", "QuantizeError", "call_name", "fitted", "int_bits_for", "refuse", "target_name", "what", "where"]


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
    return f"Tensor.{node.target}" if node.op == "call_method" else target_name(node.target)


def target_name(target: object) -> str:
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
    values: dict[str, object] = field(default_factory=dict)  # shape queries' values (x.shape[2:], x.size(-1))

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


def what(node: fx.Node) -> str:
    """``module <name>`` or ``call <function>``: the layer a node is, as messages name it."""
    return f"module {node.target}" if node.op == "call_module" else f"call {call_name(node)}"


def refuse(node: fx.Node, why: str) -> QuantizeError:
    """The error for a call that cannot be made fixed point, naming it, its line, and why."""
    return QuantizeError(f"call {call_name(node)}{where(node)}: {why}")
