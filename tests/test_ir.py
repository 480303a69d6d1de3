"""IR from QONNX: the integer interpreter reproduces PyTorch (our export) and qonnx (a Brevitas export) exactly,
and bad graphs get one clear error naming the node."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
import torch
from chain_models import MODEL_NAMES, brevitas_export, chain_model, digits_test, output_format, qonnx_codes
from onnx import helper, numpy_helper

from qfx import codes
from qfx.export import export_qonnx
from qfx.ir import Cast, IRError, from_qonnx
from qfx.ir.constants import naf_digits


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("qonnx")
    x, _ = digits_test()
    return {name: str(export_qonnx(chain_model(name), x, folder / f"{name}.onnx")) for name in MODEL_NAMES}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_interpreter_equals_pytorch(name: str, exported, summary) -> None:
    graph = from_qonnx(exported[name])
    x, _ = digits_test()
    got = np.asarray(graph.run(x.numpy()), dtype=np.int64)
    with torch.no_grad():
        expected = codes(chain_model(name)(x), output_format(chain_model(name))).numpy()
    mismatches = int((got != expected).sum())
    summary(f"IR interpreter vs PyTorch, {name}: {x.shape[0]} inputs, {expected.size} codes, {mismatches} mismatches")
    assert mismatches == 0


def test_graph_structure(exported) -> None:
    graph = from_qonnx(exported["cnn"])
    ops = {n.op for n in graph.nodes}
    assert {"cast", "conv2d", "affine", "add", "relu", "maxpool2d", "global_sum", "reshape", "dense"} <= ops
    assert isinstance(graph.nodes[0], Cast) and graph.tensors[graph.inputs[0]].fmt is None
    for node in graph.nodes:  # every tensor but the float input has a format; accumulators are exact types
        assert graph.tensors[node.output].fmt is not None
        if node.op in ("conv2d", "dense"):
            assert node.weight.dtype == np.int64 and node.acc.width > graph.fmt(node.inputs[0]).width
    assert graph.summary().count("\n") == len(graph.nodes) - 1


def test_khot_weights_have_at_most_two_digits(exported) -> None:
    graph = from_qonnx(exported["khot"])
    marked = [n for n in graph.nodes if getattr(n, "khot", None)]
    assert {n.op for n in marked} == {"conv2d", "dense", "affine"}
    for node in marked:
        constant = node.scale if node.op == "affine" else node.weight
        assert node.khot == 2 and max(len(naf_digits(int(c))) for c in constant.ravel()) <= 2
    assert not any(getattr(n, "khot", None) for n in from_qonnx(exported["cnn"]).nodes)


@pytest.mark.parametrize("code", [*range(-300, 301), 2**40 + 2**20 - 1, -(2**61) + 5])
def test_naf_digits(code: int) -> None:
    digits = naf_digits(code)
    assert sum(sign << shift for shift, sign in digits) == code
    shifts = [s for s, _ in digits]
    assert all(b - a >= 2 for a, b in itertools.pairwise(shifts))  # non-adjacent: the fewest digits


def test_wrap_model_overflows(exported) -> None:
    """The exotic-mode model really exercises wrap-around: some casts see values outside their range."""
    graph = from_qonnx(exported["wrap"])
    x, _ = digits_test()
    env = graph.run(x.numpy(), trace=True)
    wrapped = 0
    for node in graph.nodes:
        out = graph.fmt(node.output)
        if isinstance(node, Cast) and node.acc is not None and out.overflow.wraps:
            acc = np.asarray(env[node.inputs[0]], dtype=np.int64) >> max(node.acc.frac_bits - out.frac_bits, 0)
            wrapped += int(((acc > out.max_code) | (acc < out.min_code)).sum())
    assert wrapped > 0


def _edit(path: str, tmp_path, edit) -> str:
    model = onnx.load(path)
    edit(model)
    out = str(tmp_path / "edited.onnx")
    onnx.save(model, out)
    return out


def _set_init(model, suffix: str, value: float) -> None:
    for init in model.graph.initializer:
        if init.name.endswith(suffix):
            init.CopyFrom(numpy_helper.from_array(np.array(value, dtype=np.float64), init.name))
            return
    raise AssertionError(suffix)


def test_non_power_of_two_scale(exported, tmp_path) -> None:
    path = _edit(exported["mlp"], tmp_path, lambda m: _set_init(m, "net_1_weight_quant_scale", 0.3))
    with pytest.raises(IRError, match=r"node net_1_weight_quant: scale 0.3 is not a power of two"):
        from_qonnx(path)


def test_nonzero_zero_point(exported, tmp_path) -> None:
    path = _edit(exported["mlp"], tmp_path, lambda m: _set_init(m, "net_1_weight_quant_zeropt", 1.0))
    with pytest.raises(IRError, match=r"node net_1_weight_quant: zero point 1 is not 0"):
        from_qonnx(path)


def test_unknown_op(exported, tmp_path) -> None:
    def add_sigmoid(model) -> None:
        out = model.graph.output[0]
        model.graph.node.append(helper.make_node("Sigmoid", [out.name], ["sig"], name="Sigmoid_9"))
        out.name = "sig"

    with pytest.raises(IRError, match=r"node Sigmoid_9: op Sigmoid is not supported by the QFX IR"):
        from_qonnx(_edit(exported["mlp"], tmp_path, add_sigmoid))


def test_corrupt_and_missing_files(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf \x00\xff" * 10)
    with pytest.raises(IRError, match=r"bad.onnx: not a readable ONNX file"):
        from_qonnx(bad)
    with pytest.raises(FileNotFoundError, match=r"no QONNX file at .*missing.onnx"):
        from_qonnx(tmp_path / "missing.onnx")


def test_brevitas_export_matches_qonnx(tmp_path, summary) -> None:
    """A network quantized with Brevitas' fixed-point quantizers, exported by Brevitas as it comes."""
    graph = from_qonnx(brevitas_export(str(tmp_path / "brevitas.onnx"), "cnn"))
    x, _ = digits_test()
    expected = qonnx_codes(str(tmp_path / "brevitas.onnx"), x, graph.fmt(graph.outputs[0]))
    mismatches = int((np.asarray(graph.run(x.numpy()), dtype=np.int64) != expected).sum())
    summary(f"IR interpreter vs qonnx on a Brevitas export: {x.shape[0]} inputs, {expected.size} codes, {mismatches} "
            "mismatches")  # fmt: skip
    assert mismatches == 0


@pytest.mark.parametrize("package", ["qfx/ir", "qfx/backends", "qfx/rtl", "qfx/synth.py", "qfx/plan", "qfx/tables.py"])
def test_nothing_downstream_of_the_ir_imports_torch(package: str) -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / package
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    assert files and all(f.is_file() for f in files)
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "torch" or n.startswith("torch.") for n in names), f"{file} imports torch"
