"""The g++/ap_fixed reference harness itself (qfx.sim.apfixed), checked against hand-derived codes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time

import numpy as np
import pytest

from qfx.format import FixedFormat, Overflow, Quant
from qfx.sim import apfixed


@pytest.fixture(scope="module", autouse=True)
def _needs_toolchain(toolchain: None) -> None:
    """Every test here runs g++ (conftest's toolchain fixture skips them all when it or the headers are missing)."""


# Hand-derived cases: (C++ type, doubles, expected codes). All of them run through ONE compiled program.
CASES: dict[str, tuple[str, list[float], list[int]]] = {
    # ±1.25 into LSB 0.5 under every quant mode: the table of docs/DESIGN.md (values 2x the codes).
    **{
        f"quant-{q.name}": (f"ap_fixed<4,3,{q.cpp},AP_SAT>", [1.25, -1.25], [int(2 * v) for v in values])
        for q, values in {
            Quant.TRN: (1.0, -1.5),
            Quant.TRN_ZERO: (1.0, -1.0),
            Quant.RND: (1.5, -1.0),
            Quant.RND_ZERO: (1.0, -1.0),
            Quant.RND_MIN_INF: (1.0, -1.5),
            Quant.RND_INF: (1.5, -1.5),
            Quant.RND_CONV: (1.0, -1.0),
        }.items()
    },
    # 3.99 rounds up to 4.0, which overflows ap_fixed<8,3> and wraps to -4.0.
    "carry-wraps": ("ap_fixed<8,3,AP_RND,AP_WRAP>", [3.99], [-128]),
    "ufixed-trn": ("ap_ufixed<6,2>", [1.3, 0.0, -0.0, 3.9999, 4.0], [20, 0, 0, 63, 0]),
    "ufixed-rnd-sat": ("ap_ufixed<6,2,AP_RND,AP_SAT>", [1.3, -0.01, 100.0], [21, 0, 63]),
    "sat": ("ap_fixed<4,4,AP_TRN,AP_SAT>", [7, 8, 100, -8, -9, np.inf, -np.inf], [7, 7, 7, -8, -8, 7, -8]),
    "sat-zero": ("ap_fixed<4,4,AP_TRN,AP_SAT_ZERO>", [7, 8, -8, -9, 1e300], [7, 0, -8, 0, 0]),
    "ufixed-sat": ("ap_ufixed<4,4,AP_TRN,AP_SAT>", [-3, 15, 20, -np.inf, np.inf], [0, 15, 15, 0, 15]),
    "sat-sym": ("ap_fixed<4,3,AP_TRN,AP_SAT_SYM>", [-4.0, -3.5, -100.0, -np.inf, 100.0], [-7, -7, -7, -7, 7]),
    # ...except at width 1, where the header's "min | 1" is the min code itself.
    "sat-sym-w1": ("ap_fixed<1,0,AP_TRN,AP_SAT_SYM>", [-0.5, -100.0, 0.25, 100.0], [-1, -1, 0, 0]),
    "wrap": ("ap_fixed<4,4>", [7, 8, 9, -9, 16, 17.5], [7, -8, -7, 7, 0, 1]),
    # Signed AP_WRAP, N=1: on overflow the MSB becomes the sign of the value.
    "wrap-n1": ("ap_fixed<4,4,AP_TRN,AP_WRAP,1>", [9, -9, 5], [1, -1, 5]),
    # Unsigned AP_WRAP, N=2: on overflow the top two bits are set.
    "uwrap-n2": ("ap_ufixed<4,4,AP_TRN,AP_WRAP,2>", [17, 5], [13, 5]),
    # AP_WRAP_SM, N=0: the low bits are inverted when the first deleted bit differs from the new MSB.
    "wrap-sm": ("ap_fixed<4,4,AP_TRN,AP_WRAP_SM>", [8, 9, 7, -8], [7, 6, 7, -8]),
    "tiny-trn": ("ap_fixed<8,4>", [5e-324, -5e-324, 1e-300, -1e-300], [0, -1, 0, -1]),
    "tiny-huge-rnd": ("ap_fixed<8,4,AP_RND_INF,AP_SAT>", [5e-324, -5e-324, 1e300, -1e300], [0, 0, 127, -128]),
    "w1-signed": ("ap_fixed<1,0>", [0.5, -0.5, 1.0], [-1, -1, 0]),
    "w1-unsigned": ("ap_ufixed<1,0>", [0.5, 1.0], [1, 0]),
    "w63-signed": ("ap_fixed<63,10>", [-1.25, 2.0**-53], [-5 * 2**51, 1]),
    "w63-unsigned": ("ap_ufixed<63,10>", [-1.25], [2**63 - 5 * 2**51]),
}
SYM_GRID = np.arange(-64, 65) / 8.0  # codes -64..64 of ap_fixed<5,2>, whose range is -16..15
SYM_FORMATS = [FixedFormat(5, 2, True, q, Overflow.SAT_SYM) for q in Quant]
FORMATS = [FixedFormat.parse(fmt) for fmt, _, _ in CASES.values()] + SYM_FORMATS


@pytest.fixture(scope="module")
def reference() -> dict[str, list[int]]:
    """Codes of every case, computed by a single program (so a cold cache compiles once)."""
    rows = [values for _, values, _ in CASES.values()] + [SYM_GRID] * len(SYM_FORMATS)
    n = max(len(r) for r in rows)
    got = apfixed.reference_cast(np.stack([np.resize(np.asarray(r, dtype=float), n) for r in rows]), FORMATS)
    out = {name: got[k, : len(case[1])].tolist() for k, (name, case) in enumerate(CASES.items())}
    out.update({f"sym-grid-{f.quant.name}": got[len(CASES) + k].tolist() for k, f in enumerate(SYM_FORMATS)})
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_hand_checked_codes(reference: dict[str, list[int]], name: str) -> None:
    fmt, values, expected = CASES[name]
    assert reference[name] == expected, f"{fmt} <- {values}"


def test_rnd_sat_example(reference: dict[str, list[int]]) -> None:
    assert CASES["quant-RND"][0] == str(FixedFormat(4, 3, True, Quant.RND, Overflow.SAT))
    assert reference["quant-RND"] == [3, -2]  # 1.5 and -1.0


@pytest.mark.parametrize("quant", list(Quant), ids=lambda q: q.cpp)
def test_sat_sym_never_gives_min_code(reference: dict[str, list[int]], quant: Quant) -> None:
    got = reference[f"sym-grid-{quant.name}"]
    assert min(got) == -15 and max(got) == 15


def test_shapes_order_duplicates_and_rows(reference: dict[str, list[int]]) -> None:
    vals = np.linspace(-3, 3, 97)
    ref = apfixed.reference_cast(vals, FORMATS)  # same format set: the cached program
    assert ref.shape == (len(FORMATS), 97) and ref.dtype == np.int64
    mixed = [FORMATS[3], *FORMATS[::-1], FORMATS[3]]
    assert (apfixed.reference_cast(vals, mixed) == ref[[3, *range(len(FORMATS) - 1, -1, -1), 3]]).all()
    rows = np.stack([vals if k % 2 else -vals for k in range(len(mixed))])
    per_row = apfixed.reference_cast(rows, mixed)
    assert (per_row[1::2] == apfixed.reference_cast(vals, mixed)[1::2]).all()
    assert (per_row[0::2] == apfixed.reference_cast(-vals, mixed)[0::2]).all()
    assert apfixed.reference_cast(vals, []).shape == (0, 97)
    ragged = apfixed.reference_cast_rows([vals[: 3 * k] for k in range(len(FORMATS))], FORMATS)
    assert [r.tolist() for r in ragged] == [ref[k, : 3 * k].tolist() for k in range(len(FORMATS))]


def test_rejects_nan_and_wide_formats() -> None:
    with pytest.raises(ValueError, match="NaN"):
        apfixed.reference_cast(np.array([1.0, np.nan]), [FixedFormat(8, 3)])
    with pytest.raises(ValueError, match="width"):
        apfixed.reference_cast(np.array([1.0]), [FixedFormat(64, 3)])


def test_cache_second_call_compiles_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QFX_CACHE_DIR", str(tmp_path))
    stale, live = tmp_path / ".apfixed-cast-build-killed", tmp_path / ".apfixed-cast-build-running"
    stale.mkdir()
    live.mkdir()
    os.utime(stale, (time.time() - 3 * 86400,) * 2)
    fmts = [FixedFormat(5, 1, False, Quant.RND_CONV, Overflow.WRAP, 2)]
    before = dict(apfixed.stats)
    first = apfixed.reference_cast(np.array([0.3, 7.0]), fmts)
    assert apfixed.stats["compiled"] == before["compiled"] + 1
    second = apfixed.reference_cast(np.array([0.3, 7.0, -1.0]), fmts)
    assert apfixed.stats["compiled"] == before["compiled"] + 1
    assert apfixed.stats["cached"] == before["cached"] + 1
    assert (second[:, :2] == first).all()
    # The finished executable and its digest, no build folder of ours; a killed build's old folder is swept, a
    # live one kept.
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n[:13] for n in names] == [".apfixed-cast", "apfixed-cast-", "apfixed-cast-"]
    assert names[2] == names[1] + ".sha256"
    assert live.is_dir() and not stale.exists()


def test_compile_error_shows_stderr(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QFX_CACHE_DIR", str(tmp_path))
    src = {"bad.cpp": "int main() { return undeclared_qfx_symbol; }\n"}
    with pytest.raises(apfixed.CompileError, match="undeclared_qfx_symbol"):
        apfixed.compile_cached(src, include_dirs=[])
    assert list(tmp_path.iterdir()) == []


def test_compile_cached_with_headers_and_units(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QFX_CACHE_DIR", str(tmp_path))
    src = {
        "lib.h": "int twice(int);\n",
        "lib.cpp": '#include "lib.h"\nint twice(int x) { return 2 * x; }\n',
        "main.cpp": '#include "lib.h"\nint main() { return twice(21) == 42 ? 0 : 1; }\n',
    }
    exe = apfixed.compile_cached(src, include_dirs=[], ldflags=["-lm"], name="twice")
    assert exe.is_file() and exe.name.startswith("twice-")
    assert subprocess.run([str(exe)], check=False).returncode == 0
    assert apfixed.compile_cached(src, include_dirs=[], ldflags=["-lm"], name="twice") == exe
    assert apfixed.compile_cached(src, include_dirs=[], name="twice") != exe  # the link flags are in the key


def test_missing_tools_give_clear_errors(monkeypatch) -> None:
    monkeypatch.setenv("CXX", "qfx-no-such-compiler")
    with pytest.raises(RuntimeError, match="not found"):
        apfixed.gxx()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(RuntimeError, match=r"pip install 'qfx\[sim\]'"):
        apfixed.headers_dir()
