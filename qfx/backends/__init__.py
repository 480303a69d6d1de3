"""Backends: the IR lowered to an HLS project (:mod:`qfx.backends.hls`) and to Verilog (:mod:`qfx.rtl`).

Both backends build the fully unrolled design (every multiplication its own operator, every value its own
register), so both refuse a graph too large for that before writing anything: :func:`unrolled_size` estimates
the design, :func:`check_size` compares it with a backend's :class:`SizeLimits`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qfx.ir.graph import (
    Affine,
    Cast,
    Conv2d,
    Dense,
    GlobalSum,
    Graph,
    Lookup,
    MaxPool2d,
    Node,
    Reshape,
    Softmax,
    SumPool2d,
    Threshold,
)

__all__ = ["HLS_LIMITS", "DesignTooLarge", "SizeLimits", "check_graph", "check_size", "unrolled_size"]


class DesignTooLarge(ValueError):
    """The fully unrolled design would be too large to build; the message names the largest layer."""


@dataclass(frozen=True)
class SizeLimits:
    """Bounds on a fully unrolled design (whole graph).

    ``macs``: multiply-accumulates (products by nonzero constants, and additions of pools / sums), the operators
    the design instantiates; ``constants``: weight, bias and scale values; ``table_entries``: entries of lookup /
    softmax tables and K-hot digit tables; ``elements``: values of every tensor (registers and wires).
    """

    macs: int
    constants: int
    table_entries: int
    elements: int


#: The fully parallel HLS backend (one sample per clock, every loop unrolled, every array partitioned).
#: ``macs``: above ~64k unrolled multiply-accumulates, HLS scheduling of one fully partitioned pipeline runs for
#: hours (hls4ml's Latency strategy stops at 4,096 multiplications per layer); the digits CNN has 61,726, the
#: zoo's tiny models at most 60,977. ``constants`` and ``table_entries``: written as integer codes, g++ compiles
#: them fast (a C-simulation of 6,570 constants: 8 s; as ap_fixed literals it was 137 s, and 16,384 literals alone
#: took over 10 min), so these bound file sizes and ROMs: 2**18 entries, four 16-bit tables. ``elements``: 2**18
#: values in registers.
HLS_LIMITS = SizeLimits(macs=65_536, constants=1 << 18, table_entries=1 << 18, elements=1 << 18)


@dataclass(frozen=True)
class LayerSize:
    """One node's share of the unrolled design."""

    node: str
    macs: int = 0
    constants: int = 0
    table_entries: int = 0
    elements: int = 0


def _nonzero(codes: np.ndarray | None) -> int:
    return 0 if codes is None else int(np.count_nonzero(codes))


def _size(codes: np.ndarray | None) -> int:
    return 0 if codes is None else int(np.asarray(codes).size)


def _layer_size(graph: Graph, node: Node) -> LayerSize:
    out = graph.tensors[node.output]
    elements = 0 if isinstance(node, Reshape) else out.size
    macs = constants = tables = 0
    if isinstance(node, (Dense, Conv2d, Affine)):
        weight = node.scale if isinstance(node, Affine) else node.weight
        bias = node.shift if isinstance(node, Affine) else node.bias
        positions = 1 if isinstance(node, Dense) else out.size // max(out.shape[0], 1)
        macs = _nonzero(weight) * positions
        constants = _size(bias) if bias is not None or isinstance(node, Affine) else out.shape[0]  # a zero bias
        if isinstance(node, Affine) and weight is None:
            macs = out.size
        if node.khot:  # digit tables: plain integers
            tables = _size(weight) * node.khot * 2
        else:
            constants += _size(weight)
    elif isinstance(node, (SumPool2d, MaxPool2d)):
        macs = out.size * node.kernel[0] * node.kernel[1]
    elif isinstance(node, GlobalSum):
        macs = graph.tensors[node.inputs[0]].size
    elif isinstance(node, Lookup):
        tables = _size(node.table)
    elif isinstance(node, Threshold):  # one comparator per threshold and element; the tables are constants
        macs = out.size * int(node.thresholds.shape[1])
        constants = _size(node.thresholds) + _size(node.values)
    elif isinstance(node, Softmax):
        spec = node.spec
        macs = 2 * out.size  # the sum and the products
        tables = _size(getattr(spec, "exp_table", None)) + _size(getattr(spec, "recip_table", None))
    return LayerSize(node.name, macs, constants, tables, elements)


def unrolled_size(graph: Graph) -> list[LayerSize]:
    """Per node (after the input cast), what its fully unrolled hardware costs."""
    return [_layer_size(graph, n) for n in graph.nodes[1:]]


_WHAT = {
    "macs": "multiply-accumulates unrolled",
    "constants": "weight/bias/scale constants",
    "table_entries": "table entries",
    "elements": "tensor values held at once",
}


_HINT = (
    "fold it with the streaming backend (qfx.backends.hls.stream.generate_stream, issue 13) or make the model "
    "smaller (fewer channels, a smaller input, a stride or pool earlier)"
)


def check_size(graph: Graph, backend: str, limits: SizeLimits, hint: str | None = None) -> None:
    """Raise :class:`DesignTooLarge` (one line: the largest layer, its count, the design's, the bound) when the
    fully unrolled design of ``graph`` exceeds ``limits``; ``hint`` ends the message (what to do instead).
    Cheap: reads shapes and counts nonzero weights."""
    sizes = unrolled_size(graph)
    for key, what in _WHAT.items():
        bound = getattr(limits, key)
        total = sum(getattr(s, key) for s in sizes)
        if total <= bound:
            continue
        worst = max(sizes, key=lambda s: getattr(s, key))
        raise DesignTooLarge(
            f"layer {worst.node} needs {getattr(worst, key):,} {what} (the whole design {total:,}); the fully "
            f"parallel {backend} backend takes at most {bound:,} per design: {hint or _HINT}"
        )


def check_graph(graph: Graph, backend: str, limits: SizeLimits | None = None) -> None:
    """Raise unless ``graph`` has one input and one output and starts by casting its float input (the cast's output
    becomes the hardware's input port: the float-to-fixed conversion happens before the hardware), and, given
    ``limits`` (the fully unrolled backends: :data:`HLS_LIMITS`), that its unrolled design fits them
    (:func:`check_size`)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"the {backend} backend takes graphs with exactly one input and one output")
    first = graph.nodes[0] if graph.nodes else None
    if not isinstance(first, Cast) or first.inputs != graph.inputs:
        raise ValueError("the graph must start by casting its float input into a fixed-point format (a Quant node)")
    if any(graph.inputs[0] in n.inputs for n in graph.nodes[1:]):
        raise ValueError(f"the float input {graph.inputs[0]} may only feed the first cast")
    if graph.outputs[0] == first.output:
        raise ValueError("the graph has no layers between its input and output")
    if limits is not None:
        check_size(graph, backend, limits)
