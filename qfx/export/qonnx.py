"""QFX model -> QONNX file, built from the QFX modules (torch.fx), not through torch's tracing exporter.

Every fixed-point cast becomes a QONNX ``Quant`` node where that expresses the format exactly (scale 2**-F, zero
point 0, AP_SAT or AP_SAT_SYM, rounding AP_TRN / AP_TRN_ZERO / AP_RND_CONV) and a qfx-domain ``FixedCast``
otherwise. Constants (weights, biases, batch-norm scales and shifts) are stored quantized, behind a ``Quant`` in
their format. Tensors are float64, so onnxruntime's sums and products are exact up to 53 bits. Its Conv exists only
in float32: a convolution whose sums fit 24 bits runs in float32 between two ``Cast`` nodes; a wider one (up to 53
bits) has float64 operands, valid ONNX that :func:`qfx.export.execute_qonnx` runs exactly by lowering it to a
MatMul. Each layer's nodes are in :mod:`qfx.export.emit` (one row of the op contract each).
"""

from __future__ import annotations

import json
import operator
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper
from torch import fx, nn

from qfx.export.builder import F32, Builder, ExportError
from qfx.export.emit import LEAVES, emit_module, flatten
from qfx.export.execute import execute_qonnx
from qfx.export.ops import DOMAIN
from qfx.format import FixedFormat
from qfx.nn import FixedQuantizer
from qfx.nn.convert import new_axes_only, transpose_perm

__all__ = ["ExportError", "export_qonnx"]

OPSET = 13
KHOT_METADATA = "qfx.khot"  # model metadata: JSON {ONNX node name: K} of the K-hot products


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAVES) or super().is_leaf_module(m, qualname)


_RESHAPES = {"view", "reshape", "unsqueeze", "squeeze", torch.reshape, torch.unsqueeze, torch.squeeze}
_MOVES = {"contiguous"}


def _function(b: Builder, node: fx.Node, args: list[str], shapes: dict) -> str:
    """Shape-only calls left in a quantized model: flatten, view, reshape, (un)squeeze (batch kept)."""
    target = node.target
    if (node.op == "call_function" and target is torch.flatten) or (node.op == "call_method" and target == "flatten"):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        if start == 0:
            raise ExportError(f"node {node.name}: flattening the batch dimension cannot be exported")
        return flatten(b, node.name, args[0], start, end, shapes[node.name])
    if target in _RESHAPES and (node.op == "call_method") == isinstance(target, str):
        return flatten(b, node.name, args[0], 1, 0, shapes[node.name])
    if target is operator.getitem and new_axes_only(node.args[1]):  # x[:, :, None, None]: an unsqueeze
        return flatten(b, node.name, args[0], 1, 0, shapes[node.name])
    if node.op == "call_method" and target in _MOVES:
        return args[0]
    if target in (torch.permute, "permute", torch.transpose, "transpose"):  # of the input: the host's (qfx.ir.host)
        perm = transpose_perm(node, len(shapes[node.args[0].name]))
        return b.node("Transpose", [args[0]], node.name, perm=list(perm))
    if target in ("add", "__add__") or getattr(target, "__name__", "") == "add":
        raise ExportError(f"node {node.name}: a plain '+' of two tensors has no output format; use qfx.nn.QAdd")
    raise ExportError(
        f"node {node.name}: {getattr(target, '__name__', target)} cannot be exported; run qfx.quantize_ on the model"
    )


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
    b = Builder()
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
        elif node.name not in shapes:  # shape plumbing (x.size(0)), unused constants: no tensor, no node
            continue
        else:
            tensors = [a for a in node.args if isinstance(a, fx.Node) and a.name in shapes]
            args = [names[a.name] for a in tensors]
            src = tensors[0].name if tensors else None
            if node.op == "call_module":
                m = modules[node.target]
                b.label = node.target
                b.input_formats = [fmts.get(a.name) for a in tensors]  # a product's operands (their widths)
                names[node.name] = emit_module(b, node.name, m, args, shapes.get(src), shapes[node.name], fmts.get(src))
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
    got = execute_qonnx(path, example.detach().to(torch.float32).numpy())
    bad = int(np.sum(got != expected))
    if bad:
        raise ExportError(f"qonnx's execution of the exported graph differs from the model in {bad} output values")
