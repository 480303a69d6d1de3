"""Brevitas' bnn_pynq networks through QFX: every network x precision, every link, integer codes compared.

Each network (TFC, SFC, LFC, CNV at W1A1, W1A2, W2A2; LFC has no W2A2 config) is built by brevitas_examples with
random weights and batch-norm statistics (tests/bnn_models.py), exported with ``brevitas.export.export_qonnx`` and
imported. Links:

* ``qonnx``: every IR tensor (input codes, dense/conv results, thresholds) against qonnx's ``execute_onnx`` on the
  same inputs, and the host's float tail against qonnx's float32 output, bit for bit;
* ``csim``: the HLS project's C-simulation (g++) against the IR: fully parallel when the network unrolls (TFC),
  else streaming, folded by the plan for the board (``--hls``);
* ``rtl``: the Verilog on Verilator against the IR (``--rtl``): fully parallel (TFC only: minutes), or with
  ``--stream`` the folded streaming Verilog of the board's plan (``plan(graph, board, parallel=False)``) on
  ``--rtl-inputs`` inputs with seeded valid gaps and ready stalls, and the cycles per sample it measures (a second
  run without stalls) beside the plan's;
* ``yosys``: synth_xilinx resources of that Verilog (``--yosys``), per layer, total and % of the board.

    .venv/bin/python benchmarks/bench_brevitas.py                           # every network and precision, qonnx
    .venv/bin/python benchmarks/bench_brevitas.py --nets tfc --precisions 1w1a --hls --architecture parallel --rtl
    .venv/bin/python benchmarks/bench_brevitas.py --nets tfc --precisions 1w1a --yosys --board ultra96v2
    .venv/bin/python benchmarks/bench_brevitas.py --nets cnv --precisions 1w1a --hls --board pynq-z2
    .venv/bin/python benchmarks/bench_brevitas.py --nets tfc cnv --precisions 1w1a --inputs 20 --board ultra96v2 \
        --stream --rtl --rtl-inputs 4 --yosys                               # folded streaming RTL + Yosys
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import bnn_models as bm

from qfx.ir import host
from qfx.ir.qonnx import from_qonnx


def run(name: str, args, tmp: Path) -> list[str]:
    """Table rows of one network: one per link."""
    rows = []
    t0 = time.perf_counter()
    path = bm.export(name, tmp / f"{name}.onnx", seed=args.seed)
    graph = from_qonnx(path)
    t_import = time.perf_counter() - t0
    x = np.random.default_rng(args.seed).uniform(0, 1, size=(args.inputs, *bm.input_shape(name.split("_")[0])))
    x = x.astype(np.float32)
    t0 = time.perf_counter()
    compared, bad = bm.compare_with_qonnx(graph, path, x)
    rows.append(f"| {name} | IR = qonnx execute_onnx (every tensor + float tail) | {args.inputs} | {compared:,} | "
                f"{bad} | {time.perf_counter() - t0 + t_import:.1f} |")  # fmt: skip
    print(rows[-1], flush=True)
    xi = host.pre(graph.host_pre, x).reshape(len(x), -1)
    expected = graph.run(xi.reshape(len(x), *graph.tensors[graph.inputs[0]].shape)).reshape(len(x), -1)
    if args.hls:
        import qfx.hls

        t0 = time.perf_counter()
        project = qfx.hls.generate(graph, tmp / f"{name}_hls", architecture=args.architecture, board=args.board)
        meta = qfx.hls.read_project(project)
        how = f"streaming, {meta['cycles']} cycles/sample" if meta.get("architecture") == "stream" else "fully parallel"
        codes = qfx.hls.csim(project, xi)
        rows.append(f"| {name} | HLS C-sim ({how}, {args.board}) = IR | {len(x)} | {codes.size:,} | "
                    f"{int((codes != expected).sum())} | {time.perf_counter() - t0:.1f} |")  # fmt: skip
        print(rows[-1], flush=True)
    if (args.rtl or args.yosys) and args.stream:
        rows += _stream(name, graph, xi[: args.rtl_inputs], expected[: args.rtl_inputs], args, tmp)
    elif args.rtl or args.yosys:
        import qfx.rtl

        t0 = time.perf_counter()
        rtl = qfx.rtl.generate(graph, tmp / f"{name}_rtl")
        if args.rtl:
            result = qfx.rtl.simulate(rtl, xi)
            rows.append(f"| {name} | RTL (Verilator, fully parallel) = IR | {len(x)} | {result.codes.size:,} | "
                        f"{int((result.codes != expected).sum())} | {time.perf_counter() - t0:.1f} |")  # fmt: skip
            print(rows[-1], flush=True)
        if args.yosys:
            _yosys(name, rtl, args.board)
    return rows


def _yosys(name: str, rtl: Path, board: str) -> None:
    from qfx.synth import report

    rep = report(rtl, board=board)
    c = rep.total
    print(f"Yosys synth_xilinx ({rep.family}) {name}: LUT {c.lut}, FF {c.ff}, CARRY {c.carry}, DSP {c.dsp}, "
          f"BRAM {c.bram:g} ({rep.yosys_s:.0f} s)", flush=True)  # fmt: skip
    print(rep.table(), flush=True)


def _stream(name: str, graph, xi: np.ndarray, expected: np.ndarray, args, tmp: Path) -> list[str]:
    """The folded streaming Verilog of the board's plan: Verilator with gaps/stalls, cycles measured vs planned,
    Yosys."""
    import qfx.rtl
    from qfx.plan import plan

    t0 = time.perf_counter()
    folded = plan(graph, args.board, parallel=False)
    print(folded.table(), flush=True)
    rtl = qfx.rtl.generate(graph, tmp / f"{name}_stream_rtl", architecture="stream", plan=folded)
    meta = qfx.rtl.read_rtl(rtl)
    print(f"{name}: streaming Verilog for {args.board} in {time.perf_counter() - t0:.1f} s, "
          f"{meta['multipliers']} multipliers, {len(meta['roms'])} ROMs", flush=True)  # fmt: skip
    rows = []
    if args.rtl:
        t0 = time.perf_counter()
        got = qfx.rtl.simulate(rtl, xi, simulator="verilator", seed=args.seed, valid_gaps=0.3, ready_stalls=0.3)
        bad = int((np.asarray(got.codes).reshape(expected.shape) != expected).sum())
        free = qfx.rtl.simulate(rtl, xi, simulator="verilator")
        bad += int((np.asarray(free.codes).reshape(expected.shape) != expected).sum())
        rows.append(f"| {name} | folded stream RTL (Verilator, {args.board} plan, gaps/stalls and free) = IR | "
                    f"{len(xi)} | {2 * expected.size:,} | {bad} | {time.perf_counter() - t0:.1f} |")  # fmt: skip
        print(rows[-1], flush=True)
        per = free.cycles_per_sample
        print(f"{name}: {per:,.1f} clocks/sample measured (Verilator build {got.build_s:.0f} s), {folded.cycles:,} "
              f"planned; {folded.board.clock_mhz * 1e6 / per:,.0f} samples/s at {folded.board.clock_mhz:g} MHz",
              flush=True)  # fmt: skip
    if args.yosys:
        _yosys(name, rtl, args.board)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", nargs="+", default=list(bm.NETWORKS), choices=bm.NETWORKS)
    p.add_argument("--precisions", nargs="+", default=list(bm.PRECISIONS), choices=bm.PRECISIONS)
    p.add_argument("--inputs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--board", default="pynq-z2")
    p.add_argument("--hls", action="store_true", help="HLS C-simulation (parallel when it unrolls, else streaming)")
    p.add_argument("--architecture", default="auto", choices=("auto", "parallel", "stream"),
                   help="HLS design: fully parallel, streaming folded by the board's plan, or auto (parallel when the "
                   "plan is one sample per clock and it unrolls)")  # fmt: skip
    p.add_argument("--rtl", action="store_true", help="Verilog on Verilator (fully parallel, or --stream)")
    p.add_argument("--yosys", action="store_true", help="Yosys synth_xilinx resources of the Verilog")
    p.add_argument("--stream", action="store_true", help="--rtl/--yosys on the folded streaming Verilog of the plan")
    p.add_argument("--rtl-inputs", type=int, default=4, help="inputs simulated in the streaming RTL")
    args = p.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    print("| network | link | inputs | codes compared | mismatches | seconds |\n|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory(prefix="qfx-bnn-") as tmp:
        for net in args.nets:
            for prec in args.precisions:
                if net == "lfc" and prec == "2w2a":
                    continue  # brevitas_examples has no lfc_2w2a config
                rows += run(f"{net}_{prec}", args, Path(tmp))
    bad = sum(int(r.split("|")[5]) for r in rows)
    print(f"\n{len(rows)} links, {bad} mismatches in total")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
