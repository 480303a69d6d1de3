"""RTL: generated Verilog, simulated through cocotb on Verilator and Icarus, equals PyTorch and the IR bit for bit;
K-hot layers synthesize (Yosys) without DSP slices."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from chain_models import RTL_MODEL_NAMES, chain_model, digits_test, output_format

from qfx import codes
from qfx.export import export_qonnx
from qfx.format import FixedFormat
from qfx.ir import from_qonnx
from qfx.ir.graph import Add, Cast, Dense, Graph, Relu, Tensor
from qfx.rtl import generate, read_rtl, simulate

SIMULATORS = ("verilator", "icarus")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("qonnx")
    x, _ = digits_test()
    return {n: from_qonnx(export_qonnx(chain_model(n), x, folder / f"{n}.onnx")) for n in RTL_MODEL_NAMES}


@pytest.fixture(scope="module")
def designs(graphs, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("rtl")
    return {n: generate(g, folder / n) for n, g in graphs.items()}


def need(simulator: str) -> None:
    if simulator == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("iverilog not found: install Icarus Verilog (apt install iverilog) to run the Icarus cases")


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", RTL_MODEL_NAMES)
def test_rtl_equals_pytorch_and_ir(name: str, simulator: str, graphs, designs, summary) -> None:
    need(simulator)
    x, _ = digits_test()
    result = simulate(designs[name], x.numpy(), simulator=simulator)
    with torch.no_grad():
        reference = codes(chain_model(name)(x), output_format(chain_model(name))).numpy()
    ir = np.asarray(graphs[name].run(x.numpy()), dtype=np.int64)
    assert result.codes.shape == reference.shape
    mismatches = int((result.codes != reference).sum()) + int((result.codes != ir).sum())
    summary(f"RTL ({simulator}) vs PyTorch and IR, {name}: {x.shape[0]} inputs, {reference.size} codes, "
            f"{mismatches} mismatches (build {result.build_s:.1f} s, {result.vectors_per_s:.0f} vectors/s)")
    assert mismatches == 0


def test_metadata_and_ports(designs, graphs) -> None:
    meta = read_rtl(designs["cnn_tiny"])
    assert meta["input"] == {"name": "x", "size": 64, "shape": [1, 8, 8], "format": meta["input"]["format"],
                             "word": 64, "count": 1}  # fmt: skip
    assert meta["output"]["size"] == 10 and meta["latency"] == len(meta["layers"])
    assert meta["architecture"] == "parallel" and meta["interface"] == "axis" and meta["cycles"] == 1
    top = (designs["cnn_tiny"] / f"{meta['top']}.v").read_text()
    width = FixedFormat.parse(meta["input"]["format"]).width
    assert f"input  wire [{64 * width - 1}:0] s_axis_tdata" in top  # the whole input tensor in one word
    for port in ("ap_clk", "ap_rst_n", "s_axis_tvalid", "s_axis_tready", "m_axis_tdata", "m_axis_tvalid"):
        assert f" {port}" in top
    assert "_d1" in top  # the residual branch is delayed to meet the add
    khot = read_rtl(designs["khot_tiny"])
    assert khot["multipliers"] == 0 and meta["multipliers"] > 0
    layers = (designs["khot_tiny"] / khot["sources"][1]).read_text()
    assert " * " not in layers  # shifts and adds only


def _tiny_graph(register_every_layer: bool = True) -> Graph:
    """x (4 values) -> cast -> dense 4->3 -> relu, and a residual add of the dense output."""
    f = FixedFormat(6, 2)
    acc = FixedFormat(14, 6)
    t = {"x": Tensor("x", (4,), None), "q": Tensor("q", (4,), f), "d": Tensor("d", (3,), FixedFormat(8, 4)),
         "r": Tensor("r", (3,), FixedFormat(8, 4)), "s": Tensor("s", (3,), FixedFormat(9, 5))}  # fmt: skip
    w = np.array([[3, -5, 0, 7], [1, 2, 4, -8], [-6, 0, 5, 1]])
    nodes = [Cast("in", ["x"], "q", f), Dense("fc", ["q"], "d", acc, weight=w, weight_fmt=FixedFormat(5, 2)),
             Relu("relu", ["d"], "r", FixedFormat(8, 4)), Add("add", ["r", "d"], "s", FixedFormat(9, 5))]  # fmt: skip
    return Graph(t, nodes, ["x"], ["s"], name="tiny")


@pytest.mark.parametrize("register_every", [0, 1, 2])
def test_register_stages(register_every: int, tmp_path) -> None:
    graph = _tiny_graph()
    rtl = generate(graph, tmp_path / "tiny", register_every=register_every)
    meta = read_rtl(rtl)
    assert meta["latency"] == {0: 0, 1: 3, 2: 1}[register_every]
    x = np.random.default_rng(0).uniform(-10, 10, size=(200, 4))
    result = simulate(rtl, x, simulator="verilator")
    assert np.array_equal(result.codes, np.asarray(graph.run(x)))
    assert result.cycles_per_sample == 1  # a sample per clock, the fork and the delays included
    stalled = simulate(rtl, x, simulator="verilator", seed=3, valid_gaps=0.3, ready_stalls=0.4)
    assert np.array_equal(stalled.codes, np.asarray(graph.run(x)))


def _fork_graph() -> Graph:
    """The input read twice (a dense layer and a residual add around it), the sum read twice (ReLU and an add).
    Each node's ``acc`` holds its exact result; the tensors' formats round and wrap it (fused casts)."""
    f, h = FixedFormat(6, 2), FixedFormat(9, 4)
    t = {"x": Tensor("x", (4,), None), "q": Tensor("q", (4,), f), "d": Tensor("d", (4,), h),
         "s": Tensor("s", (4,), h), "r": Tensor("r", (4,), h), "y": Tensor("y", (4,), FixedFormat(10, 5))}  # fmt: skip
    w = np.array([[3, -5, 0, 7], [1, 2, 4, -8], [-6, 0, 5, 1], [0, 0, 1, 0]])
    nodes = [Cast("in", ["x"], "q", f),
             Dense("fc", ["q"], "d", FixedFormat(16, 6), weight=w, weight_fmt=FixedFormat(5, 2)),
             Add("res", ["d", "q"], "s", FixedFormat(11, 6)), Relu("relu", ["s"], "r", h),
             Add("out", ["r", "s"], "y", FixedFormat(10, 5))]  # fmt: skip
    return Graph(t, nodes, ["x"], ["y"], name="forks")


@pytest.mark.parametrize("register_every", [0, 1, 2])
def test_forks_and_delays_keep_one_sample_per_clock(register_every: int, tmp_path) -> None:
    """Forks of the input and of an inner tensor, delays of different depths: exact under stalls, a sample per
    clock without them, the latency the register stages say."""
    graph = _fork_graph()
    rtl = generate(graph, tmp_path / "forks", register_every=register_every)
    meta = read_rtl(rtl)
    assert meta["latency"] == {0: 0, 1: 4, 2: 2}[register_every]
    units = (rtl / f"{meta['top']}_units.v").read_text()
    assert units.count("an eager fork") == 2
    x = np.random.default_rng(5).uniform(-9, 9, size=(150, 4))
    result = simulate(rtl, x, simulator="verilator")
    assert np.array_equal(result.codes, np.asarray(graph.run(x)))
    assert result.cycles_per_sample == 1
    stalled = simulate(rtl, x, simulator="verilator", seed=register_every, valid_gaps=0.5, ready_stalls=0.5)
    assert np.array_equal(stalled.codes, np.asarray(graph.run(x)))


def test_bad_input(tmp_path, graphs) -> None:
    graph = graphs["mlp"]
    with pytest.raises(ValueError, match="register_every must be an integer >= 0, not -1"):
        generate(graph, tmp_path / "a", register_every=-1)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a QFX RTL folder; pass force=True"):
        generate(graph, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileNotFoundError, match="is not a QFX RTL folder"):
        read_rtl(tmp_path / "mine")
    no_cast = Graph(graph.tensors, graph.nodes[1:], graph.inputs, graph.outputs)
    with pytest.raises(ValueError, match="must start by casting its float input"):
        generate(no_cast, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_regenerate_replaces_own_folder(graphs, tmp_path) -> None:
    first = generate(graphs["wrap"], tmp_path / "r", name="first")
    second = generate(graphs["wrap"], tmp_path / "r", name="second")
    assert first == second and json.loads((second / "qfx_rtl.json").read_text())["top"] == "second"
    assert not (second / "first.v").exists() and not list(tmp_path.glob(".r.*"))


def _small_model(khot: int | None) -> Graph:
    """A two-layer network (8 -> 6 -> ReLU -> 3) with 6-bit weights; K-hot weights have at most ``khot`` nonzero
    signed digits (NAF), ordinary ones are random codes."""
    from qfx.ir.constants import naf_digits
    from qfx.result_types import accumulator_format

    rng = np.random.default_rng(1)
    f_in, f_w, f_h = FixedFormat(8, 2), FixedFormat(6, 1), FixedFormat(8, 3)
    allowed = np.array([c for c in range(-32, 32) if khot is None or len(naf_digits(c)) <= khot])
    w1, w2 = rng.choice(allowed, size=(6, 8)), rng.choice(allowed, size=(3, 6))
    acc1, acc2 = accumulator_format(f_in, f_w, 8), accumulator_format(f_h, f_w, 6)
    t = {"x": Tensor("x", (8,), None), "q": Tensor("q", (8,), f_in), "h": Tensor("h", (6,), f_h),
         "r": Tensor("r", (6,), f_h), "y": Tensor("y", (3,), acc2)}  # fmt: skip
    nodes = [
        Cast("in", ["x"], "q", f_in),
        Dense("fc1", ["q"], "h", acc1, weight=w1, weight_fmt=f_w, khot=khot),
        Relu("relu", ["h"], "r", f_h),
        Dense("fc2", ["r"], "y", acc2, weight=w2, weight_fmt=f_w, khot=khot),
    ]
    return Graph(t, nodes, ["x"], ["y"], name="khot" if khot else "plain")


def test_khot_synthesizes_without_dsp(tmp_path, summary) -> None:
    from qfx.synth import report

    reports = {}
    for khot in (2, None):
        graph = _small_model(khot)
        rtl = generate(graph, tmp_path / graph.name)
        x = np.random.default_rng(2).uniform(-40, 40, size=(300, 8))
        assert np.array_equal(simulate(rtl, x).codes, np.asarray(graph.run(x)))
        reports[graph.name] = report(rtl, board="ultra96v2")
        total = reports[graph.name].total
        summary(f"Yosys synth_xilinx (xcup), 8-6-3 network, {graph.name} weights: {total.lut} LUT, {total.ff} FF, "
                f"{total.carry} CARRY, {total.dsp} DSP")  # fmt: skip
    assert reports["khot"].total.dsp == 0 and reports["khot"].total.lut > 0
    assert reports["plain"].total.dsp > 0
    assert set(reports["khot"].layers) == {"fc1", "relu", "fc2"}
    assert all(layer.dsp == 0 for layer in reports["khot"].layers.values())
