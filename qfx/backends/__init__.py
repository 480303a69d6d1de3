"""Backends: the IR lowered to an HLS project (:mod:`qfx.backends.hls`) and to Verilog (:mod:`qfx.rtl`)."""

from __future__ import annotations

from qfx.ir.graph import Cast, Graph

__all__ = ["check_graph"]


def check_graph(graph: Graph, backend: str) -> None:
    """Raise unless ``graph`` has one input and one output and starts by casting its float input (the cast's output
    becomes the hardware's input port: the float-to-fixed conversion happens before the hardware)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"the {backend} backend takes graphs with exactly one input and one output")
    first = graph.nodes[0] if graph.nodes else None
    if not isinstance(first, Cast) or first.inputs != graph.inputs:
        raise ValueError("the graph must start by casting its float input into a fixed-point format (a Quant node)")
    if any(graph.inputs[0] in n.inputs for n in graph.nodes[1:]):
        raise ValueError(f"the float input {graph.inputs[0]} may only feed the first cast")
    if graph.outputs[0] == first.output:
        raise ValueError("the graph has no layers between its input and output")
