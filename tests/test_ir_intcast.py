"""The IR's integer cast equals qfx.cast (itself proven against the Xilinx headers) for every mode."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qfx import FixedFormat, Overflow, Quant, cast, codes
from qfx.ir.intcast import float_codes, requantize

MODES = [(q, o) for q in Quant for o in Overflow]


@st.composite
def formats(draw, max_width: int = 20) -> FixedFormat:
    quant, overflow = draw(st.sampled_from(MODES))
    width = draw(st.integers(1, max_width))
    signed = draw(st.booleans()) or overflow is Overflow.WRAP_SM
    sat_bits = draw(st.integers(0, min(width, 3))) if overflow.wraps else 0
    return FixedFormat(width, draw(st.integers(-6, width + 6)), signed, quant, overflow, sat_bits)


def _reference(values: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    return codes(cast(torch.from_numpy(values), fmt), fmt).numpy()


@settings(max_examples=400, deadline=None)
@given(dst=formats(), src_width=st.integers(1, 30), src_int=st.integers(-8, 30), seed=st.integers(0, 2**31))
def test_requantize_matches_cast(dst: FixedFormat, src_width: int, src_int: int, seed: int) -> None:
    src = FixedFormat(src_width, src_int, True)
    rng = np.random.default_rng(seed)
    c = rng.integers(src.min_code, src.max_code + 1, size=300, dtype=np.int64)
    c[:4] = [src.min_code, src.max_code, 0, -1 if src.width > 1 else 0]
    values = c.astype(np.float64) * 2.0**-src.frac_bits
    got = requantize(c, src.frac_bits, dst)
    assert np.array_equal(np.asarray(got, dtype=np.int64), _reference(values, dst))


@settings(max_examples=300, deadline=None)
@given(dst=formats(max_width=40), seed=st.integers(0, 2**31))
def test_float_codes_match_cast(dst: FixedFormat, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scale = 2.0 ** rng.integers(-10, 12)
    x = np.concatenate([rng.normal(0, scale, 200), [0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, np.inf, -np.inf]])
    x = np.concatenate([x, dst.lsb * (np.arange(-8, 9) / 2), dst.max + dst.lsb / 2 * np.array([-1, 0, 1])])
    got = float_codes(x, dst)
    assert np.array_equal(np.asarray(got, dtype=np.int64), _reference(x, dst))


def test_wide_codes_use_python_ints() -> None:
    fmt = FixedFormat(80, 40, True, Quant.RND, Overflow.SAT)
    c = np.array([1 << 70, -(1 << 70) - 3, 5], dtype=object)
    got = requantize(c, 45, fmt)  # 45 -> 40 fraction bits: drop five bits, round half up
    assert list(got) == [1 << 65, -(1 << 65), 0]
    assert got.dtype == object
    shifted = requantize(np.array([3], dtype=np.int64), 0, FixedFormat(90, 10, True))
    assert list(shifted) == [3 << 80]
