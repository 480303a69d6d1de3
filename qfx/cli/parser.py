"""The ``qfx`` argument parser: one sub-command per step of the flow (``qfx rtl``'s arguments are in
:mod:`qfx.cli.rtl`)."""

from __future__ import annotations

import argparse

from qfx.cli import commands
from qfx.cli.common import DATA_ONLY
from qfx.cli.rtl import add_rtl_command

__all__ = ["build_parser"]

_DESCRIPTION = """\
QFX: train PyTorch networks with the exact fixed-point arithmetic an FPGA runs (ap_fixed), and lower them through
QONNX to an HLS project and to Verilog, bit for bit.

the flow:  qfx train -> model.qfx + model.onnx -> qfx hls / qfx rtl -> qfx verify -> qfx synth -> qfx report
all of it: qfx demo
"""

_EPILOG = """\
exit codes: 0 success, 1 the chain found mismatching codes, 2 bad usage or input, 3 an external tool failed
or is missing, 70 internal error, 130 interrupted. Docs: docs/cli.md
trust: model files (.qfx, .onnx) and board files are read as data and never run code; `qfx train --model
file.py:f` runs that file; `qfx verify --hls` compiles and runs the project's C++, `--rtl` builds its Verilog."""


def build_parser() -> argparse.ArgumentParser:
    from qfx import __version__

    parser = argparse.ArgumentParser(
        prog="qfx", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"qfx {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=description or help, parents=[common])

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", default="digits", help="digits (bundled), mnist or cifar10 (default: digits)")
        p.add_argument("--data-root", help="folder of the mnist / cifar10 files (docs/data.md)")

    def record_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--record", metavar="RESULTS_JSON", help="also store the result in this run's results.json")
        p.add_argument("--section", help="the section of results.json to store it in")

    from qfx.pipeline import PRESETS

    p = command(
        "train",
        "train a float model, quantize it, fine-tune it with the exact fixed-point forward pass",
        "Train a float model, quantize it (learned binary points) and fine-tune it with QAT. Writes OUT/model.qfx "
        "(checkpoint), OUT/model.onnx (QONNX) and OUT/results.json (accuracies, formats before and after QAT).",
    )
    data_args(p)
    presets = "; ".join(f"{k}: {v[1]}" for k, v in PRESETS.items())
    p.add_argument("--model", default="mlp-small", help=f"a preset ({presets}) or module:function / file.py:function "
                   "returning an nn.Module (it may take a qfx.data.DatasetInfo). A file or module given here RUNS "
                   "as Python: use only code you trust. Default: mlp-small")  # fmt: skip
    p.add_argument("--width", type=int, default=8, help="bits of every tensor (default 8; biases 2x)")
    for kind, plural, default in (
        ("input", "inputs", "--width"),
        ("weight", "weights", "--width"),
        ("activation", "activations", "--width"),
        ("bias", "biases", "2 x --width"),
    ):
        p.add_argument(f"--{kind}-width", type=int, help=f"bits of the {plural} (default: {default})")
    p.add_argument("--khot", type=int, default=0, help="K-hot weights with K nonzero digits (0: plain weights)")
    p.add_argument("--epochs", type=int, default=30, help="float training epochs (default 30)")
    p.add_argument("--qat-epochs", type=int, default=15, help="QAT epochs (default 15)")
    p.add_argument("--lr", type=float, default=3e-3, help="float learning rate")
    p.add_argument("--qat-lr", type=float, default=3e-3, help="QAT learning rate of the weights")
    p.add_argument("--binary-point-lr", type=float, default=0.03, help="QAT learning rate of the binary points")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1 is reproducible)")
    p.add_argument("-o", "--out", default="qfx-run", help="output folder (default qfx-run)")
    p.add_argument("--force", action="store_true", help="replace the output folder")
    p.set_defaults(func=commands.cmd_train)

    p = command("export", "checkpoint -> QONNX file (checked by executing it with qonnx)")
    p.add_argument("checkpoint", help=f"a model.qfx from `qfx train` ({DATA_ONLY})")
    p.add_argument("-o", "--out", help="the QONNX file (default: the checkpoint's name with .onnx)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=commands.cmd_export)

    p = command("hls", "QONNX file or checkpoint -> Vivado/Vitis HLS project for a board")
    p.add_argument("model", help=f"model.onnx (QONNX) or model.qfx ({DATA_ONLY})")
    p.add_argument("--board", default="ultra96v2", help="a board of `qfx boards` or a board .toml (default ultra96v2)")
    p.add_argument("--tool", choices=["vivado", "vitis"], default="vitis", help="HLS tool (default vitis)")
    p.add_argument("--architecture", choices=["auto", "parallel", "stream"], default="auto",
                   help="parallel: every layer unrolled, one sample per clock; stream: a dataflow design folded by "
                   "the hardware plan (qfx plan) to fit the board; auto (default): parallel when the plan is one "
                   "sample per clock, else stream")  # fmt: skip
    p.add_argument("--target-fps", type=float, help="fold for this many samples/s with the least resources")
    p.add_argument("--name", help="top function name (default: the graph's)")
    p.add_argument("-o", "--out", default="hls_prj", help="project folder (default hls_prj)")
    p.add_argument("--force", action="store_true", help="replace an existing folder")
    p.add_argument("--record", metavar="RESULTS_JSON", help="also store the plan in this run's results.json")
    p.add_argument("--section", help="the section of results.json to store it in (default plan)")
    p.set_defaults(func=commands.cmd_hls)

    p = command(
        "plan",
        "show the hardware plan of a model for a board: per-layer folding, cycles, LUT/FF/DSP/BRAM estimate",
        "Fold the network to fit the board (the fastest balanced pipeline within --margin of every resource), or "
        "reach --target-fps with the least resources, and print the plan; writes nothing.",
    )
    p.add_argument("model", help="model.onnx (QONNX) or model.qfx")
    p.add_argument("--board", default="ultra96v2", help="a board of `qfx boards` or a board .toml (default ultra96v2)")
    p.add_argument("--target-fps", type=float, help="samples per second to reach with the least resources")
    p.add_argument("--margin", type=float, default=0.8, help="fraction of each resource to use (default 0.8)")
    p.add_argument("--fully-parallel", action="store_true", help="the fully unrolled design (one sample per clock)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=commands.cmd_plan)

    add_rtl_command(command)

    p = command(
        "verify",
        "run the test set through every link of the chain and count mismatching codes",
        "Run the test set through the PyTorch model (for a checkpoint), qonnx, the IR interpreter, the HLS "
        "C-simulation (--hls) and the RTL simulation (--rtl); every link's integer output codes are compared with "
        "the IR interpreter's. Exit code 1 when any differs.",
    )
    p.add_argument("model", help=f"model.qfx (adds the PyTorch link) or model.onnx ({DATA_ONLY})")
    data_args(p)
    p.add_argument("--inputs", metavar="X.npy", help="a float batch (N, ...) from numpy.save, instead of --dataset")
    p.add_argument("--limit", type=int, help="use only the first N test inputs")
    p.add_argument("--hls", metavar="DIR", help="an HLS project from `qfx hls` (C-simulation link); its C++ is "
                   "COMPILED AND RUN: use only projects you trust")  # fmt: skip
    p.add_argument("--rtl", metavar="DIR", help="Verilog from `qfx rtl` (RTL simulation link); it is built and "
                   "simulated (Verilog can call $system): use only designs you trust")  # fmt: skip
    p.add_argument("--simulator", nargs="+", choices=["verilator", "icarus"], default=["verilator"],
                   help="RTL simulators (default verilator)")  # fmt: skip
    record_args(p)
    p.set_defaults(func=commands.cmd_verify)

    p = command("synth", "Yosys synthesis of generated Verilog: LUT/FF/CARRY/DSP per layer")
    p.add_argument("rtl_dir", help="a folder from `qfx rtl`")
    p.add_argument("--board", help="report utilization of this board (and use its family)")
    p.add_argument("--family", choices=["xc7", "xcup"], help="Yosys family (default: the board's, else xc7)")
    p.add_argument("--timeout", type=float, help="stop Yosys after this many seconds")
    record_args(p)
    p.set_defaults(func=commands.cmd_synth)

    p = command("report", "render a run folder's results.json as report.md, report.html and PNG plots")
    p.add_argument("run_dir", help="a folder from `qfx demo` or `qfx train`")
    p.set_defaults(func=commands.cmd_report)

    p = command(
        "demo",
        "the whole flow on the bundled digits data, with a report",
        "digits -> float, PTQ and QAT models at several widths (and K-hot) -> QONNX -> HLS project for Ultra96-V2 "
        "-> C-simulation -> Verilog -> Verilator -> Yosys -> OUT/report.md, report.html and plots.",
    )
    p.add_argument("-o", "--out", default="demo-out", help="output folder (default demo-out)")
    p.add_argument("--force", action="store_true", help="replace an existing demo folder")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for training (1 is reproducible)")
    p.set_defaults(func=commands.cmd_demo)

    p = command("boards", "list the bundled boards")
    p.set_defaults(func=commands.cmd_boards)
    return parser
