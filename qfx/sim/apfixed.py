"""Bit-exact reference for ``ap_fixed`` assignment: C++ compiled with g++ against the Xilinx headers.

The headers are the ones shipped inside the installed hls4ml package (never copied into this repository).
Executables are cached under ``$QFX_CACHE_DIR`` (default ``~/.cache/qfx``), keyed by a hash of everything that
goes into them, so a second run with the same formats compiles nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np

from qfx.format import FixedFormat

__all__ = [
    "DEFAULT_FLAGS",
    "CompileError",
    "cache_dir",
    "cast_sources",
    "compile_cached",
    "gxx",
    "headers_dir",
    "reference_cast",
    "reference_cast_rows",
    "stats",
]

#: g++ flags for the reference programs. Compiling the header's per-format template code dominates: for 2000
#: formats x 5000 values on 2 cores, -O0 took 41 s to compile + 8 s to run, -O1 105 s + 1 s (-Og is like -O1).
DEFAULT_FLAGS: tuple[str, ...] = ("-std=c++14", "-O0", "-w")

#: How often :func:`compile_cached` ran the compiler or found its result cached (tests read this).
stats: dict[str, int] = {"compiled": 0, "cached": 0}

_TAIL_CHARS = 4000
_STALE_S = 24 * 3600


class CompileError(RuntimeError):
    """g++ failed; the message ends with the tail of its stderr."""


def headers_dir() -> Path:
    """The ``ap_types`` folder of the installed hls4ml package, found without importing hls4ml."""
    spec = importlib.util.find_spec("hls4ml")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "templates" / "vivado" / "ap_types"
        if (path / "ap_fixed.h").is_file():
            return path
    raise RuntimeError("the ap_fixed headers come from the hls4ml package: pip install 'qfx[sim]'")


def gxx() -> str:
    """The C++ compiler: ``$CXX`` if set, else ``g++`` on PATH."""
    name = os.environ.get("CXX") or "g++"
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"C++ compiler {name!r} not found (set CXX or install g++) for the ap_fixed reference")
    return found


def cache_dir() -> Path:
    """Where compiled programs are kept: ``$QFX_CACHE_DIR`` or ``~/.cache/qfx``."""
    path = Path(os.environ.get("QFX_CACHE_DIR") or Path.home() / ".cache" / "qfx")
    path.mkdir(parents=True, exist_ok=True)
    return path


@cache
def _compiler_id(cxx: str) -> str:
    proc = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    return f"{os.path.realpath(cxx)}\n{proc.stdout}"


def _snapshot(path: str) -> dict[str, bytes]:
    """The files of a folder (relative name -> contents), read once: what gets hashed is what gets compiled."""
    root = Path(path)
    return {f.relative_to(root).as_posix(): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


def _snapshot_digest(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: Test hook: called with the build folder after the cache key is computed and before the compiler starts.
_before_compile: Callable[[Path], None] | None = None


def _tail(text: str) -> str:
    return text if len(text) <= _TAIL_CHARS else "..." + text[-_TAIL_CHARS:]


def _run_compiler(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CompileError(f"g++ failed (exit {proc.returncode}): {' '.join(cmd)}\n{_tail(proc.stderr)}")


def compile_cached(
    sources: Mapping[str, str],
    *,
    flags: Sequence[str] = DEFAULT_FLAGS,
    include_dirs: Sequence[Path | str] | None = None,
    ldflags: Sequence[str] = (),
    name: str = "prog",
    jobs: int | None = None,
) -> Path:
    """Compile and link ``sources`` (file name -> text) into an executable and return its cached path.

    Every ``*.cpp``/``*.cc`` file is one translation unit; the units compile in parallel on ``jobs`` processes
    (default ``os.cpu_count()``); other files (headers) are only written next to them. ``include_dirs``
    defaults to :func:`headers_dir`; ``ldflags`` go to the link step. The cache key covers the sources, flags,
    compiler version and the contents of the include folders; the executable appears atomically (built in a
    temporary folder, then renamed). Raises :class:`CompileError` with the tail of g++'s stderr on failure.
    """
    cxx = gxx()
    incs = [str(Path(d).resolve()) for d in (include_dirs if include_dirs is not None else [headers_dir()])]
    snapshots = [_snapshot(d) for d in incs]  # compiled from these copies, never from the folders themselves
    key = hashlib.sha256(
        json.dumps(
            {
                "sources": sorted(sources.items()),
                "flags": [*flags, "--link", *ldflags],
                "compiler": _compiler_id(cxx),
                "includes": [_snapshot_digest(s) for s in snapshots],
            }
        ).encode()
    ).hexdigest()
    root = cache_dir()
    exe = root / f"{name}-{key[:32]}"
    stamp = exe.with_name(exe.name + ".sha256")
    if exe.is_file() and stamp.is_file():
        with contextlib.suppress(OSError):
            if os.access(exe, os.X_OK) and stamp.read_text().strip() == _file_digest(exe):
                stats["cached"] += 1
                return exe
    # a damaged entry (truncated, no longer executable, no stamp) is rebuilt
    units = sorted(f for f in sources if f.endswith((".cpp", ".cc")))
    if not units:
        raise ValueError("compile_cached needs at least one .cpp/.cc translation unit")
    for stale in root.glob(f".{name}-build-*"):  # left by a killed process (a live build touches its folder)
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > _STALE_S:
                shutil.rmtree(stale, ignore_errors=True)
    build = Path(tempfile.mkdtemp(prefix=f".{name}-build-", dir=root))
    try:
        inc_flags = []
        for i, files in enumerate(snapshots):
            for rel, data in files.items():
                (build / f"inc{i}" / rel).parent.mkdir(parents=True, exist_ok=True)
                (build / f"inc{i}" / rel).write_bytes(data)
            inc_flags.append(f"-Iinc{i}")
        for fname, text in sources.items():
            (build / fname).parent.mkdir(parents=True, exist_ok=True)
            (build / fname).write_text(text)
        if _before_compile is not None:
            _before_compile(build)
        cmds = [[cxx, *flags, *inc_flags, "-c", u, "-o", f"{u}.o"] for u in units]
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            for fut in [pool.submit(_run_compiler, cmd, build) for cmd in cmds]:
                fut.result()
        _run_compiler([cxx, *flags, *[f"{u}.o" for u in units], "-o", "a.out", *ldflags], build)
        (build / "a.out.sha256").write_text(_file_digest(build / "a.out"))
        os.replace(build / "a.out", exe)
        os.replace(build / "a.out.sha256", stamp)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    stats["compiled"] += 1
    return exe


_UNIT_HEAD = """#include <ap_fixed.h>
#include <cstddef>
#include <cstdint>

template <class T>
static void qfx_cast(const double* in, std::uint64_t* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    T v = in[i];
    out[i] = v.bits_to_uint64();
  }
}
"""

_MAIN = """#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

typedef void (*qfx_fn)(const double*, std::uint64_t*, std::size_t);
%(decls)s
static const qfx_fn table[] = {%(table)s};

// usage: prog VALUES ROWS OUT FIRST LAST. ROWS holds int64 triples (function, offset, count): row r casts the
// doubles VALUES[offset : offset + count] with table[function]; rows FIRST..LAST-1 append their codes to OUT.
int main(int argc, char** argv) {
  if (argc != 6) return 2;
  long first = std::atol(argv[4]), last = std::atol(argv[5]);
  std::FILE* fv = std::fopen(argv[1], "rb");
  std::FILE* fr = std::fopen(argv[2], "rb");
  std::FILE* fo = std::fopen(argv[3], "wb");
  if (!fv || !fr || !fo) return 3;
  std::vector<std::int64_t> rows(3 * (last - first) + 1);
  if (std::fseek(fr, first * 24L, SEEK_SET) != 0) return 4;
  if (std::fread(rows.data(), 24, last - first, fr) != std::size_t(last - first)) return 4;
  std::vector<double> in;
  std::vector<std::uint64_t> out;
  for (long r = 0; r < last - first; ++r) {
    std::size_t n = rows[3 * r + 2];
    in.resize(n + 1);
    out.resize(n + 1);
    if (std::fseek(fv, rows[3 * r + 1] * 8L, SEEK_SET) != 0 || std::fread(in.data(), 8, n, fv) != n) return 4;
    table[rows[3 * r]](in.data(), out.data(), n);
    if (std::fwrite(out.data(), 8, n, fo) != n) return 5;
  }
  return std::fclose(fo) == 0 ? 0 : 6;
}
"""


def _cpp_type(fmt: FixedFormat) -> str:
    name = "ap_fixed" if fmt.signed else "ap_ufixed"
    return f"{name}<{fmt.width},{fmt.int_bits},{fmt.quant.cpp},{fmt.overflow.cpp},{fmt.sat_bits}>"


def cast_sources(formats: Sequence[FixedFormat], units: int) -> dict[str, str]:
    """C++ sources of a program casting doubles into each of ``formats`` (function ``k`` for format ``k``)."""
    units = max(1, min(units, len(formats)))
    # Formats sharing width and signedness share most instantiated code: keep them in the same unit.
    order = sorted(range(len(formats)), key=lambda k: (formats[k].width, formats[k].signed))
    bounds = np.linspace(0, len(formats), units + 1).astype(int)
    sources: dict[str, str] = {}
    for u in range(units):
        body = [_UNIT_HEAD]
        for k in order[bounds[u] : bounds[u + 1]]:
            body.append(
                f"void qfx_cast_{k}(const double* i, std::uint64_t* o, std::size_t n) "
                f"{{ qfx_cast<{_cpp_type(formats[k])} >(i, o, n); }}\n"
            )
        sources[f"cast{u}.cpp"] = "".join(body)
    decls = "".join(f"void qfx_cast_{k}(const double*, std::uint64_t*, std::size_t);\n" for k in range(len(formats)))
    table = ", ".join(f"qfx_cast_{k}" for k in range(len(formats)))
    sources["main.cpp"] = _MAIN % {"decls": decls, "table": table}
    return sources


def reference_cast(
    values: np.ndarray, formats: Sequence[FixedFormat], *, flags: Sequence[str] = DEFAULT_FLAGS
) -> np.ndarray:
    """Integer codes of ``T v = d;`` for every double ``d`` in ``values`` and every format ``T``.

    ``values`` is 1-D (the same doubles for every format) or 2-D with one row per format. Returns int64 codes of
    shape ``(len(formats), n)``, sign-extended for signed formats (value = code * 2**-frac_bits). Widths 1..63
    are supported; ±inf goes through the header like any other double, NaN raises ValueError.
    """
    formats = list(formats)
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim == 1:  # one copy of the values, read by every format
        unique = sorted(set(formats), key=_cpp_type)
        counts = np.full(len(unique), vals.size, dtype=np.int64)
        codes = _run_rows(unique, vals, np.zeros_like(counts), counts, flags).reshape(len(unique), vals.size)
        index = {fmt: k for k, fmt in enumerate(unique)}
        return codes[[index[f] for f in formats]]
    if vals.ndim != 2 or vals.shape[0] != len(formats):
        raise ValueError(f"values must be 1-D or have one row per format, not shape {vals.shape}")
    counts = np.full(len(formats), vals.shape[1], dtype=np.int64)
    return _run_rows(formats, vals.reshape(-1), np.cumsum(counts) - counts, counts, flags).reshape(vals.shape)


def reference_cast_rows(
    rows: Sequence[np.ndarray], formats: Sequence[FixedFormat], *, flags: Sequence[str] = DEFAULT_FLAGS
) -> list[np.ndarray]:
    """Like :func:`reference_cast`, with each format casting a 1-D array of doubles of its own (any length)."""
    formats = list(formats)
    arrays = [np.asarray(r, dtype=np.float64).reshape(-1) for r in rows]
    if len(arrays) != len(formats):
        raise ValueError(f"need one row of values per format: {len(arrays)} rows, {len(formats)} formats")
    counts = np.array([a.size for a in arrays], dtype=np.int64)
    flat = np.concatenate([np.zeros(0), *arrays])
    return np.split(_run_rows(formats, flat, np.cumsum(counts) - counts, counts, flags), np.cumsum(counts)[:-1])


def _run_rows(
    formats: list[FixedFormat], flat: np.ndarray, offsets: np.ndarray, counts: np.ndarray, flags: Sequence[str]
) -> np.ndarray:
    """Codes of row k (``flat[offsets[k]:][:counts[k]]`` cast to ``formats[k]``), concatenated."""
    for fmt in formats:
        if not isinstance(fmt, FixedFormat) or not 1 <= fmt.width <= 63:
            raise ValueError(f"reference_cast supports FixedFormat of width 1..63, not {fmt!r}")
    if np.isnan(flat).any():
        raise ValueError("NaN has no ap_fixed value (the header only warns); remove NaN from values")
    if not counts.sum():
        return np.zeros(0, dtype=np.int64)
    unique = sorted(set(formats), key=_cpp_type)  # canonical order: any permutation reuses the program
    index = {fmt: k for k, fmt in enumerate(unique)}
    table = np.stack([np.array([index[f] for f in formats], dtype=np.int64), offsets, counts], axis=1)
    jobs = os.cpu_count() or 1
    exe = compile_cached(cast_sources(unique, jobs), flags=flags, name="apfixed-cast")
    # One process per core, each running a contiguous slice of rows holding about the same number of values.
    cuts = np.searchsorted(np.cumsum(counts), np.linspace(0, counts.sum(), jobs + 1)[1:-1]).tolist()
    spans = [(lo, hi) for lo, hi in itertools.pairwise([0, *cuts, len(formats)]) if hi > lo]
    with tempfile.TemporaryDirectory(prefix="qfx-cast-") as tmp:
        np.ascontiguousarray(flat, dtype=np.float64).tofile(Path(tmp) / "values.bin")
        table.tofile(Path(tmp) / "rows.bin")
        procs = []
        for j, (lo, hi) in enumerate(spans):
            with open(Path(tmp) / f"err{j}.txt", "wb") as err:
                cmd = [str(exe), "values.bin", "rows.bin", f"out{j}.bin", str(lo), str(hi)]
                procs.append(subprocess.Popen(cmd, cwd=tmp, stderr=err))
        for j, rc in enumerate([proc.wait() for proc in procs]):
            if rc != 0:
                err = (Path(tmp) / f"err{j}.txt").read_text(errors="replace")
                raise RuntimeError(f"reference program failed (exit {rc}): {procs[j].args}\n{_tail(err)}")
        codes = np.concatenate([np.fromfile(Path(tmp) / f"out{j}.bin", dtype=np.int64) for j in range(len(spans))])
    widths = np.repeat(np.array([f.width for f in formats], dtype=np.int64), counts)
    negative = np.repeat(np.array([f.signed for f in formats], dtype=bool), counts) & ((codes >> (widths - 1)) & 1 == 1)
    codes &= (np.int64(1) << widths) - 1
    codes -= np.where(negative, np.int64(1) << widths, 0)
    return codes
