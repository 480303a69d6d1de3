"""IR nodes -> combinational Verilog layer modules: per output element, an exact sum (or max, or clip) and a cast.

Every layer module takes its input tensor as one flat bus ``x`` (element ``i`` at ``x[i*W +: W]``, row-major as
the IR lays it out; a second input, for an add, is ``x2``) and drives its output tensor as ``y``. Inside, each
output element is computed exactly in a wire as wide as its range (see :mod:`qfx.rtl.netlist`) and assigned to
the output format by one ``qfx_cast`` instance, which applies the format's quantization and overflow modes. The
Verilog text itself is in the Jinja2 template ``hls/templates/rtl/layers.v.j2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir.graph import Add, Affine, Cast, Conv2d, Dense, GlobalSum, Graph, MaxPool2d, Node, Relu, SumPool2d
from qfx.rtl.netlist import Netlist, Operand, Wire, literal, signed_bits

__all__ = ["CastInstance", "Layer", "lower_node"]

QUANT_CODES = {q: k for k, q in enumerate(Quant)}  # the Q parameter of qfx_cast
OVERFLOW_CODES = {o: k for k, o in enumerate(Overflow)}  # the O parameter of qfx_cast


@dataclass(frozen=True)
class CastInstance:
    """``qfx_cast`` from the signed wire ``source`` (``width`` bits, ``frac_bits``) to output element ``index``."""

    index: int
    source: str
    width: int
    frac_bits: int


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
    multipliers: int = 0

    @property
    def cast_params(self) -> dict[str, int]:
        f = self.out_fmt
        return dict(OW=f.width, OF=f.frac_bits, OS=int(f.signed), Q=QUANT_CODES[f.quant],
                    O=OVERFLOW_CODES[f.overflow], N=f.sat_bits)  # fmt: skip


class _Builder:
    """Lowers one node: declares input elements on demand and collects each output element's source wire."""

    def __init__(self, graph: Graph, node: Node, module: str) -> None:
        self.g, self.n = graph, node
        self.net = Netlist()
        self.elements: dict[tuple[str, int], Operand] = {}
        self.pending: list[tuple[int, list[Operand], int]] = []  # sums, built together in finish()
        ports = ["x", "x2"]
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

    def emit(self, index: int, result: Operand, frac_bits: int) -> None:
        """Output element ``index`` is ``result`` (value ``wire * 2**shift`` with ``frac_bits`` fraction bits)."""
        self.layer.casts.append(CastInstance(index, result.wire, result.width, frac_bits - result.shift))

    def weighted(self, index: int, terms: list[tuple[str, int, int, int]], constant: int, khot: bool) -> None:
        """Output ``index`` = sum of ``x[i] * code * 2**shift`` over ``terms`` (tensor, i, code, shift) plus
        ``constant``, everything in units of the accumulator's LSB."""
        operands = []
        for tensor, i, code, shift in terms:
            operands += self.net.terms(self.element(tensor, i), int(code), shift, khot)
        self.pending.append((index, operands, int(constant)))

    def finish(self) -> Layer:
        results = self.net.sums([(operands, constant) for _, operands, constant in self.pending])
        for (index, _, _), result in zip(self.pending, results, strict=True):
            self.emit(index, result, self.n.acc.frac_bits)
        self.layer.casts.sort(key=lambda c: c.index)
        self.layer.wires = self.net.wires
        self.layer.multipliers = self.net.multipliers
        return self.layer


def _align(acc: FixedFormat, frac_bits: int, what: str, node: Node) -> int:
    shift = acc.frac_bits - frac_bits
    if shift < 0:
        raise ValueError(f"node {node.name}: {what} has more fraction bits than the accumulator {acc}")
    return shift


def _bias(node: Node, codes: np.ndarray | None, fmt: FixedFormat | None, index: int) -> int:
    if codes is None:
        return 0
    return int(codes.ravel()[index]) << _align(node.acc, fmt.frac_bits, "the bias", node)


def _dense(b: _Builder, n: Dense) -> None:
    x = n.inputs[0]
    shift = _align(n.acc, b.g.fmt(x).frac_bits + n.weight_fmt.frac_bits, "the product", n)
    for o in range(n.weight.shape[0]):
        terms = [(x, i, c, shift) for i, c in enumerate(n.weight[o]) if c]
        b.weighted(o, terms, _bias(n, n.bias, n.bias_fmt, o), bool(n.khot))


def _conv(b: _Builder, n: Conv2d) -> None:
    x = n.inputs[0]
    _, h_in, w_in = b.g.tensors[x].shape
    c_out, h_out, w_out = b.g.tensors[n.output].shape
    cin_g, cout_g = n.weight.shape[1], c_out // n.groups
    kh, kw = n.weight.shape[2:]
    shift = _align(n.acc, b.g.fmt(x).frac_bits + n.weight_fmt.frac_bits, "the product", n)
    for co in range(c_out):
        first = (co // cout_g) * cin_g
        for oy in range(h_out):
            for ox in range(w_out):
                terms = []
                for ci in range(cin_g):
                    for ky in range(kh):
                        iy = oy * n.stride[0] - n.padding[0] + ky * n.dilation[0]
                        for kx in range(kw):
                            ix = ox * n.stride[1] - n.padding[1] + kx * n.dilation[1]
                            code = n.weight[co, ci, ky, kx]
                            if code and 0 <= iy < h_in and 0 <= ix < w_in:
                                terms.append((x, ((first + ci) * h_in + iy) * w_in + ix, code, shift))
                index = (co * h_out + oy) * w_out + ox
                b.weighted(index, terms, _bias(n, n.bias, n.bias_fmt, co), bool(n.khot))


def _affine(b: _Builder, n: Affine) -> None:
    x = n.inputs[0]
    shape = b.g.tensors[x].shape
    per_channel = int(np.prod(shape[1:], dtype=np.int64))
    scale_frac = n.scale_fmt.frac_bits if n.scale is not None else 0
    shift = _align(n.acc, b.g.fmt(x).frac_bits + scale_frac, "the product", n)
    for i in range(b.g.tensors[x].size):
        c = i // per_channel
        code = int(n.scale.ravel()[c]) if n.scale is not None else 1
        terms = [(x, i, code, shift)] if code else []
        b.weighted(i, terms, _bias(n, n.shift, n.shift_fmt, c), bool(n.khot))


def _add(b: _Builder, n: Add) -> None:
    a, c = n.inputs
    sa = _align(n.acc, b.g.fmt(a).frac_bits, "the first operand", n)
    sc = _align(n.acc, b.g.fmt(c).frac_bits, "the second operand", n)
    for i in range(b.g.tensors[n.output].size):
        b.weighted(i, [(a, i, 1, sa), (c, i, 1, sc)], 0, False)


def _windows(b: _Builder, n: MaxPool2d | SumPool2d):
    """(output index, input indices) of each pooling window, padding positions left out."""
    c, h_in, w_in = b.g.tensors[n.inputs[0]].shape
    _, h_out, w_out = b.g.tensors[n.output].shape
    for ch in range(c):
        for oy in range(h_out):
            for ox in range(w_out):
                rows = [oy * n.stride[0] - n.padding[0] + ky for ky in range(n.kernel[0])]
                cols = [ox * n.stride[1] - n.padding[1] + kx for kx in range(n.kernel[1])]
                inside = [(ch * h_in + iy) * w_in + ix for iy in rows for ix in cols
                          if 0 <= iy < h_in and 0 <= ix < w_in]  # fmt: skip
                yield (ch * h_out + oy) * w_out + ox, inside


def _sumpool(b: _Builder, n: SumPool2d) -> None:
    x = n.inputs[0]
    shift = _align(n.acc, b.g.fmt(x).frac_bits, "the input", n)
    for index, inside in _windows(b, n):
        b.weighted(index, [(x, i, 1, shift) for i in inside], 0, False)


def _global_sum(b: _Builder, n: GlobalSum) -> None:
    x = n.inputs[0]
    c, h, w = b.g.tensors[x].shape
    shift = _align(n.acc, b.g.fmt(x).frac_bits, "the input", n)
    for ch in range(c):
        b.weighted(ch, [(x, ch * h * w + i, 1, shift) for i in range(h * w)], 0, False)


def _maxpool(b: _Builder, n: MaxPool2d) -> None:
    x = n.inputs[0]
    _align(n.acc, b.g.fmt(x).frac_bits, "the input", n)
    for index, inside in _windows(b, n):
        items = [b.element(x, i) for i in inside]
        while len(items) > 1:  # a balanced tree of comparators
            pairs = [items[k : k + 2] for k in range(0, len(items), 2)]
            items = [p[0] if len(p) == 1 else _max(b.net, *p) for p in pairs]
        b.emit(index, items[0], b.g.fmt(x).frac_bits)


def _max(net: Netlist, a: Operand, c: Operand) -> Operand:
    lo, hi = max(a.lo, c.lo), max(a.hi, c.hi)
    return Operand(net.wire(signed_bits(lo, hi), f"({a.wire} > {c.wire}) ? {a.wire} : {c.wire}"), lo, hi)


def _relu(b: _Builder, n: Relu) -> None:
    x = n.inputs[0]
    d = _align(n.acc, b.g.fmt(x).frac_bits, "the input", n)
    for i in range(b.g.tensors[x].size):
        e = b.element(x, i)
        lo, hi = max(e.lo, 0) << d, max(e.hi, 0) << d
        shifted = e.wire if d == 0 else f"({e.wire} <<< {d})"
        expr = f"({e.wire} < 0) ? 0 : {shifted}"
        if n.max_code is not None and hi > n.max_code:
            m = n.max_code
            expr = f"({e.wire} < 0) ? 0 : ({e.wire} > {literal(m >> d)}) ? {literal(m)} : {shifted}"
            lo, hi = min(lo, m), min(hi, m)
        b.emit(i, Operand(b.net.wire(signed_bits(lo, hi), expr), lo, hi), n.acc.frac_bits)


def _cast(b: _Builder, n: Cast) -> None:
    x = n.inputs[0]
    for i in range(b.g.tensors[x].size):
        b.emit(i, b.element(x, i), b.g.fmt(x).frac_bits)


_RULES = {Dense: _dense, Conv2d: _conv, Affine: _affine, Add: _add, SumPool2d: _sumpool, GlobalSum: _global_sum,
          MaxPool2d: _maxpool, Relu: _relu, Cast: _cast}  # fmt: skip


def lower_node(graph: Graph, node: Node, module: str) -> Layer:
    """The combinational module computing ``node`` (a Reshape never gets one: it is wiring)."""
    rule = _RULES.get(type(node))
    if rule is None:
        raise ValueError(f"node {node.name}: the RTL backend has no rule for {type(node).__name__}")
    builder = _Builder(graph, node, module)
    rule(builder, node)
    return builder.finish()
