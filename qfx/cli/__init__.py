"""``qfx``: the command line. Each command is one step of the flow; ``qfx demo`` runs them all.

Errors are one line on stderr (``--debug`` shows the traceback). Exit codes: 0 success, 1 the verification chain
found mismatching codes, 2 bad usage or bad input (a missing file, a corrupt model, an existing output), 3 an
external tool failed or is missing (g++, Verilator, Icarus, Yosys), 70 an internal error (a bug: please report it),
130 interrupted.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from qfx.cli.common import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_TOOL,
    EXIT_USAGE,
    RUN_MARKER,
    CLIError,
)
from qfx.cli.parser import build_parser
from qfx.guard import check_options, terminate_as_interrupt

__all__ = [
    "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_MISMATCH", "EXIT_OK", "EXIT_TOOL", "EXIT_USAGE", "RUN_MARKER",
    "CLIError", "build_parser", "entry_point", "main",
]  # fmt: skip


def _exit_code(exc: BaseException) -> int:
    from qfx.rtl import SimulatorError
    from qfx.sim.apfixed import CompileError

    if isinstance(exc, CLIError):
        return exc.code
    if isinstance(exc, (SimulatorError, CompileError, subprocess.CalledProcessError, subprocess.TimeoutExpired)):
        return EXIT_TOOL
    if isinstance(exc, RuntimeError) and any(w in str(exc) for w in ("Yosys", "C-simulation", "g++", "compile")):
        return EXIT_TOOL
    if isinstance(exc, (ValueError, OSError, KeyError)):
        return EXIT_USAGE
    return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 400 else first[:397] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the ``qfx`` script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_options(args)
        with terminate_as_interrupt():  # SIGTERM cleans up as Ctrl-C does
            return args.func(args)
    except KeyboardInterrupt:
        print("qfx: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        code = _exit_code(exc)
        hint = " (a bug in QFX: rerun with --debug and report the traceback)" if code == EXIT_INTERNAL else ""
        print(f"qfx {args.command}: error: {_one_line(exc)}{hint}", file=sys.stderr)
        return code


def entry_point() -> None:
    """The ``qfx`` console script."""
    sys.exit(main())
