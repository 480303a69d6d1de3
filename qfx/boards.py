"""FPGA board descriptions: part number, default clock and resource totals, read from one TOML file per board.

The HLS backend takes the part and clock from here, Yosys synthesis the ``yosys_family``, and the synthesis report the
resource totals (for utilization percentages). See ``docs/boards.md`` for the file format.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: same API from the tomli backport
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["Board", "BoardError", "Resources", "boards_dir", "list_boards", "load_board"]

YOSYS_FAMILIES = ("xc7", "xcup")
#: Names that normalization alone does not map to a bundled board.
ALIASES = {"u250": "alveo_u250", "arty100t": "arty_a7_100t"}


class BoardError(ValueError):
    """A board file is missing, malformed or fails validation, or a board name is unknown."""


@dataclass(frozen=True)
class Resources:
    """Device totals (or amounts used): LUTs, flip-flops, DSP slices, 36 Kb block RAMs and 288 Kb UltraRAMs."""

    lut: int
    ff: int
    dsp: int
    bram: int
    uram: int = 0


_RESOURCE_NAMES = tuple(f.name for f in fields(Resources))


@dataclass(frozen=True)
class Board:
    """One FPGA board: what the HLS project, Yosys and the utilization report need to know about it."""

    name: str
    title: str
    vendor: str
    family: str
    yosys_family: str
    part: str
    clock_period_ns: float
    resources: Resources
    url: str | None = None

    def __post_init__(self) -> None:
        from qfx.safety import check_part, check_text

        for key in ("name", "title", "vendor", "family", "yosys_family", "url"):
            if getattr(self, key) is not None:  # these reach TCL, cfg and Markdown: no control characters
                check_text(getattr(self, key), key)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", self.name):
            raise BoardError(f"name {self.name!r} must be letters, digits, '_', '.' and '-'")
        if self.url is not None and not re.fullmatch(r"https?://[^\s\"'<>`]+", self.url):
            raise BoardError(f"url {self.url!r} must be an http(s) address without spaces or quotes")
        check_part(self.part)

    @property
    def clock_mhz(self) -> float:
        """Default clock frequency in MHz."""
        return 1000.0 / self.clock_period_ns

    def utilization(self, used: Resources | dict[str, float]) -> dict[str, float]:
        """Percentage of each device resource that ``used`` takes (a dict may omit resources it does not use).

        Every resource is in the result; a resource the device lacks gives 0.0 when unused and ``inf`` when used.
        """
        if isinstance(used, Resources):
            used = {k: getattr(used, k) for k in _RESOURCE_NAMES}
        unknown = sorted(set(used) - set(_RESOURCE_NAMES))
        if unknown:
            raise ValueError(f"unknown resource {unknown[0]!r}; expected one of {', '.join(_RESOURCE_NAMES)}")
        out = {}
        for key in _RESOURCE_NAMES:
            amount, total = used.get(key, 0), getattr(self.resources, key)
            out[key] = 100.0 * amount / total if total else (math.inf if amount else 0.0)
        return out


def boards_dir() -> Path:
    """The folder of bundled board files: ``boards/`` at the top of a source checkout, or the installed package's
    copy (package data, see ``pyproject.toml``)."""
    from qfx.resources import data_dir

    return data_dir("boards")


def _norm(name: str) -> str:
    return re.sub(r"[-_ ]", "", name.lower())


def _parse(path: Path) -> Board:
    # Errors name a bundled file as ``boards/x.toml`` and a user file by the path as given.
    where = f"boards/{path.name}" if path.resolve().parent == boards_dir() else str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BoardError(f"{where}: cannot read board file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{where}: invalid TOML: {exc}") from exc

    def fail(msg: str) -> BoardError:
        return BoardError(f"{where}: {msg}")

    def check_keys(table: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...], prefix: str) -> None:
        for key in sorted(set(table) - set(allowed)):
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            raise fail(f"unknown field {prefix + key!r}{hint}")
        for key in required:
            if key not in table:
                raise fail(f"field {prefix + key!r} is missing")

    str_fields = ("name", "title", "vendor", "family", "yosys_family", "part")
    required = (*str_fields, "clock_period_ns", "resources")
    check_keys(data, (*required, "url"), required, "")
    for key in (*str_fields, "url") if "url" in data else str_fields:
        if not isinstance(value := data[key], str) or not value.strip():
            raise fail(f"{key} must be a non-empty string, not {value!r}")
    if data["yosys_family"] not in YOSYS_FAMILIES:
        raise fail(f"yosys_family must be 'xc7' or 'xcup', not {data['yosys_family']!r}")
    clock = data["clock_period_ns"]
    if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not 0 < clock < math.inf:
        raise fail(f"clock_period_ns must be a number > 0, not {clock!r}")
    res = data["resources"]
    if not isinstance(res, dict):
        raise fail(f"resources must be a table, not {res!r}")
    check_keys(res, _RESOURCE_NAMES, _RESOURCE_NAMES[:4], "resources.")
    for key, value in res.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(f"resources.{key} must be an int >= 0, not {value!r}")
    try:
        return Board(**{**data, "clock_period_ns": float(clock), "resources": Resources(**res)})
    except ValueError as exc:  # control characters, a part name that is not one
        raise fail(str(exc)) from None


def _bundled() -> dict[str, Path]:
    return {p.stem: p for p in sorted(boards_dir().glob("*.toml"))}


def load_board(name_or_path: str | Path) -> Board:
    """A bundled board by name (case-insensitive; ``-``, ``_`` and spaces ignored; e.g. ``"Ultra96-V2"``, ``"u250"``),
    or a user board file given as a path (a ``Path``, or a string containing ``/`` or ending in ``.toml``)."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or "\\" in text or text.endswith(".toml"):
        return _parse(Path(name_or_path))
    bundled = _bundled()
    by_norm = {_norm(stem): stem for stem in bundled}
    stem = by_norm.get(_norm(text)) or ALIASES.get(_norm(text))
    if stem is None or stem not in bundled:
        raise BoardError(f"unknown board {text!r}; known boards: {', '.join(bundled)}")
    return _parse(bundled[stem])


def list_boards() -> list[Board]:
    """Every bundled board, sorted by name."""
    return sorted((_parse(p) for p in _bundled().values()), key=lambda b: b.name)
