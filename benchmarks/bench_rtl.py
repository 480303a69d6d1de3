"""Yosys resources of one dense layer (16 inputs x 8 outputs, 8-bit signed inputs and weights) as QFX Verilog and as
da4ml Verilog, with plain weights and with K-hot (K=2) weights, all synthesized the same way in one run.

    .venv/bin/python benchmarks/bench_rtl.py                  # or: --family xcup --seed 1 --vectors 2000

Four designs of the same random matrix (fixed seed): (a) QFX, plain multiplies; (b) QFX, the weights projected to
at most 2 nonzero signed (NAF) digits, as shift-and-add; (c) da4ml's constant-matrix-vector solver on that K-hot
matrix; (d) da4ml on the plain matrix. All four are purely combinational (QFX ``register_every=0``, da4ml's
unpipelined ``CombLogic``), so no side has registers the other lacks; each is synthesized by Yosys ``synth_xilinx``
without flattening, and the row compares the dense datapath module itself (QFX's layer module, da4ml's module with
its adder submodules). Every design is first checked to compute ``x @ W.T`` exactly: the QFX ones by RTL
simulation (Verilator through cocotb, which also gives vectors/s) and the da4ml ones with Icarus Verilog.
"""

from __future__ import annotations

import argparse
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
from qfx.ir.constants import khot_tables
from qfx.ir.graph import Cast, Dense, Graph, Tensor
from qfx.result_types import accumulator_format

N_IN, N_OUT, K = 16, 8, 2
X_FMT = FixedFormat(8, 3, quant=Quant.RND, overflow=Overflow.SAT)  # 8-bit signed input codes
W_FMT = FixedFormat(8, 1)  # 8-bit signed weight codes
COMMAND = "python benchmarks/bench_rtl.py " + " ".join(sys.argv[1:])


def khot_project(codes: np.ndarray, k: int) -> np.ndarray:
    """Each weight code moved to the nearest code with at most ``k`` NAF digits, as training does
    (:func:`qfx.khot.project_khot`: a tie goes to the smaller magnitude)."""
    import torch

    from qfx.khot import project_khot

    integers = FixedFormat(W_FMT.width, W_FMT.width)  # the codes themselves as values
    return project_khot(torch.tensor(codes, dtype=torch.float64), integers, k).numpy().astype(np.int64)


def qfx_graph(weights: np.ndarray, khot: int | None, name: str) -> Graph:
    """Float input -> cast to 8 bits -> dense with the exact accumulator as its output (no rounding)."""
    acc = accumulator_format(X_FMT, W_FMT, N_IN)
    tensors = {
        "x": Tensor("x", (N_IN,), None),
        "xq": Tensor("xq", (N_IN,), X_FMT),
        "y": Tensor("y", (N_OUT,), acc),
    }
    nodes = [
        Cast("quant_x", ["x"], "xq", X_FMT),
        Dense("dense", ["xq"], "y", acc, weight=weights.astype(np.int64), weight_fmt=W_FMT, khot=khot),
    ]
    return Graph(tensors, nodes, ["x"], ["y"], name=name)


def qfx_design(weights: np.ndarray, khot: int | None, out: Path) -> Path:
    """QFX Verilog of the layer, purely combinational (no register stage)."""
    from qfx.rtl.generate import generate

    name = "qfx_khot" if khot else "qfx_plain"
    return generate(qfx_graph(weights, khot, name), out / name, register_every=0, force=True)


def check_qfx(rtl: Path, weights: np.ndarray, x: np.ndarray) -> tuple[str, str]:
    """(result, vectors/s) of the RTL simulation against ``x @ W.T``; needs :mod:`qfx.rtl.runner`."""
    try:
        from qfx.rtl.runner import simulate_codes
    except ImportError:
        return "not simulated (no qfx.rtl.runner)", "-"
    res = simulate_codes(rtl, x)
    ok = np.array_equal(np.asarray(res.codes, dtype=np.int64), x @ weights.T)
    return ("equal" if ok else "DIFFER"), f"{res.vectors_per_s:,.0f}"


def da4ml_design(weights: np.ndarray, name: str, out: Path) -> tuple[Path, list[tuple[int, int]]]:
    """da4ml's CMVM solution for ``x @ W.T`` with signed 8-bit integer inputs, as combinational Verilog.

    Returns the source folder and each output's (bit width, fractional bits) in the packed output bus.
    """
    from da4ml.codegen import VerilogModel
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace
    from da4ml.types import minimal_kif

    # k=1, i=7, f=0: signed integers in [-128, 127], the same bits as the QFX input codes.
    ones = np.ones(N_IN, dtype=np.int64)
    inp = FixedVariableArray.from_kif(ones, 7 * ones, 0 * ones, hwconf=HWConfig(1, -1, -1))
    comb = comb_trace(inp, inp @ weights.T.astype(np.float64))
    VerilogModel(comb, name, out / name).write()
    fields = [(int(sum(kif)), int(kif[2])) for kif in map(minimal_kif, comb.out_qint)]
    assert all(frac <= 0 for _, frac in fields), "an integer matrix times integers has integer outputs"
    return out / name / "src", fields


def da4ml_sources(src: Path, name: str) -> list[str]:
    # lookup_table.v reads a memory file at elaboration; a constant matrix never needs it.
    static = sorted(p.relative_to(src).as_posix() for p in (src / "static").glob("*.v") if p.stem != "lookup_table")
    return [f"{name}.v", *static]


def check_da4ml(src: Path, name: str, fields: list[tuple[int, int]], weights: np.ndarray, x: np.ndarray) -> str:
    """Icarus Verilog run of the da4ml module on ``x``, compared with ``x @ W.T``."""
    iverilog = shutil.which("iverilog")
    if iverilog is None:
        return "not simulated (no iverilog)"
    in_bits, out_bits = 8 * N_IN, sum(w for w, _ in fields)
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
    return "equal" if np.array_equal(got, x @ weights.T) else "DIFFER"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and test vectors")
    parser.add_argument("--family", default="xc7", choices=["xc7", "xcup"], help="Yosys synth_xilinx family")
    parser.add_argument("--vectors", type=int, default=10000, help="random input vectors each design is checked on")
    parser.add_argument("--out", type=Path, default=None, help="keep the designs here (default: a temporary folder)")
    parser.add_argument("--no-cache", action="store_true", help="rerun Yosys even when a cached result exists")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    plain = rng.integers(W_FMT.min_code, W_FMT.max_code + 1, size=(N_OUT, N_IN))
    khot = khot_project(plain, K)
    khot_tables(khot, K)  # raises if a code had more than K digits
    x = rng.integers(X_FMT.min_code, X_FMT.max_code + 1, size=(args.vectors, N_IN))
    x[:2] = [[X_FMT.min_code] * N_IN, [X_FMT.max_code] * N_IN]  # the extremes of every output's range

    import da4ml

    print(
        f"qfx {qfx.__version__}, da4ml {da4ml.__version__}, Yosys synth_xilinx -family {args.family}, seed {args.seed}"
    )
    moved, change = int((khot != plain).sum()), float(np.abs(khot - plain).mean())
    print(f"dense {N_IN} -> {N_OUT}, inputs {X_FMT}, weights {W_FMT}; K-hot K={K}: {moved} of {plain.size} weights "
          f"moved, mean |change| {change:.2f} codes")  # fmt: skip
    out = args.out or Path(tempfile.mkdtemp(prefix="qfx-bench-rtl-"))
    out.mkdir(parents=True, exist_ok=True)
    cache = not args.no_cache
    rows, luts = [], {}
    for label, weights, kind in (
        ("QFX plain multiply", plain, "qfx"),
        ("QFX K-hot K=2", khot, "qfx-khot"),
        ("da4ml on K-hot matrix", khot, "da4ml-khot"),
        ("da4ml on plain matrix", plain, "da4ml"),
    ):
        start = time.perf_counter()
        if kind.startswith("qfx"):
            rtl = qfx_design(weights, K if kind == "qfx-khot" else None, out)
            verified, rate = check_qfx(rtl, weights, x)
            rep = synth.report(rtl, args.family, cache=cache)
            (counts,) = rep.layers.values()  # the dense layer's module (the top only wires ports)
            extra = f"top total LUT {rep.total.lut}"
        else:
            name = kind.replace("-", "_")
            src, fields = da4ml_design(weights, name, out)
            verified, rate = check_da4ml(src, name, fields, weights, x), "-"
            rep = synth.report(src, args.family, top=name, sources=da4ml_sources(src, name), cache=cache)
            counts, extra = rep.total, ""
        luts[kind] = counts.lut
        yosys = "cached" if rep.cached else f"{rep.yosys_s:.0f}"
        rows.append([label, str(counts.lut), str(counts.ff), str(counts.carry), str(counts.dsp), yosys, rate,
                     verified, f"{time.perf_counter() - start:.0f}", extra])  # fmt: skip
        print(f"  {label}: done", file=sys.stderr)

    print(f"\nYosys cell counts of the combinational datapath; checked on {args.vectors} vectors against x @ W.T")
    headers = ["design", "LUT", "FF", "CARRY", "DSP", "yosys s", "sim vec/s", "x @ W.T", "wall s", "note"]
    print(table(headers, rows))
    ratio = luts["qfx-khot"] / luts["da4ml-khot"]
    dsp_ok = rows[1][4] == "0"
    print(f"\nK-hot QFX / da4ml on the same matrix: LUT ratio {ratio:.2f} (target <= 1.2: {'met' if ratio <= 1.2 else 'MISSED'}); "  # noqa: E501
          f"K-hot DSPs {rows[1][4]} (target 0: {'met' if dsp_ok else 'MISSED'})")  # fmt: skip
    print(f"QFX plain / da4ml plain: LUT ratio {luts['qfx'] / max(luts['da4ml'], 1):.2f} (QFX plain also uses DSPs)")
    print(f"designs in {out}")
    print(f"\nReproduce: {COMMAND.strip()}")


if __name__ == "__main__":
    main()
