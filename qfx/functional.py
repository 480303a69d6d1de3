"""Exact ``ap_fixed`` assignment on tensors: :func:`cast`, and its learnable-format sibling :func:`fixed_quantize`.

Both run the same element-wise kernel, written only with exact floating-point operations:

* ``y = x * 2**F`` is exact (a power-of-two scaling; an underflow to zero is repaired, an overflow to infinity is
  harmless because such a value has all its low bits zero anyway);
* every rounding mode is built from ``floor``/``ceil``/``round`` and a comparison of ``y - floor(y)`` with ``0.5``
  (that difference is exact whenever the comparison's outcome depends on it, so there is no double rounding);
* overflow handling works on integer-valued floats below ``2**(W+1)`` (exact in float32 up to W = 24, in float64 up
  to W = 53), with ``remainder`` by powers of two for the wrap-around modes.

NaN propagates (the hardware never sees it); +-Inf behaves as in the Xilinx headers, as a value too large for any
format whose low bits are all zero: saturating modes clamp, AP_SAT_ZERO gives 0, the wrap modes give the code of 0
(with AP_WRAP's ``sat_bits`` forced as for any overflow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from qfx.format import FixedFormat, Overflow, Quant

__all__ = ["cast", "codes", "fixed_quantize", "result_dtype"]

LN2 = math.log(2.0)

# (significand bits, smallest normal exponent, largest exponent) of the float dtypes cast accepts.
_FLOAT_LIMITS = {
    torch.float16: (11, -14, 15),
    torch.bfloat16: (8, -126, 127),
    torch.float32: (24, -126, 127),
    torch.float64: (53, -1022, 1023),
}
_PROMOTION = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

#: Widest format :func:`cast` emulates: every value and intermediate code is exact in float64 up to here.
MAX_CAST_WIDTH = 53
#: |frac_bits| bound keeping ``2**frac_bits`` and every scaled value finite and normal in float64.
MAX_CAST_FRAC_BITS = 1000


# ------------------------------------------------------------------------------------------------ dtype rules
def _fits(width: int, frac_bits_min: int, frac_bits_max: int, dtype: torch.dtype) -> bool:
    """Whether ``dtype`` holds every value of every format with these bounds, with room for the kernel's codes."""
    significand, min_exp, max_exp = _FLOAT_LIMITS[dtype]
    int_bits_max = width - frac_bits_min
    return width <= significand and -frac_bits_max >= min_exp and int_bits_max <= max_exp


def result_dtype(fmt: FixedFormat, dtype: torch.dtype = torch.float32) -> torch.dtype:
    """The dtype :func:`cast` returns for an input of ``dtype``: the input's own when it holds every value of
    ``fmt`` exactly, otherwise the narrowest wider float dtype that does (float64 at most)."""
    _check_castable(fmt)
    return _pick_dtype(dtype, fmt.width, fmt.frac_bits, fmt.frac_bits, fmt)


def _pick_dtype(dtype: torch.dtype, width: int, f_min: int, f_max: int, what: object) -> torch.dtype:
    if dtype not in _FLOAT_LIMITS:
        raise TypeError(f"cast needs a floating-point tensor (float16, bfloat16, float32 or float64), not {dtype}")
    for candidate in _PROMOTION[_PROMOTION.index(dtype) :]:
        if _fits(width, f_min, f_max, candidate):
            return candidate
    raise ValueError(f"{what}: no float dtype holds its values exactly (float64 needs width <= 53)")


def _check_castable(fmt: FixedFormat) -> None:
    if fmt.width > MAX_CAST_WIDTH:
        raise ValueError(f"cast supports width <= {MAX_CAST_WIDTH} (exact in float64), not {fmt.width} in {fmt}")
    if abs(fmt.frac_bits) > MAX_CAST_FRAC_BITS or abs(fmt.int_bits) > MAX_CAST_FRAC_BITS:
        raise ValueError(
            f"cast supports |frac_bits| and |int_bits| <= {MAX_CAST_FRAC_BITS}, not "
            f"frac_bits={fmt.frac_bits}, int_bits={fmt.int_bits} in {fmt}"
        )


# ------------------------------------------------------------------------------------------------ the kernel
Scalar = float | torch.Tensor


@dataclass(frozen=True)
class _Mode:
    """The static part of a format: everything but its width and binary point."""

    signed: bool
    quant: Quant
    overflow: Overflow
    sat_bits: int


@dataclass
class _Pow2:
    """Powers of two the kernel needs; Python floats for a fixed format, tensors for learned ones."""

    scale: Scalar  # 2**F
    inv_scale: Scalar  # 2**-F
    modulus: Scalar  # 2**W
    half: Scalar  # 2**(W-1)
    low: Scalar  # 2**(W-N): the bits AP_WRAP keeps when sat_bits N > 0


def _pow2_static(width: int, frac_bits: int, sat_bits: int) -> _Pow2:
    return _Pow2(2.0**frac_bits, 2.0**-frac_bits, 2.0**width, 2.0 ** (width - 1), 2.0 ** (width - sat_bits))


_POW2_MIN, _POW2_MAX = -1074, 1023
_pow2_tables: dict[torch.device, torch.Tensor] = {}


def _exp2_exact(k: torch.Tensor) -> torch.Tensor:
    """``2**k`` for an integer-valued tensor, exactly, as float64 (a table lookup, not a libm call)."""
    table = _pow2_tables.get(k.device)
    if table is None:
        values = [math.ldexp(1.0, e) for e in range(_POW2_MIN, _POW2_MAX + 1)]
        table = _pow2_tables[k.device] = torch.tensor(values, dtype=torch.float64, device=k.device)
    return table[(k - _POW2_MIN).long()]


def _pow2_tensor(width: torch.Tensor, frac_bits: torch.Tensor, sat_bits: int, dtype: torch.dtype) -> _Pow2:
    pows = (frac_bits, -frac_bits, width, width - 1, width - sat_bits)
    return _Pow2(*(_exp2_exact(p).to(dtype) for p in pows))


def _round_codes(y: torch.Tensor, quant: Quant) -> torch.Tensor:
    """Integer-valued ``y`` rounded by ``quant``; exact for every finite ``y`` (see the module docstring)."""
    if quant is Quant.TRN:
        return torch.floor(y)
    if quant is Quant.TRN_ZERO:
        return torch.trunc(y)
    if quant is Quant.RND_CONV:
        return torch.round(y)  # IEEE round-half-to-even
    if quant is Quant.RND:
        fl = torch.floor(y)
        return fl + (y - fl >= 0.5).to(y.dtype)
    if quant is Quant.RND_MIN_INF:
        ce = torch.ceil(y)
        return ce - (ce - y >= 0.5).to(y.dtype)
    magnitude = torch.abs(y)
    if quant is Quant.RND_INF:
        fl = torch.floor(magnitude)
        rounded = fl + (magnitude - fl >= 0.5).to(y.dtype)
    else:  # RND_ZERO
        ce = torch.ceil(magnitude)
        rounded = ce - (ce - magnitude >= 0.5).to(y.dtype)
    return torch.copysign(rounded, y)


def _bit(u: torch.Tensor, weight: Scalar) -> torch.Tensor:
    """Bit of weight ``weight`` (a power of two) in the non-negative integer-valued ``u``."""
    return torch.remainder(torch.floor(u / weight), 2.0) >= 1.0


def _overflow_codes(r: torch.Tensor, y: torch.Tensor, mode: _Mode, p: _Pow2) -> torch.Tensor:
    """Apply ``mode.overflow`` to the rounded integer codes ``r`` (``y`` is the unrounded scaled source)."""
    if mode.signed:
        lo, hi = -p.half, p.half - 1.0
    else:
        lo, hi = 0.0, p.modulus - 1.0
    overflow = mode.overflow
    if overflow is Overflow.SAT or (overflow is Overflow.SAT_SYM and not mode.signed):
        return torch.clamp(r, lo, hi)
    if overflow is Overflow.SAT_SYM:
        return torch.clamp(r, -hi, hi)
    if overflow is Overflow.SAT_ZERO:
        return torch.where((r < lo) | (r > hi), 0.0, r)

    u = torch.remainder(r, p.modulus)  # the W low bits, as an unsigned code in [0, 2**W)
    if overflow is Overflow.WRAP and mode.sat_bits == 0:
        pass
    else:
        out_of_range = (r < lo) | (r > hi)
        negative = r < lo
        msb_set = u >= p.half
        if overflow is Overflow.WRAP_SM:
            if mode.sat_bits == 0:
                # The header compares the kept MSB with the first deleted bit of the *unrounded* source.
                flip = _bit_signed(y, p.modulus) != msb_set
            elif mode.sat_bits == 1:
                flip = negative != msb_set
            else:
                flip = _bit(u, p.low) == negative
            u = torch.where(out_of_range & flip, (p.modulus - 1.0) - u, u)
        if mode.sat_bits > 0:
            if mode.signed:
                top = torch.where(negative, p.half, p.half - p.low)
            else:
                top = p.modulus - p.low
            u = torch.where(out_of_range, torch.remainder(u, p.low) + top, u)
    if mode.signed:
        return torch.where(u >= p.half, u - p.modulus, u)
    return u


def _bit_signed(y: torch.Tensor, weight: Scalar) -> torch.Tensor:
    """Bit of weight ``weight`` in the two's complement of ``floor(y)`` (y finite, clamped)."""
    return torch.remainder(torch.floor(torch.floor(y) / weight), 2.0) >= 1.0


# Scaled values beyond this are integers whose low bits (up to 2**53) are all zero, like +-Inf: clamping to it
# keeps the wrap modes exact and finite. float32 holds 2**64 and float64 2**120 exactly.
_BIG = {torch.float32: 2.0**64, torch.float64: 2.0**120}


def _kernel(
    x: torch.Tensor, p: _Pow2, mode: _Mode, may_underflow: bool, want_codes: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cast ``x`` (already in the compute dtype). Returns (values, codes before overflow handling)."""
    y = x * p.scale
    if may_underflow:
        # x * 2**F with F < 0 can flush a tiny nonzero x to zero; x itself has the right sign and |x| < 0.5,
        # which is all any rounding mode looks at for such a value.
        y = torch.where(y == 0, x, y)
    if mode.overflow.wraps:
        big = _BIG[y.dtype]
        y = torch.clamp(y, -big, big)
    r = _round_codes(y, mode.quant)
    out = _overflow_codes(r, y, mode, p)
    return out * p.inv_scale + 0.0, r  # "+ 0.0" turns -0.0 into 0.0: fixed point has one zero


def _in_range(r: torch.Tensor, mode: _Mode, p: _Pow2) -> torch.Tensor:
    if mode.signed:
        return (r >= -p.half) & (r <= p.half - 1.0)
    return (r >= 0.0) & (r <= p.modulus - 1.0)


# ------------------------------------------------------------------------------------------------ cast
class _Cast(torch.autograd.Function):
    """Fixed format; straight-through gradient, zero where a saturating mode changed the code's range."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, fmt: FixedFormat, out_dtype: torch.dtype) -> torch.Tensor:
        compute = torch.float64 if out_dtype is torch.float64 else torch.float32
        mode = _Mode(fmt.signed, fmt.quant, fmt.overflow, fmt.sat_bits)
        p = _pow2_static(fmt.width, fmt.frac_bits, fmt.sat_bits)
        values, r = _kernel(x.to(compute), p, mode, may_underflow=fmt.frac_bits < 0)
        ctx.in_dtype = x.dtype
        ctx.saturates = not fmt.overflow.wraps
        if ctx.saturates:
            ctx.save_for_backward(_in_range(r, mode, p))
        return values.to(out_dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.saturates:
            (keep,) = ctx.saved_tensors
            grad = grad * keep
        return grad.to(ctx.in_dtype), None, None


def cast(x: torch.Tensor, fmt: FixedFormat | str) -> torch.Tensor:
    """Assign ``x`` to ``fmt`` exactly as ``ap_fixed<W,I,Q,O,N> v = x;`` does in C++.

    ``x`` is a float tensor on any device. The result holds the exact fixed-point values in ``x``'s dtype when that
    dtype holds every value of ``fmt`` (float32: width <= 24), otherwise in float64 (see :func:`result_dtype`).
    Gradient: straight-through (identity), zero where AP_SAT/AP_SAT_SYM/AP_SAT_ZERO moved a value into range;
    the wrap modes pass the gradient unchanged (a wrapped value is treated like a rounding error).
    """
    if isinstance(fmt, str):
        fmt = FixedFormat.parse(fmt)
    if not isinstance(fmt, FixedFormat):
        raise TypeError(f"fmt must be a FixedFormat or a C++ type string, not {type(fmt).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"cast needs a torch.Tensor, not {type(x).__name__}")
    out_dtype = result_dtype(fmt, x.dtype)
    return _Cast.apply(x, fmt, out_dtype)


def codes(values: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Integer codes (int64) of values that ``fmt`` holds exactly, e.g. the output of :func:`cast`."""
    scaled = values.to(torch.float64) * 2.0**fmt.frac_bits
    if not torch.equal(scaled, torch.round(scaled)):
        raise ValueError(f"values are not all multiples of the LSB of {fmt}")
    return scaled.to(torch.int64)


# ------------------------------------------------------------------------------------------------ learned formats
def _sum_to(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast result back to ``shape`` (the shape of a per-tensor or per-channel parameter)."""
    if t.shape == shape:
        return t
    lead = t.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, n in enumerate(shape) if n == 1 and t.shape[lead + i] != 1]
    return t.sum(dim=dims, keepdim=True).reshape(shape) if dims else t.reshape(shape)


class _LearnedCast(torch.autograd.Function):
    """Cast with a tensor-valued binary point and width; LSQ-style gradients for both (see docs/concepts.md)."""

    @staticmethod
    def forward(ctx, x, frac_bits, width, mode: _Mode, compute: torch.dtype, out_dtype: torch.dtype):
        f_int = torch.round(frac_bits.detach()).to(compute)
        w_int = torch.round(width.detach()).to(compute)
        p = _pow2_tensor(w_int, f_int, mode.sat_bits, compute)
        xc = x.to(compute)
        values, r = _kernel(xc, p, mode, may_underflow=bool((f_int < 0).any()))
        ctx.mode, ctx.in_dtype = mode, x.dtype
        ctx.save_for_backward(xc, values, r, f_int, w_int)
        ctx.shapes = (frac_bits.shape, width.shape)
        return values.to(out_dtype)

    @staticmethod
    def backward(ctx, grad):
        xc, values, r, f_int, w_int = ctx.saved_tensors
        mode: _Mode = ctx.mode
        p = _pow2_tensor(w_int, f_int, mode.sat_bits, xc.dtype)
        grad = grad.to(xc.dtype)
        inside = _in_range(r, mode, p)
        lo = -p.half if mode.signed else torch.zeros_like(p.half)
        hi = p.half - 1.0 if mode.signed else p.modulus - 1.0
        saturated = torch.minimum(torch.maximum(r, lo), hi) * p.inv_scale
        # d value / d frac_bits: rounding error inside the range, loss of range outside it (LSQ, s = 2**-F).
        d_frac = torch.where(inside, LN2 * (xc - values), -LN2 * saturated)
        # d value / d width (frac_bits fixed): only the range grows.
        d_width = torch.where(inside, 0.0, LN2 * saturated)
        grad_x = grad if mode.overflow.wraps else grad * inside
        frac_shape, width_shape = ctx.shapes
        grad_f = _sum_to(grad * d_frac, frac_shape) if ctx.needs_input_grad[1] else None
        grad_w = _sum_to(grad * d_width, width_shape) if ctx.needs_input_grad[2] else None
        return grad_x.to(ctx.in_dtype), grad_f, grad_w, None, None, None


def fixed_quantize(
    x: torch.Tensor,
    frac_bits: torch.Tensor,
    width: torch.Tensor | int,
    *,
    signed: bool = True,
    quant: Quant | str = Quant.TRN,
    overflow: Overflow | str = Overflow.WRAP,
    sat_bits: int = 0,
    frac_bits_range: tuple[int, int] = (-32, 32),
    max_width: int | None = None,
) -> torch.Tensor:
    """Cast ``x`` to a format whose fraction bits (and optionally width) are tensors, rounded in the forward pass.

    ``frac_bits``/``width`` broadcast against ``x`` (a scalar for per-tensor formats, shape ``(C, 1, ...)`` for
    per-channel ones) and are clamped to ``frac_bits_range`` and ``[1, max_width]``; those bounds decide the
    compute dtype so the result stays exact. Gradients: straight-through for ``x`` (as :func:`cast`), and for
    ``frac_bits``/``width`` the derivative of ``q = s * clamp(round(x / s))`` with ``s = 2**-frac_bits``:
    ``ln2 * (x - q)`` inside the range, ``-ln2 * q_sat`` (frac_bits) and ``+ln2 * q_sat`` (width) outside it.
    """
    mode = _Mode(signed, Quant.from_name(quant), Overflow.from_name(overflow), sat_bits)
    if not isinstance(width, torch.Tensor):
        width = torch.tensor(float(width), device=x.device)
    if max_width is None:
        max_width = int(torch.round(width.detach().max()).item())
    f_lo, f_hi = frac_bits_range
    FixedFormat(max_width, max_width - f_lo, signed, mode.quant, mode.overflow, sat_bits)  # validates the mode
    if max_width > MAX_CAST_WIDTH or max(abs(f_lo), abs(f_hi), abs(max_width - f_lo)) > MAX_CAST_FRAC_BITS:
        raise ValueError(f"learned formats need width <= {MAX_CAST_WIDTH} and |frac_bits| <= {MAX_CAST_FRAC_BITS}")
    out_dtype = _pick_dtype(x.dtype, max_width, f_lo, f_hi, f"formats of width <= {max_width}")
    compute = torch.float64 if out_dtype is torch.float64 else torch.float32
    frac_bits = torch.clamp(frac_bits, f_lo, f_hi)
    width = torch.clamp(width, max(1, sat_bits), max_width)
    return _LearnedCast.apply(x, frac_bits, width, mode, compute, out_dtype)
