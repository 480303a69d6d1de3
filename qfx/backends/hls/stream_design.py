"""The streaming design as data: streams (their word size and arrival order), unit configurations, constant
arrays and calls, which the templates of hls/templates/stream render (see :mod:`qfx.backends.hls.stream_units`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qfx.format import FixedFormat
from qfx.ir.graph import spatial

__all__ = [
    "Call",
    "Config",
    "Constant",
    "Stream",
    "StreamDesign",
    "UnsupportedNode",
    "canonical",
    "code_type",
    "rom_rows",
]

NO_CONST = FixedFormat(1, 1, signed=False)  # the type of an absent bias / shift (its codes are 0)
INT_TYPES = (("signed char", 8), ("short", 16), ("int", 32), ("long long", 64))


class UnsupportedNode(ValueError):
    """The streaming backend has no unit for this node (yet); the message names it."""


@dataclass(eq=False)
class Stream:
    """An hls::stream of words: ``word`` values of C type ``ctype`` each, ``perm`` the arrival order (None: flat
    order), ``depth`` words of FIFO."""

    name: str
    ctype: str
    size: int
    word: int
    perm: np.ndarray | None = None
    depth: int = 2

    @property
    def count(self) -> int:
        return self.size // self.word

    @property
    def wtype(self) -> str:
        return f"qfx::stream::word<{self.ctype}, {self.word}>"

    def order(self) -> np.ndarray:
        return np.arange(self.size) if self.perm is None else self.perm


@dataclass(frozen=True)
class Constant:
    """``static const ctype name[dims...]`` of integer codes (written flat)."""

    name: str
    ctype: str
    dims: tuple[int, ...]
    values: np.ndarray
    storage: str = "logic"  # "logic" (partitioned completely) or "rom" (one row per clock)


@dataclass(frozen=True)
class Config:
    """A unit's compile-time parameters: a struct of typedefs and integer constants in parameters.h."""

    name: str
    types: dict[str, str]
    ints: dict[str, int]


@dataclass
class Call:
    """``qfx::stream::func<targs>(args);`` (args: streams or constant names), with the IR node it renders."""

    node: str
    func: str
    targs: list[str]
    args: list[Stream | str]


@dataclass
class StreamDesign:
    """Everything the stream templates render."""

    streams: list[Stream] = field(default_factory=list)
    configs: list[Config] = field(default_factory=list)
    constants: list[Constant] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    input: Stream | None = None
    output: Stream | None = None
    multipliers: int = 0  # multiplier instances in the folded units (PE x SIMD per non-K-hot MAC unit)


def canonical(shape: tuple[int, ...]) -> tuple[int, np.ndarray | None]:
    """(word, perm) of the order a unit expects: a feature map pixel by pixel, channels in a word; a vector whole."""
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if len(shape) not in (2, 3):
        return size, None
    c, h, w = spatial(shape)
    if h * w == 1:
        return c, None
    return c, np.arange(size).reshape(c, h * w).T.ravel()


def code_type(values: np.ndarray) -> str:
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for ctype, bits in INT_TYPES:
        if -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return ctype
    raise UnsupportedNode(f"constant codes {lo}..{hi} do not fit 64 bits")


def rom_rows(matrix: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """(N_OUT, N_IN, ...) -> ROM rows (NF * SF, PE, SIMD, ...): row nf * SF + sf holds outputs nf * PE + p and
    inputs sf * SIMD + s."""
    n_out, n_in = matrix.shape[:2]
    nf, sf = n_out // pe, n_in // simd
    rest = matrix.shape[2:]
    m = matrix.reshape(nf, pe, sf, simd, *rest).swapaxes(1, 2)
    return m.reshape(nf * sf, pe, simd, *rest)
