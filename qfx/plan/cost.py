"""What one IR node costs in hardware at a given folding: cycles per sample and LUT / FF / DSP / BRAM estimates.

A node's work is a loop nest ``positions x pe_dim x simd_dim`` (:class:`Work`, in :mod:`qfx.plan.work`); a
:class:`Folding` unrolls ``pixels`` positions, ``pe`` of pe_dim and ``simd`` of simd_dim per clock, so the node takes
``positions/pixels * pe_dim/pe * simd_dim/simd`` clocks per sample. Full unrolling (the fully parallel design) is
one clock.

The resource model is first-order (every figure below is in the code, none hidden) and counts what the Verilog
builds. A streaming layer (qfx.rtl's folded units; the HLS units have the same structure) is:

- a sliding window for a convolution or pool: ``2R + SH`` input rows in LUT RAM banks (R the kernel height), the
  window in two registers (being loaded, handed over), a bank multiplexer per kernel row and a load / shift / hold
  multiplexer per window bit (``WINDOW_LUT`` LUTs per bit); a dense layer's collector holds its input words;
- a fold unit: its input vector in a register, PE x SIMD inputs per clock chosen by a counter (``MUX_LUT`` per bit
  and case), a multiplier per term (a DSP slice from 9 product bits, as Yosys ``synth_xilinx`` maps ``$mul``;
  K-hot digits are shifts and adds instead), an adder per term, an accumulator and a ``qfx_cast`` per PE lane,
  the output vector twice; weights in a ROM of NF x SF rows of PE x SIMD codes (LUTs up to 64 rows or 4 Kib,
  else block RAM in the best RAMB18 aspect ratio), or constants when it is one row;
- element-wise units: PE lanes (the plan's folding) of a compare or a multiply and a cast, the output word's
  register; a sum pool over the whole map is a global sum (an accumulator per channel);
- units that move values take a whole word per clock (one folding): a pad is its output register and counters,
  an upsampling also two input rows in distributed RAM, a concatenation a cast per value (along rows or columns,
  of both inputs' values and a select); counted from the Verilog and checked once against Yosys, not fitted;
- FIFOs (:func:`fifo_estimate`) for streams planned deeper than two words.

A fully parallel layer (constant weights in logic) costs a DSP per weight that is not 0 or a power of two, an
adder tree, its registered outputs; K-hot weights are adder graphs. The constants were fitted to Yosys
``synth_xilinx`` (UltraScale+) on the small designs of ``benchmarks/bench_calibrate.py``; docs/plan.md states
the calibration and its error (``DSP_ERROR``, ``BRAM_ERROR``, ``LUT_ERROR``, ``FF_ERROR`` below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qfx.ir.graph import Graph
from qfx.plan.work import Folding, Work, chunk_of, whole_map_sum, window_chunk, work_of  # re-exported

__all__ = [
    "BRAM_ERROR",
    "DSP_ERROR",
    "DSP_MIN_PRODUCT_BITS",
    "FF_ERROR",
    "LUT_ERROR",
    "Estimate",
    "Folding",
    "Work",
    "chunk_of",
    "estimate",
    "fifo_estimate",
    "whole_map_sum",
    "window_chunk",
    "work_of",
]

#: Products narrower than this many bits stay in LUTs (Yosys synth_xilinx maps $mul to DSP48 from 9 output bits).
DSP_MIN_PRODUCT_BITS = 9
LUTRAM_DEPTH = 64  # one LUT6 holds a 64 x 1 ROM
BRAM_MIN_BITS = 4096  # smaller buffers stay in LUTRAM / registers
RAMB18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))  # depth x width
#: The calibration's stated error on a design's total (benchmarks/bench_calibrate.py, docs/plan.md): DSP slices
#: exact, block RAM within BRAM_ERROR RAMB36, LUTs and flip-flops within these fractions of Yosys' counts.
DSP_ERROR, BRAM_ERROR, LUT_ERROR, FF_ERROR = 0, 0.5, 0.25, 0.2
# Fully parallel layers (constant weights in logic, outputs registered), calibrated the same way:
PARALLEL_ADD_LUT = 0.75  # LUTs per accumulator bit per nonzero weight (the adder tree)
KHOT_PARALLEL_LUT = 0.31  # LUTs per accumulator bit per K-hot digit (adder graphs share partial sums)
# Streaming units, calibrated against Yosys synth_xilinx (benchmarks/bench_calibrate.py, docs/plan.md):
MUX_LUT = 0.6  # LUTs per bit per case of a counter-driven multiplexer (a fold unit's inputs)
WINDOW_LUT = 1.25  # LUTs per bit of a sliding window (bank read, load a column / shift by the stride / hold)
WINDOW_BASE_LUT = 99  # a sliding window's row, column and bank arithmetic
ADD_LUT = 0.78  # LUTs per accumulator bit of each term's adder (a DSP's product into the sum)
KHOT_SHIFT_LUT = 2.34  # LUTs per accumulator bit of one K-hot digit read from the ROM (a variable shift, an add)
MAX_LUT = 1.0  # LUTs per accumulator bit of one max-pool term (a compare, a select)
ROM_BRAM_DEPTH, ROM_BRAM_BITS = 512, 16384  # weight ROMs this deep and large are block RAM, others logic
ROM_ROWS_PER_LUT = 12  # a weight ROM in logic: a LUT per this many rows per bit of width (random codes)
ELEMENTWISE_LUT = 0.7  # LUTs per input + output bit of each value of an element-wise unit's word
SOFTMAX_TABLE_LUT = 42  # LUTs per 64 entries of a softmax table and its share of the pipelined unit (Yosys: the jet
# tagger's 5-value softmax, six tables of 256 entries, 1,026 LUTs)
AFFINE_LUT = 0.7  # LUTs per accumulator bit of each value of an affine unit's word (select, add, cast)
WINDOW_FF = 45  # a sliding window's counters (rows, columns, banks, how far the writer is ahead)
GENERATOR_BASE_LUT = 120  # a window generator's counters and address arithmetic (row bank x width + column)
GENERATOR_FF = 70  # a window generator's counters (window, pass, kernel position, channel group, writer)
MOVE_BASE_LUT = 16  # a pad or upsample unit's counters and compares (Yosys: 16 for an 8 x 8 map of 8 channels)


@dataclass(frozen=True)
class Estimate:
    """Resources of a node or a design: LUTs, flip-flops, DSP slices, 36 Kb block RAMs (18 Kb halves as 0.5)."""

    lut: int = 0
    ff: int = 0
    dsp: int = 0
    bram: float = 0.0

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(self.lut + other.lut, self.ff + other.ff, self.dsp + other.dsp, self.bram + other.bram)

    def as_dict(self) -> dict[str, float]:
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram": self.bram}

    def times(self, n: int) -> Estimate:
        return Estimate(self.lut * n, self.ff * n, self.dsp * n, self.bram * n)


def _weight_rom(width_bits: int, depth: int) -> tuple[int, float]:
    """(LUTs, RAMB36) of a fold unit's weight ROM (a registered read): Yosys maps it to block RAM from
    ``ROM_BRAM_DEPTH`` rows and ``ROM_BRAM_BITS`` bits, else to logic, about one LUT per ``ROM_ROWS_PER_LUT`` rows
    and bit of width."""
    if width_bits <= 0 or depth <= 1:
        return 0, 0.0
    if depth < ROM_BRAM_DEPTH or width_bits * depth < ROM_BRAM_BITS:
        return int(width_bits * max(1.0, depth / ROM_ROWS_PER_LUT)), 0.0
    halves = min(math.ceil(width_bits / w) * math.ceil(depth / d) for d, w in RAMB18_SHAPES)
    return 0, halves / 2


def _rom(width_bits: int, depth: int) -> tuple[int, float]:
    """(LUTs, RAMB36) of a ROM ``width_bits`` wide and ``depth`` deep."""
    if width_bits <= 0 or depth <= 0:
        return 0, 0.0
    if depth <= LUTRAM_DEPTH or width_bits * depth < BRAM_MIN_BITS:
        return width_bits * math.ceil(depth / LUTRAM_DEPTH), 0.0
    halves = min(math.ceil(width_bits / w) * math.ceil(depth / d) for d, w in RAMB18_SHAPES)
    return 0, halves / 2


def _buffer(bits: int) -> tuple[int, float]:
    """(LUTs, RAMB36) of a line buffer of ``bits`` bits."""
    if bits < BRAM_MIN_BITS:
        return math.ceil(bits / 64), 0.0  # LUTRAM: 64 bits per LUT6
    return 0, math.ceil(bits / 18432) / 2


def _digit_bits(work: Work) -> int:
    """Bits of one K-hot digit in a ROM row, as the Verilog packs it: a sign pair and the shift (``bits`` of the
    largest digit position; a signed-digit form of |c| has its top digit at floor(log2(1.5 |c|)))."""
    top = ((3 * work.max_abs_code) >> 1).bit_length() - 1 if work.max_abs_code > 0 else 0
    return 2 + max(1, top.bit_length())


def _is_power_of_two_or_zero(codes: np.ndarray) -> np.ndarray:
    a = np.abs(codes.astype(np.int64))
    return (a & (a - 1)) == 0


def _lutram(depth: int, width: int) -> int:
    """LUTs of a distributed RAM (one write, one asynchronous read port) ``depth`` x ``width``: UltraScale packs
    32 x 14 bits (RAM32M16) or 64 x 7 bits (RAM64M8) into 8 LUTs."""
    if depth <= 32:
        return 8 * math.ceil(width / 14)
    return 8 * math.ceil(width / 7) * math.ceil(depth / 64)


def _mux(inputs: int, cases: int) -> float:
    """LUTs of ``inputs`` bits each chosen among ``cases`` values by a counter (a ``case`` in the fold unit)."""
    return MUX_LUT * inputs * cases if cases > 1 else 0.0


def _window_unit(work: Work) -> Estimate:
    """The sliding-window unit: row banks in LUT RAM (asynchronous read), the window's first KW - 1 columns in a
    register (the last is read from the banks as the window is handed over, unregistered, to the fold unit), per
    window bit its bank read and load / shift / hold multiplexer."""
    kh, kw, banks, depth, pixel = work.window
    bits = kh * kw * pixel
    lut = WINDOW_LUT * bits + WINDOW_BASE_LUT + banks * _lutram(depth, pixel)
    return Estimate(int(lut), kh * (kw - 1) * pixel + WINDOW_FF)


def _generator_unit(work: Work, chunk: int) -> Estimate:
    """The window generator streaming ``chunk`` channels per word: the row banks as C / chunk distributed RAMs
    (one read per clock at a computed address), the channel-group multiplexer and the padding's zeros on the word
    read, its counters."""
    kh, kw, banks, depth, _ = work.window
    groups = work.vector // (kh * kw) // chunk  # channel groups: one distributed RAM each
    word = chunk * work.in_bits
    lut = groups * _lutram(banks * depth, word) + _mux(word, groups) + word + GENERATOR_BASE_LUT
    return Estimate(int(lut), GENERATOR_FF)


def _collect_unit(work: Work) -> Estimate:
    """A dense layer's collector: its input words into one vector register (and the words before the last)."""
    word = work.vector * work.in_bits // max(1, work.in_words)
    if work.in_words <= 1:
        return Estimate(2, work.vector * work.in_bits + 1)
    return Estimate(work.in_words + 4, (2 * work.in_words - 1) * word + work.in_words.bit_length() + 1)


def _fold_unit(work: Work, f: Folding, streamed: bool = False) -> Estimate:
    """The fold unit: its input vector in a register, PE x SIMD terms per clock chosen from it by a counter (or,
    ``streamed`` by a window generator, each step's inputs as one word: no vector, no multiplexer), PE
    accumulators, a qfx_cast per lane, the output vector twice (collected, being sent); weights from a ROM, or
    constants when the layer is one row (PE x SIMD = all of it)."""
    pe, simd = f.pe, f.simd
    rows = (work.pe_dim // pe) * (work.simd_dim // simd)
    lanes_in = simd if work.shared else pe * simd
    cases = 1 if streamed else work.simd_dim // simd if work.shared else rows
    aw = work.acc_bits + 1
    terms = pe * simd
    # per lane: the accumulator's start value (bias or the running sum) and the qfx_cast of its output
    lut = _mux(lanes_in * work.in_bits, cases) + pe * (aw + work.out_bits) + 2 * rows.bit_length()
    held = 0 if streamed else work.vector
    ff = (held + lanes_in) * work.in_bits + pe * aw + 2 * work.pe_dim * work.out_bits + 3 * rows.bit_length()
    ff += 8  # valid, first / last flags
    dsp, bram = 0, 0.0
    if work.kind == "mac":
        constant = rows == 1
        codes = work.weight_codes
        sign = not work.khot and codes is not None and work.max_abs_code <= 1  # binary / ternary: add, subtract, skip
        if work.khot:
            per_digit = aw if constant else aw * KHOT_SHIFT_LUT  # a constant shift is wiring
            lut += terms * work.khot * per_digit
        elif sign:
            lut += terms * aw
        elif work.in_bits + work.weight_bits >= DSP_MIN_PRODUCT_BITS:
            if constant:
                dsp += int(np.count_nonzero(~_is_power_of_two_or_zero(codes)))
            else:
                dsp += terms
            lut += terms * aw * ADD_LUT
        else:
            lut += terms * (work.in_bits * work.weight_bits // 2 + aw)
        if not constant:
            digit_bits = work.khot * _digit_bits(work) if work.khot else work.weight_bits
            if sign:  # one bit per +-1 weight, two per ternary one (the Verilog's "sign" fold unit)
                digit_bits = 2 if work.has_zero_code else 1
            rom_lut, rom_bram = _weight_rom(terms * digit_bits, rows)
            lut, bram = lut + rom_lut, bram + rom_bram  # its read register holds the row number, not the row
    elif work.kind == "xnor":
        lut += terms + pe * aw
        if rows > 1:
            rom_lut, rom_bram = _rom(terms, rows)
            lut, bram = lut + rom_lut, bram + rom_bram
    elif work.kind == "max":
        lut += terms * aw * MAX_LUT
    else:  # sum
        lut += terms * aw
    return Estimate(int(lut), int(ff) + _pipeline_ff(work, f, aw), dsp, bram)


def _pipeline_ff(work: Work, f: Folding, aw: int) -> int:
    """Flip-flops of a fold unit's pipeline (``PIPELINED`` kinds of qfx.rtl.stream): products and K-hot shift-adds
    registered (their significant bits: Yosys merges the copies of a sign bit and drops constant zeros; a DSP's
    product stays in fabric flip-flops, Yosys does not pack this register into the DSP; XNOR bits, +-1 selections
    and a sum pool's inputs are not registered), then over SIMD > 1 terms the adder tree's sum per lane, and the
    step's flags per stage."""
    if work.kind not in ("mac", "xnor", "sum"):
        return 0
    terms = f.pe * f.simd
    sign = not work.khot and work.weight_codes is not None and work.max_abs_code <= 1
    if work.kind != "mac" or sign:
        term_bits = 0
    elif work.khot:
        term_bits = min(aw, work.in_bits + ((3 * work.max_abs_code) >> 1).bit_length() + 1)
    else:
        term_bits = min(aw, work.in_bits + work.weight_bits)
    sum_bits = f.simd.bit_length() if work.kind == "xnor" else aw
    stages = (term_bits > 0) + (f.simd > 1)
    rows = (work.pe_dim // f.pe) * (work.simd_dim // f.simd)
    return terms * term_bits + (f.pe * sum_bits if f.simd > 1 else 0) + stages * (4 + rows.bit_length())


def _move_unit(work: Work) -> Estimate:
    """A pad or upsample unit (a whole word per clock; counted from the Verilog, not fitted): the output word's
    register and its row / column counters (``MOVE_BASE_LUT`` LUTs of counter and compare logic; a pad's zero words
    are the register's synchronous reset, no LUT); an upsampling's two input rows in distributed RAM (one being
    written while the other is repeated). A cast unit that follows when the output format differs is not counted.
    Yosys (xcup, 8 channels of 8 bits on an 8 x 8 map): pad 16 LUT / 73 FF (this model 16 / 79), upsample by 2
    16 LUT + 40 LUTRAM / 77 FF (this model 56 / 86)."""
    word = work.pe_dim * work.out_bits
    counters = 2 * max(1, work.positions.bit_length())
    if work.op == "upsample":
        lut = _lutram(2 * work.row_pixels, work.pe_dim * work.in_bits) + MOVE_BASE_LUT
        return Estimate(lut, word + counters + 4)
    return Estimate(MOVE_BASE_LUT, word + counters + 1)


def _threshold_unit(work: Work, pe: int) -> Estimate:
    """A Threshold node's fold unit (qfx.rtl.stream_bnn): the input word of W values in a register, each of the PE
    lanes choosing its value among the W / PE steps (a multiplexer), ``steps`` comparators and the selection of the
    output value per lane, the output word twice; thresholds and values in a ROM of W / PE rows, or constants."""
    w, k, iw, ow = work.pe_dim, work.steps, work.in_bits, work.out_bits
    rows = w // pe
    lut = _mux(pe * iw, rows) + pe * k * (work.weight_bits + 1) + pe * ow * max(1, k.bit_length())
    lut += 2 * rows.bit_length()
    ff = (w + pe) * iw + 2 * w * ow + 3 * rows.bit_length() + 8
    bram = 0.0
    if rows > 1:
        width = pe * (k * work.weight_bits + (k + 1) * ow)
        rom_lut, bram = _weight_rom(width, rows)
        lut += rom_lut
    return Estimate(int(lut), int(ff), 0, bram)


def _elementwise_ff(work: Work, lanes: int) -> int:
    """Flip-flops of an element-wise unit: its output word; with fewer lanes than values, also the input word it
    holds while its groups are computed and the groups before the last (the Verilog's time-multiplexed unit)."""
    w = work.pe_dim
    if lanes >= w:
        return w * work.out_bits + 1
    return w * work.in_bits + (2 * w - lanes) * work.out_bits + (w // lanes).bit_length() + 2


def _stream(work: Work, f: Folding) -> Estimate:
    """Resources of the streaming unit(s) of ``work`` at folding ``f``, as the folded Verilog builds them."""
    if work.window or (work.kind in ("mac", "xnor") and work.vector):
        chunk = chunk_of(work, f)
        out = _fold_unit(work, f, streamed=bool(chunk))
        if chunk:
            out = out + _generator_unit(work, chunk)
        elif work.window:
            out = out + _window_unit(work)
        elif work.kind in ("mac", "xnor") and work.positions == 1:  # a dense layer (a 1 x 1 convolution's fold
            out = out + _collect_unit(work)  # unit reads the pixel stream directly)
        return out
    if work.op == "cast" and not work.in_bits:
        return Estimate()  # the float input's cast: the top's input port
    lanes = math.gcd(f.pe, work.pe_dim)  # PE lanes, W / PE clocks per word of W = pe_dim values
    if work.kind == "move" and work.op in ("pad", "upsample"):
        return _move_unit(work)
    if work.runs:  # a concatenation along rows or columns: a cast of each input's value and a select, per value
        lut = 2 * ELEMENTWISE_LUT * work.pe_dim * (work.in_bits + work.out_bits) + work.pe_dim * work.out_bits
        return Estimate(int(lut), work.pe_dim * work.out_bits + 2 * max(1, work.positions.bit_length()) + 1)
    if work.kind in ("elementwise", "move"):  # a compare / select and a cast per value of a stream word, per clock
        return Estimate(int(ELEMENTWISE_LUT * work.pe_dim * (work.in_bits + work.out_bits)),
                        _elementwise_ff(work, lanes))  # fmt: skip
    if work.kind == "softmax":  # a whole row per clock: an exponential table and a multiplier per value, one
        n, rom = work.pe_dim, math.ceil(work.table_entries / LUTRAM_DEPTH)  # reciprocal table, the sum; registers:
        ff = n * (work.in_bits + work.table_width + work.out_bits) + work.table_width + n.bit_length() + 3  # k, e, sum
        return Estimate(int((n + 1) * rom * SOFTMAX_TABLE_LUT), ff, n)
    if work.kind == "sum":  # a global sum: an accumulator, an adder and a cast per channel
        aw = work.acc_bits + 1
        return Estimate(work.pe_dim * (aw + work.out_bits), work.pe_dim * (aw + work.out_bits) + 8)
    if work.kind == "threshold":
        return _threshold_unit(work, lanes)
    if work.kind in ("product", "gate"):  # a multiplier and a cast per lane: a DSP when wide, else LUTs
        wide = work.in_bits + work.weight_bits >= DSP_MIN_PRODUCT_BITS
        lut = ELEMENTWISE_LUT * work.pe_dim * (work.acc_bits + work.out_bits)
        lut += 0 if wide else lanes * (work.in_bits * work.weight_bits) // 2
        ff = _elementwise_ff(work, lanes) + (work.pe_dim * work.weight_bits if work.kind == "gate" else 0)  # gates
        return Estimate(int(lut), ff, lanes if wide else 0)
    if work.kind == "affine":  # an add and a cast per value of the word; multipliers in the plan's PE lanes
        scales = work.weight_codes if work.weight_bits else None  # no scale: a shift (bias) only
        multiplies = scales is not None and bool(np.any(~_is_power_of_two_or_zero(scales)))
        wide = work.in_bits + work.weight_bits >= DSP_MIN_PRODUCT_BITS and not work.khot
        dsp = lanes if multiplies and wide else 0
        return Estimate(int(AFFINE_LUT * work.pe_dim * work.acc_bits), _elementwise_ff(work, lanes), dsp)
    return _parallel(work, Folding(lanes, 1, 1))


def estimate(work: Work, f: Folding, streaming: bool = True) -> Estimate:
    """Resources of ``work`` at folding ``f``: its streaming units (``streaming``, the folded design), or its logic
    in the fully parallel design (see the module docstring for both models)."""
    return _stream(work, f) if streaming and f.pixels == 1 else _parallel(work, f)


def _parallel(work: Work, f: Folding) -> Estimate:
    """Resources of ``work`` fully unrolled in the fully parallel design (constant weights in logic)."""
    lanes = f.pixels * f.pe  # outputs produced in parallel
    ops = lanes * f.simd  # operations in parallel
    if work.op == "cast" and not work.in_bits:
        return Estimate()  # the float input's cast: the design's input port
    lut, ff, dsp, bram = 0.0, work.out_bits * lanes, 0, 0.0  # the layer's registered outputs
    if work.kind in ("mac", "affine"):
        product_bits = work.in_bits + work.weight_bits
        constant = f.pe == work.pe_dim and f.simd == work.simd_dim  # every multiplier has one fixed weight
        if constant:
            codes = work.weight_codes
            nonzero = int(np.count_nonzero(codes))
            trivial = int(np.count_nonzero(_is_power_of_two_or_zero(codes) & (codes != 0)))
            real = (nonzero - trivial) * f.pixels
            adders = nonzero * f.pixels
        else:
            real, adders = ops, ops
        if work.khot:  # an adder graph shares partial sums between outputs
            lut += adders * work.khot * work.acc_bits * (KHOT_PARALLEL_LUT if constant else 1)
            if not constant:  # shifters for the digits read from the ROM
                lut += ops * work.khot * work.acc_bits
        elif product_bits >= DSP_MIN_PRODUCT_BITS:
            dsp += real
            lut += adders * work.acc_bits * PARALLEL_ADD_LUT
        else:
            lut += real * (work.in_bits * work.weight_bits) // 2 + adders * work.acc_bits * PARALLEL_ADD_LUT
        if not constant:
            digit_bits = work.khot * _digit_bits(work) if work.khot else work.weight_bits
            rom_lut, rom_bram = _rom(f.pe * f.simd * digit_bits, (work.pe_dim // f.pe) * (work.simd_dim // f.simd))
            lut, bram = lut + rom_lut, bram + rom_bram
    elif work.kind == "xnor":  # +-1 operands: an XNOR and a popcount adder bit per input, no DSP
        constant = f.pe == work.pe_dim and f.simd == work.simd_dim
        lut += ops + lanes * work.acc_bits
        ff += lanes * work.acc_bits
        if not constant:  # the weight bits, read as it folds
            rom_lut, rom_bram = _rom(f.pe * f.simd, (work.pe_dim // f.pe) * (work.simd_dim // f.simd))
            lut, bram = lut + rom_lut, bram + rom_bram
    elif work.kind == "threshold":  # per output: `steps` comparators (a carry chain each) and a small mux
        lut += lanes * work.steps * (work.weight_bits + work.out_bits)
        ff += lanes * work.out_bits
        if f.pe < work.pe_dim:  # thresholds and values of the channels read as it folds
            row = f.pe * (work.steps * work.weight_bits + (work.steps + 1) * work.out_bits)
            rom_lut, rom_bram = _rom(row, work.pe_dim // f.pe)
            lut, bram = lut + rom_lut, bram + rom_bram
    elif work.kind in ("product", "gate"):  # a multiplier per value: a DSP when wide, else LUTs
        if work.in_bits + work.weight_bits >= DSP_MIN_PRODUCT_BITS:
            dsp += ops
        else:
            lut += ops * (work.in_bits * work.weight_bits) // 2
    elif work.kind in ("sum", "max", "elementwise", "softmax"):
        lut += ops * work.acc_bits
    if work.table_entries:  # one copy of the table per lane (a ROM has one read port)
        t_lut, t_bram = _rom(work.table_width, work.table_entries)
        lut, bram = lut + t_lut * lanes, bram + t_bram * lanes
    if work.line_buffer_bits:
        b_lut, b_bram = _buffer(work.line_buffer_bits)
        lut, bram = lut + b_lut, bram + b_bram
    return Estimate(int(lut), int(ff), int(dsp), float(bram))


def fifo_estimate(graph: Graph, depths: dict[str, int]) -> Estimate:
    """The FIFOs of the streaming design: each reader of a tensor whose planned depth (in values) exceeds two stream
    words gets a ``qfx_fifo`` of that many words (a pixel's channels, or a whole vector, per word) in LUT RAM, or
    block RAM when deep, plus its output register and pointers."""
    readers: dict[str, int] = {}
    for node in graph.nodes:
        for t in node.inputs:
            readers[t] = readers.get(t, 0) + 1
    out = Estimate()
    for tensor, depth in depths.items():
        t = graph.tensors[tensor]
        word = t.shape[0] if len(t.shape) in (2, 3) else t.size
        words = math.ceil(depth / max(1, word))
        if words <= 2 or t.fmt is None:
            continue
        width = word * t.fmt.width
        if words <= LUTRAM_DEPTH or width * words < BRAM_MIN_BITS:
            lut, bram = _lutram(words, width), 0.0
        else:
            lut, bram = 0, min(math.ceil(width / w) * math.ceil(words / d) for d, w in RAMB18_SHAPES) / 2
        ff = width + 3 * words.bit_length() + 2
        out = out + Estimate(lut + 2 * words.bit_length() + 6, ff, 0, bram).times(readers.get(tensor, 1))
    return out
