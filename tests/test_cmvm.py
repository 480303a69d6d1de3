"""Row decomposition of constant matrices (qfx.rtl.cmvm.decompose) and the multiplier-free option of generate():
every decomposition is a forest within its chain bound whose edges save digits, every netlist built with it
computes x @ W.T exactly (evaluated with the Verilog widths), and generate(adders=...) reaches the layers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qfx.ir.constants import naf_digits
from qfx.rtl.cmvm import decompose, naf_weight
from qfx.rtl.netlist import AdderOptions, Netlist, Operand, signed_bits


def test_naf_weight_matches_naf_digits() -> None:
    values = np.arange(-3000, 3000)
    assert [len(naf_digits(int(v))) for v in values] == naf_weight(values).tolist()


def similar_rows(rng: np.random.Generator, n_out: int, n_in: int, bits: int) -> np.ndarray:
    """Rows that are +-other rows plus a little: what decomposition is for."""
    w = rng.integers(-(1 << bits), 1 << bits, size=(n_out, n_in))
    for o in range(1, n_out):
        if rng.random() < 0.6:
            p = int(rng.integers(0, o))
            w[o] = rng.choice([-1, 1]) * w[p] + rng.integers(-1, 2, size=n_in) * (rng.random(n_in) < 0.3)
    return w


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 12), st.integers(1, 10), st.integers(1, 8), st.sampled_from([None, 1, 2]))
def test_decomposition_is_a_saving_forest_within_its_chain_bound(seed, n_out, n_in, bits, chain) -> None:
    w = similar_rows(np.random.default_rng(seed), n_out, n_in, bits)
    parents = decompose(w, chain)
    own = naf_weight(w).sum(axis=1)
    for o, (p, g) in enumerate(parents):
        if p < 0:
            continue
        assert p != o and g in (1, -1)
        assert naf_weight(w[o] - g * w[p]).sum() + 1 < own[o]  # the edge saves digits after its own adder
        seen, q, above = {o}, p, 1
        while parents[q][0] >= 0:  # no cycle, chain within the bound
            assert q not in seen
            seen.add(q)
            q, above = parents[q][0], above + 1
        assert chain is None or above <= chain


def build(weights, lo, hi, constants, options, max_depth=None):
    net = Netlist()
    xs = [Operand(net.wire(signed_bits(lo, hi), f"x[{i}]"), lo, hi) for i in range(weights.shape[1])]
    rows = []
    for o, row in enumerate(weights):
        ops = [t for i, c in enumerate(row) for t in net.terms(xs[i], int(c), 0, True)]
        rows.append((ops, int(constants[o])))
    return net, xs, net.sums(rows, options, max_depth)


def evaluate(net, xs, results, x):
    values = net.evaluate({op.wire: x[:, i] for i, op in enumerate(xs)})
    return np.stack([np.broadcast_to(values[r.wire] << r.shift, (len(x),)) for r in results], axis=1)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 10), st.integers(1, 9), st.integers(1, 7), st.booleans(),
       st.sampled_from([None, 0, 2]))  # fmt: skip
@example(seed=7, n_out=2, n_in=2, bits=7, signed=False, slack=0)  # a decomposed row too deep for the bound: skipped
def test_decomposed_netlists_are_exact_and_never_worse(seed, n_out, n_in, bits, signed, slack) -> None:
    rng = np.random.default_rng(seed)
    w = similar_rows(rng, n_out, n_in, bits)
    lo, hi = (-8, 7) if signed else (0, 15)
    constants = rng.integers(-50, 50, size=n_out) * (rng.random(n_out) < 0.5)
    bound = None
    if slack is not None:  # a bound that a balanced tree of each row's digits (and its constant) meets
        digits = naf_weight(w).sum(axis=1)
        bound = int(max(np.ceil(np.log2(np.maximum(digits, 1))) + (constants != 0))) + slack
        bound = max(bound, 1)
    x = rng.integers(lo, hi + 1, size=(40, n_in))
    x[0], x[1] = lo, hi
    want = x @ w.T + constants
    plain, _, _ = build(w, lo, hi, constants, AdderOptions(decompose=False), bound)
    for chains in ((None,), (1,), (None, 2)):
        net, xs, results = build(w, lo, hi, constants, AdderOptions(chains=chains), bound)
        assert np.array_equal(evaluate(net, xs, results, x), want)
        assert net.adder_bits <= plain.adder_bits  # the undecomposed netlist is always among those tried
        if bound is not None:
            assert all(net.depth_of(r) <= bound + (r.wire in net.negated) for r in results)


def test_decomposition_saves_on_similar_rows() -> None:
    rng = np.random.default_rng(11)
    base = rng.integers(-128, 128, size=(4, 24))
    w = np.concatenate([base, -base + (rng.random((4, 24)) < 0.1), 2 * base[::-1] + 1])
    constants = np.zeros(len(w), dtype=np.int64)
    plain, _, _ = build(w, -128, 127, constants, AdderOptions(decompose=False))
    net, xs, results = build(w, -128, 127, constants, AdderOptions())
    assert net.adder_bits < 0.9 * plain.adder_bits
    x = rng.integers(-128, 128, size=(50, 24))
    assert np.array_equal(evaluate(net, xs, results, x), x @ w.T)


def test_generate_takes_adder_options(tmp_path) -> None:
    from test_netlist import dense_graph

    from qfx.rtl import generate, read_rtl

    rng = np.random.default_rng(2)
    graph = dense_graph(rng.integers(-32, 32, size=(6, 10)), bias=rng.integers(-128, 128, size=6))
    assert read_rtl(generate(graph, tmp_path / "a"))["multipliers"] > 0
    assert read_rtl(generate(graph, tmp_path / "b", adders={"multiplier_free": {"dense"}}))["multipliers"] == 0
    assert read_rtl(generate(graph, tmp_path / "c", adders=AdderOptions(multiplier_free=True)))["multipliers"] == 0
    assert read_rtl(generate(graph, tmp_path / "d", adders="auto"))["multipliers"] > 0  # the DSPs fit the board
    with pytest.raises(ValueError, match="no field 'multiplierfree'"):
        generate(graph, tmp_path / "e", adders={"multiplierfree": True})
    with pytest.raises(ValueError, match="adders must be"):
        generate(graph, tmp_path / "e", adders="all")
    with pytest.raises(ValueError, match="streaming one has no adder graphs"):
        generate(graph, tmp_path / "e", adders="auto", architecture="stream")


def test_plan_moves_layers_off_dsps_only_where_they_are_scarce() -> None:
    from test_netlist import dense_graph

    from qfx.plan import fully_parallel
    from qfx.plan.adders import multiplier_free_layers

    rng = np.random.default_rng(4)
    graph = dense_graph(rng.integers(-32, 32, size=(16, 20)))
    p = fully_parallel(graph, "ultra96v2")
    assert p.total.dsp > 0 and multiplier_free_layers(p) == frozenset()
    few = dataclasses.replace(p.board, resources=dataclasses.replace(p.board.resources, dsp=p.total.dsp // 2))
    assert multiplier_free_layers(dataclasses.replace(p, board=few)) == frozenset({"dense"})
