"""The hardware plan in the reports: ``qfx hls`` prints it and records it (``--record``) in a run's results.json,
and ``qfx report`` shows it as a table (per layer: PE x SIMD, cycles, DSP/LUT/BRAM estimate and % of the board,
the throughput at the board's clock) and a plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_plan import cnn
from test_robustness import listing, tiny_qonnx

from qfx.boards import load_board
from qfx.cli import EXIT_OK, EXIT_USAGE, main
from qfx.ir import from_qonnx
from qfx.plan import fully_parallel, plan
from qfx.report import plan_summary, record, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_qonnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


def _row(table: str, layer: str) -> list[str]:
    """The cells of ``layer``'s row in a Markdown table."""
    line = next(line for line in table.splitlines() if line.startswith(f"| {layer} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.parametrize("architecture", ["auto", "stream"])
def test_hls_prints_and_records_the_plan(architecture: str, tiny, tmp_path, capsys) -> None:
    board = load_board("ultra96v2")
    graph = from_qonnx(tiny)
    extra = ["--target-fps", "1e6"] if architecture == "stream" else []
    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    code, out, err = run(capsys, "hls", str(tiny), "-o", str(tmp_path / "run" / "hls"), "--architecture",
                         architecture, *extra, "--record", str(results))  # fmt: skip
    assert code == EXIT_OK, err
    want = plan(graph, board, target_fps=1e6) if extra else fully_parallel(graph, board)
    recorded = json.loads(results.read_text())["plan"]
    assert recorded["architecture"] == ("stream" if extra else "parallel")
    assert {k: recorded[k] for k in want.as_dict()} == json.loads(json.dumps(want.as_dict()))
    assert recorded["clock_mhz"] == 100 and recorded["board_resources"]["dsp"] == 360
    assert recorded["fps"] == pytest.approx(100e6 / want.cycles)
    if extra:
        assert want.cycles > 1 and 100e6 / want.cycles >= 1e6  # folded, and as fast as asked
    for layer in want.layers:  # printed: folding, cycles, estimate with its share of the board
        cells = _row(out, layer.node)
        assert cells[2] == f"{layer.folding.pe} x {layer.folding.simd}" and cells[4] == f"{layer.cycles:,}"
        assert cells[6] == f"{layer.estimate.dsp:,} ({100 * layer.estimate.dsp / 360:.1f} %)"
        assert cells[7] == f"{layer.estimate.lut:,} ({100 * layer.estimate.lut / 70560:.1f} %)"
    unit = "cycle" if want.cycles == 1 else "cycles"
    assert f"Ultra96-V2 at 100 MHz: {want.cycles:,} {unit} per sample = {want.fps:,.0f} samples/s" in out

    assert run(capsys, "report", str(results.parent))[0] == EXIT_OK
    md = (results.parent / "report.md").read_text()
    assert "### Hardware plan" in md and "## Hardware plan per layer" in md and "plots/plan.png" in md
    assert [_row(md, la.node) for la in want.layers] == [_row(out, la.node) for la in want.layers]
    html = (results.parent / "report.html").read_text()
    assert "<h3>Hardware plan</h3>" in html and 'src="plots/plan.png"' in html
    assert (results.parent / "plots" / "plan.png").read_bytes().startswith(PNG)


def test_report_shows_a_recorded_plan_beside_other_sections(tmp_path) -> None:
    """A folded CNN's plan recorded next to a verify section: every layer is a row, the totals carry the board's
    percentages and the throughput line the samples/s; without a plan section there is no plan in the report."""
    p = plan(cnn(), "ultra96v2")
    assert p.cycles > 1
    results = tmp_path / "results.json"
    record(results, "plan", plan_summary(p, "stream"))
    paths = write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# QFX report") and "## cnn" in md
    for la in p.layers:
        assert _row(md, la.node)[4] == f"{la.cycles:,}"
    total = _row(md, "**total**")
    u = p.utilization()
    assert total[4] == f"**{p.cycles:,}**" and total[6] == f"{p.total.dsp:,} ({u['dsp']:.1f} %)"
    assert f"= {p.fps:,.0f} samples/s" in md and tmp_path / "plots" / "plan.png" in paths

    other = tmp_path / "other"
    other.mkdir()
    record(other / "results.json", "train", {"model": "m", "width": 8, "accuracy": {"float": 90.0}})
    write_report(other)
    assert "Hardware plan" not in (other / "report.md").read_text() and not (other / "plots" / "plan.png").exists()


def test_record_may_not_overwrite_the_model(tiny, tmp_path, capsys) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(tiny.read_bytes())
    code, _, err = run(capsys, "hls", str(model), "-o", str(tmp_path / "prj"), "--record", str(model))
    assert code == EXIT_USAGE and "--record" in err
    assert listing(tmp_path) == {"m.onnx": tiny.read_bytes()}
