"""Small helpers shared by the folded streaming Verilog renderers (:mod:`qfx.rtl.stream` and the unit families
beside it): widths, literals, formats and balanced sums."""

from __future__ import annotations

from qfx.format import FixedFormat
from qfx.rtl.layer import cast_params

__all__ = ["bits", "cast_args", "fill", "fmt", "lit", "signed_width", "tree"]


def bits(n: int) -> int:
    """Bits of an unsigned counter that reaches ``n`` (at least one)."""
    return max(1, int(n).bit_length())


def lit(value: int, width: int) -> str:
    """A signed Verilog literal of ``width`` bits."""
    return f"{width}'sd{value}" if value >= 0 else f"-{width}'sd{-value}"


def signed_width(lo: int, hi: int) -> int:
    """Bits of a two's complement number holding lo..hi."""
    return max(bits(hi) + 1, bits(-lo - 1) + 1 if lo < 0 else 1)


def tree(names: list[str]) -> str:
    """``names`` summed as a balanced tree of parenthesised pairs: the parse tree stays log2(n) deep (a flat chain of
    hundreds of ``+`` exhausts the stack of Yosys' WebAssembly build); every operand still takes the width of the
    assignment, so the sum is the same."""
    if len(names) == 1:
        return names[0]
    mid = len(names) // 2
    return f"({tree(names[:mid])} + {tree(names[mid:])})"


def fill(code: int, width: int, n: int) -> str:
    """A Verilog literal of ``n`` values of the two's complement ``code`` in ``width`` bits each."""
    value = code & ((1 << width) - 1)
    word = sum(value << (k * width) for k in range(n))
    return f"{n * width}'h{word:x}"


def fmt(text: str) -> FixedFormat:
    """The format of a streaming design's type string."""
    return FixedFormat.parse(text)


def cast_args(f: FixedFormat) -> str:
    """The parameter list of a ``qfx_cast`` instance assigning to ``f``."""
    return ", ".join(f".{k}({v})" for k, v in cast_params(f).items())
