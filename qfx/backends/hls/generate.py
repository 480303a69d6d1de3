"""IR graph -> Vivado HLS / Vitis HLS project folder, rendered from the Jinja2 templates in hls/templates."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Literal

import jinja2
import numpy as np

import qfx
from qfx.backends.output import check_target, read_marker, staged_folder
from qfx.boards import Board, load_board
from qfx.ir.constants import printable, sanitize
from qfx.ir.graph import Graph
from qfx.ir.host import describe
from qfx.ir.passes import fuse_casts

from .layers import lower

__all__ = ["MARKER", "generate", "hls_root", "read_project"]

MARKER = "qfx_project.json"  # marks a folder QFX generated (and may overwrite)
Tool = Literal["vivado", "vitis"]
Architecture = Literal["parallel", "stream", "auto"]


def hls_root() -> Path:
    """The ``hls`` folder: the header library (include/qfx), the templates and the Verilog library (installed as
    package data, or at the top of a source checkout)."""
    from qfx.resources import data_dir

    return data_dir("hls")


def _environment() -> jinja2.Environment:
    from qfx.safety import comment_text, md_escape, tcl_quote

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(hls_root() / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # C++ and Tcl, not HTML: strings from data files go through the filters below
    )
    env.filters.update(tcl=tcl_quote, md=md_escape, comment=comment_text)
    return env


def read_project(project_dir: str | os.PathLike) -> dict:
    """The metadata of a QFX-generated project (raises when the folder is not one)."""
    return read_marker(Path(project_dir) / MARKER, "QFX HLS project", ("top", "input_size", "output_size"))


def generate(
    graph: Graph,
    out_dir: str | os.PathLike,
    *,
    board: str | Board = "ultra96v2",
    tool: Tool = "vivado",
    name: str | None = None,
    test_inputs: np.ndarray | None = None,
    force: bool = False,
    architecture: Architecture = "parallel",
    plan=None,
) -> Path:
    """Write an HLS project for ``graph`` to ``out_dir`` and return its path.

    ``architecture``: ``"parallel"`` unrolls every layer (one sample per clock; small networks only, larger ones
    are refused naming the layer); ``"stream"`` writes a dataflow design folded as ``plan`` (a
    :class:`qfx.plan.Plan`; default ``qfx.plan.plan(graph, board)``, the fastest that fits the board); ``"auto"``
    takes the fully parallel design when the board's plan is one sample per clock and the network is small enough
    to unroll, else the streaming one.

    ``board`` names a board of ``boards/`` (or is a :class:`~qfx.boards.Board`); ``tool`` picks the Vivado HLS
    or Vitis HLS flavour of the scripts. With ``test_inputs`` (a float batch) the project's tb_data holds them and
    the codes the IR interpreter computes for them (``expected.txt``), so the vendor C-simulation can be checked.
    An existing folder is replaced only when QFX made it (or with ``force``); the project is written to a
    temporary folder first, so a failure leaves nothing half-written.
    """
    if tool not in ("vivado", "vitis"):
        raise ValueError(f"tool must be 'vivado' or 'vitis', not {tool!r}")
    if architecture not in ("parallel", "stream", "auto"):
        raise ValueError(f"architecture must be 'parallel', 'stream' or 'auto', not {architecture!r}")
    if plan is not None and architecture == "parallel":
        raise ValueError("a plan folds the streaming design: pass architecture='stream' or 'auto' with plan=")
    board = board if isinstance(board, Board) else load_board(board)
    if architecture == "auto":
        architecture, plan = choose_architecture(graph, board, plan)
    if architecture == "stream":
        from .stream import generate_stream

        return generate_stream(graph, out_dir, plan=plan, board=board, tool=tool, name=name,
                               test_inputs=test_inputs, force=force)  # fmt: skip
    out_dir = Path(out_dir)
    replace = check_target(out_dir, MARKER, force, "QFX project")
    top = sanitize(name or graph.name, set())
    fused = fuse_casts(graph)
    lowered = lower(fused)
    out_fmt = fused.fmt(fused.outputs[0])
    if out_fmt.width > 53 or fused.fmt(fused.nodes[0].output).width > 53:
        raise ValueError("input and output formats wider than 53 bits cannot pass through the testbench's doubles")
    run = "vitis_hls -f build_prj.tcl" if tool == "vitis" else "vivado_hls -f build_prj.tcl"
    context = dict(
        name=top, guard=top.upper(), version=qfx.__version__, graph_name=printable(graph.name),
        host_pre=describe(graph.host_pre), host_post=describe(graph.host_post), board=board, tool=tool,
        tool_title="Vitis HLS" if tool == "vitis" else "Vivado HLS", run_command=run,
        typedefs={k: str(v) for k, v in lowered.typedefs.items()}, constants=lowered.constants,
        arrays=lowered.arrays, calls=[dataclasses.replace(c, node=printable(c.node)) for c in lowered.calls],
        input=lowered.input, output=lowered.output,
        output_frac_bits=out_fmt.frac_bits, input_format=str(fused.fmt(fused.nodes[0].output)),
        output_format=str(out_fmt), khot=any(c.func.endswith("_khot") for c in lowered.calls),
    )  # fmt: skip
    files = {
        f"firmware/{top}.cpp": "top.cpp.j2",
        f"firmware/{top}.h": "top.h.j2",
        "firmware/parameters.h": "parameters.h.j2",
        "firmware/weights.h": "weights.h.j2",
        f"tb/{top}_test.cpp": "testbench.cpp.j2",
        "build_prj.tcl": "build_prj.tcl.j2",
        "README.md": "README.md.j2",
    }
    if tool == "vitis":
        files["hls_config.cfg"] = "hls_config.cfg.j2"
    env = _environment()
    with staged_folder(out_dir, replace) as staging:
        for rel, template in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(env.get_template(template).render(**context))
        shutil.copytree(hls_root() / "include" / "qfx", staging / "firmware" / "qfx")
        (staging / "tb_data").mkdir()
        if test_inputs is not None:
            x = np.asarray(test_inputs, dtype=np.float64)
            write_inputs(staging / "tb_data" / "inputs.txt", x, lowered.input[2])
            expected = np.asarray(graph.run(x)).reshape(x.shape[0], -1)
            np.savetxt(staging / "tb_data" / "expected.txt", expected, fmt="%d")
        meta = dict(
            qfx_version=qfx.__version__, top=top, graph=graph.name, board=board.name, part=board.part, tool=tool,
            clock_period_ns=board.clock_period_ns, input_size=lowered.input[2], output_size=lowered.output[2],
            input_format=context["input_format"], output_format=str(out_fmt), layers=len(lowered.calls),
            multipliers=lowered.multipliers,
        )  # fmt: skip
        (staging / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir


def choose_architecture(graph: Graph, board: Board, plan=None) -> tuple[str, object]:
    """:func:`qfx.plan.choose_architecture` for the HLS backend: it unrolls what :data:`HLS_LIMITS` allows."""
    from qfx.backends import HLS_LIMITS, DesignTooLarge, check_graph
    from qfx.plan import choose_architecture as choose

    def unrollable(g: Graph) -> bool:
        try:
            check_graph(fuse_casts(g), "HLS", HLS_LIMITS)
        except DesignTooLarge:
            return False
        return True

    return choose(graph, board, plan, unrollable)


def write_inputs(path: Path, x: np.ndarray, size: int) -> None:
    """One input vector per line, as shortest round-trip decimal doubles (read back exactly by strtod)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if x.shape[1] != size:
        raise ValueError(f"input vectors must have {size} values, not {x.shape[1]}")
    with open(path, "w") as f:
        for row in x:
            f.write(" ".join(repr(float(v)) for v in row) + "\n")
