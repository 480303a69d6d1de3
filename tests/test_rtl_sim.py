"""qfx.rtl.simulate: cocotb runs of hand-written Verilog (tests/rtl_fixtures) on Verilator and Icarus.

The fixtures cover both handshakes the testbench must follow: a QFX-style II=1 pipeline and an HLS-style design
that takes three cycles per vector and raises its outputs' _ap_vld in different cycles. Codes are compared for
equality with numpy references; builds are cached, so a second run of this file mostly pays for simulator start-up.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from qfx.format import FixedFormat
from qfx.ir.intcast import float_codes
from qfx.rtl import SimResult, SimulatorError, simulate, simulate_codes
from qfx.rtl import runner as sim_module

FIXTURES = Path(__file__).parent / "rtl_fixtures"
SIMULATORS = ["verilator", "icarus"]


def _require(simulator: str) -> None:
    """Skip when ``simulator`` (or what it needs to build) is missing, naming the missing tool."""
    if simulator == "icarus":
        if shutil.which("iverilog") is None:
            pytest.skip("iverilog not found: install Icarus Verilog (apt install iverilog)")
        return
    try:
        with sim_module._tool_path("verilator"):
            pass
    except SimulatorError as exc:
        pytest.skip(str(exc))
    for tool in ("make", "c++"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: Verilator needs it to build")


def _rtl_dir(tmp_path: Path, fixture: str, *, inp: dict, out: dict, latency: int = 2) -> Path:
    """A QFX Verilog folder (qfx_rtl.json + the fixture) for module ``fixture``."""
    folder = tmp_path / fixture
    folder.mkdir()
    shutil.copy(FIXTURES / f"{fixture}.v", folder)
    meta = {
        "generator": "qfx.rtl", "top": fixture, "sources": [f"{fixture}.v"], "latency": latency,
        "input": {"name": "x", **inp}, "output": {"name": "y", **out}, "layers": [], "multipliers": 0,
    }  # fmt: skip
    (folder / "qfx_rtl.json").write_text(json.dumps(meta))
    return folder


def _addsub(tmp_path: Path, in_fmt: str = "ap_fixed<8,8>", out_fmt: str = "ap_fixed<9,9>", **kw) -> Path:
    inp = {"size": 2, "shape": kw.pop("in_shape", [2]), "format": in_fmt}
    return _rtl_dir(tmp_path, "addsub_pipe", inp=inp, out={"size": 2, "shape": [2], "format": out_fmt}, **kw)


def _signed_codes(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """``n`` random pairs of signed codes, every pair of extremes (min, -1, 0, 1, max) included."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    edges = np.array([lo, lo + 1, -1, 0, 1, hi - 1, hi])
    pairs = np.stack(np.meshgrid(edges, edges), -1).reshape(-1, 2)
    return np.concatenate([pairs, rng.integers(lo, hi + 1, size=(n, 2))])


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_pipeline_exact(tmp_path: Path, simulator: str) -> None:
    """II=1: one vector per cycle, outputs `latency` cycles later, codes equal to numpy's and sign-extended."""
    _require(simulator)
    codes = _signed_codes(np.random.default_rng(1), 400, 8)
    result = simulate_codes(_addsub(tmp_path), codes, simulator=simulator)
    assert isinstance(result, SimResult) and result.simulator == simulator
    assert result.codes.dtype == np.int64 and result.codes.shape == codes.shape
    np.testing.assert_array_equal(result.codes, np.stack([codes[:, 0] + codes[:, 1], codes[:, 0] - codes[:, 1]], 1))
    assert result.cycles == len(codes) + 2  # streamed back to back
    assert result.run_s > 0 and result.vectors_per_s > 0 and result.build_s >= 0


def test_vivado_port_names(tmp_path: Path) -> None:
    """Vivado HLS names the ports of ap_fixed arrays x_0_V, y_0_V, y_0_V_ap_vld: the testbench finds them too."""
    _require("verilator")
    folder = _addsub(tmp_path)
    text = (folder / "addsub_pipe.v").read_text()
    text = re.sub(r"\b([xy]_\d+)(_ap_vld)?\b", lambda m: f"{m[1]}_V{m[2] or ''}", text)
    assert "y_1_V_ap_vld" in text and "x_0_V" in text
    (folder / "addsub_pipe.v").write_text(text)
    codes = _signed_codes(np.random.default_rng(3), 50, 8)
    result = simulate_codes(folder, codes, simulator="verilator")
    np.testing.assert_array_equal(result.codes, np.stack([codes[:, 0] + codes[:, 1], codes[:, 0] - codes[:, 1]], 1))


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_float_inputs_and_shapes(tmp_path: Path, simulator: str) -> None:
    """simulate() casts floats as a C double -> ap_fixed would; (batch, *shape) and (batch, size) both work."""
    _require(simulator)
    in_fmt = "ap_fixed<8,3,AP_RND,AP_SAT>"
    folder = _addsub(tmp_path, in_fmt=in_fmt, out_fmt="ap_fixed<9,4>", in_shape=[1, 2])
    x = np.random.default_rng(2).uniform(-6, 6, size=(64, 1, 2))
    x[:4] = [[[3.99, -4.1]], [[0.015625, -0.015625]], [[0.0078125, -0.0078125]], [[np.inf, -np.inf]]]  # ties, sat
    codes = float_codes(x.reshape(64, 2), FixedFormat.parse(in_fmt)).astype(np.int64)
    expected = np.stack([codes[:, 0] + codes[:, 1], codes[:, 0] - codes[:, 1]], 1)
    first = simulate(folder, x, simulator=simulator)
    np.testing.assert_array_equal(first.codes, expected)
    second = simulate(folder, x.reshape(64, 2), simulator=simulator)  # same design: the build is reused
    np.testing.assert_array_equal(second.codes, expected)
    assert second.build_s < 5


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_hls_project_multicycle(tmp_path: Path, simulator: str) -> None:
    """An HLS project's vendor Verilog: ap_ready pulses once per vector, each _ap_vld in its own cycle."""
    _require(simulator)
    project = tmp_path / "prj"
    verilog = project / "myproject_prj" / "solution1" / "syn" / "verilog"
    verilog.mkdir(parents=True)
    shutil.copy(FIXTURES / "hls_like.v", verilog)
    meta = {"top": "hls_like", "input_size": 2, "output_size": 2,
            "input_format": "ap_ufixed<8,4>", "output_format": "ap_ufixed<16,8>"}  # fmt: skip
    (project / "qfx_project.json").write_text(json.dumps(meta))
    rng = np.random.default_rng(3)
    codes = np.concatenate([[[0, 0], [255, 255], [0, 255], [255, 1]], rng.integers(0, 256, size=(150, 2))])
    result = simulate_codes(project, codes, simulator=simulator)
    np.testing.assert_array_equal(result.codes, np.stack([codes[:, 0] * codes[:, 1], codes[:, 0] + codes[:, 1]], 1))
    assert result.cycles == 3 * len(codes)  # READ, MUL, ADD per vector
    assert (result.codes >= 0).all()  # unsigned output: 0xFE01 stays positive


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_timeout_names_progress(tmp_path: Path, simulator: str) -> None:
    """A design that never raises _ap_vld fails with a message saying how far it got."""
    _require(simulator)
    folder = _rtl_dir(
        tmp_path, "never_done", inp={"size": 2, "format": "ap_fixed<8,8>"}, out={"size": 2, "format": "ap_fixed<9,9>"}
    )
    with pytest.raises(SimulatorError, match=r"timeout: nothing happened for 40 cycles.*0 of 10 output values"):
        simulate_codes(folder, np.zeros((5, 2), dtype=np.int64), simulator=simulator, timeout_cycles=40)


def test_x_on_valid_output_is_an_error(tmp_path: Path) -> None:
    """Icarus is 4-state: an undriven output read while its _ap_vld is high is reported, not turned into 0."""
    _require("icarus")
    folder = _rtl_dir(
        tmp_path, "x_output", inp={"size": 2, "format": "ap_fixed<8,8>"}, out={"size": 2, "format": "ap_fixed<9,9>"}
    )
    with pytest.raises(SimulatorError, match=r"y_1 \(cycle \d+, vector 0\) is 'XXXXXXXXX': X/Z bits$"):
        simulate_codes(folder, np.zeros((3, 2), dtype=np.int64), simulator="icarus")


def test_missing_port_lists_ports(tmp_path: Path) -> None:
    """A metadata/Verilog mismatch names the port it looked for and the ports the top has."""
    _require("icarus")
    folder = _rtl_dir(
        tmp_path, "addsub_pipe", inp={"size": 3, "format": "ap_fixed<8,8>"}, out={"size": 2, "format": "ap_fixed<9,9>"}
    )
    with pytest.raises(SimulatorError, match=r"no port 'x_2'.*x_0, x_1"):
        simulate_codes(folder, np.zeros((1, 3), dtype=np.int64), simulator="icarus")
    (tmp_path / "wide").mkdir()
    folder = _rtl_dir(
        tmp_path / "wide",
        "addsub_pipe",
        inp={"size": 2, "format": "ap_fixed<8,8>"},
        out={"size": 2, "format": "ap_fixed<12,9>"},
    )
    with pytest.raises(SimulatorError, match=r"port y_0 is 9 bits wide, the format needs 12"):
        simulate_codes(folder, np.zeros((1, 2), dtype=np.int64), simulator="icarus")


def test_argument_errors(tmp_path: Path) -> None:
    """Bad simulator names, folders, shapes and codes fail before any simulator starts."""
    folder = _addsub(tmp_path)
    with pytest.raises(ValueError, match=r"simulator must be 'verilator' or 'icarus', not 'x'"):
        simulate(folder, np.zeros((1, 2)), simulator="x")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        simulate(tmp_path / "nowhere", np.zeros((1, 2)))
    with pytest.raises(FileNotFoundError, match=r"neither qfx_rtl\.json"):
        simulate(tmp_path, np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2\), not \(2,\)"):
        simulate(folder, np.zeros(2))
    with pytest.raises(ValueError, match=r"codes must have shape .* not \(4, 3\)"):
        simulate_codes(folder, np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"input code 128 is outside ap_fixed<8,8>"):
        simulate_codes(folder, np.array([[0, 128]]))
    with pytest.raises(TypeError, match="codes must be integers"):
        simulate_codes(folder, np.zeros((1, 2)))
    project = tmp_path / "prj"
    project.mkdir()
    meta = {"top": "net", "input_size": 2, "output_size": 1,
            "input_format": "ap_fixed<8,3>", "output_format": "ap_fixed<12,4>"}  # fmt: skip
    (project / "qfx_project.json").write_text(json.dumps(meta))
    with pytest.raises(FileNotFoundError, match=r"no Verilog under .*prj/.*run build_prj.tcl with synth=1 first"):
        simulate(project, np.zeros((1, 2)))


def test_missing_iverilog_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without Icarus the error says what to install (a RuntimeError subclass, so callers may catch either)."""
    monkeypatch.setattr(sim_module.shutil, "which", lambda name: None)
    with pytest.raises(SimulatorError, match=r"iverilog not found: install Icarus Verilog \(apt install iverilog\)"):
        simulate_codes(_addsub(tmp_path), np.zeros((1, 2), dtype=np.int64), simulator="icarus")
    assert issubclass(SimulatorError, RuntimeError)
