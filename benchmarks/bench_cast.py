"""Throughput of qfx.cast against apytypes (a peer), a plain torch clone (the memory-bound floor) and, on CUDA,
a device copy of the same tensor, all measured in one run.

    .venv/bin/python benchmarks/bench_cast.py            # or: make bench
    .venv/bin/python benchmarks/bench_cast.py --sizes 1e6 --repeats 3

Every ratio is a time divided by another time taken in this same run on this same machine. The peer's result is
checked against ours on the benchmark data, so both sides compute the same thing.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

import qfx
from qfx import FixedFormat, Overflow, Quant

MODES = {
    "RND/SAT": FixedFormat(8, 3, quant=Quant.RND, overflow=Overflow.SAT),
    "TRN/WRAP": FixedFormat(8, 3, quant=Quant.TRN, overflow=Overflow.WRAP),
}
COMMAND = "python benchmarks/bench_cast.py " + " ".join(sys.argv[1:])


def best_time(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    """Best wall time of ``repeats`` calls after one warm-up call."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def apytypes_cast(fmt: FixedFormat) -> Callable[[np.ndarray], np.ndarray] | None:
    """The same cast with apytypes: exact import of the float32 values, then the cast in the format's modes."""
    try:
        import apytypes as apy
    except ImportError:
        return None
    quant = {Quant.RND: apy.QuantizationMode.TIES_POS, Quant.TRN: apy.QuantizationMode.TO_NEG}[fmt.quant]
    overflow = {Overflow.SAT: apy.OverflowMode.SAT, Overflow.WRAP: apy.OverflowMode.WRAP}[fmt.overflow]

    def run(x: np.ndarray) -> np.ndarray:
        # float32 inputs of the benchmark lie in (-2**9, 2**9) with ulps >= 2**-40: 50 bits import them exactly.
        wide = apy.APyFixedArray.from_float(x, int_bits=10, frac_bits=40)
        return wide.cast(int_bits=fmt.int_bits, frac_bits=fmt.frac_bits, quantization=quant, overflow=overflow)

    return run


def bench_cpu(n: int, repeats: int, rows: list[list[str]]) -> None:
    torch.manual_seed(0)
    x = (torch.randn(n) * 4).clamp(-500, 500)
    x = torch.where(x.abs() < 2**-15, 0.0, x)  # keep every ulp >= 2**-40 for the peer's exact import
    x_np = x.numpy()
    copy_t = best_time(lambda: x.clone(), repeats)
    for name, fmt in MODES.items():
        compiled = torch.compile(lambda t, f=fmt: qfx.cast(t, f), fullgraph=True)
        eager_t = best_time(lambda f=fmt: qfx.cast(x, f), repeats)
        comp_t = best_time(lambda c=compiled: c(x), repeats)
        ours = qfx.cast(x, fmt)
        assert torch.equal(compiled(x), ours), "compiled cast differs from eager"
        peer = apytypes_cast(fmt)
        if peer is None:
            peer_t, agree = float("nan"), "apytypes not installed"
        else:
            peer_t = best_time(lambda p=peer: p(x_np), repeats)
            theirs = np.asarray(peer(x_np).to_numpy(), dtype=np.float64)
            agree = "equal" if np.array_equal(theirs, ours.double().numpy()) else "DIFFER"
        rows.append(
            [
                f"cpu {n:.0e} {name}",
                f"{eager_t * 1e3:.1f}",
                f"{comp_t * 1e3:.1f}",
                f"{peer_t * 1e3:.1f}",
                f"{copy_t * 1e3:.1f}",
                f"{peer_t / comp_t:.1f}x",
                f"{peer_t / eager_t:.1f}x",
                f"{comp_t / copy_t:.2f}",
                agree,
            ]
        )


def bench_cuda(n: int, repeats: int, rows: list[list[str]]) -> None:
    sync = torch.cuda.synchronize
    x = torch.randn(n, device="cuda") * 4
    copy_t = best_time(lambda: x.clone(), repeats, sync)
    for name, fmt in MODES.items():
        compiled = torch.compile(lambda t, f=fmt: qfx.cast(t, f), fullgraph=True)
        comp_t = best_time(lambda c=compiled: c(x), repeats, sync)
        eager_t = best_time(lambda f=fmt: qfx.cast(x, f), repeats, sync)
        assert torch.equal(compiled(x).cpu(), qfx.cast(x.cpu(), fmt)), "CUDA cast differs from CPU"
        xg = x.clone().requires_grad_()
        grad = torch.ones_like(x)
        step = torch.compile(lambda t, f=fmt: qfx.cast(t, f))

        def fwd_bwd(s=step, t=xg, g=grad) -> None:
            s(t).backward(g)

        fb_t = best_time(fwd_bwd, repeats, sync)
        rows.append(
            [
                f"cuda {n:.0e} {name}",
                f"{eager_t * 1e3:.3f}",
                f"{comp_t * 1e3:.3f}",
                f"{fb_t * 1e3:.3f}",
                f"{copy_t * 1e3:.3f}",
                f"{comp_t / copy_t:.2f}",
                f"{fb_t / copy_t:.2f}",
            ]
        )


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7], help="numbers of values")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (best is kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"qfx {qfx.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    cpu_rows: list[list[str]] = []
    for n in args.sizes:
        bench_cpu(int(n), args.repeats, cpu_rows)
    print("\nCPU, float32 input, format ap_fixed<8,3,Q,O>; times in ms (best of repeats)")
    print(
        table(
            [
                "case",
                "qfx eager",
                "qfx compiled",
                "apytypes",
                "clone",
                "apy/compiled",
                "apy/eager",
                "compiled/clone",
                "results",
            ],
            cpu_rows,
        )
    )
    if torch.cuda.is_available():
        cuda_rows: list[list[str]] = []
        for n in args.sizes:
            bench_cuda(int(n), args.repeats, cuda_rows)
        print(f"\nCUDA ({torch.cuda.get_device_name()}), float32; times in ms")
        print(table(["case", "eager", "compiled", "fwd+bwd", "copy", "compiled/copy", "fwd+bwd/copy"], cuda_rows))
    else:
        print("\nCUDA: no GPU here, the device ratios were not measured.")
    print(f"\nReproduce: {COMMAND.strip()}")


if __name__ == "__main__":
    main()
