"""One combinational layer module under construction: its ports, wires, ROM functions and output casts.

Every layer module takes its input tensors as flat buses ``x``, ``x2``, ``x3``, ... (element ``i`` at
``x[i*W +: W]``, row-major as the IR lays it out) and drives its output tensor as ``y``. Inside, each output element
is computed exactly in a wire as wide as its range (see :mod:`qfx.rtl.netlist`) and assigned to the output format
by one ``qfx_cast`` instance. :class:`Builder` collects all of it for the template ``hls/templates/rtl/layers.v.j2``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir.graph import Graph, Node
from qfx.rtl.netlist import AdderOptions, Netlist, Operand, Wire, literal, signed_bits

__all__ = ["OVERFLOW_CODES", "QUANT_CODES", "Builder", "CastInstance", "Layer", "RomFunction", "cast_params",
           "port_names"]  # fmt: skip

QUANT_CODES = {q: k for k, q in enumerate(Quant)}  # the Q parameter of qfx_cast
OVERFLOW_CODES = {o: k for k, o in enumerate(Overflow)}  # the O parameter of qfx_cast


def port_names(count: int) -> list[str]:
    """Input port names of a layer module with ``count`` inputs: x, x2, x3, ..."""
    return ["x"] + [f"x{k + 1}" for k in range(1, count)]


def cast_params(fmt: FixedFormat) -> dict[str, int]:
    """The output-side parameters of ``qfx_cast`` for ``fmt``."""
    return dict(OW=fmt.width, OF=fmt.frac_bits, OS=int(fmt.signed), Q=QUANT_CODES[fmt.quant],
                O=OVERFLOW_CODES[fmt.overflow], N=fmt.sat_bits)  # fmt: skip


@dataclass(frozen=True)
class CastInstance:
    """``qfx_cast`` from the signed wire ``source`` (``width`` bits, ``frac_bits``) to output element ``index``."""

    index: int
    source: str
    width: int
    frac_bits: int


@dataclass(frozen=True)
class RomFunction:
    """A Verilog function that is a table: ``case`` on the ``in_width``-bit argument, ``entries`` (pattern,
    signed literal) and ``default`` for every other pattern; returns ``out_width`` signed bits."""

    name: str
    in_width: int
    out_width: int
    entries: tuple[tuple[int, str], ...]
    default: str


@dataclass
class Layer:
    """One combinational module: its ports, wires and casts, and the output format every cast targets."""

    node: str
    op: str
    module: str
    inputs: list[tuple[str, str, int]]  # (port, IR tensor, bus width)
    output: tuple[str, int]  # (IR tensor, bus width)
    out_fmt: FixedFormat
    wires: list[Wire] = field(default_factory=list)
    casts: list[CastInstance] = field(default_factory=list)
    functions: list[RomFunction] = field(default_factory=list)
    multipliers: int = 0
    adders: int = 0  # adders and subtractors of the weighted sums
    adder_depth: int = 0  # the most adders between an input and an output
    adder_bits: int = 0  # their total width (what LUTs follow)

    @property
    def cast_params(self) -> dict[str, int]:
        return cast_params(self.out_fmt)


class Builder:
    """Lowers one node: declares input elements on demand and collects each output element's source wire."""

    def __init__(self, graph: Graph, node: Node, module: str, options: AdderOptions | None = None) -> None:
        self.g, self.n = graph, node
        self.options = options or AdderOptions()
        self.net = Netlist(keep=self.options.keep, ternary=self.options.ternary)
        self.elements: dict[tuple[str, int], Operand] = {}
        self.constants: dict[int, Operand] = {}
        self.functions: list[RomFunction] = []
        self.roms: dict[tuple, tuple[RomFunction, int, int]] = {}
        self.pending: list[tuple[int, list[Operand], int]] = []  # sums, built together in finish()
        ports = port_names(len(node.inputs))
        self.ports = {t: ports[k] for k, t in enumerate(node.inputs)}
        out = graph.tensors[node.output]
        self.layer = Layer(
            node=node.name, op=node.op, module=module,
            inputs=[(ports[k], t, graph.tensors[t].size * graph.fmt(t).width) for k, t in enumerate(node.inputs)],
            output=(node.output, out.size * out.fmt.width), out_fmt=out.fmt,
        )  # fmt: skip

    def element(self, tensor: str, index: int) -> Operand:
        """Element ``index`` of an input tensor as a signed wire (unsigned codes get a zero sign bit)."""
        key = (tensor, index)
        if key not in self.elements:
            f = self.g.fmt(tensor)
            port, w = self.ports[tensor], f.width
            select = f"{port}[{index * w} +: {w}]"
            expr = select if f.signed else f"{{1'b0, {select}}}"
            name = self.net.wire(w + (not f.signed), expr)
            self.elements[key] = Operand(name, f.min_code, f.max_code)
        return self.elements[key]

    def constant(self, value: int) -> Operand:
        """A wire holding the constant ``value`` (one per value and layer)."""
        if value not in self.constants:
            self.constants[value] = Operand(self.net.wire(signed_bits(value, value), literal(value)), value, value)
        return self.constants[value]

    def emit(self, index: int, result: Operand, frac_bits: int) -> None:
        """Output element ``index`` is ``result`` (value ``wire * 2**shift`` with ``frac_bits`` fraction bits)."""
        self.layer.casts.append(CastInstance(index, result.wire, result.width, frac_bits - result.shift))

    def weighted(self, index: int, terms: list[tuple[str, int, int, int]], constant: int, khot: bool) -> None:
        """Output ``index`` = sum of ``x[i] * code * 2**shift`` over ``terms`` (tensor, i, code, shift) plus
        ``constant``, everything in units of the accumulator's LSB. Plain weights are canonical signed digits
        (no multiplier) when the options make this node multiplier-free."""
        operands = []
        khot = khot or self.options.free(self.n.name)
        for tensor, i, code, shift in terms:
            operands += self.net.terms(self.element(tensor, i), int(code), shift, khot)
        self.pending.append((index, operands, int(constant)))

    def max2(self, a: Operand, c: Operand) -> Operand:
        """The larger of two (unshifted, positive) operands."""
        lo, hi = max(a.lo, c.lo), max(a.hi, c.hi)
        return Operand(self.net.wire(signed_bits(lo, hi), f"({a.wire} > {c.wire}) ? {a.wire} : {c.wire}"), lo, hi)

    def max_tree(self, items: list[Operand]) -> Operand:
        """The largest of ``items`` by a balanced tree of comparators."""
        while len(items) > 1:
            pairs = [items[k : k + 2] for k in range(0, len(items), 2)]
            items = [p[0] if len(p) == 1 else self.max2(*p) for p in pairs]
        return items[0]

    def rom(self, table: np.ndarray, arg: Operand, offset: int = 0) -> Operand:
        """``table[value(arg) - offset]`` through a ``case`` function of the argument wire's bits (one function
        per distinct table in the layer); only values ``arg`` can take are listed."""
        known = (id(table), offset, arg.lo, arg.hi)  # the same read of the same table: the same function
        if known not in self.roms:
            self.roms[known] = self._rom_function(table, arg, offset)
        f, lo, hi = self.roms[known]
        return Operand(self.net.wire(f.out_width, f"{f.name}({arg.wire})"), lo, hi)

    def _rom_function(self, table: np.ndarray, arg: Operand, offset: int) -> tuple[RomFunction, int, int]:
        values = [int(v) for v in np.asarray(table).ravel()]
        width = arg.width
        first, last = max(arg.lo, offset), min(arg.hi, offset + len(values) - 1)
        if first > last:
            raise ValueError(f"node {self.n.name}: no value of its table can be read ({arg.lo}..{arg.hi})")
        used = values[first - offset : last - offset + 1]
        lo, hi = min(used), max(used)
        default = Counter(used).most_common(1)[0][0]
        mask = (1 << width) - 1
        entries = tuple((v & mask, literal(t)) for v, t in zip(range(first, last + 1), used, strict=True)
                        if t != default)  # fmt: skip
        f = RomFunction(f"f{len(self.functions)}", width, signed_bits(lo, hi), entries, literal(default))
        self.functions.append(f)
        return f, lo, hi

    def cast_wire(self, source: Operand, frac_bits: int, fmt: FixedFormat) -> Operand:
        """``source`` (``frac_bits`` fraction bits) assigned to ``fmt`` by a ``qfx_cast`` into an internal wire;
        the result is a signed operand holding the code of ``fmt``."""
        p = cast_params(fmt)
        params = (f".IW({source.width}), .IF({frac_bits - source.shift}), .IS(1), .OW({p['OW']}), .OF({p['OF']}), "
                  f".OS({p['OS']}), .Q({p['Q']}), .O({p['O']}), .N({p['N']})")  # fmt: skip
        code = self.net.wire(fmt.width, source.wire, cast=params)
        if fmt.signed:
            return Operand(self.net.wire(fmt.width, code), fmt.min_code, fmt.max_code)
        return Operand(self.net.wire(fmt.width + 1, f"{{1'b0, {code}}}"), fmt.min_code, fmt.max_code)

    def finish(self) -> Layer:
        rows = [(operands, constant) for _, operands, constant in self.pending]
        results = self.net.sums(rows, self.options, self.options.depth(self.n.name))
        for (index, _, _), result in zip(self.pending, results, strict=True):
            self.emit(index, result, self.n.acc.frac_bits)
        self.layer.adders = self.net.adders
        self.layer.adder_bits = self.net.adder_bits
        self.layer.adder_depth = max((self.net.depth_of(r) for r in results), default=0)
        self.layer.casts.sort(key=lambda c: c.index)
        self.layer.wires = self.net.wires
        self.layer.functions = self.functions
        self.layer.multipliers = self.net.multipliers
        return self.layer
