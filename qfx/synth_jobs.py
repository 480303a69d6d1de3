"""Split a Verilog design into per-module synthesis jobs, so that Yosys runs on each unique module once, in parallel.

A *job* is one non-parameterized module (the top, and every plain module under it, such as a streaming unit or a
layer) synthesized on its own: its text, the parameterized modules it instantiates (``qfx_cast``, ``qfx_fifo``,
synthesized with it since their parameters come from it), the ``$readmemh`` images they read, and a black-box stub
(ports only) for each plain module it instantiates. Without flattening Yosys optimizes nothing across module
boundaries, so the cells of a module synthesized alone are the cells it has in the whole design; the design's
counts are then combined by the instance tree (:func:`qfx.synth._totals`: a module instantiated n times counts n
times). A job's cache key is its own files (the module, its parameterized submodules, the stubs, the images), the
family and the script version: a design that changes one layer synthesizes that layer again, nothing else.

A design this splitter cannot read safely (preprocessor macros, includes, conditional code) is one whole job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Job", "split"]

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
