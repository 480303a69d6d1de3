"""The ``qfx`` commands but ``qfx rtl`` (:mod:`qfx.cli.rtl`): each takes the parsed arguments and returns the exit
code; heavy imports happen inside, so ``qfx --help`` stays fast."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from qfx.cli.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    RUN_MARKER,
    CLIError,
    check_new_file,
    check_out_dir,
    graph_of,
    inputs_of,
    model_input_shape,
    progress,
    qonnx_path,
    say,
)
from qfx.guard import publish, refuse_inside, refuse_overlap

__all__ = ["cmd_boards", "cmd_demo", "cmd_export", "cmd_hls", "cmd_plan", "cmd_report", "cmd_synth", "cmd_train",
           "cmd_verify"]  # fmt: skip


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
    check_out_dir(out, args.force)
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
    steps = progress(args)
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
    say(f"| model | float | PTQ W={w}{khot_label} | {label} |\n|---|---:|---:|---:|")
    accs = (outcome.float_accuracy, outcome.ptq_accuracy, outcome.qat_accuracy)
    say(f"| {args.model} | " + " | ".join(f"{a:.2f} %" for a in accs) + " |")
    say(f"\nwrote {out / 'model.qfx'} (checkpoint) and {out / 'model.onnx'} (QONNX)")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from qfx.checkpoint import load_checkpoint
    from qfx.export import export_qonnx

    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".onnx")
    refuse_overlap([("output", out)], [("checkpoint", Path(args.checkpoint))])
    check_new_file(out, args.force)
    ckpt = load_checkpoint(args.checkpoint)
    with (
        progress(args).step("exporting QONNX (checked with qonnx's executor)"),
        tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp,
    ):
        publish(export_qonnx(ckpt.model, ckpt.example_input, Path(tmp) / out.name), out, replace=args.force)
    say(f"wrote {out}")
    return EXIT_OK


def cmd_hls(args: argparse.Namespace) -> int:
    from qfx.hls import generate

    model = Path(args.model)
    refuse_overlap([("output folder", Path(args.out))], [("model", model)])
    if args.record:
        refuse_overlap([("--record", Path(args.record))], [("model", model)])
    check_out_dir(Path(args.out), args.force)
    from qfx.boards import load_board
    from qfx.plan import fully_parallel
    from qfx.plan import plan as make_plan
    from qfx.report import plan_summary

    board = load_board(args.board)
    with tempfile.TemporaryDirectory(prefix="qfx-") as tmp:
        graph = graph_of(model, Path(tmp))
        plan, architecture = None, args.architecture
        if architecture != "parallel":
            plan = make_plan(graph, board, target_fps=args.target_fps)
            if architecture == "auto":
                from qfx.backends.hls.generate import choose_architecture

                architecture, plan = choose_architecture(graph, board, plan)
        with progress(args).step(f"writing {args.tool} HLS project ({architecture}) for {board.name}"):
            out = generate(graph, args.out, board=board, tool=args.tool, name=args.name, force=args.force,
                           architecture=architecture, plan=plan)  # fmt: skip
        summary = plan_summary(plan if plan is not None else fully_parallel(graph, board), architecture)
    meta = json.loads((out / "qfx_project.json").read_text())
    _print_plan(summary)
    if args.record:
        from qfx.report import record

        record(Path(args.record), args.section or "plan", summary)
    say(f"wrote {out}: {architecture} design, top {meta['top']}, part {meta['part']}; build: cd {out} && "
        f"{'vitis_hls' if args.tool == 'vitis' else 'vivado_hls'} -f build_prj.tcl")  # fmt: skip
    return EXIT_OK


def _print_plan(summary: dict) -> None:
    """The plan as ``qfx hls`` shows it: the per-layer table (with % of the board) and the throughput line."""
    from qfx.report.plan import plan_line, plan_table

    say(plan_table(summary).markdown() + "\n\n" + plan_line(summary) + "\n")


def cmd_plan(args: argparse.Namespace) -> int:
    from qfx.plan import fully_parallel, plan

    with tempfile.TemporaryDirectory(prefix="qfx-") as tmp:
        graph = graph_of(Path(args.model), Path(tmp))
    if args.fully_parallel:
        result = fully_parallel(graph, args.board)
    else:
        result = plan(graph, args.board, target_fps=args.target_fps, margin=args.margin)
    say(json.dumps(result.as_dict(), indent=2) if args.json else result.table())
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from qfx.verify import verify_chain

    model_path = Path(args.model)
    if args.record:
        folders = [(f"--{what} folder", Path(d)) for what, d in (("hls", args.hls), ("rtl", args.rtl)) if d]
        inputs = [("model", model_path), *([("--inputs", Path(args.inputs))] if args.inputs else []), *folders]
        refuse_overlap([("--record", Path(args.record))], inputs)
        refuse_inside([("--record", Path(args.record))], folders)
    steps = progress(args)
    with tempfile.TemporaryDirectory(prefix="qfx-") as tmp:
        qonnx = qonnx_path(model_path, Path(tmp))
        model = None
        if model_path.suffix.lower() != ".onnx":
            from qfx.checkpoint import load_checkpoint

            model = load_checkpoint(model_path).model
        graph = graph_of(qonnx, Path(tmp))
        x = inputs_of(args, model_input_shape(qonnx, graph))  # raw inputs: verify_chain applies the host's steps
        with steps.step(f"verification chain on {len(x)} inputs") as step:
            report = verify_chain(
                qonnx, x, model=model, hls_dir=args.hls, rtl_dir=args.rtl, simulators=args.simulator,
                progress=lambda link: step.describe(f"verification chain: {link}"),
            )  # fmt: skip
    say(report.table())
    if args.record:
        from qfx.report import record

        record(Path(args.record), args.section or "verify", report.as_dict())
    if not report.ok:
        raise CLIError("the chain disagrees: some link's codes differ from the IR interpreter's", EXIT_MISMATCH)
    say(f"\nevery link agrees bit for bit ({report.links[0].codes} codes each)")
    return EXIT_OK


def cmd_synth(args: argparse.Namespace) -> int:
    from qfx.synth import report

    with progress(args).step("Yosys synth_xilinx"):
        result = report(args.rtl_dir, args.family, board=args.board, timeout=args.timeout, progress=False)
    say(result.table())
    if args.record:
        from qfx.report import record, synth_summary

        record(Path(args.record), args.section or "synth", synth_summary(result))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from qfx.report import write_report

    folder = Path(args.run_dir)
    if not (folder / RUN_MARKER).is_file():
        raise FileNotFoundError(f"{folder / RUN_MARKER} not found: give a folder written by `qfx demo` or `qfx train`")
    with progress(args).step("writing report"):
        paths = write_report(folder)
    say("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from qfx.demo import run_demo

    check_out_dir(Path(args.out), args.force)
    result = run_demo(Path(args.out), force=args.force, steps=progress(args), threads=args.threads)
    say(result.summary())
    if not result.ok:
        raise CLIError("the chain disagrees: see the verification table above", EXIT_MISMATCH)
    return EXIT_OK


def cmd_boards(args: argparse.Namespace) -> int:
    from qfx.boards import list_boards

    say("| name | board | part | Yosys family | LUT | FF | DSP | BRAM | clock (ns) |")
    say("|---|---|---|---|---:|---:|---:|---:|---:|")
    for b in list_boards():
        r = b.resources
        say(f"| {b.name} | {b.title} | {b.part} | {b.yosys_family} | {r.lut} | {r.ff} | {r.dsp} | {r.bram:g} | "
            f"{b.clock_period_ns:g} |")  # fmt: skip
    return EXIT_OK
