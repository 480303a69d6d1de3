"""What each IR node does, as the plan sees it: its loop nest (:class:`Work`), the parallelism a plan gives it
(:class:`Folding`), and the clocks per sample that follow (:meth:`Work.cycles`). What it costs is in
:mod:`qfx.plan.cost`.

A node's work is a loop nest ``positions x pe_dim x simd_dim``: a dense layer is 1 x outputs x inputs, a
convolution is output pixels x output channels x (input channels per group x kernel area), a pool is output pixels x
channels x window, an element-wise node is positions x channels x 1. A :class:`Folding` unrolls ``pixels``
positions, ``pe`` of pe_dim and ``simd`` of simd_dim per clock (each a divisor of its dimension).
"""

from __future__ import annotations

import functools
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
    Mul,
    Node,
    Reshape,
    Softmax,
    SumPool2d,
    Threshold,
    is_channel_gate,
    spatial,
)

__all__ = ["Folding", "Work", "chunk_of", "whole_map_sum", "window_chunk", "work_of"]


@dataclass(frozen=True)
class Folding:
    """Parallelism of one node: output positions, output channels (PE) and inputs per output (SIMD) per clock."""

    pe: int = 1
    simd: int = 1
    pixels: int = 1


@dataclass(frozen=True)
class Work:
    """The loop nest of a node and what each of its inner operations is (see the module docstring)."""

    node: str
    op: str
    positions: int
    pe_dim: int
    simd_dim: int
    kind: str  # "mac" | "xnor" | "affine" | "threshold" | "sum" | "max" | "elementwise" | "table" | "softmax" | "move"
    # | "product" (two tensors) | "gate" (a map times one value per channel)
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
    stream_cycles: int = 0  # clocks the streaming unit needs whatever its PE x SIMD: reading its input words
    # a sliding window's walk: (output rows, output columns, kernel columns, columns it loads per window after the
    # first of a row); see :meth:`Work.cycles`
    walk: tuple[int, int, int, int] = ()
    vector: int = 0  # values of the input vector a fold unit holds (a dense layer's input, a window)
    shared: bool = True  # every PE lane reads the same inputs (dense, ungrouped convolution; not pools)
    window: tuple[int, ...] = ()  # a sliding window's (kernel rows, kernel columns, row banks, bank depth, pixel bits)
    in_words: int = 1  # stream words a dense layer collects into its input vector
    pixels_in: int = 0  # input pixels a sliding window stores per sample (one per clock)
    row_pixels: int = 0  # an upsampling's input row (its unit holds two in distributed RAM)
    runs: bool = False  # a concatenation along rows or columns (runs of words from either input)

    @functools.cached_property
    def max_abs_code(self) -> int:
        """The largest |weight code| (0 without weights); computed once per node, the planner asks per folding."""
        if self.weight_codes is None or not np.size(self.weight_codes):
            return 0
        return int(np.abs(np.asarray(self.weight_codes, dtype=np.int64)).max())

    @functools.cached_property
    def has_zero_code(self) -> bool:
        """Whether a weight code is 0 (a ternary layer's ROM keeps two bits per weight)."""
        return self.weight_codes is not None and bool(np.any(np.asarray(self.weight_codes) == 0))

    @property
    def macs(self) -> int:
        """Operations per sample (multiply-accumulates for a MAC layer)."""
        return self.positions * self.pe_dim * self.simd_dim

    def cycles(self, f: Folding, streaming: bool = True) -> int:
        """Clocks per sample at folding ``f``. A streaming unit (``pixels`` = 1) also waits for its input words and
        its window loads; the fully parallel design (``streaming=False``) takes a whole sample per clock.

        A sliding window hands whole windows to its fold unit, which takes ``F`` clocks per window: the window
        unit loads one window column per clock, all ``KW`` at the start of an output row (it starts once the
        row's previous window was taken), then the stride's columns per window. A row thus takes
        ``max(KW, F) + (WO - 1) * max(SW, F)`` clocks; the input, one pixel per clock, may be slower still."""
        folded = (self.positions // f.pixels) * (self.pe_dim // f.pe) * (self.simd_dim // f.simd)
        if not streaming or f.pixels != 1:
            return folded
        if chunk_of(self, f):  # a window generator: one word per step, one input pixel stored per clock
            return max(folded, self.pixels_in)
        if self.walk:
            rows, cols, kw, per_window = self.walk
            per_position = folded // self.positions
            return max(self.pixels_in, rows * (max(kw, per_position) + (cols - 1) * max(per_window, per_position)))
        return max(folded, self.stream_cycles, self.pixels_in)

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
        return Work(walk=_walk(h_out, w_out, kw, node.stride[1], node.dilation[1]), positions=h_out * w_out,
                    pe_dim=c_out, simd_dim=int(np.prod(node.weight.shape[1:])), kind=kind,
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
        return Work(walk=_walk(h_out, w_out, kw, node.stride[1], 1), positions=h_out * w_out, pe_dim=c,
                    simd_dim=kh * kw,
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
    if isinstance(node, Mul) and is_channel_gate(x.shape, graph.tensors[node.inputs[1]].shape):
        # a whole map word per clock once the gate's words are in: the map's words plus the gate's per sample
        words = _input_words(graph, node.inputs[0]) + _input_words(graph, node.inputs[1])
        return Work(stream_cycles=words, positions=positions, pe_dim=channels, simd_dim=1, kind="gate",
                    weight_bits=_width(graph.tensors[node.inputs[1]].fmt), **common)  # fmt: skip
    if isinstance(node, Mul):  # the second operand's width stands where a weight's would
        return Work(positions=positions, pe_dim=channels, simd_dim=1, kind="product",
                    weight_bits=_width(graph.tensors[node.inputs[1]].fmt), **common)  # fmt: skip
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


def _walk(h_out: int, w_out: int, kw: int, sw: int, dw: int) -> tuple[int, int, int, int]:
    """A sliding window's walk over its output (:attr:`Work.walk`): after a row's first window it loads the stride's
    columns per window (``KW`` each when dilated: no columns are shared)."""
    return h_out, w_out, kw, min(sw, kw) if dw == 1 else kw
