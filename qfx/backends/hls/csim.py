"""C-simulation of a generated HLS project with g++ and the installed hls4ml package's ap_fixed headers.

No vendor tool is needed: the project's top function and testbench compile as plain C++ (HLS pragmas are
ignored), the binary is cached by the hash of its sources and headers, and it runs the testbench on a batch.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qfx.sim import apfixed

from .generate import read_project, write_inputs

__all__ = ["CsimResult", "csim", "csim_run"]

CSIM_FLAGS = ("-std=c++14", "-O1", "-w")  # -O0 runs a CNN batch 25x slower


@dataclass(frozen=True)
class CsimResult:
    """Output codes (batch, outputs) and where the time went."""

    codes: np.ndarray
    compile_s: float
    run_s: float
    cached: bool


def csim_run(project_dir: str | os.PathLike, x: np.ndarray) -> CsimResult:
    """Compile (cached) and run the project's C testbench on the float batch ``x``; codes and timings."""
    project = Path(project_dir)
    meta = read_project(project)
    top = meta["top"]
    firmware = project / "firmware"
    sources = {
        f"{top}.cpp": (firmware / f"{top}.cpp").read_text(),
        f"{top}_test.cpp": (project / "tb" / f"{top}_test.cpp").read_text(),
    }
    start = time.perf_counter()
    before = apfixed.stats["cached"]
    exe = apfixed.compile_cached(
        sources, flags=CSIM_FLAGS, include_dirs=[apfixed.headers_dir(), firmware], name=f"csim-{top}"
    )
    compile_s = time.perf_counter() - start
    cached = apfixed.stats["cached"] > before
    x = np.asarray(x, dtype=np.float64)
    with tempfile.TemporaryDirectory(prefix="qfx-csim-") as tmp:
        inputs, outputs = Path(tmp) / "inputs.txt", Path(tmp) / "outputs.txt"
        write_inputs(inputs, x, meta["input_size"])
        start = time.perf_counter()
        proc = subprocess.run([str(exe), str(inputs), str(outputs)], capture_output=True, text=True)
        run_s = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"C-simulation of {project} failed (exit {proc.returncode}): {proc.stderr.strip()}")
        codes = np.loadtxt(outputs, dtype=np.int64, ndmin=2)
    if codes.shape != (x.shape[0], meta["output_size"]):
        raise RuntimeError(f"C-simulation wrote {codes.shape} codes for {x.shape[0]} inputs")
    return CsimResult(codes, compile_s, run_s, cached)


def csim(project_dir: str | os.PathLike, x: np.ndarray) -> np.ndarray:
    """Output codes, shape (batch, outputs), of the project's C-simulation on the float batch ``x``."""
    return csim_run(project_dir, x).codes
