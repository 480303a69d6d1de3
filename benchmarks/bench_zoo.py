"""The model zoo through every link it can reach: PyTorch = qonnx = IR = HLS C-simulation = RTL (Verilator).

Every model of tests/zoo.py (random weights, PTQ calibrated on random data) is exported and imported; the fully
parallel HLS and RTL backends take the models they can unroll and refuse the others with their size, which the
table shows. Each link's integer output codes are compared with the IR interpreter's. The hardware plan for the
board is printed for each model too (cycles per sample, estimated DSP / LUT / BRAM).

    .venv/bin/python benchmarks/bench_zoo.py                      # every model, every link (RTL: tens of minutes)
    .venv/bin/python benchmarks/bench_zoo.py --models jet_tagger lenet5_tiny --no-rtl
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from zoo import ZOO, build, example_input

import qfx
import qfx.hls
import qfx.rtl
from qfx.export import execute_qonnx
from qfx.ir import from_qonnx, host
from qfx.plan import PlanError, plan


def _codes(values: np.ndarray, frac_bits: int) -> np.ndarray:
    return np.rint(np.ldexp(np.asarray(values, dtype=np.float64), frac_bits)).astype(np.int64)


def run_model(name: str, vectors: int, tmp: Path, rtl: bool, board: str) -> list[str]:
    """The table rows of one model: one per link (codes compared, mismatches or why it stopped, seconds)."""
    rows = []
    model = qfx.quantize_(build(name), qfx.QuantizeConfig(mode="ptq"), example_input(name, 128, seed=2)).eval()
    x = example_input(name, vectors, seed=3)
    path = qfx.export_qonnx(model, x, tmp / f"{name}.onnx")
    graph = from_qonnx(path)
    out_fmt = graph.fmt(graph.outputs[0])
    xd = host.pre(graph.host_pre, x.numpy().astype(np.float64))  # the IR's input (a transposed one: the host's)
    reference = np.asarray(graph.run(xd), dtype=np.int64).reshape(vectors, -1)
    with torch.no_grad():
        torch_codes = qfx.codes(model(x), out_fmt).numpy().reshape(vectors, -1)
    qonnx = _codes(execute_qonnx(path, x.numpy()), out_fmt.frac_bits).reshape(vectors, -1)

    def row(link: str, got: np.ndarray | str, seconds: float) -> None:
        if isinstance(got, str):
            rows.append(f"| {name} | {link} | — | {got} | {seconds:.1f} |")
        else:
            bad = int((np.asarray(got).reshape(reference.shape) != reference).sum())
            rows.append(f"| {name} | {link} | {reference.size:,} | {bad} | {seconds:.1f} |")

    row("PyTorch", torch_codes, 0.0)
    row("qonnx", qonnx, 0.0)
    start = time.perf_counter()
    try:
        project = qfx.hls.generate(graph, tmp / f"{name}_hls", board=board, tool="vitis")
        row("HLS C-sim (fully parallel)", qfx.hls.csim(project, xd), time.perf_counter() - start)
    except ValueError as e:
        row("HLS C-sim (fully parallel)", f"refused: {str(e).splitlines()[0][:120]}", time.perf_counter() - start)
    if rtl:
        start = time.perf_counter()
        try:
            folder = qfx.rtl.generate(graph, tmp / f"{name}_rtl")
            row("RTL, Verilator (fully parallel)", qfx.rtl.simulate(folder, xd).codes, time.perf_counter() - start)
        except ValueError as e:
            row("RTL, Verilator (fully parallel)", f"refused: {str(e).splitlines()[0][:120]}",
                time.perf_counter() - start)  # fmt: skip
    try:
        p = plan(graph, board)
        u = p.utilization()
        rows.append(f"| {name} | plan for {board} | {p.cycles:,} cycles/sample, {p.fps:,.0f}/s | DSP {u['dsp']:.0f} %, "
                    f"LUT {u['lut']:.0f} %, BRAM {u['bram']:.0f} % (estimate) | |")  # fmt: skip
    except PlanError as e:
        rows.append(f"| {name} | plan for {board} | — | {e} | |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(ZOO), choices=list(ZOO))
    parser.add_argument("--vectors", type=int, default=24)
    parser.add_argument("--board", default="ultra96v2")
    parser.add_argument("--no-rtl", action="store_true", help="skip the RTL simulations (the slowest link)")
    args = parser.parse_args()
    print("| model | link | codes compared | mismatches | seconds |\n|---|---|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory(prefix="qfx-bench-zoo-") as tmp:
        for name in args.models:
            for line in run_model(name, args.vectors, Path(tmp), not args.no_rtl, args.board):
                print(line, flush=True)
    print(f"\nreproduce: .venv/bin/python benchmarks/bench_zoo.py --models {' '.join(args.models)}"
          f"{' --no-rtl' if args.no_rtl else ''} --vectors {args.vectors}")  # fmt: skip


if __name__ == "__main__":
    main()
