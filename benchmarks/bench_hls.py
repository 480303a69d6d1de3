"""HLS C-simulation: cold g++ compile time and vectors/s of the streaming (dataflow) project, for LeNet-5, ResNet-8
and the 64-64-32-10 digits MLP, beside today's fully unrolled project and hls4ml's io_stream C-simulation.

    .venv/bin/python benchmarks/bench_hls.py --models lenet5 resnet8    # or: --vectors 50 --unrolled --no-hls4ml

Each model is built with seeded random weights (tests/zoo.py for LeNet-5 and ResNet-8; qfx.train.DigitsMLP),
quantized with PTQ (``qfx.quantize_(model, QuantizeConfig(mode="ptq"), calibration)``), exported with
``qfx.export_qonnx`` and imported with ``qfx.ir.from_qonnx``; the plan is ``qfx.plan.plan(graph, board)``. Every
C-simulation is compiled cold (a fresh ``QFX_CACHE_DIR``) and its codes are compared with the IR interpreter's on
the same inputs (0 mismatches or the row says how many). Compile time is wall clock and the CPU seconds g++ used
(they differ when other work shares the cores). ``--unrolled`` also builds today's fully unrolled project
(``qfx.backends.hls.generate``) for models up to ``--unrolled-max-weights`` weights (the others are reported as
skipped, and that backend refuses designs past its own size limit). Beside it, hls4ml's io_stream C-simulation of
the same graph (``qfx.to_hls4ml(graph, io_type="io_stream")``, whose read-back check holds every type QFX set),
compiled cold in a fresh project and run in-process on the same inputs: its codes are compared with the IR's and
with QFX's C-simulation's, and its compile time with QFX's (the ratio column). ``--hls4ml-parallel`` also compiles
hls4ml's io_parallel project of models up to ``--unrolled-max-weights``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

COMMAND = "python benchmarks/bench_hls.py " + " ".join(sys.argv[1:])


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def build(name: str, folder: Path):
    """(quantized IR graph, calibration batch, test-input generator) of a model by name."""
    import torch

    import qfx
    from qfx.ir import from_qonnx

    if name == "mlp":
        from qfx.train import DigitsMLP

        torch.manual_seed(0)
        model = DigitsMLP().eval()
        calibration = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))

        def sample(n: int) -> np.ndarray:
            return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(2)).numpy()
    else:
        import zoo

        model = zoo.build(name)
        calibration = zoo.example_input(name, batch=64, seed=1)

        def sample(n: int) -> np.ndarray:
            return zoo.example_input(name, batch=n, seed=2).numpy()

    quantized = qfx.quantize_(model, qfx.QuantizeConfig(mode="ptq"), calibration)
    graph = from_qonnx(qfx.export_qonnx(quantized, calibration[:2], folder / f"{name}.onnx"))
    return graph, sample


def csim_cold(project: Path, x: np.ndarray, graph) -> dict:
    """Cold compile + run of a QFX project: times, CPU, vectors/s, its codes and mismatches with the IR."""
    from qfx.backends.hls import csim_run

    with tempfile.TemporaryDirectory(prefix="qfx-bench-cache-") as cache:
        old = os.environ.get("QFX_CACHE_DIR")
        os.environ["QFX_CACHE_DIR"] = cache
        try:
            cpu = _children_cpu()
            result = csim_run(project, x)
            cpu = _children_cpu() - cpu
        finally:
            if old is None:
                os.environ.pop("QFX_CACHE_DIR", None)
            else:
                os.environ["QFX_CACHE_DIR"] = old
    reference = np.asarray(graph.run(x), dtype=np.int64).reshape(len(x), -1)
    return dict(compile_s=result.compile_s, cpu_s=cpu - result.run_s, run_s=result.run_s,
                vps=len(x) / max(result.run_s, 1e-9), mismatches=int((result.codes != reference).sum()),
                codes=int(reference.size), out=result.codes)  # fmt: skip


def weights_of(graph) -> int:
    return int(sum(np.asarray(n.weight).size for n in graph.nodes if getattr(n, "weight", None) is not None))


def hls4ml_run(graph, x: np.ndarray, folder: Path, io_type: str) -> dict | str:
    """Export through qfx.to_hls4ml, compile hls4ml's C++ cold (its own g++ build of a fresh project), run its
    C-simulation in-process (``predict``), compare codes with the IR; or why it failed."""
    import qfx
    from qfx.export import hls4ml_codes

    try:
        model = qfx.to_hls4ml(graph, folder / f"hls4ml_{io_type}", io_type=io_type)
        cpu, start = _children_cpu(), time.perf_counter()
        model.compile()
        compile_s, cpu = time.perf_counter() - start, _children_cpu() - cpu
        start = time.perf_counter()
        codes = np.asarray(hls4ml_codes(model, x), dtype=np.int64).reshape(len(x), -1)
        run_s = time.perf_counter() - start
    except Exception as e:  # report, never hide, what hls4ml did
        return f"{io_type} failed: {type(e).__name__}: {e}"
    reference = np.asarray(graph.run(x), dtype=np.int64).reshape(len(x), -1)
    return dict(compile_s=compile_s, cpu_s=cpu, run_s=run_s, vps=len(x) / max(run_s, 1e-9),
                mismatches=int((codes != reference).sum()), codes=int(reference.size), out=codes)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "resnet8", "mlp"])
    parser.add_argument("--vectors", type=int, default=20, help="test vectors per model (ResNet-8: at most 8)")
    parser.add_argument("--board", default="ultra96v2")
    parser.add_argument("--unrolled", action="store_true", help="also time today's fully unrolled project")
    parser.add_argument("--unrolled-max-weights", type=int, default=20_000)
    parser.add_argument("--no-hls4ml", action="store_true", help="skip hls4ml's io_stream C-simulation")
    parser.add_argument("--hls4ml-parallel", action="store_true", help="also compile hls4ml's io_parallel project "
                        "(models up to --unrolled-max-weights)")  # fmt: skip
    args = parser.parse_args()

    from qfx.backends.hls import generate
    from qfx.backends.hls.stream import generate_stream
    from qfx.plan import plan

    rows = []
    with tempfile.TemporaryDirectory(prefix="qfx-bench-hls-") as tmp:
        folder = Path(tmp)
        for name in args.models:
            graph, sample = build(name, folder)
            x = sample(min(args.vectors, 8) if name == "resnet8" else args.vectors)
            p = plan(graph, args.board)
            start = time.perf_counter()
            project = generate_stream(graph, folder / f"{name}_stream", plan=p)
            gen_s = time.perf_counter() - start
            s = csim_cold(project, x, graph)
            row = dict(model=name, weights=weights_of(graph), cycles=p.cycles, vectors=len(x), gen_s=gen_s, stream=s)
            if args.unrolled and row["weights"] <= args.unrolled_max_weights:
                try:
                    row["unrolled"] = csim_cold(generate(graph, folder / f"{name}_unrolled"), x, graph)
                except ValueError as e:  # DesignTooLarge: the fully parallel backend refuses the model
                    row["unrolled"] = f"refused: {str(e).split(':')[0]}"
            elif args.unrolled:
                row["unrolled"] = f"skipped ({row['weights']:,} weights > {args.unrolled_max_weights:,})"
            if not args.no_hls4ml:
                row["hls4ml"] = hls4ml_run(graph, x, folder, "io_stream")
                if isinstance(row["hls4ml"], dict):  # the same inputs: QFX's codes against hls4ml's
                    row["qfx_vs_hls4ml"] = int((row["hls4ml"]["out"] != s["out"]).sum())
            if args.hls4ml_parallel:
                row["hls4ml_parallel"] = (
                    hls4ml_run(graph, x, folder, "io_parallel") if row["weights"] <= args.unrolled_max_weights
                    else f"skipped ({row['weights']:,} weights > {args.unrolled_max_weights:,})"
                )  # fmt: skip
            rows.append(row)
            print(f"{name}: done", flush=True)

    def cell(r: dict | str | None, absent: str = "not run") -> str:
        if r is None:
            return absent
        if isinstance(r, str):
            return r
        return (f"{r['compile_s']:.1f} s ({r['cpu_s']:.1f} s CPU), {r['vps']:,.1f} vectors/s, "
                f"{r['mismatches']} / {r['codes']} codes differ from the IR")  # fmt: skip

    print()
    print("| model | weights | cycles/sample | vectors | QFX streaming C-sim (cold compile, run) | hls4ml io_stream "
          "C-sim (cold compile, run) | QFX vs hls4ml codes | compile time: hls4ml / QFX |")  # fmt: skip
    print("|---|---:|---:|---:|---|---|---:|---:|")
    for r in rows:
        h = r.get("hls4ml")
        q = r["stream"]
        ratio = (f"{h['compile_s'] / q['compile_s']:.1f}x wall, {h['cpu_s'] / max(q['cpu_s'], 1e-9):.1f}x g++ CPU"
                 if isinstance(h, dict) else "")  # fmt: skip
        same = f"{r['qfx_vs_hls4ml']} / {r['stream']['codes']} differ" if "qfx_vs_hls4ml" in r else ""
        print(f"| {r['model']} | {r['weights']:,} | {r['cycles']:,} | {r['vectors']} | {cell(r['stream'])} | "
              f"{cell(h, 'not run (--no-hls4ml)')} | {same} | {ratio} |")  # fmt: skip
    if args.unrolled or args.hls4ml_parallel:
        print()
        print("| model | QFX fully unrolled C-sim | hls4ml io_parallel C-sim |")
        print("|---|---|---|")
        for r in rows:
            print(f"| {r['model']} | {cell(r.get('unrolled'), 'not run (--unrolled)')} | "
                  f"{cell(r.get('hls4ml_parallel'), 'not run (--hls4ml-parallel)')} |")  # fmt: skip
    print()
    print(
        "QFX runs its C-simulation as a program reading the inputs from a file; hls4ml's runs in-process "
        "(predict() through ctypes). Both compiled cold with g++."
    )
    print(f"{os.cpu_count()} CPUs seen, load average {os.getloadavg()[0]:.1f} at the end.")
    print(f"Reproduce: {COMMAND}")


if __name__ == "__main__":
    main()
