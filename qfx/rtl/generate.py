"""IR graph -> synthesizable Verilog-2001 with AXI4-Stream ports, fully parallel (the plan with maximal parallelism:
one combinational module per layer in a stage unit, :mod:`qfx.rtl.parallel`) or folded as a hardware plan says
(streaming units: :mod:`qfx.rtl.stream`); one writer (:mod:`qfx.rtl.stream_generate`) renders both.

The fully parallel architecture: every multiply-accumulate of the network is its own piece of logic and a new
input vector enters every clock cycle. Its size therefore grows with the number of nonzero weights (each is an
adder, plus a multiplier unless it is a power of two or K-hot); it suits the small, low-latency networks of
trigger and edge applications, up to some tens of thousands of weights on a large device (docs/flow.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path

import jinja2

import qfx
from qfx.backends import check_graph
from qfx.backends.hls.generate import hls_root
from qfx.backends.output import check_target, read_marker
from qfx.boards import Board, load_board
from qfx.ir.constants import printable, sanitize
from qfx.ir.graph import Graph, Reshape
from qfx.ir.passes import fuse_casts
from qfx.rtl.lower import AdderOptions, adder_options, lower_node
from qfx.rtl.size import DesignTooLarge, check_rtl_size

__all__ = ["MARKER", "generate", "read_rtl"]

MARKER = "qfx_rtl.json"  # marks a folder QFX generated (and may overwrite); simulate() and report() read it
LIBRARY = "qfx_cast.v"  # the cast module, copied from hls/rtl into every generated folder
TERNARY = "qfx_add3.v"  # the ternary adder (hls/rtl), copied when a layer uses it
PRIMITIVES = "qfx_xilinx_sim.v"  # simulation models of the Xilinx primitives qfx_add3 instantiates


def read_rtl(rtl_dir: str | os.PathLike) -> dict:
    """The metadata of a QFX-generated RTL folder (raises when the folder is not one)."""
    return read_marker(Path(rtl_dir) / MARKER, "QFX RTL folder", ("top", "sources", "input", "output"))


def generate(
    graph: Graph,
    out_dir: str | os.PathLike,
    *,
    name: str | None = None,
    register_every: int = 1,
    force: bool = False,
    architecture: str = "parallel",
    plan=None,
    board: str | Board = "ultra96v2",
    adders: AdderOptions | Mapping | str | None = None,
) -> Path:
    """Write Verilog for ``graph`` to ``out_dir`` and return its path.

    ``architecture``: ``"parallel"`` (below), ``"stream"`` folds the network as ``plan`` says (a
    :class:`qfx.plan.Plan`; default ``qfx.plan.plan(graph, board)``, the fastest that fits the board): streaming
    units joined by valid/ready streams, AXI4-Stream ports ``s_axis_*`` / ``m_axis_*``, weights in ``$readmemh``
    ROMs (``*.mem`` next to the Verilog); ``"auto"`` takes the fully parallel design when the plan is one sample
    per clock and the network is small enough to unroll, else the streaming one (as :func:`qfx.hls.generate`).

    The fully parallel folder holds ``qfx_cast.v`` (the cast library), ``<name>_layers.v`` (one combinational
    module per IR node), ``<name>_units.v`` (a stage unit per layer: the module and its valid/ready register; delays,
    forks), ``<name>.v`` (the AXI4-Stream top, the whole tensor in one word) and ``qfx_rtl.json`` (ports, formats,
    latency, layers) for :func:`qfx.rtl.simulate` and :func:`qfx.synth.report`. ``register_every`` = k puts a
    register stage after every k-th layer (1: after each; 0: none, a purely combinational datapath). Branches that
    meet (a residual add) are delayed to the same stage. An existing folder is replaced only when QFX made it (or
    with ``force``); nothing is left half-written.

    ``adders`` (the fully parallel design): how constant weights become logic, an :class:`AdderOptions` or a dict
    of its fields, e.g. ``{"multiplier_free": {"fc1", "fc2"}, "max_depth": 8}`` (plain weights of those layers as
    adder graphs, no DSP); ``"auto"``: multiplier-free for the layers whose DSPs would not fit ``board``
    (:func:`qfx.plan.adders.multiplier_free_layers`); None: the enclosing :func:`qfx.rtl.lower.adder_options`
    block, else multiplies for plain weights.
    """
    if isinstance(register_every, bool) or not isinstance(register_every, int) or register_every < 0:
        raise ValueError(f"register_every must be an integer >= 0, not {register_every!r}")
    if architecture not in ("parallel", "stream", "auto"):
        raise ValueError(f"architecture must be 'parallel', 'stream' or 'auto', not {architecture!r}")
    if adders is not None and architecture == "stream":
        raise ValueError("adders= shapes the fully parallel design; the streaming one has no adder graphs")
    if plan is not None and architecture == "parallel":
        raise ValueError("a plan folds the streaming design: pass architecture='stream' or 'auto' with plan=")
    board = board if isinstance(board, Board) else load_board(board)
    if architecture == "auto":
        architecture, plan = _choose(graph, board, plan)
    out_dir = Path(out_dir)
    if architecture == "stream":
        from qfx.plan import plan as make_plan
        from qfx.rtl.stream_generate import write_stream

        replace = check_target(out_dir, MARKER, force, "QFX RTL folder")
        check_graph(graph, "RTL")
        fused = fuse_casts(graph)
        plan = plan if plan is not None else make_plan(graph, board)
        names = {n.name for n in fused.nodes}
        unknown = sorted(la.node for la in plan.layers if la.node not in names)
        if unknown:
            raise ValueError(
                f"the plan is for another graph: it has layer {unknown[0]!r}, which {graph.name!r} has not"
            )
        return write_stream(fused, graph, plan, out_dir, replace, sanitize(name or graph.name, set()), MARKER)
    replace = check_target(out_dir, MARKER, force, "QFX RTL folder")
    check_graph(graph, "RTL")
    check_rtl_size(graph)  # before any netlist is built: a huge layer is refused at once
    return _write_parallel(graph, out_dir, replace, sanitize(name or graph.name, set()), register_every, adders, board)


def _write_parallel(graph: Graph, out_dir: Path, replace: bool, top: str, register_every: int, adders,
                    board: Board) -> Path:  # fmt: skip
    """The fully parallel plan through the streaming writer: a stage unit per layer (:mod:`qfx.rtl.parallel`)."""
    from qfx.plan.work import work_of
    from qfx.rtl.parallel import render_parallel
    from qfx.rtl.stream_generate import write_folder

    fused = fuse_casts(graph)
    env = verilog_environment()
    with _adder_block(adders, graph, board):
        rtl, layers, latency = render_parallel(fused, top, register_every, env, lower_node)
    ports = {}
    for key, tensor in (("input", fused.nodes[0].output), ("output", fused.outputs[0])):
        t = fused.tensors[tensor]
        ports[key] = dict(name="x" if key == "input" else "y", size=t.size, shape=list(t.shape), format=str(t.fmt),
                          word=t.size, count=1)  # fmt: skip
    ternary = any(w.inst == "qfx_add3" for layer in layers for w in layer.wires)
    context = dict(top=top, version=qfx.__version__, graph=printable(graph.name), layers=layers)
    layers_file = f"{top}_layers.v"
    sources = [LIBRARY, layers_file, f"{top}_units.v", f"{top}.v", *([TERNARY] if ternary else [])]
    meta = dict(architecture="parallel", latency=latency, cycles=1, board=board.name, register_every=register_every,
                input=ports["input"], output=ports["output"], layers=rtl.layers, roms=[],
                folding={n.name: [w.pe_dim, w.simd_dim, w.positions]  # every node fully unrolled
                         for n in fused.nodes if not isinstance(n, Reshape) for w in [work_of(fused, n)]},
                multipliers=rtl.multipliers)  # fmt: skip
    first = rtl.streams[0]["name"]
    return write_folder(fused, graph, rtl, meta, out_dir, replace, top, MARKER, first, "", sources,
                        files={layers_file: verilog_environment().get_template("layers.v.j2").render(**context)},
                        sim_sources=(PRIMITIVES,) if ternary else ())  # fmt: skip


def _adder_block(adders, graph: Graph, board: Board) -> contextlib.AbstractContextManager:
    """The :func:`adder_options` block that ``generate(..., adders=)`` asks for (none for None)."""
    if adders is None:
        return contextlib.nullcontext()
    if isinstance(adders, str):
        if adders != "auto":
            raise ValueError(f"adders must be AdderOptions, a dict of its fields, 'auto' or None, not {adders!r}")
        from qfx.plan import fully_parallel
        from qfx.plan.adders import multiplier_free_layers

        return adder_options(multiplier_free=multiplier_free_layers(fully_parallel(graph, board)))
    if isinstance(adders, Mapping):
        fields = {f.name for f in dataclasses.fields(AdderOptions)}
        unknown = sorted(set(adders) - fields)
        if unknown:
            raise ValueError(f"adders has no field {unknown[0]!r} (fields: {', '.join(sorted(fields))})")
        return adder_options(**adders)
    if not isinstance(adders, AdderOptions):
        raise ValueError(f"adders must be AdderOptions, a dict of its fields, 'auto' or None, not {adders!r}")
    return adder_options(adders)


@functools.cache
def verilog_environment() -> jinja2.Environment:
    """The Jinja2 environment of the Verilog templates (hls/templates/rtl), for both architectures; one per process,
    so each template is compiled once (Jinja2 reloads a template whose file changed)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(hls_root() / "templates" / "rtl"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Verilog, not HTML
    )


def _choose(graph: Graph, board: Board, plan) -> tuple[str, object]:
    """:func:`qfx.plan.choose_architecture` for the Verilog backend: it unrolls what :func:`check_rtl_size` allows."""
    from qfx.plan import choose_architecture

    def unrollable(g: Graph) -> bool:
        try:
            check_rtl_size(g)
        except DesignTooLarge:
            return False
        return True

    return choose_architecture(graph, board, plan, unrollable)
