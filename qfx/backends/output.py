"""Writing generated folders safely: refuse to replace what QFX did not make, and never leave half a folder."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["check_target", "read_marker", "staged_folder", "sweep_stale"]


STAGING_MARKER = ".qfx-staging"  # inside a staging folder: the id of the process writing it
_STALE_S = 7 * 24 * 3600


def check_target(out_dir: Path, marker: str, force: bool, what: str) -> bool:
    """Raise unless ``out_dir`` is absent, empty, or a folder QFX generated (it holds ``marker``), or ``force``.

    Returns whether writing ``out_dir`` replaces a folder with contents (pass it to :func:`staged_folder`, so that
    a folder another run creates meanwhile is not replaced).
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    for folder in out_dir.parents:  # the nearest existing ancestor must be a folder we can create in
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(f"cannot create {out_dir}: {folder} is a file, not a folder")
            break
    filled = out_dir.is_dir() and any(out_dir.iterdir())
    if filled and not (out_dir / marker).is_file() and not force:
        raise FileExistsError(f"{out_dir} exists and is not a {what}; pass force=True to replace it")
    return filled


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def sweep_stale(out_dir: Path) -> None:
    """Remove staging folders beside ``out_dir`` that QFX made and whose process is gone (killed with SIGKILL, a
    crash, a power cut); folders of live processes and anything QFX did not make are left alone."""
    for folder in out_dir.parent.glob(f".{out_dir.name}.*"):
        mark = folder / STAGING_MARKER
        with contextlib.suppress(OSError, ValueError):
            if not mark.is_file():
                continue
            pid = int(mark.read_text().split()[0])
            if not _alive(pid) or time.time() - mark.stat().st_mtime > _STALE_S:
                shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(out_dir: Path, replace: bool = True) -> Iterator[Path]:
    """A temporary folder beside ``out_dir`` to write into; on success it replaces ``out_dir``, on failure it is
    removed and ``out_dir`` is left as it was (parent folders created for it are removed again).

    With ``replace=False`` (``out_dir`` was absent or empty when the command checked it) a folder that another run
    filled meanwhile is not replaced: :class:`FileExistsError`, and this run's output is discarded.
    """
    parent = out_dir.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]  # deepest first
    staging = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(out_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
        (staging / STAGING_MARKER).write_text(f"{os.getpid()}\n")
        yield staging
        (staging / STAGING_MARKER).unlink()
        if replace and out_dir.exists():  # move the old folder aside first: a failure puts it back whole
            old = staging.with_name(staging.name + ".old")
            out_dir.rename(old)
            try:
                staging.rename(out_dir)
            except BaseException:
                old.rename(out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:  # atomic: fails when another run's folder (not empty) is there now
                staging.rename(out_dir)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise
                raise FileExistsError(
                    f"{out_dir} was written by another run meanwhile; left it as it is (this run's output discarded)"
                ) from None
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
