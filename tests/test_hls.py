"""HLS projects: C-simulation (g++ + the ap_fixed headers) equals PyTorch, qonnx and the IR bit for bit."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from chain_models import MODEL_NAMES, brevitas_export, chain_model, digits_test, output_format, qonnx_codes

from qfx import codes
from qfx.backends.hls import csim, csim_run, generate, read_project
from qfx.export import export_qonnx
from qfx.ir import from_qonnx
from qfx.ir.passes import fuse_casts


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("qonnx")
    x, _ = digits_test()
    return {n: from_qonnx(export_qonnx(chain_model(n), x, folder / f"{n}.onnx")) for n in MODEL_NAMES}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_csim_equals_pytorch_and_ir(name: str, graphs, tmp_path, toolchain, summary) -> None:
    x, _ = digits_test()
    project = generate(graphs[name], tmp_path / name, board="ultra96v2")
    result = csim_run(project, x.numpy())
    ir = np.asarray(graphs[name].run(x.numpy()), dtype=np.int64)
    with torch.no_grad():
        reference = codes(chain_model(name)(x), output_format(chain_model(name))).numpy()
    mismatches = int((result.codes != reference).sum()) + int((result.codes != ir).sum())
    how = "cached" if result.cached else f"compiled in {result.compile_s:.1f} s"
    summary(f"HLS C-sim vs PyTorch and IR, {name}: {x.shape[0]} inputs, {reference.size} codes, {mismatches} "
            f"mismatches ({how}, ran in {result.run_s:.2f} s)")  # fmt: skip
    assert mismatches == 0


def test_fused_graph_computes_the_same(graphs) -> None:
    x, _ = digits_test()
    for graph in graphs.values():
        fused = fuse_casts(graph)
        assert len(fused.nodes) < len(graph.nodes)
        assert np.array_equal(np.asarray(fused.run(x.numpy())), np.asarray(graph.run(x.numpy())))


def test_khot_project_has_no_multiplier(graphs, tmp_path) -> None:
    khot = generate(graphs["khot"], tmp_path / "khot")
    plain = generate(graphs["cnn"], tmp_path / "cnn")
    assert read_project(khot)["multipliers"] == 0 and read_project(plain)["multipliers"] > 0
    top = (khot / "firmware" / f"{read_project(khot)['top']}.cpp").read_text()
    assert "dense_khot" in top and "conv2d_khot" in top and "affine_khot" in top
    assert "qfx::dense<" not in top and "qfx::conv2d<" not in top
    assert "signed char" in (khot / "firmware" / "weights.h").read_text()


def test_project_files_for_each_tool(graphs, tmp_path) -> None:
    x, _ = digits_test()
    vivado = generate(graphs["mlp"], tmp_path / "v", board="pynq-z2", tool="vivado", test_inputs=x[:5].numpy())
    tcl = (vivado / "build_prj.tcl").read_text()
    assert 'set_part "xc7z020clg400-1"' in tcl and "create_clock -period 10.0" in tcl and "csim_design" in tcl
    assert not (vivado / "hls_config.cfg").exists()
    expected = np.loadtxt(vivado / "tb_data" / "expected.txt", dtype=np.int64)
    assert expected.shape == (5, 10)
    assert np.array_equal(expected, np.asarray(graphs["mlp"].run(x[:5].numpy())))
    assert len((vivado / "tb_data" / "inputs.txt").read_text().splitlines()) == 5
    vitis = generate(graphs["mlp"], tmp_path / "w", board="zcu104", tool="vitis", name="digits_mlp")
    cfg = (vitis / "hls_config.cfg").read_text()
    assert "part=xczu7ev-ffvc1156-2-e" in cfg and "syn.top=digits_mlp" in cfg
    assert (vitis / "firmware" / "digits_mlp.cpp").is_file() and (vitis / "firmware" / "qfx" / "dense.h").is_file()
    meta = json.loads((vitis / "qfx_project.json").read_text())
    assert meta["tool"] == "vitis" and meta["board"] == "zcu104" and meta["top"] == "digits_mlp"


def test_refuses_to_overwrite_a_foreign_folder(graphs, tmp_path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"mine exists and is not a QFX project; pass force=True"):
        generate(graphs["mlp"], foreign)
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(tmp_path.iterdir())) == 1
    generate(graphs["mlp"], foreign, force=True)
    assert not (foreign / "notes.txt").exists() and (foreign / "qfx_project.json").is_file()
    generate(graphs["mlp"], foreign)  # a QFX project is simply regenerated


def test_bad_arguments_leave_nothing(graphs, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"tool must be 'vivado' or 'vitis', not 'quartus'"):
        generate(graphs["mlp"], tmp_path / "p", tool="quartus")
    with pytest.raises(ValueError, match=r"unknown board 'ultra69'"):
        generate(graphs["mlp"], tmp_path / "p", board="ultra69")
    assert list(tmp_path.iterdir()) == []


def test_names_become_identifiers(graphs, tmp_path, toolchain) -> None:
    """Layer names that are not C identifiers (a Brevitas-style path, quotes, a keyword) compile after
    sanitizing."""
    graph = from_qonnx(_renamed(graphs, tmp_path))
    project = generate(graph, tmp_path / "named", name='a b;"')
    text = (project / "firmware" / "a_b.cpp").read_text()
    assert "void a_b(" in text and '"' not in text.split("#include")[-1].split("\n", 1)[1]
    x, _ = digits_test()
    assert np.array_equal(csim(project, x[:20].numpy()), np.asarray(graph.run(x[:20].numpy())))


def _renamed(graphs, tmp_path) -> str:
    x, _ = digits_test()
    path = export_qonnx(chain_model("mlp"), x, tmp_path / "m.onnx")
    model = onnx.load(str(path))
    for k, node in enumerate(model.graph.node):
        node.name = ['/net/1/MatMul', 'a b;"', "int", "1st"][k % 4] + ("" if k < 4 else str(k))
    out = tmp_path / "renamed.onnx"
    onnx.save(model, str(out))
    return str(out)


def test_brevitas_model_through_hls(tmp_path, toolchain, summary) -> None:
    path = brevitas_export(str(tmp_path / "brevitas.onnx"), "mlp")
    graph = from_qonnx(path)
    x, _ = digits_test()
    got = csim(generate(graph, tmp_path / "brevitas_hls"), x.numpy())
    expected = qonnx_codes(path, x, graph.fmt(graph.outputs[0]))
    mismatches = int((got != expected).sum())
    summary(f"HLS C-sim vs qonnx on a Brevitas export: {x.shape[0]} inputs, {expected.size} codes, {mismatches} "
            "mismatches")  # fmt: skip
    assert mismatches == 0
