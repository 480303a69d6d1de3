"""Passes: plain functions from graph to graph."""

from __future__ import annotations

import copy

from qfx.ir.graph import Cast, Graph, Pad, Reshape, Upsample

__all__ = ["fuse_casts"]

#: Nodes that only move values: their output format is their input's, so a cast after them stays a Cast.
_MOVES = (Cast, Reshape, Pad, Upsample)


def fuse_casts(graph: Graph) -> Graph:
    """A copy of ``graph`` in which each Cast whose input only it reads is folded into the input's producer.

    The producer then assigns its exact result (``acc``) straight to the cast's format, which is what an
    ap_fixed assignment in hardware does: one rounding, no intermediate array. Values are unchanged. Every node
    computing a value (Conv2d, Dense, Affine, Add, Relu, Clip, LeakyRelu, pools, GlobalSum, Concat, Lookup,
    Softmax, ArgMax) takes the cast; value moves (Reshape, Pad, Upsample) and Casts keep output = input format.
    """
    g = copy.deepcopy(graph)
    producers = {n.output: n for n in g.nodes}
    kept = []
    for node in g.nodes:
        src = node.inputs[0] if isinstance(node, Cast) else None
        producer = producers.get(src)
        fusible = (
            producer is not None
            and not isinstance(producer, _MOVES)
            and src not in g.outputs
            and sum(src in n.inputs for n in g.nodes) == 1
        )
        if not fusible:
            kept.append(node)
            continue
        del g.tensors[src]
        producer.output = node.output
        producers[node.output] = producer
    g.nodes = kept
    return g
