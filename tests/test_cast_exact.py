"""qfx.cast against the real thing: every code compared with ``T v = d;`` compiled by g++ with the Xilinx headers.

The g++ programs are cached (see qfx.sim.apfixed), so only the first run pays for compiling them. Run with ``-s`` to
see how many formats and values were compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

import qfx
from qfx import native
from qfx.format import FixedFormat, Overflow, Quant
from qfx.sim import apfixed

TINY = (5e-324, 1e-300, 2.0**-1022)
HUGE = (1e300, np.inf)


# ------------------------------------------------------------------------------------------------ formats
def overflow_modes(width: int, signed: bool) -> list[tuple[Overflow, int]]:
    """Every overflow mode valid for the signedness, with sat_bits N in 0..min(3, width) for the wrap modes."""
    modes = [(Overflow.SAT, 0), (Overflow.SAT_ZERO, 0), (Overflow.SAT_SYM, 0)]
    for n in range(min(3, width) + 1):
        modes.append((Overflow.WRAP, n))
        if signed:
            modes.append((Overflow.WRAP_SM, n))
    return modes


def int_bits_choices(width: int, k: int) -> list[int]:
    """Four of: negative, zero, small positive, == width, > width, rotated by ``k``.

    Rotating with the mode (rather than testing all five everywhere) lets every mode meet every kind of binary
    point across the widths while keeping the g++ compile inside the time budget (one function per format).
    """
    kinds = [-1 - width % 3, 0, (width + 1) // 2, width, width + 1 + width % 3]
    return sorted({kinds[(k + j) % len(kinds)] for j in range(4)})


def exhaustive_formats() -> list[FixedFormat]:
    formats = []
    for width in range(1, 9):
        modes = [(s, q, o, n) for s in (True, False) for q in Quant for o, n in overflow_modes(width, s)]
        for k, (signed, quant, overflow, n) in enumerate(modes):
            for int_bits in int_bits_choices(width, width + k):
                formats.append(FixedFormat(width, int_bits, signed, quant, overflow, n))
    return formats


def random_formats(rng: np.random.Generator, count: int, max_width: int = 48) -> list[FixedFormat]:
    formats: set[FixedFormat] = set()
    while len(formats) < count:
        width = int(rng.integers(1, max_width + 1))
        signed = bool(rng.integers(2))
        overflow, n = overflow_modes(width, signed)[rng.integers(len(overflow_modes(width, signed)))]
        int_bits = int(rng.integers(-8, width + 9))
        formats.add(FixedFormat(width, int_bits, signed, list(Quant)[rng.integers(7)], overflow, n))
    return sorted(formats, key=str)


# ------------------------------------------------------------------------------------------------ values
def special_values(fmt: FixedFormat) -> np.ndarray:
    """Zeros, tiny and huge doubles, infinities and near-ties around zero, the range ends and the float64 limit."""
    lsb = fmt.lsb
    half = lsb / 2
    vals = [0.0, *TINY, *HUGE, half, np.nextafter(half, 0), np.nextafter(half, np.inf), half * (1 + 2.0**-40)]
    for code in (fmt.min_code, fmt.max_code, fmt.min_code - 1, fmt.max_code + 1, 2 ** (fmt.width + 2)):
        for off in (-0.5, 0.0, 0.5, 0.25, 0.75):
            v = (code + off) * lsb
            vals += [v, np.nextafter(v, -np.inf), np.nextafter(v, np.inf)]
    # Codes where float64 runs out of fraction bits: ties and odd integers around 2**52 and 2**53.
    for big in (2.0**51, 2.0**52 - 1, 2.0**52, 2.0**53 - 2):
        vals += [(big + 0.5) * lsb, (big + 1) * lsb, (big - 0.5) * lsb]
    vals = np.array(vals, dtype=np.float64)
    return np.concatenate([vals, -vals])


def exhaustive_values(fmt: FixedFormat) -> np.ndarray:
    """Every multiple of lsb/4 for codes in [-2**(w+1), 2**(w+1)], then the specials."""
    span = 4 * 2 ** (fmt.width + 1)
    grid = np.arange(-span, span + 1, dtype=np.float64) * (fmt.lsb / 4)
    return np.concatenate([grid, special_values(fmt)])


def random_values(fmt: FixedFormat, rng: np.random.Generator, count: int) -> np.ndarray:
    """Ties, near-ties, exact codes, in-range reals, far out-of-range values; some float32-representable.

    About ``count`` values: 7 groups of count/9, 30% of them again rounded to float32, and the specials."""
    lsb, w = fmt.lsb, fmt.width
    k = count // 9
    lo, hi = fmt.min_code - 2.0 ** min(w, 52), fmt.max_code + 2.0 ** min(w, 52)
    codes = np.floor(rng.uniform(lo, hi, size=3 * k))
    ties = (codes[:k] + 0.5) * lsb
    near = np.concatenate([np.nextafter(ties[: k // 2], -np.inf), np.nextafter(ties[k // 2 :], np.inf)])
    exact = codes[k : 2 * k] * lsb
    sticky = (codes[2 * k :] + rng.choice([0.5, 0.0], size=k) + rng.choice([1, -1], size=k) * 2.0**-30) * lsb
    inside = rng.uniform(fmt.min - lsb, fmt.max + lsb, size=k)
    far = rng.choice([-1.0, 1.0], size=k) * rng.uniform(1, 2, size=k) * 2.0 ** rng.integers(w, w + 70, size=k) * lsb
    anywhere = rng.normal(size=k) * 2.0 ** rng.integers(-20, 80, size=k) * lsb
    vals = np.concatenate([ties, near, exact, sticky, inside, far, anywhere])
    f32 = vals[rng.random(vals.size) < 0.3].astype(np.float32).astype(np.float64)
    vals = np.concatenate([vals, f32, special_values(fmt)])
    return vals


# ------------------------------------------------------------------------------------------------ comparison
#: Every implementation of the cast: the fused native kernel and the tensor-op kernel, for a fixed format
#: (qfx.cast) and for a learned one (qfx.fixed_quantize with the format's binary point as a tensor); on CUDA
#: (where a GPU is present) the tensor-op kernel (tests/test_fused.py checks torch.compile's fused one against it).
PATHS = [("cast", True), ("cast", False), ("learned", True), ("learned", False)]
if torch.cuda.is_available():
    PATHS += [("cast-cuda", False), ("learned-cuda", False)]


def cast_codes(
    values: np.ndarray, fmt: FixedFormat, dtype: torch.dtype, path: tuple[str, bool] = ("cast", True)
) -> np.ndarray:
    """The cast of ``values`` (given as ``dtype``) by ``path``, as float64 codes (exact for width <= 53)."""
    x = torch.from_numpy(values).to(dtype)
    kind, fused = path
    if "cuda" in kind:
        x = x.cuda()
    with native.enabled(fused):
        if kind.startswith("cast"):
            out = qfx.cast(x, fmt)
        else:
            f = fmt.frac_bits
            out = qfx.fixed_quantize(
                x, torch.tensor(float(f)), fmt.width, signed=fmt.signed, quant=fmt.quant, overflow=fmt.overflow,
                sat_bits=fmt.sat_bits, frac_bits_range=(f, f), max_width=fmt.width,
            )  # fmt: skip
    return (out.cpu().to(torch.float64) * 2.0**fmt.frac_bits).numpy()  # exact: a power of two


def mismatches(
    fmt: FixedFormat, values: np.ndarray, expected: np.ndarray, dtype: torch.dtype, path=("cast", True)
) -> str | None:
    if dtype is torch.float32:
        with np.errstate(over="ignore"):
            keep = values.astype(np.float32).astype(np.float64) == values
        values, expected = values[keep], expected[keep]
    actual = cast_codes(values, fmt, dtype, path)
    bad = np.flatnonzero(actual != expected.astype(np.float64))
    if bad.size == 0:
        return None
    lines = [f"{fmt} ({dtype}, {path[0]}, fused={path[1]}): {bad.size} of {values.size} values differ"]
    for i in bad[:10]:
        x = float(values[i])
        lines.append(f"  x={x!r} ({x.hex()}): g++ code {int(expected[i])}, qfx.cast code {float(actual[i])!r}")
    return "\n".join(lines)


def distinct(values: np.ndarray) -> np.ndarray:
    """The distinct doubles of ``values`` (by bit pattern, so -0.0 and 0.0 both stay)."""
    return np.unique(np.ascontiguousarray(values, dtype=np.float64).view(np.int64)).view(np.float64)


def compare(formats: list[FixedFormat], rows: list[np.ndarray], label: str, skip: tuple = ()) -> str:
    """Compare every cast path (but ``skip``) with g++ on every row; returns the summary line for the test report."""
    paths = [p for p in PATHS if p not in skip]
    paths = paths if native.available() else [p for p in paths if not p[1] or "cuda" in p[0]]
    rows = [distinct(r) for r in rows]
    start = time.perf_counter()
    expected = apfixed.reference_cast_rows(rows, formats)
    ref_s = time.perf_counter() - start
    failures = []
    start = time.perf_counter()
    for fmt, row, exp in zip(formats, rows, expected, strict=True):
        for dtype in (torch.float64, torch.float32):
            for path in paths:
                report = mismatches(fmt, row, exp, dtype, path)
                if report:
                    failures.append(report)
    cast_s = time.perf_counter() - start
    total = sum(r.size for r in rows)
    assert not failures, f"{len(failures)} format/dtype pairs differ from g++:\n" + "\n".join(failures[:10])
    return (
        f"{label}: {len(formats)} formats, {total} values (float64 and float32 inputs), 0 mismatches on "
        f"{len(paths)} paths ({', '.join(f'{k} fused={f}' for k, f in paths)}); "
        f"g++ {ref_s:.1f}s (compile included unless cached), qfx {cast_s:.1f}s"
    )


# ------------------------------------------------------------------------------------------------ tests
def test_cast_matches_gxx_exhaustive_small_widths(toolchain: None, summary: Callable[[str], None]) -> None:
    formats = exhaustive_formats()
    # The learned formats' tensor-op path shares its rounding and overflow code with the fixed one; with tensor-valued
    # powers of two it takes 30 s here, so it meets the headers in the randomized test (every mode, widths 1-48).
    rows = [exhaustive_values(f) for f in formats]
    summary(compare(formats, rows, "exhaustive, widths 1-8", skip=(("learned", False),)))


def test_cast_matches_gxx_randomized(toolchain: None, summary: Callable[[str], None]) -> None:
    rng = np.random.default_rng(20240611)
    formats = random_formats(rng, 300)
    summary(compare(formats, [random_values(f, rng, 3000) for f in formats], "randomized, widths 1-48"))


NAN_FORMATS = [
    "ap_fixed<8,3,AP_RND,AP_SAT>",
    "ap_ufixed<6,2>",
    "ap_fixed<5,-2,AP_RND_CONV,AP_WRAP_SM,2>",
    "ap_fixed<40,9>",
]


@pytest.mark.parametrize("fmt", NAN_FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nan_maps_to_nan(fmt: str, dtype: torch.dtype) -> None:
    out = qfx.cast(torch.tensor([float("nan"), 1.0, -float("nan")], dtype=dtype), FixedFormat.parse(fmt))
    assert torch.isnan(out[0]) and torch.isnan(out[2]) and not torch.isnan(out[1])
