"""Constant-matrix adder graphs (qfx.rtl.netlist, qfx.rtl.cmvm): every netlist computes x @ W.T exactly (evaluated
in Python with the Verilog widths, and a few through a simulator), depth bounds hold, sharing saves adders, and a
64 x 64 8-bit layer is built whole (no size at which the sharing search is skipped)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir.graph import Cast, Dense, Graph, Tensor
from qfx.rtl.layer import Builder
from qfx.rtl.lower import _RULES, AdderOptions, adder_options, lower_node
from qfx.rtl.netlist import Netlist, Operand, signed_bits


def build(weights, lo, hi, *, khot=True, share=True, max_depth=None, shifts=None, constants=None, max_pairs=None):
    """A netlist of ``weights @ x`` (plus constants) for inputs in [lo, hi]: (netlist, input wires, outputs)."""
    net = Netlist()
    n_out, n_in = weights.shape
    xs = [Operand(net.wire(signed_bits(lo, hi), f"x[{i}]"), lo, hi) for i in range(n_in)]
    rows = []
    for o in range(n_out):
        ops = []
        for i in range(n_in):
            ops += net.terms(xs[i], int(weights[o, i]), 0 if shifts is None else int(shifts[i]), khot)
        rows.append((ops, 0 if constants is None else int(constants[o])))
    options = AdderOptions(share=share, **({} if max_pairs is None else {"max_pairs": max_pairs}))
    return net, xs, net.sums(rows, options, max_depth)


def outputs(net, xs, results, x) -> np.ndarray:
    values = net.evaluate({op.wire: x[:, i] for i, op in enumerate(xs)})
    return np.stack([np.broadcast_to(values[r.wire] << r.shift, (len(x),)) for r in results], axis=1)


def reference(weights, x, shifts=None, constants=None) -> np.ndarray:
    scale = 1 if shifts is None else (1 << np.asarray(shifts, dtype=np.int64))
    y = (x * scale) @ weights.T
    return y if constants is None else y + np.asarray(constants, dtype=np.int64)


def inputs(rng, lo, hi, n_in, count=64) -> np.ndarray:
    x = rng.integers(lo, hi + 1, size=(count, n_in))
    x[0], x[1] = lo, hi  # the extremes of every range
    return x


@st.composite
def problems(draw):
    n_out, n_in = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    bits = draw(st.integers(1, 9))
    signed = draw(st.booleans())
    x_bits = draw(st.integers(1, 9))
    lo, hi = (-(1 << (x_bits - 1)), (1 << (x_bits - 1)) - 1) if signed else (0, (1 << x_bits) - 1)
    w = draw(st.lists(st.integers(-(1 << bits), (1 << bits) - 1), min_size=n_out * n_in, max_size=n_out * n_in))
    shifts = draw(st.lists(st.integers(0, 3), min_size=n_in, max_size=n_in))
    constants = draw(st.lists(st.integers(-300, 300), min_size=n_out, max_size=n_out))
    return np.array(w, dtype=np.int64).reshape(n_out, n_in), lo, hi, shifts, constants, draw(st.integers(0, 2**31))


@settings(max_examples=150, deadline=None)
@given(problems(), st.booleans(), st.booleans())
def test_netlist_computes_the_matrix_product(problem, khot, share) -> None:
    weights, lo, hi, shifts, constants, seed = problem
    net, xs, results = build(weights, lo, hi, khot=khot, share=share, shifts=shifts, constants=constants)
    x = inputs(np.random.default_rng(seed), lo, hi, weights.shape[1])
    assert np.array_equal(outputs(net, xs, results, x), reference(weights, x, shifts, constants))
    if khot:
        assert net.multipliers == 0


@settings(max_examples=100, deadline=None)
@given(problems(), st.integers(0, 4))
def test_depth_bound_holds(problem, slack) -> None:
    weights, lo, hi, shifts, constants, seed = problem
    # the shallowest the netlist promises: a balanced tree over each row's terms, then the constant's adder
    fewest = max(int(np.ceil(np.log2(max(sum(len(Netlist().terms(Operand("v", lo, hi), int(c), 0, True))
                                             for c in row), 1)))) + (k != 0)
                 for row, k in zip(weights, constants, strict=True))  # fmt: skip
    bound = max(fewest, 1) + slack
    net, xs, results = build(weights, lo, hi, max_depth=bound, shifts=shifts, constants=constants)
    assert all(net.depth_of(r) <= bound + (r.wire in net.negated) for r in results)
    assert all(net.wires[int(w[1:])].expr.startswith("-") for w in net.negated)  # only all-negative sums
    x = inputs(np.random.default_rng(seed), lo, hi, weights.shape[1])
    assert np.array_equal(outputs(net, xs, results, x), reference(weights, x, shifts, constants))


def test_depth_bound_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be summed in at most 2 levels"):
        build(np.array([[1, 1, 1, 1, 1]]), -8, 7, max_depth=2)


@pytest.mark.parametrize("khot", [True, False])
def test_sharing_saves_adders(khot) -> None:
    rng = np.random.default_rng(3)
    weights = rng.integers(-128, 128, size=(16, 16))
    alone, _, _ = build(weights, -128, 127, share=False)
    shared, xs, results = build(weights, -128, 127)
    assert shared.adders < 0.75 * alone.adders and shared.adder_bits < 0.8 * alone.adder_bits
    x = inputs(rng, -128, 127, 16)
    assert np.array_equal(outputs(shared, xs, results, x), x @ weights.T)


def test_large_layer_is_shared_whole_and_block_mode_still_shares() -> None:
    """64 x 64 8-bit (about 920k term pairs: the old search skipped anything above 400k) is shared whole; with a
    small pair budget the inputs are split into blocks and the result still shares and stays exact."""
    rng = np.random.default_rng(0)
    weights = rng.integers(-128, 128, size=(64, 64))
    x = inputs(rng, -128, 127, 64, count=16)
    alone, _, _ = build(weights, -128, 127, share=False)
    whole, xs, results = build(weights, -128, 127)
    assert whole.adders < 0.5 * alone.adders
    assert np.array_equal(outputs(whole, xs, results, x), x @ weights.T)
    blocks, xs, results = build(weights[:32, :32], -128, 127, max_pairs=20_000)
    plain, _, _ = build(weights[:32, :32], -128, 127, share=False)
    assert blocks.adders < 0.7 * plain.adders
    assert np.array_equal(outputs(blocks, xs, results, x[:, :32]), x[:, :32] @ weights[:32, :32].T)


def dense_graph(weights: np.ndarray, bias: np.ndarray | None = None, khot: int | None = None) -> Graph:
    x_fmt = FixedFormat(6, 3, quant=Quant.RND, overflow=Overflow.SAT)
    w_fmt, acc = FixedFormat(6, 2), FixedFormat(24, 10)
    n_out, n_in = weights.shape
    tensors = {"x": Tensor("x", (n_in,), None), "xq": Tensor("xq", (n_in,), x_fmt), "y": Tensor("y", (n_out,), acc)}
    nodes = [Cast("quant_x", ["x"], "xq", x_fmt),
             Dense("dense", ["xq"], "y", acc, weight=weights, weight_fmt=w_fmt, bias=bias,
                   bias_fmt=FixedFormat(8, 4) if bias is not None else None, khot=khot)]  # fmt: skip
    return Graph(tensors, nodes, ["x"], ["y"], name="dense_net")


def test_multiplier_free_option_per_layer() -> None:
    rng = np.random.default_rng(5)
    weights = rng.integers(-32, 32, size=(6, 10))
    graph = dense_graph(weights, bias=rng.integers(-128, 128, size=6))
    node = graph.nodes[1]
    assert lower_node(graph, node, "m").multipliers > 0
    with adder_options(multiplier_free={"dense"}, max_depth=6):
        layer = lower_node(graph, node, "m")
    assert layer.multipliers == 0 and 0 < layer.adder_depth <= 6 and layer.adders > 0
    with adder_options(multiplier_free={"other"}):
        assert lower_node(graph, node, "m").multipliers > 0
    # the layer's netlist, evaluated: codes of the accumulator
    b = Builder(graph, node, "m", AdderOptions(multiplier_free=True))
    _RULES[Dense](b, node)
    layer = b.finish()
    x = inputs(rng, -32, 31, 10)
    values = b.net.evaluate({b.elements[("xq", i)].wire: x[:, i] for i in range(10)})
    acc_f = node.acc.frac_bits  # everything in units of the accumulator's LSB
    got = np.stack([np.broadcast_to(values[c.source] << (acc_f - c.frac_bits), (len(x),)) for c in layer.casts],
                   axis=1)  # fmt: skip
    product_f = graph.fmt("xq").frac_bits + node.weight_fmt.frac_bits
    want = ((x @ weights.T) << (acc_f - product_f)) + (node.bias << (acc_f - node.bias_fmt.frac_bits))
    assert np.array_equal(got, want)


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not found: install Icarus Verilog")
def test_multiplier_free_rtl_simulates_exactly(tmp_path) -> None:
    from qfx.rtl import generate, simulate

    rng = np.random.default_rng(7)
    weights = rng.integers(-32, 32, size=(8, 12))
    graph = dense_graph(weights, bias=rng.integers(-128, 128, size=8))
    with adder_options(multiplier_free=True, max_depth=7):
        rtl = generate(graph, tmp_path / "rtl")
    x = rng.uniform(-4, 4, size=(200, 12))
    result = simulate(rtl, x, simulator="icarus")
    assert np.array_equal(result.codes, np.asarray(graph.run(x), dtype=np.int64))
    body = (rtl / "dense_net_layers.v").read_text().split("module", 2)[-1]
    assert "*" not in body.replace("(* keep *)", "")  # no multiplication (the attribute aside)
