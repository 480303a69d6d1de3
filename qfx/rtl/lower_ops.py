"""RTL rules of the ops real models need: clip, leaky ReLU, zero padding, upsampling, concatenation, lookup tables,
softmax and argmax, each as exact wires and one ``qfx_cast`` per output element (as in :mod:`qfx.rtl.lower`).

Their integer definitions are the interpreter's (:mod:`qfx.ir.interpret`) and :mod:`qfx.tables`'; tables become
``case`` functions of the input code's bits, read by every element of the layer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qfx.ir.constants import naf_digits
from qfx.ir.graph import (
    ArgMax,
    Clip,
    Concat,
    Dense,
    LeakyRelu,
    Lookup,
    Mul,
    Node,
    Pad,
    Softmax,
    Threshold,
    Upsample,
    spatial,
)
from qfx.rtl.layer import Builder
from qfx.rtl.lower import align
from qfx.rtl.netlist import Operand, literal, signed_bits

__all__ = ["MAX_SHIFT_ADD_DIGITS", "RULES"]

#: A leaky ReLU slope with at most this many nonzero signed digits is shifts and adds; a denser one a multiplier.
MAX_SHIFT_ADD_DIGITS = 3


def _shifted(b: Builder, e: Operand, d: int) -> Operand:
    """``e << d`` as its own wire (``e`` unshifted and positive)."""
    if d == 0:
        return e
    lo, hi = e.lo << d, e.hi << d
    return Operand(b.net.wire(signed_bits(lo, hi), f"{e.wire} <<< {d}"), lo, hi)


def _clip(b: Builder, n: Clip) -> None:
    x = n.inputs[0]
    d = align(n.acc, b.g.fmt(x).frac_bits, "the input", n)
    low, high = n.min_code, n.max_code
    if low is not None and high is not None and low > high:  # max(x, low) is always above high
        for i in range(b.g.tensors[x].size):
            b.emit(i, b.constant(high), n.acc.frac_bits)
        return
    for i in range(b.g.tensors[x].size):
        e = b.element(x, i)
        lo, hi = e.lo << d, e.hi << d
        value = e.wire if d == 0 else f"({e.wire} <<< {d})"
        expr, new_lo, new_hi = value, lo, hi
        if low is not None and lo < low:  # x << d < low  <=>  x < ceil(low / 2**d)
            expr = f"({e.wire} < {literal(-((-low) >> d))}) ? {literal(low)} : {expr}"
            new_lo, new_hi = low, max(hi, low)
        if high is not None and new_hi > high:  # x << d > high  <=>  x > floor(high / 2**d)
            expr = f"({e.wire} > {literal(high >> d)}) ? {literal(high)} : {expr}"
            new_lo, new_hi = min(new_lo, high), high
        if expr == value:
            b.emit(i, e, b.g.fmt(x).frac_bits)
            continue
        b.emit(i, Operand(b.net.wire(signed_bits(new_lo, new_hi), expr), new_lo, new_hi), n.acc.frac_bits)


def _leaky_relu(b: Builder, n: LeakyRelu) -> None:
    x = n.inputs[0]
    fx, fa = b.g.fmt(x).frac_bits, n.alpha_fmt.frac_bits
    align(n.acc, fx + fa, "x * alpha", n)
    alpha = int(n.alpha)
    khot = len(naf_digits(alpha)) <= MAX_SHIFT_ADD_DIGITS
    for i in range(b.g.tensors[x].size):
        e = b.element(x, i)
        pos = _shifted(b, Operand(e.wire, max(e.lo, 0), max(e.hi, 0)), fa)  # x << F_alpha where x >= 0
        if e.lo >= 0:
            b.emit(i, pos, fx + fa)
            continue
        neg = b.net.sum(b.net.terms(Operand(e.wire, e.lo, min(e.hi, -1)), alpha, 0, khot))  # x * alpha
        neg = _shifted(b, Operand(neg.wire, neg.lo, neg.hi), neg.shift)
        if e.hi < 0:
            b.emit(i, neg, fx + fa)
            continue
        lo, hi = min(pos.lo, neg.lo), max(pos.hi, neg.hi)
        mux = b.net.wire(signed_bits(lo, hi), f"({e.wire} < 0) ? {neg.wire} : {pos.wire}")
        b.emit(i, Operand(mux, lo, hi), fx + fa)


def _mul(b: Builder, n: Mul) -> None:
    """``a[i] * b[i]`` (or ``* b[channel of i]`` for a per-channel gate): one multiplier per element, its product
    wide enough for every pair of codes."""
    a, c = n.inputs
    frac = b.g.fmt(a).frac_bits + b.g.fmt(c).frac_bits
    align(n.acc, frac, "the product", n)
    size = b.g.tensors[n.output].size
    per = size // b.g.tensors[c].size  # values per gate value: 1, or a channel's positions (a per-channel gate)
    for i in range(size):
        x, y = b.element(a, i), b.element(c, i // per)
        corners = [x.lo * y.lo, x.lo * y.hi, x.hi * y.lo, x.hi * y.hi]
        lo, hi = min(corners), max(corners)
        b.net.multipliers += 1
        b.emit(i, Operand(b.net.wire(signed_bits(lo, hi), f"{x.wire} * {y.wire}"), lo, hi), frac)


def _pad(b: Builder, n: Pad) -> None:
    x = n.inputs[0]
    _, h_in, w_in = spatial(b.g.tensors[x].shape)
    c, h, w = spatial(b.g.tensors[n.output].shape)
    top, left = n.padding[0], n.padding[1]
    fx = b.g.fmt(x).frac_bits
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                iy, ix = i - top, j - left
                inside = 0 <= iy < h_in and 0 <= ix < w_in
                value = b.element(x, (ch * h_in + iy) * w_in + ix) if inside else b.constant(0)
                b.emit((ch * h + i) * w + j, value, fx)


def _upsample(b: Builder, n: Upsample) -> None:
    x = n.inputs[0]
    _, h_in, w_in = spatial(b.g.tensors[x].shape)
    c, h, w = spatial(b.g.tensors[n.output].shape)
    sh, sw = n.scale
    fx = b.g.fmt(x).frac_bits
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                b.emit((ch * h + i) * w + j, b.element(x, (ch * h_in + i // sh) * w_in + j // sw), fx)


def _concat(b: Builder, n: Concat) -> None:
    # Which input and which of its elements each output element is: concatenate index arrays the same way.
    shapes = [b.g.tensors[t].shape for t in n.inputs]
    which = [np.full(s, k, dtype=np.int64) for k, s in enumerate(shapes)]
    where = [np.arange(int(np.prod(s, dtype=np.int64)), dtype=np.int64).reshape(s) for s in shapes]
    try:
        which_out = np.concatenate(which, axis=n.axis).ravel()
        where_out = np.concatenate(where, axis=n.axis).ravel()
    except ValueError as exc:  # numpy's AxisError is one too
        raise ValueError(f"node {n.name}: cannot concatenate shapes {shapes} along axis {n.axis} ({exc})") from None
    for index, (k, i) in enumerate(zip(which_out, where_out, strict=True)):
        t = n.inputs[int(k)]
        b.emit(index, b.element(t, int(i)), b.g.fmt(t).frac_bits)


def _lookup(b: Builder, n: Lookup) -> None:
    x = n.inputs[0]
    f = b.g.fmt(x)
    if len(n.table) != f.max_code - f.min_code + 1:
        raise ValueError(f"node {n.name}: its table has {len(n.table)} entries, its input {f} has "
                         f"{f.max_code - f.min_code + 1} codes")  # fmt: skip
    for i in range(b.g.tensors[x].size):
        b.emit(i, b.rom(n.table, b.element(x, i), f.min_code), n.acc.frac_bits)


def _rows(b: Builder, n: Node) -> tuple[int, int]:
    """(rows, length) of the input seen as rows over its last axis."""
    shape = b.g.tensors[n.inputs[0]].shape
    length = int(shape[-1]) if shape else 1
    return b.g.tensors[n.inputs[0]].size // length, length


def _softmax(b: Builder, n: Softmax) -> None:
    spec, x = n.spec, n.inputs[0]
    rows, length = _rows(b, n)
    if length != spec.length:
        raise ValueError(f"node {n.name}: softmax over {spec.length} values, but the last axis has {length}")
    out_frac = spec.exp_fmt.frac_bits + spec.recip_fmt.frac_bits
    if n.acc.frac_bits != out_frac:
        raise ValueError(f"node {n.name}: its result format {n.acc} is not exp * reciprocal ({spec.acc})")
    f = b.g.fmt(x)
    if f.max_code - f.min_code >= len(spec.exp_table):
        raise ValueError(f"node {n.name}: its input {f} spans more codes than the exponential table "
                         f"({len(spec.exp_table)} entries, for {spec.in_fmt})")  # fmt: skip
    for r in range(rows):
        xs = [b.element(x, r * length + j) for j in range(length)]
        m = b.max_tree(xs)
        es = []
        for e in xs:  # k = max - x in [0, hi - lo], then exp(-k) from the table
            k = b.net.wire(signed_bits(0, f.max_code - f.min_code), f"{m.wire} - {e.wire}")
            es.append(b.rom(spec.exp_table, Operand(k, 0, f.max_code - f.min_code)))
        total = b.net.sum(list(es))  # exact, in exp LSBs
        index = b.cast_wire(total, spec.exp_fmt.frac_bits, spec.index_fmt)  # AP_TRN, AP_SAT: the sum's top bits
        recip = b.rom(spec.recip_table, index)
        for j, e in enumerate(es):
            lo, hi = sorted((e.lo * recip.lo, e.hi * recip.hi))
            b.net.multipliers += 1
            product = b.net.wire(signed_bits(lo, hi), f"{e.wire} * {recip.wire}")
            b.emit(r * length + j, Operand(product, lo, hi), out_frac)


def _argmax(b: Builder, n: ArgMax) -> None:
    x = n.inputs[0]
    rows, length = _rows(b, n)
    for r in range(rows):
        items = [(b.element(x, r * length + j), b.constant(j)) for j in range(length)]
        while len(items) > 1:  # a balanced tree; the earlier half wins ties, so the first index survives
            merged = []
            for k in range(0, len(items), 2):
                if k + 1 == len(items):
                    merged.append(items[k])
                    continue
                (va, ia), (vb, ib) = items[k], items[k + 1]
                later = b.net.wire(1, f"{vb.wire} > {va.wire}")
                lo, hi = max(va.lo, vb.lo), max(va.hi, vb.hi)
                value = Operand(b.net.wire(signed_bits(lo, hi), f"{later} ? {vb.wire} : {va.wire}"), lo, hi)
                ilo, ihi = min(ia.lo, ib.lo), max(ia.hi, ib.hi)
                idx = Operand(b.net.wire(signed_bits(ilo, ihi), f"{later} ? {ib.wire} : {ia.wire}"), ilo, ihi)
                merged.append((value, idx))
            items = merged
        b.emit(r, items[0][1], n.acc.frac_bits)  # the index is a code of acc, as the interpreter has it


def _threshold(b: Builder, n: Threshold) -> None:
    """``values[c, 0] + sum_k (values[c, k+1] - values[c, k]) * (x >= t[c, k])``: the thresholds ascend, so the
    comparisons that fire are a prefix and the sum telescopes to ``values[c, count]``. A threshold at or below the
    input's smallest code always fires (a constant), one above its largest never (left out)."""
    x = n.inputs[0]
    f = b.g.fmt(x)
    channels = n.thresholds.shape[0]
    per_channel = b.g.tensors[x].size // channels
    for i in range(b.g.tensors[x].size):
        c = i // per_channel
        e = b.element(x, i)
        values = [int(v) for v in n.values[c]]
        constant, operands = values[0], []
        for k, t in enumerate(int(t) for t in n.thresholds[c]):
            step = values[k + 1] - values[k]
            if step == 0 or t > min(e.hi, f.max_code):
                continue
            if t <= e.lo:
                constant += step
                continue
            fires = b.net.wire(1, f"{e.wire} >= {literal(t)}")
            lo, hi = min(0, step), max(0, step)
            operands.append(Operand(b.net.wire(signed_bits(lo, hi), f"{fires} ? {literal(step)} : {literal(0)}"),
                                    lo, hi))  # fmt: skip
        b.emit(i, b.net.sum(operands, constant), n.acc.frac_bits)


def bipolar_dense(b: Builder, n: Dense) -> None:
    """A Dense layer on +-1 inputs and weights as XNOR-popcount: the bit of x[i] is its sign bit inverted (+1 is
    01, -1 is 11 in two bits), it agrees with a +1 weight when set and with a -1 weight when clear; the dot product
    is ``2 * popcount - N``, no multiplier and 1-bit adders at the leaves."""
    x = n.inputs[0]
    f = b.g.fmt(x)
    shift = align(n.acc, f.frac_bits + n.weight_fmt.frac_bits, "the product", n)
    n_out, n_in = n.weight.shape
    for o in range(n_out):
        bits = []
        for i in range(n_in):
            e = b.element(x, i)
            sign = f"{e.wire}[{f.width - 1}]"
            agree = f"~{sign}" if n.weight[o, i] > 0 else sign
            bits.append(Operand(b.net.wire(2, f"{{1'b0, {agree}}}"), 0, 1, shift + 1))
        bias = 0 if n.bias is None else int(n.bias[o]) << (n.acc.frac_bits - n.bias_fmt.frac_bits)
        b.emit(o, b.net.sum(bits, bias - (n_in << shift)), n.acc.frac_bits)


RULES: dict[type, Callable[[Builder, Node], None]] = {
    Clip: _clip, LeakyRelu: _leaky_relu, Mul: _mul, Pad: _pad, Upsample: _upsample, Concat: _concat, Lookup: _lookup,
    Softmax: _softmax, ArgMax: _argmax, Threshold: _threshold,
}  # fmt: skip
