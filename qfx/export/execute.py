"""Run a QFX QONNX file with qonnx's executor, exactly, including convolutions with float64 operands.

onnxruntime has no float64 Conv kernel, so a convolution whose sums need more than float32's 24 bits (exported with
float64 operands, see :mod:`qfx.export.qonnx`) cannot run as it is. :func:`execute_qonnx` runs a copy of the
graph in which each such Conv is lowered by qonnx's ``LowerConvsToMatMul`` (Transpose, ``Im2Col``, MatMul,
Transpose: every product and sum exact in float64). That transformation knows 2-D convolutions with one group or
depthwise ones only, so a 1-D convolution first becomes the 2-D one of height 1 (Unsqueeze / Squeeze around it)
and a grouped one a dense convolution with a block-diagonal weight (the zeros add nothing); its new tensors are
declared float64 with the batch size of the run. qonnx's ``Im2Col`` is right for one sample only (it mixes the
samples of a batch), so the lowered graph runs it through :class:`Im2Col`, which calls it once per sample.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from qonnx.custom_op.general.im2col import Im2Col as _QonnxIm2Col

__all__ = ["Im2Col", "execute_qonnx", "lower_wide_convs"]

_DOUBLE = TensorProto.DOUBLE
DOMAIN = "qfx.export.execute"  # this module: where qonnx's registry finds Im2Col below


class Im2Col(_QonnxIm2Col):
    """qonnx's ``Im2Col`` applied to each sample of the batch in turn."""

    def execute_node(self, context: dict, graph) -> None:
        name_in, name_out = self.onnx_node.input[0], self.onnx_node.output[0]
        x = context[name_in]
        parts = []
        for i in range(x.shape[0]):
            sample = {name_in: x[i : i + 1]}
            super().execute_node(sample, graph)
            parts.append(sample[name_out])
        context[name_out] = np.concatenate(parts)


def _elem_types(model) -> dict[str, int]:
    g = model.graph
    types = {t.name: t.data_type for t in g.initializer}
    for info in list(g.input) + list(g.value_info) + list(g.output):
        types[info.name] = info.type.tensor_type.elem_type
    return types


def _weight_initializer(model, name: str) -> tuple[str, str]:
    """(the tensor the Conv should read as its weight, the initializer holding the values) behind ``name``:
    the weight itself, or a Quant of it, skipping Casts (a float64 Conv's weight is Cast(Quant(values)))."""
    while True:
        if model.get_initializer(name) is not None:
            return name, name
        producer = model.find_producer(name)
        if producer is None:
            raise ValueError(f"Conv weight {name} is not a constant")
        if producer.op_type == "Cast":
            name = producer.input[0]
        elif producer.op_type == "Quant" and model.get_initializer(producer.input[0]) is not None:
            return name, producer.input[0]
        else:
            raise ValueError(f"Conv weight {name} comes from {producer.op_type}, not a quantized constant")


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _set_attr(node: onnx.NodeProto, name: str, value) -> None:
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


def _value_info(model, name: str, shape) -> None:
    model.graph.value_info.append(helper.make_tensor_value_info(name, _DOUBLE, list(shape)))


def _prepare(model, node: onnx.NodeProto, batch: int) -> None:
    """Make ``node`` (a float64 Conv) a 2-D, one-group or depthwise Conv reading its weight's Quant directly."""
    weight, values_name = _weight_initializer(model, node.input[1])
    old, node.input[1] = node.input[1], weight
    if old != weight and not model.find_consumers(old):  # the Cast to float64 the lowering replaces
        model.graph.node.remove(model.find_producer(old))
    w = np.asarray(model.get_initializer(values_name), dtype=np.float64)
    group = int(_attr(node, "group", 1))
    in_shape = model.get_tensor_shape(node.input[0])
    out_shape = model.get_tensor_shape(node.output[0])
    channels_in, channels_out = in_shape[1], w.shape[0]
    if group > 1 and not (group == channels_in == channels_out):
        dense = np.zeros((channels_out, channels_in, *w.shape[2:]))
        per_in, per_out = channels_in // group, channels_out // group
        for k in range(group):
            dense[k * per_out : (k + 1) * per_out, k * per_in : (k + 1) * per_in] = w[k * per_out : (k + 1) * per_out]
        w = dense
        _set_attr(node, "group", 1)
    if w.ndim == 3:  # 1-D: the 2-D convolution of height 1
        w = w[:, :, None, :]
        _set_attr(node, "kernel_shape", [1, int(w.shape[3])])
        _set_attr(node, "strides", [1, *_attr(node, "strides", [1])])
        _set_attr(node, "dilations", [1, *_attr(node, "dilations", [1])])
        left, right = _attr(node, "pads", [0, 0])
        _set_attr(node, "pads", [0, left, 0, right])
        x4, y4 = f"{node.input[0]}_h1", f"{node.output[0]}_h1"
        axes = []
        for role in ("unsqueeze", "squeeze"):  # one initializer each: qonnx gives shared parameters new names
            axes.append(f"{node.name}_{role}_axis")
            model.graph.initializer.append(numpy_helper.from_array(np.array([2], dtype=np.int64), axes[-1]))
            model.graph.value_info.append(helper.make_tensor_value_info(axes[-1], TensorProto.INT64, [1]))
        index = list(model.graph.node).index(node)
        model.graph.node.insert(index, helper.make_node("Unsqueeze", [node.input[0], axes[0]], [x4], name=x4))
        model.graph.node.insert(index + 2, helper.make_node("Squeeze", [y4, axes[1]], [node.output[0]], name=y4))
        node.input[0], node.output[0] = x4, y4
        _value_info(model, x4, [batch, in_shape[1], 1, in_shape[2]])
        _value_info(model, y4, [batch, out_shape[1], 1, out_shape[2]])
    else:
        _set_attr(node, "dilations", list(_attr(node, "dilations", [1, 1])))
        _set_attr(node, "strides", list(_attr(node, "strides", [1, 1])))
    if not _attr(node, "pads", None):
        _set_attr(node, "pads", [0] * 4)
    model.set_initializer(values_name, w.astype(np.float64))
    model.set_tensor_shape(weight, list(w.shape))


def lower_wide_convs(model):
    """A copy of the qonnx ``ModelWrapper`` ``model`` whose float64 Convs are lowered to Im2Col + MatMul."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    model = ModelWrapper(onnx.ModelProto.FromString(model.model.SerializeToString()))
    types = _elem_types(model)
    wide = [n for n in model.graph.node if n.op_type == "Conv" and types.get(n.input[0]) == _DOUBLE]
    if not wide:
        return model
    batch = model.get_tensor_shape(model.graph.input[0].name)[0]
    narrow = [n for n in model.graph.node if n.op_type == "Conv" and n not in wide]
    for n in narrow:  # LowerConvsToMatMul lowers every Conv: hide the float32 ones from it
        n.op_type = "QfxNarrowConv"
    for n in wide:
        _prepare(model, n, batch)
    before = {v.name for v in model.graph.value_info}
    matmuls = {n.output[0] for n in model.graph.node if n.op_type == "MatMul"}  # not id(): wrappers are remade
    model = model.transform(LowerConvsToMatMul())
    for n in model.graph.node:
        if n.op_type == "QfxNarrowConv":
            n.op_type = "Conv"
        elif n.op_type == "Im2Col":
            n.domain = DOMAIN
    for info in model.graph.value_info:
        if info.name not in before:  # created by the lowering (batch 1, float32): the run's batch, float64
            info.type.tensor_type.elem_type = _DOUBLE
            info.type.tensor_type.shape.dim[0].dim_value = batch
    for n in list(model.graph.node):
        if n.op_type == "MatMul" and n.output[0] not in matmuls and types.get(n.input[1]) != _DOUBLE:
            cast = f"{n.input[1]}_lowered_f64"
            if model.get_tensor_shape(cast) is None:
                shape = model.get_tensor_shape(n.input[1])
                pos = list(model.graph.node).index(n)
                model.graph.node.insert(pos, helper.make_node("Cast", [n.input[1]], [cast], name=cast, to=_DOUBLE))
                _value_info(model, cast, shape)
            n.input[1] = cast
    return model


def _with_batch(model, batch: int):
    """``model`` with batch size ``batch`` (value types kept: shape inference guesses float32 behind custom ops)."""
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    if model.get_tensor_shape(model.graph.input[0].name)[0] == batch:
        return model
    types = _elem_types(model)
    model = model.transform(ChangeBatchSize(batch)).transform(InferShapes())
    for info in model.graph.value_info:
        info.type.tensor_type.elem_type = types.get(info.name, info.type.tensor_type.elem_type)
    return model


def execute_qonnx(source, x: np.ndarray) -> np.ndarray:
    """The output of qonnx's ``execute_onnx`` on the batch ``x`` for a QONNX file (path, ``ModelProto`` or qonnx
    ``ModelWrapper``); the graph's batch size is changed to ``x``'s. Float64 convolutions are lowered to MatMul
    (:func:`lower_wide_convs`) so that onnxruntime can run them exactly."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    if isinstance(source, (str, os.PathLike)):
        model = ModelWrapper(str(source))
    elif isinstance(source, onnx.ModelProto):
        model = ModelWrapper(onnx.ModelProto.FromString(source.SerializeToString()))
    else:
        model = ModelWrapper(onnx.ModelProto.FromString(source.model.SerializeToString()))
    from qfx.safety import check_domains

    check_domains(model.model)  # before qonnx imports the module a node's domain names
    x = np.asarray(x)
    name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
    model = lower_wide_convs(_with_batch(model, x.shape[0]))
    return execute_onnx(model, {name_in: x})[name_out]
