"""What one IR node costs in hardware at a given folding: cycles per sample and LUT / FF / DSP / BRAM estimates.

A node's work is a loop nest ``positions x pe_dim x simd_dim`` (:class:`Work`): a dense layer is 1 x outputs x
inputs, a convolution is output pixels x output channels x (input channels per group x kernel area), a pool is
output pixels x channels x window, an element-wise node is positions x channels x 1. A :class:`Folding` unrolls
``pixels`` positions, ``pe`` of pe_dim and ``simd`` of simd_dim per clock (each a divisor of its dimension), so the
node takes ``positions/pixels * pe_dim/pe * simd_dim/simd`` clocks per sample. Full unrolling (the fully parallel
design of today) is one clock.

The resource model is first-order and deliberately simple (every figure below is in the code, none hidden):
a variable multiplier is a DSP slice when its product has 9 bits or more (Yosys ``synth_xilinx``'s minimum
product width for DSP mapping), else about ``wx * ww / 2`` LUTs; a constant weight (fully unrolled layers) costs
nothing when it is 0 or a power of two, and is a DSP like a variable one otherwise; a K-hot product is K adders.
An adder costs one LUT per bit (UltraScale's carry chains). Weight ROMs up to 64 words deep are LUTRAM (one LUT
per bit of width per 64 words), deeper ones block RAM in the best RAMB18 aspect ratio. Line buffers hold
(kernel rows - 1) image rows in block RAM once they exceed 4 Kib. Nothing here is calibrated against synthesis
yet: treat it as the planner's yardstick, not a synthesis result.
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

__all__ = ["DSP_MIN_PRODUCT_BITS", "Estimate", "Folding", "Work", "estimate", "work_of"]

#: Products narrower than this many bits stay in LUTs (Yosys synth_xilinx maps $mul to DSP48 from 9 output bits).
DSP_MIN_PRODUCT_BITS = 9
LUTRAM_DEPTH = 64  # one LUT6 holds a 64 x 1 ROM
BRAM_MIN_BITS = 4096  # smaller buffers stay in LUTRAM / registers
RAMB18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))  # depth x width
LAYER_OVERHEAD_LUT, LAYER_OVERHEAD_FF = 40, 60  # loop counters, stream handshake


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

    @property
    def macs(self) -> int:
        """Operations per sample (multiply-accumulates for a MAC layer)."""
        return self.positions * self.pe_dim * self.simd_dim

    def cycles(self, f: Folding, streaming: bool = True) -> int:
        """Clocks per sample at folding ``f``. A streaming unit (``pixels`` = 1) also waits for its input words and
        its window loads (:attr:`stream_cycles`); the fully parallel design (``streaming=False``) takes a whole
        sample per clock."""
        folded = (self.positions // f.pixels) * (self.pe_dim // f.pe) * (self.simd_dim // f.simd)
        return max(folded, self.stream_cycles) if streaming and f.pixels == 1 else folded

    def check(self, f: Folding) -> None:
        for name, value, dim in (("pe", f.pe, self.pe_dim), ("simd", f.simd, self.simd_dim),
                                 ("pixels", f.pixels, self.positions)):  # fmt: skip
            if not isinstance(value, int) or value < 1 or dim % value:
                raise ValueError(f"node {self.node}: {name} = {value!r} must be a positive divisor of {dim}")


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
                    **common)  # fmt: skip
    if isinstance(node, Conv2d):
        c_in, _, w_in = spatial(x.shape)
        c_out, h_out, w_out = spatial(out.shape)
        kh, kw = node.weight.shape[2:]
        h_in = spatial(x.shape)[1]
        kind = "xnor" if node.bipolar else "mac"
        return Work(stream_cycles=_window_cycles(h_in, w_in, h_out, w_out, kw, node.stride[1], node.dilation[1]),
                    positions=h_out * w_out, pe_dim=c_out, simd_dim=int(np.prod(node.weight.shape[1:])), kind=kind,
                    weight_bits=node.weight_fmt.width, khot=node.khot,
                    weight_codes=np.asarray(node.weight).reshape(c_out, -1),
                    line_buffer_bits=(kh - 1) * w_in * c_in * _width(x.fmt), **common)  # fmt: skip
    if isinstance(node, (MaxPool2d, SumPool2d)):
        c, _, w_in = spatial(x.shape)
        _, h_out, w_out = spatial(out.shape)
        kh, kw = node.kernel
        return Work(stream_cycles=_window_cycles(spatial(x.shape)[1], w_in, h_out, w_out, kw, node.stride[1], 1),
                    positions=h_out * w_out, pe_dim=c, simd_dim=kh * kw,
                    kind="max" if isinstance(node, MaxPool2d) else "sum",
                    line_buffer_bits=(kh - 1) * w_in * c * _width(x.fmt), **common)  # fmt: skip
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
    return Work(positions=positions, pe_dim=channels, simd_dim=1, kind=kind, **common)


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


def estimate(work: Work, f: Folding) -> Estimate:
    """Resources of ``work`` at folding ``f`` (see the module docstring for the model)."""
    lanes = f.pixels * f.pe  # outputs produced in parallel
    ops = lanes * f.simd  # operations in parallel
    lut, ff, dsp, bram = LAYER_OVERHEAD_LUT, LAYER_OVERHEAD_FF + work.out_bits * lanes, 0, 0.0
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
        if work.khot:
            lut += adders * work.khot * work.acc_bits
            if not constant:  # shifters for the digits read from the ROM
                lut += ops * work.khot * work.acc_bits
        elif product_bits >= DSP_MIN_PRODUCT_BITS:
            dsp += real
            lut += adders * work.acc_bits
        else:
            lut += real * (work.in_bits * work.weight_bits) // 2 + adders * work.acc_bits
        ff += ops * work.acc_bits // 2 + lanes * work.acc_bits  # pipeline + accumulators
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
        ff += ops * work.acc_bits // 2
    if work.table_entries:  # one copy of the table per lane (a ROM has one read port)
        t_lut, t_bram = _rom(work.table_width, work.table_entries)
        lut, bram = lut + t_lut * lanes, bram + t_bram * lanes
    if work.line_buffer_bits:
        b_lut, b_bram = _buffer(work.line_buffer_bits)
        lut, bram = lut + b_lut, bram + b_bram
    return Estimate(int(lut), int(ff), int(dsp), float(bram))
