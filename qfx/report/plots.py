"""The report's pictures (matplotlib, no display needed): where each layer's binary point sits, accuracy against bit
width, resources per layer (Yosys), and the hardware plan per layer (cycles, estimated % of the board)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from qfx.report.plan import PLAN_RESOURCES, layer_shares

__all__ = ["plot_accuracy", "plot_binary_points", "plot_plan", "plot_resources"]

_COLORS = {"PTQ": "#9e9e9e", "QAT": "#1f77b4", "K-hot": "#d62728", "float": "#2ca02c"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_binary_points(variants: dict[str, dict], path: Path) -> Path:
    """One panel per variant, one row per quantizer: the bits its format holds (bar from the LSB's to the MSB's
    exponent), learned (filled) over calibrated (outline); the vertical line is the binary point."""
    panels = [(v["title"], v["formats"]) for v in variants.values() if v.get("formats", {}).get("learned")]
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(6.2 * len(panels), 0.5 * max(len(p[1]["learned"]) for p in panels) + 1.6),
        squeeze=False,
    )
    for ax, (title, formats) in zip(axes[0], panels, strict=True):
        learned = formats["learned"]
        calibrated = {row["name"]: row for row in formats.get("calibrated", [])}
        for y, row in enumerate(learned):
            lsb, msb = -row["frac_bits"], row["int_bits"] - 1
            ax.barh(y, msb - lsb + 1, left=lsb - 0.5, height=0.55, color="#1f77b4", alpha=0.85)
            ax.text(msb + 0.7, y, f"<{row['width']},{row['int_bits']}>", va="center", fontsize=8)
            cal = calibrated.get(row["name"])
            if cal is not None and (cal["frac_bits"], cal["width"]) != (row["frac_bits"], row["width"]):
                c_lsb, c_msb = -cal["frac_bits"], cal["int_bits"] - 1
                ax.barh(y, c_msb - c_lsb + 1, left=c_lsb - 0.5, height=0.8, fill=False, edgecolor="#ff7f0e", lw=1.4)
        ax.axvline(-0.5, color="black", lw=1)
        ax.set_yticks(range(len(learned)), [row["name"] for row in learned], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("bit position (exponent of 2); binary point at the black line")
        ax.set_title(title, fontsize=10)
        handles = [
            Patch(color="#1f77b4", label="learned (QAT)"),
            Patch(fill=False, edgecolor="#ff7f0e", label="calibrated"),
        ]
        ax.legend(handles=handles, fontsize=8, loc="lower left")
    return _save(fig, path)


def plot_accuracy(sweep: list[dict], float_accuracy: float | None, path: Path) -> Path:
    """Test accuracy against bit width for each method (PTQ, QAT, K-hot), float as a dashed line."""
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    methods = list(dict.fromkeys(r["method"] for r in sweep))
    for method in methods:
        rows = sorted((r["width"], r["accuracy"]) for r in sweep if r["method"] == method)
        color = next((c for k, c in _COLORS.items() if k in method), None)
        ax.plot([w for w, _ in rows], [a for _, a in rows], marker="o", label=method, color=color)
    if float_accuracy is not None:
        ax.axhline(float_accuracy, ls="--", color=_COLORS["float"], label=f"float32 ({float_accuracy:.1f} %)")
    ax.set_xlabel("bit width of every tensor (biases twice as wide)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(sorted({r["width"] for r in sweep}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_resources(variants: dict[str, dict], path: Path) -> Path:
    """LUT, FF, CARRY and DSP cells per layer for each variant (Yosys synth_xilinx), log scale."""
    panels = [(v["title"], v["synth"]) for v in variants.values() if v.get("synth")]
    metrics = [("lut", "LUT"), ("ff", "FF"), ("carry", "CARRY"), ("dsp", "DSP")]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.0), squeeze=False, sharey=True)
    for ax, (title, synth) in zip(axes[0], panels, strict=True):
        layers = list(synth["layers"].items())
        width = 0.8 / len(metrics)
        for k, (key, label) in enumerate(metrics):
            values = [counts.get(key, 0) for _, counts in layers]
            xs = [i + k * width for i in range(len(layers))]
            ax.bar(xs, [v if v > 0 else float("nan") for v in values], width, label=label)  # 0 has no log bar
            for x, v in zip(xs, values, strict=True):
                if v > 0:  # a zero has no bar on a log scale (the title gives the DSP total)
                    ax.text(x, v * 1.15, str(v), ha="center", fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(layers))], [name for name, _ in layers], rotation=20,
                      fontsize=8, ha="right")  # fmt: skip
        total = synth["total"]
        ax.set_title(f"{title}: {total['lut']} LUT, {total['dsp']} DSP", fontsize=10)
        ax.set_ylabel("cells (log scale)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_plan(variants: dict[str, dict], path: Path) -> Path:
    """Per variant with a plan, two panels: each layer's cycles per sample (log scale; the dashed line is the
    pipeline's, the slowest layer's) and the percent of the board each layer's DSP, LUT and BRAM estimate takes."""
    panels = [(v["title"], v["plan"]) for v in variants.values() if v.get("plan")]
    n = max(len(p["layers"]) for _, p in panels)
    fig, axes = plt.subplots(len(panels), 2, figsize=(max(9.0, 0.45 * n + 5), 3.8 * len(panels)), squeeze=False)
    for (ax_cycles, ax_share), (title, summary) in zip(axes, panels, strict=True):
        layers = summary["layers"]
        names = [layer["node"] for layer in layers]
        xs = range(len(layers))
        ax_cycles.bar(xs, [layer["cycles"] for layer in layers], color="#1f77b4")
        pipeline = f"pipeline: {summary['cycles']:,} cycles = {summary['fps']:,.0f} samples/s"
        ax_cycles.axhline(summary["cycles"], ls="--", color="#d62728", lw=1, label=pipeline)
        ax_cycles.set_yscale("log")
        ax_cycles.set_ylabel("cycles per sample (log scale)")
        ax_cycles.set_title(f"{title}: {summary['architecture']}, {summary['clock_mhz']:g} MHz", fontsize=10)
        ax_cycles.legend(fontsize=8)
        shares = layer_shares(summary)
        width = 0.8 / len(PLAN_RESOURCES)
        for k, (key, label) in enumerate(PLAN_RESOURCES):
            values = [s[key] or 0.0 for s in shares]
            total = summary["utilization"].get(key)
            ax_share.bar([i + k * width for i in xs], values, width,
                         label=f"{label} ({total:.1f} % in all)" if total is not None else label)  # fmt: skip
        ax_share.set_ylabel(f"% of the {summary.get('board_title') or summary['board']} (estimate)")
        ax_share.set_title("resources per layer", fontsize=10)
        ax_share.legend(fontsize=8)
        for ax, offset in ((ax_cycles, 0.0), (ax_share, 0.4 - width / 2)):
            ax.set_xticks([i + offset for i in xs], names, rotation=30, fontsize=7, ha="right")
            ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
