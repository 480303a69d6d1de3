"""Folded streaming Verilog on real networks: planned for a board, proven bit for bit, synthesized with Yosys.

For each model (tests/zoo.py, random weights, PTQ at 8-bit weights and activations calibrated on random data; the
K-hot variant with K = 2): the plan for the board, the streaming Verilog it renders (qfx.rtl.generate(...,
architecture="stream")), a Verilator simulation of ``--images`` inputs whose output codes are compared with the IR
interpreter's (with seeded valid gaps and ready stalls, then without to measure clocks per image), and Yosys
``synth_xilinx`` (LUT, FF, CARRY, DSP, BRAM against the board; synthesis time). Images/s are at the board clock.

    .venv/bin/python benchmarks/bench_fold.py                                # ResNet-8, its K-hot, DS-CNN, jets
    .venv/bin/python benchmarks/bench_fold.py --models jet_tagger --no-synth # quick
    .venv/bin/python benchmarks/bench_fold.py --json fold.json               # also write the figures as JSON

ResNet-8 on 2 cores: a Verilator build of several minutes, a simulation of about a minute per 10 images, and a
Yosys run of tens of minutes (cached by the sources' contents, qfx.synth).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from zoo import build, example_input

import qfx
import qfx.rtl
from qfx.ir import from_qonnx
from qfx.plan import plan
from qfx.synth import report

MODELS = {  # name: (zoo model, K-hot K)
    "resnet8": ("resnet8", None),
    "resnet8_khot2": ("resnet8", 2),
    "ds_cnn": ("ds_cnn", None),
    "jet_tagger": ("jet_tagger", None),
}


def run(label: str, tmp: Path, board: str, images: int, synth: bool, simulator: str, sim: bool = True,
        margin: float = 0.8) -> dict:  # fmt: skip
    """Plan, generate, simulate and synthesize one model; its figures."""
    zoo_name, khot = MODELS[label]
    cfg = qfx.QuantizeConfig(mode="ptq", khot=khot)
    model = qfx.quantize_(build(zoo_name), cfg, example_input(zoo_name, 64, seed=2)).eval()
    x = example_input(zoo_name, images, seed=3)
    graph = from_qonnx(qfx.export_qonnx(model, x, tmp / f"{label}.onnx"))
    xs = x.numpy().astype(np.float64)
    expected = np.asarray(graph.run(xs), dtype=np.int64).reshape(images, -1)
    p = plan(graph, board, margin=margin)
    print(f"\n## {label}\n\n{p.table()}\n", flush=True)
    start = time.perf_counter()
    rtl = qfx.rtl.generate(graph, tmp / label, architecture="stream", plan=p)
    out = dict(model=label, board=board, margin=margin, planned_cycles=p.cycles, plan_total=p.total.as_dict(),
               board_clock_hz=p.board.clock_mhz * 1e6,
               generate_s=time.perf_counter() - start, images=images)  # fmt: skip
    if sim:
        r = qfx.rtl.simulate(rtl, xs, simulator=simulator, seed=1, valid_gaps=0.2, ready_stalls=0.2)
        got = np.asarray(r.codes, dtype=np.int64).reshape(expected.shape)
        free = qfx.rtl.simulate(rtl, xs[: min(images, 4)], simulator=simulator)
        out.update(codes=int(expected.size), mismatches=int((got != expected).sum()), build_s=r.build_s,
                   sim_s=r.run_s + free.run_s, measured_cycles=free.cycles_per_sample,
                   images_per_s=p.board.clock_mhz * 1e6 / free.cycles_per_sample)  # fmt: skip
        print(f"RTL ({simulator}): {out['codes']} codes, {out['mismatches']} mismatches; "
              f"{free.cycles_per_sample:,.1f} clocks/image measured, {p.cycles:,} planned; "
              f"{out['images_per_s']:,.0f} images/s at {p.board.clock_mhz:g} MHz (build {r.build_s:.0f} s)",
              flush=True)  # fmt: skip
    if synth:
        start = time.perf_counter()
        s = report(rtl, board=board, progress=False)
        out.update(synth=s.total.resources(), utilization=s.utilization, yosys_s=s.yosys_s,
                   synth_wall_s=time.perf_counter() - start)  # fmt: skip
        print(s.table(), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--board", default="ultra96v2")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--margin", type=float, default=0.8,
                    help="fraction of each board resource the plan may use (qfx.plan.plan's margin; default 0.8)")
    ap.add_argument("--no-synth", action="store_true", help="skip Yosys")
    ap.add_argument("--no-sim", action="store_true", help="skip the RTL simulation (synthesis only)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    print("command: .venv/bin/python benchmarks/bench_fold.py " + " ".join(sys.argv[1:]))
    results = []
    with tempfile.TemporaryDirectory(prefix="qfx-fold-") as tmp:
        for label in args.models:
            results.append(
                run(label, Path(tmp), args.board, args.images, not args.no_synth, args.simulator, not args.no_sim,
                    args.margin)
            )
    print("\n| model | codes | mismatches | clocks/image measured | planned | images/s | LUT | FF | DSP | BRAM36 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        s = r.get("synth", {})
        cells = " | ".join(f"{s[k]:,g}" if k in s else "-" for k in ("lut", "ff", "dsp", "bram"))
        sim = f"{r['codes']:,} | {r['mismatches']} | {r['measured_cycles']:,.1f}" if "codes" in r else "- | - | -"
        fps = r.get("images_per_s", r["board_clock_hz"] / r["planned_cycles"])
        print(f"| {r['model']} | {sim} | {r['planned_cycles']:,} | {fps:,.0f} | {cells} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
