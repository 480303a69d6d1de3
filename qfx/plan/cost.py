"""What one IR node costs in hardware at a given folding: cycles per sample and LUT / FF / DSP / BRAM estimates.

A node's work is a loop nest ``positions x pe_dim x simd_dim`` (:class:`Work`): a dense layer is 1 x outputs x
inputs, a convolution is output pixels x output channels x (input channels per group x kernel area), a pool is
output pixels x channels x window, an element-wise node is positions x channels x 1. A :class:`Folding` unrolls
``pixels`` positions, ``pe`` of pe_dim and ``simd`` of simd_dim per clock (each a divisor of its dimension), so the
node takes ``positions/pixels * pe_dim/pe * simd_dim/simd`` clocks per sample. Full unrolling (the fully parallel
design of today) is one clock.

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

from qfx.format import FixedFormat
from qfx.ir.graph import (
    Affine,
    ArgMax,
    Conv2d,
    Dense,
    GlobalSum,
    Graph,
    LeakyRelu,
    Lookup,
    MaxPool2d,
    Node,
    Reshape,
    Softmax,
    SumPool2d,
    Threshold,
    spatial,
)

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
SOFTMAX_TABLE_LUT = 32  # LUTs per 64 entries of a softmax table (about 16-bit exponentials and reciprocals)
AFFINE_LUT = 0.7  # LUTs per accumulator bit of each value of an affine unit's word (select, add, cast)
WINDOW_FF = 45  # a sliding window's counters (rows, columns, banks, how far the writer is ahead)
GENERATOR_BASE_LUT = 120  # a window generator's counters and address arithmetic (row bank x width + column)
GENERATOR_FF = 70  # a window generator's counters (window, pass, kernel position, channel group, writer)
MOVE_BASE_LUT = 16  # a pad or upsample unit's counters and compares (Yosys: 16 for an 8 x 8 map of 8 channels)


@dataclass(frozen=True)
class Folding:
    """Parallelism of one node: output positions, output channels (PE) and inputs per output (SIMD) per clock."""

    pe: int = 1
    simd: int = 1
    pixels: int = 1


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


@dataclass(frozen=True)
class Work:
    """The loop nest of a node and what each of its inner operations is (see the module docstring)."""

    node: str
    op: str
    positions: int
    pe_dim: int
    simd_dim: int
    kind: str  # "mac" | "xnor" | "affine" | "threshold" | "sum" | "max" | "elementwise" | "table" | "softmax" | "move"
    in_bits: int  # width of one input element
    out_bits: int  # width of one output element
    acc_bits: int  # width of the exact result
    weight_bits: int = 0
    khot: int | None = None
    weight_codes: np.ndarray | None = None  # constant operand codes (shaped pe_dim x simd_dim) for MACs
    line_buffer_bits: int = 0  # (kernel rows - 1) input rows, for convolutions and pools over rows
    table_entries: int = 0  # a lookup table read by every lane (sigmoid, tanh, softmax's exponentials)
    table_width: int = 0
    steps: int = 0  # thresholds per channel (a Threshold node): comparators per output
    stream_cycles: int = 0  # clocks the streaming unit needs whatever its PE x SIMD: reading its input words,
    # and for a sliding window one clock per window column it loads (KW at the start of a row, then the stride)
    vector: int = 0  # values of the input vector a fold unit holds (a dense layer's input, a window)
    shared: bool = True  # every PE lane reads the same inputs (dense, ungrouped convolution; not pools)
    window: tuple[int, ...] = ()  # a sliding window's (kernel rows, kernel columns, row banks, bank depth, pixel bits)
    in_words: int = 1  # stream words a dense layer collects into its input vector
    pixels_in: int = 0  # input pixels a sliding window stores per sample (one per clock)
    row_pixels: int = 0  # an upsampling's input row (its unit holds two in distributed RAM)
    runs: bool = False  # a concatenation along rows or columns (runs of words from either input)

    @property
    def macs(self) -> int:
        """Operations per sample (multiply-accumulates for a MAC layer)."""
        return self.positions * self.pe_dim * self.simd_dim

    def cycles(self, f: Folding, streaming: bool = True) -> int:
        """Clocks per sample at folding ``f``. A streaming unit (``pixels`` = 1) also waits for its input words and
        its window loads (:attr:`stream_cycles`); the fully parallel design (``streaming=False``) takes a whole
        sample per clock."""
        folded = (self.positions // f.pixels) * (self.pe_dim // f.pe) * (self.simd_dim // f.simd)
        if not streaming or f.pixels != 1:
            return folded
        if chunk_of(self, f):  # a window generator: one word per step, one input pixel stored per clock
            return max(folded, self.pixels_in)
        return max(folded, self.stream_cycles)

    def check(self, f: Folding) -> None:
        for name, value, dim in (("pe", f.pe, self.pe_dim), ("simd", f.simd, self.simd_dim),
                                 ("pixels", f.pixels, self.positions)):  # fmt: skip
            if not isinstance(value, int) or value < 1 or dim % value:
                raise ValueError(f"node {self.node}: {name} = {value!r} must be a positive divisor of {dim}")


def window_chunk(c_in: int, c_out: int, groups: int, pe: int, simd: int) -> int:
    """Channels per word when a window generator can stream a convolution's or pool's windows to its fold unit at
    folding (pe, simd), else 0 (the unit then takes whole windows). Each step's inputs must be one aligned group of
    channels at one kernel position: SIMD channels (an ungrouped convolution, SIMD dividing the channels), or PE
    channels at SIMD 1 (a depthwise convolution, one output channel per input channel, or a pool)."""
    if groups == 1:
        return simd if c_in % simd == 0 else 0
    if groups == c_in == c_out:
        return pe if simd == 1 else 0
    return 0


def chunk_of(work: Work, f: Folding) -> int:
    """:func:`window_chunk` of a node's :class:`Work` (0 for nodes without a sliding window)."""
    if not work.window:
        return 0
    kh, kw = work.window[:2]
    c_in, cig = work.vector // (kh * kw), work.simd_dim // (kh * kw)
    return window_chunk(c_in, work.pe_dim, c_in // cig, f.pe, f.simd)


def _width(fmt: FixedFormat | None) -> int:
    return fmt.width if fmt is not None else 0


def work_of(graph: Graph, node: Node) -> Work:
    """The :class:`Work` of ``node`` in ``graph``."""
    x = graph.tensors[node.inputs[0]]
    out = graph.tensors[node.output]
    common = dict(node=node.name, op=node.op, in_bits=_width(x.fmt), out_bits=_width(out.fmt),
                  acc_bits=_width(node.acc) or _width(out.fmt))  # fmt: skip
    if isinstance(node, Dense):
        o, i = node.weight.shape
        words = _input_words(graph, node.inputs[0])
        return Work(stream_cycles=words, positions=1, pe_dim=o, simd_dim=i, kind="xnor" if node.bipolar else "mac",
                    weight_bits=node.weight_fmt.width, khot=node.khot, weight_codes=np.asarray(node.weight),
                    vector=i, in_words=words, **common)  # fmt: skip
    if isinstance(node, Conv2d):
        c_in, _, w_in = spatial(x.shape)
        c_out, h_out, w_out = spatial(out.shape)
        kh, kw = node.weight.shape[2:]
        h_in = spatial(x.shape)[1]
        kind = "xnor" if node.bipolar else "mac"
        return Work(stream_cycles=_window_cycles(h_in, w_in, h_out, w_out, kw, node.stride[1], node.dilation[1]),
                    positions=h_out * w_out, pe_dim=c_out, simd_dim=int(np.prod(node.weight.shape[1:])), kind=kind,
                    weight_bits=node.weight_fmt.width, khot=node.khot,
                    weight_codes=np.asarray(node.weight).reshape(c_out, -1), pixels_in=h_in * w_in,
                    line_buffer_bits=(kh - 1) * w_in * c_in * _width(x.fmt), vector=kh * kw * c_in,
                    shared=node.groups == 1,
                    window=() if _pointwise(node, x.shape, out.shape) else
                    _window(kh, kw, node.stride[0], node.dilation[0], w_in, c_in * _width(x.fmt)),
                    **common)  # fmt: skip
    if whole_map_sum(node, graph):  # rendered as a global sum: C accumulators over the pixels
        c = x.shape[0]
        return Work(positions=x.size // c, pe_dim=c, simd_dim=1, kind="sum", **common)
    if isinstance(node, (MaxPool2d, SumPool2d)):
        c, _, w_in = spatial(x.shape)
        _, h_out, w_out = spatial(out.shape)
        kh, kw = node.kernel
        return Work(stream_cycles=_window_cycles(spatial(x.shape)[1], w_in, h_out, w_out, kw, node.stride[1], 1),
                    positions=h_out * w_out, pe_dim=c, simd_dim=kh * kw,
                    kind="max" if isinstance(node, MaxPool2d) else "sum", pixels_in=spatial(x.shape)[1] * w_in,
                    line_buffer_bits=(kh - 1) * w_in * c * _width(x.fmt), vector=kh * kw * c, shared=False,
                    window=_window(kh, kw, node.stride[0], 1, w_in, c * _width(x.fmt)), **common)  # fmt: skip
    if isinstance(node, GlobalSum):
        c = x.shape[0]
        return Work(positions=x.size // c, pe_dim=c, simd_dim=1, kind="sum", **common)
    if isinstance(node, (Softmax, ArgMax)):
        n = x.shape[-1]
        if isinstance(node, Softmax):
            return Work(positions=x.size // n, pe_dim=n, simd_dim=1, kind="softmax", table_entries=1 << _width(x.fmt),
                        table_width=node.spec.exp_fmt.width, **common)  # fmt: skip
        return Work(positions=x.size // n, pe_dim=n, simd_dim=1, kind="max", **common)
    channels = out.shape[0] if out.shape else 1
    positions = max(1, out.size // channels)
    if isinstance(node, Affine):
        scale = node.scale if node.scale is not None else np.ones(channels, dtype=np.int64)
        return Work(positions=positions, pe_dim=channels, simd_dim=1, kind="affine",
                    weight_bits=_width(node.scale_fmt), khot=node.khot,
                    weight_codes=np.asarray(scale).reshape(channels, 1), **common)  # fmt: skip
    if isinstance(node, Threshold):
        return Work(positions=positions, pe_dim=channels, simd_dim=1, kind="threshold",
                    weight_bits=_width(x.fmt) + 2, steps=int(node.thresholds.shape[1]), **common)  # fmt: skip
    if isinstance(node, Lookup):
        return Work(positions=positions, pe_dim=channels, simd_dim=1, kind="table",
                    table_entries=len(node.table), table_width=_width(node.acc), **common)  # fmt: skip
    if isinstance(node, LeakyRelu):
        return Work(positions=positions, pe_dim=channels, simd_dim=1, kind="affine", weight_bits=node.alpha_fmt.width,
                    weight_codes=np.full((channels, 1), node.alpha), **common)  # fmt: skip
    kind = "move" if isinstance(node, Reshape) or node.op in ("pad", "upsample", "concat") else "elementwise"
    row = spatial(x.shape)[2] if node.op == "upsample" else 0
    runs = node.op == "concat" and node.axis != 0
    return Work(positions=positions, pe_dim=channels, simd_dim=1, kind=kind, row_pixels=row, runs=runs, **common)


def whole_map_sum(node: Node, graph: Graph) -> bool:
    """Whether ``node`` is a sum pool whose one window is the whole unpadded feature map (an average pool's sum):
    the streaming units render it as a global sum (an accumulator per channel), not as a window the map's size."""
    if not isinstance(node, SumPool2d) or any(node.padding):
        return False
    _, h, w = spatial(graph.tensors[node.inputs[0]].shape)
    _, h_out, w_out = spatial(graph.tensors[node.output].shape)
    return tuple(node.kernel) == (h, w) and (h_out, w_out) == (1, 1)


def _pointwise(node: Conv2d, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> bool:
    """A 1 x 1 convolution at stride 1 without padding: its window is the input pixel (no sliding-window unit)."""
    kh, kw = node.weight.shape[2:4]
    same = spatial(in_shape)[1:] == spatial(out_shape)[1:]
    return (kh, kw) == (1, 1) and tuple(node.stride) == (1, 1) and not any(node.padding) and same


def _window(kh: int, kw: int, sh: int, dh: int, w_in: int, pixel_bits: int) -> tuple[int, ...]:
    """(kernel rows, kernel columns, row banks, bank depth, pixel bits) of the sliding-window unit: it keeps 2R + SH
    input rows (R = the dilated kernel height) so that the next row and the next frame can be written ahead."""
    r = (kh - 1) * dh + 1
    return kh, kw, 2 * r + sh, w_in, pixel_bits


def _input_words(graph: Graph, tensor: str) -> int:
    """Stream words of ``tensor`` as the streaming units carry it: a feature map (before any flatten) one word per
    pixel, a vector one word."""
    producers = {n.output: n for n in graph.nodes}
    while tensor in producers and isinstance(producers[tensor], Reshape):
        tensor = producers[tensor].inputs[0]
    shape = graph.tensors[tensor].shape
    return max(1, graph.tensors[tensor].size // shape[0]) if len(shape) in (2, 3) else 1


def _window_cycles(h_in: int, w_in: int, h_out: int, w_out: int, kw: int, sw: int, dw: int) -> int:
    """Clocks a sliding-window unit needs per sample: one per input pixel it stores, and one per window column it
    loads (all KW at the start of an output row, then SW per window; KW each when dilated); the larger."""
    per_window = min(sw, kw) if dw == 1 else kw
    return max(h_in * w_in, h_out * (kw + (w_out - 1) * per_window))


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
        if work.khot:
            per_digit = aw if constant else aw * KHOT_SHIFT_LUT  # a constant shift is wiring
            lut += terms * work.khot * per_digit
        elif work.in_bits + work.weight_bits >= DSP_MIN_PRODUCT_BITS:
            if constant:
                codes = work.weight_codes
                dsp += int(np.count_nonzero(~_is_power_of_two_or_zero(codes)))
            else:
                dsp += terms
            lut += terms * aw * ADD_LUT
        else:
            lut += terms * (work.in_bits * work.weight_bits // 2 + aw)
        if not constant:
            digit_bits = work.khot * 6 if work.khot else work.weight_bits
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
    return Estimate(int(lut), int(ff), dsp, bram)


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
        n, rom = work.pe_dim, math.ceil(work.table_entries / LUTRAM_DEPTH)  # reciprocal table, the sum
        return Estimate(int((n + 1) * rom * SOFTMAX_TABLE_LUT), n * work.out_bits + 1, n)
    if work.kind == "sum":  # a global sum: an accumulator, an adder and a cast per channel
        aw = work.acc_bits + 1
        return Estimate(work.pe_dim * (aw + work.out_bits), work.pe_dim * (aw + work.out_bits) + 8)
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
            digit_bits = work.khot * 6 if work.khot else work.weight_bits
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
