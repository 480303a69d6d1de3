"""ap_fixed assignment on integer codes: the IR interpreter's cast, in integer arithmetic only.

A tensor in the IR is an array of integer codes with a :class:`FixedFormat`; value = code * 2**-frac_bits.
:func:`requantize` moves codes to another format with the target's quantization and overflow modes, exactly as
the Xilinx headers assign one ap_fixed to another. :func:`float_codes` does the same from C doubles (the network
input). Arrays are numpy ``int64`` while every intermediate fits 62 bits, else ``object`` arrays of Python ints:
no float ever touches a code.
"""

from __future__ import annotations

import numpy as np

from qfx.format import FixedFormat, Overflow, Quant

__all__ = ["INT64_BITS", "as_ints", "float_codes", "requantize"]

#: Widest intermediate (in bits, sign included) computed in numpy int64; wider ones use Python ints.
INT64_BITS = 62


def as_ints(codes: np.ndarray, bits: int) -> np.ndarray:
    """``codes`` as int64 when values of ``bits`` bits fit, else as an object array of Python ints."""
    if bits <= INT64_BITS:
        return codes if codes.dtype == np.int64 else codes.astype(np.int64)
    if codes.dtype == object:
        return codes
    return np.array([int(v) for v in codes.ravel()], dtype=object).reshape(codes.shape)


def _round(codes: np.ndarray, shift: int, quant: Quant) -> tuple[np.ndarray, np.ndarray]:
    """Drop ``shift`` > 0 low bits of ``codes`` with rounding mode ``quant``; also returns the floor."""
    floor = codes >> shift
    rest = codes - (floor << shift)  # the dropped bits, in [0, 2**shift)
    half = 1 << (shift - 1)
    if quant is Quant.TRN:
        return floor, floor
    if quant is Quant.TRN_ZERO:
        up = (rest != 0) & (codes < 0)
    elif quant is Quant.RND:
        up = rest >= half
    elif quant is Quant.RND_MIN_INF:
        up = rest > half
    elif quant is Quant.RND_ZERO:
        up = (rest > half) | ((rest == half) & (codes < 0))
    elif quant is Quant.RND_INF:
        up = (rest > half) | ((rest == half) & (codes > 0))
    else:  # RND_CONV: ties to even
        up = (rest > half) | ((rest == half) & ((floor & 1) == 1))
    return floor + up.astype(np.int64 if floor.dtype == np.int64 else object), floor


def _overflow(r: np.ndarray, first_deleted: np.ndarray | None, fmt: FixedFormat) -> np.ndarray:
    """The overflow mode of ``fmt`` applied to rounded codes ``r`` (the header's overflow_adjust)."""
    w, signed, mode, n = fmt.width, fmt.signed, fmt.overflow, fmt.sat_bits
    # Python-int arrays need their constants as Python ints too (numpy would squeeze them into int64).
    k = (lambda v: np.array(v, dtype=object)) if r.dtype == object else int
    lo, hi = k(fmt.min_code), k(fmt.max_code)
    if mode is Overflow.SAT or (mode is Overflow.SAT_SYM and not signed):
        return np.minimum(np.maximum(r, lo), hi)
    if mode is Overflow.SAT_SYM:  # -max, except at W = 1 where min | 1 is min itself
        return np.minimum(np.maximum(r, lo + int(w >= 2)), hi)
    if mode is Overflow.SAT_ZERO:
        return np.where((r < lo) | (r > hi), k(0), r)
    modulus, half = k(1 << w), k(1 << (w - 1))
    u = r & (modulus - 1)  # the low W bits, as an unsigned code
    out_of_range = (r < lo) | (r > hi)
    negative = r < lo
    if mode is Overflow.WRAP_SM:
        msb_set = u >= half
        if n == 0:
            flip = first_deleted != msb_set
        elif n == 1:
            flip = negative != msb_set
        else:
            flip = ((u >> (w - n)) & 1 == 1) == negative
        u = np.where(out_of_range & flip, (modulus - 1) - u, u)
    if n > 0:  # keep the low W-N bits; the top N are the sign then its inverse (signed) or all ones (unsigned)
        low = k(1 << (w - n))
        top = np.where(negative, half, half - low) if signed else modulus - low
        u = np.where(out_of_range, (u & (low - 1)) + top, u)
    if signed:
        u = u - np.where(u >= half, modulus, k(0))
    return u


def requantize(codes: np.ndarray, frac_bits: int, fmt: FixedFormat) -> np.ndarray:
    """Assign codes with ``frac_bits`` fraction bits to ``fmt``: quantization, then overflow, as ap_fixed does."""
    codes = np.asarray(codes)
    shift = frac_bits - fmt.frac_bits
    if shift < 0 and codes.dtype != object and codes.size:
        top = int(np.abs(codes).max())
        codes = as_ints(codes, top.bit_length() - shift + 1)
    if shift <= 0:
        r = codes << -shift
        first_deleted = ((r >> fmt.width) & 1) == 1 if fmt.overflow is Overflow.WRAP_SM else None
    else:
        r, floor = _round(codes, shift, fmt.quant)
        first_deleted = ((floor >> fmt.width) & 1) == 1 if fmt.overflow is Overflow.WRAP_SM else None
    return _overflow(r, first_deleted, fmt)


def float_codes(x: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    """Codes of the C doubles ``x`` assigned to ``fmt`` (ap_fixed's conversion from double), exactly.

    Every finite double is ``m * 2**e`` with an integer ``|m| < 2**53``; the cast is then a requantization of
    ``m`` from ``-e`` fraction bits, done on Python ints (this runs once per network input, not per layer).
    Infinities behave as the header's: the largest magnitudes. NaN is refused.
    """
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("cannot cast NaN to a fixed-point format")
    mantissa, exponent = np.frexp(np.nan_to_num(x, posinf=np.finfo(np.float64).max, neginf=-np.finfo(np.float64).max))
    m = (mantissa * 2.0**53).astype(np.int64)  # exact: frexp's mantissa has 53 significant bits
    e = exponent.astype(np.int64) - 53
    out = np.empty(x.shape, dtype=object)
    flat_m, flat_e, flat_out = m.ravel(), e.ravel(), out.reshape(-1)
    for frac in np.unique(flat_e):  # one requantization per distinct exponent
        sel = flat_e == frac
        src = np.array([int(v) for v in flat_m[sel]], dtype=object)
        flat_out[sel] = requantize(src, -int(frac), fmt)
    return as_ints(out, fmt.width + 1)
