"""Exactness guards for the layers: accumulator formats (ap_fixed result-type rules) and the compute dtype.

A layer's multiply-accumulate is exact in floating point when every partial sum, whatever order the library adds
in, is a multiple of the accumulator's LSB that the dtype's significand holds: then no addition rounds. The
accumulator format below bounds every partial sum, so its width decides float32 (<= 24 bits) or float64 (<= 53)
(:func:`sum_dtype`).
TF32 and autocast would round products and sums: :func:`exact_arithmetic` turns both off around the computation.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

from qfx.format import FixedFormat

__all__ = ["accumulator_format", "add_format", "exact_arithmetic", "product_format", "sum_dtype"]

MAX_EXACT_WIDTH = 53


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


def accumulator_format(x: FixedFormat, w: FixedFormat, terms: int, bias: FixedFormat | None = None) -> FixedFormat:
    """Format that holds any sum of ``terms`` products ``x * w`` (plus ``bias``) exactly, and every partial sum.

    ``ceil(log2(terms))`` integer bits on top of the product type, as a balanced adder tree needs; a sequential
    accumulator in that type never overflows either, since every partial sum is bounded by the full one.
    """
    if terms < 1:
        raise ValueError(f"terms must be >= 1, not {terms}")
    p = product_format(x, w)
    grow = math.ceil(math.log2(terms)) if terms > 1 else 0
    acc = FixedFormat(p.width + grow, p.int_bits + grow, p.signed)
    return add_format(acc, bias) if bias is not None else acc


def sum_dtype(bits: int) -> torch.dtype:
    """Dtype in which sums of integers (scaled by powers of two) of at most ``bits`` bits are exact."""
    if bits > MAX_EXACT_WIDTH:
        raise ValueError(f"a {bits}-bit accumulator is wider than {MAX_EXACT_WIDTH} bits: no float holds it exactly")
    return torch.float32 if bits <= 24 else torch.float64


@contextlib.contextmanager
def exact_arithmetic(device_type: str) -> Iterator[None]:
    """No TF32 matmuls/convolutions and no autocast inside (restored on exit)."""
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    cudnn_tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.autocast(device_type=device_type, enabled=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
        torch.backends.cudnn.allow_tf32 = cudnn_tf32
