"""The element-wise kernel behind :func:`qfx.cast`: exact ``ap_fixed`` assignment with floating-point tensor ops.

Why it is exact:

* ``y = x * 2**F`` is exact (a power-of-two scaling; an underflow to zero is repaired, an overflow to infinity is
  harmless because such a value has all its low bits zero anyway, as the header sees +-Inf);
* every rounding mode is built from ``floor``/``ceil``/``round`` and a comparison ``y - floor(y) >= 0.5``. That
  difference is exact except for ``-1 < y < -0.25``, where it may round, but only to a value still ``>= 0.5`` when
  the exact one is: the comparison's outcome never changes, so there is no double rounding;
* overflow handling works on integer-valued floats below ``2**(W+1)`` (exact in float32 up to W = 24, in float64
  up to W = 53); ``a - m * floor(a / m)`` with ``m`` a power of two is an exact modulo.

The hot modes run in place on one working buffer: on a CPU, fresh allocations (page faults) cost far more than
the arithmetic. Under ``torch.compile`` the whole kernel fuses into one loop either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from qfx.format import Overflow, Quant

Scalar = float | torch.Tensor

# Scaled values beyond this are integers whose low bits (up to 2**53) are all zero, like +-Inf: clamping to it
# keeps the wrap modes exact and finite. float32 holds 2**64 and float64 2**120 exactly.
_BIG = {torch.float32: 2.0**64, torch.float64: 2.0**120}


@dataclass(frozen=True)
class Mode:
    """The static part of a format: everything but its width and binary point."""

    signed: bool
    quant: Quant
    overflow: Overflow
    sat_bits: int


@dataclass
class Pow2:
    """Powers of two the kernel needs; Python floats for a fixed format, tensors for learned ones."""

    scale: Scalar  # 2**F
    inv_scale: Scalar  # 2**-F
    modulus: Scalar  # 2**W
    inv_modulus: Scalar
    half: Scalar  # 2**(W-1)
    inv_half: Scalar
    low: Scalar  # 2**(W-N): the bits AP_WRAP keeps when sat_bits N > 0
    inv_low: Scalar

    def code_range(self, signed: bool) -> tuple[Scalar, Scalar]:
        """(smallest, largest) integer code of the format."""
        if signed:
            return -self.half, self.half - 1.0
        return 0.0, self.modulus - 1.0


def _exponents(width, frac_bits, sat_bits: int) -> tuple:
    # Divisions are multiplications by exact reciprocals: some GPU compilers divide approximately.
    return (frac_bits, -frac_bits, width, -width, width - 1, 1 - width, width - sat_bits, sat_bits - width)


def pow2_static(width: int, frac_bits: int, sat_bits: int) -> Pow2:
    """Powers of two for a fixed format, as exact Python floats."""
    return Pow2(*(2.0**e for e in _exponents(width, frac_bits, sat_bits)))


_POW2_MIN, _POW2_MAX = -1074, 1023
_pow2_tables: dict[torch.device, torch.Tensor] = {}


def exp2_exact(k: torch.Tensor) -> torch.Tensor:
    """``2**k`` for an integer-valued tensor, exactly, as float64 (a table lookup, not a libm call)."""
    table = _pow2_tables.get(k.device)
    if table is None:
        values = [math.ldexp(1.0, e) for e in range(_POW2_MIN, _POW2_MAX + 1)]
        table = torch.tensor(values, dtype=torch.float64, device=k.device)
        if not torch.compiler.is_compiling():  # a tensor made while tracing belongs to the compiled graph
            _pow2_tables[k.device] = table
    return table[(k - _POW2_MIN).long()]


_coeff_tables: dict[tuple, torch.Tensor] = {}


def _exponent_coefficients(sat_bits: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(8, 3): the exponents of :func:`_exponents` as ``a * frac_bits + b * width + c`` (cached per device: no
    host-to-device copy per call)."""
    key = (sat_bits, dtype, device)
    table = _coeff_tables.get(key)
    if table is None:
        rows = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 1, -1), (0, -1, 1)]
        rows += [(0, 1, -sat_bits), (0, -1, sat_bits)]
        table = torch.tensor(rows, dtype=dtype, device=device)
        if not torch.compiler.is_compiling():  # a tensor made while tracing belongs to the compiled graph
            _coeff_tables[key] = table
    return table


def pow2_tensor(width: torch.Tensor, frac_bits: torch.Tensor, sat_bits: int, dtype: torch.dtype) -> Pow2:
    """Powers of two for tensor-valued (learned, per-channel) widths and binary points.

    All eight come from one stacked exponent tensor and one table lookup: a handful of device operations instead
    of dozens, which is what a small layer's step costs on a GPU."""
    frac_bits, width = torch.broadcast_tensors(frac_bits, width)
    coeffs = _exponent_coefficients(sat_bits, frac_bits.dtype, frac_bits.device)
    shape = (8,) + (1,) * frac_bits.dim()
    a, b, c = (coeffs[:, i].reshape(shape) for i in range(3))
    exps = torch.addcmul(torch.addcmul(c, a, frac_bits), b, width)  # exact: small integers
    return Pow2(*exp2_exact(exps).to(dtype).unbind(0))


# ------------------------------------------------------------------------------------------------ rounding
def round_codes_(y: torch.Tensor, quant: Quant) -> torch.Tensor:
    """Round the scaled values ``y`` to integers by ``quant``. Consumes ``y`` (may return its buffer)."""
    if quant is Quant.TRN:
        return y.floor_()
    if quant is Quant.TRN_ZERO:
        return y.trunc_()
    if quant is Quant.RND_CONV:
        return y.round_()  # IEEE round-half-to-even
    if quant is Quant.RND:  # floor(y) + (y - floor(y) >= 0.5)
        fl = torch.floor(y)
        return fl.add_(y.sub_(fl).ge_(0.5))
    if quant is Quant.RND_MIN_INF:  # ceil(y) - (ceil(y) - y >= 0.5)
        ce = torch.ceil(y)
        return ce.sub_(y.neg_().add_(ce).ge_(0.5))
    # The two sign-symmetric modes round the magnitude, then put the sign back.
    magnitude = torch.abs(y)
    if quant is Quant.RND_INF:  # ties away from zero
        fl = torch.floor(magnitude)
        rounded = fl.add_(magnitude.sub_(fl).ge_(0.5))
    else:  # RND_ZERO: ties toward zero
        ce = torch.ceil(magnitude)
        rounded = ce.sub_(magnitude.neg_().add_(ce).ge_(0.5))
    return rounded.copysign_(y)


# ------------------------------------------------------------------------------------------------ overflow
def mod_pow2(a: torch.Tensor, m: Scalar, inv_m: Scalar) -> torch.Tensor:
    """``a mod m`` in ``[0, m)`` for integer-valued ``a`` and a power of two ``m = 1 / inv_m``, exactly."""
    return a - torch.floor(a * inv_m) * m


def _bit(u: torch.Tensor, inv_weight: Scalar) -> torch.Tensor:
    """Bit of weight ``1 / inv_weight`` (a power of two) in the integer-valued ``u`` (two's complement)."""
    return mod_pow2(torch.floor(u * inv_weight), 2.0, 0.5) >= 1.0


def _wrap_(r: torch.Tensor, p: Pow2, signed: bool) -> torch.Tensor:
    """Keep the W low bits of the codes ``r``, in place: two's complement if ``signed``, else in ``[0, 2**W)``."""
    scratch = torch.mul(r, p.inv_modulus).floor_()
    r.sub_(scratch.mul_(p.modulus))  # r mod 2**W
    if signed:  # codes >= 2**(W-1) stand for negative values
        r.sub_(torch.mul(r, p.inv_half, out=scratch).floor_().mul_(p.modulus))
    return r


def _to_signed(u: torch.Tensor, p: Pow2) -> torch.Tensor:
    """Read the W-bit unsigned code ``u`` as two's complement."""
    return u - (u >= p.half) * p.modulus


def overflow_codes_(r: torch.Tensor, first_deleted_bit: torch.Tensor | None, mode: Mode, p: Pow2) -> torch.Tensor:
    """Apply ``mode.overflow`` to the rounded codes ``r`` (consumed). ``first_deleted_bit`` is bit W of the
    *unrounded* scaled source, which AP_WRAP_SM with sat_bits = 0 compares with the kept MSB."""
    lo, hi = p.code_range(mode.signed)
    overflow = mode.overflow
    if overflow is Overflow.SAT or (overflow is Overflow.SAT_SYM and not mode.signed):
        return r.clamp_(lo, hi)
    if overflow is Overflow.SAT_SYM:
        # The header saturates low to the code min | 1: -max, except at W = 1 where that is min itself.
        return r.clamp_(-p.half + (p.half >= 2.0), hi)
    if overflow is Overflow.SAT_ZERO:
        return r.masked_fill_((r < lo) | (r > hi), 0.0)
    if overflow is Overflow.WRAP and mode.sat_bits == 0:
        return _wrap_(r, p, mode.signed)

    # AP_WRAP with saturation bits, AP_WRAP_SM: the header's overflow_adjust, bit by bit.
    out_of_range = (r < lo) | (r > hi)
    negative = r < lo
    u = mod_pow2(r, p.modulus, p.inv_modulus)
    if overflow is Overflow.WRAP_SM:
        msb_set = u >= p.half
        if mode.sat_bits == 0:
            flip = first_deleted_bit != msb_set
        elif mode.sat_bits == 1:
            flip = negative != msb_set
        else:
            flip = _bit(u, p.inv_low) == negative
        u = torch.where(out_of_range & flip, (p.modulus - 1.0) - u, u)  # ~u on W bits
    if mode.sat_bits > 0:
        # Keep the low W-N bits; the top N are the sign then its inverse (signed), or all ones (unsigned).
        top = torch.where(negative, p.half, p.half - p.low) if mode.signed else p.modulus - p.low
        u = torch.where(out_of_range, mod_pow2(u, p.low, p.inv_low) + top, u)
    return _to_signed(u, p) if mode.signed else u


def in_range(r: torch.Tensor, mode: Mode, p: Pow2) -> torch.Tensor:
    """Whether each rounded code lies in the format's range (no overflow handling needed)."""
    lo, hi = p.code_range(mode.signed)
    inside = r >= lo
    return inside.logical_and_(r <= hi)


# ------------------------------------------------------------------------------------------------ the kernel
def fixed_kernel(
    x: torch.Tensor, p: Pow2, mode: Mode, *, may_underflow: bool, want_mask: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Cast ``x`` (in the compute dtype, not modified) into the format.

    Returns the exact values and, with ``want_mask``, whether each rounded code was inside the range.
    """
    y = x * p.scale
    if may_underflow:
        # x * 2**F with F < 0 can flush a tiny nonzero x to zero; x itself has the right sign and |x| < 0.5,
        # which is all any rounding mode looks at for such a value.
        y = torch.where(y == 0, x, y)
    if mode.overflow.wraps:
        big = _BIG[y.dtype]
        y.clamp_(-big, big)
    first_deleted = None
    if mode.overflow is Overflow.WRAP_SM and mode.sat_bits == 0:
        first_deleted = _bit(torch.floor(y), p.inv_modulus)
    r = round_codes_(y, mode.quant)
    inside = in_range(r, mode, p) if want_mask else None
    out = overflow_codes_(r, first_deleted, mode, p)
    return out.mul_(p.inv_scale).add_(0.0), inside  # "+ 0.0" turns -0.0 into 0.0: fixed point has one zero
