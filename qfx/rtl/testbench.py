"""cocotb test that streams input vectors through a QFX / HLS top module and records what comes out.

Loaded inside the simulator by :func:`qfx.rtl.simulate` (never imported by QFX itself): the path of a JSON
configuration arrives in ``$QFX_SIM_CONFIG``. The test drives the ap_ctrl_hs handshake, collects every output
port's values in the cycles its ``_ap_vld`` is high, and writes a JSON report (unsigned codes, cycle count, or the
error). It judges no values: the caller compares codes with its own reference.

Timing: inputs change just after a falling clock edge; control and output signals are sampled in the ReadOnly
phase of that time step, when they hold what the next rising edge will see. This is the same on Icarus (where a
read right after a rising edge returns pre-edge values) and Verilator (where it returns post-edge values).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

RESET_CYCLES = 3


class ProtocolError(AssertionError):
    """The design broke the handshake (missing port, X/Z where a value is needed, no progress)."""


def _port(dut: Any, name: str, width: int | None = None) -> Any:
    """The handle of top-level port ``name`` (checking its width), or a ProtocolError listing the ports."""
    try:
        handle = getattr(dut, name)
    except AttributeError:
        names = sorted(h._name for h in dut)
        raise ProtocolError(f"top module {dut._name!r} has no port {name!r}; its ports: {', '.join(names)}") from None
    if width is not None and len(handle) != width:
        raise ProtocolError(f"port {name} is {len(handle)} bits wide, the format needs {width}")
    return handle


def _data_port(dut: Any, name: str, width: int | None) -> Any:
    """Port ``name``, or ``name_V``: Vivado HLS adds ``_V`` to the ports of ap_fixed arrays (``x_0_V``,
    ``y_0_V_ap_vld``), Vitis HLS does not."""
    try:
        return _port(dut, name, width)
    except ProtocolError as exc:
        suffix = "_ap_vld" if name.endswith("_ap_vld") else ""
        try:
            return _port(dut, f"{name.removesuffix(suffix)}_V{suffix}", width)
        except ProtocolError:
            raise exc from None


def _reader(handle: Any) -> Callable[[], str]:
    """A function returning the port's value as 0/1/X/Z characters, MSB first.

    The simulator object's own getter when cocotb exposes it: ``handle.value`` builds a LogicArray first, which
    costs more than half of the testbench's time on wide designs.
    """
    get = getattr(getattr(handle, "_handle", None), "get_signal_val_binstr", None)
    return get if callable(get) else lambda: str(handle.value)


def _resolved(read: Callable[[], str], what: str) -> int:
    """The value ``read`` returns as an unsigned int; ProtocolError when some bit is not 0 or 1."""
    bits = read()
    if bits.strip("01"):
        raise ProtocolError(f"{what} is {bits!r}: X/Z bits")
    return int(bits, 2)


async def _stream(dut: Any, cfg: dict[str, Any], report: dict[str, Any]) -> None:
    """Reset, then feed every vector and gather every output; fills ``report`` as it goes."""
    vectors: list[list[int]] = [[int(v) for v in line.split()] for line in Path(cfg["inputs"]).read_text().splitlines()]
    batch, n_out = len(vectors), cfg["output_size"]
    in_name, out_name = cfg["input_name"], cfg["output_name"]
    clk, start, ready = _port(dut, "ap_clk"), _port(dut, "ap_start"), _port(dut, "ap_ready")
    try:
        rst, rst_on = _port(dut, "ap_rst"), 1
    except ProtocolError as exc:  # some flows emit an active-low reset
        try:
            rst, rst_on = _port(dut, "ap_rst_n"), 0
        except ProtocolError:
            raise exc from None
    ins = [_data_port(dut, f"{in_name}_{i}", cfg["input_width"]) for i in range(cfg["input_size"])]
    outs = [_reader(_data_port(dut, f"{out_name}_{i}", cfg["output_width"])) for i in range(n_out)]
    vlds = [_reader(_data_port(dut, f"{out_name}_{i}_ap_vld", 1)) for i in range(n_out)]
    ready_bit = _reader(ready)
    queues: list[list[int]] = [[] for _ in range(n_out)]
    report["outputs"] = queues

    Clock(clk, cfg.get("clock_period_ns", 10), unit="ns").start()
    rst.value = rst_on
    start.value = 0
    for port in ins:
        port.value = 0
    for _ in range(RESET_CYCLES):
        await RisingEdge(clk)
    await FallingEdge(clk)
    rst.value = 1 - rst_on

    timeout = int(cfg["timeout_cycles"])
    k, presented, cycles, idle, done = 0, -1, 0, 0, 0
    while True:
        if k < batch and presented != k:  # a new vector: drive it and keep it until a rising edge sees ap_ready
            for port, code in zip(ins, vectors[k], strict=True):
                port.value = code
            start.value = 1
            presented = k
        elif k == batch and presented != k:
            start.value = 0
            presented = k
        await ReadOnly()  # everything settled: these values are what the next rising edge samples
        cycles += 1
        progress = False
        if k < batch and _resolved(ready_bit, f"ap_ready (cycle {cycles})"):
            k += 1
            progress = True
        for i in range(n_out):
            if _resolved(vlds[i], f"{out_name}_{i}_ap_vld (cycle {cycles})"):
                if len(queues[i]) >= batch:
                    raise ProtocolError(f"{out_name}_{i} produced more than {batch} values (cycle {cycles})")
                queues[i].append(_resolved(outs[i], f"{out_name}_{i} (cycle {cycles}, vector {len(queues[i])})"))
                progress = True
                done += len(queues[i]) == batch
        report["cycles"] = cycles
        if done == n_out:
            return
        idle = 0 if progress else idle + 1
        if idle >= timeout:
            counts = [len(q) for q in queues]
            raise ProtocolError(
                f"timeout: nothing happened for {timeout} cycles (cycle {cycles}); {k} of {batch} vectors accepted "
                f"(ap_ready), {sum(counts)} of {batch * n_out} output values arrived "
                f"(each {out_name}_<i> got {min(counts)} to {max(counts)} of {batch}; is _ap_vld ever raised?)"
            )
        await FallingEdge(clk)


@cocotb.test()
async def stream_vectors(dut: Any) -> None:
    """Run the vectors of ``$QFX_SIM_CONFIG`` and write the report, errors included."""
    cfg = json.loads(Path(os.environ["QFX_SIM_CONFIG"]).read_text())
    report: dict[str, Any] = {"outputs": [], "cycles": 0, "error": None, "protocol": False}
    try:
        await _stream(dut, cfg, report)
    except ProtocolError as exc:  # the design's fault: the message says it all
        report["error"], report["protocol"] = str(exc), True
        raise
    except Exception as exc:  # the testbench's or the simulator's: the caller adds the log
        report["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        Path(cfg["report"]).write_text(json.dumps(report))
