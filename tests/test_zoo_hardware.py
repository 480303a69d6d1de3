"""The zoo's hardware-sized models through every link: PyTorch = qonnx = IR = HLS C-simulation = RTL simulation.

Each ``tiny`` model of :mod:`zoo` (the same architectures as the full ones, fewer channels) is quantized with PTQ,
exported (qonnx's execution is checked inside the export), imported, and run through the fully parallel HLS
project (g++ C-simulation) and Verilog (cocotb on Verilator); every link's integer output codes must equal the IR
interpreter's. The full-size models go through PyTorch = qonnx = IR in test_zoo.py; the fully parallel backends
refuse them before writing anything, which is checked here too.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from zoo import ZOO, build, example_input

import qfx
import qfx.hls
import qfx.rtl
from qfx.ir import from_qonnx, host

HARDWARE = sorted(name for name, m in ZOO.items() if m.tiny)
# Verilator builds of the fully parallel LeNet-5, ResNet-8 and DS-CNN minis take minutes each on 2 cores: they run
# in benchmarks/bench_zoo.py (results in docs/results.md), the others here. The MobileNetV3-style and time-series
# minis too: their ops' RTL is checked in Icarus by test_frontend_ops.py and test_rtl_ops.py (and bench_zoo).
RTL_IN_CI = sorted(set(HARDWARE) - {"lenet5_tiny", "resnet8_tiny", "ds_cnn_tiny", "mobilenet_v3_mini", "series_cnn"})
VECTORS = 24


@functools.cache
def _chain(name: str, root: str):
    model = qfx.quantize_(build(name), qfx.QuantizeConfig(mode="ptq"), example_input(name, 128, seed=2)).eval()
    x = example_input(name, VECTORS, seed=3)
    path = qfx.export_qonnx(model, x, Path(root) / f"{name}.onnx")  # raises unless qonnx == PyTorch
    graph = from_qonnx(path)
    xi = host.pre(graph.host_pre, x.numpy().astype(np.float64))  # the IR's input (a transposed one: the host's)
    codes = np.asarray(graph.run(xi), dtype=np.int64).reshape(VECTORS, -1)
    with torch.no_grad():
        torch_codes = qfx.codes(model(x), graph.fmt(graph.outputs[0])).numpy().reshape(VECTORS, -1)
    assert np.array_equal(torch_codes, codes), f"{name}: PyTorch and the IR differ"
    return graph, xi, codes


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("zoo_hw"))
    return lambda name: _chain(name, root)


@pytest.mark.parametrize("name", HARDWARE)
def test_hls_csim_equals_ir(name: str, chain, toolchain, tmp_path, summary) -> None:
    graph, x, expected = chain(name)
    project = qfx.hls.generate(graph, tmp_path / "hls", board="ultra96v2", tool="vitis")
    got = np.asarray(qfx.hls.csim(project, x), dtype=np.int64).reshape(expected.shape)
    mismatches = int((got != expected).sum())
    summary(f"zoo {name}: PyTorch = qonnx = IR = HLS C-sim on {VECTORS} inputs, {expected.size} codes, "
            f"{mismatches} mismatches")  # fmt: skip
    assert mismatches == 0


@pytest.mark.parametrize("name", RTL_IN_CI)
def test_rtl_equals_ir(name: str, chain, tmp_path, summary) -> None:
    _require_verilator()
    graph, x, expected = chain(name)
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl")
    got = np.asarray(qfx.rtl.simulate(rtl, x).codes, dtype=np.int64).reshape(expected.shape)
    mismatches = int((got != expected).sum())
    summary(f"zoo {name}: RTL (Verilator) on {VECTORS} inputs, {expected.size} codes, {mismatches} mismatches")
    assert mismatches == 0


def test_full_size_models_are_refused_before_writing(chain, tmp_path) -> None:
    """LeNet-5 at full size is too large to unroll: both backends say so, naming a layer, and write nothing."""
    graph, _, _ = chain("lenet5")
    for backend, generate in (("hls", qfx.hls.generate), ("rtl", qfx.rtl.generate)):
        with pytest.raises(ValueError, match=r"multiply-accumulates") as info:
            generate(graph, tmp_path / backend)
        assert "layer" in str(info.value) and "\n" not in str(info.value)
        assert not (tmp_path / backend).exists()


def _require_verilator() -> None:
    """Skip when Verilator (or what it needs to build) is missing, naming the missing tool."""
    from qfx.rtl import SimulatorError, runner

    try:
        with runner._tool_path("verilator"):
            pass
    except SimulatorError as exc:
        pytest.skip(str(exc))
    for tool in ("make", "c++"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: Verilator needs it to build")
