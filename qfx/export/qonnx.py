"""QFX model -> QONNX file, built from the QFX modules (torch.fx), not through torch's tracing exporter.

Every fixed-point cast becomes a QONNX ``Quant`` node where that expresses the format exactly (scale 2**-F, zero
point 0, AP_SAT or AP_SAT_SYM, rounding AP_TRN / AP_TRN_ZERO / AP_RND_CONV) and a qfx-domain ``FixedCast``
otherwise. Constants (weights, biases, batch-norm scales and shifts) are stored quantized, behind a ``Quant`` in
their format. Tensors are float64, so onnxruntime's sums and products are exact up to 53 bits; its Conv and
AveragePool exist only in float32, so those run in float32 between two ``Cast`` nodes, and the export refuses a
layer whose sums would not fit float32's 24-bit significand (the QONNX file could not then be executed exactly).
"""

from __future__ import annotations

import json
import math
import operator
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import fx, nn

from qfx.export.ops import DOMAIN, fits_float32
from qfx.export.quant import constant_format, quant_node_spec
from qfx.format import FixedFormat
from qfx.nn import (
    FixedQuantizer,
    QAdd,
    QAvgPool2d,
    QBatchNorm2d,
    QConv2d,
    QGlobalAvgPool2d,
    QLinear,
    QReLU,
)
from qfx.nn.elementwise import _shift_or_reciprocal
from qfx.nn.layers import input_format
from qfx.result_types import grow_bits, union_format

__all__ = ["ExportError", "export_qonnx"]

OPSET = 13
KHOT_METADATA = "qfx.khot"  # model metadata: JSON {ONNX node name: K} of the K-hot products
F64, F32 = TensorProto.DOUBLE, TensorProto.FLOAT
_LEAVES = (FixedQuantizer, QLinear, QConv2d, QBatchNorm2d, QReLU, QAdd, QAvgPool2d, QGlobalAvgPool2d)
_IDENTITY = (nn.Dropout, nn.Identity)


class ExportError(ValueError):
    """The model cannot be exported exactly; the message names the node and why."""


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, qualname)


@dataclass
class _Builder:
    """Accumulates ONNX nodes and initializers; ``cast`` emits Quant or FixedCast."""

    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    names: set = field(default_factory=set)
    dtypes: dict = field(default_factory=dict)  # tensor name -> ONNX element type
    widened: dict = field(default_factory=dict)  # float32 tensor -> its float64 copy
    label: str = ""  # the module being exported, as named in the model (for error messages)
    khot: dict = field(default_factory=dict)  # ONNX node multiplying by K-hot constants -> K

    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def node(self, op: str, inputs: list[str], name: str, domain: str = "", **attrs) -> str:
        out = self.unique(name)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        if op == "Cast":
            self.dtypes[out] = attrs["to"]
        elif op == "Quant":
            self.dtypes[out] = F32  # qonnx's Quant always returns float32
        elif op == "FixedCast":
            self.dtypes[out] = F32 if fits_float32(FixedFormat.parse(attrs["format"])) else F64
        else:  # Conv keeps float32, arithmetic float64 (see arith), moves keep their input's type
            self.dtypes[out] = self.dtypes.get(inputs[0], F64)
        return out

    def arith(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        """An arithmetic node computed in float64: exact for sums and products of up to 53 bits."""
        return self.node(op, [self.as_float64(x) for x in inputs], name, **attrs)

    def as_float64(self, x: str) -> str:
        if self.dtypes.get(x, F64) == F64:
            return x
        if x not in self.widened:
            self.widened[x] = self.node("Cast", [x], f"{x}_f64", to=F64)
        return self.widened[x]

    def as_float32(self, x: str) -> str:
        return x if self.dtypes.get(x) == F32 else self.node("Cast", [x], f"{x}_f32", to=F32)

    def init(self, name: str, array: np.ndarray) -> str:
        name = self.unique(name)
        tensor = numpy_helper.from_array(np.asarray(array), name)
        self.inits.append(tensor)
        self.dtypes[name] = tensor.data_type
        return name

    def cast(self, x: str, fmt: FixedFormat, name: str) -> str:
        spec = quant_node_spec(fmt)
        if spec is None:
            return self.node("FixedCast", [x], name, domain=DOMAIN, format=str(fmt))
        scale = self.init(f"{name}_scale", np.array(2.0**-fmt.frac_bits))
        zero = self.init(f"{name}_zeropt", np.array(0.0))
        bits = self.init(f"{name}_bitwidth", np.array(float(fmt.width)))
        return self.node("Quant", [x, scale, zero, bits], name, domain="qonnx.custom_op.general", **spec)

    def constant(self, name: str, values: torch.Tensor, fmt: FixedFormat, dtype=np.float64) -> str:
        """Quantized constant values behind a Quant in ``fmt`` (a no-op on them: they are already in it)."""
        fmt = constant_format(values.detach().to(torch.float64).numpy(), fmt, name)
        init = self.init(f"{name}_value", values.detach().to(torch.float64).numpy().astype(dtype))
        return self.cast(init, fmt, f"{name}_quant")


def _weight_format(q: FixedQuantizer) -> FixedFormat:
    formats = q.formats() if q.frac_bits.dim() > 0 else [q.format]
    return formats[0] if len(formats) == 1 else union_format(formats)


def _check_float32(b: _Builder, bits: int, what: str) -> None:
    if bits > 24:
        raise ExportError(
            f"module {b.label}: {what} needs {bits} bits, but onnxruntime runs it in float32 (24-bit significand), "
            "so the QONNX file could not be executed exactly; narrow the input or weight widths"
        )


def _mac(b: _Builder, name: str, m: QLinear | QConv2d, x: str) -> str:
    """MatMul/Conv with quantized constants, bias added in float64, output cast."""
    w_fmt = _weight_format(m.weight_quantizer)
    x_fmt = input_format(m.input_source)
    if isinstance(m, QLinear):
        w = b.constant(f"{name}_weight", m.quantized_weight().t(), w_fmt)
        acc = b.arith("MatMul", [x, w], f"{name}_matmul")
        if m.khot is not None:
            b.khot[acc] = m.khot
    else:
        _check_float32(b, x_fmt.width + w_fmt.width + grow_bits(m.terms()), "the convolution's product sum")
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ExportError(f"module {b.label}: only numeric zero padding can be exported")
        w = b.constant(f"{name}_weight", m.quantized_weight(), w_fmt, dtype=np.float32)
        ph, pw = m.padding
        conv = b.node(
            "Conv", [b.as_float32(x), w], f"{name}_conv", kernel_shape=list(m.kernel_size),
            strides=list(m.stride), pads=[ph, pw, ph, pw], dilations=list(m.dilation), group=m.groups,
        )  # fmt: skip
        acc = conv
        if m.khot is not None:
            b.khot[acc] = m.khot
    if m.bias_quantizer is not None:
        bias = m.bias_quantizer(m.bias)
        if isinstance(m, QConv2d):
            bias = bias.reshape(-1, 1, 1)
        acc = b.arith("Add", [acc, b.constant(f"{name}_bias", bias, m.bias_quantizer.format)], f"{name}_bias_add")
    return b.cast(acc, m.output_quantizer.format, name)


def _batchnorm(b: _Builder, name: str, m: QBatchNorm2d, x: str) -> str:
    from qfx.khot import project_khot

    scale, shift = m.folded_affine()
    scale_q = m.scale_quantizer(scale)
    if m.khot is not None:
        scale_q = project_khot(scale_q, m.scale_quantizer.format, m.khot)
    s = b.constant(f"{name}_scale", scale_q.reshape(-1, 1, 1), _weight_format(m.scale_quantizer))
    t = b.constant(f"{name}_shift", m.shift_quantizer(shift).reshape(-1, 1, 1), _weight_format(m.shift_quantizer))
    product = b.arith("Mul", [x, s], f"{name}_mul")
    if m.khot is not None:
        b.khot[product] = m.khot
    y = b.arith("Add", [product, t], f"{name}_add")
    return b.cast(y, m.output_quantizer.format, name)


def _pool_factor(b: _Builder, name: str, area: int, reciprocal: FixedFormat) -> str:
    """The constant a window sum is multiplied by: 2**-k (power-of-two area) or the rounded reciprocal."""
    value = torch.tensor(_shift_or_reciprocal(area, reciprocal), dtype=torch.float64)
    pow2 = area & (area - 1) == 0
    fmt = FixedFormat(1, 1 - int(math.log2(area)), signed=False) if pow2 else reciprocal
    return b.constant(f"{name}_factor", value, fmt)


def _avgpool(b: _Builder, name: str, m: QAvgPool2d, x: str, shape: tuple[int, ...], x_fmt: FixedFormat) -> str:
    (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
    _check_float32(b, x_fmt.width + grow_bits(kh * kw), "the window sum")
    channels = shape[1]
    ones = b.init(f"{name}_ones", np.ones((channels, 1, kh, kw), dtype=np.float32))
    sums = b.node(
        "Conv", [b.as_float32(x), ones], f"{name}_window_sum", kernel_shape=[kh, kw], strides=[sh, sw],
        pads=[ph, pw, ph, pw], group=channels,
    )  # fmt: skip
    y = b.arith("Mul", [sums, _pool_factor(b, name, kh * kw, m.reciprocal)], f"{name}_scale")
    return b.cast(y, m.output_quantizer.format, name)


def _global_avgpool(b: _Builder, name: str, m: QGlobalAvgPool2d, x: str, shape, keepdims: bool) -> str:
    axes = b.init(f"{name}_axes", np.array([2, 3], dtype=np.int64))
    sums = b.node("ReduceSum", [b.as_float64(x), axes], f"{name}_sum", keepdims=int(keepdims))
    y = b.arith("Mul", [sums, _pool_factor(b, name, shape[2] * shape[3], m.reciprocal)], f"{name}_scale")
    return b.cast(y, m.output_quantizer.format, name)


def _module(b: _Builder, node: fx.Node, m: nn.Module, args: list[str], shapes: dict, fmts: dict) -> str:
    name = node.name
    src = node.args[0].name if node.args and isinstance(node.args[0], fx.Node) else None
    in_shape, in_fmt = shapes.get(src), fmts.get(src)
    if isinstance(m, FixedQuantizer):
        if m.frac_bits.dim() > 0:
            raise ExportError(f"module {b.label}: a per-channel activation quantizer cannot be exported")
        return b.cast(args[0], m.format, name)
    if isinstance(m, (QLinear, QConv2d)):
        return _mac(b, name, m, args[0])
    if isinstance(m, QBatchNorm2d):
        return _batchnorm(b, name, m, args[0])
    if isinstance(m, QReLU):
        if m.max_value is None:
            y = b.node("Relu", [args[0]], f"{name}_relu")
        else:
            x = b.as_float64(args[0])  # the bound may not be a float32
            lo, hi = b.init(f"{name}_min", np.array(0.0)), b.init(f"{name}_max", np.array(float(m.max_value)))
            y = b.node("Clip", [x, lo, hi], f"{name}_clip")
        return b.cast(y, m.output_quantizer.format, name)
    if isinstance(m, QAdd):
        return b.cast(b.arith("Add", args[:2], f"{name}_add"), m.output_quantizer.format, name)
    if isinstance(m, QAvgPool2d):
        return _avgpool(b, name, m, args[0], in_shape, in_fmt)
    if isinstance(m, QGlobalAvgPool2d):
        keepdims = len(shapes[name]) == 4
        return _global_avgpool(b, name, m, args[0], in_shape, keepdims)
    if isinstance(m, nn.MaxPool2d):
        k, s, p, d = (nn.modules.utils._pair(v) for v in (m.kernel_size, m.stride, m.padding, m.dilation))
        if m.ceil_mode or d != (1, 1) or m.return_indices:
            raise ExportError(f"module {b.label}: MaxPool2d with ceil_mode, dilation or indices cannot be exported")
        return b.node("MaxPool", [args[0]], name, kernel_shape=list(k), strides=list(s), pads=[p[0], p[1], p[0], p[1]])
    if isinstance(m, nn.Flatten):
        return _flatten(b, name, args[0], m.start_dim, m.end_dim, shapes[name])
    if isinstance(m, _IDENTITY):
        return args[0]
    raise ExportError(f"module {b.label}: {type(m).__name__} is not a QFX layer; run qfx.quantize_ on the model first")


def _flatten(b: _Builder, name: str, x: str, start: int, end: int, out_shape: tuple[int, ...]) -> str:
    if start == 1 and end == -1:
        return b.node("Flatten", [x], name, axis=1)
    target = b.init(f"{name}_shape", np.array([-1, *out_shape[1:]], dtype=np.int64))
    return b.node("Reshape", [x, target], name)


def _function(b: _Builder, node: fx.Node, args: list[str], shapes: dict) -> str:
    target = node.target
    if (node.op == "call_function" and target is torch.flatten) or (node.op == "call_method" and target == "flatten"):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        if start == 0:
            raise ExportError(f"node {node.name}: flattening the batch dimension cannot be exported")
        return _flatten(b, node.name, args[0], start, end, shapes[node.name])
    if node.op == "call_method" and target in ("view", "reshape"):
        return _flatten(b, node.name, args[0], 1, 0, shapes[node.name])
    if target in (operator.add, torch.add):
        raise ExportError(f"node {node.name}: a plain '+' of two tensors has no output format; use qfx.nn.QAdd")
    raise ExportError(f"node {node.name}: {getattr(target, '__name__', target)} cannot be exported")


def export_qonnx(model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike, *, check: bool = True) -> Path:
    """Write ``model`` (a QFX model, e.g. from :func:`qfx.quantize_`) as a QONNX file at ``path``.

    ``example_input`` (a batch) fixes the shapes, batch size included (qonnx executes fixed shapes; its
    ``ChangeBatchSize`` transformation changes it). With ``check`` the file is
    executed by qonnx on that batch and must reproduce the model's outputs bit for bit, else nothing is written.
    The folder of ``path`` must exist (it is not created).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the path of the file to write, e.g. {path / 'model.onnx'}")
    if not path.parent.is_dir():
        if path.parent.exists():
            raise NotADirectoryError(f"cannot write {path}: {path.parent} is a file, not a folder")
        raise FileNotFoundError(f"cannot write {path}: its folder {path.parent} does not exist")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            onnx_model, expected = _build(model, example_input)
    finally:
        model.train(was_training)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        onnx.save(onnx_model, tmp)
        if check:
            _check(tmp, example_input, expected)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _build(model: nn.Module, example: torch.Tensor) -> tuple[onnx.ModelProto, np.ndarray]:
    graph = _Tracer().trace(model)
    gm = fx.GraphModule(model, graph)
    shapes: dict[str, tuple[int, ...]] = {}
    values: dict[str, torch.Tensor] = {}

    class _Shapes(fx.Interpreter):
        def run_node(self, n: fx.Node):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                shapes[n.name], values[n.name] = tuple(out.shape), out
            return out

    _Shapes(gm).run(example.to(torch.float32))
    modules = dict(model.named_modules())
    b = _Builder()
    names: dict[str, str] = {}
    fmts: dict[str, FixedFormat | None] = {}
    inputs, outputs = [], []
    for node in graph.nodes:
        if node.op == "placeholder":
            names[node.name] = b.unique(node.name)
            b.dtypes[node.name] = F32
            inputs.append(helper.make_tensor_value_info(node.name, F32, list(shapes[node.name])))
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, fx.Node):
                raise ExportError("the model must return one tensor")
            out = names[result.name]
            outputs.append(helper.make_tensor_value_info(out, b.dtypes.get(out, F32), list(shapes[result.name])))
            expected = values[result.name]
        else:
            args = [names[a.name] for a in node.args if isinstance(a, fx.Node)]
            src = node.args[0].name if node.args and isinstance(node.args[0], fx.Node) else None
            if node.op == "call_module":
                m = modules[node.target]
                b.label = node.target
                names[node.name] = _module(b, node, m, args, shapes, fmts)
                quantizer = m if isinstance(m, FixedQuantizer) else getattr(m, "output_quantizer", None)
                fmts[node.name] = quantizer.format if quantizer is not None else fmts.get(src)
            elif node.op in ("call_function", "call_method"):
                names[node.name] = _function(b, node, args, shapes)
                fmts[node.name] = fmts.get(src)
            else:
                raise ExportError(f"node {node.name}: {node.op} cannot be exported")
    g = helper.make_graph(b.nodes, "qfx_model", inputs, outputs, b.inits)
    m = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("qonnx.custom_op.general", 1),
                          helper.make_opsetid(DOMAIN, 1)], producer_name="qfx",
    )  # fmt: skip
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    if b.khot:  # which products are shift-and-add: the IR reads this back
        onnx.helper.set_model_props(m, {KHOT_METADATA: json.dumps(b.khot)})
    m = ModelWrapper(m).transform(InferShapes()).model
    for info in m.graph.value_info:  # shape inference guesses float32 behind custom ops: set the real types
        info.type.tensor_type.elem_type = b.dtypes.get(info.name, info.type.tensor_type.elem_type)
    return m, expected.to(torch.float64).numpy()


def _check(path: str, example: torch.Tensor, expected: np.ndarray) -> None:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    wrapper = ModelWrapper(path)
    name_in, name_out = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    got = execute_onnx(wrapper, {name_in: example.detach().to(torch.float32).numpy()})[name_out]
    bad = int(np.sum(got != expected))
    if bad:
        raise ExportError(f"qonnx's execution of the exported graph differs from the model in {bad} output values")
