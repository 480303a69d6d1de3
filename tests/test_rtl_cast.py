"""qfx_cast.v (the RTL's only rounding and overflow logic) equals the IR's integer cast for every quantization and
overflow mode, every input code, on Verilator and Icarus.

A harness instantiates a few hundred casts side by side (random formats, seeded; every mode combination, N = 0..3
saturation bits, signed and unsigned, growing and shrinking the binary point). All inputs take the same 8-bit
pattern each cycle, and 256 vectors sweep every pattern: each instance sees every code of its input width.
"""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest

from qfx.backends.hls.generate import hls_root
from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir.intcast import requantize
from qfx.rtl import simulate_codes
from qfx.rtl.lower import OVERFLOW_CODES, QUANT_CODES

OUT_BITS = 16  # every result sign- or zero-extended to this width on its output port


def _cases(seed: int = 7, per_mode: int = 4) -> list[tuple[int, int, bool, FixedFormat]]:
    """(input width, input fraction bits, input signed, output format) per instance."""
    rng = random.Random(seed)
    cases = []
    for quant in Quant:
        for overflow in Overflow:
            for sat_bits in (0, 1, 2, 3) if overflow.wraps else (0,):
                for _ in range(per_mode):
                    out_width = rng.randint(max(1, sat_bits), 7)
                    signed = overflow is Overflow.WRAP_SM or rng.random() < 0.6
                    in_frac = rng.randint(-3, 8)
                    out_frac = in_frac + rng.randint(-4, 5)
                    fmt = FixedFormat(out_width, out_width - out_frac, signed, quant, overflow, sat_bits)
                    cases.append((rng.randint(1, 8), in_frac, rng.random() < 0.6, fmt))
    return cases


def _harness(folder, cases) -> None:
    lines = ["`default_nettype none", "module cast_bank (", "    input wire ap_clk, input wire ap_rst,",
             "    input wire ap_start, output wire ap_done, output wire ap_idle, output wire ap_ready,"]  # fmt: skip
    lines += [f"    input wire [7:0] x_{k}," for k in range(len(cases))]
    ports = [f"    output wire [{OUT_BITS - 1}:0] y_{k}, output wire y_{k}_ap_vld" for k in range(len(cases))]
    lines += [",\n".join(ports), ");", "    assign ap_done = ap_start;", "    assign ap_idle = ~ap_start;",
              "    assign ap_ready = ap_start;"]  # fmt: skip
    for k, (iw, frac, signed, f) in enumerate(cases):
        params = (f".IW({iw}), .IF({frac}), .IS({int(signed)}), .OW({f.width}), .OF({f.frac_bits}), "
                  f".OS({int(f.signed)}), .Q({QUANT_CODES[f.quant]}), .O({OVERFLOW_CODES[f.overflow]}), "
                  f".N({f.sat_bits})")  # fmt: skip
        fill = f"{{{OUT_BITS - f.width}{{r{k}[{f.width - 1}]}}}}" if f.signed else f"{OUT_BITS - f.width}'b0"
        lines += [f"    wire [{f.width - 1}:0] r{k};",
                  f"    qfx_cast #({params}) c{k} (.a(x_{k}[{iw - 1}:0]), .y(r{k}));",
                  f"    assign y_{k} = {{{fill}, r{k}}};", f"    assign y_{k}_ap_vld = ap_start;"]  # fmt: skip
    lines += ["endmodule", "`default_nettype wire"]
    (folder / "cast_bank.v").write_text("\n".join(lines) + "\n")
    shutil.copy(hls_root() / "rtl" / "qfx_cast.v", folder / "qfx_cast.v")
    meta = dict(top="cast_bank", sources=["qfx_cast.v", "cast_bank.v"], latency=0,
                input=dict(name="x", size=len(cases), shape=[len(cases)], format="ap_uint<8>"),
                output=dict(name="y", size=len(cases), shape=[len(cases)], format=f"ap_int<{OUT_BITS}>"))  # fmt: skip
    (folder / "qfx_rtl.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_cast_module_equals_ir_cast(simulator: str, tmp_path, summary) -> None:
    if simulator == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("iverilog not found: install Icarus Verilog (apt install iverilog) to run the Icarus cases")
    cases = _cases()
    _harness(tmp_path, cases)
    patterns = np.arange(256, dtype=np.int64)
    result = simulate_codes(tmp_path, np.repeat(patterns[:, None], len(cases), axis=1), simulator=simulator)
    compared = mismatches = 0
    for k, (iw, frac, signed, fmt) in enumerate(cases):
        bits = patterns % (1 << iw)
        codes = bits - ((bits >> (iw - 1)) << iw) if signed else bits
        expected = requantize(codes, frac, fmt)
        mismatches += int((result.codes[:, k] != expected).sum())
        compared += len(codes)
    summary(f"qfx_cast.v ({simulator}) vs the IR cast: {len(cases)} formats with every input code, {compared} "
            f"comparisons, {mismatches} mismatches")  # fmt: skip
    assert mismatches == 0
