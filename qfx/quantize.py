"""``quantize_(model, config, calibration)``: turn a float ``nn.Module`` into a QFX one.

The model is traced with ``torch.fx``; modules (``Linear``, ``Conv1d``/``Conv2d``, batch norms, activations,
pools, ``Upsample``, ``Softmax``, ...) and their functional forms and tensor methods (``F.relu``,
``F.max_pool2d``, ``torch.cat``, ``x.view(x.size(0), -1)``, ``torch.sigmoid``, ...: :mod:`qfx.nn.convert`) become
QFX layers, and a :class:`~qfx.nn.QInput` quantizes the model's input. Anything else is refused by one error naming
the call or module and its line in ``forward``. Every format's binary point is calibrated from the min/max of the
tensor on calibration data, so post-training quantization (``mode="ptq"``: formats fixed) and quantization-aware
training (``mode="qat"``: binary points learned from there) start from the same place and compare on equal terms.
"""

from __future__ import annotations

import math
import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import fx, nn
from torch.fx import _symbolic_trace

from qfx.format import FixedFormat, Overflow, Quant
from qfx.nn import (
    QBatchNorm1d,
    QBatchNorm2d,
    QConv1d,
    QConv2d,
    QFlatten,
    QGlobalAvgPool2d,
    QInput,
    QLinear,
    QMaxPool1d,
    QPad,
    QReLU,
    QUpsample,
)
from qfx.nn.convert import Context, QuantizeError, fitted, int_bits_for, where
from qfx.nn.convert import adaptive_max_pool as _adaptive_max_pool
from qfx.nn.convert import adaptive_pool as _adaptive_pool
from qfx.nn.convert import avg_pool as _avg_pool
from qfx.nn.convert import convert_call as _convert_call
from qfx.nn.convert_values import LOG_SOFTMAX_WHY
from qfx.nn.convert_values import hardtanh as _hardtanh
from qfx.nn.convert_values import is_constant as _is_constant
from qfx.nn.convert_values import leaky_slope_format as _leaky_slope_format
from qfx.nn.convert_values import prelu as _prelu
from qfx.nn.convert_values import table as _table
from qfx.nn.convert_values import table_function as _table_function

__all__ = ["LayerConfig", "QuantizeConfig", "QuantizeError", "int_bits_for", "quantize_"]


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
    names (as in ``model.named_modules()``) to a :class:`LayerConfig`. Constants that are not weights take the
    weight width too: a LeakyReLU slope and the factor of ``x * c`` are rounded into ``weight_width`` bits (binary
    point fitted to the value; exact constants the hardware multiplies by). Sigmoid/tanh tables output
    ``activation_width`` bits with the binary point set at calibration (fixed: the functions are bounded).

    ``softmax`` says what a softmax becomes: ``"table"`` the fixed-point softmax of :mod:`qfx.tables` (exp and
    reciprocal tables of ``exp_width``/``index_width``/``recip_width`` bits), ``"argmax"`` the index of the largest
    input (the class the hardware reports), ``"logits"`` nothing (the model outputs its logits).
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
    softmax: Literal["table", "argmax", "logits"] = "table"
    exp_width: int = 12
    index_width: int = 10
    recip_width: int = 12

    def __post_init__(self) -> None:
        for name in ("input_width", "weight_width", "bias_width", "activation_width"):
            _check_width(name, getattr(self, name))
        if self.khot is not None and (isinstance(self.khot, bool) or self.khot not in range(1, 9)):
            raise ValueError(f"khot must be None or an integer from 1 to 8, not {self.khot!r}")
        if self.mode not in ("qat", "ptq"):
            raise ValueError(f"mode must be 'qat' or 'ptq', not {self.mode!r}")
        if self.softmax not in ("table", "argmax", "logits"):
            raise ValueError(f"softmax must be 'table', 'argmax' or 'logits', not {self.softmax!r}")
        for name in ("exp_width", "index_width", "recip_width"):
            _check_width(name, getattr(self, name))
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


def _fmt(width: int, max_abs: float, signed: bool, quant: Quant, overflow: Overflow) -> FixedFormat:
    return fitted(width, max_abs, signed, quant, overflow)


_TORCH_DIR = os.path.dirname(torch.__file__)
_OWN_FILES = (os.path.abspath(__file__),)


class _Tracer(fx.Tracer):
    """``torch.fx`` tracing that remembers each node's line in the user's ``forward`` (for error messages), and
    lets ``forward`` loop over a shape (``for s in x.size()[1:]``, as PyTorch's LeNet tutorial does): the shape is
    computed on ``example`` at two batch sizes and used as Python ints when it does not depend on the batch."""

    def __init__(self, example: torch.Tensor | None = None) -> None:
        super().__init__()
        self.example = example

    def trace(self, root, concrete_args=None) -> fx.Graph:
        self._depth = len(traceback.extract_stack())  # frames at and above this call are not the model's
        return super().trace(root, concrete_args)

    def iter(self, obj: fx.Proxy):
        if self.example is None or sum(n.op == "placeholder" for n in self.graph.nodes) != 1:
            return super().iter(obj)
        try:
            values = [self._evaluate(obj.node, x) for x in (self.example[:1], torch.cat([self.example[:1]] * 2))]
        except Exception:  # not plain shape plumbing: torch.fx's own error below
            return super().iter(obj)
        if not isinstance(values[0], (tuple, list)) or not all(isinstance(v, int) for v in values[0]):
            return super().iter(obj)  # a tensor: torch.fx's own error
        if values[0] != values[1]:
            raise fx.proxy.TraceError(f"forward iterates over {obj.node.name}, a shape that holds the batch size")
        return iter(values[0])

    def _evaluate(self, node: fx.Node, x: torch.Tensor):
        """``node``'s value for input ``x``, running the graph traced so far (shape plumbing: a few small ops)."""
        graph, env = fx.Graph(), {}
        for n in self.graph.nodes:
            env[n] = graph.node_copy(n, lambda a: env[a])
            if n is node:
                break
        graph.output(env[node])
        gm = fx.GraphModule(self.root, graph)
        # tracing patches nn.Module's __call__ and __getattr__ (calls become nodes): run with torch's own ones
        patched = nn.Module.__call__, nn.Module.__getattr__
        own = _symbolic_trace._orig_module_call, _symbolic_trace._orig_module_getattr
        nn.Module.__call__, nn.Module.__getattr__ = own
        was = self.root.training
        try:
            self.root.eval()
            with torch.no_grad():
                return gm(x)
        finally:
            self.root.train(was)
            nn.Module.__call__, nn.Module.__getattr__ = patched

    def create_node(self, *args, **kwargs) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        for frame in reversed(traceback.extract_stack()[self._depth :]):
            if not frame.filename.startswith(_TORCH_DIR) and os.path.abspath(frame.filename) not in _OWN_FILES:
                node.meta["qfx_frame"] = (frame.filename, frame.lineno, frame.line, frame.name)
                break
        return node


class _Recorder(fx.Interpreter):
    """Runs the float graph and records every tensor node's max |value|, minimum and shape, and the values of shape
    queries (numbers and tuples of them), which calls may take as arguments (a pool's kernel ``x.shape[2:]``)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.max_abs: dict[str, float] = {}
        self.min: dict[str, float] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.values: dict[str, object] = {}

    def run_node(self, n: fx.Node):
        out = super().run_node(n)
        if isinstance(out, (int, float, tuple, list)) and _is_plain(out):
            self.values[n.name] = tuple(out) if isinstance(out, (tuple, list)) else out
        if isinstance(out, torch.Tensor):
            self.shapes[n.name] = tuple(out.shape)
            if out.is_floating_point() and out.numel():
                self.max_abs[n.name] = max(self.max_abs.get(n.name, 0.0), out.detach().abs().max().item())
                self.min[n.name] = min(self.min.get(n.name, math.inf), out.detach().min().item())
        return out


def _is_plain(value: object) -> bool:
    """A number, or a (nested) tuple or list of numbers: a shape query's value, never a tensor."""
    if isinstance(value, (tuple, list)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _trace(model: nn.Module, modules: dict[str, nn.Module], example: torch.Tensor | None = None) -> fx.GraphModule:
    try:
        return fx.GraphModule(model, _Tracer(example).trace(model), type(model).__name__)
    except SyntaxError:  # torch.fx writes getattr(self, "<name>") without escaping the name
        bad = [n for n in modules if '"' in n or "\\" in n or not n.isprintable()]
        if not bad:
            raise
        raise ValueError(
            f"module {bad[0]!r}: torch.fx cannot trace a submodule whose name holds a double quote, a backslash "
            "or a control character; rename it"
        ) from None
    except RuntimeError as error:
        if "'len' is not supported in symbolic tracing" not in str(error):
            raise
        raise QuantizeError(
            f"forward of {type(model).__name__} calls len() on a tensor: that is its batch size, which quantize_ "
            "cannot trace; write x.size(0) or x.shape[0] instead"
        ) from None
    except TypeError as error:  # int(), float() or bool() of a traced value
        if "Proxy" not in str(error):
            raise
        raise QuantizeError(
            f"forward of {type(model).__name__} turns a traced value into a Python number ({error}); quantize_ "
            "supports shape queries used as they are (x.size(1), x.shape[2:], a loop over x.size()[1:])"
        ) from None
    except fx.proxy.TraceError as error:  # e.g. iterating a tensor (x.chunk(2) unpacked, a loop over x)
        raise QuantizeError(
            f"forward of {type(model).__name__} cannot be traced by torch.fx: {error}; quantize_ needs a forward "
            "whose control flow does not depend on tensor values (no loop over or unpacking of a tensor, nor of a "
            "shape that holds the batch size)"
        ) from None


def quantize_(
    model: nn.Module, config: QuantizeConfig, calibration: torch.Tensor | list[torch.Tensor]
) -> fx.GraphModule:
    """Quantize ``model`` for QFX; returns the traced, quantized module (``model`` itself is left untouched).

    ``calibration`` is a batch (or a list of batches) of inputs: the binary point of every tensor is set so its
    largest magnitude on that data fits. With ``mode="ptq"`` the formats stay there; with ``"qat"`` they train.
    Raises :class:`QuantizeError` naming the first call or module (and its line) that cannot be fixed point.
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
    batches = calibration if isinstance(calibration, list) else [calibration]
    gm = _trace(model, modules, batches[0] if batches and isinstance(batches[0], torch.Tensor) else None)
    recorder = _Recorder(gm)
    modes = [(m, m.training) for m in gm.modules()]  # leaves are the user's modules: put their modes back after
    modes[0] = (gm, model.training)
    gm.eval()  # calibrate on the evaluation graph (batch norm running statistics, no dropout)
    with torch.no_grad():
        for batch in batches:
            recorder.run(batch)
    for m, training in modes:
        m.training = training
    ctx = Context(gm, config, recorder.max_abs, recorder.min, recorder.shapes, values=recorder.values)
    modules = dict(gm.named_modules())

    def insert(node: fx.Node, module: nn.Module, inputs: list) -> fx.Node:
        name = f"qfx_{type(module).__name__.lower()}_{node.name}"
        gm.add_submodule(name, module)
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(name, tuple(inputs))
        new.meta.update(node.meta)
        for record in (recorder.shapes, recorder.max_abs, recorder.min):
            if node.name in record:
                record[new.name] = record[node.name]
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        return new

    for node in list(gm.graph.nodes):
        if node.op == "placeholder":
            signed = recorder.min.get(node.name, 0.0) < 0
            qin = QInput(ctx.act(node, config.input_width, signed), learn_binary_point=ctx.learn)
            inputs = sum(isinstance(m, QInput) for m in gm.children())
            name = "qfx_input" if inputs == 0 else f"qfx_input_{inputs}"
            gm.add_submodule(name, qin)
            with gm.graph.inserting_after(node):
                new = gm.graph.call_module(name, (node,))
            node.replace_all_uses_with(new, delete_user_cb=lambda user, new=new: user is not new)
            ctx.producer[new.name] = qin
            recorder.shapes[new.name] = recorder.shapes[node.name]
        elif node.op == "call_module":
            _check_single_use(gm, node, modules[node.target])
            replacement = _convert(modules[node.target], node, ctx)
            if replacement is not None:
                _set_submodule(gm, node.target, replacement)
        elif node.op in ("call_function", "call_method"):
            _convert_call(ctx, node, insert)
        elif node.op == "output":
            for out in node.all_input_nodes:
                ctx.source(out, out, f"the model's output {out.name}")
    for node in reversed(list(gm.graph.nodes)):  # constant computations whose readers took their values
        unused = not node.users and node.op in ("call_function", "call_method", "get_attr")
        if unused and (_is_constant(node) or node.name in recorder.values):  # or shape queries read as values
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


_IDENTITIES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
_TABLE_MODULES = {
    nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardsigmoid: "hardsigmoid", nn.Hardswish: "hardswish", nn.SiLU: "silu",
    nn.Mish: "mish", nn.ELU: "elu", nn.GELU: "gelu", nn.Softplus: "softplus",
}  # fmt: skip


def _convert(module: nn.Module, node: fx.Node, ctx: Context) -> nn.Module | None:
    """The QFX replacement of one module (``None`` to keep it), recording which quantizer its output follows."""
    c, learn, act = ctx.config, ctx.learn, ctx.act
    what = f"module {node.target}"
    src = node.args[0] if node.args else None
    source = ctx.source(src, node, what) if isinstance(src, fx.Node) and src.name in ctx.producer else None
    weight_w, bias_w, out_w = c.widths(node.target)
    in_shape = ctx.shapes.get(src.name) if isinstance(src, fx.Node) else None

    def refuse(why: str) -> QuantizeError:
        return QuantizeError(f"{what} ({type(module).__name__}){where(node)}: {why}")

    if not isinstance(module, _IDENTITIES) and source is None:
        ctx.source(src, node, what)  # raises: the input is not fixed point
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)) and type(module) in (nn.Linear, nn.Conv1d, nn.Conv2d):
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
            if module.padding_mode != "zeros":
                raise refuse(f"padding_mode={module.padding_mode!r}: only zero padding is supported")
            cls = QConv1d if isinstance(module, nn.Conv1d) else QConv2d
            q = cls(
                module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                module.dilation, module.groups, module.bias is not None, **kwargs,
            )  # fmt: skip
        q.load_state_dict(module.state_dict(), strict=False)
    elif type(module) in (nn.BatchNorm1d, nn.BatchNorm2d):
        if not module.affine or not module.track_running_stats:
            raise refuse("batch norm needs affine=True and track_running_stats=True")
        scale = (module.weight / torch.sqrt(module.running_var + module.eps)).detach()
        shift = (module.bias - module.running_mean * scale).detach()
        cls = QBatchNorm1d if isinstance(module, nn.BatchNorm1d) else QBatchNorm2d
        q = cls(
            module.num_features, module.eps, module.momentum if module.momentum is not None else 0.1,
            scale=_fmt(weight_w, scale.abs().max().item(), True, c.weight_quant, Overflow.SAT),
            shift=_fmt(bias_w, shift.abs().max().item(), True, c.weight_quant, Overflow.SAT),
            output=act(node, out_w), learn=learn, khot=c.khot,
        )  # fmt: skip
        q.load_state_dict(module.state_dict(), strict=False)
    elif type(module) is nn.ReLU:
        q = QReLU(act(node, out_w, signed=False), learn=learn)
    elif type(module) in (nn.ReLU6, nn.Hardtanh):
        q = _hardtanh(ctx, node, float(module.min_val), float(module.max_val))
    elif type(module) is nn.LeakyReLU:
        slope = float(module.negative_slope)
        from qfx.nn import QLeakyReLU

        q = QLeakyReLU(slope, _leaky_slope_format(c, slope), act(node, out_w), learn=learn)
    elif type(module) is nn.PReLU:
        q = _prelu(ctx, node, module.weight, weight_w, out_w)
    elif type(module) in (nn.AvgPool1d, nn.AvgPool2d):
        dims = 1 if isinstance(module, nn.AvgPool1d) else 2
        pair = nn.modules.utils._single if dims == 1 else nn.modules.utils._pair
        k, s, p = (pair(v) for v in (module.kernel_size, module.stride or module.kernel_size, module.padding))
        if module.ceil_mode or (any(p) and not module.count_include_pad) or getattr(module, "divisor_override", None):
            raise refuse("ceil_mode, count_include_pad=False and divisor_override are not supported")
        q = _avg_pool(ctx, node, k, s, p)
    elif type(module) in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d):
        dims = 1 if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)) else 2
        size = module.output_size
        size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * dims
        named = f"{what} ({type(module).__name__})"
        if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            q = _adaptive_pool(ctx, node, in_shape, size, named)
        elif module.return_indices:
            raise refuse("max pooling with return_indices is not supported")
        else:
            ctx.producer[node.name] = source
            return _adaptive_max_pool(node, in_shape, size, named)
    elif type(module) in _TABLE_MODULES:
        params = {k: getattr(module, k) for k in ("alpha", "approximate", "beta", "threshold") if hasattr(module, k)}
        named = f"{what} ({type(module).__name__}){where(node)}"
        function = _table_function(named, _TABLE_MODULES[type(module)], **params)
        q = _table(ctx, node, function, src, what)
    elif type(module) is nn.Softmax:
        return _softmax_module(module, node, ctx, refuse)
    elif type(module) is nn.LogSoftmax:
        if c.softmax == "table":
            raise refuse(LOG_SOFTMAX_WHY)
        return _softmax_module(module, node, ctx, refuse)
    elif type(module) in (nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d):
        if module.value != 0:
            raise refuse(f"padding with the value {module.value} is not supported; only zero padding")
        if len(in_shape) != len(module.padding) // 2 + 2:
            raise refuse(f"padding {module.padding} of a {len(in_shape)}-D tensor: only the spatial dims")
        ctx.producer[node.name] = source
        return QPad(tuple(module.padding))
    elif type(module) in (nn.Upsample, nn.UpsamplingNearest2d):
        if module.mode != "nearest":
            raise refuse(f"mode {module.mode!r} is not supported; only 'nearest' moves values exactly")
        out_shape = ctx.shapes[node.name]
        if any(o % i for i, o in zip(in_shape[2:], out_shape[2:], strict=True)):
            raise refuse(f"upsampling {tuple(in_shape[2:])} to {tuple(out_shape[2:])} is not by integer factors")
        ctx.producer[node.name] = source
        return QUpsample(tuple(o // i for i, o in zip(in_shape[2:], out_shape[2:], strict=True)))
    elif type(module) in (nn.MaxPool1d, nn.MaxPool2d):
        pair = nn.modules.utils._single if isinstance(module, nn.MaxPool1d) else nn.modules.utils._pair
        if module.ceil_mode or module.return_indices or pair(module.dilation) != pair(1):
            raise refuse("max pooling with ceil_mode, dilation or return_indices is not supported")
        ctx.producer[node.name] = source
        return (
            QMaxPool1d(module.kernel_size, module.stride, module.padding) if pair is nn.modules.utils._single else None
        )
    elif isinstance(module, (nn.Flatten, *_IDENTITIES)) and type(module).__module__.startswith("torch.nn"):
        if source is not None:
            ctx.producer[node.name] = source
        return QFlatten(module.start_dim, module.end_dim) if isinstance(module, nn.Flatten) else None
    else:
        raise QuantizeError(f"module {node.target}: {type(module).__name__} is not supported by quantize_{where(node)}")
    ctx.producer[node.name] = q.output_quantizer
    return q


def _check_single_use(gm: fx.GraphModule, node: fx.Node, module: nn.Module) -> None:
    """A layer with formats (weights, an output quantizer) may be called once: it has one input format."""
    calls = sum(1 for n in gm.graph.nodes if n.op == "call_module" and n.target == node.target)
    if calls > 1 and not isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.Flatten, *_IDENTITIES)):
        raise QuantizeError(
            f"module {node.target} ({type(module).__name__}) is called {calls} times in forward{where(node)}: a QFX "
            "layer has one input and one output format, so use one module per call"
        )


def _softmax_module(module: nn.Softmax, node: fx.Node, ctx: Context, refuse) -> nn.Module | None:
    """nn.Softmax through the same rule as F.softmax (table, argmax, or removed)."""
    from qfx.nn.convert_values import softmax as _softmax

    a = {"input": node.args[0], "dim": module.dim}
    q, _ = _softmax(ctx, node, a)
    if q is None:  # softmax="logits": the module becomes an identity
        ctx.producer[node.name] = ctx.producer[node.args[0].name]
        return nn.Identity()
    ctx.producer[node.name] = q.output_quantizer
    return q


class _GlobalPoolKeepDims(QGlobalAvgPool2d):
    """``nn.AdaptiveAvgPool2d(1)`` shape (N, C, 1, 1) with QFX's exact division (models quantized before
    :class:`~qfx.nn.QGlobalAvgPool` existed)."""

    def __init__(self, output: FixedFormat, learn: bool) -> None:
        super().__init__(output=output, learn=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[..., None, None]


def _set_submodule(gm: fx.GraphModule, target: str, module: nn.Module) -> None:
    parent_name, _, child = target.rpartition(".")
    parent = gm.get_submodule(parent_name) if parent_name else gm
    setattr(parent, child, module)
