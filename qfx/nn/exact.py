"""Exactness guards for the layers: accumulator formats (ap_fixed result-type rules) and the compute dtype.

A layer's multiply-accumulate is exact in floating point when every partial sum, whatever order the library adds
in, is a multiple of the accumulator's LSB that the dtype's significand holds: then no addition rounds. The
accumulator format below bounds every partial sum, so its width decides float32 (<= 24 bits) or float64 (<= 53)
(:func:`sum_dtype`).
TF32 (CUDA), bf16/TF32 (oneDNN on CPU) and autocast would round products and sums: :func:`exact_arithmetic` turns
them off around the computation, through both generations of torch's switches (``allow_tf32`` and, from torch 2.9,
``fp32_precision``), whichever a script used to turn them on.
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


def _fp32_precision_switches() -> list[object]:
    """torch's per-backend, per-op ``fp32_precision`` switches (torch >= 2.9; none before)."""
    b = torch.backends
    candidates = [
        getattr(b.cuda, "matmul", None),
        getattr(b.cudnn, "conv", None),
        getattr(b.cudnn, "rnn", None),
        getattr(getattr(b, "mkldnn", None), "matmul", None),
        getattr(getattr(b, "mkldnn", None), "conv", None),
    ]
    return [s for s in candidates if s is not None and hasattr(s, "fp32_precision")]


def _read_or_none(read):
    """A legacy switch's value, or None where torch refuses to read it (a script mixed the two APIs)."""
    try:
        return read()
    except RuntimeError:
        return None


@contextlib.contextmanager
def exact_arithmetic(device_type: str) -> Iterator[None]:
    """No TF32 or bf16 matmuls/convolutions and no autocast inside; every switch is restored on exit.

    From torch 2.9 each backend and op has its own ``fp32_precision`` (cuDNN convolutions default to "tf32", and
    ``torch.backends.fp32_precision`` reaches the ops left at "none"), and the legacy ``allow_tf32`` flags are
    views torch checks against them: reading one raises once a script set TF32 through the new API only. So the
    legacy flags are read only where readable, both generations are set to "ieee" / False together (torch then
    finds them agreeing), and the exact previous values are put back.
    """
    switches = _fp32_precision_switches()
    saved = [s.fp32_precision for s in switches]
    matmul = _read_or_none(torch.get_float32_matmul_precision)
    cudnn_tf32 = _read_or_none(lambda: torch.backends.cudnn.allow_tf32)
    torch.set_float32_matmul_precision("highest")  # = legacy matmul allow_tf32 False
    torch.backends.cudnn.allow_tf32 = False
    for s in switches:
        s.fp32_precision = "ieee"
    try:
        with torch.autocast(device_type=device_type, enabled=False):
            yield
    finally:
        # legacy first (its setters also write some fp32_precision switches), then the switches' own values
        torch.set_float32_matmul_precision(matmul or "highest")  # also restores legacy matmul allow_tf32
        torch.backends.cudnn.allow_tf32 = True if cudnn_tf32 is None else cudnn_tf32
        for s, value in zip(switches, saved, strict=True):
            s.fp32_precision = value
