"""Exact ``ap_fixed`` assignment on tensors: :func:`cast`, and its learnable-format sibling :func:`fixed_quantize`.

Both run the element-wise kernel of :mod:`qfx.kernel` (see there why it is exact) inside an autograd function that
supplies the straight-through gradients. NaN propagates (the hardware never sees it); +-Inf behaves as in the
Xilinx headers, as a value too large for any format whose low bits are all zero: saturating modes clamp,
AP_SAT_ZERO gives 0, the wrap modes give the code of 0 (with AP_WRAP's ``sat_bits`` forced as for any overflow).
"""

from __future__ import annotations

import functools
import math

import torch

from qfx import native
from qfx.format import FixedFormat, Overflow, Quant
from qfx.kernel import Mode, fixed_kernel, in_range, pow2_static, pow2_tensor, round_codes_

__all__ = ["cast", "codes", "fixed_quantize", "result_dtype"]

LN2 = math.log(2.0)

# (significand bits, smallest normal exponent, largest exponent) of the float dtypes cast accepts.
_FLOAT_LIMITS = {
    torch.float16: (11, -14, 15),
    torch.bfloat16: (8, -126, 127),
    torch.float32: (24, -126, 127),
    torch.float64: (53, -1022, 1023),
}

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
    for candidate in dict.fromkeys((dtype, torch.float32, torch.float64)):
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


# ------------------------------------------------------------------------------------------------ cast
class _Cast(torch.autograd.Function):
    """Fixed format; straight-through gradient, zero where a saturating mode changed the code's range."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, fmt: FixedFormat, out_dtype: torch.dtype) -> torch.Tensor:
        compute = torch.float64 if out_dtype is torch.float64 else torch.float32
        mode = Mode(fmt.signed, fmt.quant, fmt.overflow, fmt.sat_bits)
        ctx.in_dtype = x.dtype
        ctx.saturates = not fmt.overflow.wraps
        want_mask = ctx.saturates and ctx.needs_input_grad[0]
        xc = x.to(compute)
        if native.usable(xc):  # one fused pass
            values, inside = native.forward(
                xc.contiguous(), fmt.frac_bits, fmt.width, mode, (1, max(1, xc.numel())), compute,
                may_underflow=fmt.frac_bits < 0, want_mask=want_mask,
            )  # fmt: skip
        else:
            p = pow2_static(fmt.width, fmt.frac_bits, fmt.sat_bits)
            values, inside = fixed_kernel(xc, p, mode, may_underflow=fmt.frac_bits < 0, want_mask=want_mask)
        if want_mask:
            ctx.save_for_backward(inside)
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


def _channel_sums(sums: torch.Tensor, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """Per-channel sums (float64) as the gradient of a parameter of ``shape``: summed to a scalar if it is one."""
    if math.prod(shape) == 1:
        sums = sums.sum()
    return sums.to(dtype).reshape(shape)


def _learned_pow2(frac_bits: torch.Tensor, width: torch.Tensor, mode: Mode, compute: torch.dtype):
    return pow2_tensor(torch.round(width.detach()), torch.round(frac_bits.detach()), mode.sat_bits, compute)


def _layout(shape: torch.Size, *params: torch.Size) -> tuple[int, int] | None:
    """(channels, inner) when every parameter is a scalar or one channel vector along the same axis of ``shape``
    (element i then belongs to channel (i // inner) % channels); None for any other broadcast."""
    axis, channels = None, 1
    for p in params:
        lead = len(shape) - len(p)
        if lead < 0:
            return None
        for i, n in enumerate(p):
            if n == 1:
                continue
            if n != shape[lead + i] or axis not in (None, lead + i):
                return None
            axis, channels = lead + i, n
    if axis is None:
        return 1, max(1, math.prod(shape))
    return channels, math.prod(shape[axis + 1 :])


class _LearnedCast(torch.autograd.Function):
    """Cast with a tensor-valued binary point and width; LSQ-style gradients for both (see docs/concepts.md)."""

    @staticmethod
    def forward(ctx, x, frac_bits, width, mode: Mode, compute: torch.dtype, out_dtype: torch.dtype, may_underflow):
        ctx.mode, ctx.compute = mode, compute
        ctx.save_for_backward(x, frac_bits, width)
        ctx.shapes = (frac_bits.shape, width.shape)
        xc = x.to(compute)
        ctx.layout = _layout(x.shape, frac_bits.shape, width.shape) if native.usable(xc, frac_bits, width) else None
        if ctx.layout is not None:  # one fused pass
            native_out = out_dtype if out_dtype in (compute, torch.float32) else compute
            values, _ = native.forward(
                xc.contiguous(), frac_bits, width, mode, ctx.layout, native_out,
                may_underflow=may_underflow, want_mask=False,
            )  # fmt: skip
            return values.to(out_dtype)
        p = _learned_pow2(frac_bits, width, mode, compute)
        values, _ = fixed_kernel(xc, p, mode, may_underflow=may_underflow)
        return values.to(out_dtype)

    @staticmethod
    def backward(ctx, grad):
        x, frac_bits, width = ctx.saved_tensors
        mode: Mode = ctx.mode
        frac_shape, width_shape = ctx.shapes
        if ctx.layout is not None and native.usable(grad):
            xc = x.to(ctx.compute).contiguous()
            grad_x, sum_f, sum_w = native.backward(
                xc, grad.to(ctx.compute).contiguous(), frac_bits, width, mode, ctx.layout,
                want_grad_x=ctx.needs_input_grad[0],
            )  # fmt: skip
            grad_f = _channel_sums(sum_f, frac_shape, frac_bits.dtype) if ctx.needs_input_grad[1] else None
            grad_w = _channel_sums(sum_w, width_shape, width.dtype) if ctx.needs_input_grad[2] else None
            grad_x = grad_x.to(x.dtype) if grad_x is not None else None
            return grad_x, grad_f, grad_w, None, None, None, None
        p = _learned_pow2(frac_bits, width, mode, ctx.compute)
        xc = x.to(ctx.compute)
        grad = grad.to(xc.dtype)
        r = round_codes_(xc * p.scale, mode.quant)  # recomputed: cheaper than keeping it
        inside = in_range(r, mode, p)
        lo, hi = p.code_range(mode.signed)
        saturated = torch.clamp(r, lo, hi).mul_(p.inv_scale)  # the value itself wherever the code is in range
        # d value / d frac_bits: rounding error inside the range, loss of range outside it (LSQ, s = 2**-F).
        d_frac = torch.where(inside, LN2 * (xc - saturated), -LN2 * saturated)
        # d value / d width (frac_bits fixed): only the range grows.
        d_width = torch.where(inside, 0.0, LN2 * saturated)
        grad_x = grad if mode.overflow.wraps else grad * inside
        grad_f = _sum_to(grad * d_frac, frac_shape) if ctx.needs_input_grad[1] else None
        grad_w = _sum_to(grad * d_width, width_shape) if ctx.needs_input_grad[2] else None
        return grad_x.to(x.dtype), grad_f, grad_w, None, None, None, None


@functools.lru_cache(maxsize=1024)
def _learned_setup(signed, quant, overflow, sat_bits, max_width, f_lo, f_hi, dtype):
    """Validated mode, result dtype and compute dtype of a learned format: static, so worked out once (a QAT step
    calls this for every quantizer)."""
    mode = Mode(signed, Quant.from_name(quant), Overflow.from_name(overflow), sat_bits)
    FixedFormat(max_width, max_width - f_lo, signed, mode.quant, mode.overflow, sat_bits)  # validates the mode
    if max_width > MAX_CAST_WIDTH or max(abs(f_lo), abs(f_hi), abs(max_width - f_lo)) > MAX_CAST_FRAC_BITS:
        raise ValueError(f"learned formats need width <= {MAX_CAST_WIDTH} and |frac_bits| <= {MAX_CAST_FRAC_BITS}")
    out_dtype = _pick_dtype(dtype, max_width, f_lo, f_hi, f"formats of width <= {max_width}")
    return mode, out_dtype, torch.float64 if out_dtype is torch.float64 else torch.float32


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
    if not isinstance(width, torch.Tensor):
        width = torch.tensor(float(width), device=x.device)
    if max_width is None:
        max_width = int(torch.round(width.detach().max()).item())
    f_lo, f_hi = frac_bits_range
    setup = _learned_setup.__wrapped__ if torch.compiler.is_compiling() else _learned_setup  # dynamo: no cache
    mode, out_dtype, compute = setup(signed, quant, overflow, sat_bits, max_width, f_lo, f_hi, x.dtype)
    frac_bits = torch.clamp(frac_bits, f_lo, f_hi)
    width = torch.clamp(width, max(1, sat_bits), max_width)
    return _LearnedCast.apply(x, frac_bits, width, mode, compute, out_dtype, f_lo < 0)
