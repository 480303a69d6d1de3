"""``quantize_(model, config, calibration)``: turn a float ``nn.Module`` into a QFX one.

The model is traced with ``torch.fx``; ``Linear``, ``Conv2d``, ``BatchNorm2d``, ``ReLU``, pools, ``Flatten`` and
residual adds (``+``, ``torch.add``, ``operator.add``) become QFX layers, and a :class:`~qfx.nn.QInput` quantizes
the model's input. Every format's binary point is calibrated from the min/max of the tensor on calibration data,
so post-training quantization (``mode="ptq"``: formats fixed) and quantization-aware training (``mode="qat"``:
binary points learned from there) start from the same place and compare on equal terms.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import fx, nn

from qfx.format import FixedFormat, Overflow, Quant
from qfx.nn import (
    FixedQuantizer,
    QAdd,
    QAvgPool2d,
    QBatchNorm2d,
    QConv2d,
    QFlatten,
    QGlobalAvgPool2d,
    QInput,
    QLinear,
    QReLU,
)

__all__ = ["LayerConfig", "QuantizeConfig", "quantize_"]


@dataclass(frozen=True)
class LayerConfig:
    """Widths of one layer's tensors (``None``: the model-wide default)."""

    weight_width: int | None = None
    bias_width: int | None = None
    output_width: int | None = None

    def __post_init__(self) -> None:
        for name in ("weight_width", "bias_width", "output_width"):
            if getattr(self, name) is not None:
                _check_width(name, getattr(self, name), "None or ")


def _check_width(name: str, value: object, also: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24:
        raise ValueError(f"{name} must be {also}an integer from 1 to 24, not {value!r}")


@dataclass(frozen=True)
class QuantizeConfig:
    """How :func:`quantize_` quantizes a model.

    Widths are per kind of tensor; binary points are calibrated (then learned in QAT). ``overrides`` maps module
    names (as in ``model.named_modules()``) to a :class:`LayerConfig`.
    """

    input_width: int = 8
    weight_width: int = 8
    bias_width: int = 16
    activation_width: int = 8
    quant: Quant = Quant.RND
    overflow: Overflow = Overflow.SAT
    weight_quant: Quant = Quant.RND_CONV
    mode: Literal["qat", "ptq"] = "qat"
    per_channel_weights: bool = False
    khot: int | None = None
    overrides: Mapping[str, LayerConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("input_width", "weight_width", "bias_width", "activation_width"):
            _check_width(name, getattr(self, name))
        if self.khot is not None and (isinstance(self.khot, bool) or self.khot not in range(1, 9)):
            raise ValueError(f"khot must be None or an integer from 1 to 8, not {self.khot!r}")
        if self.mode not in ("qat", "ptq"):
            raise ValueError(f"mode must be 'qat' or 'ptq', not {self.mode!r}")
        object.__setattr__(self, "quant", Quant.from_name(self.quant))
        object.__setattr__(self, "overflow", Overflow.from_name(self.overflow))
        object.__setattr__(self, "weight_quant", Quant.from_name(self.weight_quant))
        for key, value in self.overrides.items():
            if not isinstance(value, LayerConfig):
                raise ValueError(f"overrides[{key!r}] must be a LayerConfig, not {type(value).__name__}")

    def widths(self, name: str) -> tuple[int, int, int]:
        """(weight, bias, output) widths of module ``name``."""
        o = self.overrides.get(name, LayerConfig())
        return (
            o.weight_width or self.weight_width,
            o.bias_width or self.bias_width,
            o.output_width or self.activation_width,
        )


def int_bits_for(max_abs: float, signed: bool) -> int:
    """Fewest integer bits whose range holds ``max_abs`` (at least -16, for all-zero tensors)."""
    if not max_abs > 0:
        return -16
    bits = math.floor(math.log2(max_abs)) + 1
    return bits + 1 if signed else bits


def _fmt(width: int, max_abs: float, signed: bool, quant: Quant, overflow: Overflow) -> FixedFormat:
    return FixedFormat(width, int_bits_for(max_abs, signed), signed, quant, overflow)


class _Recorder(fx.Interpreter):
    """Runs the float graph and records the max |value| of every node's output."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.max_abs: dict[str, float] = {}
        self.min: dict[str, float] = {}

    def run_node(self, n: fx.Node):
        out = super().run_node(n)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            self.max_abs[n.name] = max(self.max_abs.get(n.name, 0.0), out.detach().abs().max().item())
            self.min[n.name] = min(self.min.get(n.name, math.inf), out.detach().min().item())
        return out


_ADDS = {operator.add, torch.add, operator.iadd}
_RELUS = {torch.relu, torch.nn.functional.relu}
_PASS_THROUGH = (nn.Flatten, nn.MaxPool2d, nn.Dropout, nn.Identity)


def quantize_(
    model: nn.Module, config: QuantizeConfig, calibration: torch.Tensor | list[torch.Tensor]
) -> fx.GraphModule:
    """Quantize ``model`` for QFX; returns the traced, quantized module (``model`` itself is left untouched).

    ``calibration`` is a batch (or a list of batches) of inputs: the binary point of every tensor is set so its
    largest magnitude on that data fits. With ``mode="ptq"`` the formats stay there; with ``"qat"`` they train.
    """
    if not isinstance(config, QuantizeConfig):
        raise TypeError(f"config must be a qfx.QuantizeConfig, not {type(config).__name__}")
    modules = dict(model.named_modules())
    unknown = [name for name in config.overrides if name not in modules]
    if unknown:
        raise ValueError(
            f"overrides name module {unknown[0]!r}, which the model does not have; its modules: "
            + ", ".join(repr(n) for n in modules if n)
        )
    try:
        gm = fx.symbolic_trace(model)
    except SyntaxError:  # torch.fx writes getattr(self, "<name>") without escaping the name
        bad = [n for n in modules if '"' in n or "\\" in n or not n.isprintable()]
        if not bad:
            raise
        raise ValueError(
            f"module {bad[0]!r}: torch.fx cannot trace a submodule whose name holds a double quote, a backslash "
            "or a control character; rename it"
        ) from None
    batches = calibration if isinstance(calibration, list) else [calibration]
    recorder = _Recorder(gm)
    with torch.no_grad():
        for batch in batches:
            recorder.run(batch)
    learn = config.mode == "qat"
    c = config
    modules = dict(gm.named_modules())
    producer: dict[str, FixedQuantizer] = {}  # node name -> quantizer of the format its value is in

    def act(node: fx.Node, width: int, signed: bool = True) -> FixedFormat:
        return _fmt(width, recorder.max_abs.get(node.name, 0.0), signed, c.quant, c.overflow)

    for node in list(gm.graph.nodes):
        if node.op == "placeholder":
            signed = recorder.min.get(node.name, 0.0) < 0
            qin = QInput(act(node, c.input_width, signed), learn_binary_point=learn)
            inputs = sum(isinstance(m, QInput) for m in gm.children())
            name = "qfx_input" if inputs == 0 else f"qfx_input_{inputs}"
            gm.add_submodule(name, qin)
            with gm.graph.inserting_after(node):
                new = gm.graph.call_module(name, (node,))
            node.replace_all_uses_with(new, delete_user_cb=lambda user, new=new: user is not new)
            producer[new.name] = qin
        elif node.op == "call_module":
            module = modules[node.target]
            replacement = _convert(module, node, c, learn, recorder, producer, act)
            if replacement is not None:
                _set_submodule(gm, node.target, replacement)
        elif node.op == "call_function" and node.target in _ADDS | _RELUS:
            if node.target in _RELUS:
                inserted: nn.Module = QReLU(act(node, c.activation_width, signed=False), learn=learn)
            else:
                inserted = QAdd(act(node, c.activation_width), learn=learn)
            name = f"qfx_{type(inserted).__name__.lower()}_{node.name}"
            gm.add_submodule(name, inserted)
            with gm.graph.inserting_after(node):
                new = gm.graph.call_module(name, tuple(node.args[: 1 if node.target in _RELUS else 2]))
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
            producer[new.name] = inserted.output_quantizer
        elif (node.op == "call_method" and node.target in ("flatten", "view", "reshape")) or (
            node.op == "call_function" and node.target in (torch.flatten,)
        ):
            src = node.args[0]
            if isinstance(src, fx.Node) and src.name in producer:
                producer[node.name] = producer[src.name]
    gm.graph.lint()
    gm.recompile()
    return gm


def _convert(module, node, c, learn, recorder, producer, act) -> nn.Module | None:
    """The QFX replacement of one module (``None`` to keep it), recording which quantizer its output follows."""
    src = node.args[0] if node.args else None
    source = producer.get(src.name) if isinstance(src, fx.Node) else None
    weight_w, bias_w, out_w = c.widths(node.target)
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        if source is None:
            raise ValueError(f"module {node.target}: its input does not come from a quantized tensor")
        w_fmt = _fmt(weight_w, module.weight.detach().abs().max().item(), True, c.weight_quant, Overflow.SAT)
        b_max = module.bias.detach().abs().max().item() if module.bias is not None else 0.0
        b_fmt = _fmt(bias_w, b_max, True, c.weight_quant, Overflow.SAT)
        kwargs = dict(
            input=source, weight=w_fmt, bias_format=b_fmt, output=act(node, out_w),
            learn_binary_point=learn, per_channel=c.per_channel_weights, khot=c.khot,
        )  # fmt: skip
        if isinstance(module, nn.Linear):
            q = QLinear(module.in_features, module.out_features, module.bias is not None, **kwargs)
        else:
            if not isinstance(module.padding, tuple) or module.padding_mode != "zeros":
                raise ValueError(f"module {node.target}: only numeric zero padding is supported")
            q = QConv2d(
                module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                module.dilation, module.groups, module.bias is not None, **kwargs,
            )  # fmt: skip
        q.load_state_dict(module.state_dict(), strict=False)
    elif isinstance(module, nn.BatchNorm2d):
        scale = (module.weight / torch.sqrt(module.running_var + module.eps)).detach()
        shift = (module.bias - module.running_mean * scale).detach()
        q = QBatchNorm2d(
            module.num_features, module.eps, module.momentum if module.momentum is not None else 0.1,
            scale=_fmt(weight_w, scale.abs().max().item(), True, c.weight_quant, Overflow.SAT),
            shift=_fmt(bias_w, shift.abs().max().item(), True, c.weight_quant, Overflow.SAT),
            output=act(node, out_w), learn=learn, khot=c.khot,
        )  # fmt: skip
        q.load_state_dict(module.state_dict(), strict=False)
    elif isinstance(module, nn.ReLU):
        q = QReLU(act(node, out_w, signed=False), learn=learn)
    elif isinstance(module, nn.AvgPool2d):
        q = QAvgPool2d(module.kernel_size, module.stride, module.padding, output=act(node, out_w), learn=learn)
    elif isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1)):
        q = _GlobalPoolKeepDims(act(node, out_w), learn)
    elif isinstance(module, _PASS_THROUGH):
        if source is not None:
            producer[node.name] = source
        return QFlatten(module.start_dim, module.end_dim) if isinstance(module, nn.Flatten) else None
    else:
        raise ValueError(f"module {node.target}: {type(module).__name__} is not supported by quantize_")
    producer[node.name] = q.output_quantizer
    return q


class _GlobalPoolKeepDims(QGlobalAvgPool2d):
    """``nn.AdaptiveAvgPool2d(1)`` shape (N, C, 1, 1) with QFX's exact division."""

    def __init__(self, output: FixedFormat, learn: bool) -> None:
        super().__init__(output=output, learn=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[..., None, None]


def _set_submodule(gm: fx.GraphModule, target: str, module: nn.Module) -> None:
    parent_name, _, child = target.rpartition(".")
    parent = gm.get_submodule(parent_name) if parent_name else gm
    setattr(parent, child, module)
