"""Simulation of streaming (AXI4-Stream) designs: input codes packed into words in stream order, the cocotb test
:mod:`qfx.rtl.stream_testbench` run with seeded valid gaps and ready stalls, output words unpacked to flat order
(see :func:`qfx.rtl.simulate_codes`, which calls this for folders whose ``qfx_rtl.json`` says ``"axis"``)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qfx.rtl.runner import (
    DATA_SUFFIXES,
    STREAM_TESTBENCH,
    TIMESCALE,
    Design,
    SimResult,
    Simulator,
    SimulatorError,
    _build,
    _runner,
    _tail,
    _tool_path,
    _xml_failure,
)

__all__ = ["simulate_axis"]


def _pack(values: Sequence[int], width: int) -> int:
    mask, word = (1 << width) - 1, 0
    for k, v in enumerate(values):
        word |= (int(v) & mask) << (k * width)
    return word


def simulate_axis(design: Design, sim: Simulator, ints: list[list[int]], timeout_cycles: int, seed: int,
                   valid_gaps: float, ready_stalls: float) -> SimResult:  # fmt: skip
    """Run ``ints`` (batch x input size, flat order) through a streaming design; see :func:`simulate_codes`."""
    for name, p in (("valid_gaps", valid_gaps), ("ready_stalls", ready_stalls)):
        if not 0 <= p < 1:
            raise ValueError(f"{name} must be in [0, 1), not {p!r}")
    inp, out = design.input, design.output
    in_order = inp.order or tuple(range(inp.size))
    out_order = out.order or tuple(range(out.size))
    words = []
    for row in ints:
        arrival = [row[i] for i in in_order]
        words += [_pack(arrival[k : k + inp.word], inp.fmt.width) for k in range(0, inp.size, inp.word)]
    out_count = out.size // out.word
    with _tool_path(sim):
        build_dir, build_s = _build(design, sim)
        with tempfile.TemporaryDirectory(prefix="qfx-rtl-sim-") as tmp:
            work = Path(tmp)
            for folder in {s.parent for s in design.sources}:
                for data in folder.iterdir():
                    if data.suffix in DATA_SUFFIXES and data.is_file():
                        shutil.copy(data, work / data.name)
            (work / "inputs.txt").write_text("\n".join(str(w) for w in words) + "\n")
            config = {"inputs": str(work / "inputs.txt"), "report": str(work / "report.json"),
                      "output_count": out_count, "samples": len(ints), "seed": int(seed),
                      "valid_gaps": float(valid_gaps), "ready_stalls": float(ready_stalls),
                      "timeout_cycles": int(timeout_cycles)}  # fmt: skip
            (work / "config.json").write_text(json.dumps(config))
            log, xml = work / "sim.log", work / "results.xml"
            shutil.copy(Path(__file__).with_name("stream_testbench.py"), work / f"{STREAM_TESTBENCH}.py")
            start = time.perf_counter()
            failed: str | None = None
            sys.path.insert(0, str(work))
            try:
                _runner(sim).test(
                    test_module=STREAM_TESTBENCH, hdl_toplevel=design.top, hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=work, results_xml=str(xml), timescale=TIMESCALE, log_file=log,
                    extra_env={"QFX_SIM_CONFIG": str(work / "config.json")},
                )  # fmt: skip
            except (RuntimeError, SystemExit) as exc:
                failed = str(exc)
            finally:
                sys.path.remove(str(work))
            run_s = time.perf_counter() - start
            report = json.loads((work / "report.json").read_text()) if (work / "report.json").is_file() else None
            if report is None or report.get("error"):
                message = (report or {}).get("error") or _xml_failure(xml) or f"simulator failed ({failed})"
                tail = "" if report and report.get("protocol") else f"\nlog tail:\n{_tail(log)}"
                raise SimulatorError(f"{sim} simulation of {design.top!r} failed: {message}{tail}")
    mask = (1 << out.fmt.width) - 1
    batch = len(ints)
    result = np.zeros((batch, out.size), dtype=object)
    for b in range(batch):
        arrival = []
        for w in report["outputs"][b * out_count : (b + 1) * out_count]:
            arrival += [(int(w) >> (k * out.fmt.width)) & mask for k in range(out.word)]
        for pos, flat in enumerate(out_order):
            v = arrival[pos]
            if out.fmt.signed and v >= 1 << (out.fmt.width - 1):
                v -= 1 << out.fmt.width
            result[b, flat] = v
    codes = result.astype(np.int64) if out.fmt.width <= 63 else result
    done = report["done_at"]
    per = (done[-1] - done[0]) / (len(done) - 1) if len(done) > 1 else None
    return SimResult(
        codes=codes.reshape(batch, *out.shape), build_s=build_s, run_s=run_s,
        vectors_per_s=batch / run_s if run_s > 0 else float("inf"), cycles=int(report["cycles"]), simulator=sim,
        cycles_per_sample=per,
    )  # fmt: skip
