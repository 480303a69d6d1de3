"""Exact-width Verilog expressions for sums of shifted, constant-weighted terms: the arithmetic of every RTL layer.

A layer's output element is ``sum_k sign_k * x_k * c_k * 2**s_k + bias`` in the units of its accumulator's LSB.
:class:`Netlist` builds it as a tree of two-input adders in which every wire is exactly as wide as its value
range needs (interval arithmetic on integer codes) and low bits that one operand lacks pass through untouched
instead of entering the adder: ``a + (b << d) = {(a >>> d) + b, a[d-1:0]}``. Multiplication by a power of two is
a shift, and a K-hot constant is a few shifts; other constants produce a ``*``, or, multiplier-free
(:class:`AdderOptions`), their canonical signed digits as shifts. The rows of a layer share their repeated
sub-sums (:mod:`qfx.rtl.cmvm`), and every adder's depth is tracked so that a bound can be kept and reported. Every
wire the arithmetic makes also records its operation, so :meth:`Netlist.evaluate` computes the netlist in Python
with the Verilog widths (a test of the emitted arithmetic without a simulator).
"""

from __future__ import annotations

import functools
import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from qfx.ir.constants import naf_digits
from qfx.rtl.cmvm import Variable, decompose, naf_weight, share

__all__ = ["AdderOptions", "Netlist", "Operand", "Wire", "signed_bits", "ternary_params"]

#: Operations that are adders (the rest is wiring, constants and multipliers).
ADDERS = ("add", "add3", "rsub", "lin", "neg")

#: Term pairs (summed over a layer's outputs) above which the sharing search splits the inputs into blocks
#: (bounded time and memory; every block still shares across all outputs).
MAX_SHARING_PAIRS = 2_000_000


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
    ``qfx_cast``), ``wire [width-1:0] name`` driven by that cast of the signed wire ``expr``; with ``inst`` (a
    module name), ``wire signed [width-1:0] name`` driven by the instance ``inst expr`` (``expr`` holds its
    parameters, instance name and ports). ``keep``: marked ``(* keep *)`` so that synthesis keeps the wire (an
    adder's result) instead of merging the adders around it into other arithmetic."""

    name: str
    width: int
    expr: str
    cast: str = ""
    inst: str = ""
    keep: bool = False


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


@dataclass(frozen=True)
class AdderOptions:
    """How a layer's constant weights become logic.

    ``multiplier_free``: plain (non-K-hot) weights as canonical-signed-digit shift-and-add instead of ``*`` (True
    for every layer, or a collection of node names). ``max_depth``: the most adders from an input to an output
    (an int for every layer, or a dict from node name to int; None: no bound). ``share``: search shared sub-sums.
    ``max_pairs``: the pair budget above which the search splits the inputs into blocks. ``decompose``: also try
    each output as +-another output plus a cheaper difference (:func:`qfx.rtl.cmvm.decompose`), once per chain
    bound in ``chains`` (None: unbounded; the default 2 keeps the extra depth small), and keep the netlist with the
    fewest adder bits. ``keep``: mark every adder's result wire ``(* keep *)``, so that Yosys maps each adder on
    its own carry chain (one LUT per bit) instead of merging chains of them into compressor trees, which cost more
    LUTs. ``ternary``: sum each output's terms three at a time with ``qfx_add3`` (``hls/rtl/qfx_add3.v``: one
    LUT6_2 per bit on a Xilinx carry chain, where two two-input adders take two LUTs per bit); Xilinx devices only,
    and not with a depth bound (there the sums stay two-input). ``min_uses``: how many rows a shared sub-sum must
    serve (2: any repeat; with ternary sums a pair's adder pays off from 3).
    """

    multiplier_free: bool | frozenset[str] = False
    max_depth: int | dict[str, int] | None = None
    share: bool = True
    max_pairs: int = MAX_SHARING_PAIRS
    decompose: bool = True
    chains: tuple[int | None, ...] = (2,)
    keep: bool = True
    ternary: bool = False
    min_uses: int = 2

    def free(self, node: str) -> bool:
        """Whether ``node``'s plain weights are built multiplier-free."""
        m = self.multiplier_free
        return m if isinstance(m, bool) else node in m

    def depth(self, node: str) -> int | None:
        """``node``'s adder depth bound (None: none)."""
        d = self.max_depth
        return d.get(node) if isinstance(d, dict) else d


def _key(op: Operand) -> int:
    """Order in which a sum's operands are added: the lowest top bit first (Huffman on widths)."""
    return op.width + op.shift


def _shifted(value: int, k: int) -> int:
    """``value << k`` (``>> -k``, flooring, for a negative ``k``)."""
    return value << k if k >= 0 else value >> -k


@functools.lru_cache(maxsize=8)
def ternary_params(neg_a: bool = False, neg_b: bool = False, neg_c: bool = False) -> tuple[int, int, int]:
    """(INIT, CI, M0) of a ``qfx_add3`` that computes ``+-a +-b +-c`` (``neg_*``: that operand subtracted).

    INIT: O5 (I5 = 0) the majority of the three operand bits I0..I2, each inverted where subtracted; O6 (I5 = 1)
    their XOR with I3, the previous bit's majority. A subtracted operand is its inversion plus one: the first +1
    comes in as M0 (the majority below bit 0, a LUT input), the second as the carry-in CI (which Yosys turns into
    an inverter on the low sum bits, so it goes second); three cannot (factor the sign out instead)."""
    count = neg_a + neg_b + neg_c
    if count > 2:
        raise ValueError("qfx_add3 subtracts at most two of its operands")
    init = 0
    for idx in range(64):
        i0, i1, i2, i3, _, i5 = ((idx >> k) & 1 for k in range(6))
        x, y, z = i0 ^ neg_a, i1 ^ neg_b, i2 ^ neg_c
        bit = (x ^ y ^ z ^ i3) if i5 else int(x + y + z >= 2)
        init |= bit << idx
    return init, int(count >= 2), int(count >= 1)


def _wrap(value, width: int):
    """``value`` as a ``width``-bit signed Verilog wire holds it."""
    half = 1 << (width - 1)
    return (value + half) % (1 << width) - half


@dataclass
class Netlist:
    """Wires of one layer module, named ``<prefix><n>``; counts the ``*`` it emits and the depth of every adder."""

    prefix: str = "w"
    wires: list[Wire] = field(default_factory=list)
    multipliers: int = 0
    depth: dict[str, int] = field(default_factory=dict)  # adders between the layer's inputs and each wire
    negated: set[str] = field(default_factory=set)  # sums that needed a final negation (every term negative)
    ops: dict[str, tuple] = field(default_factory=dict)  # the operation behind each arithmetic wire
    keep: bool = False  # mark adder results (* keep *)
    ternary: bool = False  # sums three operands at a time (qfx_add3)

    def wire(self, width: int, expr: str, cast: str = "", op: tuple | None = None, depth: int = 0,
             inst: str = "") -> str:  # fmt: skip
        name = f"{self.prefix}{len(self.wires)}"
        adder = op is not None and op[0] in ADDERS
        self.wires.append(Wire(name, width, expr.replace("{name}", name) if inst else expr, cast, inst,
                               self.keep and adder))  # fmt: skip
        if op is not None:
            self.ops[name] = op
        if depth:
            self.depth[name] = depth
        return name

    def depth_of(self, op: Operand) -> int:
        return self.depth.get(op.wire, 0)

    @property
    def adders(self) -> int:
        """Adders and subtractors (joins of bits and constants are wiring)."""
        return sum(op[0] in ADDERS for op in self.ops.values())

    @property
    def adder_bits(self) -> int:
        """Total width of the adders: what LUTs follow."""
        width = {w.name: w.width for w in self.wires}
        return sum(width[n] for n, op in self.ops.items() if op[0] in ADDERS)

    def evaluate(self, inputs: dict[str, np.ndarray | int]) -> dict[str, np.ndarray | int]:
        """Every wire that follows from ``inputs`` (wire name -> values), with each wire wrapped to its width."""
        values = dict(inputs)
        for w in self.wires:
            op = self.ops.get(w.name)
            if op is None or w.name in values:
                continue
            kind, *a = op
            get = values.__getitem__
            if kind == "const":
                v = a[0]
            elif kind == "mul":
                v = get(a[0]) * a[1]
            elif kind == "add":  # (a >>> d) + sign * b
                v = (get(a[0]) >> a[1]) + a[2] * get(a[3])
            elif kind == "join":  # {top, a[d-1:0]}
                v = get(a[0]) * (1 << a[2]) + get(a[1]) % (1 << a[2])
            elif kind == "joinc":  # {top, d'low}
                v = get(a[0]) * (1 << a[1]) + a[2]
            elif kind == "rsub":  # (b <<< d) - a
                v = get(a[0]) * (1 << a[1]) - get(a[2])
            elif kind == "lin":  # sign * a + c
                v = a[1] * get(a[0]) + a[2]
            elif kind == "neg":
                v = -get(a[0])
            elif kind == "add3":  # sum of sign * wire over (wire, sign) pairs (two or three)
                v = sum(g * get(w) for w, g in zip(a[0::2], a[1::2], strict=True))
            elif kind == "sra":
                v = get(a[0]) >> a[1]
            elif kind == "shl":
                v = get(a[0]) * (1 << a[1])
            else:  # "copy"
                v = get(a[0])
            values[w.name] = _wrap(v, w.width)
        return values

    # ------------------------------------------------------------------------------------------------ terms
    def terms(self, x: Operand, code: int, shift: int, khot: bool) -> list[Operand]:
        """Operands whose sum is ``x * code * 2**shift``: shifts for powers of two and for the canonical signed
        digits when ``khot`` (K-hot or multiplier-free), else one product wire (trailing zeros kept as a shift)."""
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
        name = self.wire(width, f"{x.wire} * {literal(odd)}", op=("mul", x.wire, odd), depth=self.depth_of(x))
        return [Operand(name, lo, hi, x.shift + shift + tz, x.sign)]

    # ------------------------------------------------------------------------------------------------ sums
    def add(self, a: Operand, b: Operand, positive: bool = False) -> Operand:
        """One adder: ``a + b`` (signs and shifts included), low bits of the finer operand passed through.

        With ``positive``, a result that would carry a negative sign is built as ``(b <<< d) - a`` instead (one
        full-width subtractor rather than an adder and a negation)."""
        if a.shift > b.shift or (a.shift == b.shift and a.sign < b.sign):
            a, b = b, a
        if self.ternary and a.sign != b.sign:  # a qfx_add3 with c = 0: the +1 as M0, not an inverter
            return self.add3(a, b, None, positive)
        d = b.shift - a.shift
        depth = max(self.depth_of(a), self.depth_of(b)) + 1
        if positive and a.sign < 0 < b.sign and d > 0:
            lo, hi = (b.lo << d) - a.hi, (b.hi << d) - a.lo
            name = self.wire(signed_bits(lo, hi), f"({b.wire} <<< {d}) - {a.wire}", op=("rsub", b.wire, d, a.wire),
                             depth=depth)  # fmt: skip
            return Operand(name, lo, hi, a.shift, 1)
        same = a.sign == b.sign
        op = "+" if same else "-"
        # value = a.sign * (A + (same ? B : -B) * 2**d) * 2**a.shift, with A = {A_hi, A_lo}
        b_lo, b_hi = (b.lo, b.hi) if same else (-b.hi, -b.lo)
        hi_lo, hi_hi = (a.lo >> d) + b_lo, (a.hi >> d) + b_hi
        a_hi = a.wire if d == 0 else f"({a.wire} >>> {d})"
        top = self.wire(signed_bits(hi_lo, hi_hi), f"{a_hi} {op} {b.wire}",
                        op=("add", a.wire, d, 1 if same else -1, b.wire), depth=depth)  # fmt: skip
        if d == 0:
            return Operand(top, hi_lo, hi_hi, a.shift, a.sign)
        lo, hi = a.lo + (b_lo << d), a.hi + (b_hi << d)
        joined = self.wire(signed_bits(lo, hi), f"{{{top}, {a.wire}[{d - 1}:0]}}", op=("join", top, a.wire, d),
                           depth=depth)  # fmt: skip
        return Operand(joined, lo, hi, a.shift, a.sign)

    def add_constant(self, a: Operand, value: int) -> Operand:
        """``a + value`` as a positive operand; the constant's bits below ``a``'s shift become the low bits."""
        if value == 0:
            return a
        depth = self.depth_of(a) + 1
        tz = (value & -value).bit_length() - 1
        if tz >= a.shift:  # a.sign * A + c, in units of a's shift
            c = value >> a.shift
            lo, hi = sorted((a.sign * a.lo + c, a.sign * a.hi + c))
            expr = f"{a.wire} + {literal(c)}" if a.sign > 0 else f"{literal(c)} - {a.wire}"
            name = self.wire(signed_bits(lo, hi), expr, op=("lin", a.wire, a.sign, c), depth=depth)
            return Operand(name, lo, hi, a.shift)
        d = a.shift - tz
        c_hi, c_lo = value >> a.shift, value & ((1 << a.shift) - 1)
        lo, hi = sorted((a.sign * a.lo + c_hi, a.sign * a.hi + c_hi))
        expr = f"{a.wire} + {literal(c_hi)}" if a.sign > 0 else f"{literal(c_hi)} - {a.wire}"
        top = self.wire(signed_bits(lo, hi), expr, op=("lin", a.wire, a.sign, c_hi), depth=depth)
        low_bits = (c_lo >> tz) & ((1 << d) - 1)
        joined = self.wire(signed_bits(lo << d, (hi << d) + low_bits), f"{{{top}, {d}'d{low_bits}}}",
                           op=("joinc", top, d, low_bits), depth=depth)  # fmt: skip
        return Operand(joined, (lo << d) + low_bits, (hi << d) + low_bits, tz, 1)

    def add3(self, a: Operand, b: Operand | None, c: Operand | None = None, positive: bool = False) -> Operand:
        """One ternary adder (``qfx_add3``): ``a + b + c`` (signs and shifts included), the low bits of the finest
        operand below the others passed through; with ``c`` None a two-input one (a subtractor whose +1 comes in
        as ``M0``: Yosys makes a constant carry-in an inverter), with ``b`` None too ``a`` alone, as a positive
        wire (a negation in one LUT per bit).

        The finest operand's sign is factored out, which leaves at most two operands subtracted (their +1s come in
        as ``M0`` and through the chain's carry-in). With ``positive`` a result that would carry a negative sign
        is built without passing bits through instead, unless every operand is negative."""
        ops = sorted((o for o in (a, b, c) if o is not None), key=lambda o: (o.shift, -o.sign))
        a, base = ops[0], ops[0].shift
        d1 = ops[1].shift - base if len(ops) > 1 else 0
        if positive and a.sign < 0 and any(o.sign > 0 for o in ops[1:]):
            d1 = 0  # aligned at a's shift: no pass-through, signs as they are
        if d1 == 1 and len(ops) == 3 and ops[1].sign == ops[2].sign != a.sign and (a.sign < 0 or not positive):
            d1 = 0  # two subtracted would need a constant carry-in (an inverter or two): a, not them, is subtracted
        if d1:
            sign = a.sign
        else:  # at most two subtracted (a negative result only when all are, or two of three and not positive)
            negatives = sum(o.sign < 0 for o in ops)
            sign = -1 if (negatives == len(ops) > 1) or (negatives == 2 and len(ops) == 3 and not positive) else 1
        parts = [(op, op.sign * sign, op.shift - base - d1) for op in ops]
        lo = hi = 0
        for op, g, k in parts:  # the range of the top part: sum of g * (op >> -k or op << k)
            ends = sorted((g * _shifted(op.lo, k), g * _shifted(op.hi, k)))
            lo, hi = lo + ends[0], hi + ends[1]
        width = signed_bits(lo, hi)
        depth = max(self.depth_of(o) for o in ops) + 1
        ports, signs = [], []
        for op, g, k in parts:
            if k == 0:
                expr, kind = op.wire, ("copy", op.wire)
            elif k < 0:
                expr, kind = f"{op.wire} >>> {-k}", ("sra", op.wire, -k)
            else:
                expr, kind = f"{op.wire} <<< {k}", ("shl", op.wire, k)
            ports.append(self.wire(width, expr, op=kind, depth=self.depth_of(op)))
            signs.append(g)
        init, carry_in, m0 = ternary_params(*(g < 0 for g in signs))
        params = f"#(.W({width}), .INIT(64'h{init:016X}), .CI({carry_in}), .M0({m0}))"
        connect = ", ".join(f".{p}({w})" for p, w in itertools.zip_longest("abc", ports, fillvalue=f"{width}'d0"))
        op = ("add3", *(x for pair in zip(ports, signs, strict=True) for x in pair))
        top = self.wire(width, f"{params} {{name}}_a ({connect}, .y({{name}}))", op=op, depth=depth, inst="qfx_add3")
        if d1 == 0:
            return Operand(top, lo, hi, base, sign)
        lo2 = hi2 = 0
        for op, g, k in parts:  # the whole sum's range
            ends = sorted((g * (op.lo << (k + d1)), g * (op.hi << (k + d1))))
            lo2, hi2 = lo2 + ends[0], hi2 + ends[1]
        joined = self.wire(signed_bits(lo2, hi2), f"{{{top}, {a.wire}[{d1 - 1}:0]}}", op=("join", top, a.wire, d1),
                           depth=depth)  # fmt: skip
        return Operand(joined, lo2, hi2, base, sign)

    def negate(self, a: Operand) -> Operand:
        """``a`` (of sign -1) as a positive operand, ``-wire``."""
        if self.ternary:
            return self.add3(a, None, positive=True)
        lo, hi = -a.hi, -a.lo
        name = self.wire(signed_bits(lo, hi), f"-{a.wire}", op=("neg", a.wire), depth=self.depth_of(a) + 1)
        return Operand(name, lo, hi, a.shift, -a.sign)

    def sum(self, operands: list[Operand], constant: int = 0, max_depth: int | None = None) -> Operand:
        """The sum of ``operands`` plus ``constant`` as one positive operand (a constant wire when there are none).

        Adds the two narrowest operands first (Huffman order), which keeps the adders narrow; with ``max_depth``,
        a pair whose sum would leave no tree of that depth (Kraft's inequality) gives way to the two shallowest.
        The bound covers the adders of the sum; a sum whose result comes out negative (its last two operands both
        negative: every term, at worst) takes one more level for the negation (listed in :attr:`negated`).
        """
        if not operands:
            width = signed_bits(constant, constant)
            return Operand(self.wire(width, literal(constant), op=("const", constant)), constant, constant)
        limit = None if max_depth is None else 1 << (max_depth - (constant != 0))
        kraft = sum(1 << self.depth_of(op) for op in operands)
        heap = [(_key(op), k, op) for k, op in enumerate(operands)]
        heapq.heapify(heap)
        count = len(heap)
        if self.ternary and limit is None:
            return self._sum3(operands, constant)
        while len(heap) > 1:
            (_, ka, a), (_, kb, b) = heapq.heappop(heap), heapq.heappop(heap)
            da, db = self.depth_of(a), self.depth_of(b)
            grow = (1 << (max(da, db) + 1)) - (1 << da) - (1 << db)
            if limit is not None and kraft + grow > limit:
                heap += [(_key(a), ka, a), (_key(b), kb, b)]
                a, b = sorted((item[2] for item in heap), key=self.depth_of)[:2]
                heap = [item for item in heap if item[2] is not a and item[2] is not b]
                heapq.heapify(heap)
                da, db = self.depth_of(a), self.depth_of(b)
                grow = (1 << (max(da, db) + 1)) - (1 << da) - (1 << db)
            kraft += grow
            s = self.add(a, b, positive=len(heap) == 0 and constant == 0)
            heapq.heappush(heap, (_key(s), count, s))
            count += 1
        return self._positive(self.add_constant(heap[0][2], constant))

    def _sum3(self, operands: list[Operand], constant: int) -> Operand:
        """:meth:`sum` with ternary adders, three operands at a time (the narrowest first; one pair first when
        their number is even). A sum whose terms are all negative would end in a negation of the full-width
        result: the narrowest term is negated instead (one LUT per bit of its width) and added last."""
        operands = list(operands)
        last = None
        if constant == 0 and len(operands) > 1 and all(op.sign < 0 for op in operands):
            narrowest = min(operands, key=lambda op: (op.width, op.shift))
            operands.remove(narrowest)
            last = self.negate(narrowest)
        heap = [(_key(op), k, op) for k, op in enumerate(operands)]
        heapq.heapify(heap)
        count, keep = len(heap), 2 if last is not None else 1  # operands left for the final adder
        while len(heap) > keep:
            take = 3 if (len(heap) - keep) % 2 == 0 else 2
            ops = [heapq.heappop(heap)[2] for _ in range(take)]
            final = not heap and keep == 1 and constant == 0
            s = self.add3(*ops, positive=final) if take == 3 else self.add(*ops, positive=final)
            heapq.heappush(heap, (_key(s), count, s))
            count += 1
        if last is not None:
            rest = [item[2] for item in heap]
            root = self.add3(*rest, last, positive=True) if len(rest) == 2 else self.add(rest[0], last, positive=True)
        else:
            root = self.add_constant(heap[0][2], constant)
        return self._positive(root)

    def _positive(self, root: Operand) -> Operand:
        """A sum's result as a positive operand: negated at the end (recorded in ``negated``) when its sign is -1."""
        if root.sign > 0:
            return root
        root = self.negate(root)
        self.negated.add(root.wire)
        return root

    # ------------------------------------------------------------------------------------------------ sharing
    def sums(self, rows: list[tuple[list[Operand], int]], options: AdderOptions | None = None,
             max_depth: int | None = None) -> list[Operand]:  # fmt: skip
        """:meth:`sum` of each (operands, constant) row, sharing sub-sums between rows (:func:`qfx.rtl.cmvm.share`).

        A pair of terms that occurs in several rows with the same relative shift and sign (``x3 + (x7 << 2)``,
        wherever it appears) is computed once and reused; with ``max_depth`` no output is more than that many
        adders from the inputs (a ValueError when a row cannot be summed that shallow). With
        ``options.decompose``, rows are also tried as ``+-`` another row plus a difference of fewer digits
        (:func:`qfx.rtl.cmvm.decompose`, for each chain bound in ``options.chains``): the netlist with the fewest
        adder bits (within the depth bound) is kept.
        """
        options = options or AdderOptions()
        plans: list[list[tuple[int, int]] | None] = [None]
        if options.share and options.decompose and len(rows) > 1:
            plans += _decompositions(rows, options.chains)
        if len(plans) == 1:
            return self._sums(rows, options, max_depth, None)
        mark = (len(self.wires), set(self.ops), set(self.depth), set(self.negated))
        best = None
        for plan in plans:
            try:
                results = self._sums(rows, options, max_depth, plan)
            except ValueError:
                if plan is None:  # the rows as they are cannot meet max_depth: the caller's error
                    raise
                results = None  # a decomposed row deeper than max_depth allows: not a candidate
            new = self.wires[mark[0] :]
            bits = sum(w.width for w in new if self.ops.get(w.name, ("",))[0] in ADDERS)
            deep = results is None or (max_depth is not None and any(
                self.depth_of(r) > max_depth + (r.wire in self.negated) for r in results))  # fmt: skip
            if not deep and (best is None or bits < best[0]):
                best = (bits, results, new, {k: v for k, v in self.ops.items() if k not in mark[1]},
                        {k: v for k, v in self.depth.items() if k not in mark[2]}, self.negated - mark[3])  # fmt: skip
            del self.wires[mark[0] :]
            for table, old in ((self.ops, mark[1]), (self.depth, mark[2])):
                for k in [k for k in table if k not in old]:
                    del table[k]
            self.negated &= mark[3]
        _, results, new, ops, depth, negated = best
        self.wires += new
        self.ops.update(ops)
        self.depth.update(depth)
        self.negated |= negated
        return results

    def _sums(self, rows: list[tuple[list[Operand], int]], options: AdderOptions, max_depth: int | None,
              parents: list[tuple[int, int]] | None) -> list[Operand]:  # fmt: skip
        """:meth:`sums` with the rows decomposed as ``parents`` says (None: as they are)."""
        variables: list[Variable] = []
        base: list[Operand] = []  # variable -> the positive, unshifted operand it stands for
        index: dict[str, int] = {}
        terms: list[list[tuple[int, int, int]]] = []
        for operands, _ in rows:
            row = []
            for op in operands:
                if op.wire not in index:
                    index[op.wire] = len(variables)
                    variables.append(Variable(op.lo, op.hi, self.depth_of(op)))
                    base.append(Operand(op.wire, op.lo, op.hi))
                row.append((index[op.wire], op.shift, op.sign))
            terms.append(row)
        constants = [c for _, c in rows]
        if parents is not None:
            coef = [_coefficients(row) for row in terms]
            for o, (p, g) in enumerate(parents):
                if p >= 0:
                    delta = dict(coef[o])
                    for v, c in coef[p].items():
                        delta[v] = delta.get(v, 0) - g * c
                    terms[o] = [(v, s, d) for v, c in delta.items() for s, d in naf_digits(c)]
                    constants[o] = rows[o][1] - g * rows[p][1]  # y_p holds its own constant
        limits = None
        if max_depth is not None:
            limits = []
            for row, constant, (p, _) in zip(terms, constants, parents or [(-1, 0)] * len(rows), strict=True):
                limit = 1 << (max_depth - (constant != 0))
                if max_depth < 1 or sum(1 << variables[v].depth for v, _, _ in row) > limit:
                    raise ValueError(f"an output of {len(row)} terms (and constant {constant}) cannot be summed "
                                     f"in at most {max_depth} levels of adders")  # fmt: skip
                limits.append(limit // 2 if p >= 0 else limit)  # half the tree is left for the parent's sum

        def build(key: tuple[int, int, int, int]) -> Variable:
            a, b, d, g = key
            pa, pb = base[a], base[b]
            s = self.add(Operand(pa.wire, pa.lo, pa.hi, pa.shift + max(0, -d), pa.sign),
                         Operand(pb.wire, pb.lo, pb.hi, pb.shift + max(0, d), pb.sign * g))  # fmt: skip
            base.append(Operand(s.wire, s.lo, s.hi))  # s.shift is 0: one of the two has no shift
            return Variable(s.lo, s.hi, self.depth_of(s), sign=s.sign)

        if options.share:
            share(terms, variables, build, row_limits=limits, max_pairs=options.max_pairs, min_uses=options.min_uses)
        out: list[Operand | None] = [None] * len(rows)
        for o in _parents_first(parents or [(-1, 0)] * len(rows)):
            ops = [Operand(base[v].wire, base[v].lo, base[v].hi, s, g) for v, s, g in terms[o]]
            if parents is not None and parents[o][0] >= 0:
                y, g = out[parents[o][0]], parents[o][1]
                ops.append(Operand(y.wire, y.lo, y.hi, y.shift, y.sign * g))
            out[o] = self.sum(ops, constants[o], max_depth)
        return out


def _coefficients(row: list[tuple[int, int, int]]) -> dict[int, int]:
    """Each variable's integer coefficient in a row of (variable, shift, sign) terms."""
    coef: dict[int, int] = {}
    for v, s, g in row:
        coef[v] = coef.get(v, 0) + (g << s)
    return coef


def _parents_first(parents: list[tuple[int, int]]) -> list[int]:
    """Row indices ordered so that every row comes after its parent."""
    children: list[list[int]] = [[] for _ in parents]
    for o, (p, _) in enumerate(parents):
        if p >= 0:
            children[p].append(o)
    order, stack = [], [o for o, (p, _) in enumerate(parents) if p < 0][::-1]
    while stack:
        o = stack.pop()
        order.append(o)
        stack += children[o][::-1]
    return order


#: A decomposition is tried only when it saves at least this fraction of the matrix's digits (each try is a search).
MIN_SAVING = 0.005

#: Coefficient matrices above this many entries times rows are not decomposed (the search is quadratic in rows).
MAX_DECOMPOSE = 1 << 22


def _decompositions(rows: list[tuple[list[Operand], int]], chains: tuple[int | None, ...]) -> list:
    """The row decompositions worth trying (one per chain bound that changes anything)."""
    index: dict[str, int] = {}
    coef = []
    for operands, _ in rows:
        c: dict[int, int] = {}
        for op in operands:
            v = index.setdefault(op.wire, len(index))
            c[v] = c.get(v, 0) + (op.sign << op.shift)
        coef.append(c)
    if len(rows) ** 2 * len(index) > MAX_DECOMPOSE:
        return []
    top = max((abs(v) for c in coef for v in c.values()), default=0)
    if top >= 1 << 40:  # int64 room for 3 * (a - b)
        return []
    matrix = np.zeros((len(rows), len(index)), dtype=np.int64)
    for o, c in enumerate(coef):
        for v, value in c.items():
            matrix[o, v] = value
    own = naf_weight(matrix).sum(axis=1)
    plans = []
    for chain in chains:
        plan = decompose(matrix, chain)
        saved = sum(int(own[o]) - int(naf_weight(matrix[o] - g * matrix[p]).sum()) - 1
                    for o, (p, g) in enumerate(plan) if p >= 0)  # fmt: skip
        if saved >= MIN_SAVING * own.sum() and plan not in plans:
            plans.append(plan)
    return plans
