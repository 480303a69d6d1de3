"""Calibration of the plan's resource model (qfx/plan/cost.py) against Yosys synth_xilinx on small designs.

Each design is a small network (tests/calibration_models.py: a convolution + max pool + dense network, a
convolution + depthwise convolution + max pool + dense network (window generators and whole-window units) and
two-layer MLPs, plain and K-hot K = 2 weights; the wider MLP's weight ROMs are deep enough for block RAM) rendered
as folded streaming Verilog at several foldings (per-layer ``Folding(pe, simd)`` overrides), or fully parallel.
For every design the script prints, per layer and in total, the plan's estimate next to Yosys' counts (LUT =
logic + LUTRAM + SRL, FF, DSP, BRAM36) with ratios, then the errors
over all designs: what docs/plan.md states as the calibration.

    .venv/bin/python benchmarks/bench_calibrate.py                   # all designs (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_calibrate.py --only conv_min   # one design
    .venv/bin/python benchmarks/bench_calibrate.py --json cal.json   # also the figures as JSON
    .venv/bin/python benchmarks/bench_calibrate.py --resnet8 --workers 2  # ResNet-8 at full size only

Yosys results are cached per module (qfx.synth), so a second run only re-synthesizes what changed.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from calibration_models import conv_net, dw_net, mlp

import qfx.rtl
from qfx.plan import Folding, Plan, fully_parallel, plan
from qfx.synth import report


def jet_tagger(khot: int | None = None):
    """tests/zoo.py's jet tagger (16-64-32-32-5 with batch norms), PTQ at 8 bits as in bench_fold.py."""
    from zoo import build, example_input

    import qfx
    from qfx.ir import from_qonnx

    cfg = qfx.QuantizeConfig(mode="ptq", khot=khot)
    model = qfx.quantize_(build("jet_tagger"), cfg, example_input("jet_tagger", 64, seed=2)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        return from_qonnx(qfx.export_qonnx(model, example_input("jet_tagger", 4, seed=3), Path(tmp) / "jet.onnx"))


BOARD = "ultra96v2"
F = Folding
#: label: (graph builder, K-hot K, per-layer foldings or "parallel")
DESIGNS = {
    "conv_min": (conv_net, None, {"conv": F(1, 1), "pool": F(1, 1), "fc": F(1, 1)}),
    "conv_mid": (conv_net, None, {"conv": F(2, 3), "pool": F(2, 2), "fc": F(1, 4)}),
    "conv_max": (conv_net, None, {"conv": F(4, 9), "pool": F(4, 4), "fc": F(3, 12)}),
    "conv_khot_mid": (conv_net, 2, {"conv": F(2, 3), "pool": F(2, 2), "fc": F(1, 4)}),
    # window generators (SIMD dividing the channels; depthwise and pool at SIMD 1) and whole-window units
    "dw_gen_min": (dw_net, None, {"conv": F(1, 1), "dw": F(1, 1), "pool": F(1, 1), "fc": F(1, 1)}),
    "dw_gen_mid": (dw_net, None, {"conv": F(2, 8), "dw": F(4, 1), "pool": F(4, 1), "fc": F(1, 4)}),
    "dw_gen_khot": (dw_net, 2, {"conv": F(2, 8), "dw": F(4, 1), "pool": F(4, 1), "fc": F(1, 4)}),
    "dw_whole": (dw_net, None, {"conv": F(2, 6), "dw": F(1, 3), "pool": F(2, 2), "fc": F(1, 4)}),
    "mlp_min": (mlp, None, {"fc1": F(1, 1), "fc2": F(1, 1)}),
    "mlp_mid": (mlp, None, {"fc1": F(2, 4), "fc2": F(2, 2)}),
    "mlp_khot_mid": (mlp, 2, {"fc1": F(2, 4), "fc2": F(2, 2)}),
    "mlp_wide_min": (functools.partial(mlp, n_in=64, hidden=32), None, {"fc1": F(1, 1), "fc2": F(1, 1)}),
    "mlp_wide_mid": (functools.partial(mlp, n_in=64, hidden=32), None, {"fc1": F(2, 4), "fc2": F(2, 4)}),
    "jet_tagger": (jet_tagger, None, {}),  # batch-norm affines, ReLUs of 64 and 32, a softmax
    "mlp_parallel": (mlp, None, "parallel"),
    "mlp_khot_parallel": (mlp, 2, "parallel"),
}
KEYS = ("lut", "ff", "dsp", "bram")


#: ResNet-8's folding for the Ultra96-V2 as the uncalibrated planner chose it (49,152 cycles per image): the design
#: of benchmarks/bench_fold.py's runs, checked here at full size (the calibrated planner refuses it at 80 %).
RESNET8_FOLDING = {
    "conv_conv": (1, 9), "stack1_conv1_conv": (1, 48), "stack1_conv2_conv": (1, 48), "stack2_conv1_conv": (1, 24),
    "stack2_shortcut_conv": (1, 4), "stack2_conv2_conv": (1, 48), "stack3_shortcut_conv": (1, 4),
    "stack3_conv1_conv": (1, 24), "stack3_conv2_conv": (1, 48),
}  # fmt: skip


def resnet8_plan(root: Path) -> tuple[object, Plan, str]:
    """tests/zoo.py's ResNet-8, PTQ at 8 bits as in bench_fold.py, at :data:`RESNET8_FOLDING` (others 1 x 1)."""
    from zoo import build, example_input

    import qfx
    from qfx.boards import load_board
    from qfx.ir import from_qonnx
    from qfx.ir.graph import Reshape
    from qfx.ir.passes import fuse_casts
    from qfx.plan import _assemble, _layer
    from qfx.plan.cost import work_of

    model = qfx.quantize_(build("resnet8"), qfx.QuantizeConfig(mode="ptq"), example_input("resnet8", 64, seed=2))
    graph = from_qonnx(qfx.export_qonnx(model.eval(), example_input("resnet8", 4, seed=3), root / "resnet8.onnx"))
    fused, chosen = fuse_casts(graph), {}
    for node in fused.nodes:
        if not isinstance(node, Reshape):
            w = work_of(fused, node)
            f = Folding(*RESNET8_FOLDING.get(node.name, (1, 1)))
            chosen[node.name] = _layer(w, f, Folding(w.pe_dim, w.simd_dim, w.positions))
    return graph, _assemble(fused, load_board(BOARD), chosen, 0.8), "stream"


def design_plan(label: str) -> tuple[object, Plan, str]:
    """(graph, plan, architecture) of a calibration design."""
    build, khot, folding = DESIGNS[label]
    graph = build(khot)
    if folding == "parallel":
        return graph, fully_parallel(graph, BOARD), "parallel"
    return graph, plan(graph, BOARD, overrides=folding, parallel=False), "stream"


def measure(label: str, root: Path, progress: bool = False, workers: int | None = None) -> dict:
    """Plan, render and synthesize one design: per-layer and total estimate vs Yosys."""
    graph, p, arch = resnet8_plan(root) if label == "resnet8" else design_plan(label)
    rtl = qfx.rtl.generate(graph, root / label, architecture=arch, plan=p if arch == "stream" else None,
                           name=f"cal_{graph.name}")  # fmt: skip
    start = time.perf_counter()
    s = report(rtl, board=BOARD, progress=progress, workers=workers)
    rows = {}
    for la in p.layers:
        got = s.layers.get(la.node)
        if got is None:
            continue  # fused away (a cast into the layer before it) or not a unit of its own
        rows[la.node] = dict(est=la.estimate.as_dict(), yosys=_resources(got), depth=s.depth.get(la.node))
    glue = s.total.resources()
    summed = {k: sum(r["yosys"][k] for r in rows.values()) for k in KEYS}
    total = dict(est=p.total.as_dict(), yosys={k: glue[k] for k in KEYS})
    return dict(design=label, architecture=arch, cycles=p.cycles, layers=rows, total=total,
                top={k: total["yosys"][k] - summed[k] for k in KEYS}, yosys_s=s.yosys_s,
                wall_s=time.perf_counter() - start, jobs=s.jobs)  # fmt: skip


def _resources(c) -> dict[str, float]:
    r = c.resources()
    return {k: r[k] for k in KEYS}


def _ratio(est: float, got: float) -> str:
    return f"{est / got:.2f}" if got else ("=" if est == got else "inf")


def table(result: dict) -> str:
    lines = [f"### {result['design']} ({result['architecture']}, {result['cycles']:,} cycles/sample)", "",
             "| layer | LUT est / Yosys | FF est / Yosys | DSP est / Yosys | BRAM est / Yosys | depth |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, r in [*result["layers"].items(), ("**total**", result["total"])]:
        cells = [f"{r['est'][k]:g} / {r['yosys'][k]:g} ({_ratio(r['est'][k], r['yosys'][k])})" for k in KEYS]
        cells.append(str(r.get("depth") or ""))  # Yosys ltp -noff: cells on the longest path between registers
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    """The calibration: errors of the estimate against Yosys, over the folded designs and the fully parallel ones."""

    def rel(est: float, got: float) -> float:
        return (est - got) / got if got else 0.0

    out = []
    for arch in ("stream", "parallel"):
        rs = [r for r in results if r["architecture"] == arch]
        if not rs:
            continue
        dsp = [r["total"]["est"]["dsp"] - r["total"]["yosys"]["dsp"] for r in rs]
        dsp_rel = max(abs(rel(r["total"]["est"]["dsp"], r["total"]["yosys"]["dsp"])) for r in rs)
        bram = max(abs(r["total"]["est"]["bram"] - r["total"]["yosys"]["bram"]) for r in rs)
        bram_used = sum(r["total"]["yosys"]["bram"] for r in rs)
        out.append(f"{arch} ({len(rs)} designs): DSP "
                   f"{'exact on every design' if not any(dsp) else f'within {100 * dsp_rel:.0f} %'}; BRAM36 within "
                   f"+-{bram:g} ({bram_used:g} used in all)")  # fmt: skip
        for k in ("lut", "ff"):
            totals = [rel(r["total"]["est"][k], r["total"]["yosys"][k]) for r in rs]
            layers = [rel(la["est"][k], la["yosys"][k]) for r in rs for la in r["layers"].values()
                      if la["yosys"][k] >= 100]  # fmt: skip
            out.append(f"  {k.upper()}: total within {100 * max(map(abs, totals)):.0f} % (mean |error| "
                       f"{100 * sum(map(abs, totals)) / len(totals):.0f} %); per layer (>= 100 in Yosys) within "
                       f"{100 * max(map(abs, layers), default=0):.0f} %")  # fmt: skip
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=sorted(DESIGNS), help="designs to run (default: all)")
    ap.add_argument("--json", type=Path, help="write the figures as JSON")
    ap.add_argument("--progress", action="store_true", help="a progress bar over the Yosys modules")
    ap.add_argument(
        "--resnet8",
        action="store_true",
        help="ResNet-8 at full size (alone, or after --only's designs; Yosys for tens of minutes, then cached)",
    )
    ap.add_argument("--workers", type=int, help="Yosys processes at once (default: the CPU count)")
    args = ap.parse_args()
    print("$ " + " ".join(["python", *sys.argv]))
    results = []
    labels = [*(args.only or ([] if args.resnet8 else DESIGNS)), *(["resnet8"] if args.resnet8 else [])]
    with tempfile.TemporaryDirectory(prefix="qfx_calibrate_") as tmp:
        for label in labels:
            r = measure(label, Path(tmp), args.progress, args.workers)
            results.append(r)
            print(f"\n{table(r)}\n\n(top) glue in Yosys: {r['top']}; Yosys {r['yosys_s']:.0f} s in {r['jobs']} "
                  f"run(s), {r['wall_s']:.0f} s wall", flush=True)  # fmt: skip
    small = [r for r in results if r["design"] in DESIGNS]
    if small:
        print("\n## Calibration over", len(small), "designs\n")
        print(summary(small))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
