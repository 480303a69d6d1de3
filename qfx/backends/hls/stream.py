"""IR graph + hardware plan -> streaming (dataflow) Vivado / Vitis HLS project.

The project has the layout, marker file and testbench protocol of :func:`qfx.backends.hls.generate` (so
:func:`qfx.backends.hls.csim` runs it unchanged), but its top function is a ``#pragma HLS DATAFLOW`` region of
units from hls/include/qfx/stream joined by ``hls::stream`` FIFOs, each unit's loops folded by the plan's PE x
SIMD, its constants integer-code arrays (fast to compile, and what HLS turns into ROMs or logic). The emitter
renders the plan; it decides nothing about parallelism.

Rendered: the input cast (the testbench's double -> ap_fixed), Dense, Conv2d (stride, asymmetric zero padding,
dilation, groups, depthwise, 1-D as H = 1), MaxPool2d, SumPool2d, GlobalSum, Affine, Relu, Clip, LeakyRelu,
Lookup, Softmax, ArgMax, Add, Concat (any axis), Pad, Upsample, Cast, Reshape (free), K-hot Dense / Conv2d /
Affine (shift-and-add of digits read from the ROM), fan-out (dup units). Not rendered yet: a plan's ``pixels`` > 1
on convolutions and pools (a unit computes one output pixel per fold loop: its stream brings one pixel per
clock).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Literal

import numpy as np

import qfx
from qfx.backends import check_graph
from qfx.backends.hls.generate import MARKER, _environment, hls_root, write_inputs
from qfx.backends.hls.stream_design import Constant, StreamDesign, UnsupportedNode
from qfx.backends.hls.stream_units import lower_stream
from qfx.backends.output import check_target, staged_folder
from qfx.boards import Board, load_board
from qfx.ir.constants import printable, sanitize
from qfx.ir.graph import Graph
from qfx.ir.host import describe
from qfx.ir.passes import fuse_casts
from qfx.plan import Plan
from qfx.plan import plan as make_plan

__all__ = ["UnsupportedNode", "generate_stream"]

Tool = Literal["vivado", "vitis"]
COMPLETE_LIMIT = 256  # 1-D constants up to this many entries are split into registers/logic


def _numbers(values: np.ndarray, per_line: int = 32) -> str:
    """Comma-separated integers, a line break every ``per_line``."""
    items = [str(int(v)) for v in np.asarray(values).ravel()]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)


def _pragmas(constants: list[Constant]) -> list[str]:
    """How each constant array is stored: a ROM of rows (one row read per clock) or logic (every entry at once)."""
    out = []
    for c in constants:
        if len(c.dims) > 1 and c.storage == "rom":
            out += [f"ARRAY_RESHAPE variable={c.name} complete dim={d}" for d in range(2, len(c.dims) + 1)]
        elif len(c.dims) > 1 or c.dims[0] <= COMPLETE_LIMIT:
            out.append(f"ARRAY_PARTITION variable={c.name} complete dim=0")
    return out


def _check_plan(graph: Graph, plan: Plan) -> None:
    names = {n.name for n in graph.nodes}
    unknown = sorted(la.node for la in plan.layers if la.node not in names)
    if unknown:
        raise ValueError(f"the plan is for another graph: it has layer {unknown[0]!r}, which {graph.name!r} has not")


def generate_stream(
    graph: Graph,
    out_dir: str | os.PathLike,
    *,
    plan: Plan | None = None,
    board: str | Board = "ultra96v2",
    tool: Tool = "vitis",
    name: str | None = None,
    test_inputs: np.ndarray | None = None,
    force: bool = False,
) -> Path:
    """Write a streaming HLS project for ``graph`` folded as ``plan`` (default: ``qfx.plan.plan(graph, board)``).

    Same folder layout, marker and testbench protocol as :func:`qfx.backends.hls.generate`; ``test_inputs`` (a
    float batch) are written with the IR interpreter's codes for them. Raises :class:`UnsupportedNode` naming the
    first node the streaming library has no unit for.
    """
    if tool not in ("vivado", "vitis"):
        raise ValueError(f"tool must be 'vivado' or 'vitis', not {tool!r}")
    board = board if isinstance(board, Board) else load_board(board)
    out_dir = Path(out_dir)
    replace = check_target(out_dir, MARKER, force, "QFX project")
    fused = fuse_casts(graph)
    check_graph(fused, "streaming HLS")
    plan = plan if plan is not None else make_plan(graph, board)
    if plan.board.name != board.name:
        raise ValueError(f"the plan is for the board {plan.board.name!r}, not {board.name!r}: pass board= as well")
    _check_plan(fused, plan)
    top = sanitize(name or graph.name, set())
    design: StreamDesign = lower_stream(fused, plan, {top})
    out_fmt = fused.fmt(fused.outputs[0])
    in_fmt = fused.fmt(fused.nodes[0].output)
    if out_fmt.width > 53 or in_fmt.width > 53:
        raise ValueError("input and output formats wider than 53 bits cannot pass through the testbench's doubles")
    run = "vitis_hls -f build_prj.tcl" if tool == "vitis" else "vivado_hls -f build_prj.tcl"
    calls = [dict(node=printable(c.node), func=c.func, targs=c.targs,
                  args=[a if isinstance(a, str) else a.name for a in c.args]) for c in design.calls]  # fmt: skip
    constants = [dict(name=c.name, ctype=c.ctype, dims=c.dims, storage=c.storage, text=_numbers(c.values))
                 for c in design.constants]  # fmt: skip
    orders = {}
    for key, s in (("input_order", design.input), ("output_order", design.output)):
        orders[key] = _numbers(s.perm) if s.perm is not None else ""
    context = dict(
        name=top, guard=top.upper(), version=qfx.__version__, graph_name=printable(graph.name),
        host_pre=describe(graph.host_pre), host_post=describe(graph.host_post), board=board, tool=tool,
        tool_title="Vitis HLS" if tool == "vitis" else "Vivado HLS", run_command=run, cycles=f"{plan.cycles:,}",
        plan_table=plan.table(), configs=design.configs, constants=constants, streams=[
            s for s in design.streams if s is not design.input and s is not design.output],
        calls=calls, weight_pragmas=_pragmas(design.constants), input=design.input, output=design.output,
        output_frac_bits=out_fmt.frac_bits, input_format=str(in_fmt), output_format=str(out_fmt),
        khot=any(c.ctype == "signed char" and c.name.endswith("_digits") for c in design.constants), **orders,
    )  # fmt: skip
    files = {
        f"firmware/{top}.cpp": "stream/top.cpp.j2",
        f"firmware/{top}.h": "stream/top.h.j2",
        "firmware/parameters.h": "stream/parameters.h.j2",
        "firmware/weights.h": "stream/weights.h.j2",
        f"tb/{top}_test.cpp": "stream/testbench.cpp.j2",
        "build_prj.tcl": "build_prj.tcl.j2",
        "README.md": "stream/README.md.j2",
    }
    if tool == "vitis":
        files["hls_config.cfg"] = "hls_config.cfg.j2"
    env = _environment()
    with staged_folder(out_dir, replace) as staging:
        for rel, template in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(env.get_template(template).render(**context))
        shutil.copytree(hls_root() / "include" / "qfx" / "stream", staging / "firmware" / "qfx" / "stream")
        (staging / "tb_data").mkdir()
        if test_inputs is not None:
            x = np.asarray(test_inputs, dtype=np.float64)
            write_inputs(staging / "tb_data" / "inputs.txt", x, design.input.size)
            expected = np.asarray(graph.run(x)).reshape(x.shape[0], -1)
            np.savetxt(staging / "tb_data" / "expected.txt", expected, fmt="%d")
        meta = dict(
            qfx_version=qfx.__version__, top=top, graph=graph.name, board=board.name, part=board.part, tool=tool,
            clock_period_ns=board.clock_period_ns, input_size=design.input.size, output_size=design.output.size,
            input_format=str(in_fmt), output_format=str(out_fmt), layers=len(design.calls),
            multipliers=design.multipliers, architecture="stream", cycles=plan.cycles,
            folding={la.node: [la.folding.pe, la.folding.simd, la.folding.pixels] for la in plan.layers},
        )  # fmt: skip
        (staging / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir
