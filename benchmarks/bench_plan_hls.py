"""The full-size models planned for a board and built as streaming HLS: the plan's summary, the C-simulation's cold
compile time and its codes against the IR interpreter's.

For each model of tests/zoo.py (random weights, PTQ at 8-bit weights and activations calibrated on random data, as
in benchmarks/bench_fold.py): ``qfx.plan.plan`` for the board (the calibrated estimate, 80 % of every resource at
most), ``qfx.hls.generate`` of that plan (a dataflow project when it folds), a cold g++ build of its
C-simulation (a fresh cache folder) and ``--inputs`` random inputs whose output codes are compared with the IR's.

    .venv/bin/python benchmarks/bench_plan_hls.py                       # jet tagger, LeNet-5, ResNet-8, DS-CNN, AE
    .venv/bin/python benchmarks/bench_plan_hls.py --models resnet8 --inputs 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from zoo import build, example_input

import qfx
import qfx.hls
from qfx.ir import from_qonnx
from qfx.plan import plan

MODELS = ("jet_tagger", "lenet5", "resnet8", "ds_cnn", "autoencoder")


def run(name: str, board: str, n: int, tmp: Path) -> dict:
    """Plan, generate, compile cold and simulate one model; its figures."""
    model = qfx.quantize_(build(name), qfx.QuantizeConfig(mode="ptq"), example_input(name, 64, seed=2)).eval()
    x = example_input(name, n, seed=3)
    graph = from_qonnx(qfx.export_qonnx(model, x, tmp / f"{name}.onnx"))
    xs = x.numpy().astype(np.float64)
    expected = np.asarray(graph.run(xs), dtype=np.int64).reshape(n, -1)
    p = plan(graph, board)
    project = qfx.hls.generate(graph, tmp / f"{name}_hls", board=board, architecture="auto", plan=p)
    os.environ["QFX_CACHE_DIR"] = str(tmp / f"cache_{name}")  # a cold g++ build
    result = qfx.hls.csim_run(project, xs)
    codes = np.asarray(result.codes, dtype=np.int64).reshape(expected.shape)
    util = p.board.utilization(p.total.as_dict())
    return dict(model=name, cycles=p.cycles, fps=p.fps, dsp=util["dsp"], lut=util["lut"], bram=util["bram"],
                build_s=result.compile_s, cached=result.cached, run_s=result.run_s, codes=int(expected.size),
                mismatches=int((codes != expected).sum()))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--board", default="ultra96v2")
    ap.add_argument("--inputs", type=int, default=100)
    args = ap.parse_args()
    print("command: .venv/bin/python benchmarks/bench_plan_hls.py " + " ".join(sys.argv[1:]), flush=True)
    print("\n| model | cycles per sample | samples/s at the board clock | DSP / LUT / BRAM (estimate, % of the board) "
          "| C-sim build (cold g++) | run | codes compared | mismatches |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory(prefix="qfx-plan-hls-") as tmp:
        for name in args.models:
            r = run(name, args.board, args.inputs, Path(tmp))
            print(f"| {name} | {r['cycles']:,} | {r['fps']:,.0f} | {r['dsp']:.0f} / {r['lut']:.0f} / "
                  f"{r['bram']:.0f} | {r['build_s']:.0f} s{' (cached)' if r['cached'] else ''} | {r['run_s']:.0f} s | "
                  f"{r['codes']:,} | "
                  f"{r['mismatches']} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
