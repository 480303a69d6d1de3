"""How big the fully parallel Verilog of a graph would be, counted before anything is built or written.

The RTL backend gives every multiply-accumulate, comparison and table read of the network its own logic, so its
size (and the time to build the netlist, simulate and synthesize it) grows with the number of nonzero weights
times the positions they are applied at. :func:`check_size` counts those *terms* per layer from the shapes and
weight codes alone (a fraction of a second even for a 4096 x 4096 dense layer) and refuses a design past
:data:`MAX_TERMS`, naming the largest layers.
"""

from __future__ import annotations

import numpy as np

from qfx.ir.graph import (
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
)

__all__ = ["MAX_TERMS", "DesignTooLarge", "check_size", "layer_terms"]

#: Most terms (adder inputs, comparators, table reads, casts) a whole fully parallel design may have. About
#: 3,000 took 40 s to build with Verilator on 2 cores; this is the scale of a large FPGA's LUTs.
MAX_TERMS = 250_000


class DesignTooLarge(ValueError):
    """The fully parallel Verilog would be too large; the message names the largest layers."""


def layer_terms(graph: Graph, node: Node) -> int:
    """Terms of ``node``'s fully parallel logic: one per nonzero weight and position, window element, table
    entry or comparator, plus one cast per output element."""
    out = graph.tensors[node.output].size
    inp = graph.tensors[node.inputs[0]].size if node.inputs else 0
    if isinstance(node, Reshape):
        return 0
    if isinstance(node, Dense):
        return int(np.count_nonzero(node.weight)) + out
    if isinstance(node, Conv2d):
        c_out = int(node.weight.shape[0])
        return int(np.count_nonzero(node.weight)) * (out // max(c_out, 1)) + out
    if isinstance(node, (MaxPool2d, SumPool2d)):
        return out * (int(node.kernel[0]) * int(node.kernel[1]) + 1)
    if isinstance(node, GlobalSum):
        return inp + out
    if isinstance(node, LeakyRelu):
        return out * (int(node.alpha).bit_length() + 2)
    if isinstance(node, Lookup):
        return len(node.table) + out
    if isinstance(node, Softmax):
        return len(node.spec.exp_table) + len(node.spec.recip_table) + 5 * inp
    if isinstance(node, ArgMax):
        return 2 * inp + out
    return out + sum(graph.tensors[t].size for t in node.inputs)


def check_size(graph: Graph, limit: int | None = None) -> int:
    """The design's total terms; raise :class:`DesignTooLarge` past ``limit`` (default :data:`MAX_TERMS`)."""
    limit = MAX_TERMS if limit is None else limit
    sizes = [(layer_terms(graph, n), n) for n in graph.nodes[1:]]
    total = sum(s for s, _ in sizes)
    if total > limit:
        largest = sorted(sizes, key=lambda sn: -sn[0])[:3]
        names = ", ".join(f"{n.name!r} ({n.op}, {s:,} terms)" for s, n in largest if s)
        raise DesignTooLarge(
            f"the fully parallel RTL of graph {graph.name!r} would need about {total:,} terms (adder inputs, "
            f"comparators, table entries), more than the limit of {limit:,} (qfx.rtl.size.MAX_TERMS); largest "
            f"layers: {names}. Make those layers smaller or sparser, or use the HLS backend"
        )
    return total
