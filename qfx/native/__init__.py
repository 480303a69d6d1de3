"""The fused CPU cast kernel (``cast.cpp``): built with the system C++ compiler at first use, loaded with ctypes.

:mod:`qfx.functional` runs a cast through it when the tensor is on the CPU, in float32 or float64, and not being
traced by ``torch.compile`` (which fuses the tensor-op kernel of :mod:`qfx.kernel` itself); everything else runs
the tensor-op kernel, which is also the fallback when no compiler is found or the build fails. Both compute the
same operations in the same type, so the results are the same bits. ``QFX_NATIVE=0`` turns the native kernel off;
:func:`enabled` does so for a block of code (the tests run the exactness oracle both ways).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

__all__ = ["available", "backward", "enabled", "forward", "library"]

_SOURCE = Path(__file__).with_name("cast.cpp")
_DTYPES = {torch.float32: 0, torch.float64: 1}
_QUANT = ["AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV"]
_OVERFLOW = ["AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM", "AP_WRAP", "AP_WRAP_SM"]

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_failed: str | None = None
_switch = {"on": os.environ.get("QFX_NATIVE", "1") not in ("0", "off", "false")}


def _flags() -> tuple[str, ...]:
    # -fopenmp-simd: only the vectorization pragmas (no OpenMP runtime); -ffp-contract=off: no fused multiply-add
    flags = ["-std=c++17", "-O3", "-fPIC", "-ffp-contract=off", "-fno-fast-math", "-fopenmp-simd", "-w"]
    flags.insert(5, "-fno-trapping-math")  # vectorizes floor/ceil and the selects; no value changes
    if platform.machine() in ("x86_64", "AMD64"):
        try:
            cpu = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            cpu = []
        # floor/ceil/round as vector instructions; the cache key holds the flags (AVX2 does not imply FMA)
        if "avx2" in cpu:
            flags.append("-mavx2")
        elif "sse4_1" in cpu:
            flags.append("-msse4.1")
    return tuple(flags)


def library() -> ctypes.CDLL | None:
    """The loaded kernel library, building it on first use; None where it cannot be built (a warning says why)."""
    global _lib, _failed
    if _lib is not None or _failed is not None:
        return _lib
    with _lock:
        if _lib is None and _failed is None:
            try:
                from qfx.sim.apfixed import compile_cached

                path = compile_cached(
                    {"cast.cpp": _SOURCE.read_text()}, flags=_flags(), include_dirs=[],
                    ldflags=["-shared", "-pthread"], name="qfx-cast-kernel",
                )  # fmt: skip
                lib = ctypes.CDLL(str(path))
                _declare(lib)
                if lib.qfx_cast_abi_version() != 2:
                    raise RuntimeError("unexpected ABI version")
                _lib = lib
            except Exception as e:  # no compiler, failed build: the tensor-op kernel does the work
                _failed = f"{type(e).__name__}: {e}"
                warnings.warn(
                    f"qfx: fused CPU cast kernel unavailable, tensor ops instead ({_failed[:300]})", stacklevel=2
                )
    return _lib


def _declare(lib: ctypes.CDLL) -> None:
    p, i, i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
    lib.qfx_cast_forward.argtypes = [p, i, p, i, p, i64, p, p, i, i64, i64, i64, i64, i, i, i, i, i, i]
    lib.qfx_cast_forward.restype = i
    lib.qfx_cast_backward.argtypes = [p, p, p, i, p, p, i64, p, p, i, i64, i64, i64, i64, i, i, i, i, i]
    lib.qfx_cast_backward.restype = i
    lib.qfx_cast_abi_version.restype = i


def available() -> bool:
    """Whether the native kernel is switched on and built."""
    return _switch["on"] and library() is not None


@contextlib.contextmanager
def enabled(on: bool) -> Iterator[None]:
    """Use (True) or bypass (False) the native kernel inside the block."""
    before = _switch["on"]
    _switch["on"] = on
    try:
        yield
    finally:
        _switch["on"] = before


def usable(*tensors: torch.Tensor) -> bool:
    """Whether a cast of these tensors can run natively: CPU, float32/float64, eager, switched on and built."""
    if not _switch["on"] or torch.compiler.is_compiling():
        return False
    for t in tensors:
        if t.device.type != "cpu" or t.dtype not in _DTYPES:
            return False
    return library() is not None


Number = float | torch.Tensor


def _params(frac: Number, width: Number) -> tuple:
    """(frac pointer, width pointer, dtype code, frac count, width count, objects to keep alive): the kernel reads
    the values in place and rounds them (Python numbers for a fixed format, parameter tensors for learned ones)."""
    if not isinstance(frac, torch.Tensor) and not isinstance(width, torch.Tensor):
        f, w = (ctypes.c_double * 1)(float(frac)), (ctypes.c_double * 1)(float(width))
        return f, w, 1, 1, 1, (f, w)
    f, w = (torch.as_tensor(t).detach() for t in (frac, width))
    if f.dtype != w.dtype or f.dtype not in _DTYPES or not (f.is_contiguous() and w.is_contiguous()):
        f, w = f.to(torch.float64).contiguous(), w.to(torch.float64).contiguous()
    return f.data_ptr(), w.data_ptr(), _DTYPES[f.dtype], f.numel(), w.numel(), (f, w)


def forward(
    x: torch.Tensor, frac: Number, width: Number, mode, layout: tuple[int, int],
    out_dtype: torch.dtype, *, may_underflow: bool, want_mask: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
    """Cast ``x`` (contiguous, float32/float64: the compute dtype) in one pass. ``layout`` is (channels, inner):
    element i belongs to channel (i // inner) % channels. Returns the values in ``out_dtype`` and the mask."""
    channels, inner = layout
    f, w, pdt, nf, nw, _keep = _params(frac, width)
    out = torch.empty(x.shape, dtype=out_dtype)
    inside = torch.empty(x.shape, dtype=torch.bool) if want_mask else None
    rc = _lib.qfx_cast_forward(
        x.data_ptr(), _DTYPES[x.dtype], out.data_ptr(), _DTYPES[out_dtype],
        inside.data_ptr() if inside is not None else None, x.numel(), f, w, pdt, nf, nw, channels, inner,
        int(mode.signed), _QUANT.index(mode.quant.cpp), _OVERFLOW.index(mode.overflow.cpp), mode.sat_bits,
        int(may_underflow), torch.get_num_threads(),
    )  # fmt: skip
    if rc != 0:
        raise RuntimeError(f"qfx_cast_forward: unsupported dtypes {x.dtype} -> {out_dtype}")
    return out, inside


def backward(
    x: torch.Tensor, grad: torch.Tensor, frac: Number, width: Number, mode, layout: tuple[int, int],
    *, want_grad_x: bool,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Learned formats' backward in one pass: (grad_x or None, per-channel sums for frac_bits and for width)."""
    channels, inner = layout
    f, w, pdt, nf, nw, _keep = _params(frac, width)
    grad_x = torch.empty_like(x) if want_grad_x else None
    sums = torch.empty(2, channels, dtype=torch.float64)
    rc = _lib.qfx_cast_backward(
        x.data_ptr(), grad.data_ptr(), grad_x.data_ptr() if grad_x is not None else None, _DTYPES[x.dtype],
        sums[0].data_ptr(), sums[1].data_ptr(), x.numel(), f, w, pdt, nf, nw, channels, inner,
        int(mode.signed), _QUANT.index(mode.quant.cpp), _OVERFLOW.index(mode.overflow.cpp), mode.sat_bits,
        torch.get_num_threads(),
    )  # fmt: skip
    if rc != 0:
        raise RuntimeError(f"qfx_cast_backward: unsupported dtype {x.dtype}")
    return grad_x, sums[0], sums[1]
