"""Write the folded streaming Verilog of a plan: the folder layout of :func:`qfx.rtl.generate` with AXI4-Stream
ports (``qfx_rtl.json`` says ``"interface": "axis"`` and gives the stream order of the input and output words)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import qfx
from qfx.backends.hls.generate import hls_root
from qfx.backends.hls.stream_units import lower_stream
from qfx.backends.output import staged_folder
from qfx.ir.constants import printable
from qfx.ir.graph import Graph
from qfx.plan import Plan
from qfx.rtl.stream import RtlDesign, render_design, write_roms

__all__ = ["write_folder", "write_readme", "write_stream"]

LIBRARY = ("qfx_cast.v", "qfx_fifo.v")


def _port(s, fmt, shape) -> dict:
    perm = s.order()
    return dict(size=s.size, shape=list(shape), format=str(fmt), word=s.word, count=s.count,
                order=[int(v) for v in perm])  # fmt: skip


def write_readme(folder: Path, graph: Graph, meta: dict) -> None:
    """``README.md`` of a generated Verilog folder (either architecture): ports, files, and the host-side float
    steps of the model (Brevitas' input pre-processing, its float tail), which the design does not compute."""
    from qfx.ir.host import describe
    from qfx.rtl.generate import verilog_environment
    from qfx.safety import md_escape

    env = verilog_environment()
    env.filters["md"] = md_escape
    text = env.get_template("README.md.j2").render(
        top=meta["top"], version=qfx.__version__, architecture=meta.get("architecture", "parallel"),
        board=meta.get("board"), cycles=f"{meta.get('cycles', 1):,}", latency=meta.get("latency"),
        input=meta["input"], output=meta["output"], sources=meta["sources"], host_pre=describe(graph.host_pre),
        host_post=describe(graph.host_post),
    )  # fmt: skip
    (folder / "README.md").write_text(text)


def write_stream(fused: Graph, graph: Graph, plan: Plan, out_dir: Path, replace: bool, top: str, marker: str) -> Path:
    """Render ``plan`` of the cast-fused ``fused`` graph as streaming Verilog into ``out_dir``."""
    design = lower_stream(fused, plan, {top})
    from qfx.rtl.generate import verilog_environment

    env = verilog_environment()
    rtl = render_design(design, env, top, frozenset(n.name for n in fused.nodes if getattr(n, "bipolar", False)))
    in_t, out_t = fused.tensors[fused.nodes[0].output], fused.tensors[fused.outputs[0]]
    meta = dict(
        architecture="stream", latency=plan.latency, cycles=plan.cycles, board=plan.board.name,
        input=dict(name="x", **_port(design.input, in_t.fmt, in_t.shape)),
        output=dict(name="y", **_port(design.output, out_t.fmt, out_t.shape)),
        layers=rtl.layers, roms=sorted(rtl.roms),
        folding={la.node: [la.folding.pe, la.folding.simd, la.folding.pixels] for la in plan.layers},
        multipliers=rtl.multipliers,
    )  # fmt: skip
    return write_folder(fused, graph, rtl, meta, out_dir, replace, top, marker, design.input.name,
                        design.output.name, [*LIBRARY, f"{top}_units.v", f"{top}.v"])  # fmt: skip


def write_folder(fused: Graph, graph: Graph, rtl: RtlDesign, meta: dict, out_dir: Path, replace: bool, top: str,
                 marker: str, input_stream: str, output_stream: str, sources: list[str],
                 files: dict[str, str] | None = None, sim_sources: tuple[str, ...] = ()) -> Path:  # fmt: skip
    """Write the folder of a design of either architecture: ``sources`` (QFX's library files from hls/rtl by name,
    ``<top>_units.v`` with the units of ``rtl``, ``<top>.v`` the AXI4-Stream top, and ``files`` by their text), the
    ROM images, ``qfx_rtl.json`` (``meta`` completed) and README.md; nothing is left half-written."""
    from qfx.rtl.generate import verilog_environment

    env = verilog_environment()
    in_t, out_t = fused.tensors[fused.nodes[0].output], fused.tensors[fused.outputs[0]]
    consumer = {st["name"]: f"{st['name']}_f" if st["fifo"] else st["name"] for st in rtl.streams}
    ports = {}
    for key, wire, t in (("input", input_stream, in_t), ("output", rtl.output or consumer[output_stream], out_t)):
        word = meta[key]["word"]
        ports[key] = dict(wire=wire, word=word, count=meta[key]["count"], width=t.fmt.width, format=str(t.fmt))
    context = dict(top=top, version=qfx.__version__, graph=printable(graph.name), streams=rtl.streams,
                   units=rtl.units, input=ports["input"], output=ports["output"], architecture=meta["architecture"],
                   latency=meta["latency"], cycles=f"{meta['cycles']:,}")  # fmt: skip
    meta = dict(generator="qfx.rtl", qfx_version=qfx.__version__, top=top, graph=graph.name, sources=sources,
                **({"sim_sources": list(sim_sources)} if sim_sources else {}), interface="axis", **meta)  # fmt: skip
    files = dict(files or {})
    with staged_folder(out_dir, replace) as staging:
        for source in [*sources, *sim_sources]:
            if source in files:
                (staging / source).write_text(files[source])
            elif source == f"{top}_units.v":
                header = f"// Units of {top}: generated by QFX {qfx.__version__} (qfx.rtl). Do not edit: regenerate.\n"
                body = "\n".join(rtl.modules.values())
                (staging / source).write_text(header + "`default_nettype none\n" + body + "`default_nettype wire\n")
            elif source == f"{top}.v":
                (staging / source).write_text(env.get_template("stream/top.v.j2").render(**context))
            else:
                shutil.copy(hls_root() / "rtl" / source, staging / source)
        write_roms(staging, rtl.roms)
        (staging / marker).write_text(json.dumps(meta, indent=2) + "\n")
        write_readme(staging, graph, meta)
    return out_dir
