"""``qfx rtl``: its arguments and the command, in one place."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from qfx.cli.common import DATA_ONLY, EXIT_OK, check_out_dir, graph_of, progress, say
from qfx.guard import refuse_overlap

__all__ = ["add_rtl_command", "cmd_rtl"]


def add_rtl_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``qfx rtl`` with ``command(name, help)``, the parser's sub-command factory."""
    p = command("rtl", "QONNX file or checkpoint -> Verilog: fully parallel, or folded for a board")
    p.add_argument("model", help=f"model.onnx (QONNX) or model.qfx ({DATA_ONLY})")
    p.add_argument("--board", default="ultra96v2", help="a board of `qfx boards` or a board .toml (default ultra96v2)")
    p.add_argument("--architecture", choices=["auto", "parallel", "stream"], default="auto",
                   help="parallel: every layer unrolled, HLS-style ports; stream: units folded by the hardware plan, "
                   "AXI4-Stream ports; auto (default): parallel when the plan is one sample per clock")  # fmt: skip
    p.add_argument("--target-fps", type=float, help="fold for this many samples/s with the least resources")
    p.add_argument("--register-every", type=int, default=1, help="a register stage after every k-th layer (0: none)")
    p.add_argument("--name", help="top module name (default: the graph's)")
    p.add_argument("-o", "--out", default="rtl", help="output folder (default rtl)")
    p.add_argument("--force", action="store_true", help="replace an existing folder")
    p.set_defaults(func=cmd_rtl)


def cmd_rtl(args: argparse.Namespace) -> int:
    from qfx.rtl import generate, read_rtl

    refuse_overlap([("output folder", Path(args.out))], [("model", Path(args.model))])
    check_out_dir(Path(args.out), args.force)
    from qfx.plan import plan as make_plan

    with tempfile.TemporaryDirectory(prefix="qfx-") as tmp:
        graph = graph_of(Path(args.model), Path(tmp))
        plan = None if args.architecture == "parallel" else make_plan(graph, args.board, target_fps=args.target_fps)
        with progress(args).step(f"writing Verilog ({args.architecture})"):
            out = generate(graph, args.out, name=args.name, register_every=args.register_every, force=args.force,
                           architecture=args.architecture, plan=plan, board=args.board)  # fmt: skip
    meta = read_rtl(out)
    if meta.get("architecture") == "stream":
        say(plan.table() + "\n")
        say(f"wrote {out}: streaming design, top {meta['top']} (AXI4-Stream ports), {meta['cycles']:,} cycles "
            f"per sample, {len(meta['roms'])} ROM images")  # fmt: skip
        return EXIT_OK
    say(f"wrote {out}: top {meta['top']}, latency {meta['latency']} cycles, II=1, "
        f"{meta['multipliers']} multipliers")  # fmt: skip
    return EXIT_OK
