"""``qfx``: the command line. Each command is one step of the flow; ``qfx demo`` runs them all.

Errors are one line on stderr (``--debug`` shows the traceback). Exit codes: 0 success, 1 the verification chain
found mismatching codes, 2 bad usage or bad input (a missing file, a corrupt model, an existing output), 3 an
external tool failed or is missing (g++, Verilator, Icarus, Yosys), 70 an internal error (a bug: please report it),
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from qfx.guard import check_options, load_batch, publish, refuse_overlap, terminate_as_interrupt

__all__ = ["EXIT_INTERNAL", "EXIT_MISMATCH", "EXIT_OK", "EXIT_TOOL", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_TOOL, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130
RUN_MARKER = "results.json"  # a QFX run folder: what `qfx report` renders


class CLIError(Exception):
    """An error with its exit code; the message is shown as it is."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------------- helpers


def _steps(args: argparse.Namespace):
    from qfx.console import Steps

    return Steps(quiet=args.quiet)


def _print(text: str = "") -> None:
    print(text, flush=True)


def _qonnx_path(model: Path, tmp: Path) -> Path:
    """The QONNX file of ``model``: itself, or exported from a checkpoint into ``tmp``."""
    if not model.exists():
        raise FileNotFoundError(f"model {model} does not exist")
    if model.suffix.lower() == ".onnx":
        return model
    from qfx.checkpoint import load_checkpoint
    from qfx.export import export_qonnx

    ckpt = load_checkpoint(model)
    return export_qonnx(ckpt.model, ckpt.example_input, tmp / "model.onnx")


def _graph(model: Path, tmp: Path):
    from qfx.ir import from_qonnx

    return from_qonnx(_qonnx_path(model, tmp))


def _check_out_dir(path: Path, force: bool) -> None:
    """The command line never replaces an existing folder unasked (it may hold a vendor tool's results)."""
    if path.is_dir() and any(path.iterdir()) and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")


def _check_new_file(path: Path, force: bool) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")


# ---------------------------------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from qfx.backends.output import check_target, staged_folder
    from qfx.checkpoint import Checkpoint, save_checkpoint
    from qfx.data import dataset, info
    from qfx.export import export_qonnx
    from qfx.pipeline import build_model, train_float, train_quantized
    from qfx.quantize import QuantizeConfig

    out = Path(args.out)
    inputs = [("--data-root", Path(args.data_root))] if args.data_root else []
    if ".py:" in args.model:
        inputs.append(("--model file", Path(args.model.rsplit(":", 1)[0])))
    refuse_overlap([("output folder", out)], inputs)
    _check_out_dir(out, args.force)
    replace = check_target(out, RUN_MARKER, args.force, "QFX run folder")
    w = args.width
    config = QuantizeConfig(
        input_width=w if args.input_width is None else args.input_width,
        weight_width=w if args.weight_width is None else args.weight_width,
        activation_width=w if args.activation_width is None else args.activation_width,
        bias_width=2 * w if args.bias_width is None else args.bias_width,
        khot=args.khot or None,
    )
    torch.set_num_threads(args.threads)
    data_info = info(args.dataset)
    steps = _steps(args)
    with steps.step(f"loading {args.dataset}"):
        train_set = dataset(args.dataset, args.data_root, "train")
        test_set = dataset(args.dataset, args.data_root, "test")
    torch.manual_seed(args.seed)  # the initial weights too
    model = build_model(args.model, data_info)
    with steps.step(f"float training ({args.epochs} epochs)", total=args.epochs) as step:
        torch.manual_seed(args.seed)
        float_model = train_float(model, train_set, args.epochs, args.lr, args.seed, lambda _t, _n: step)
    khot_label = f" K-hot K={args.khot}" if args.khot else ""
    label = f"QAT W={w}{khot_label}"
    with steps.step(f"{label} ({args.qat_epochs} epochs)", total=args.qat_epochs) as step:
        outcome = train_quantized(
            float_model, train_set, test_set, config, epochs=args.qat_epochs, lr=args.qat_lr, seed=args.seed,
            progress=lambda _t, _n: step, binary_point_lr=args.binary_point_lr,
        )  # fmt: skip
    with steps.step("writing checkpoint and QONNX"), staged_folder(out, replace) as staging:
        example = test_set.tensors[0][:1]
        meta = {"dataset": args.dataset, "model": args.model, "config": str(config), "seed": args.seed}
        save_checkpoint(staging / "model.qfx", Checkpoint(outcome.model, example, meta))
        export_qonnx(outcome.model, example, staging / "model.onnx")
        summary = {
            **meta,
            "width": w,
            "khot": args.khot or None,
            "accuracy": {
                "float": outcome.float_accuracy,
                "PTQ" + khot_label: outcome.ptq_accuracy,
                "QAT" + khot_label: outcome.qat_accuracy,
            },
            "calibrated": outcome.calibrated,
            "learned": outcome.learned,
        }
        from qfx.report import record

        record(staging / RUN_MARKER, "train", summary)
    _print(f"| model | float | PTQ W={w}{khot_label} | {label} |\n|---|---:|---:|---:|")
    accs = (outcome.float_accuracy, outcome.ptq_accuracy, outcome.qat_accuracy)
    _print(f"| {args.model} | " + " | ".join(f"{a:.2f} %" for a in accs) + " |")
    _print(f"\nwrote {out / 'model.qfx'} (checkpoint) and {out / 'model.onnx'} (QONNX)")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from qfx.checkpoint import load_checkpoint
    from qfx.export import export_qonnx

    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".onnx")
    refuse_overlap([("output", out)], [("checkpoint", Path(args.checkpoint))])
    _check_new_file(out, args.force)
    ckpt = load_checkpoint(args.checkpoint)
    with (
        _steps(args).step("exporting QONNX (checked with qonnx's executor)"),
        tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp,
    ):
        publish(export_qonnx(ckpt.model, ckpt.example_input, Path(tmp) / out.name), out, replace=args.force)
    _print(f"wrote {out}")
    return EXIT_OK


def cmd_hls(args: argparse.Namespace) -> int:
    from qfx.hls import generate

    refuse_overlap([("output folder", Path(args.out))], [("model", Path(args.model))])
    _check_out_dir(Path(args.out), args.force)
    from qfx.boards import load_board
    from qfx.plan import plan as make_plan

    board = load_board(args.board)
    with tempfile.TemporaryDirectory(prefix="qfx-") as tmp:
        graph = _graph(Path(args.model), Path(tmp))
        plan, architecture = None, args.architecture
        if architecture != "parallel":
            plan = make_plan(graph, board, target_fps=args.target_fps)
            if architecture == "auto":
                from qfx.backends.hls.generate import choose_architecture

                architecture, plan = choose_architecture(graph, board, plan)
        with _steps(args).step(f"writing {args.tool} HLS project ({architecture}) for {board.name}"):
            out = generate(graph, args.out, board=board, tool=args.tool, name=args.name, force=args.force,
                           architecture=architecture, plan=plan)  # fmt: skip
    meta = json.loads((out / "qfx_project.json").read_text())
    if plan is not None:
        _print(plan.table() + "\n")
    _print(f"wrote {out}: {architecture} design, top {meta['top']}, part {meta['part']}; build: cd {out} && "
           f"{'vitis_hls' if args.tool == 'vitis' else 'vivado_hls'} -f build_prj.tcl")  # fmt: skip
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from qfx.plan import fully_parallel, plan

    with tempfile.TemporaryDirectory(prefix="qfx-") as tmp:
        graph = _graph(Path(args.model), Path(tmp))
    if args.fully_parallel:
        result = fully_parallel(graph, args.board)
    else:
        result = plan(graph, args.board, target_fps=args.target_fps, margin=args.margin)
    _print(json.dumps(result.as_dict(), indent=2) if args.json else result.table())
    return EXIT_OK


def cmd_rtl(args: argparse.Namespace) -> int:
    from qfx.rtl import generate, read_rtl

    refuse_overlap([("output folder", Path(args.out))], [("model", Path(args.model))])
    _check_out_dir(Path(args.out), args.force)
    from qfx.plan import plan as make_plan

    with tempfile.TemporaryDirectory(prefix="qfx-") as tmp:
        graph = _graph(Path(args.model), Path(tmp))
        plan = None if args.architecture == "parallel" else make_plan(graph, args.board, target_fps=args.target_fps)
        with _steps(args).step(f"writing Verilog ({args.architecture})"):
            out = generate(graph, args.out, name=args.name, register_every=args.register_every, force=args.force,
                           architecture=args.architecture, plan=plan, board=args.board)  # fmt: skip
    meta = read_rtl(out)
    if meta.get("architecture") == "stream":
        _print(plan.table() + "\n")
        _print(f"wrote {out}: streaming design, top {meta['top']} (AXI4-Stream ports), {meta['cycles']:,} cycles "
               f"per sample, {len(meta['roms'])} ROM images")  # fmt: skip
        return EXIT_OK
    _print(f"wrote {out}: top {meta['top']}, latency {meta['latency']} cycles, II=1, "
           f"{meta['multipliers']} multipliers")  # fmt: skip
    return EXIT_OK


def _inputs(args: argparse.Namespace, shape: tuple[int, ...]):
    import numpy as np

    from qfx.data import dataset

    if args.inputs:
        x = load_batch(args.inputs)  # float64 stays float64: the batch verified is the batch given
        source = args.inputs
    else:
        x = dataset(args.dataset, args.data_root, "test").tensors[0].numpy()
        source = f"the {args.dataset} test set"
    if args.limit is not None:
        x = x[: args.limit]
    if tuple(x.shape[1:]) != tuple(shape) and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        x = x.reshape(x.shape[0], *shape)
    if tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"the model takes inputs of shape {shape}, {source} has {tuple(x.shape[1:])}")
    return x


def cmd_verify(args: argparse.Namespace) -> int:
    from qfx.verify import verify_chain

    model_path = Path(args.model)
    if args.record:
        inputs = [("model", model_path), *([("--inputs", Path(args.inputs))] if args.inputs else [])]
        refuse_overlap([("--record", Path(args.record))], inputs)
    steps = _steps(args)
    with tempfile.TemporaryDirectory(prefix="qfx-") as tmp:
        qonnx = _qonnx_path(model_path, Path(tmp))
        model = None
        if model_path.suffix.lower() != ".onnx":
            from qfx.checkpoint import load_checkpoint

            model = load_checkpoint(model_path).model
        graph = _graph(qonnx, Path(tmp))
        x = _inputs(args, graph.tensors[graph.inputs[0]].shape)
        with steps.step(f"verification chain on {len(x)} inputs") as step:
            report = verify_chain(
                qonnx, x, model=model, hls_dir=args.hls, rtl_dir=args.rtl, simulators=args.simulator,
                progress=lambda link: step.describe(f"verification chain: {link}"),
            )  # fmt: skip
    _print(report.table())
    if args.record:
        from qfx.report import record

        record(Path(args.record), args.section or "verify", report.as_dict())
    if not report.ok:
        raise CLIError("the chain disagrees: some link's codes differ from the IR interpreter's", EXIT_MISMATCH)
    _print(f"\nevery link agrees bit for bit ({report.links[0].codes} codes each)")
    return EXIT_OK


def cmd_synth(args: argparse.Namespace) -> int:
    from qfx.synth import report

    with _steps(args).step("Yosys synth_xilinx"):
        result = report(args.rtl_dir, args.family, board=args.board, timeout=args.timeout, progress=False)
    _print(result.table())
    if args.record:
        from qfx.report import record, synth_summary

        record(Path(args.record), args.section or "synth", synth_summary(result))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from qfx.report import write_report

    folder = Path(args.run_dir)
    if not (folder / RUN_MARKER).is_file():
        raise FileNotFoundError(f"{folder / RUN_MARKER} not found: give a folder written by `qfx demo` or `qfx train`")
    with _steps(args).step("writing report"):
        paths = write_report(folder)
    _print("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from qfx.demo import run_demo

    _check_out_dir(Path(args.out), args.force)
    result = run_demo(Path(args.out), force=args.force, steps=_steps(args), threads=args.threads)
    _print(result.summary())
    if not result.ok:
        raise CLIError("the chain disagrees: see the verification table above", EXIT_MISMATCH)
    return EXIT_OK


def cmd_boards(args: argparse.Namespace) -> int:
    from qfx.boards import list_boards

    _print("| name | board | part | Yosys family | LUT | FF | DSP | BRAM | clock (ns) |")
    _print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for b in list_boards():
        r = b.resources
        _print(f"| {b.name} | {b.title} | {b.part} | {b.yosys_family} | {r.lut} | {r.ff} | {r.dsp} | {r.bram:g} | "
               f"{b.clock_period_ns:g} |")  # fmt: skip
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- parser

_DESCRIPTION = """\
QFX: train PyTorch networks with the exact fixed-point arithmetic an FPGA runs (ap_fixed), and lower them through
QONNX to an HLS project and to Verilog, bit for bit.

the flow:  qfx train -> model.qfx + model.onnx -> qfx hls / qfx rtl -> qfx verify -> qfx synth -> qfx report
all of it: qfx demo
"""

_DATA_ONLY = "read as data: no code from the file runs; QONNX domains are checked against the ones QFX knows"

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
    p.set_defaults(func=cmd_train)

    p = command("export", "checkpoint -> QONNX file (checked by executing it with qonnx)")
    p.add_argument("checkpoint", help=f"a model.qfx from `qfx train` ({_DATA_ONLY})")
    p.add_argument("-o", "--out", help="the QONNX file (default: the checkpoint's name with .onnx)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_export)

    p = command("hls", "QONNX file or checkpoint -> Vivado/Vitis HLS project for a board")
    p.add_argument("model", help=f"model.onnx (QONNX) or model.qfx ({_DATA_ONLY})")
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
    p.set_defaults(func=cmd_hls)

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
    p.set_defaults(func=cmd_plan)

    p = command("rtl", "QONNX file or checkpoint -> Verilog: fully parallel, or folded for a board")
    p.add_argument("model", help=f"model.onnx (QONNX) or model.qfx ({_DATA_ONLY})")
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

    p = command(
        "verify",
        "run the test set through every link of the chain and count mismatching codes",
        "Run the test set through the PyTorch model (for a checkpoint), qonnx, the IR interpreter, the HLS "
        "C-simulation (--hls) and the RTL simulation (--rtl); every link's integer output codes are compared with "
        "the IR interpreter's. Exit code 1 when any differs.",
    )
    p.add_argument("model", help=f"model.qfx (adds the PyTorch link) or model.onnx ({_DATA_ONLY})")
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
    p.set_defaults(func=cmd_verify)

    p = command("synth", "Yosys synthesis of generated Verilog: LUT/FF/CARRY/DSP per layer")
    p.add_argument("rtl_dir", help="a folder from `qfx rtl`")
    p.add_argument("--board", help="report utilization of this board (and use its family)")
    p.add_argument("--family", choices=["xc7", "xcup"], help="Yosys family (default: the board's, else xc7)")
    p.add_argument("--timeout", type=float, help="stop Yosys after this many seconds")
    record_args(p)
    p.set_defaults(func=cmd_synth)

    p = command("report", "render a run folder's results.json as report.md, report.html and PNG plots")
    p.add_argument("run_dir", help="a folder from `qfx demo` or `qfx train`")
    p.set_defaults(func=cmd_report)

    p = command(
        "demo",
        "the whole flow on the bundled digits data, with a report",
        "digits -> float, PTQ and QAT models at several widths (and K-hot) -> QONNX -> HLS project for Ultra96-V2 "
        "-> C-simulation -> Verilog -> Verilator -> Yosys -> OUT/report.md, report.html and plots.",
    )
    p.add_argument("-o", "--out", default="demo-out", help="output folder (default demo-out)")
    p.add_argument("--force", action="store_true", help="replace an existing demo folder")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for training (1 is reproducible)")
    p.set_defaults(func=cmd_demo)

    p = command("boards", "list the bundled boards")
    p.set_defaults(func=cmd_boards)
    return parser


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


if __name__ == "__main__":
    entry_point()
