"""ap_fixed result types: the exact format of a product, a sum, an accumulation (no torch here).

These are the rules of the Xilinx headers, used by the layers (to know their accumulator), by the IR (to give
every intermediate tensor a format) and by the backends (to declare the C++ and Verilog types).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from qfx.format import FixedFormat

__all__ = ["accumulator_format", "add_format", "grow_bits", "product_format", "union_format"]


def product_format(a: FixedFormat, b: FixedFormat) -> FixedFormat:
    """Type of ``a * b`` in ap_fixed: ``<W1 + W2, I1 + I2>``, signed if either is."""
    return FixedFormat(a.width + b.width, a.int_bits + b.int_bits, a.signed or b.signed)


def add_format(a: FixedFormat, b: FixedFormat) -> FixedFormat:
    """Type of ``a + b`` in ap_fixed: the finer LSB, one more integer bit than the wider operand (sign-adjusted)."""
    signed = a.signed or b.signed
    frac = max(a.frac_bits, b.frac_bits)
    # An unsigned operand needs one more integer bit to sit in a signed result.
    int_a = a.int_bits + (signed and not a.signed)
    int_b = b.int_bits + (signed and not b.signed)
    int_bits = max(int_a, int_b) + 1
    return FixedFormat(int_bits + frac, int_bits, signed)


def sub_format(a: FixedFormat, b: FixedFormat) -> FixedFormat:
    """Type of ``a - b`` in ap_fixed: always signed, the finer LSB, one more integer bit than the wider operand (an
    unsigned operand facing a signed one counts one more)."""
    frac = max(a.frac_bits, b.frac_bits)
    int_bits = max(a.int_bits + (b.signed and not a.signed), b.int_bits + (a.signed and not b.signed)) + 1
    return FixedFormat(int_bits + frac, int_bits, True)


def grow_bits(terms: int) -> int:
    """Integer bits a sum of ``terms`` values needs on top of one value's: ``ceil(log2(terms))``."""
    if terms < 1:
        raise ValueError(f"terms must be >= 1, not {terms}")
    return math.ceil(math.log2(terms)) if terms > 1 else 0


def accumulator_format(x: FixedFormat, w: FixedFormat, terms: int, bias: FixedFormat | None = None) -> FixedFormat:
    """Format that holds any sum of ``terms`` products ``x * w`` (plus ``bias``) exactly, and every partial sum.

    ``ceil(log2(terms))`` integer bits on top of the product type, as a balanced adder tree needs; a sequential
    accumulator in that type never overflows either, since every partial sum is bounded by the full one.
    """
    p = product_format(x, w)
    grow = grow_bits(terms)
    acc = FixedFormat(p.width + grow, p.int_bits + grow, p.signed)
    return add_format(acc, bias) if bias is not None else acc


def union_format(formats: Iterable[FixedFormat]) -> FixedFormat:
    """The narrowest format holding every value of each of ``formats`` exactly (modes: the defaults).

    Used for per-channel constants: one C++ type for the whole array, no value changed.
    """
    formats = list(formats)
    if not formats:
        raise ValueError("union_format needs at least one format")
    signed = any(f.signed for f in formats)
    frac = max(f.frac_bits for f in formats)
    int_bits = max(f.int_bits + (signed and not f.signed) for f in formats)
    return FixedFormat(int_bits + frac, int_bits, signed)  # >= any one width, so >= 1
