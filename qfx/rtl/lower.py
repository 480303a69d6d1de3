"""IR nodes -> combinational Verilog layer modules: per output element, an exact sum (or max, or clip) and a cast.

Every layer module takes its input tensors as flat buses ``x``, ``x2``, ... and drives its output tensor as ``y``
(see :mod:`qfx.rtl.layer`). Inside, each output element is computed exactly in a wire as wide as its range (see
:mod:`qfx.rtl.netlist`) and assigned to the output format by one ``qfx_cast`` instance, which applies the format's
quantization and overflow modes. The rules of the ops added for real models (clip, leaky ReLU, pad, upsample,
concat, lookup tables, softmax, argmax) are in :mod:`qfx.rtl.lower_ops`. The Verilog text itself is in the Jinja2
template ``hls/templates/rtl/layers.v.j2``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator

import numpy as np

from qfx.format import FixedFormat
from qfx.ir.graph import (
    Add,
    Affine,
    Cast,
    Conv2d,
    Dense,
    GlobalSum,
    Graph,
    MaxPool2d,
    Node,
    Relu,
    SumPool2d,
    spatial,
)
from qfx.rtl.layer import OVERFLOW_CODES, QUANT_CODES, Builder, CastInstance, Layer
from qfx.rtl.netlist import AdderOptions, Operand, literal, signed_bits

__all__ = ["OVERFLOW_CODES", "QUANT_CODES", "AdderOptions", "CastInstance", "Layer", "adder_options", "align",
           "lower_node"]  # fmt: skip

_OPTIONS: contextvars.ContextVar[AdderOptions | None] = contextvars.ContextVar("qfx_rtl_adders", default=None)


@contextlib.contextmanager
def adder_options(options: AdderOptions | None = None, **fields) -> Iterator[AdderOptions]:
    """Lower every node inside the block with ``options`` (or ``AdderOptions(**fields)``): multiplier-free plain
    weights, an adder depth bound, per layer or for all. This is how :func:`qfx.rtl.generate` (or a hardware plan
    where DSPs are scarce) chooses them without changing its signature::

        with adder_options(multiplier_free=True, max_depth=8):
            generate(graph, "out")
    """
    options = options or AdderOptions(**fields)
    if isinstance(options.multiplier_free, (set, list, tuple)):
        options = dataclasses.replace(options, multiplier_free=frozenset(options.multiplier_free))
    token = _OPTIONS.set(options)
    try:
        yield options
    finally:
        _OPTIONS.reset(token)


def align(acc: FixedFormat, frac_bits: int, what: str, node: Node) -> int:
    """Left shift that brings ``frac_bits`` fraction bits to ``acc``'s (an error naming ``node`` if negative)."""
    shift = acc.frac_bits - frac_bits
    if shift < 0:
        raise ValueError(f"node {node.name}: {what} has more fraction bits than the accumulator {acc}")
    return shift


def _bias(node: Node, codes: np.ndarray | None, fmt: FixedFormat | None, index: int) -> int:
    if codes is None:
        return 0
    return int(codes.ravel()[index]) << align(node.acc, fmt.frac_bits, "the bias", node)


def _dense(b: Builder, n: Dense) -> None:
    x = n.inputs[0]
    shift = align(n.acc, b.g.fmt(x).frac_bits + n.weight_fmt.frac_bits, "the product", n)
    for o in range(n.weight.shape[0]):
        terms = [(x, i, c, shift) for i, c in enumerate(n.weight[o]) if c]
        b.weighted(o, terms, _bias(n, n.bias, n.bias_fmt, o), bool(n.khot))


def _conv(b: Builder, n: Conv2d) -> None:
    x = n.inputs[0]
    _, h_in, w_in = spatial(b.g.tensors[x].shape)
    c_out, h_out, w_out = spatial(b.g.tensors[n.output].shape)
    cin_g, cout_g = n.weight.shape[1], c_out // n.groups
    kh, kw = n.weight.shape[2:]
    shift = align(n.acc, b.g.fmt(x).frac_bits + n.weight_fmt.frac_bits, "the product", n)
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


def _affine(b: Builder, n: Affine) -> None:
    x = n.inputs[0]
    shape = b.g.tensors[x].shape
    per_channel = int(np.prod(shape[1:], dtype=np.int64))
    scale_frac = n.scale_fmt.frac_bits if n.scale is not None else 0
    shift = align(n.acc, b.g.fmt(x).frac_bits + scale_frac, "the product", n)
    for i in range(b.g.tensors[x].size):
        c = i // per_channel
        code = int(n.scale.ravel()[c]) if n.scale is not None else 1
        terms = [(x, i, code, shift)] if code else []
        b.weighted(i, terms, _bias(n, n.shift, n.shift_fmt, c), bool(n.khot))


def _add(b: Builder, n: Add) -> None:
    a, c = n.inputs
    sa = align(n.acc, b.g.fmt(a).frac_bits, "the first operand", n)
    sc = align(n.acc, b.g.fmt(c).frac_bits, "the second operand", n)
    sign = -1 if n.subtract else 1
    for i in range(b.g.tensors[n.output].size):
        b.weighted(i, [(a, i, 1, sa), (c, i, sign, sc)], 0, False)


def _windows(b: Builder, n: MaxPool2d | SumPool2d):
    """(output index, input indices) of each pooling window, padding positions left out."""
    c, h_in, w_in = spatial(b.g.tensors[n.inputs[0]].shape)
    _, h_out, w_out = spatial(b.g.tensors[n.output].shape)
    for ch in range(c):
        for oy in range(h_out):
            for ox in range(w_out):
                rows = [oy * n.stride[0] - n.padding[0] + ky for ky in range(n.kernel[0])]
                cols = [ox * n.stride[1] - n.padding[1] + kx for kx in range(n.kernel[1])]
                inside = [(ch * h_in + iy) * w_in + ix for iy in rows for ix in cols
                          if 0 <= iy < h_in and 0 <= ix < w_in]  # fmt: skip
                yield (ch * h_out + oy) * w_out + ox, inside


def _sumpool(b: Builder, n: SumPool2d) -> None:
    x = n.inputs[0]
    shift = align(n.acc, b.g.fmt(x).frac_bits, "the input", n)
    for index, inside in _windows(b, n):
        b.weighted(index, [(x, i, 1, shift) for i in inside], 0, False)


def _global_sum(b: Builder, n: GlobalSum) -> None:
    x = n.inputs[0]
    c, h, w = spatial(b.g.tensors[x].shape)
    shift = align(n.acc, b.g.fmt(x).frac_bits, "the input", n)
    for ch in range(c):
        b.weighted(ch, [(x, ch * h * w + i, 1, shift) for i in range(h * w)], 0, False)


def _maxpool(b: Builder, n: MaxPool2d) -> None:
    x = n.inputs[0]
    align(n.acc, b.g.fmt(x).frac_bits, "the input", n)
    for index, inside in _windows(b, n):
        if not inside:
            raise ValueError(f"node {n.name}: output element {index} has a pooling window of padding only")
        b.emit(index, b.max_tree([b.element(x, i) for i in inside]), b.g.fmt(x).frac_bits)


def _relu(b: Builder, n: Relu) -> None:
    x = n.inputs[0]
    d = align(n.acc, b.g.fmt(x).frac_bits, "the input", n)
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


def _cast(b: Builder, n: Cast) -> None:
    x = n.inputs[0]
    for i in range(b.g.tensors[x].size):
        b.emit(i, b.element(x, i), b.g.fmt(x).frac_bits)


_RULES = {Dense: _dense, Conv2d: _conv, Affine: _affine, Add: _add, SumPool2d: _sumpool, GlobalSum: _global_sum,
          MaxPool2d: _maxpool, Relu: _relu, Cast: _cast}  # fmt: skip


def lower_node(graph: Graph, node: Node, module: str, options: AdderOptions | None = None) -> Layer:
    """The combinational module computing ``node`` (a Reshape never gets one: it is wiring), with ``options`` or
    else those of the enclosing :func:`adder_options` block."""
    from qfx.rtl.lower_ops import RULES  # the newer ops' rules, which build on this module's helpers

    rule = _RULES.get(type(node)) or RULES.get(type(node))
    if isinstance(node, Dense) and node.bipolar:
        from qfx.rtl.lower_ops import bipolar_dense

        rule = bipolar_dense  # XNOR-popcount instead of adding +-x
    if rule is None:
        raise ValueError(f"node {node.name}: the RTL backend has no rule for {type(node).__name__}")
    builder = Builder(graph, node, module, options or _OPTIONS.get() or AdderOptions())
    rule(builder, node)
    return builder.finish()
