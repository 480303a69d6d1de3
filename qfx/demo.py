"""``qfx demo`` (``make demo``): the whole flow on the bundled digits data, in a few minutes on two CPU cores.

digits -> a float MLP -> PTQ, QAT (learned binary points) and K-hot QAT at several widths -> the QAT and K-hot
models at the main width go on: QONNX -> IR -> hardware plan for Ultra96-V2 (:func:`qfx.plan.plan`, folded to fit
the board, beside the fully parallel design's) -> HLS project of that plan (C-simulated) -> Verilog (simulated by
cocotb on Verilator) -> Yosys -> ``report.md`` / ``report.html`` with the accuracy, plan, verification and resource
tables and the plots. The folder is written beside its final place and moved there at the end: a failed or
interrupted demo leaves nothing half-written.
"""

from __future__ import annotations

import datetime
import os
import platform
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

import qfx
from qfx.backends.output import check_target, staged_folder
from qfx.checkpoint import Checkpoint, save_checkpoint
from qfx.console import Steps
from qfx.data import info, load_digits
from qfx.export import export_qonnx
from qfx.ir import from_qonnx
from qfx.pipeline import build_model, train_float, train_quantized
from qfx.quantize import QuantizeConfig
from qfx.report import plan_summary, record, synth_summary, write_report
from qfx.verify import verify_chain

__all__ = ["DemoConfig", "DemoResult", "run_demo"]

BOARD = "ultra96v2"


@dataclass(frozen=True)
class DemoConfig:
    """What the demo trains. The defaults fit in a few minutes on two cores (Yosys on the K-hot MLP dominates)."""

    model: str = "mlp-small"
    widths: tuple[int, ...] = (3, 4, 5, 6, 8)
    main_width: int = 6
    khot: int = 2
    epochs: int = 30
    qat_epochs: int = 10
    seed: int = 0
    tool: str = "vitis"
    simulators: tuple[str, ...] = ("verilator",)
    target_fps: float | None = None  # what the plan aims at; None: the fastest design that fits the board

    def __post_init__(self) -> None:
        if self.main_width not in self.widths:
            raise ValueError(f"main_width {self.main_width} must be one of widths {self.widths}")

    def quantize(self, width: int, khot: int | None = None) -> QuantizeConfig:
        return QuantizeConfig(
            input_width=width, weight_width=width, activation_width=width, bias_width=2 * width, khot=khot
        )


@dataclass
class DemoResult:
    """Where the demo wrote its report, whether every link agreed, and the report's Markdown."""

    folder: Path
    ok: bool
    report: Path
    markdown: str = field(repr=False, default="")

    def summary(self) -> str:
        verdict = "every link of the chain agrees bit for bit" if self.ok else "THE CHAIN DISAGREES"
        return f"\n{verdict}.\nreport: {self.report} (and report.html, plots/)"


def _deploy(name: str, title: str, outcome, example, x_test, folder: Path, cfg: DemoConfig, steps: Steps, yosys):
    """Checkpoint, QONNX, the hardware plans, HLS project, Verilog and the verification chain of one model; Yosys
    goes to the pool. The HLS project renders the plan that fits the board (:func:`qfx.plan.plan`): the fully
    parallel design when that plan is one sample per clock, else the streaming design folded as planned; the fully
    parallel plan is recorded beside it (``plan_parallel``) so the report shows what folding bought."""
    from qfx.backends.hls.generate import choose_architecture
    from qfx.boards import load_board
    from qfx.hls import generate as generate_hls
    from qfx.plan import fully_parallel
    from qfx.plan import plan as make_plan
    from qfx.rtl import generate as generate_rtl
    from qfx.synth import report as synth_report

    where = folder / name
    where.mkdir()
    with steps.step(f"{title}: checkpoint, QONNX export (checked by qonnx), IR"):
        save_checkpoint(where / "model.qfx", Checkpoint(outcome.model, example, {"demo": name}))
        qonnx = export_qonnx(outcome.model, example, where / "model.onnx")
        graph = from_qonnx(qonnx, name=f"digits_{name}")
    with steps.step(f"{title}: hardware plans for {BOARD} (fitted, fully parallel)"):
        board = load_board(BOARD)
        chosen = make_plan(graph, board, target_fps=cfg.target_fps)
        architecture, hls_plan = choose_architecture(graph, board, chosen)
        plans = {"plan": plan_summary(chosen, architecture),
                 "plan_parallel": plan_summary(fully_parallel(graph, board), "parallel")}  # fmt: skip
    with steps.step(f"{title}: HLS project ({cfg.tool}, {BOARD}, {architecture}) and Verilog"):
        generate_hls(graph, where / "hls", board=board, tool=cfg.tool, test_inputs=x_test[:20],
                     architecture=architecture, plan=hls_plan)  # fmt: skip
        generate_rtl(graph, where / "rtl")
    synth: Future = yosys.submit(synth_report, where / "rtl", board=BOARD, progress=False)
    with steps.step(f"{title}: verification chain on {len(x_test)} test inputs") as step:
        chain = verify_chain(
            qonnx, x_test, model=outcome.model, hls_dir=where / "hls", rtl_dir=where / "rtl", simulators=cfg.simulators,
            progress=lambda link: step.describe(f"{title}: verification chain: {link}"),
        )  # fmt: skip
    files = {
        "checkpoint": f"{name}/model.qfx",
        "QONNX": f"{name}/model.onnx",
        f"HLS project ({cfg.tool}, {BOARD}, {architecture})": f"{name}/hls",
        "Verilog": f"{name}/rtl",
    }
    return {"title": title, "files": files, "formats": {"calibrated": outcome.calibrated, "learned": outcome.learned},
            **plans, "verify": chain.as_dict()}, synth  # fmt: skip


def run_demo(
    out: str | os.PathLike, *, force: bool = False, steps: Steps | None = None, threads: int = 1,
    config: DemoConfig = DemoConfig(),
) -> DemoResult:  # fmt: skip
    """Run the demo into the folder ``out`` (refused when it exists and is not a QFX run folder, unless ``force``)."""
    out = Path(out)
    replace = check_target(out, "results.json", force, "QFX run folder")
    steps = steps or Steps()
    cfg = config
    torch.set_num_threads(max(1, threads))
    start = datetime.datetime.now()
    with steps.step("loading the digits data (scikit-learn, bundled)"):
        train_set, test_set = load_digits("train"), load_digits("test")
    x_test = test_set.tensors[0].numpy()
    example = test_set.tensors[0][:1]
    with steps.step(f"float training, {cfg.model} ({cfg.epochs} epochs)", total=cfg.epochs) as step:
        torch.manual_seed(cfg.seed)  # the initial weights too
        float_model = train_float(build_model(cfg.model, info("digits")), train_set, cfg.epochs, 3e-3, cfg.seed,
                                  lambda _title, _total: step)  # fmt: skip
    sweep, kept = [], {}
    runs = [(w, None) for w in cfg.widths] + [(w, cfg.khot) for w in cfg.widths]
    with steps.step(
        f"PTQ and QAT at widths {list(cfg.widths)}, K-hot K={cfg.khot}", total=len(runs) * cfg.qat_epochs
    ) as step:
        for width, k in runs:
            label = f"K-hot K={k}" if k else "QAT"
            outcome = train_quantized(
                float_model, train_set, test_set, cfg.quantize(width, k), epochs=cfg.qat_epochs, seed=cfg.seed,
                progress=lambda _title, _total: step, label=label,
            )  # fmt: skip
            if not k:
                sweep.append({"method": "PTQ", "width": width, "accuracy": outcome.ptq_accuracy})
            sweep.append({"method": f"QFX {label}", "width": width, "accuracy": outcome.qat_accuracy})
            if width == cfg.main_width:
                kept["khot" if k else "qat"] = outcome
    w = cfg.main_width
    accuracy = [
        {"model": cfg.model, "method": "float", "width": None, "accuracy": kept["qat"].float_accuracy},
        {"model": cfg.model, "method": "PTQ", "width": w, "accuracy": kept["qat"].ptq_accuracy},
        {"model": cfg.model, "method": "QFX QAT", "width": w, "accuracy": kept["qat"].qat_accuracy},
        {"model": cfg.model, "method": f"QFX K-hot K={cfg.khot}", "width": w, "accuracy": kept["khot"].qat_accuracy},
    ]
    variants = {}
    with staged_folder(out, replace) as staging, ThreadPoolExecutor(max_workers=2, thread_name_prefix="yosys") as yosys:
        pending = {}
        for name, title in (("qat", f"QFX QAT W={w}"), ("khot", f"QFX K-hot K={cfg.khot} W={w}")):
            variants[name], pending[name] = _deploy(
                name, title, kept[name], example, x_test, staging, cfg, steps, yosys
            )
        with steps.step("Yosys synth_xilinx (xcup) of both designs"):
            for name, future in pending.items():
                variants[name]["synth"] = synth_summary(future.result())
        seconds = (datetime.datetime.now() - start).total_seconds()
        meta = {
            "title": "the QFX demo on digits", "command": "qfx demo", "qfx": qfx.__version__,
            "torch": torch.__version__,
            "date": start.strftime("%Y-%m-%d %H:%M"), "seconds": seconds, "cpus": os.cpu_count(),
            "machine": platform.machine(), "dataset": "digits (scikit-learn, 1347 train / 450 test images)",
            "model": f"{cfg.model}, widths {list(cfg.widths)}, main width {w}, K-hot K={cfg.khot}",
        }  # fmt: skip
        results = staging / "results.json"
        for section, data in (("meta", meta), ("accuracy", accuracy), ("sweep", sweep), ("variants", variants),
                              ("timings", dict(steps.timings))):  # fmt: skip
            record(results, section, data)
        with steps.step("report: report.md, report.html, plots"):
            write_report(staging)
    ok = all(v["verify"]["ok"] for v in variants.values())
    report = out / "report.md"
    return DemoResult(out, ok, report, report.read_text(encoding="utf-8"))
