"""Build caches that key exactly what was built: sources are read once into a snapshot, the key is the hash of that
snapshot, and the tool compiles a private copy of it. A file edited while a build runs can therefore never get a
binary of one content stored under the key of another. Cache entries carry a manifest, so a damaged entry (a file
truncated or deleted) is detected and rebuilt instead of reported as a tool failure.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["MANIFEST", "Snapshot", "entry_ok", "private_build_root", "snapshot", "write_manifest"]

MANIFEST = "qfx_manifest.json"

#: Test hook: called with the build folder after the cache key is computed and before the tool starts.
before_build: Callable[[Path], None] | None = None


class Snapshot(dict):
    """File name -> contents, read once."""

    def write(self, folder: Path) -> list[Path]:
        """Write the snapshot into ``folder``; the written paths, in order."""
        out = []
        for name, data in self.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            out.append(path)
        return out


def snapshot(files: Iterable[Path]) -> Snapshot:
    """Read ``files`` once; names are the base names, made unique by a numbered folder when two collide."""
    snap = Snapshot()
    for i, f in enumerate(files):
        name = f.name if f.name not in snap else f"{i}/{f.name}"
        snap[name] = f.read_bytes()
    return snap


def write_manifest(folder: Path) -> None:
    """Record the size of every file of a finished build in ``folder``."""
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    (folder / MANIFEST).write_text(json.dumps(sizes))


def entry_ok(folder: Path) -> bool:
    """Whether a cache entry is whole: its manifest is readable and every file has its recorded size."""
    try:
        sizes = json.loads((folder / MANIFEST).read_text())
        return isinstance(sizes, dict) and all((folder / n).stat().st_size == s for n, s in sizes.items())
    except (OSError, ValueError, TypeError):
        return False


def private_build_root(root: Path) -> Path:
    """Where to build for a cache at ``root``: ``root`` itself, or a system temporary folder when ``root``'s path
    holds whitespace (make, and so Verilator's build, cannot handle such paths)."""
    if re.search(r"\s", str(root.resolve())):
        return Path(tempfile.gettempdir())
    return root


def discard(folder: Path) -> None:
    """Remove a damaged entry (another process may be doing the same)."""
    shutil.rmtree(folder, ignore_errors=True)
