"""cocotb test that streams samples through a QFX streaming (AXI4-Stream) top module and records what comes out.

Loaded inside the simulator by :func:`qfx.rtl.simulate` for folders whose ``qfx_rtl.json`` says
``"interface": "axis"`` (never imported by QFX itself); the path of a JSON configuration arrives in
``$QFX_SIM_CONFIG``. Input words are offered with seeded random gaps (``tvalid`` low for a clock with probability
``valid_gaps``) and output words taken with seeded random stalls (``tready`` low with probability
``ready_stalls``): the design must produce the same codes whatever the handshake does. It judges no values: the
caller compares codes with the IR interpreter. It records the clock at which each sample's last output word
arrived, from which the caller measures cycles per sample. Timing as in :mod:`qfx.rtl.testbench`: inputs change
after a falling edge, handshakes are sampled in the ReadOnly phase before the next rising edge.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

RESET_CYCLES = 3


class ProtocolError(AssertionError):
    """The design broke the handshake (missing port, X/Z where a value is needed, no progress)."""


def _bits(handle: Any) -> str:
    get = getattr(getattr(handle, "_handle", None), "get_signal_val_binstr", None)
    return get() if callable(get) else str(handle.value)


def _value(handle: Any, what: str) -> int:
    bits = _bits(handle)
    if bits.strip("01"):
        raise ProtocolError(f"{what} is {bits!r}: X/Z bits")
    return int(bits, 2)


async def _run(dut: Any, cfg: dict[str, Any], report: dict[str, Any]) -> None:
    words: list[int] = [int(v) for v in Path(cfg["inputs"]).read_text().split()]
    per_sample_out, samples = int(cfg["output_count"]), int(cfg["samples"])
    rng = random.Random(int(cfg["seed"]))
    gaps, stalls = float(cfg["valid_gaps"]), float(cfg["ready_stalls"])
    clk, rst_n = dut.ap_clk, dut.ap_rst_n
    s_data, s_valid, s_ready = dut.s_axis_tdata, dut.s_axis_tvalid, dut.s_axis_tready
    m_data, m_valid, m_ready = dut.m_axis_tdata, dut.m_axis_tvalid, dut.m_axis_tready
    out: list[int] = []
    done_at: list[int] = []
    report["outputs"], report["done_at"] = out, done_at
    Clock(clk, 10, unit="ns").start()
    rst_n.value = 0
    s_valid.value = 0
    s_data.value = 0
    m_ready.value = 0
    for _ in range(RESET_CYCLES + 2):
        await RisingEdge(clk)
    await FallingEdge(clk)
    rst_n.value = 1
    for _ in range(2):  # the top registers its reset
        await FallingEdge(clk)
    timeout = int(cfg["timeout_cycles"])
    k, cycles, idle, total = 0, 0, 0, samples * per_sample_out
    offering = False
    while True:
        if not offering and k < len(words) and rng.random() >= gaps:
            s_data.value = words[k]
            s_valid.value = 1
            offering = True
        elif not offering:
            s_valid.value = 0
        take = rng.random() >= stalls
        m_ready.value = 1 if take else 0
        await ReadOnly()
        cycles += 1
        progress = False
        if offering and _value(s_ready, f"s_axis_tready (cycle {cycles})"):
            k += 1
            offering = False
            progress = True
        if take and _value(m_valid, f"m_axis_tvalid (cycle {cycles})"):
            out.append(_value(m_data, f"m_axis_tdata (cycle {cycles}, word {len(out)})"))
            if len(out) % per_sample_out == 0:
                done_at.append(cycles)
            progress = True
        report["cycles"] = cycles
        if len(out) >= total:
            return
        idle = 0 if progress else idle + 1
        if idle >= timeout:
            raise ProtocolError(
                f"timeout: nothing moved for {timeout} cycles (cycle {cycles}); {k} of {len(words)} input words "
                f"accepted, {len(out)} of {total} output words arrived"
            )
        await FallingEdge(clk)


@cocotb.test()
async def stream_samples(dut: Any) -> None:
    """Run the samples of ``$QFX_SIM_CONFIG`` and write the report, errors included."""
    cfg = json.loads(Path(os.environ["QFX_SIM_CONFIG"]).read_text())
    report: dict[str, Any] = {"outputs": [], "cycles": 0, "error": None, "protocol": False}
    try:
        await _run(dut, cfg, report)
    except ProtocolError as exc:
        report["error"], report["protocol"] = str(exc), True
        raise
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        Path(cfg["report"]).write_text(json.dumps(report))
