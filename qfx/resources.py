"""Where QFX's data files are: ``hls/`` (templates, header library, Verilog library) and ``boards/`` (board TOMLs).

In an installed wheel they are package data under ``qfx/_data/`` (``pyproject.toml`` maps the top-level folders
there); in a source checkout or an editable install they are read from the top of the repository.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_dir"]


def data_dir(name: str) -> Path:
    """The folder ``hls`` or ``boards``: the installed package's copy, else the source checkout's."""
    if name not in ("hls", "boards"):
        raise ValueError(f"no QFX data folder {name!r}")
    here = Path(__file__).resolve().parent
    packaged = here / "_data" / name
    return packaged if packaged.is_dir() else here.parent / name
