"""IR graph -> synthesizable Verilog-2001, fully parallel (one combinational module per layer, a pipelined top with
HLS ports) or folded as a hardware plan says (streaming units with AXI4-Stream ports: :mod:`qfx.rtl.stream`).

The fully parallel architecture: every multiply-accumulate of the network is its own piece of logic and a new
input vector enters every clock cycle. Its size therefore grows with the number of nonzero weights (each is an
adder, plus a multiplier unless it is a power of two or K-hot); it suits the small, low-latency networks of
trigger and edge applications, up to some tens of thousands of weights on a large device (docs/flow.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2

import qfx
from qfx.backends import check_graph
from qfx.backends.hls.generate import hls_root
from qfx.backends.output import check_target, read_marker, staged_folder
from qfx.boards import Board, load_board
from qfx.ir.constants import printable, sanitize
from qfx.ir.graph import Graph, Reshape
from qfx.ir.passes import fuse_casts
from qfx.rtl.lower import AdderOptions, Layer, adder_options, lower_node
from qfx.rtl.size import DesignTooLarge, check_rtl_size

__all__ = ["MARKER", "generate", "read_rtl"]

MARKER = "qfx_rtl.json"  # marks a folder QFX generated (and may overwrite); simulate() and report() read it
LIBRARY = "qfx_cast.v"  # the cast module, copied from hls/rtl into every generated folder
TERNARY = "qfx_add3.v"  # the ternary adder (hls/rtl), copied when a layer uses it
PRIMITIVES = "qfx_xilinx_sim.v"  # simulation models of the Xilinx primitives qfx_add3 instantiates


@dataclass(frozen=True)
class _Port:
    name: str
    bus: str
    size: int
    width: int
    format: str
    shape: tuple[int, ...]


def read_rtl(rtl_dir: str | os.PathLike) -> dict:
    """The metadata of a QFX-generated RTL folder (raises when the folder is not one)."""
    return read_marker(Path(rtl_dir) / MARKER, "QFX RTL folder", ("top", "sources", "input", "output"))


def _plan(graph: Graph, top: str, register_every: int) -> tuple[list[Layer], list[dict], dict, int]:
    """Layers, the top module's items (layer instances and delay registers in declaration order), each
    tensor's bus, and the latency."""
    taken = {top, "ap_clk", "ap_rst", "ap_start", "ap_done", "ap_idle", "ap_ready", "valid"}
    first = graph.nodes[0]
    bus = {first.output: sanitize("t_" + first.output, taken)}
    stage = {first.output: 0}
    delayed: dict[tuple[str, int], str] = {}
    layers, items = [], []
    count = 0

    def at_stage(tensor: str, s: int, node: str) -> str:
        """The bus carrying ``tensor`` delayed to pipeline stage ``s`` (delay registers made on demand)."""
        name, have = bus[tensor], stage[tensor]
        while have < s:
            have += 1
            key = (tensor, have)
            if key not in delayed:
                delayed[key] = sanitize(f"{bus[tensor]}_d{have - stage[tensor]}", taken)
                width = graph.tensors[tensor].size * graph.fmt(tensor).width
                items.append(dict(kind="delay", bus=delayed[key], source=name, width=width, node=printable(node)))
            name = delayed[key]
        return name

    for node in graph.nodes[1:]:
        if isinstance(node, Reshape):  # same bits in the same order: the output is the input's bus
            bus[node.output], stage[node.output] = bus[node.inputs[0]], stage[node.inputs[0]]
            continue
        count += 1
        layer = lower_node(graph, node, sanitize(f"{top}_{node.name}", taken))
        s_in = max(stage[t] for t in node.inputs)
        inputs = [(port, at_stage(t, s_in, node.name)) for port, t, _ in layer.inputs]
        # Names appear in // comments, which a line break inside a name would end.
        layer.node, layer.output = printable(layer.node), (printable(layer.output[0]), layer.output[1])
        layer.inputs = [(port, printable(tensor), width) for port, tensor, width in layer.inputs]
        registered = register_every > 0 and count % register_every == 0
        bus[node.output] = sanitize("t_" + node.output, taken)
        stage[node.output] = s_in + registered
        layers.append(layer)
        items.append(dict(kind="layer", node=layer.node, op=node.op, module=layer.module, inputs=inputs,
                          bus=bus[node.output], width=layer.output[1], registered=registered,
                          stage=stage[node.output]))  # fmt: skip
    return layers, items, bus, stage[graph.outputs[0]]


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

    The folder holds ``qfx_cast.v`` (the cast library), ``<name>_layers.v`` (one module per IR node),
    ``<name>.v`` (the top) and ``qfx_rtl.json`` (ports, formats, latency, layers) for :func:`qfx.rtl.simulate`
    and :func:`qfx.synth.report`. ``register_every`` = k puts a register stage after every k-th layer (1: after
    each; 0: none, a purely combinational datapath). Branches that meet (a residual add) are delayed to the same
    stage. An existing folder is replaced only when QFX made it (or with ``force``); nothing is left half-written.

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
    fused = fuse_casts(graph)
    top = sanitize(name or graph.name, set())
    with _adder_block(adders, graph, board):
        layers, items, bus, latency = _plan(fused, top, register_every)
    ports = {}
    for key, tensor, port in (("input", fused.nodes[0].output, "x"), ("output", fused.outputs[0], "y")):
        t = fused.tensors[tensor]
        ports[key] = _Port(port, bus[tensor], t.size, t.fmt.width, str(t.fmt), t.shape)
    env = verilog_environment()
    context = dict(top=top, version=qfx.__version__, graph=printable(graph.name), layers=layers, items=items,
                   latency=latency, input=ports["input"], output=ports["output"])  # fmt: skip
    sources = [LIBRARY, f"{top}_layers.v", f"{top}.v"]
    ternary = any(w.inst == "qfx_add3" for layer in layers for w in layer.wires)
    if ternary:
        sources.append(TERNARY)
    meta = dict(
        generator="qfx.rtl", qfx_version=qfx.__version__, top=top, graph=graph.name, sources=sources,
        latency=latency, register_every=register_every,
        input=dict(name="x", size=ports["input"].size, shape=list(ports["input"].shape), format=ports["input"].format),
        output=dict(name="y", size=ports["output"].size, shape=list(ports["output"].shape),
                    format=ports["output"].format),
        layers=[dict(node=la.node, op=la.op, module=la.module, multipliers=la.multipliers) for la in layers],
        multipliers=sum(la.multipliers for la in layers),
    )  # fmt: skip
    if ternary:  # simulators read these models of LUT6_2 and CARRY4; synthesis tools use their own
        meta["sim_sources"] = [PRIMITIVES]
    from qfx.rtl.stream_generate import write_readme

    with staged_folder(out_dir, replace) as staging:
        shutil.copy(hls_root() / "rtl" / LIBRARY, staging / LIBRARY)
        for extra in [TERNARY, PRIMITIVES] if ternary else []:
            shutil.copy(hls_root() / "rtl" / extra, staging / extra)
        (staging / sources[1]).write_text(env.get_template("layers.v.j2").render(**context))
        (staging / sources[2]).write_text(env.get_template("top.v.j2").render(**context))
        (staging / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        write_readme(staging, graph, meta)
    return out_dir


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
