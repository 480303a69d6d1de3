"""Inputs are never lost or silently changed, and bounds are checked before work starts: outputs that would replace
an input are refused, --inputs keeps float64 and refuses what is not a real batch, SIGTERM cleans up as Ctrl-C does,
concurrent --record keeps every section, two runs never overwrite each other's new folder, and bad numbers get one
clear error naming them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_one_line_error, run
from test_robustness import tiny_model, tiny_qonnx

from qfx.backends.output import staged_folder
from qfx.checkpoint import Checkpoint, save_checkpoint
from qfx.cli import EXIT_INTERRUPTED, EXIT_USAGE
from qfx.format import FixedFormat


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    model, x = tiny_model()
    (root / "run").mkdir()
    ckpt = save_checkpoint(root / "run" / "model.qfx", Checkpoint(model, x[:1]))
    return {"root": root, "ckpt": ckpt, "onnx": tiny_qonnx(root / "tiny.onnx")}


# ------------------------------------------------------------------------------------------- outputs vs inputs


@pytest.mark.parametrize(
    "argv",
    [
        lambda f: ["hls", str(f["ckpt"]), "-o", str(f["ckpt"].parent), "--force"],
        lambda f: ["rtl", str(f["ckpt"]), "-o", str(f["ckpt"].parent), "--force"],
        lambda f: ["export", str(f["ckpt"]), "-o", str(f["ckpt"]), "--force"],
        lambda f: ["verify", str(f["ckpt"]), "--limit", "2", "--record", str(f["ckpt"])],
    ],
)
def test_output_that_is_or_holds_an_input_is_refused(argv, files, capsys) -> None:
    before = files["ckpt"].read_bytes()
    code, _, err = run(capsys, *argv(files))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "model.qfx", "choose another output")
    assert files["ckpt"].read_bytes() == before


def test_train_output_holding_the_model_file_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "run").mkdir()
    user = tmp_path / "run" / "mine.py"
    user.write_text("def build(info):\n    raise SystemExit('must not run')\n")
    code, _, err = run(capsys, "train", "--model", f"{user}:build", "-o", str(tmp_path / "run"), "--force")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "mine.py", "deleted")
    assert user.is_file()


# ------------------------------------------------------------------------------------------- --inputs


def test_float64_inputs_are_verified_as_given(files, monkeypatch, tmp_path, capsys) -> None:
    """A float64 batch whose float32 rounding changes the input codes: every link sees the float64 batch."""
    from qfx.ir import from_qonnx
    from qfx.ir.graph import Graph

    graph = from_qonnx(files["onnx"])
    fmt = graph.fmt(graph.nodes[0].output)
    lsb = 2.0**-fmt.frac_bits
    from qfx.ir.intcast import float_codes

    x = (np.arange(-8, 8).reshape(4, 4) + 0.5) * lsb - 2.0**-40  # just below a tie: float32 lands on the tie
    x[0] = np.arange(1, 5) * lsb - 2.0**-40  # just below a code: float32 lands on it
    assert not np.array_equal(float_codes(x, fmt), float_codes(x.astype(np.float32), fmt))
    seen = []
    real_run = Graph.run
    monkeypatch.setattr(Graph, "run", lambda self, v: (seen.append(np.asarray(v)), real_run(self, v))[1])
    np.save(tmp_path / "x.npy", x)
    code, _out, err = run(capsys, "verify", str(files["ckpt"]), "--inputs", str(tmp_path / "x.npy"))
    assert code == 0, err
    assert any(s.dtype == np.float64 and np.array_equal(s, x) for s in seen)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: np.save(p, np.ones((2, 4), dtype=np.complex128)), "complex"),
        (lambda p: np.save(p, np.ones((0, 4))), "empty"),
        (lambda p: np.save(p, np.full((2, 4), np.nan)), "finite"),
        (lambda p: p.write_text("1 2 3 4\n"), "not a .npy file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (None, "not a regular file"),
    ],
)
def test_bad_input_batches_get_one_clear_error(make, message, files, tmp_path, capsys) -> None:
    path = Path("/dev/null") if make is None else tmp_path / "x.npy"
    if make is not None:
        make(path)
    code, _, err = run(capsys, "verify", str(files["onnx"]), "--inputs", str(path))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "--inputs", message)


# ------------------------------------------------------------------------------------------- SIGTERM

CHILD = """
import contextlib, subprocess, sys, time
from pathlib import Path
import qfx.backends.hls.generate
from qfx.cli import main

gen = sys.modules["qfx.backends.hls.generate"]  # the package's `generate` attribute is the function

ready, pids = Path(sys.argv[1]), Path(sys.argv[2])
real = gen.staged_folder

@contextlib.contextmanager
def slow(out_dir, replace=True):
    with real(out_dir, replace) as staging:
        helper = subprocess.Popen(["sleep", "300"])  # a tool the command started (make, a compiler)
        pids.write_text(str(helper.pid))
        ready.write_text("staging")
        time.sleep(300)
        yield staging

gen.staged_folder = slow
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child processes are found through /proc")
def test_sigterm_cleans_up_like_ctrl_c(files, tmp_path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    ready, pids, out = tmp_path / "ready", tmp_path / "pids", tmp_path / "work" / "prj"
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), str(ready), str(pids), "hls", str(files["ckpt"]),
                             "-o", str(out), "-q"], env=env)  # fmt: skip
    deadline = time.time() + 120
    while not ready.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert ready.exists(), "the command never reached its staging folder"

    def ours() -> list[Path]:
        return list(tmp.glob("qfx-*"))

    assert ours() and list(out.parent.iterdir())  # the export and the staging folder exist now
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == EXIT_INTERRUPTED
    assert ours() == []  # the exported model in $TMPDIR/qfx-* is gone
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no hidden partial folder
    helper = int(pids.read_text())
    for _ in range(50):
        try:
            os.kill(helper, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{helper}/stat") as f:  # reaped zombies count as gone
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.1)
    else:
        pytest.fail("the command's child process survived SIGTERM")


def test_stale_staging_folders_of_dead_processes_are_swept(tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / ".prj.abc123"
    stale.mkdir()
    (stale / ".qfx-staging").write_text(dead.stdout)
    live = tmp_path / ".prj.live"
    live.mkdir()
    (live / ".qfx-staging").write_text(f"{os.getpid()}\n")
    foreign = tmp_path / ".prj.user"
    foreign.mkdir()
    with staged_folder(tmp_path / "prj", replace=False) as staging:
        (staging / "f").write_text("x")
    assert not stale.exists() and live.exists() and foreign.exists()
    assert (tmp_path / "prj" / "f").is_file() and not (tmp_path / "prj" / ".qfx-staging").exists()


# ------------------------------------------------------------------------------------------- concurrency


def test_concurrent_record_keeps_every_section(tmp_path, monkeypatch) -> None:
    import qfx.report as report

    real_dumps = json.dumps

    def slow_dumps(*a, **k):  # widen the read-modify-write window: without a lock, every writer loses the others
        time.sleep(0.2)
        return real_dumps(*a, **k)

    monkeypatch.setattr(report.json, "dumps", slow_dumps)
    path = tmp_path / "results.json"
    threads = [threading.Thread(target=report.record, args=(path, f"s{i}", i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {k: v for k, v in json.loads(path.read_text()).items() if k != "generator"} == {f"s{i}": i for i in range(4)}


def test_second_run_does_not_replace_a_new_folder_written_meanwhile(tmp_path) -> None:
    out = tmp_path / "prj"
    with pytest.raises(FileExistsError, match="another run"), staged_folder(out, replace=False) as staging:
        (staging / "mine").write_text("second run")
        out.mkdir()  # the first run finished first
        (out / "theirs").write_text("first run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prj"]
    assert sorted(p.name for p in out.iterdir()) == ["theirs"]


def test_second_export_does_not_replace_a_file_written_meanwhile(files, tmp_path, monkeypatch, capsys) -> None:
    import qfx.export

    out = tmp_path / "m.onnx"
    real = qfx.export.export_qonnx

    def racing(*args, **kwargs):  # the first run finishes while this one exports
        out.write_text("first run")
        return real(*args, **kwargs)

    monkeypatch.setattr(qfx.export, "export_qonnx", racing)
    code, _, err = run(capsys, "export", str(files["ckpt"]), "-o", str(out))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "another run")
    assert out.read_text() == "first run" and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


# ------------------------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("--lr", "inf", "inf"),
        ("--qat-lr", "nan", "nan"),
        ("--binary-point-lr", "nan", "nan"),
        ("--bias-width", "0", "0"),
        ("--input-width", "0", "0"),
        ("--epochs", "-1", "-1"),
        ("--qat-epochs", "-2", "-2"),
        ("--threads", "0", "0"),
    ],
)
def test_bad_numbers_are_refused_before_work(option, value, shown, tmp_path, capsys) -> None:
    code, _, err = run(capsys, "train", option, value, "-o", str(tmp_path / "run"))
    assert code == EXIT_USAGE
    assert_one_line_error(err, option, shown)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fmt", ["ap_fixed<6,1100>", "ap_fixed<6,100000000000000000000>", "ap_ufixed<8,-1100>"])
def test_formats_beyond_a_double_are_refused(fmt, files, tmp_path, capsys) -> None:
    import onnx
    from test_robustness import edit_qonnx

    def edit(model: onnx.ModelProto) -> None:
        node = next(n for n in model.graph.node if n.op_type == "FixedCast")
        next(a for a in node.attribute if a.name == "format").s = fmt.encode()

    with pytest.raises(ValueError, match="int_bits must be between"):
        FixedFormat.parse(fmt)
    bad = edit_qonnx(files["onnx"], tmp_path / "wide.onnx", edit)
    code, _, err = run(capsys, "hls", str(bad), "-o", str(tmp_path / "prj"))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "int_bits", fmt.split(",")[1].rstrip(">"))
    assert not (tmp_path / "prj").exists()
