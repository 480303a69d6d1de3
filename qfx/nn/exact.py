"""Exactness guards for the layers: accumulator formats (ap_fixed result-type rules) and the compute dtype.

A layer's multiply-accumulate is exact in floating point when every partial sum, whatever order the library adds
in, is a multiple of the accumulator's LSB that the dtype's significand holds: then no addition rounds. The
accumulator format below bounds every partial sum, so its width decides float32 (<= 24 bits) or float64 (<= 53)
(:func:`sum_dtype`).
TF32 and autocast would round products and sums: :func:`exact_arithmetic` turns both off around the computation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from qfx.result_types import accumulator_format, add_format, product_format

__all__ = ["accumulator_format", "add_format", "exact_arithmetic", "product_format", "sum_dtype"]

MAX_EXACT_WIDTH = 53


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
