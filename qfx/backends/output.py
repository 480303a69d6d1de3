"""Writing generated folders safely: refuse to replace what QFX did not make, and never leave half a folder."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["check_target", "staged_folder"]


def check_target(out_dir: Path, marker: str, force: bool, what: str) -> None:
    """Raise unless ``out_dir`` is absent, empty, or a folder QFX generated (it holds ``marker``), or ``force``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / marker).is_file() and not force:
        raise FileExistsError(f"{out_dir} exists and is not a {what}; pass force=True to replace it")


@contextlib.contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    """A temporary folder beside ``out_dir`` to write into; on success it replaces ``out_dir``, on failure it is
    removed and ``out_dir`` is left as it was."""
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    try:
        yield staging
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
