"""Fully parallel dense layers as QFX adder graphs and as da4ml's, synthesized the same way in one run.

    .venv/bin/python benchmarks/bench_rtl.py --sizes 16x16,32x32 --bits 8 --kinds khot,plain
    .venv/bin/python benchmarks/bench_rtl.py --sizes 16x16,32x32,64x64,128x128 --bits 4,6,8   # the full sweep

For every layer size (outputs x inputs), weight width and kind, one random matrix (fixed seed): ``plain`` (uniform
codes) or ``khot`` (the plain codes projected to at most 2 nonzero signed digits, as K-hot training does). QFX
builds it multiplier-free (canonical signed digits, shared sub-sums and the row decomposition: :mod:`qfx.rtl.cmvm`,
default :class:`qfx.rtl.netlist.AdderOptions`; ``--ternary``: sums three at a time in ``qfx_add3``, one LUT6_2
per bit on the carry chain; adder wires ``(* keep *)`` unless ``--no-keep``), da4ml 0.6.0 with its
constant-matrix-vector solver (default options, which search every decomposition depth). Both are purely
combinational (QFX ``register_every=0``, da4ml's ``CombLogic``); Yosys ``synth_xilinx`` (no flattening) counts the
datapath module (QFX's dense layer module, da4ml's module with its adder submodules). Inputs are 8-bit signed
integers and every output is the exact sum.

Checks: every QFX netlist is evaluated in Python (:meth:`qfx.rtl.netlist.Netlist.evaluate`, Verilog widths) on
``--vectors`` random inputs plus the extremes, and its Verilog simulated with Icarus (``--sim icarus``) or
Verilator (through :mod:`qfx.rtl.runner`) on ``--sim-vectors``; every da4ml design is simulated with Icarus. All
are compared with ``x @ W.T``. Generation time is the CPU time of this process to build the Verilog (QFX
``generate``; da4ml ``comb_trace`` + ``VerilogModel.write``, its threads included): on a shared, loaded machine wall
time says more about the load than about either tool; both tools first build a 2 x 2 matrix untimed (one-off
imports and template loading). Yosys time is its run (``cached`` when the result was cached).
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import qfx
from qfx import synth
from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir.graph import Cast, Dense, Graph, Tensor
from qfx.result_types import accumulator_format

K = 2
X_FMT = FixedFormat(8, 8, quant=Quant.RND, overflow=Overflow.SAT)  # 8-bit signed integer input codes
COMMAND = "python benchmarks/bench_rtl.py " + " ".join(sys.argv[1:])


def khot_project(codes: np.ndarray, k: int, bits: int) -> np.ndarray:
    """Each weight code moved to the nearest code with at most ``k`` NAF digits, as training does
    (:func:`qfx.khot.project_khot`: a tie goes to the smaller magnitude)."""
    import torch

    from qfx.khot import project_khot

    integers = FixedFormat(bits, bits)  # the codes themselves as values
    return project_khot(torch.tensor(codes, dtype=torch.float64), integers, k).numpy().astype(np.int64)


def qfx_graph(weights: np.ndarray, bits: int, khot: int | None, name: str) -> Graph:
    """Float input -> cast to 8-bit integers -> dense with the exact accumulator as its output (no rounding)."""
    n_out, n_in = weights.shape
    w_fmt = FixedFormat(bits, bits)
    acc = accumulator_format(X_FMT, w_fmt, n_in)
    tensors = {"x": Tensor("x", (n_in,), None), "xq": Tensor("xq", (n_in,), X_FMT), "y": Tensor("y", (n_out,), acc)}
    nodes = [Cast("quant_x", ["x"], "xq", X_FMT),
             Dense("dense", ["xq"], "y", acc, weight=weights.astype(np.int64), weight_fmt=w_fmt, khot=khot)]
    return Graph(tensors, nodes, ["x"], ["y"], name=name)


def qfx_design(weights: np.ndarray, bits: int, khot: bool, out: Path, opts: dict) -> tuple[Path, dict]:
    """QFX Verilog of the layer (multiplier-free, combinational) and the dense layer's statistics."""
    import importlib

    from qfx.rtl.lower import adder_options, lower_node

    gen = importlib.import_module("qfx.rtl.generate")  # the module (qfx.rtl.generate is also the function's name)

    seen = {}

    def record(graph, node, module, options=None):  # the layer objects generate() builds, for their statistics
        layer = lower_node(graph, node, module, options)
        seen[node.name] = layer
        return layer

    name = f"qfx_{'khot' if khot else 'plain'}"
    graph = qfx_graph(weights, bits, K if khot else None, name)
    gen.lower_node, original = record, gen.lower_node
    try:
        start = time.process_time()
        with adder_options(multiplier_free=True, **opts):
            rtl = gen.generate(graph, out / name, register_every=0, force=True)
        seconds = time.process_time() - start
    finally:
        gen.lower_node = original
    layer = seen["dense"]
    return rtl, dict(gen_s=seconds, depth=layer.adder_depth, adders=layer.adders, bits=layer.adder_bits,
                     mults=layer.multipliers)  # fmt: skip


def check_netlist(weights: np.ndarray, bits: int, khot: bool, x: np.ndarray, opts: dict) -> bool:
    """The dense layer's netlist evaluated in Python equals ``x @ W.T``."""
    from qfx.rtl.layer import Builder
    from qfx.rtl.lower import _RULES
    from qfx.rtl.netlist import AdderOptions

    graph = qfx_graph(weights, bits, K if khot else None, "check")
    node = graph.nodes[1]
    b = Builder(graph, node, "check", AdderOptions(multiplier_free=True, **opts))
    _RULES[Dense](b, node)
    layer = b.finish()
    inputs = {b.elements[("xq", i)].wire: x[:, i] for i in range(x.shape[1])}
    values = b.net.evaluate(inputs)
    assert all(c.frac_bits <= 0 for c in layer.casts), "integer outputs"
    got = [np.broadcast_to(values[c.source] << -c.frac_bits, (len(x),)) for c in layer.casts]
    return np.array_equal(np.stack(got, axis=1), x @ weights.T)


def check_qfx(rtl: Path, weights: np.ndarray, x: np.ndarray, simulator: str) -> str:
    from qfx.rtl.runner import simulate_codes

    res = simulate_codes(rtl, x, simulator=simulator)
    return "equal" if np.array_equal(np.asarray(res.codes, dtype=np.int64), x @ weights.T) else "DIFFER"


def da4ml_design(weights: np.ndarray, name: str, out: Path) -> tuple[Path, list[tuple[int, int]], dict]:
    """da4ml's CMVM solution for ``x @ W.T`` with signed 8-bit integer inputs, as combinational Verilog.

    Returns the source folder, each output's (bit width, fractional bits) in the packed output bus, and statistics.
    """
    from da4ml.codegen import VerilogModel
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace
    from da4ml.types import minimal_kif

    start = time.process_time()
    ones = np.ones(weights.shape[1], dtype=np.int64)  # k=1, i=7, f=0: the QFX input codes
    inp = FixedVariableArray.from_kif(ones, 7 * ones, 0 * ones, hwconf=HWConfig(1, -1, -1))
    comb = comb_trace(inp, inp @ weights.T.astype(np.float64))
    VerilogModel(comb, name, out / name).write()
    seconds = time.process_time() - start
    fields = [(int(sum(kif)), int(kif[2])) for kif in map(minimal_kif, comb.out_qint)]
    assert all(frac <= 0 for _, frac in fields), "an integer matrix times integers has integer outputs"
    depth = []
    for op in comb.ops:  # opcodes 0/1: add/subtract of two buffer entries; others read one (or none)
        if op.opcode in (0, 1):
            depth.append(max(depth[op.id0], depth[op.id1]) + 1)
        else:
            depth.append(depth[op.id0] if 0 <= op.id0 < len(depth) else 0)
    adders = sum(op.opcode in (0, 1) for op in comb.ops)
    stats = dict(gen_s=seconds, depth=max((depth[i] for i in comb.out_idxs if i >= 0), default=0), adders=adders,
                 cost=comb.cost, bits=da4ml_adder_bits(comb))  # fmt: skip
    return out / name / "src", fields, stats


def da4ml_adder_bits(comb) -> int:
    """da4ml's adders counted as QFX counts its own (``Layer.adder_bits``): each adder's signed result width less
    the low bits of the finer operand, which pass through (operand LSBs from the steps of their intervals); a
    constant's adder (a bias) likewise, less the constant's trailing zero bits."""
    from qfx.rtl.netlist import signed_bits

    total = 0
    for op in comb.ops:
        if op.opcode not in (0, 1, 4):
            continue
        step = op.qint.step
        width = signed_bits(round(op.qint.min / step), round(op.qint.max / step))
        if op.opcode == 4:  # + a constant (``data`` in units of the result's step): its trailing zeros pass through
            total += width - ((op.data & -op.data).bit_length() - 1 if op.data else 0)
            continue
        lsb0 = math.log2(comb.ops[op.id0].qint.step)
        lsb1 = math.log2(comb.ops[op.id1].qint.step) + op.data
        total += width - round(abs(lsb0 - lsb1))
    return total


def da4ml_sources(src: Path, name: str) -> list[str]:
    # lookup_table.v reads a memory file at elaboration; a constant matrix never needs it.
    static = sorted(p.relative_to(src).as_posix() for p in (src / "static").glob("*.v") if p.stem != "lookup_table")
    return [f"{name}.v", *static]


def check_da4ml(src: Path, name: str, fields: list[tuple[int, int]], weights: np.ndarray, x: np.ndarray,
                bias: np.ndarray | None = None) -> str:
    """Icarus Verilog run of the da4ml module on ``x`` (8-bit codes), compared with ``x @ W.T`` (``+ bias``)."""
    iverilog = shutil.which("iverilog")
    if iverilog is None:
        return "not simulated (no iverilog)"
    in_bits, out_bits = 8 * weights.shape[1], sum(w for w, _ in fields)
    work = src.parent / "iverilog"
    work.mkdir(exist_ok=True)
    packed = ["".join(f"{int(v) & 0xFF:02x}" for v in row[::-1]) for row in x]  # element 0 in the low bits
    (work / "vectors.hex").write_text("\n".join(packed) + "\n")
    (work / "tb.v").write_text(
        f"""module tb;
  reg [{in_bits - 1}:0] mem [0:{len(x) - 1}];
  reg [{in_bits - 1}:0] inp;
  wire [{out_bits - 1}:0] out;
  integer i, f;
  {name} dut (.model_inp(inp), .model_out(out));
  initial begin
    $readmemh("vectors.hex", mem);
    f = $fopen("outputs.hex", "w");
    for (i = 0; i < {len(x)}; i = i + 1) begin inp = mem[i]; #1; $fdisplay(f, "%h", out); end
    $fclose(f);
    $finish;
  end
endmodule
"""
    )
    sources = [str(src / s) for s in da4ml_sources(src, name)]
    subprocess.run([iverilog, "-g2012", "-o", "tb.vvp", "tb.v", *sources], cwd=work, check=True)
    subprocess.run(["vvp", "-n", "tb.vvp"], cwd=work, check=True, capture_output=True)
    got = np.zeros((len(x), len(fields)), dtype=np.int64)
    for r, line in enumerate((work / "outputs.hex").read_text().split()):
        bus, low = int(line, 16), 0
        for c, (width, frac) in enumerate(fields):
            field = (bus >> low) & ((1 << width) - 1) if width else 0
            if width and field >> (width - 1):
                field -= 1 << width  # two's complement
            got[r, c] = field << -frac  # integer outputs: frac <= 0 (an output of even values drops its LSB)
            low += width
    want = x @ weights.T + (0 if bias is None else bias)
    return "equal" if np.array_equal(got, want) else "DIFFER"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        n_out, _, n_in = item.strip().partition("x")
        out.append((int(n_out), int(n_in or n_out)))
    return out


def one(args, n_out: int, n_in: int, bits: int, kind: str, out: Path) -> list[str]:
    rng = np.random.default_rng([args.seed, n_out, n_in, bits])
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    weights = rng.integers(lo, hi, size=(n_out, n_in))
    if kind == "khot":
        weights = khot_project(weights, K, bits)
    x = rng.integers(-128, 128, size=(args.vectors, n_in))
    x[:2] = [[-128] * n_in, [127] * n_in]
    folder = out / f"{n_out}x{n_in}_w{bits}_{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    rtl, q = qfx_design(weights, bits, kind == "khot", folder, adder_fields(args))
    verdict = "equal" if check_netlist(weights, bits, kind == "khot", x, adder_fields(args)) else "DIFFER"
    if args.sim != "none" and verdict == "equal":
        verdict = check_qfx(rtl, weights, x[: args.sim_vectors], args.sim)
    src, fields, d = da4ml_design(weights, "da4ml_" + kind, folder)
    d_verdict = check_da4ml(src, "da4ml_" + kind, fields, weights, x[: args.sim_vectors])
    row = [f"{n_out}x{n_in}", str(bits), kind]
    q_rep = yosys(args, rtl)
    d_name = "da4ml_" + kind
    d_rep = None if args.no_da4ml_synth else yosys(args, src, top=d_name, sources=da4ml_sources(src, d_name))
    (qc,) = q_rep.layers.values() if q_rep else (None,)
    dc = d_rep.total if d_rep else None

    def ys(rep) -> str:
        return "-" if rep is None else "cached" if rep.cached else f"{rep.yosys_s:.0f}"

    ratio = f"{qc.lut / dc.lut:.2f}" if qc and dc else "-"
    row += [str(qc.lut) if qc else "-", str(dc.lut) if dc else "-", ratio,
            f"{qc.carry}/{dc.carry}" if qc else "-", f"{qc.dsp}/{dc.dsp}" if qc else "-",
            f"{q['adders']}/{d['adders']}", f"{q['bits']}/{d['bits']}/{d['cost']:.0f}",
            f"{q['depth']}/{d['depth']}", f"{q['gen_s']:.2f}/{d['gen_s']:.2f}",
            f"{ys(q_rep)}/{ys(d_rep)}", f"{verdict}/{d_verdict}"]  # fmt: skip
    return row


JET = (16, 64, 32, 32, 5)  # hls4ml's jet tagger (tests/zoo.py 'jet_tagger'), batch norm folded away


def jet_graph(bits: int, khot: bool, seed: int) -> Graph:
    """The jet tagger's four dense layers with random ``bits``-bit weight codes (K=2 projected when ``khot``) and
    biases; each hidden layer's exact accumulator is cast to 8-bit unsigned with saturation (ReLU and clip)."""
    rng = np.random.default_rng([seed, bits, 7])
    x_fmt = FixedFormat(8, 3, quant=Quant.RND, overflow=Overflow.SAT)
    w_fmt, b_fmt = FixedFormat(bits, 1), FixedFormat(8, 3)
    act = FixedFormat(8, 3, signed=False, quant=Quant.TRN, overflow=Overflow.SAT)
    tensors = {"x": Tensor("x", (JET[0],), None), "h0": Tensor("h0", (JET[0],), x_fmt)}
    nodes: list = [Cast("quant_x", ["x"], "h0", x_fmt)]
    fmt = x_fmt
    for k, (n_in, n_out) in enumerate(itertools.pairwise(JET), start=1):
        w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(n_out, n_in))
        if khot:
            w = khot_project(w, K, bits)
        acc = FixedFormat(bits + 8 + 8, bits + 8 + 8 - fmt.frac_bits - w_fmt.frac_bits)
        last = k == len(JET) - 1
        tensors[f"a{k}"] = Tensor(f"a{k}", (n_out,), acc)
        nodes.append(Dense(f"fc{k}", [f"h{k - 1}"], f"a{k}", acc, weight=w, weight_fmt=w_fmt,
                           bias=rng.integers(-128, 128, size=n_out), bias_fmt=b_fmt, khot=K if khot else None))
        if not last:
            tensors[f"h{k}"] = Tensor(f"h{k}", (n_out,), act)
            nodes.append(Cast(f"relu{k}", [f"a{k}"], f"h{k}", act))
            fmt = act
    return Graph(tensors, nodes, ["x"], [f"a{len(JET) - 1}"], name=f"jet_w{bits}_{'khot' if khot else 'plain'}")


def da4ml_layer(weights: np.ndarray, signed: bool, bias: np.ndarray) -> dict:
    """da4ml's solution of one layer (8-bit inputs, signed or not, plus ``bias`` in units of the products' LSB, as
    QFX adds it): adders, depth, generation seconds."""
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace

    start = time.process_time()
    ones = np.ones(weights.shape[1], dtype=np.int64)
    inp = FixedVariableArray.from_kif(ones * int(signed), (8 - int(signed)) * ones, 0 * ones,
                                      hwconf=HWConfig(1, -1, -1))  # fmt: skip
    comb = comb_trace(inp, inp @ weights.T.astype(np.float64) + bias.astype(np.float64))
    depth = []  # opcodes 0/1: add/subtract two entries; 4: add a constant (the bias; QFX counts it as an adder too)
    for op in comb.ops:
        depth.append(max(depth[op.id0], depth[op.id1]) + 1 if op.opcode in (0, 1) else
                     depth[op.id0] + (op.opcode == 4) if 0 <= op.id0 < len(depth) else 0)  # fmt: skip
    return dict(adders=sum(op.opcode in (0, 1, 4) for op in comb.ops), cost=comb.cost, bits=da4ml_adder_bits(comb),
                gen_s=time.process_time() - start, comb=comb,
                depth=max((depth[i] for i in comb.out_idxs if i >= 0), default=0))  # fmt: skip


def da4ml_layer_lut(args, d: dict, node: Dense, bias: np.ndarray, signed: bool, folder: Path) -> tuple[str, str]:
    """da4ml's layer (``d['comb']``) as combinational Verilog, simulated with Icarus against ``x @ W.T + bias`` on
    ``--sim-vectors`` inputs of its width and synthesized like QFX's: (LUT, verdict)."""
    from da4ml.codegen import VerilogModel
    from da4ml.types import minimal_kif

    name = f"da4ml_{node.name}"
    comb = d["comb"]
    VerilogModel(comb, name, folder / name).write()
    src = folder / name / "src"
    fields = [(int(sum(kif)), int(kif[2])) for kif in map(minimal_kif, comb.out_qint)]
    rng = np.random.default_rng([args.seed, node.weight.shape[0], node.weight.shape[1]])
    x = rng.integers(-128, 128, size=(args.sim_vectors, node.weight.shape[1])) + (0 if signed else 128)
    verdict = check_da4ml(src, name, fields, node.weight, x, bias)
    rep = None if args.no_da4ml_synth else yosys(args, src, top=name, sources=da4ml_sources(src, name))
    return (str(rep.total.lut) if rep else "-"), verdict


def yosys(args, rtl: Path, **kw):
    """:func:`qfx.synth.report` with the command line's family, cache and timeout, one Yosys process at a time
    (the machine is shared); None with ``--no-synth``, or when Yosys ran past ``--yosys-timeout`` (printed)."""
    if args.no_synth:
        return None
    try:
        return synth.report(rtl, args.family, cache=not args.no_cache, timeout=args.yosys_timeout, workers=1, **kw)
    except RuntimeError as err:
        if "timeout" not in str(err):
            raise
        print(f"  {rtl}: {str(err).splitlines()[0]}", file=sys.stderr, flush=True)
        return None


def jet(args, out: Path) -> None:
    """The jet tagger fully parallel: per layer QFX vs da4ml LUTs (Yosys; each da4ml layer simulated against
    ``x @ W.T + b``), adders, adder bits (da4ml: its cost), depth, and the whole QFX design simulated against the IR
    interpreter. QFX's layer LUTs include its ReLU cast; da4ml's layers are bare."""
    import importlib

    from qfx.rtl.lower import adder_options, lower_node
    from qfx.rtl.runner import simulate

    gen = importlib.import_module("qfx.rtl.generate")
    headers = ["weights", "layer", "LUT q/d", "LUT ratio", "DSP q/d", "adders q/d", "adder bits q/d/d cost",
               "depth q/d", "gen s q/d", "Yosys s q/d", "sim q/d"]  # fmt: skip
    rows = []
    warm = np.array([[1, 3], [-5, 2]])  # one-off imports and template loading, outside every timed run
    qfx_design(warm, 4, False, out / "warmup", adder_fields(args))
    da4ml_layer(warm, True, np.zeros(2, dtype=np.int64))
    for bits, kind in (item.split(":") for item in args.jet_weights.split(",")):
        khot = kind == "khot"
        graph = jet_graph(int(bits), khot, args.seed)
        seen = {}

        def record(graph, node, module, options=None, seen=seen):
            layer = seen[node.name] = lower_node(graph, node, module, options)
            return layer

        gen.lower_node, original = record, gen.lower_node
        try:
            start = time.process_time()
            with adder_options(multiplier_free=True, **adder_fields(args)):
                rtl = gen.generate(graph, out / graph.name, register_every=1, force=True)
            q_s = time.process_time() - start
        finally:
            gen.lower_node = original
        from qfx.rtl import read_rtl

        latency = read_rtl(rtl)["latency"]
        x = np.random.default_rng(args.seed).uniform(-20, 20, size=(args.sim_vectors, JET[0]))
        verdict = "-"
        if args.sim != "none":
            res = simulate(rtl, x, simulator=args.sim)
            verdict = "equal" if np.array_equal(res.codes, np.asarray(graph.run(x), dtype=np.int64)) else "DIFFER"
        label = f"{bits}-bit {'K-hot' if khot else 'plain'}"
        q_rep = yosys(args, rtl)
        tot = dict(qa=0, da=0, qb=0, db=0, dc=0.0, qd=0, dd=0, ds=0.0, dsp=0, dl=0, dv=set())
        for k in range(1, len(JET)):
            node = next(n for n in graph.nodes if n.name == f"fc{k}")
            la = next(v for name, v in seen.items() if name.startswith(f"fc{k}"))
            product_frac = graph.fmt(node.inputs[0]).frac_bits + node.weight_fmt.frac_bits
            bias = node.bias << (product_frac - node.bias_fmt.frac_bits)
            d = da4ml_layer(node.weight, k == 1, bias)
            d_lut, d_verdict = da4ml_layer_lut(args, d, node, bias, k == 1, out / graph.name / "da4ml")
            q_lut = q_rep.layers[node.name] if q_rep else None
            ratio = f"{q_lut.lut / int(d_lut):.2f}" if q_lut and d_lut != "-" else "-"
            rows.append([label, node.name, f"{q_lut.lut if q_lut else '-'}/{d_lut}", ratio,
                         f"{q_lut.dsp if q_lut else '-'}/0", f"{la.adders}/{d['adders']}",
                         f"{la.adder_bits}/{d['bits']}/{d['cost']:.0f}", f"{la.adder_depth}/{d['depth']}",
                         f"-/{d['gen_s']:.2f}", "", f"-/{d_verdict}"])  # fmt: skip
            print("  " + "  ".join(rows[-1]), file=sys.stderr, flush=True)
            tot["dl"] = tot["dl"] + int(d_lut) if d_lut != "-" and tot["dl"] is not None else None
            tot["dv"].add(d_verdict)
            tot["qa"] += la.adders
            tot["da"] += d["adders"]
            tot["qd"] += la.adder_depth
            tot["dd"] += d["depth"]
            tot["ds"] += d["gen_s"]
            tot["qb"] += la.adder_bits
            tot["db"] += d["bits"]
            tot["dc"] += d["cost"]
            tot["dsp"] += la.multipliers
        q_tot = q_rep.total if q_rep else None
        lut_ratio = f"{q_tot.lut / tot['dl']:.2f}" if q_tot and tot["dl"] else "-"
        ys = "-" if q_rep is None else "cached" if q_rep.cached else f"{q_rep.yosys_s:.0f}"
        d_sim = "/".join(sorted(tot["dv"]))
        rows.append([label, f"total (latency {latency} cycles)",
                     f"{q_tot.lut if q_tot else '-'}/{tot['dl'] or '-'}", lut_ratio,
                     f"{q_tot.dsp if q_tot else '-'}/0", f"{tot['qa']}/{tot['da']}",
                     f"{tot['qb']}/{tot['db']}/{tot['dc']:.0f}", f"{tot['qd']}/{tot['dd']}",
                     f"{q_s:.2f}/{tot['ds']:.2f}", f"{ys}/-", f"{verdict}/{d_sim}"])  # fmt: skip
        print("  " + "  ".join(rows[-1]), file=sys.stderr, flush=True)
    print(table(headers, rows))
    print()
    print(markdown(headers, rows))
    print(f"\nReproduce: {COMMAND.strip()}")


def adder_fields(args) -> dict:
    """The :class:`qfx.rtl.netlist.AdderOptions` fields the command line sets (besides ``multiplier_free``)."""
    return dict(max_depth=args.max_depth, ternary=args.ternary, keep=not args.no_keep, min_uses=args.min_uses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=sizes("16x16,32x32"), help="outputs x inputs, comma-separated")
    parser.add_argument("--bits", default="8", help="weight widths, comma-separated (4,6,8)")
    parser.add_argument("--kinds", default="khot,plain", help="khot (K=2 projected) and/or plain weights")
    parser.add_argument("--max-depth", type=int, default=None, help="QFX adder depth bound (default: none)")
    parser.add_argument("--ternary", action="store_true", help="QFX sums with ternary adders (qfx_add3, Xilinx)")
    parser.add_argument("--no-keep", action="store_true", help="QFX adder wires without (* keep *)")
    parser.add_argument("--min-uses", type=int, default=2, help="QFX: rows a shared sub-sum must serve")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and test vectors")
    parser.add_argument("--family", default="xc7", choices=["xc7", "xcup"], help="Yosys synth_xilinx family")
    parser.add_argument("--vectors", type=int, default=2000, help="vectors the QFX netlist is evaluated on")
    parser.add_argument("--sim", default="icarus", choices=["icarus", "verilator", "none"], help="QFX RTL simulator")
    parser.add_argument("--sim-vectors", type=int, default=200, help="vectors each design is simulated on")
    parser.add_argument("--no-synth", action="store_true", help="skip Yosys (generation and checks only)")
    parser.add_argument("--out", type=Path, default=None, help="keep the designs here (default: a temporary folder)")
    parser.add_argument("--no-cache", action="store_true", help="rerun Yosys even when a cached result exists")
    parser.add_argument("--yosys-timeout", type=float, default=None, help="stop each Yosys run after this many s")
    parser.add_argument("--jet", action="store_true", help="the jet tagger 16-64-32-32-5 instead of single layers")
    parser.add_argument("--jet-weights", default="8:plain,8:khot,6:plain,6:khot", help="--jet: bits:kind, ...")
    parser.add_argument("--no-da4ml-synth", action="store_true", help="Yosys on QFX's designs only (da4ml's slow)")
    args = parser.parse_args()

    import da4ml

    print(f"qfx {qfx.__version__}, da4ml {da4ml.__version__}, Yosys synth_xilinx -family {args.family}, "
          f"seed {args.seed}, inputs 8-bit signed, QFX multiplier-free, {adder_fields(args)}")  # fmt: skip
    out = args.out or Path(tempfile.mkdtemp(prefix="qfx-bench-rtl-"))
    if args.jet:
        jet(args, out)
        return
    warm = np.array([[1, 3], [-5, 2]])  # one-off imports and template loading, outside every timed run
    for kind in args.kinds.split(","):
        qfx_design(warm, 4, kind == "khot", out / "warmup", adder_fields(args))
        da4ml_design(warm, "warmup_" + kind, out / "warmup")
    rows = []
    headers = ["layer", "w bits", "weights", "QFX LUT", "da4ml LUT", "LUT ratio", "CARRY q/d", "DSP q/d",
               "adders q/d", "adder bits q/d/d cost", "depth q/d", "gen s q/d", "yosys s q/d",
               "x @ W.T q/d"]  # fmt: skip
    for n_out, n_in in args.sizes:
        for bits in (int(b) for b in args.bits.split(",")):
            for kind in args.kinds.split(","):
                rows.append(one(args, n_out, n_in, bits, kind, out))
                print("  " + "  ".join(rows[-1]), file=sys.stderr, flush=True)
    print()
    print(table(headers, rows))
    print()
    print(markdown(headers, rows))
    ratios = [float(r[5]) for r in rows if r[5] != "-"]
    if ratios:
        print(f"\nLUT ratio QFX/da4ml: max {max(ratios):.2f}, mean {np.mean(ratios):.2f} (target <= 0.9: "
              f"{'met' if max(ratios) <= 0.9 else 'MISSED'})")  # fmt: skip
    print(f"designs in {out}")
    print(f"\nReproduce: {COMMAND.strip()}")


if __name__ == "__main__":
    main()
