"""Exact-width Verilog expressions for sums of shifted, constant-weighted terms: the arithmetic of every RTL layer.

A layer's output element is ``sum_k sign_k * x_k * c_k * 2**s_k + bias`` in the units of its accumulator's LSB.
:class:`Netlist` builds it as a tree of two-input adders in which every wire is exactly as wide as its value
range needs (interval arithmetic on integer codes) and low bits that one operand lacks pass through untouched
instead of entering the adder: ``a + (b << d) = {(a >>> d) + b, a[d-1:0]}``. Multiplication by a power of two is
a shift, and a K-hot constant is a few shifts; only other constants produce a ``*``.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field

from qfx.ir.constants import naf_digits

__all__ = ["Netlist", "Operand", "Wire", "signed_bits"]

#: Largest number of term pairs (summed over a layer's outputs) for which shared sub-sums are searched.
MAX_SHARING_PAIRS = 400_000

_Term = tuple[int, int, int]  # (variable, shift, sign): sign * variable * 2**shift


def signed_bits(lo: int, hi: int) -> int:
    """Bits of the narrowest two's complement type holding every integer in [lo, hi]."""
    def bits(v: int) -> int:
        return (v.bit_length() if v >= 0 else (-v - 1).bit_length()) + 1

    return max(bits(lo), bits(hi))


def literal(value: int) -> str:
    """A signed sized Verilog literal of ``value``, one bit wider than its magnitude (so negation cannot wrap)."""
    width = abs(value).bit_length() + 1
    return f"-{width}'sd{-value}" if value < 0 else f"{width}'sd{value}"


@dataclass(frozen=True)
class Wire:
    """``wire signed [width-1:0] name = expr;`` in the layer module; with ``cast`` (the parameters of a
    ``qfx_cast``), ``wire [width-1:0] name`` driven by that cast of the signed wire ``expr``."""

    name: str
    width: int
    expr: str
    cast: str = ""


@dataclass(frozen=True)
class Operand:
    """The value ``sign * wire * 2**shift`` where ``wire`` (a signed Verilog wire) ranges over [lo, hi]."""

    wire: str
    lo: int
    hi: int
    shift: int = 0
    sign: int = 1

    @property
    def width(self) -> int:
        return signed_bits(self.lo, self.hi)


@dataclass
class Netlist:
    """Wires of one layer module, named ``<prefix><n>``; counts the ``*`` it emits."""

    prefix: str = "w"
    wires: list[Wire] = field(default_factory=list)
    multipliers: int = 0

    def wire(self, width: int, expr: str, cast: str = "") -> str:
        name = f"{self.prefix}{len(self.wires)}"
        self.wires.append(Wire(name, width, expr, cast))
        return name

    # ------------------------------------------------------------------------------------------------ terms
    def terms(self, x: Operand, code: int, shift: int, khot: bool) -> list[Operand]:
        """Operands whose sum is ``x * code * 2**shift``: shifts for powers of two and K-hot digits, else one
        product wire (with the constant's trailing zeros kept as a shift)."""
        if code == 0:
            return []
        if khot:
            return [Operand(x.wire, x.lo, x.hi, x.shift + shift + s, x.sign * d) for s, d in naf_digits(code)]
        tz = (code & -code).bit_length() - 1
        odd = code >> tz
        if odd in (1, -1):
            return [Operand(x.wire, x.lo, x.hi, x.shift + shift + tz, x.sign * odd)]
        lo, hi = sorted((x.lo * odd, x.hi * odd))
        width = signed_bits(lo, hi)
        self.multipliers += 1
        name = self.wire(width, f"{x.wire} * {literal(odd)}")
        return [Operand(name, lo, hi, x.shift + shift + tz, x.sign)]

    # ------------------------------------------------------------------------------------------------ sums
    def add(self, a: Operand, b: Operand) -> Operand:
        """One adder: ``a + b`` (signs and shifts included), low bits of the finer operand passed through."""
        if a.shift > b.shift or (a.shift == b.shift and a.sign < b.sign):
            a, b = b, a
        d = b.shift - a.shift
        same = a.sign == b.sign
        op = "+" if same else "-"
        # value = a.sign * (A + (same ? B : -B) * 2**d) * 2**a.shift, with A = {A_hi, A_lo}
        b_lo, b_hi = (b.lo, b.hi) if same else (-b.hi, -b.lo)
        hi_lo, hi_hi = (a.lo >> d) + b_lo, (a.hi >> d) + b_hi
        a_hi = a.wire if d == 0 else f"({a.wire} >>> {d})"
        top = self.wire(signed_bits(hi_lo, hi_hi), f"{a_hi} {op} {b.wire}")
        if d == 0:
            return Operand(top, hi_lo, hi_hi, a.shift, a.sign)
        lo, hi = a.lo + (b_lo << d), a.hi + (b_hi << d)
        joined = self.wire(signed_bits(lo, hi), f"{{{top}, {a.wire}[{d - 1}:0]}}")
        return Operand(joined, lo, hi, a.shift, a.sign)

    def add_constant(self, a: Operand, value: int) -> Operand:
        """``a + value``; the constant's bits below ``a``'s shift become the result's low bits."""
        if value == 0:
            return a
        tz = (value & -value).bit_length() - 1
        if tz >= a.shift:
            c = (value >> a.shift) * a.sign  # a.sign * (A + c)
            lo, hi = a.lo + c, a.hi + c
            name = self.wire(signed_bits(lo, hi), f"{a.wire} + {literal(c)}")
            return Operand(name, lo, hi, a.shift, a.sign)
        if a.sign < 0:
            a = self.negate(a)
        d = a.shift - tz
        c_hi, c_lo = value >> a.shift, value & ((1 << a.shift) - 1)
        lo, hi = a.lo + c_hi, a.hi + c_hi
        top = self.wire(signed_bits(lo, hi), f"{a.wire} + {literal(c_hi)}")
        low_bits = (c_lo >> tz) & ((1 << d) - 1)
        joined = self.wire(signed_bits(lo << d, (hi << d) + low_bits), f"{{{top}, {d}'d{low_bits}}}")
        return Operand(joined, (lo << d) + low_bits, (hi << d) + low_bits, tz, 1)

    def negate(self, a: Operand) -> Operand:
        lo, hi = -a.hi, -a.lo
        return Operand(self.wire(signed_bits(lo, hi), f"-{a.wire}"), lo, hi, a.shift, -a.sign)

    def sum(self, operands: list[Operand], constant: int = 0) -> Operand:
        """The sum of ``operands`` plus ``constant`` as one positive operand (a constant wire when there are none).

        Adds the two narrowest operands first (Huffman order), which keeps the adders narrow.
        """
        if not operands:
            width = signed_bits(constant, constant)
            return Operand(self.wire(width, literal(constant)), constant, constant)
        heap = [(op.width + op.shift, k, op) for k, op in enumerate(operands)]
        heapq.heapify(heap)
        count = len(heap)
        while len(heap) > 1:
            a, b = heapq.heappop(heap)[2], heapq.heappop(heap)[2]
            s = self.add(a, b)
            heapq.heappush(heap, (s.width + s.shift, count, s))
            count += 1
        root = self.add_constant(heap[0][2], constant)
        return self.negate(root) if root.sign < 0 else root

    # ------------------------------------------------------------------------------------------------ sharing
    def sums(self, rows: list[tuple[list[Operand], int]]) -> list[Operand]:
        """:meth:`sum` of each (operands, constant) row, sharing sub-sums between rows.

        A pair of terms that occurs in several rows with the same relative shift and sign (``x3 + (x7 << 2)``,
        wherever it appears) is computed once and reused: the pair found in the most rows goes first, until no
        pair repeats (the greedy common-subexpression search of multiple-constant-multiplication work). K-hot
        layers, whose weights are a few shifted copies of the inputs, lose a large share of their adders to it.
        """
        variables: list[Operand] = []
        index: dict[str, int] = {}
        terms: list[list[_Term]] = []
        for operands, _ in rows:
            row = []
            for op in operands:
                if op.wire not in index:
                    index[op.wire] = len(variables)
                    variables.append(Operand(op.wire, op.lo, op.hi))
                row.append((index[op.wire], op.shift, op.sign))
            terms.append(row)
        if sum(len(r) * (len(r) - 1) // 2 for r in terms) <= MAX_SHARING_PAIRS:
            self._share(terms, variables)
        out = []
        for row, (_, constant) in zip(terms, rows, strict=True):
            ops = [
                Operand(variables[v].wire, variables[v].lo, variables[v].hi, variables[v].shift + s,
                        variables[v].sign * g)
                for v, s, g in row
            ]  # fmt: skip
            out.append(self.sum(ops, constant))
        return out

    def _share(self, terms: list[list[_Term]], variables: list[Operand]) -> None:
        """Rewrite ``terms`` in place, replacing repeated pairs by new shared variables (appended to
        ``variables``)."""
        rows_with: dict[tuple, set[int]] = defaultdict(set)
        keys_of: list[set[tuple]] = [set() for _ in terms]

        def index_row(r: int) -> None:
            for key in keys_of[r]:
                rows_with[key].discard(r)
                if not rows_with[key]:
                    del rows_with[key]
            row = sorted(terms[r])
            keys_of[r] = {(a, b, sb - sa, ga * gb) for k, (a, sa, ga) in enumerate(row) for b, sb, gb in row[k + 1 :]}
            for key in keys_of[r]:
                rows_with[key].add(r)

        for r in range(len(terms)):
            index_row(r)
        while rows_with:
            key = max(rows_with, key=lambda k: len(rows_with[k]))
            users = sorted(rows_with[key])
            if len(users) < 2:
                break
            a, b, d, g = key
            va, vb = variables[a], variables[b]
            shared = self.add(Operand(va.wire, va.lo, va.hi, va.shift + max(0, -d), va.sign),
                              Operand(vb.wire, vb.lo, vb.hi, vb.shift + max(0, d), vb.sign * g))  # fmt: skip
            variables.append(shared)
            new = len(variables) - 1
            for r in users:
                terms[r] = _replace(terms[r], key, new)
                index_row(r)


def _replace(row: list[_Term], key: tuple, new: int) -> list[_Term]:
    """``row`` with disjoint occurrences of the pair ``key`` replaced by the variable ``new``."""
    a, b, d, g = key
    pool = sorted(row)
    used = [False] * len(pool)
    out = []
    for k, (v, s, sign) in enumerate(pool):
        if used[k] or v != a:
            continue
        partner = (b, s + d, sign * g)
        for j in range(len(pool)):
            if not used[j] and j != k and pool[j] == partner:
                used[k] = used[j] = True
                out.append((new, min(s, s + d), sign))
                break
    return out + [t for k, t in enumerate(pool) if not used[k]]
