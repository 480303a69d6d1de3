"""The hardware plan: folding search, cycle model, refusals, overrides (IR graphs built by hand: no torch, fast)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qfx.boards import load_board
from qfx.format import FixedFormat
from qfx.ir.graph import Cast, Conv2d, Dense, Graph, MaxPool2d, Relu, Reshape, Tensor
from qfx.plan import Folding, PlanError, fully_parallel, plan
from qfx.plan.cost import window_chunk, work_of
from qfx.result_types import accumulator_format

X8 = FixedFormat(8, 3, True)
W8 = FixedFormat(8, 1, True)


def mlp(sizes: list[int], seed: int = 0, density: float = 1.0) -> Graph:
    """input cast -> (dense -> relu) * n, weights random 8-bit codes."""
    rng = np.random.default_rng(seed)
    tensors = {"in": Tensor("in", (sizes[0],), None), "x": Tensor("x", (sizes[0],), X8)}
    nodes = [Cast("cast", ["in"], "x", None)]
    prev = "x"
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = rng.integers(-128, 128, (n_out, n_in)) * (rng.random((n_out, n_in)) < density)
        acc = accumulator_format(X8, W8, n_in)
        tensors[f"d{k}"] = Tensor(f"d{k}", (n_out,), X8)
        nodes.append(Dense(f"dense{k}", [prev], f"d{k}", acc, weight=w, weight_fmt=W8))
        tensors[f"r{k}"] = Tensor(f"r{k}", (n_out,), X8)
        nodes.append(Relu(f"relu{k}", [f"d{k}"], f"r{k}", X8))
        prev = f"r{k}"
    return Graph(tensors, nodes, ["in"], [prev], name="mlp")


def cnn(channels: int = 16, size: int = 16, seed: int = 0) -> Graph:
    """cast -> 3x3 conv -> max pool -> 3x3 conv -> flatten -> dense: small enough that the flattened vector (held
    three times by the streaming dense layer's collector and fold unit) fits the Ultra96-V2 by the estimate."""
    rng = np.random.default_rng(seed)
    t = {"in": Tensor("in", (3, size, size), None), "x": Tensor("x", (3, size, size), X8)}
    nodes = [Cast("cast", ["in"], "x", None)]
    w1 = rng.integers(-128, 128, (channels, 3, 3, 3))
    t["c1"] = Tensor("c1", (channels, size, size), X8)
    nodes.append(Conv2d("conv1", ["x"], "c1", accumulator_format(X8, W8, 27), weight=w1, weight_fmt=W8,
                        padding=(1, 1, 1, 1)))  # fmt: skip
    t["p1"] = Tensor("p1", (channels, size // 2, size // 2), X8)
    nodes.append(MaxPool2d("pool1", ["c1"], "p1", X8))
    w2 = rng.integers(-128, 128, (2 * channels, channels, 3, 3))
    t["c2"] = Tensor("c2", (2 * channels, size // 2 - 2, size // 2 - 2), X8)
    nodes.append(Conv2d("conv2", ["p1"], "c2", accumulator_format(X8, W8, 9 * channels), weight=w2, weight_fmt=W8))
    flat = 2 * channels * (size // 2 - 2) ** 2
    t["f"] = Tensor("f", (flat,), X8)
    nodes.append(Reshape("flat", ["c2"], "f", X8))
    t["y"] = Tensor("y", (10,), X8)
    nodes.append(Dense("fc", ["f"], "y", accumulator_format(X8, W8, flat), weight=rng.integers(-128, 128, (10, flat)),
                       weight_fmt=W8))  # fmt: skip
    return Graph(t, nodes, ["in"], ["y"], name="cnn")


def test_work_cycles_follow_the_loop_nest() -> None:
    g = cnn()
    conv2 = work_of(g, g.nodes[3])
    assert (conv2.positions, conv2.pe_dim, conv2.simd_dim) == (6 * 6, 32, 16 * 9)
    assert conv2.cycles(Folding(pe=4, simd=8)) == 6 * 6 * 8 * 18
    assert conv2.cycles(Folding(32, 144, 36)) == 1
    with pytest.raises(ValueError, match="conv2: pe = 5 must be a positive divisor of 32"):
        conv2.check(Folding(pe=5))


def test_small_mlp_fits_fully_parallel_when_the_board_allows() -> None:
    g = mlp([16, 8, 4])
    p = plan(g, "alveo_u250")
    assert p.cycles == 1 and p.fits
    assert [la.weights for la in p.layers if la.op == "dense"] == ["logic", "logic"]
    assert p.fps == pytest.approx(load_board("alveo_u250").clock_mhz * 1e6)


def test_jet_tagger_is_folded_to_fit_and_balanced() -> None:
    g = mlp([16, 64, 32, 32, 5])
    full = fully_parallel(g, "ultra96v2")
    assert full.cycles == 1 and not full.fits  # thousands of DSPs unrolled
    p = plan(g, "ultra96v2")
    assert p.fits and p.cycles > 1
    assert all(la.cycles <= p.cycles for la in p.layers)
    # the fastest that fits: asking for twice its throughput cannot fit
    with pytest.raises(PlanError, match="does not fit"):
        plan(g, "ultra96v2", target_fps=2 * p.fps)
    # a slower target costs no more
    slow = plan(g, "ultra96v2", target_fps=p.fps / 8)
    assert slow.fps >= p.fps / 8 and slow.total.dsp <= p.total.dsp


def test_cnn_plan_has_line_buffers_and_rom_weights() -> None:
    p = plan(cnn(), "ultra96v2")
    conv = {la.node: la for la in p.layers}
    assert conv["conv2"].weights == "rom" and p.fits
    assert p.as_dict()["layers"][0]["node"] == p.layers[0].node
    assert "| conv2 | conv2d |" in p.table()


def test_overrides_are_honoured_and_checked() -> None:
    g = mlp([16, 64, 5])
    p = plan(g, "ultra96v2", overrides={"dense0": Folding(pe=2, simd=4)})
    layer = next(la for la in p.layers if la.node == "dense0")
    assert layer.folding == Folding(2, 4) and layer.cycles == 32 * 4
    with pytest.raises(PlanError, match="dense0: simd = 3 must be a positive divisor of 16"):
        plan(g, "ultra96v2", overrides={"dense0": Folding(pe=2, simd=3)})
    with pytest.raises(PlanError, match="overrides name node 'nope'"):
        plan(g, "ultra96v2", overrides={"nope": Folding()})


def test_huge_layer_is_refused_quickly_naming_it() -> None:
    g = mlp([4096, 4096], density=1.0)
    start = time.perf_counter()
    with pytest.raises(PlanError, match=r"does not fit the Avnet Ultra96-V2 even at the slowest folding: it needs .* "
                                        r"BRAM36 \(layer dense0 alone"):  # fmt: skip
        plan(g, "ultra96v2")
    assert time.perf_counter() - start < 10


def test_residual_fifo_holds_the_shortcut() -> None:
    from qfx.ir.graph import Add
    from qfx.result_types import add_format

    g = mlp([16, 16, 16])
    g.tensors["s"] = Tensor("s", (16,), X8)
    g.nodes.append(Add("add", ["x", "r1"], "s", add_format(X8, X8)))
    g.outputs = ["s"]
    p = plan(g, "ultra96v2", target_fps=1e5)
    assert p.fifo_depths["x"] > 2  # the shortcut waits for two dense layers


def test_generate_picks_the_architecture_from_the_plan(tmp_path) -> None:
    from qfx.hls import generate, read_project

    small = generate(mlp([16, 8, 4]), tmp_path / "small", board="alveo_u250", architecture="auto")
    assert read_project(small).get("architecture", "parallel") == "parallel"
    folded = generate(cnn(), tmp_path / "cnn", board="ultra96v2", architecture="auto")
    meta = read_project(folded)
    assert meta["architecture"] == "stream" and meta["cycles"] == plan(cnn(), "ultra96v2").cycles
    with pytest.raises(ValueError, match="architecture must be 'parallel', 'stream' or 'auto', not 'fast'"):
        generate(cnn(), tmp_path / "x", architecture="fast")
    with pytest.raises(ValueError, match="a plan folds the streaming design"):
        generate(cnn(), tmp_path / "x", plan=plan(cnn(), "ultra96v2"))
    assert not (tmp_path / "x").exists()


def test_the_fully_parallel_design_is_chosen_when_it_fits() -> None:
    """One sample per clock beats any streaming folding (whose units read one input word per clock): the planner
    takes it when it fits the board, unless told the backend cannot unroll the network (``parallel=False``)."""
    g = mlp([16, 8, 4])
    full = fully_parallel(g, "alveo_u250")
    assert full.cycles == 1 and full.fits
    chosen = plan(g, "alveo_u250")
    assert chosen.cycles == 1 and [la.folding for la in chosen.layers] == [la.folding for la in full.layers]
    assert plan(g, "alveo_u250", parallel=False).fits
    big = cnn()
    assert not fully_parallel(big, "ultra96v2").fits and plan(big, "ultra96v2").cycles > 1


@settings(max_examples=200, deadline=None)
@given(
    c=st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16]),
    k=st.sampled_from([(1, 1), (2, 2), (3, 3), (1, 3), (5, 2)]),
    depthwise=st.booleans(),
    pe_i=st.integers(0, 10),
    simd_i=st.integers(0, 10),
)
def test_window_generator_rule_matches_the_fold_units_steps(c, k, depthwise, pe_i, simd_i) -> None:
    """Wherever the plan gives a layer a window generator (cost.window_chunk), the generator's word order (pass x
    kernel position x channel group) feeds every lane of the fold unit the value its whole-window index names: the
    renderer's check (qfx.rtl.stream._chunked) accepts it. Elsewhere the layer keeps whole windows."""
    from qfx.rtl.stream_window import chunked as _chunked

    kk = k[0] * k[1]
    c_out, groups, cig = (c, c, 1) if depthwise else (2 * c, 1, c)
    cog = c_out // groups
    pes = [d for d in range(1, c_out + 1) if c_out % d == 0]
    simds = [d for d in range(1, kk * cig + 1) if kk * cig % d == 0]
    pe, simd = pes[pe_i % len(pes)], simds[simd_i % len(simds)]
    chunk = window_chunk(c, c_out, groups, pe, simd)
    assert chunk == (pe if depthwise and simd == 1 else simd if not depthwise and c % simd == 0 else 0)

    def index(n, s_, p, j):
        kpos, ic = divmod(s_ * simd + j, cig)
        return kpos * c + ((n * pe + p) // cog) * cig + ic

    if chunk:
        nf, sf = c_out // pe, kk * cig // simd
        lane = _chunked("conv", index, chunk, c, depthwise, nf, sf, pe, simd)
        assert all(0 <= lane(0, 0, p, j) < chunk for p in range(pe) for j in range(simd))
