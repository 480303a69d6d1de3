"""Build caches key exactly what was compiled: a source edited between hashing and compiling (provoked through the
test hooks, not by timing) never puts one content's binary under another's key; an in-process memo cannot be fooled
by an edit that keeps size and mtime; a damaged entry is rebuilt; a cache path with a space works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qfx import cache
from qfx.sim import apfixed

MAIN = '#include <cstdio>\n#include "val.h"\nint main() { std::printf("%d\\n", VAL); return 0; }\n'
FIXTURES = Path(__file__).parent / "rtl_fixtures"


def _value(exe: Path) -> int:
    return int(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)


@pytest.fixture
def gxx_cache(tmp_path, monkeypatch) -> Path:
    if shutil.which("g++") is None:
        pytest.skip("g++ not found")
    root = tmp_path / "cache with space"
    monkeypatch.setenv("QFX_CACHE_DIR", str(root))
    return root


def test_compile_cached_builds_the_snapshot_it_hashed(tmp_path, gxx_cache, monkeypatch) -> None:
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "val.h").write_text("#define VAL 1\n")

    def edit(_build: Path) -> None:  # `qfx hls --force` writes the folder while the compiler starts
        (inc / "val.h").write_text("#define VAL 2\n")

    monkeypatch.setattr(apfixed, "_before_compile", edit)
    first = apfixed.compile_cached({"main.cpp": MAIN}, include_dirs=[inc], name="race")
    assert _value(first) == 1  # what was hashed is what was compiled
    monkeypatch.setattr(apfixed, "_before_compile", None)
    second = apfixed.compile_cached({"main.cpp": MAIN}, include_dirs=[inc], name="race")
    assert second != first and _value(second) == 2  # the edited content gets its own key


def test_compile_cached_sees_an_edit_that_keeps_size_and_mtime(tmp_path, gxx_cache) -> None:
    inc = tmp_path / "inc"
    inc.mkdir()
    header = inc / "val.h"
    header.write_text("#define VAL 3\n")
    exe = apfixed.compile_cached({"main.cpp": MAIN}, include_dirs=[inc], name="cp-p")
    stat = header.stat()
    header.write_text("#define VAL 4\n")  # same size; `cp -p` also restores the mtime
    os.utime(header, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = apfixed.compile_cached({"main.cpp": MAIN}, include_dirs=[inc], name="cp-p")
    assert _value(exe) == 3 and _value(again) == 4


def test_damaged_executable_is_rebuilt(tmp_path, gxx_cache) -> None:
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "val.h").write_text("#define VAL 5\n")
    exe = apfixed.compile_cached({"main.cpp": MAIN}, include_dirs=[inc], name="damaged")
    exe.write_bytes(exe.read_bytes()[:100])  # a truncated entry (disk full, killed copy)
    before = apfixed.stats["compiled"]
    again = apfixed.compile_cached({"main.cpp": MAIN}, include_dirs=[inc], name="damaged")
    assert apfixed.stats["compiled"] == before + 1 and _value(again) == 5


def _addsub(folder: Path) -> Path:
    folder.mkdir()
    shutil.copy(FIXTURES / "addsub_pipe.v", folder)
    meta = {
        "generator": "qfx.rtl", "top": "addsub_pipe", "sources": ["addsub_pipe.v"], "latency": 2,
        "input": {"name": "x", "size": 2, "format": "ap_fixed<8,8>"},
        "output": {"name": "y", "size": 2, "format": "ap_fixed<9,9>"}, "layers": [], "multipliers": 0,
    }  # fmt: skip
    (folder / "qfx_rtl.json").write_text(json.dumps(meta))
    return folder


def test_verilator_build_race_damage_and_space(tmp_path, monkeypatch) -> None:
    from qfx.rtl import SimulatorError, runner, simulate_codes

    try:
        with runner._tool_path("verilator"):
            pass
    except SimulatorError as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("QFX_CACHE_DIR", str(tmp_path / "rtl cache"))  # a space: Verilator's make failed on it
    rtl = _addsub(tmp_path / "rtl")
    source = rtl / "addsub_pipe.v"
    original = source.read_text()
    swapped = original.replace("sum <= {a[7], a} + {b[7], b};", "sum <= {a[7], a} - {b[7], b};")
    assert swapped != original
    codes = np.array([[3, 1], [-5, 7], [100, 27]])

    def edit(_work: Path) -> None:
        source.write_text(swapped)

    monkeypatch.setattr(cache, "before_build", edit)
    first = simulate_codes(rtl, codes)
    np.testing.assert_array_equal(first.codes[:, 0], codes.sum(1))  # the snapshot's design, not the edit
    monkeypatch.setattr(cache, "before_build", None)
    second = simulate_codes(rtl, codes)
    np.testing.assert_array_equal(second.codes[:, 0], codes[:, 0] - codes[:, 1])  # the edit: a new build
    # a damaged entry (the simulator binary truncated) is rebuilt, not reported as a simulator failure
    entries = [p for p in (tmp_path / "rtl cache" / "rtl").glob("verilator-addsub_pipe-*") if p.is_dir()]
    assert len(entries) == 2
    for entry in entries:
        binary = max((p for p in (entry / "obj").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        binary.write_bytes(b"")
    third = simulate_codes(rtl, codes)
    np.testing.assert_array_equal(third.codes, second.codes)
    assert third.build_s > 0


ADD8 = "module op8(input [7:0] a, input [7:0] b, output [15:0] y);\n  assign y = a + b;\nendmodule\n"


def test_yosys_synthesizes_the_snapshot_it_hashed(tmp_path, monkeypatch) -> None:
    from qfx import synth

    rtl = tmp_path / "rtl"
    rtl.mkdir()
    source = rtl / "op8.v"
    source.write_text(ADD8)
    results = tmp_path / "synth cache"

    def edit(_work: Path) -> None:  # the design is regenerated while Yosys starts
        source.write_text(ADD8.replace("a + b", "a * b"))

    monkeypatch.setattr(cache, "before_build", edit)
    first = synth.report(rtl, top="op8", sources=[source], cache=results, progress=False)
    assert first.total.dsp == 0 and first.total.carry > 0  # the adder that was hashed, not the multiplier
    monkeypatch.setattr(cache, "before_build", None)
    second = synth.report(rtl, top="op8", sources=[source], cache=results, progress=False)
    assert not second.cached and second.total.dsp == 1  # the multiplier has its own key
    for entry in results.glob("*.json"):
        entry.write_text("{truncated")  # a damaged entry is synthesized again, not an error
    third = synth.report(rtl, top="op8", sources=[source], cache=results, progress=False)
    assert not third.cached and third.total == second.total
