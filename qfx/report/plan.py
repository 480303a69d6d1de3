"""The hardware plan in a run's ``results.json`` and in the report: what ``qfx hls`` records (section ``plan``), the
per-layer table (PE x SIMD, cycles, DSP/LUT/BRAM estimate and % of the board) and the throughput line.

``qfx demo`` records two plans per model: ``plan`` (the one its HLS project renders, folded to fit the board) and
``plan_parallel`` (the fully parallel design); :func:`plan_comparison` puts them side by side.

The recorded form is :meth:`qfx.plan.Plan.as_dict` plus what a report needs without the board file: the design's
architecture, the board's title, clock and resources. Everything here reads that dict, so a report renders from
``results.json`` alone.
"""

from __future__ import annotations

from qfx.report.table import Table

__all__ = ["PLAN_RESOURCES", "plan_comparison", "plan_line", "plan_summary", "plan_table"]

#: The resources the plan's table and plot show, in that order (FF are in results.json too).
PLAN_RESOURCES = (("dsp", "DSP"), ("lut", "LUT"), ("bram", "BRAM"))


def plan_summary(plan, architecture: str) -> dict:
    """``plan`` (a :class:`qfx.plan.Plan`) as the JSON ``qfx hls --record`` stores: the plan, its architecture
    (``parallel`` or ``stream``) and the board's title, clock (MHz) and resources."""
    board = plan.board
    r = board.resources
    return {
        **plan.as_dict(),
        "architecture": architecture,
        "board_title": board.title,
        "clock_mhz": board.clock_mhz,
        "board_resources": {"lut": r.lut, "ff": r.ff, "dsp": r.dsp, "bram": r.bram},
    }


def _share(used: float, available: float) -> float | None:
    return 100.0 * used / available if available else None


def layer_shares(summary: dict) -> list[dict[str, float | None]]:
    """Per layer, the percent of the board each resource of :data:`PLAN_RESOURCES` takes (None: the board has
    none of it)."""
    board = summary["board_resources"]
    return [{k: _share(layer[k], board[k]) for k, _ in PLAN_RESOURCES} for layer in summary["layers"]]


def _cell(used: float, share: float | None) -> str:
    number = f"{used:,g}" if isinstance(used, float) else f"{used:,}"
    return number if share is None else f"{number} ({share:.1f} %)"


def plan_table(summary: dict) -> Table:
    """One row per layer: op, PE x SIMD, cycles per sample, DSP/LUT/BRAM estimate (% of the board), weights; then
    the totals (the pipeline's cycles per sample are the slowest layer's)."""
    headers = ["layer", "op", "PE x SIMD", "weights", "cycles/sample", "MACs"]
    headers += [f"{label} (% of board)" for _, label in PLAN_RESOURCES]
    rows = []
    for layer, shares in zip(summary["layers"], layer_shares(summary), strict=True):
        rows.append([layer["node"], layer["op"], f"{layer['pe']} x {layer['simd']}", layer["weights"],
                     f"{layer['cycles']:,}", f"{layer['macs']:,}",
                     *(_cell(layer[k], shares[k]) for k, _ in PLAN_RESOURCES)])  # fmt: skip
    total, util = summary["total"], summary["utilization"]
    rows.append(["**total**", "", "", "", f"**{summary['cycles']:,}**",
                 f"{sum(layer['macs'] for layer in summary['layers']):,}",
                 *(_cell(total[k], util.get(k)) for k, _ in PLAN_RESOURCES)])  # fmt: skip
    return Table(headers, rows, align_right=4)


def plan_line(summary: dict) -> str:
    """The plan in one sentence: architecture, board, clock, cycles per sample, samples/s, latency, fits."""
    board = summary.get("board_title") or summary["board"]
    fits = "fits" if summary["fits"] else "does NOT fit"
    return (
        f"{summary['architecture']} design for the {board} at {summary['clock_mhz']:g} MHz: "
        f"{summary['cycles']:,} {'cycle' if summary['cycles'] == 1 else 'cycles'} per sample = "
        f"{summary['fps']:,.0f} samples/s, latency about "
        f"{summary['latency']:,} cycles; the estimate {fits} within {summary['margin']:.0%} of every resource "
        "(first-order estimates: docs/plan.md)."
    )


def plan_comparison(plans: list[tuple[str, dict]]) -> Table:
    """The plans side by side, one row each (``(label, summary)`` pairs): architecture, DSP/LUT/BRAM % of the
    board, cycles per sample, samples/s, and whether the estimate fits within the plan's margin."""
    headers = ["design", "architecture", *(f"{label} % of board" for _, label in PLAN_RESOURCES),
               "cycles/sample", "samples/s", "fits"]  # fmt: skip
    rows = []
    for label, s in plans:
        util = s["utilization"]
        shares = [f"{util[k]:.1f} %" if util.get(k) is not None else "" for k, _ in PLAN_RESOURCES]
        rows.append([label, s["architecture"], *shares, f"{s['cycles']:,}", f"{s['fps']:,.0f}",
                     "yes" if s["fits"] else f"**no** (over {s['margin']:.0%})"])  # fmt: skip
    return Table(headers, rows, align_right=2)
