"""K-hot (multiplier-free) weights: fixed-point values with at most K nonzero signed power-of-two digits.

The integer code of a K-hot value is ``c = sum_i s_i * 2**e_i`` with ``s_i`` in {-1, +1} and at most K terms, so an
FPGA computes ``w * x`` as K shifts and K - 1 adds instead of a multiplication. The non-adjacent form (NAF, the
canonical signed digit form) of ``c`` is unique and has the minimal number of nonzero digits, so "c is K-hot" means
"the NAF of c has at most K nonzero digits".

* :func:`naf_digits` gives the NAF of integer codes as (shifts, signs) slots, most significant first;
* :func:`khot_codes` enumerates the K-hot codes of a format (cached);
* :func:`project_khot` moves weights to the nearest K-hot value, with a straight-through gradient;
* :func:`khot_digits` gives the shift-and-add recipe of K-hot values, what the HLS/RTL backends emit.
"""

from __future__ import annotations

import functools

import torch

from qfx.format import FixedFormat
from qfx.functional import result_dtype
from qfx.kernel import exp2_exact

__all__ = ["khot_codes", "khot_digits", "naf_digits", "project_khot", "project_khot_learned"]

#: Widest format :func:`khot_codes` enumerates (codes and their sums stay far inside int64).
MAX_KHOT_WIDTH = 32
#: :func:`naf_digits` needs ``|code| < 2**62`` so that ``3 * |code| / 2`` fits in int64.
_NAF_LIMIT = 1 << 62


# ------------------------------------------------------------------------------------------------ NAF
def _naf_masks(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Bit masks (plus digits, minus digits) of the NAF of each code, and the number of bit positions to scan.

    For x >= 0 the NAF is ``x = p - m`` with ``h = x >> 1``, ``t = x + h``, ``p = t & (h ^ t)``, ``m = h & (h ^ t)``
    (the digits of ``3x/2`` minus those of ``x/2``); a negative code takes the NAF of ``|c|`` with the signs swapped.
    """
    codes = codes.to(torch.int64)
    mag = codes.abs()
    if mag.numel() and (bool((mag >= _NAF_LIMIT).any()) or bool((mag < 0).any())):
        bad = codes.flatten()[((mag >= _NAF_LIMIT) | (mag < 0)).flatten()][0].item()
        raise ValueError(f"naf_digits needs |code| < 2**62, not {bad}")
    half = mag >> 1
    three_half = mag + half
    carry = half ^ three_half
    plus, minus = three_half & carry, half & carry
    neg = codes < 0
    plus, minus = torch.where(neg, minus, plus), torch.where(neg, plus, minus)
    bits = int(mag.max().item()).bit_length() + 1 if mag.numel() else 0
    return plus, minus, bits


def _naf(codes: torch.Tensor, max_digits: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(shifts, signs, digit counts) with K = max_digits slots (or the largest count); slots beyond K are dropped."""
    plus, minus, bits = _naf_masks(codes)
    nonzero = plus | minus
    count = torch.zeros_like(plus)
    for b in range(bits):  # a loop over bit positions, never over elements
        count += (nonzero >> b) & 1
    k = max_digits if max_digits is not None else (int(count.max().item()) if count.numel() else 0)
    flat_p, flat_m, flat_nz = plus.reshape(-1), minus.reshape(-1), nonzero.reshape(-1)
    shifts = torch.zeros(flat_p.numel(), k + 1, dtype=torch.int64, device=plus.device)
    signs = torch.zeros(flat_p.numel(), k + 1, dtype=torch.int8, device=plus.device)
    slot = torch.zeros(flat_p.numel(), dtype=torch.int64, device=plus.device)
    for b in range(bits - 1, -1, -1):  # most significant digit first
        here = ((flat_nz >> b) & 1).bool()
        index = torch.where(here, slot.clamp(max=k), k).unsqueeze(1)  # column k collects the unused writes
        digit = (((flat_p >> b) & 1) - ((flat_m >> b) & 1)).to(torch.int8)
        shifts.scatter_(1, index, torch.full_like(index, b))
        signs.scatter_(1, index, digit.unsqueeze(1))
        slot += here
    shape = (*codes.shape, k)
    shifts, signs = shifts[:, :k].reshape(shape), signs[:, :k].reshape(shape)
    return torch.where(signs != 0, shifts, 0), signs, count


def naf_digits(codes: torch.Tensor, max_digits: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-adjacent form of integer codes: ``(shifts, signs)`` of shape ``codes.shape + (K,)``.

    ``shifts`` (int64) is the bit position of each digit (LSB = 0), ``signs`` (int8) is -1/+1, or 0 for an unused
    slot (whose shift is 0); digits are ordered from the most significant. ``sum(signs * 2**shifts) == codes``;
    no two nonzero digits are adjacent and their number is minimal. K is ``max_digits``, or the largest digit
    count present; a code that needs more than ``max_digits`` digits raises ``ValueError``.
    """
    if codes.is_floating_point() or codes.is_complex() or codes.dtype is torch.bool:
        raise TypeError(f"naf_digits needs an integer tensor, not {codes.dtype}")
    if max_digits is not None and max_digits < 0:
        raise ValueError(f"max_digits must be >= 0, not {max_digits}")
    shifts, signs, count = _naf(codes, max_digits)
    if max_digits is not None and count.numel() and bool((count > max_digits).any()):
        i = int(torch.nonzero((count > max_digits).flatten())[0].item())
        code, n = codes.flatten()[i].item(), count.flatten()[i].item()
        raise ValueError(f"code {code} needs {n} nonzero NAF digits, more than max_digits={max_digits}")
    return shifts, signs


# ------------------------------------------------------------------------------------------------ allowed codes
@functools.lru_cache(maxsize=64)
def _khot_table(width: int, signed: bool, k: int) -> torch.Tensor:
    """Sorted K-hot codes of a width/signedness (CPU, int64). Shared: callers must not modify it."""
    lo = -(1 << (width - 1)) if signed else 0
    hi = (1 << (width - 1)) - 1 if signed else (1 << width) - 1
    if k >= (width + 2) // 2:  # at most ceil((W+1)/2) non-adjacent digits fit in positions 0..W: every code
        return torch.arange(lo, hi + 1, dtype=torch.int64)
    # Grow NAFs from the top digit down: each new digit sits at least two positions below the lowest one so
    # far, so every NAF with <= k digits is generated exactly once (the NAF is unique) and nothing needs dedup.
    powers = 1 << torch.arange(width + 1, dtype=torch.int64)
    exps = torch.arange(width + 1, dtype=torch.int64)
    level_codes = torch.cat([powers, -powers])
    level_low = torch.cat([exps, exps])  # position of the lowest digit of each code
    found = [torch.zeros(1, dtype=torch.int64), level_codes]
    for _ in range(k - 1):
        ok = exps.unsqueeze(0) <= level_low.unsqueeze(1) - 2  # (codes, positions) where a new digit may go
        row, pos = torch.nonzero(ok, as_tuple=True)
        if row.numel() == 0:
            break
        base = level_codes[row]
        level_codes = torch.cat([base + powers[pos], base - powers[pos]])
        level_low = torch.cat([pos, pos])
        found.append(level_codes)
    every = torch.cat(found)
    return torch.sort(every[(every >= lo) & (every <= hi)]).values


@functools.lru_cache(maxsize=64)
def _cached_values(width: int, signed: bool, k: int, frac_bits: int, dtype: torch.dtype, device: torch.device):
    return (_khot_table(width, signed, k).to(torch.float64) * 2.0**-frac_bits).to(dtype=dtype, device=device)


# A plain function (dynamo ignores the marker on an lru_cache wrapper): under torch.compile the table is computed
# eagerly and baked into the graph as a constant instead of tracing the data-dependent enumeration.
@torch.compiler.assume_constant_result
def _value_table(width: int, signed: bool, k: int, frac_bits: int, dtype: torch.dtype, device: torch.device):
    """The K-hot values (codes times the LSB, exact in ``dtype``) on ``device``, cached. Shared: do not modify."""
    return _cached_values(width, signed, k, frac_bits, dtype, device)


def _check_k(fmt: FixedFormat, k: int) -> None:
    if not isinstance(fmt, FixedFormat):
        raise TypeError(f"fmt must be a FixedFormat, not {type(fmt).__name__}")
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"k must be an integer, not {k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    if fmt.width > MAX_KHOT_WIDTH:
        raise ValueError(f"K-hot formats need width <= {MAX_KHOT_WIDTH}, not {fmt.width} in {fmt}")


def khot_codes(fmt: FixedFormat, k: int) -> torch.Tensor:
    """Every code of ``fmt`` (sorted int64, in ``[min_code, max_code]``) whose NAF has at most ``k`` nonzero digits.

    Built once per (width, signed, k) and cached; the caller gets a copy. Width <= 32.
    """
    _check_k(fmt, k)
    return _khot_table(fmt.width, fmt.signed, k).clone()


# ------------------------------------------------------------------------------------------------ projection
class _ProjectKHot(torch.autograd.Function):
    """Nearest allowed value (forward); straight-through gradient inside ``[lo, hi]`` (backward)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, table: torch.Tensor, lo: float, hi: float, out_dtype: torch.dtype):
        xc = x.to(table.dtype)
        idx = torch.searchsorted(table, xc)  # first allowed value >= x
        above = table[idx.clamp(max=table.numel() - 1)]
        below = table[(idx - 1).clamp(min=0)]
        # 0 is always allowed, so below, x and above share a sign: both distances are exact (Sterbenz, or a
        # multiple of ulp(x) no larger than |x|) or, when rounded, far from a tie; see docs/concepts.md.
        d_below, d_above = xc - below, above - xc
        take_above = (d_above < d_below) | ((d_above == d_below) & (above <= 0))  # tie: smaller magnitude
        y = torch.where(take_above, above, below)
        y = torch.where(torch.isnan(xc), xc, y)
        ctx.save_for_backward((x >= lo) & (x <= hi))
        ctx.in_dtype = x.dtype
        return y.to(out_dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return (grad * inside).to(ctx.in_dtype), None, None, None, None


def project_khot(w: torch.Tensor, fmt: FixedFormat, k: int) -> torch.Tensor:
    """The nearest value of ``fmt`` whose code has at most ``k`` nonzero NAF digits, element-wise.

    Values beyond the allowed range saturate to its ends; a tie between two allowed values goes to the one of
    smaller magnitude (toward zero, the cheaper and sparser weight). NaN stays NaN. The result is exact, in
    ``qfx.result_dtype(fmt, w.dtype)``, on ``w``'s device. Gradient: identity inside ``[fmt.min, fmt.max]``,
    zero outside (straight-through). Works under ``torch.compile(fullgraph=True)``.
    """
    _check_k(fmt, k)
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"project_khot needs a torch.Tensor, not {type(w).__name__}")
    out_dtype = result_dtype(fmt, w.dtype)
    compute = torch.float64 if out_dtype is torch.float64 else torch.float32
    table = _value_table(fmt.width, fmt.signed, k, fmt.frac_bits, compute, w.device)
    return _ProjectKHot.apply(w, table, fmt.min, fmt.max, out_dtype)


@functools.lru_cache(maxsize=64)
def _cached_codes(width: int, signed: bool, k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return _khot_table(width, signed, k).to(dtype=dtype, device=device)


@torch.compiler.assume_constant_result
def _code_table(width: int, signed: bool, k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The K-hot codes as floats on ``device`` (exact: width <= 24 in float32), cached. Shared: do not modify."""
    return _cached_codes(width, signed, k, dtype, device)


def project_khot_learned(
    w: torch.Tensor, frac_bits: torch.Tensor, fmt: FixedFormat, k: int, out_dtype: torch.dtype
) -> torch.Tensor:
    """:func:`project_khot` into the width and signedness of ``fmt`` with the binary point ``frac_bits`` (a 0-dim
    tensor, rounded here), in ``out_dtype`` (which must hold the values): the table is scaled on the device, so a
    learned binary point needs no host round trip."""
    _check_k(fmt, k)
    compute = torch.float64 if out_dtype is torch.float64 else torch.float32
    lsb = exp2_exact(-torch.round(frac_bits.detach())).to(compute)
    table = _code_table(fmt.width, fmt.signed, k, compute, w.device) * lsb  # exact: codes times a power of two
    return _ProjectKHot.apply(w, table, fmt.min_code * lsb, fmt.max_code * lsb, out_dtype)


# ------------------------------------------------------------------------------------------------ backend view
def khot_digits(values: torch.Tensor, fmt: FixedFormat, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift-and-add recipe of K-hot values: ``(shifts, signs)`` of shape ``values.shape + (k,)``.

    ``shifts`` (int64) are powers of two of the value (NAF bit position minus ``fmt.frac_bits``) and ``signs``
    (int8) are -1/+1 or 0 for an unused slot (shift 0), most significant first, so that
    ``values == sum(signs * 2.0**shifts)`` exactly. A value off the grid of ``fmt`` (not a multiple of its LSB,
    outside its range, NaN) or with more than ``k`` digits raises ``ValueError`` naming the first one.
    """
    _check_k(fmt, k)
    x = values.detach().to(torch.float64)
    scaled = x * 2.0**fmt.frac_bits
    off = ~((scaled == torch.round(scaled)) & (scaled >= fmt.min_code) & (scaled <= fmt.max_code))
    if off.any():
        bad = x.flatten()[off.flatten()][0].item()
        raise ValueError(f"value {bad!r} is not a value of {fmt}")
    shifts, signs, count = _naf(scaled.to(torch.int64), k)
    if count.numel() and bool((count > k).any()):
        i = int(torch.nonzero((count > k).flatten())[0].item())
        bad, n = x.flatten()[i].item(), count.flatten()[i].item()
        raise ValueError(f"value {bad!r} of {fmt} needs {n} nonzero digits, more than k={k}")
    return torch.where(signs != 0, shifts - fmt.frac_bits, 0), signs
