"""HLS rows of the ops real models need (clip, leaky ReLU, pad, upsample, concat, lookup, softmax, argmax, 1-D and
asymmetric conv/pool) and the size guard.

Each case is a small IR graph built by hand with seeded-random shapes, formats and rounding/overflow modes; it is
lowered by :func:`qfx.backends.hls.generate` exactly as a user's model is, and its C-simulation must give the
codes :meth:`Graph.run` gives, code for code. To keep g++ time down, every generated project of a group is compiled
into ONE program (each project's files inlined into its own C++ namespace, dispatched by index), cached by
``qfx.sim.apfixed.compile_cached``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from qfx.backends import HLS_LIMITS, DesignTooLarge, SizeLimits, check_graph, unrolled_size
from qfx.backends.hls import generate, read_project
from qfx.backends.hls.generate import write_inputs
from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir.graph import (
    Add,
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
    Softmax,
    SumPool2d,
    Tensor,
    Upsample,
)
from qfx.result_types import product_format, sub_format
from qfx.sim import apfixed
from qfx.tables import SoftmaxSpec, function_table

HLS_INCLUDE = Path(__file__).resolve().parents[1] / "hls" / "include"
QUANTS = list(Quant)
OVERFLOWS = [(Overflow.SAT, 0), (Overflow.WRAP, 0), (Overflow.SAT_SYM, 0), (Overflow.SAT_ZERO, 0),
             (Overflow.WRAP, 1), (Overflow.WRAP_SM, 0)]  # fmt: skip


# ------------------------------------------------------------------------------------------------ graphs by hand
def rand_fmt(rng: np.random.Generator, width: tuple[int, int] = (3, 10), signed: bool | None = None) -> FixedFormat:
    """A format with a random width, binary point (also outside the word) and signedness, default modes."""
    w = int(rng.integers(*width, endpoint=True))
    s = bool(rng.integers(2)) if signed is None else signed
    return FixedFormat(w, int(rng.integers(-2, w + 3)), s)


def out_fmt(rng: np.random.Generator, acc: FixedFormat, signed: bool | None = None) -> FixedFormat:
    """An output format that drops 0-2 fraction bits and 0-2 integer bits of ``acc``, with random modes."""
    s = acc.signed if signed is None else signed
    frac = acc.frac_bits - int(rng.integers(0, 3))
    int_bits = acc.int_bits - int(rng.integers(0, 3)) + (not acc.signed and s)
    width = max(2, int_bits + frac)
    overflow, n = OVERFLOWS[int(rng.integers(len(OVERFLOWS)))]
    if not s and overflow is Overflow.WRAP_SM:
        overflow = Overflow.WRAP
    return FixedFormat(width, width - frac, s, QUANTS[int(rng.integers(len(QUANTS)))], overflow, n)


def exact_acc(bound: int, frac: int) -> FixedFormat:
    """A signed format holding every value of magnitude <= ``bound * 2**-frac`` exactly."""
    int_bits = max(bound, 1).bit_length() + 1 - frac
    return FixedFormat(int_bits + frac, int_bits, True)


def max_abs(fmt: FixedFormat) -> int:
    return max(-fmt.min_code, fmt.max_code)


class Builder:
    """A graph under construction: a float input cast into ``in_fmt``, then nodes added one by one."""

    def __init__(self, name: str, shape: tuple[int, ...], in_fmt: FixedFormat) -> None:
        self.name = name
        self.tensors = {"inp": Tensor("inp", shape, None), "x": Tensor("x", shape, in_fmt)}
        self.nodes: list[Node] = [Cast("quant", ["inp"], "x", in_fmt)]

    def add(self, node: Node, shape: tuple[int, ...], fmt: FixedFormat | None = None) -> str:
        """Append ``node`` writing a new tensor of ``shape`` in ``fmt`` (default: its exact ``acc``)."""
        node.output = f"t{len(self.nodes)}"
        self.tensors[node.output] = Tensor(node.output, tuple(shape), fmt or node.acc)
        self.nodes.append(node)
        return node.output

    def graph(self) -> Graph:
        return Graph(self.tensors, self.nodes, ["inp"], [self.nodes[-1].output], name=self.name)


_ODD = ["int", 'a b;"', "1st", "/net/0/Conv", "qfx", "x", "y", "void", "p0_t"]


def odd_names(graph: Graph) -> Graph:
    """The same graph with node and tensor names that are not C identifiers, C++ keywords, or QFX's own names."""
    g = copy.deepcopy(graph)
    keep = {"inp"}
    rename = {
        t: _ODD[k % len(_ODD)] + ("" if k < len(_ODD) else f" {k}") for k, t in enumerate(g.tensors) if t not in keep
    }
    for name in keep:
        rename[name] = name
    g.tensors = {rename[t]: dataclasses.replace(v, name=rename[t]) for t, v in g.tensors.items()}
    for k, n in enumerate(g.nodes):
        n.name = _ODD[(k + 3) % len(_ODD)]  # duplicates too: sanitize makes them unique
        n.inputs, n.output = [rename[t] for t in n.inputs], rename[n.output]
    g.outputs = [rename[t] for t in g.outputs]
    return g


def rand_input(rng: np.random.Generator, graph: Graph, batch: int = 24) -> np.ndarray:
    """Float inputs that are exact values of the input format, a tenth pinned to each range end."""
    first = graph.nodes[0].output
    fmt, shape = graph.fmt(first), graph.tensors[first].shape
    c = rng.integers(fmt.min_code, fmt.max_code + 1, size=(batch, *shape), dtype=np.int64)
    c[rng.random(c.shape) < 0.1] = fmt.max_code
    c[rng.random(c.shape) < 0.1] = fmt.min_code
    return np.ldexp(c.astype(np.float64), -fmt.frac_bits)


def rand_map(rng: np.random.Generator, one_d: bool) -> tuple[int, ...]:
    c, h, w = (int(v) for v in rng.integers(1, 5, size=3))
    return (c, w + 2) if one_d else (c, h, w)


def conv_weights(rng: np.random.Generator, c_out: int, c_in: int, kh: int, kw: int, x: FixedFormat):
    w_fmt, b_fmt = rand_fmt(rng, (2, 6), signed=True), rand_fmt(rng, (2, 8), signed=True)
    w = rng.integers(w_fmt.min_code, w_fmt.max_code + 1, size=(c_out, c_in, kh, kw))
    b = rng.integers(b_fmt.min_code, b_fmt.max_code + 1, size=c_out)
    frac = max(x.frac_bits + w_fmt.frac_bits, b_fmt.frac_bits)
    bound = (max_abs(x) * max_abs(w_fmt) * c_in * kh * kw << (frac - x.frac_bits - w_fmt.frac_bits)) + (
        max_abs(b_fmt) << (frac - b_fmt.frac_bits))  # fmt: skip
    return w, w_fmt, b, b_fmt, exact_acc(bound, frac)


# ------------------------------------------------------------------------------------------------ one case per op
def case_clip(rng, k: int) -> Graph:
    shape = rand_map(rng, bool(k % 2)) if k % 3 else (int(rng.integers(2, 9)),)
    x = rand_fmt(rng)
    b = Builder(f"clip{k}", shape, x)
    lo, hi = sorted(int(v) for v in rng.integers(x.min_code, x.max_code + 1, size=2))
    lo, hi = (hi, lo) if k == 4 else (lo, hi)  # crossed bounds: min(max(x, lo), hi) is hi everywhere
    lo, hi = (None if k % 4 == 1 else lo), (None if k % 4 == 2 else hi)
    b.add(Clip("clip", ["x"], "", x, min_code=lo, max_code=hi), shape, out_fmt(rng, x))
    return b.graph()


def case_leaky(rng, k: int) -> Graph:
    shape = rand_map(rng, bool(k % 2))
    x = rand_fmt(rng, signed=True)
    alpha_fmt = FixedFormat(int(rng.integers(2, 9)), 0, False)
    alpha = int(rng.integers(1, alpha_fmt.max_code + 1))
    acc = product_format(x, alpha_fmt)
    b = Builder(f"leaky{k}", shape, x)
    b.add(LeakyRelu("leaky", ["x"], "", acc, alpha=alpha, alpha_fmt=alpha_fmt), shape, out_fmt(rng, acc))
    return b.graph()


def case_pad_upsample(rng, k: int) -> Graph:
    one_d = bool(k % 2)
    shape = rand_map(rng, one_d)
    x = rand_fmt(rng)
    b = Builder(f"move{k}", shape, x)
    pads = tuple(int(v) for v in rng.integers(0, 3, size=4))
    pads = (0, pads[1], 0, pads[3]) if one_d else pads
    c, h, w = (shape[0], 1, shape[1]) if one_d else shape
    padded = (c, w + pads[1] + pads[3]) if one_d else (c, h + pads[0] + pads[2], w + pads[1] + pads[3])
    t = b.add(Pad("pad", ["x"], "", x, padding=pads), padded, out_fmt(rng, x) if k % 3 == 0 else None)
    scale = (1, int(rng.integers(1, 4))) if one_d else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    up = (padded[0], padded[1] * scale[1]) if one_d else (c, padded[1] * scale[0], padded[2] * scale[1])
    fmt = b.tensors[t].fmt
    b.add(Upsample("up", [t], "", fmt, scale=scale), up, out_fmt(rng, fmt))
    return b.graph()


def case_concat(rng, k: int) -> Graph:
    """2-4 parts of different formats and lengths: channels of a (C, H, W) / (C, L) map, the last axis of a map,
    or features of a vector."""
    kind = k % 3
    shape = (int(rng.integers(2, 7)),) if kind == 0 else rand_map(rng, bool(k % 2))
    x = rand_fmt(rng, signed=True)
    b = Builder(f"concat{k}", shape, x)
    parts = []
    for j in range(int(rng.integers(2, 5))):
        if kind == 0:  # features: a dense layer of random width
            n = int(rng.integers(1, 5))
            w_fmt = rand_fmt(rng, (2, 5), signed=True)
            w = rng.integers(w_fmt.min_code, w_fmt.max_code + 1, size=(n, shape[0]))
            acc = exact_acc(max_abs(x) * max_abs(w_fmt) * shape[0], x.frac_bits + w_fmt.frac_bits)
            node = Dense(f"part{j}", ["x"], "", acc, weight=w, weight_fmt=w_fmt)
            parts.append(b.add(node, (n,), out_fmt(rng, acc)))
        elif kind == 1:  # channels: a 1x1 convolution of random width
            c_out = int(rng.integers(1, 4))
            w, w_fmt, bias, b_fmt, acc = conv_weights(rng, c_out, shape[0], 1, 1, x)
            node = Conv2d(f"part{j}", ["x"], "", acc, weight=w, weight_fmt=w_fmt, bias=bias, bias_fmt=b_fmt,
                          stride=(1, 1), padding=(0, 0, 0, 0))  # fmt: skip
            parts.append(b.add(node, (c_out, *shape[1:]), out_fmt(rng, acc)))
        else:  # last axis: right padding of random length
            r = int(rng.integers(0, 3))
            fmt = out_fmt(rng, x)
            parts.append(b.add(Pad(f"part{j}", ["x"], "", x, padding=(0, 0, 0, r)), (*shape[:-1], shape[-1] + r), fmt))
    formats = [b.tensors[p].fmt for p in parts]
    frac = max(f.frac_bits for f in formats)
    int_bits = max(f.int_bits + (not f.signed) for f in formats)
    acc = FixedFormat(int_bits + frac, int_bits, True)  # holds every part exactly
    axis = len(shape) - 1 if kind == 2 else 0  # the IR's axis counts from the first dimension after the batch
    shapes = [b.tensors[p].shape for p in parts]
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    b.add(Concat("cat", parts, "", acc, axis=axis), tuple(out_shape), out_fmt(rng, acc) if k % 2 else None)
    return b.graph()


def case_lookup(rng, k: int) -> Graph:
    """Sigmoid / tanh of an 8-bit input (and narrower ones), table in a random output format."""
    function = ("sigmoid", "tanh")[k % 2]
    x = FixedFormat(8 if k < 4 else int(rng.integers(3, 9)), int(rng.integers(1, 5)), bool(k % 3))
    table_fmt = FixedFormat(int(rng.integers(6, 13)), 1, function == "tanh", Quant.RND, Overflow.SAT)
    shape = rand_map(rng, bool(k % 2)) if k % 3 else (int(rng.integers(2, 9)),)
    b = Builder(f"{function}{k}", shape, x)
    table = function_table(function, x, table_fmt)
    fmt = out_fmt(rng, table_fmt) if k % 2 else None
    b.add(Lookup("table", ["x"], "", table_fmt, table=table, function=function), shape, fmt)
    return b.graph()


def case_softmax(rng, k: int) -> Graph:
    n = (5, 10, 2, 7)[k % 4]
    rows = 1 + k % 3
    x = FixedFormat(int(rng.integers(4, 9)), int(rng.integers(1, 5)), bool(k % 2 == 0))
    spec = SoftmaxSpec.build(x, n, exp_width=int(rng.integers(8, 13)), recip_width=int(rng.integers(8, 13)))
    shape = (n,) if rows == 1 else (rows, n)
    b = Builder(f"softmax{k}", shape, x)
    fmt = FixedFormat(8, 1, False, Quant.RND, Overflow.SAT) if k % 2 else None
    b.add(Softmax("softmax", ["x"], "", spec.acc, spec=spec), shape, fmt)
    return b.graph()


def case_argmax(rng, k: int) -> Graph:
    n = int(rng.integers(2, 12))
    bits = max(1, math.ceil(math.log2(n)))
    rows = 1 + k % 3
    x = FixedFormat(int(rng.integers(2, 5)), 2, bool(k % 2))  # few codes: many ties (the first index wins)
    b = Builder(f"argmax{k}", (n,) if rows == 1 else (rows, n), x)
    acc = FixedFormat(bits, bits, False)
    b.add(ArgMax("argmax", ["x"], "", acc), () if rows == 1 else (rows,))
    return b.graph()


def _out_len(n: int, k: int, s: int, d: int, p0: int, p1: int) -> int:
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def case_conv(rng, k: int) -> Graph:
    """Conv1d (k even) or Conv2d with asymmetric padding ('same' with an even kernel and more), stride, dilation
    and groups."""
    one_d = k % 2 == 0
    groups = int(rng.integers(1, 3))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kh, kw = (1, int(rng.integers(1, 5))) if one_d else (int(rng.integers(1, 4)), int(rng.integers(1, 5)))
    sh, sw = (1, int(rng.integers(1, 3))) if one_d else tuple(int(v) for v in rng.integers(1, 3, size=2))
    dh, dw = (1, int(rng.integers(1, 3))) if one_d else tuple(int(v) for v in rng.integers(1, 3, size=2))
    if k % 3 == 0:  # padding='same' with stride 1: the extra pixel at the bottom/right, as PyTorch puts it
        sh = sw = 1
        tot_h, tot_w = dh * (kh - 1), dw * (kw - 1)
        pads = (tot_h // 2, tot_w // 2, tot_h - tot_h // 2, tot_w - tot_w // 2)
    else:
        pads = tuple(int(v) for v in rng.integers(0, 3, size=4))
    pads = (0, pads[1], 0, pads[3]) if one_d else pads
    h = 1 if one_d else int(rng.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 6))
    w = int(rng.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 8))
    x = rand_fmt(rng, (3, 8))
    in_shape = (c_in, w) if one_d else (c_in, h, w)
    b = Builder(f"conv{k}", in_shape, x)
    wt, w_fmt, bias, b_fmt, acc = conv_weights(rng, c_out, c_in // groups, kh, kw, x)
    node = Conv2d("conv", ["x"], "", acc, weight=wt, weight_fmt=w_fmt, bias=bias, bias_fmt=b_fmt, stride=(sh, sw),
                  padding=pads, dilation=(dh, dw), groups=groups)  # fmt: skip
    ho, wo = _out_len(h, kh, sh, dh, pads[0], pads[2]), _out_len(w, kw, sw, dw, pads[1], pads[3])
    b.add(node, (c_out, wo) if one_d else (c_out, ho, wo), out_fmt(rng, acc))
    return b.graph()


def case_pool(rng, k: int) -> Graph:
    """MaxPool / SumPool over 1-D (k even) or 2-D maps with asymmetric padding, then a global sum for some."""
    one_d = k % 2 == 0
    c = int(rng.integers(1, 4))
    kh, kw = (1, int(rng.integers(1, 4))) if one_d else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    sh, sw = (1, int(rng.integers(1, 3))) if one_d else tuple(int(v) for v in rng.integers(1, 3, size=2))
    pads = tuple(int(rng.integers(0, n)) for n in (kh, kw, kh, kw))  # less than the window: never all padding
    h = 1 if one_d else int(rng.integers(kh, 6))
    w = int(rng.integers(kw, 8))
    x = rand_fmt(rng, (3, 8), signed=True)
    b = Builder(f"pool{k}", (c, w) if one_d else (c, h, w), x)
    ho, wo = _out_len(h, kh, sh, 1, pads[0], pads[2]), _out_len(w, kw, sw, 1, pads[1], pads[3])
    shape = (c, wo) if one_d else (c, ho, wo)
    if k % 4 < 2:
        t = b.add(MaxPool2d("pool", ["x"], "", x, kernel=(kh, kw), stride=(sh, sw), padding=pads), shape,
                  out_fmt(rng, x))  # fmt: skip
    else:
        acc = exact_acc(max_abs(x) * kh * kw, x.frac_bits)
        t = b.add(SumPool2d("pool", ["x"], "", acc, kernel=(kh, kw), stride=(sh, sw), padding=pads), shape,
                  out_fmt(rng, acc))  # fmt: skip
    if k % 3 == 0:
        fmt = b.tensors[t].fmt
        acc = exact_acc(max_abs(fmt) * ho * wo, fmt.frac_bits)
        b.add(GlobalSum("gsum", [t], "", acc), (c,), out_fmt(rng, acc))
    return b.graph()


def _two_casts(rng, name: str, k: int):
    """A graph builder on a random input (a map, 1-D or 2-D by ``k``, or a vector) with two casts of it into
    random formats: (builder, shape, (tensor, format) twice)."""
    shape = rand_map(rng, bool(k % 2)) if k % 3 else (int(rng.integers(2, 9)),)
    b = Builder(name, shape, rand_fmt(rng))
    fa, fb = rand_fmt(rng), rand_fmt(rng)
    return b, shape, (b.add(Cast("ca", ["x"], "", fa), shape), fa), (b.add(Cast("cb", ["x"], "", fb), shape), fb)


def case_sub(rng, k: int) -> Graph:
    """``a - b`` of two casts of the input (random formats, either signedness): exact in ap_fixed's signed
    difference type, then a random output format."""
    b, shape, (ta, fa), (tb, fb) = _two_casts(rng, f"sub{k}", k)
    acc = sub_format(fa, fb)
    b.add(Add("sub", [tb, ta] if k % 2 else [ta, tb], "", acc, subtract=True), shape, out_fmt(rng, acc))
    return b.graph()


def case_mul(rng, k: int) -> Graph:
    """``a * b`` of two casts of the input (random formats, either signedness, some with negative or more fraction
    than width bits), or of a map and one value per channel (k >= 4): exact in ap_fixed's product type, then a
    random output format (any rounding/overflow)."""
    b, shape, (ta, fa), (tb, fb) = _two_casts(rng, f"mul{k}", k)
    acc = product_format(fa, fb)
    if k >= 4 and len(shape) > 1:  # a map times one value per channel (its global sum, cast): squeeze-excitation
        fs = exact_acc(max_abs(fb) * (math.prod(shape) // shape[0]), fb.frac_bits)
        ts = b.add(GlobalSum("gsum", [tb], "", fs), (shape[0],))
        fg = rand_fmt(rng)
        tb, acc = b.add(Cast("cg", [ts], "", fg), (shape[0],)), product_format(fa, fg)
    b.add(Mul("mul", [tb, ta] if k % 2 and k < 4 else [ta, tb], "", acc), shape, out_fmt(rng, acc))
    return b.graph()


CASES = {"clip": case_clip, "leaky_relu": case_leaky, "pad_upsample": case_pad_upsample, "concat": case_concat,
         "lookup": case_lookup, "softmax": case_softmax, "argmax": case_argmax, "conv": case_conv,
         "pool": case_pool, "sub": case_sub, "mul": case_mul}  # fmt: skip


# ------------------------------------------------------------------------------------------ many projects, one g++
_PRELUDE = """#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "ap_fixed.h"
#include "ap_int.h"
#include "qfx/qfx.h"
"""


def _inlined(project: Path, ns: str) -> str:
    """The project's firmware and testbench as one namespace (its own #includes dropped, main renamed run)."""
    top = read_project(project)["top"]
    files = ["firmware/parameters.h", "firmware/weights.h", f"firmware/{top}.h", f"firmware/{top}.cpp",
             f"tb/{top}_test.cpp"]  # fmt: skip
    text = "\n".join((project / f).read_text() for f in files)
    text = re.sub(r"^#include .*$", "", text, flags=re.M).replace("int main(int argc", "int run(int argc")
    return f"namespace {ns} {{\n{text}\n}}  // namespace {ns}\n#undef N_INPUT\n#undef N_OUTPUT\n"


def csim_many(graphs: list[Graph], inputs: list[np.ndarray], folder: Path, units: int = 2) -> list[np.ndarray]:
    """Generate every graph, compile all projects into one program, run each on its inputs: the output codes."""
    projects = [generate(g, folder / f"p{k}", name=f"p{k}") for k, g in enumerate(graphs)]
    sources = {}
    for u in range(units):
        parts = [_inlined(p, f"qfx_p{k}") for k, p in enumerate(projects) if k % units == u]
        sources[f"unit{u}.cpp"] = _PRELUDE + "\n".join(parts)
    decls = "".join(f"namespace qfx_p{k} {{ int run(int, char **); }}\n" for k in range(len(projects)))
    cases = "".join(f"  if (k == {k}) return qfx_p{k}::run(argc - 1, argv + 1);\n" for k in range(len(projects)))
    sources["main.cpp"] = f"#include <cstdlib>\n{decls}int main(int argc, char **argv) {{\n  const int k = " \
                          f"std::atoi(argv[1]);\n{cases}  return 9;\n}}\n"  # fmt: skip
    exe = apfixed.compile_cached(sources, flags=("-std=c++14", "-O1", "-w"),
                                 include_dirs=[apfixed.headers_dir(), HLS_INCLUDE], name="hls-ops")  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="qfx-ops-") as tmp:
        for k, (project, x) in enumerate(zip(projects, inputs, strict=True)):
            meta = read_project(project)
            src, dst = Path(tmp) / f"in{k}.txt", Path(tmp) / f"out{k}.txt"
            write_inputs(src, x, meta["input_size"])
            proc = subprocess.run([str(exe), str(k), str(src), str(dst)], capture_output=True, text=True)
            assert proc.returncode == 0, f"case {k} failed: {proc.stderr}"
            results.append(np.loadtxt(dst, dtype=np.int64, ndmin=2))
    return results


def _expected(graph: Graph, x: np.ndarray) -> np.ndarray:
    return np.asarray(graph.run(x), dtype=np.int64).reshape(x.shape[0], -1)


def test_new_ops_csim_equals_ir(tmp_path, toolchain, summary) -> None:
    """Every new op, 4-8 random instances each (every other one with names that are not C identifiers),
    C-simulated in one program: codes equal the IR's."""
    rng = np.random.default_rng(12)
    counts = {"clip": 6, "leaky_relu": 4, "pad_upsample": 6, "concat": 6, "lookup": 6, "softmax": 6, "argmax": 4,
              "conv": 8, "pool": 8, "sub": 6, "mul": 8}  # fmt: skip
    graphs, names = [], []
    for op, n in counts.items():
        for k in range(n):
            graph = CASES[op](rng, k)
            graphs.append(odd_names(graph) if k % 2 else graph)
            names.append(f"{op}[{k}]")
    inputs = [rand_input(rng, g) for g in graphs]
    got = csim_many(graphs, inputs, tmp_path)
    compared, bad = 0, []
    for name, graph, x, codes in zip(names, graphs, inputs, got, strict=True):
        want = _expected(graph, x)
        compared += want.size
        if codes.shape != want.shape or not np.array_equal(codes, want):
            bad.append(f"{name}: {graph.summary()}\n got {codes[:2].tolist()}\nwant {want[:2].tolist()}")
    summary(f"HLS C-sim vs IR, new ops: {len(graphs)} graphs, {compared} codes, {len(bad)} graphs differ")
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------------------------------------ the size guard
def _wide_dense(n_in: int, n_out: int, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    x, w_fmt = FixedFormat(8, 2, True), FixedFormat(4, 1, True)
    w = rng.integers(1, 8, size=(n_out, n_in)) * rng.choice([-1, 1], size=(n_out, n_in))
    acc = exact_acc(max_abs(x) * 8 * n_in, x.frac_bits + w_fmt.frac_bits)
    b = Builder("wide", (n_in,), x)
    b.add(Dense("fc1", ["x"], "", acc, weight=w, weight_fmt=w_fmt), (n_out,), FixedFormat(8, 4, True))
    return b.graph()


def _big_conv(c: int, hw: int) -> Graph:
    x = FixedFormat(8, 2, True)
    b = Builder("cnn", (c, hw, hw), x)
    w_fmt = FixedFormat(4, 1, True)
    w = np.ones((c, c, 3, 3), dtype=np.int64)
    acc = exact_acc(max_abs(x) * 8 * c * 9, x.frac_bits + w_fmt.frac_bits)
    t = b.add(Conv2d("conv1", ["x"], "", acc, weight=w[:, :, :1, :1], weight_fmt=w_fmt), (c, hw, hw), x)
    b.add(Conv2d("conv3", [t], "", acc, weight=w, weight_fmt=w_fmt, padding=(1, 1, 1, 1)), (c, hw, hw), x)
    return b.graph()


def test_size_guard_refuses_before_writing(tmp_path) -> None:
    """A design too large to unroll stops with one line naming its largest layer and the bound; nothing is
    written, and it takes no time (no compile, no unrolling)."""
    cnn = _big_conv(16, 24)  # conv3: 16 * 16 * 9 weights at 576 positions = 1,327,104 MACs
    start = time.perf_counter()
    with pytest.raises(DesignTooLarge) as err:
        generate(cnn, tmp_path / "cnn")
    message = str(err.value)
    assert "\n" not in message and message.startswith("layer conv3 needs 1,327,104 multiply-accumulates unrolled")
    assert f"at most {HLS_LIMITS.macs:,} per design" in message and "generate_stream" in message
    dense = _wide_dense(512, 256)
    too_many = r"^layer fc1 needs 131,072 multiply-accumulates unrolled \(the whole design 131,072\); the fully "
    with pytest.raises(DesignTooLarge, match=too_many + r"parallel HLS backend takes at most 65,536 per design"):
        generate(dense, tmp_path / "dense")
    b = Builder("tables", (4,), FixedFormat(16, 4, True))
    for k in range(5):  # five 16-bit tables: 327,680 entries
        table = np.zeros(1 << 16, dtype=np.int64)
        b.add(Lookup(f"sig{k}", [b.nodes[-1].output], "", FixedFormat(16, 4, True), table=table), (4,))
    with pytest.raises(DesignTooLarge, match=r"^layer sig0 needs 65,536 table entries \(the whole design 327,680\)"):
        generate(b.graph(), tmp_path / "tables")
    assert time.perf_counter() - start < 5 and not any(tmp_path.iterdir())


def test_size_guard_counts_and_limits() -> None:
    """Counts: nonzero weights times output positions; tables by entries; a custom bound for another backend."""
    sizes = {s.node: s for s in unrolled_size(_big_conv(4, 5))}
    assert sizes["conv1"].macs == 16 * 25 and sizes["conv3"].macs == 144 * 25 and sizes["conv3"].constants == 144 + 4
    rng = np.random.default_rng(1)
    table = {s.node: s for s in unrolled_size(case_lookup(rng, 0))}["table"]
    assert table.table_entries == 256 and table.macs == 0
    small = SizeLimits(macs=100, constants=10**6, table_entries=10**6, elements=10**6)
    check_graph(_big_conv(4, 5), "RTL")  # no limits: only the structure is checked
    with pytest.raises(DesignTooLarge, match=r"^layer conv3 needs 3,600 .* the fully parallel RTL backend takes at "
                       r"most 100 per design"):  # fmt: skip
        check_graph(_big_conv(4, 5), "RTL", small)
    check_graph(_wide_dense(64, 10), "HLS", HLS_LIMITS)
