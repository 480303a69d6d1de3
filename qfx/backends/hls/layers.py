"""IR nodes -> calls of the HLS layer library (hls/include/qfx), with every C++ type spelled out.

The generator only decides types, constants and template arguments here; the C++ text lives in the Jinja2
templates of hls/templates. Each node becomes one call ``qfx::<func><targs>(args);`` (a Concat of n inputs: n - 1
two-input calls through exact ``acc`` arrays). Constant arrays (weights, biases, scales, tables) are written as the
integer codes of their typedef'd formats, which g++ initialises statically (see hls/include/qfx/constant.h).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from qfx.backends import HLS_LIMITS, check_graph
from qfx.format import FixedFormat
from qfx.ir.constants import khot_tables, sanitize
from qfx.ir.graph import (
    Add,
    Affine,
    ArgMax,
    Cast,
    Clip,
    Concat,
    Conv2d,
    Dense,
    GlobalSum,
    Graph,
    LeakyRelu,
    Lookup,
    MaxPool2d,
    Mul,
    Node,
    Pad,
    Relu,
    Reshape,
    Softmax,
    SumPool2d,
    Threshold,
    Upsample,
    is_channel_gate,
    spatial,
)

__all__ = ["Constant", "Lowered", "lower"]

MAX_LITERAL_WIDTH = 53  # scalar constants (clip bounds, slopes) are C double literals, exact up to 53 bits


@dataclass(frozen=True)
class Constant:
    """A ``static const`` array of the weights header."""

    name: str
    ctype: str
    values: list[str]


@dataclass(frozen=True)
class Call:
    """One layer: ``qfx::func<targs>(args);``, with a comment naming the IR node."""

    node: str
    func: str
    targs: list[str]
    args: list[str]


@dataclass
class Lowered:
    """Everything the templates render: typedefs, constants, intermediate arrays, calls, ports."""

    typedefs: dict[str, FixedFormat] = field(default_factory=dict)  # C name -> format
    constants: list[Constant] = field(default_factory=list)
    arrays: list[tuple[str, str, int]] = field(default_factory=list)  # (type, name, size) of intermediates
    calls: list[Call] = field(default_factory=list)
    input: tuple[str, str, int] = ("", "", 0)  # (type, name, size)
    output: tuple[str, str, int] = ("", "", 0)
    multipliers: int = 0  # multiplications by a non-constant-power-of-two constant (an estimate of DSP use)


def _literal(code: int, fmt: FixedFormat) -> str:
    """Exact C++ literal of a fixed-point constant (a double holds it exactly)."""
    if fmt.width > MAX_LITERAL_WIDTH:
        raise ValueError(f"constant format {fmt} is wider than {MAX_LITERAL_WIDTH} bits: not a C double literal")
    return repr(math.ldexp(float(int(code)), -fmt.frac_bits))


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _code_type(fmt: FixedFormat) -> str:
    """C integer type holding every code of ``fmt``."""
    return "int" if fmt.width <= 31 else "long long"


def _sh_format(x: FixedFormat, acc: FixedFormat, max_exponent: int) -> FixedFormat:
    """Type in which ``x << e`` (e <= max_exponent) is exact, for the K-hot shift-and-add templates."""
    frac = max(x.frac_bits, acc.frac_bits)
    int_bits = max(acc.int_bits, x.int_bits + (not x.signed) + max(max_exponent, 0))
    return FixedFormat(int_bits + frac, int_bits, True)


class _Lowering:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.out = Lowered()
        self.taken: set[str] = {"x", "y"}
        self.arrays: dict[str, str] = {}  # tensor -> C array name
        self.types: dict[str, str] = {}  # tensor -> C type name
        self.code_of: dict[str, str] = {}  # constant array -> C integer type of its codes

    def typedef(self, name: str, fmt: FixedFormat) -> str:
        ident = sanitize(f"{name}_t", self.taken)
        self.out.typedefs[ident] = fmt
        return ident

    def tensor(self, tensor: str) -> tuple[str, str]:
        """(C type, C array) of an IR tensor, declared on first use."""
        if tensor not in self.arrays:
            ident = sanitize(tensor, self.taken)
            self.arrays[tensor] = ident
            self.types[tensor] = self.typedef(ident, self.g.fmt(tensor))
            if tensor not in self.g.outputs:
                self.out.arrays.append((self.types[tensor], ident, self.g.tensors[tensor].size))
        return self.types[tensor], self.arrays[tensor]

    def constant(self, node: Node, what: str, codes: np.ndarray, fmt: FixedFormat) -> tuple[str, str]:
        """Weights, biases, scales: a ROM of integer codes of ``fmt`` (see :meth:`table`)."""
        return self.table(node, what, codes, fmt)

    def digits(self, node: Node, codes: np.ndarray, fmt: FixedFormat, k: int) -> tuple[str, str, int]:
        """Sign and shift tables of K-hot constants; returns their names and the largest value exponent."""
        shifts, signs = khot_tables(codes, k)
        exponents = shifts - fmt.frac_bits  # weight value = sum sign * 2**(shift - F)
        used = exponents[signs != 0]
        sign_name = sanitize(f"{node.name}_digit_sign", self.taken)
        shift_name = sanitize(f"{node.name}_digit_shift", self.taken)
        self.out.constants.append(Constant(sign_name, "signed char", [str(int(s)) for s in signs.ravel()]))
        self.out.constants.append(Constant(shift_name, "signed char", [str(int(e)) for e in exponents.ravel()]))
        return sign_name, shift_name, int(used.max()) if used.size else 0

    def bias(self, node: Node, codes: np.ndarray | None, fmt: FixedFormat | None, n: int, acc_t: str):
        if codes is None:  # no bias: zeros in the accumulator type (adds nothing, widens nothing)
            name = sanitize(f"{node.name}_zero", self.taken)
            self.out.constants.append(Constant(name, "int", ["0"] * n))
            self.code_of[name] = "int"
            return acc_t, name
        return self.constant(node, "b", codes, fmt)

    def multipliers(self, codes: np.ndarray) -> None:
        powers = [c for c in np.asarray(codes).ravel() if int(c) == 0 or (abs(int(c)) & (abs(int(c)) - 1)) == 0]
        self.out.multipliers += int(np.asarray(codes).size - len(powers))

    # ------------------------------------------------------------------------------------------------ nodes
    def node(self, n: Node) -> None:
        if isinstance(n, Reshape) and n.output not in self.g.outputs:
            self.arrays[n.output], self.types[n.output] = self.tensor(n.inputs[0])[1], self.tensor(n.inputs[0])[0]
            return
        ins = [self.tensor(t) for t in n.inputs]
        out_t, out = self.tensor(n.output)
        x_t, x = ins[0]
        in_fmt = self.g.fmt(n.inputs[0])
        size = self.g.tensors[n.output].size
        acc_t = self.typedef(f"{n.name}_acc", n.acc) if n.acc is not None else None
        call = lambda func, targs, args: self.out.calls.append(Call(n.name, func, targs, args))  # noqa: E731
        if isinstance(n, (Cast, Reshape)):
            call("cast", [x_t, out_t, str(size)], [x, out])
        elif isinstance(n, Dense):
            n_in, n_out = n.weight.shape[1], n.weight.shape[0]
            b_t, b = self.bias(n, n.bias, n.bias_fmt, n_out, acc_t)
            if n.bipolar:  # +-1 inputs and weights: XNOR-popcount, the weights as bits
                p_t = self.typedef(f"{n.name}_p", FixedFormat(n.acc.width, n.acc.width - in_fmt.frac_bits
                                                              - n.weight_fmt.frac_bits))  # fmt: skip
                w = sanitize(f"{n.name}_wbits", self.taken)
                self.out.constants.append(Constant(w, "unsigned char", [str(int(c > 0)) for c in n.weight.ravel()]))
                call("dense_xnor", [x_t, p_t, b_t, acc_t, out_t, str(n_in), str(n_out), self.code_of[b]],
                     [x, out, w, b])  # fmt: skip
            elif n.khot:
                sign, shift, top = self.digits(n, n.weight, n.weight_fmt, n.khot)
                sh_t = self.typedef(f"{n.name}_sh", _sh_format(in_fmt, n.acc, top))
                call("dense_khot", [x_t, sh_t, b_t, acc_t, out_t, str(n_in), str(n_out), str(n.khot),
                                   self.code_of[b]], [x, out, sign, shift, b])  # fmt: skip
            else:
                w_t, w = self.constant(n, "w", n.weight, n.weight_fmt)
                self.multipliers(n.weight)
                call("dense", [x_t, w_t, b_t, acc_t, out_t, str(n_in), str(n_out), self.code_of[w], self.code_of[b]],
                     [x, out, w, b])  # fmt: skip
        elif isinstance(n, Conv2d):
            (c_in, h_in, w_in), (c_out, h_out, w_out) = self.maps(n)
            kh, kw = n.weight.shape[2:]
            geometry = [c_in, h_in, w_in, c_out, h_out, w_out, kh, kw, *n.stride, n.padding[0], n.padding[1],
                        *n.dilation, n.groups]  # fmt: skip
            b_t, b = self.bias(n, n.bias, n.bias_fmt, c_out, acc_t)
            if n.khot:
                sign, shift, top = self.digits(n, n.weight, n.weight_fmt, n.khot)
                sh_t = self.typedef(f"{n.name}_sh", _sh_format(in_fmt, n.acc, top))
                call("conv2d_khot", [x_t, sh_t, b_t, acc_t, out_t, *map(str, geometry), str(n.khot),
                                    self.code_of[b]], [x, out, sign, shift, b])  # fmt: skip
            else:
                w_t, w = self.constant(n, "w", n.weight, n.weight_fmt)
                self.multipliers(n.weight)
                call("conv2d", [x_t, w_t, b_t, acc_t, out_t, *map(str, geometry), self.code_of[w], self.code_of[b]],
                     [x, out, w, b])  # fmt: skip
        elif isinstance(n, Affine):
            self.affine(n, x_t, x, out_t, out, acc_t, call)
        elif isinstance(n, Threshold):
            channels, k = n.thresholds.shape  # thresholds: the input's codes and one above (two more bits: signed)
            t_t, t = self.table(n, "thresholds", n.thresholds, FixedFormat(in_fmt.width + 2, in_fmt.int_bits + 2))
            _, v = self.table(n, "values", n.values, n.acc)
            call("threshold", [x_t, t_t, acc_t, out_t, str(channels), str(size // channels), str(k),
                               self.code_of[t], self.code_of[v]], [x, out, t, v])  # fmt: skip
        elif isinstance(n, Add):
            call("add", [x_t, ins[1][0], out_t, str(size), "true" if n.subtract else "false"], [x, ins[1][1], out])
        elif isinstance(n, Mul) and is_channel_gate(*(self.g.tensors[t].shape for t in n.inputs)):
            channels = self.g.tensors[n.inputs[0]].shape[0]
            call("mul_channel", [x_t, ins[1][0], out_t, str(channels), str(size // channels)], [x, ins[1][1], out])
        elif isinstance(n, Mul):
            call("mul", [x_t, ins[1][0], out_t, str(size)], [x, ins[1][1], out])
        elif isinstance(n, Relu):
            if n.max_code is None:
                call("relu", [x_t, out_t, str(size)], [x, out])
            else:
                call("relu_clip", [x_t, acc_t, out_t, str(size)], [x, out, _literal(n.max_code, n.acc)])
        elif isinstance(n, (MaxPool2d, SumPool2d)):
            (c, h_in, w_in), (_, h_out, w_out) = self.maps(n)
            geometry = [c, h_in, w_in, h_out, w_out, *n.kernel, *n.stride, n.padding[0], n.padding[1]]
            targs = [x_t, out_t] if isinstance(n, MaxPool2d) else [x_t, acc_t, out_t]
            call(n.op, targs + [str(v) for v in geometry], [x, out])
        elif isinstance(n, GlobalSum):
            c, h, w = spatial(self.g.tensors[n.inputs[0]].shape)
            call("global_sum", [x_t, acc_t, out_t, str(c), str(h * w)], [x, out])
        elif isinstance(n, Clip):
            lo, hi = (_literal(c, n.acc) if c is not None else "0" for c in (n.min_code, n.max_code))
            flags = ["true" if c is not None else "false" for c in (n.min_code, n.max_code)]
            call("clip", [x_t, acc_t, out_t, str(size), *flags], [x, out, lo, hi])
        elif isinstance(n, LeakyRelu):
            a_t = self.typedef(f"{n.name}_alpha", n.alpha_fmt)
            call("leaky_relu", [x_t, a_t, out_t, str(size)], [x, out, _literal(n.alpha, n.alpha_fmt)])
        elif isinstance(n, (Pad, Upsample)):
            (c, h_in, w_in), (_, h_out, w_out) = self.maps(n)
            if isinstance(n, Pad):
                geometry = [c, h_in, w_in, h_out, w_out, n.padding[0], n.padding[1]]
                call("pad", [x_t, out_t, *map(str, geometry)], [x, out])
            else:
                call("upsample", [x_t, out_t, *map(str, (c, h_in, w_in, *n.scale))], [x, out])
        elif isinstance(n, Concat):
            self.concat(n, ins, out_t, out, acc_t, call)
        elif isinstance(n, Lookup):
            table_n = 1 << in_fmt.width
            if len(n.table) != table_n:
                raise ValueError(f"node {n.name}: its table has {len(n.table)} entries, not 2**{in_fmt.width}")
            tab_t, tab = self.table(n, "table", n.table, n.acc)
            call("lookup", [x_t, tab_t, out_t, str(size), str(table_n), _bool(in_fmt.signed), _code_type(n.acc)],
                 [x, out, tab])  # fmt: skip
        elif isinstance(n, Softmax):
            self.softmax(n, x_t, x, out_t, out, acc_t, call)
        elif isinstance(n, ArgMax):
            length = self.g.tensors[n.inputs[0]].shape[-1]
            call("argmax", [x_t, acc_t, out_t, str(size), str(length)], [x, out])
        else:
            raise ValueError(f"node {n.name}: the HLS backend has no template for {type(n).__name__}")

    def maps(self, n: Node) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(C, H, W) of the input and the output feature map of ``n`` (a 1-D map (C, L) is (C, 1, L))."""
        return spatial(self.g.tensors[n.inputs[0]].shape), spatial(self.g.tensors[n.output].shape)

    def table(self, node: Node, what: str, codes: np.ndarray, fmt: FixedFormat) -> tuple[str, str]:
        """A table as a ROM of integer codes of ``fmt`` (typedef'd): (C type of its values, array name)."""
        if fmt.width > 63:
            raise ValueError(f"node {node.name}: constant format {fmt} is wider than 63 bits: not a C integer code")
        tab_t = self.typedef(f"{node.name}_{what}", fmt)
        name = sanitize(f"{node.name}_{what}", self.taken)
        self.code_of[name] = _code_type(fmt)
        self.out.constants.append(Constant(name, _code_type(fmt), [str(int(c)) for c in np.asarray(codes).ravel()]))
        return tab_t, name

    def concat(self, n: Concat, ins: list[tuple[str, str]], out_t: str, out: str, acc_t: str, call) -> None:
        """Pairwise ``concat2`` calls; partial results live in ``acc_t`` arrays (exact), the last writes out_t."""
        shape = self.g.tensors[n.output].shape
        axis = n.axis % len(shape)
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        inner = [int(np.prod(self.g.tensors[t].shape[axis:], dtype=np.int64)) for t in n.inputs]
        if len(ins) == 1:
            call("cast", [ins[0][0], out_t, str(self.g.tensors[n.output].size)], [ins[0][1], out])
            return
        (a_t, a), width = ins[0], inner[0]
        for k in range(1, len(ins)):
            last = k == len(ins) - 1
            y_t, y = (out_t, out) if last else (acc_t, sanitize(f"{n.name}_part{k}", self.taken))
            if not last:
                self.out.arrays.append((acc_t, y, outer * (width + inner[k])))
            call("concat2", [a_t, ins[k][0], acc_t, y_t, str(outer), str(width), str(inner[k])], [a, ins[k][1], y])
            (a_t, a), width = (y_t, y), width + inner[k]

    def softmax(self, n: Softmax, x_t, x, out_t, out, acc_t, call) -> None:
        spec = n.spec
        size = self.g.tensors[n.output].size
        exp_t, exp = self.table(n, "exp", spec.exp_table, spec.exp_fmt)
        recip_t, recip = self.table(n, "recip", spec.recip_table, spec.recip_fmt)
        sum_t, idx_t = self.typedef(f"{n.name}_sum", spec.sum_fmt), self.typedef(f"{n.name}_idx", spec.index_fmt)
        if len(spec.exp_table) != 1 << spec.in_fmt.width or len(spec.recip_table) != 1 << spec.index_fmt.width:
            raise ValueError(f"node {n.name}: softmax tables of {len(spec.exp_table)} and {len(spec.recip_table)} "
                             f"entries do not match its formats")  # fmt: skip
        targs = [x_t, exp_t, sum_t, idx_t, recip_t, acc_t, out_t, str(size // spec.length), str(spec.length),
                 str(len(spec.exp_table)), str(len(spec.recip_table)), _bool(spec.in_fmt.signed),
                 _code_type(max(spec.exp_fmt, spec.recip_fmt, key=lambda f: f.width))]  # fmt: skip
        call("softmax", targs, [x, out, exp, recip])

    def affine(self, n: Affine, x_t, x, out_t, out, acc_t, call) -> None:
        shape = self.g.tensors[n.inputs[0]].shape
        channels, hw = shape[0], int(np.prod(shape[1:], dtype=np.int64))
        in_fmt = self.g.fmt(n.inputs[0])
        if n.shift is None:
            t_t, t = self.bias(n, None, None, channels, acc_t)
        else:
            t_t, t = self.constant(n, "shift", n.shift, n.shift_fmt)
        if n.khot and n.scale is not None:
            sign, shift, top = self.digits(n, n.scale, n.scale_fmt, n.khot)
            sh_t = self.typedef(f"{n.name}_sh", _sh_format(in_fmt, n.acc, top))
            call("affine_khot", [x_t, sh_t, t_t, acc_t, out_t, str(channels), str(hw), str(n.khot),
                                 self.code_of[t]], [x, out, sign, shift, t])  # fmt: skip
            return
        scale = n.scale if n.scale is not None else np.ones(channels, dtype=np.int64)
        s_fmt = n.scale_fmt if n.scale is not None else FixedFormat(1, 1, signed=False)
        s_t, s = self.constant(n, "scale", scale, s_fmt)
        self.multipliers(scale)
        call("affine", [x_t, s_t, t_t, acc_t, out_t, str(channels), str(hw), self.code_of[s], self.code_of[t]],
             [x, out, s, t])  # fmt: skip


def lower(graph: Graph) -> Lowered:
    """Lower a (cast-fused) graph whose first node casts the float input: that cast's output is the input port."""
    check_graph(graph, "HLS", HLS_LIMITS)
    first = graph.nodes[0]
    lowering = _Lowering(graph)
    out = lowering.out
    in_t, in_name = lowering.typedef("input", graph.fmt(first.output)), "x"
    lowering.types[first.output], lowering.arrays[first.output] = in_t, in_name
    out.input = (in_t, in_name, graph.tensors[first.output].size)
    o = graph.outputs[0]
    lowering.types[o], lowering.arrays[o] = lowering.typedef("result", graph.fmt(o)), "y"
    out.output = (lowering.types[o], "y", graph.tensors[o].size)
    for node in graph.nodes[1:]:
        lowering.node(node)
    return out
