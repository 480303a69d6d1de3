"""IR nodes -> units of the streaming HLS library (hls/include/qfx/stream), folded as the hardware plan says.

Every tensor travels as an ``hls::stream`` of words (:class:`Stream`): a feature map in raster order, one pixel
(its C channels) per word; a vector as one word. A stream's ``perm`` lists the flat (PyTorch, C-order) index of
each value in the order it arrives, so a flatten moves nothing: the dense layer after it reads its weight columns
in that order. Units that need another order get a ``relayout`` in front; a tensor read by several units is
copied by ``dup`` units (a FIFO has one reader). The emitter decides types and constants only; the C++ text is in
the header library and the templates of hls/templates/stream.
"""

from __future__ import annotations

import math

import numpy as np

from qfx.backends.hls.layers import _sh_format
from qfx.backends.hls.stream_design import (
    NO_CONST,
    Call,
    Config,
    Constant,
    Stream,
    StreamDesign,
    UnsupportedNode,
    canonical,
    code_type,
    rom_rows,
)
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
    spatial,
)
from qfx.plan import Folding, Plan
from qfx.plan.cost import whole_map_sum
from qfx.result_types import union_format

__all__ = ["Stream", "StreamDesign", "UnsupportedNode", "lower_stream"]


class _Emitter:
    def __init__(self, graph: Graph, plan: Plan, reserved: set[str]) -> None:
        self.g = graph
        self.layers = {la.node: la for la in plan.layers}
        self.depths = plan.fifo_depths
        self.taken: set[str] = {"x", "y", "input_t", "result_t", "input_word_t", "output_word_t", "hls", *reserved}
        self.d = StreamDesign()
        self.root: dict[str, str] = {}
        self.uses: dict[str, int] = {}
        self.ready: dict[str, list[Stream]] = {}

    # ---------------------------------------------------------------------------------------------- helpers
    def root_of(self, tensor: str) -> str:
        return self.root.get(tensor, tensor)

    def stream(self, hint: str, fmt: FixedFormat, size: int, word: int, perm: np.ndarray | None = None) -> Stream:
        s = Stream(sanitize(f"s_{hint}", self.taken), str(fmt), size, word, perm)  # s_: never a C++ or library name
        self.d.streams.append(s)
        return s

    def produce(self, tensor: str, s: Stream) -> None:
        """``s`` carries ``tensor``: one copy per reader (dup units for more than one)."""
        n = self.uses.get(tensor, 0)
        if n == 0:
            raise UnsupportedNode(f"tensor {tensor} is never read: the streaming backend needs every output used")
        copies, current = [], s
        for _ in range(n - 1):
            a, b = (Stream(sanitize(f"{s.name}_cp", self.taken), s.ctype, s.size, s.word, s.perm) for _ab in "ab")
            self.d.streams += [a, b]
            self.d.calls.append(Call(f"fan-out of {tensor}", "dup", [s.wtype, str(s.count)], [current, a, b]))
            copies.append(a)
            current = b
        copies.append(current)
        self.ready[tensor] = copies

    def take(self, tensor: str, reader: str) -> Stream:
        s = self.ready[self.root_of(tensor)].pop(0)
        depth = self.depths.get(tensor) or self.depths.get(self.root_of(tensor)) or 2
        s.depth = max(2, math.ceil(depth / s.word))
        return s

    def require(self, s: Stream, word: int, perm: np.ndarray | None, node: str) -> Stream:
        """``s`` in the order (word, perm): itself, or a relayout unit's output."""
        if s.word == word and np.array_equal(s.order(), np.arange(s.size) if perm is None else perm):
            return s
        order = s.order()
        where = np.empty(s.size, dtype=np.int64)
        where[order] = np.arange(s.size)  # flat index -> arrival position
        target = np.arange(s.size) if perm is None else perm
        idx = self.constant(f"{node}_relayout", where[target], (s.size,))
        out = Stream(sanitize(f"{s.name}_{node}_in", self.taken), s.ctype, s.size, word, perm)
        self.d.streams.append(out)
        targs = [s.ctype, str(s.size), str(s.word), str(word), self._ctype_of(idx)]
        self.d.calls.append(Call(f"{node}: re-order its input", "relayout", targs, [s, out, idx]))
        return out

    def _ctype_of(self, name: str) -> str:
        return next(c.ctype for c in self.d.constants if c.name == name)

    def constant(self, hint: str, codes: np.ndarray, dims: tuple[int, ...], storage: str = "logic") -> str:
        values = np.asarray(codes).astype(np.int64).ravel()
        name = sanitize(hint, self.taken)
        self.d.constants.append(Constant(name, code_type(values), tuple(int(d) for d in dims), values, storage))
        return name

    def config(self, node: Node, types: dict[str, FixedFormat | str], ints: dict[str, int]) -> str:
        name = sanitize(f"{node.name}_cfg", self.taken)
        self.d.configs.append(Config(name, {k: str(v) for k, v in types.items()}, {k: int(v) for k, v in ints.items()}))
        return name

    def folding(self, node: Node) -> Folding:
        la = self.layers.get(node.name)
        return la.folding if la is not None else Folding()

    def storage(self, node: Node) -> str:
        la = self.layers.get(node.name)
        return "rom" if la is not None and la.weights == "rom" else "logic"

    def lanes(self, node: Node, word: int) -> int:
        """Values per clock of an element-wise unit: the plan's PE x pixels, a divisor of the word."""
        f = self.folding(node)
        return math.gcd(f.pe * f.pixels, word)

    def out(self, node: Node, word: int, perm: np.ndarray | None, fmt: FixedFormat | None = None) -> Stream:
        t = self.g.tensors[node.output]
        return self.stream(node.output, fmt or t.fmt, t.size, word, perm)

    def weights(self, node: Dense | Conv2d, matrix: np.ndarray, pe: int, simd: int, in_fmt: FixedFormat):
        """ROM of codes or K-hot digits, rows (NF * SF, PE, SIMD[, K, 2]); the types the MAC needs."""
        storage = self.storage(node)
        if node.khot:
            shifts, signs = khot_tables(matrix, node.khot)
            exps = shifts - node.weight_fmt.frac_bits
            used = exps[signs != 0]
            top = int(used.max()) if used.size else 0
            digits = np.stack([signs, np.where(signs != 0, exps, 0)], axis=-1)
            rows = rom_rows(digits, pe, simd)
            name = self.constant(f"{node.name}_digits", rows, rows.shape, storage)
            return name, {"w_t": NO_CONST, "sh_t": _sh_format(in_fmt, node.acc, top)}
        rows = rom_rows(matrix, pe, simd)
        self.d.multipliers += pe * simd
        return self.constant(f"{node.name}_w", rows, rows.shape, storage), {"w_t": node.weight_fmt}

    def bias(self, node: Node, codes: np.ndarray | None, fmt: FixedFormat | None, n: int, hint: str = "b"):
        if codes is None:
            return self.constant(f"{node.name}_{hint}", np.zeros(n, dtype=np.int64), (n,)), NO_CONST
        return self.constant(f"{node.name}_{hint}", np.asarray(codes), (n,)), fmt

    def cast_to(self, node: Node, s: Stream, fmt: FixedFormat) -> Stream:
        """``s`` re-quantized into ``fmt`` (a unit that moves values, followed by its fused cast)."""
        if s.ctype == str(fmt):
            return s
        out = Stream(sanitize(f"{s.name}_cast", self.taken), str(fmt), s.size, s.word, s.perm)
        self.d.streams.append(out)
        ints = dict(W=s.word, COUNT=s.count, PE=self.lanes(node, s.word), LO=0, HI=0, LO_CODE=0, HI_CODE=0)
        cfg = self.config(node, {"in_t": s.ctype, "acc_t": s.ctype, "out_t": fmt}, ints)
        self.d.calls.append(Call(node.name, "clip", [cfg], [s, out]))
        return out

    # ------------------------------------------------------------------------------------------------ nodes
    def node(self, n: Node) -> None:
        handler = {
            Dense: self.dense, Conv2d: self.conv, MaxPool2d: self.pool, SumPool2d: self.pool,
            GlobalSum: self.global_sum, Cast: self.elementwise, Relu: self.elementwise, Clip: self.elementwise,
            LeakyRelu: self.leaky_relu, Affine: self.affine, Lookup: self.lookup, Add: self.add, Mul: self.add,
            Concat: self.concat, Pad: self.pad, Upsample: self.upsample, ArgMax: self.argmax, Softmax: self.softmax,
            Threshold: self.threshold,
        }.get(type(n))  # fmt: skip
        if handler is None:
            raise UnsupportedNode(f"node {n.name}: the streaming HLS backend has no unit for {type(n).__name__} yet")
        handler(n)

    def _geometry(self, n: Node, kernel, stride, dilation, padding) -> dict[str, int]:
        c_in, h_in, w_in = spatial(self.g.tensors[n.inputs[0]].shape)
        c_out, h_out, w_out = spatial(self.g.tensors[n.output].shape)
        (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
        rows = (h_out - 1) * sh + (kh - 1) * dh + 1
        cols = (w_out - 1) * sw + (kw - 1) * dw + 1
        return dict(C_IN=c_in, H_IN=h_in, W_IN=w_in, C_OUT=c_out, H_OUT=h_out, W_OUT=w_out, KH=kh, KW=kw, SH=sh,
                    SW=sw, DH=dh, DW=dw, PAD_T=padding[0], PAD_L=padding[1], ROWS=max(rows, padding[0] + h_in),
                    COLS=cols, IN_COLS=max(cols, padding[1] + w_in))  # fmt: skip

    def feature_map(self, n: Node, k: int = 0) -> Stream:
        x = self.take(n.inputs[k], n.name)
        return self.require(x, *canonical(self.g.tensors[n.inputs[k]].shape), sanitize(n.name, set()))

    def dense(self, n: Dense) -> None:
        x = self.take(n.inputs[0], n.name)
        in_fmt = self.g.fmt(n.inputs[0])
        n_out, n_in = n.weight.shape
        f = self.folding(n)
        b, b_fmt = self.bias(n, n.bias, n.bias_fmt, n_out)
        if n.bipolar:  # +-1 inputs and weights: XNOR-popcount (qfx/stream/bnn.h), the weight ROM holds bits
            rows = rom_rows((np.asarray(n.weight)[:, x.order()] > 0).astype(np.int64), f.pe, f.simd)
            w = self.constant(f"{n.name}_wbits", rows, rows.shape, self.storage(n))
            p_fmt = FixedFormat(n.acc.width, n.acc.width - in_fmt.frac_bits - n.weight_fmt.frac_bits)
            cfg = self.config(n, {"in_t": in_fmt, "p_t": p_fmt, "b_t": b_fmt, "acc_t": n.acc,
                                  "out_t": self.g.fmt(n.output)},
                              dict(N_IN=n_in, IN_W=x.word, N_OUT=n_out, PE=f.pe, SIMD=f.simd))  # fmt: skip
            y = self.out(n, n_out, None)
            self.d.calls.append(Call(n.name, "dense_xnor", [cfg], [x, y, w, b]))
            self.produce(n.output, y)
            return
        w, types = self.weights(n, np.asarray(n.weight)[:, x.order()], f.pe, f.simd, in_fmt)
        cfg = self.config(n, {"in_t": in_fmt, **types, "b_t": b_fmt, "acc_t": n.acc, "out_t": self.g.fmt(n.output)},
                          dict(N_IN=n_in, IN_W=x.word, N_OUT=n_out, PE=f.pe, SIMD=f.simd, K=n.khot or 0))  # fmt: skip
        y = self.out(n, n_out, None)
        self.d.calls.append(Call(n.name, "dense", [cfg], [x, y, w, b]))
        self.produce(n.output, y)

    def conv(self, n: Conv2d) -> None:
        x = self.feature_map(n)
        in_fmt = self.g.fmt(n.inputs[0])
        geo = self._geometry(n, n.weight.shape[2:], n.stride, n.dilation, n.padding)
        f = self.folding(n)
        c_out = geo["C_OUT"]
        matrix = np.asarray(n.weight).transpose(0, 2, 3, 1).reshape(c_out, -1)  # columns (kh, kw, ic)
        w, types = self.weights(n, matrix, f.pe, f.simd, in_fmt)
        b, b_fmt = self.bias(n, n.bias, n.bias_fmt, c_out)
        cfg = self.config(n, {"in_t": in_fmt, **types, "b_t": b_fmt, "acc_t": n.acc, "out_t": self.g.fmt(n.output)},
                          dict(geo, GROUPS=n.groups, PE=f.pe, SIMD=f.simd, K=n.khot or 0))  # fmt: skip
        y = self.out(n, c_out, canonical(self.g.tensors[n.output].shape)[1])
        self.d.calls.append(Call(n.name, "conv2d", [cfg], [x, y, w, b]))
        self.produce(n.output, y)

    def pool(self, n: MaxPool2d | SumPool2d) -> None:
        if whole_map_sum(n, self.g):  # C accumulators over the pixels, not a window as large as the map
            self.global_sum(n)
            return
        x = self.feature_map(n)
        in_fmt = self.g.fmt(n.inputs[0])
        geo = self._geometry(n, n.kernel, n.stride, (1, 1), n.padding)
        f = self.folding(n)
        cfg = self.config(n, {"in_t": in_fmt, "acc_t": n.acc or in_fmt, "out_t": self.g.fmt(n.output)},
                          dict(geo, PE=f.pe, SIMD=f.simd, MAX=int(isinstance(n, MaxPool2d))))  # fmt: skip
        y = self.out(n, geo["C_OUT"], canonical(self.g.tensors[n.output].shape)[1])
        self.d.calls.append(Call(n.name, "pool2d", [cfg], [x, y]))
        self.produce(n.output, y)

    def global_sum(self, n: GlobalSum | SumPool2d) -> None:
        x = self.feature_map(n)
        c, h, w = spatial(self.g.tensors[n.inputs[0]].shape)
        acc = n.acc or self.g.fmt(n.inputs[0])
        cfg = self.config(n, {"in_t": self.g.fmt(n.inputs[0]), "acc_t": acc, "out_t": self.g.fmt(n.output)},
                          dict(C=c, HW=h * w, PE=math.gcd(self.folding(n).pe, c)))  # fmt: skip
        y = self.out(n, c, None)
        self.d.calls.append(Call(n.name, "global_sum", [cfg], [x, y]))
        self.produce(n.output, y)

    def elementwise(self, n: Cast | Relu | Clip) -> None:
        x = self.take(n.inputs[0], n.name)
        in_fmt = self.g.fmt(n.inputs[0])
        acc = n.acc or in_fmt
        lo = hi = None
        if isinstance(n, Relu):
            lo, hi = 0, n.max_code
        elif isinstance(n, Clip):
            lo, hi = n.min_code, n.max_code
        cfg = self.config(n, {"in_t": in_fmt, "acc_t": acc, "out_t": self.g.fmt(n.output)},
                          dict(W=x.word, COUNT=x.count, PE=self.lanes(n, x.word), LO=lo is not None,
                               HI=hi is not None, LO_CODE=lo or 0, HI_CODE=hi or 0))  # fmt: skip
        y = self.out(n, x.word, x.perm)
        self.d.calls.append(Call(n.name, "clip", [cfg], [x, y]))
        self.produce(n.output, y)

    def leaky_relu(self, n: LeakyRelu) -> None:
        x = self.take(n.inputs[0], n.name)
        cfg = self.config(n, {"in_t": self.g.fmt(n.inputs[0]), "alpha_t": n.alpha_fmt, "acc_t": n.acc,
                              "out_t": self.g.fmt(n.output)},
                          dict(W=x.word, COUNT=x.count, PE=self.lanes(n, x.word), ALPHA_CODE=n.alpha))  # fmt: skip
        y = self.out(n, x.word, x.perm)
        self.d.calls.append(Call(n.name, "leaky_relu", [cfg], [x, y]))
        self.produce(n.output, y)

    def channel_tables(self, n: Node, x: Stream, *tables: np.ndarray) -> tuple[list[np.ndarray], int]:
        """Per-channel ``tables`` in arrival order, cut to their common period (a word, or the whole tensor)."""
        shape = self.g.tensors[n.inputs[0]].shape
        channels = shape[0] if shape else 1
        rows = [np.asarray(t).ravel()[x.order() // max(1, x.size // channels)] for t in tables]
        if all((r.reshape(-1, x.word) == r[: x.word]).all() for r in rows):
            return [r[: x.word] for r in rows], x.word
        return rows, x.size

    def affine(self, n: Affine) -> None:
        x = self.take(n.inputs[0], n.name)
        in_fmt = self.g.fmt(n.inputs[0])
        shape = self.g.tensors[n.inputs[0]].shape
        channels = shape[0] if shape else 1
        ones = np.ones(channels, dtype=np.int64)
        (scale, shift), period = self.channel_tables(n, x, n.scale if n.scale is not None else ones,
                                                     n.shift if n.shift is not None else 0 * ones)  # fmt: skip
        types: dict[str, FixedFormat | str] = {"w_t": n.scale_fmt or NO_CONST}
        if n.khot and n.scale is not None:
            shifts, signs = khot_tables(scale, n.khot)
            exps = shifts - n.scale_fmt.frac_bits
            used = exps[signs != 0]
            digits = np.stack([signs, np.where(signs != 0, exps, 0)], axis=-1)
            s = self.constant(f"{n.name}_digits", digits, digits.shape)
            types["sh_t"] = _sh_format(in_fmt, n.acc, int(used.max()) if used.size else 0)
        else:
            s = self.constant(f"{n.name}_scale", scale, scale.shape)
            if n.scale is not None:
                self.d.multipliers += self.lanes(n, x.word)
        t = self.constant(f"{n.name}_shift", shift, shift.shape)
        cfg = self.config(n, {"in_t": in_fmt, **types, "b_t": n.shift_fmt or NO_CONST, "acc_t": n.acc,
                              "out_t": self.g.fmt(n.output)},
                          dict(W=x.word, COUNT=x.count, PE=self.lanes(n, x.word), PERIOD=period,
                               SCALE=n.scale is not None, SHIFT=n.shift is not None,
                               K=n.khot if n.khot and n.scale is not None else 0))  # fmt: skip
        y = self.out(n, x.word, x.perm)
        self.d.calls.append(Call(n.name, "affine", [cfg], [x, y, s, t]))
        self.produce(n.output, y)

    def threshold(self, n: Threshold) -> None:
        """Per-channel thresholds and values, cut to their period in arrival order (qfx/stream/bnn.h)."""
        x = self.take(n.inputs[0], n.name)
        in_fmt = self.g.fmt(n.inputs[0])
        k = n.thresholds.shape[1]
        columns = [n.thresholds[:, j] for j in range(k)] + [n.values[:, j] for j in range(k + 1)]
        tables, period = self.channel_tables(n, x, *columns)
        t, v = np.stack(tables[:k], axis=-1), np.stack(tables[k:], axis=-1)
        tc = self.constant(f"{n.name}_thresholds", t, (t.size,))
        vc = self.constant(f"{n.name}_values", v, (v.size,))
        types = {"in_t": in_fmt, "t_t": FixedFormat(in_fmt.width + 2, in_fmt.int_bits + 2), "acc_t": n.acc,
                 "out_t": self.g.fmt(n.output)}  # fmt: skip
        cfg = self.config(n, types, dict(W=x.word, COUNT=x.count, PE=self.lanes(n, x.word), PERIOD=period, K=k))
        y = self.out(n, x.word, x.perm)
        self.d.calls.append(Call(n.name, "threshold", [cfg], [x, y, tc, vc]))
        self.produce(n.output, y)

    def lookup(self, n: Lookup) -> None:
        x = self.take(n.inputs[0], n.name)
        in_fmt = self.g.fmt(n.inputs[0])
        if len(n.table) != 1 << in_fmt.width or in_fmt.width > 20:
            raise UnsupportedNode(f"node {n.name}: a lookup table needs one entry per code of {in_fmt} (<= 20 bits)")
        table = self.constant(f"{n.name}_table", np.asarray(n.table), (len(n.table),), self.storage(n))
        cfg = self.config(n, {"in_t": in_fmt, "acc_t": n.acc, "out_t": self.g.fmt(n.output)},
                          dict(W=x.word, COUNT=x.count, PE=self.lanes(n, x.word), IN_BITS=in_fmt.width,
                               SIGNED=in_fmt.signed))  # fmt: skip
        y = self.out(n, x.word, x.perm)
        self.d.calls.append(Call(n.name, "lookup", [cfg], [x, y, table]))
        self.produce(n.output, y)

    def add(self, n: Add | Mul) -> None:
        """A sum, difference (SUB) or product (MUL) of two streams, read in the first one's order."""
        if isinstance(n, Mul) and self.g.tensors[n.inputs[0]].shape != self.g.tensors[n.inputs[1]].shape:
            return self.gate(n)
        a = self.take(n.inputs[0], n.name)
        b = self.require(self.take(n.inputs[1], n.name), a.word, a.perm, sanitize(n.name, set()))
        cfg = self.config(n, {"a_t": self.g.fmt(n.inputs[0]), "b_t": self.g.fmt(n.inputs[1]),
                              "out_t": self.g.fmt(n.output)},
                          dict(W=a.word, COUNT=a.count, PE=self.lanes(n, a.word), SUB=int(getattr(n, "subtract", 0)),
                               MUL=int(isinstance(n, Mul))))  # fmt: skip
        y = self.out(n, a.word, a.perm)
        self.d.calls.append(Call(n.name, "add", [cfg], [a, b, y]))
        self.produce(n.output, y)

    def gate(self, n: Mul) -> None:
        """A feature map times one value per channel (squeeze-and-excitation): the gate's C values are read in
        channel order, then each map word's lanes are multiplied by the gate of their channel (a table in arrival
        order, cut to its period as :meth:`channel_tables` does)."""
        a = self.take(n.inputs[0], n.name)
        g = self.take(n.inputs[1], n.name)
        g = self.require(g, g.word, None, sanitize(n.name, set()))
        (chan,), period = self.channel_tables(n, a, np.arange(self.g.tensors[n.inputs[0]].shape[0]))
        table = self.constant(f"{n.name}_channels", chan, chan.shape)
        types = {"a_t": self.g.fmt(n.inputs[0]), "g_t": self.g.fmt(n.inputs[1]), "out_t": self.g.fmt(n.output)}
        cfg = self.config(n, types, dict(W=a.word, COUNT=a.count, GW=g.word, GCOUNT=g.count, C=g.size, PERIOD=period))
        y = self.out(n, a.word, a.perm)
        self.d.multipliers += a.word
        self.d.calls.append(Call(n.name, "gate", [cfg], [a, g, y, table]))
        self.produce(n.output, y)

    def concat(self, n: Concat) -> None:
        """The inputs side by side along channels (or vector values), rows or columns: a chain of two-input units,
        each exact in the union of its inputs' formats; the last one assigns to the output format."""
        t = self.g.tensors[n.output]
        if n.axis != 0 and len(t.shape) not in (2, 3):
            raise UnsupportedNode(f"node {n.name}: the streaming backend concatenates vectors along axis 0 only")
        parts = [(self.feature_map(n, k), self.g.fmt(i)) for k, i in enumerate(n.inputs)]
        (a, a_fmt), a_shape = parts[0], list(self.g.tensors[n.inputs[0]].shape)
        for k, (b, b_fmt) in enumerate(parts[1:], start=2):
            last = k == len(parts)
            acc = n.acc if last else union_format([a_fmt, b_fmt])
            fmt = self.g.fmt(n.output) if last else acc
            b_shape = self.g.tensors[n.inputs[k - 1]].shape
            a_shape[n.axis] += b_shape[n.axis]
            word, perm = canonical(tuple(a_shape))
            y = self.stream(n.output if last else f"{n.output}_part{k}", fmt, a.size + b.size, word, perm)
            types = {"a_t": a_fmt, "b_t": b_fmt, "acc_t": acc, "out_t": fmt}
            if n.axis == 0:  # channels (or vector values): word by word
                cfg = self.config(n, types, dict(CA=a.word, CB=b.word, COUNT=a.count))
                self.d.calls.append(Call(n.name, "concat", [cfg], [a, b, y]))
            else:  # rows or columns of raster-ordered maps: runs of words
                _, h, _ = spatial(b_shape)
                along_h = len(b_shape) == 3 and n.axis == 1
                rows = 1 if along_h else h
                cfg = self.config(n, types, dict(C=a.word, ROWS=rows, RUN_A=a.count // rows, RUN_B=b.count // rows))
                self.d.calls.append(Call(n.name, "concat_runs", [cfg], [a, b, y]))
            a, a_fmt = y, fmt
        self.produce(n.output, a)

    def pad(self, n: Pad) -> None:
        x = self.feature_map(n)
        c, h_in, w_in = spatial(self.g.tensors[n.inputs[0]].shape)
        _, h_out, w_out = spatial(self.g.tensors[n.output].shape)
        cfg = self.config(n, {"T": x.ctype}, dict(C=c, H_IN=h_in, W_IN=w_in, H_OUT=h_out, W_OUT=w_out,
                                                  PAD_T=n.padding[0], PAD_L=n.padding[1]))  # fmt: skip
        t = self.g.tensors[n.output]
        y = Stream(sanitize(f"s_{n.output}", self.taken), x.ctype, t.size, c, canonical(t.shape)[1])
        self.d.streams.append(y)
        self.d.calls.append(Call(n.name, "pad", [cfg], [x, y]))
        self.produce(n.output, self.cast_to(n, y, self.g.fmt(n.output)))

    def upsample(self, n: Upsample) -> None:
        x = self.feature_map(n)
        c, h_in, w_in = spatial(self.g.tensors[n.inputs[0]].shape)
        cfg = self.config(n, {"T": x.ctype}, dict(C=c, H_IN=h_in, W_IN=w_in, SH=n.scale[0], SW=n.scale[1]))
        t = self.g.tensors[n.output]
        y = Stream(sanitize(f"s_{n.output}", self.taken), x.ctype, t.size, c, canonical(t.shape)[1])
        self.d.streams.append(y)
        self.d.calls.append(Call(n.name, "upsample", [cfg], [x, y]))
        self.produce(n.output, self.cast_to(n, y, self.g.fmt(n.output)))

    def argmax(self, n: ArgMax) -> None:
        shape = self.g.tensors[n.inputs[0]].shape
        x = self.require(self.take(n.inputs[0], n.name), shape[-1], None, sanitize(n.name, set()))
        cfg = self.config(n, {"in_t": self.g.fmt(n.inputs[0]), "acc_t": n.acc, "out_t": self.g.fmt(n.output)},
                          dict(N=shape[-1], COUNT=x.count))  # fmt: skip
        y = self.out(n, 1, None)
        self.d.calls.append(Call(n.name, "argmax", [cfg], [x, y]))
        self.produce(n.output, y)

    def softmax(self, n: Softmax) -> None:
        spec = n.spec
        shape = self.g.tensors[n.inputs[0]].shape
        in_fmt = self.g.fmt(n.inputs[0])
        if in_fmt.width > 20 or spec.index_fmt.width > 20:
            raise UnsupportedNode(f"node {n.name}: softmax tables are indexed by at most 20 bits")
        x = self.require(self.take(n.inputs[0], n.name), shape[-1], None, sanitize(n.name, set()))
        exp = self.constant(f"{n.name}_exp", spec.exp_table, (len(spec.exp_table),), self.storage(n))
        recip = self.constant(f"{n.name}_recip", spec.recip_table, (len(spec.recip_table),), self.storage(n))
        diff = FixedFormat(in_fmt.width + 1, in_fmt.int_bits + 1, True)
        cfg = self.config(n, {"in_t": in_fmt, "diff_t": diff, "exp_t": spec.exp_fmt, "sum_t": spec.sum_fmt,
                              "index_t": spec.index_fmt, "recip_t": spec.recip_fmt, "acc_t": n.acc,
                              "out_t": self.g.fmt(n.output)},
                          dict(N=shape[-1], COUNT=x.count, IN_BITS=in_fmt.width,
                               INDEX_BITS=spec.index_fmt.width))  # fmt: skip
        y = self.out(n, shape[-1], None)
        self.d.calls.append(Call(n.name, "softmax", [cfg], [x, y, exp, recip]))
        self.produce(n.output, y)


def lower_stream(graph: Graph, plan: Plan, reserved: set[str] = frozenset()) -> StreamDesign:
    """The streaming design of a cast-fused ``graph`` (first node: the input cast) folded as ``plan`` says;
    generated names avoid ``reserved`` (the top function's)."""
    e = _Emitter(graph, plan, set(reserved))
    for node in graph.nodes:
        if isinstance(node, Reshape):
            e.root[node.output] = e.root_of(node.inputs[0])
    for node in graph.nodes[1:]:
        if not isinstance(node, Reshape):
            for t in node.inputs:
                e.uses[e.root_of(t)] = e.uses.get(e.root_of(t), 0) + 1
    out = graph.outputs[0]
    e.uses[e.root_of(out)] = e.uses.get(e.root_of(out), 0) + 1
    first = graph.nodes[0]
    word, perm = canonical(graph.tensors[first.output].shape)
    x = e.stream("x", graph.fmt(first.output), graph.tensors[first.output].size, word, perm)
    x.name = "x"
    e.d.input = x
    e.produce(first.output, x)
    for node in graph.nodes[1:]:
        if not isinstance(node, Reshape):
            e.node(node)
    y = e.take(out, "output")
    e.d.output = y
    y.name = "y"
    return e.d
