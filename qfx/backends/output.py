"""Writing generated folders safely: refuse to replace what QFX did not make, and never leave half a folder."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["check_target", "read_marker", "staged_folder"]


def check_target(out_dir: Path, marker: str, force: bool, what: str) -> None:
    """Raise unless ``out_dir`` is absent, empty, or a folder QFX generated (it holds ``marker``), or ``force``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    for folder in out_dir.parents:  # the nearest existing ancestor must be a folder we can create in
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(f"cannot create {out_dir}: {folder} is a file, not a folder")
            break
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / marker).is_file() and not force:
        raise FileExistsError(f"{out_dir} exists and is not a {what}; pass force=True to replace it")


@contextlib.contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    """A temporary folder beside ``out_dir`` to write into; on success it replaces ``out_dir``, on failure it is
    removed and ``out_dir`` is left as it was (parent folders created for it are removed again)."""
    parent = out_dir.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]  # deepest first
    staging = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
        yield staging
        if out_dir.exists():  # move the old folder aside first: a failure puts it back whole
            old = staging.with_name(staging.name + ".old")
            out_dir.rename(old)
            try:
                staging.rename(out_dir)
            except BaseException:
                old.rename(out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for folder in created:
            try:
                folder.rmdir()
            except OSError:  # not empty (someone else wrote there) or already gone
                break
        raise


def read_marker(path: Path, what: str, keys: tuple[str, ...] = ()) -> dict:
    """The metadata QFX wrote at ``path`` (JSON); one clear error when it is missing, unreadable or lacks ``keys``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent} is not a {what} (no {path.name})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable QFX metadata ({type(e).__name__}: {e})") from None
    missing = [k for k in keys if k not in meta] if isinstance(meta, dict) else ["an object"]
    if missing:
        raise ValueError(f"{path}: QFX metadata without {missing[0]!r}")
    return meta
