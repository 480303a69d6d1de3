"""RTL of the ops real models need (clip, leaky ReLU, pad, upsample, concat, lookup tables, softmax, argmax, 1-D
convolutions and pools, asymmetric padding): generated Verilog simulated on Verilator (and Icarus when present)
gives exactly the IR interpreter's codes.

Verilator builds are slow, so each test puts many small layers side by side in one design: every branch reads the
same input, is flattened, and one Concat (with more than two inputs) joins them into the output port. Shapes,
formats and rounding/overflow modes are random but seeded.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir.constants import naf_digits
from qfx.ir.graph import (
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
    Node,
    Pad,
    Reshape,
    Softmax,
    SumPool2d,
    Tensor,
    Upsample,
)
from qfx.result_types import accumulator_format, grow_bits, union_format
from qfx.rtl import generate, read_rtl, simulate_codes
from qfx.rtl.lower_ops import MAX_SHIFT_ADD_DIGITS
from qfx.rtl.size import DesignTooLarge
from qfx.tables import SoftmaxSpec, function_table

SIMULATORS = ("verilator", "icarus")


def need(simulator: str) -> None:
    if simulator == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("iverilog not found: install Icarus Verilog (apt install iverilog) to run the Icarus cases")


def random_format(
    rng: np.random.Generator, width: tuple[int, int] = (4, 9), signed: bool | None = None, ints: tuple | None = None
) -> FixedFormat:
    """A random output format: any quantization and overflow mode (saturation bits for the wrap modes), integer
    bits in ``ints`` (default: -1 to width + 1)."""
    w = int(rng.integers(*width, endpoint=True))
    s = bool(rng.random() < 0.7) if signed is None else signed
    overflow = Overflow(rng.choice(list(Overflow)))
    if overflow is Overflow.WRAP_SM and not s:
        overflow = Overflow.WRAP
    sat = int(rng.integers(0, min(2, w) + 1)) if overflow.wraps else 0
    int_bits = int(rng.integers(*(ints or (-1, w + 1)), endpoint=True))
    return FixedFormat(w, int_bits, s, Quant(rng.choice(list(Quant))), overflow, sat)


class Net:
    """A graph under construction: one float input cast to ``fmt``, branches, a final Concat of their flats."""

    def __init__(self, shape: tuple[int, ...], fmt: FixedFormat, name: str) -> None:
        self.name = name
        self.tensors = {"x": Tensor("x", shape, None), "q": Tensor("q", shape, fmt)}
        self.nodes: list[Node] = [Cast("in", ["x"], "q", fmt)]
        self.flats: list[str] = []

    def add(self, node: Node, shape: tuple[int, ...], fmt: FixedFormat, *, flat: bool = True) -> str:
        """Append ``node`` writing a tensor of ``shape`` and ``fmt``; ``flat``: also a branch of the output."""
        self.tensors[node.output] = Tensor(node.output, shape, fmt)
        self.nodes.append(node)
        if flat:
            self.reshape(node.output, (int(np.prod(shape)),), keep=True)
        return node.output

    def reshape(self, tensor: str, shape: tuple[int, ...], keep: bool = False) -> str:
        out = f"{tensor}.r{len(self.nodes)}"
        self.tensors[out] = Tensor(out, shape, self.tensors[tensor].fmt)
        self.nodes.append(Reshape(f"reshape {tensor}", [tensor], out, self.tensors[tensor].fmt))
        if keep:
            self.flats.append(out)
        return out

    def graph(self) -> Graph:
        fmts = [self.tensors[t].fmt for t in self.flats]
        union = union_format(fmts)
        size = sum(self.tensors[t].size for t in self.flats)
        self.tensors["y"] = Tensor("y", (size,), union)
        nodes = [*self.nodes, Concat("out concat", list(self.flats), "y", union, axis=0)]
        return Graph(self.tensors, nodes, ["x"], ["y"], name=self.name)


def _conv(net: Net, x: str, rng, name: str, c_out: int, kernel, stride, padding, dilation=(1, 1), groups=1) -> None:
    c_in, h, w = net.tensors[x].shape if len(net.tensors[x].shape) == 3 else (net.tensors[x].shape[0], 1,
                                                                               net.tensors[x].shape[1])  # fmt: skip
    one_d = len(net.tensors[x].shape) == 2
    kh, kw = kernel
    ho = (h + padding[0] + padding[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + padding[1] + padding[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    w_fmt = FixedFormat(5, 2)
    weight = rng.integers(-16, 16, size=(c_out, c_in // groups, kh, kw))
    weight[0, 0, 0, 0] = 0  # a zero weight: no term
    bias_fmt = FixedFormat(6, 3)
    bias = rng.integers(-32, 32, size=c_out)
    fx = net.tensors[x].fmt
    acc = accumulator_format(fx, w_fmt, c_in // groups * kh * kw, bias_fmt)
    out_shape = (c_out, wo) if one_d else (c_out, ho, wo)
    node = Conv2d(name, [x], name, acc, weight=weight, weight_fmt=w_fmt, bias=bias, bias_fmt=bias_fmt,
                  stride=stride, padding=padding, dilation=dilation, groups=groups)  # fmt: skip
    net.add(node, out_shape, random_format(rng, (6, 10)))


def _pool(net: Net, x: str, rng, name: str, cls, kernel, stride, padding) -> None:
    shape = net.tensors[x].shape
    c, h, w = shape if len(shape) == 3 else (shape[0], 1, shape[1])
    ho = (h + padding[0] + padding[2] - kernel[0]) // stride[0] + 1
    wo = (w + padding[1] + padding[3] - kernel[1]) // stride[1] + 1
    fx = net.tensors[x].fmt
    if cls is SumPool2d:
        g = grow_bits(kernel[0] * kernel[1])
        acc = FixedFormat(fx.width + g, fx.int_bits + g, fx.signed)
        out = random_format(rng, (6, 10))
    else:
        acc = out = fx
    shape_out = (c, wo) if len(shape) == 2 else (c, ho, wo)
    net.add(cls(name, [x], name, acc, kernel=kernel, stride=stride, padding=padding), shape_out, out)


def maps_net(seed: int) -> Graph:
    """2-D and 1-D convolutions and pools with asymmetric padding, global sum, leaky ReLU, clip, pad, upsample."""
    rng = np.random.default_rng(seed)
    f_in = FixedFormat(int(rng.integers(6, 9)), int(rng.integers(2, 5)), True)
    net = Net((2, 3, 5), f_in, f"maps_{seed}")
    x = "q"
    line = net.reshape(x, (6, 5))  # the same values as a 1-D map: 6 channels of length 5
    _conv(net, x, rng, "conv 2d", 3, (2, 3), (1, 2), (0, 1, 1, 2))
    _conv(net, line, rng, "conv1d", 4, (1, 3), (1, 1), (0, 2, 0, 1), dilation=(1, 2), groups=2)
    _conv(net, line, rng, "conv1d_s2", 2, (1, 2), (1, 2), (0, 0, 0, 1))
    _pool(net, line, rng, "maxpool1d", MaxPool2d, (1, 2), (1, 2), (0, 1, 0, 0))
    _pool(net, line, rng, "sumpool1d", SumPool2d, (1, 3), (1, 2), (0, 0, 0, 1))
    _pool(net, x, rng, "maxpool2d", MaxPool2d, (2, 2), (2, 2), (0, 1, 1, 0))
    _pool(net, x, rng, "sumpool2d", SumPool2d, (2, 2), (1, 1), (1, 0, 0, 1))
    g = grow_bits(5)
    net.add(GlobalSum("gsum1d", [line], "gsum1d", FixedFormat(f_in.width + g, f_in.int_bits + g)), (6,),
            random_format(rng))  # fmt: skip
    fa = int(rng.integers(7, 10))
    alpha_fmt = FixedFormat(fa, 0, False)
    acc = FixedFormat(f_in.width + fa + 1, f_in.int_bits, True)  # one extra fraction bit: aligned by a shift
    for k, alpha in enumerate((int(rng.integers(1, 1 << fa)), 0b1010101)):  # random, and one with 4 NAF digits
        net.add(LeakyRelu(f"leaky{k}", [x], f"leaky{k}", acc, alpha=alpha, alpha_fmt=alpha_fmt), (2, 3, 5),
                random_format(rng, (6, 10), True, (1, 3)))  # fmt: skip
    acc = FixedFormat(f_in.width + 1, f_in.int_bits, True)
    lo, hi = sorted(int(v) | 1 for v in rng.integers(acc.min_code // 2, acc.max_code // 2, size=2))  # odd: between
    for k, (a, b) in enumerate([(lo, hi), (None, hi), (lo - 1, None), (hi, lo)]):
        net.add(Clip(f"clip{k}", [x], f"clip{k}", acc, min_code=a, max_code=b), (2, 3, 5),
                acc if k == 0 else random_format(rng))  # fmt: skip
    net.add(Pad("pad2d", [x], "pad2d", f_in, padding=(1, 0, 0, 2)), (2, 4, 7), f_in)
    net.add(Pad("pad1d", [line], "pad1d", f_in, padding=(0, 2, 0, 1)), (6, 8), random_format(rng))
    net.add(Upsample("up2d", [x], "up2d", f_in, scale=(2, 1)), (2, 6, 5), f_in)
    net.add(Upsample("up1d", [line], "up1d", f_in, scale=(1, 2)), (6, 10), f_in)
    return net.graph()


def tables_net(seed: int) -> Graph:
    """Sigmoid and tanh tables, softmax over 5 values and argmax of signed and unsigned inputs (6 to 8 bits), and
    concatenations of 3 inputs, along L, and of one tensor with itself."""
    rng = np.random.default_rng(seed)
    width = int(rng.integers(6, 9))
    f_in = FixedFormat(width, int(rng.integers(2, 5)), True)
    net = Net((2, 5), f_in, f"tables_{seed}")
    f_u = FixedFormat(width, f_in.int_bits, False)  # AP_WRAP: every signed code becomes another unsigned one
    net.add(Cast("to unsigned", ["q"], "qu", f_u), (2, 5), f_u, flat=False)
    outs = {}
    for x in ("q", "qu"):
        fx = net.tensors[x].fmt
        for function, signed in (("sigmoid", False), ("tanh", True)):
            acc = FixedFormat(8, 1, signed, Quant.RND, Overflow.SAT)
            table = function_table(function, fx, acc)
            node = Lookup(f"{function}({x})", [x], f"{function}_{x}", acc, table=table, function=function)
            outs[function, x] = net.add(node, (2, 5), acc if function == "tanh" else random_format(rng, ints=(1, 2)))
        spec = SoftmaxSpec.build(fx, 5)
        net.add(Softmax(f"softmax({x})", [x], f"softmax_{x}", spec.acc, spec=spec), (2, 5),
                random_format(rng, (6, 10), False, (1, 2)))  # fmt: skip
        b = grow_bits(5)
        net.add(ArgMax(f"argmax({x})", [x], f"argmax_{x}", FixedFormat(b, b, False)), (2,), FixedFormat(b, b, False))
    three = [net.reshape(t, (2, 1, 5)) for t in ("q", outs["sigmoid", "q"], outs["tanh", "qu"])]
    fmts = [net.tensors[t].fmt for t in three]
    net.add(Concat("cat3", three, "cat3", union_format(fmts)), (6, 1, 5), random_format(rng, (6, 10)))
    tanh = outs["tanh", "q"]
    union = union_format([f_in, net.tensors[tanh].fmt])
    net.add(Concat("cat_l", ["q", tanh], "cat_l", union, axis=1), (2, 10), union)
    net.add(Concat("cat_same", ["qu", "qu"], "cat_same", f_u), (4, 5), f_u)
    return net.graph()


def _input_codes(fmt: FixedFormat, size: int, rng: np.random.Generator, extra: int = 120) -> np.ndarray:
    """Every code of ``fmt`` at every position (shifted by position), ties and extremes, then random vectors."""
    codes = np.arange(fmt.min_code, fmt.max_code + 1)
    sweep = np.stack([np.roll(codes, 7 * k) for k in range(size)], axis=1)
    edges = np.array([np.full(size, fmt.min_code), np.full(size, fmt.max_code), np.zeros(size, dtype=np.int64),
                      np.tile([fmt.max_code, fmt.min_code], size)[:size]])  # fmt: skip
    return np.concatenate([sweep, edges, rng.integers(fmt.min_code, fmt.max_code + 1, size=(extra, size))])


def _check(graph: Graph, tmp_path, simulator: str, summary, seed: int) -> None:
    rtl = generate(graph, tmp_path / graph.name)
    fmt = graph.tensors["q"].fmt
    codes = _input_codes(fmt, graph.tensors["q"].size, np.random.default_rng(seed))
    expected = np.asarray(graph.run(codes.reshape(-1, *graph.tensors["q"].shape) * fmt.lsb), dtype=np.int64)
    result = simulate_codes(rtl, codes, simulator=simulator)
    mismatches = int((result.codes != expected).sum())
    ops = sorted({n.op for n in graph.nodes})
    summary(f"RTL ({simulator}) vs IR, {graph.name} ({', '.join(ops)}): {len(codes)} inputs, {expected.size} codes, "
            f"{mismatches} mismatches (build {result.build_s:.1f} s)")  # fmt: skip
    if mismatches:
        bad = np.argwhere(result.codes != expected)[:5]
        raise AssertionError(f"{mismatches} mismatches, first at (vector, element) {bad.tolist()}: "
                             f"RTL {[int(result.codes[tuple(i)]) for i in bad]}, "
                             f"IR {[int(expected[tuple(i)]) for i in bad]}")  # fmt: skip


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_maps_and_elementwise(tmp_path, simulator: str, summary) -> None:
    need(simulator)
    _check(maps_net(3), tmp_path, simulator, summary, 3)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_tables_softmax_argmax_concat(tmp_path, simulator: str, summary) -> None:
    need(simulator)
    _check(tables_net(5), tmp_path, simulator, summary, 5)


def test_structure(tmp_path) -> None:
    """Tables are case functions listing only non-default codes; a concat of 3 inputs gets ports x, x2, x3; the
    softmax has one product per element; a shift-and-add slope has no multiplier."""
    graph = tables_net(5)
    rtl = generate(graph, tmp_path / "t")
    meta = read_rtl(rtl)
    layers = (rtl / meta["sources"][1]).read_text()
    top = (rtl / meta["sources"][2]).read_text()
    assert "function signed" in layers and "case (a)" in layers
    cat3 = next(la for la in meta["layers"] if la["node"] == "cat3")
    assert ".x3(" in top and f"{cat3['module']} u_{cat3['module']}" in top
    assert next(la for la in meta["layers"] if la["op"] == "softmax")["multipliers"] == 10
    maps = generate(maps_net(3), tmp_path / "m")
    leaky = {la["node"]: la["multipliers"] for la in read_rtl(maps)["layers"] if la["op"] == "leaky_relu"}
    alpha = next(n.alpha for n in maps_net(3).nodes if n.name == "leaky0")
    negative = 2 * 3 * 5  # elements that can be negative: each a product (or none, for shifts and adds)
    assert leaky == {"leaky0": 0 if len(naf_digits(alpha)) <= MAX_SHIFT_ADD_DIGITS else negative, "leaky1": negative}


def test_size_guard_is_fast(tmp_path) -> None:
    """A 4096 x 4096 dense layer is refused at once, naming the layer, and writes nothing."""
    f = FixedFormat(8, 3)
    weight = np.ones((4096, 4096), dtype=np.int8)
    t = {"x": Tensor("x", (4096,), None), "q": Tensor("q", (4096,), f), "y": Tensor("y", (4096,), FixedFormat(16, 8))}
    acc = accumulator_format(f, FixedFormat(4, 2), 4096)
    nodes = [Cast("in", ["x"], "q", f), Dense("big fc", ["q"], "y", acc, weight=weight, weight_fmt=FixedFormat(4, 2))]
    graph = Graph(t, nodes, ["x"], ["y"], name="big")
    start = time.perf_counter()
    with pytest.raises(DesignTooLarge, match=r"about 16,781,312 terms.*'big fc' \(dense, 16,781,312 terms\)"):
        generate(graph, tmp_path / "big")
    assert time.perf_counter() - start < 2.0
    assert not (tmp_path / "big").exists()


def test_errors_name_the_node(tmp_path) -> None:
    f = FixedFormat(7, 3)
    t = {"x": Tensor("x", (1, 4), None), "q": Tensor("q", (1, 4), f), "y": Tensor("y", (1, 2), f)}
    pool = MaxPool2d("all padding", ["q"], "y", f, kernel=(1, 2), stride=(1, 4), padding=(0, 0, 0, 3))
    t2 = dict(t, y=Tensor("y", (1, 2), f))
    graph = Graph(t2, [Cast("in", ["x"], "q", f), pool], ["x"], ["y"])
    with pytest.raises(ValueError, match="all padding: output element 1 has a pooling window of padding only"):
        generate(graph, tmp_path / "p")
    table = function_table("tanh", FixedFormat(6, 3), f)  # built for another input width
    lookup = Lookup("tanh(x)", ["q"], "y", f, table=table, function="tanh")
    graph = Graph(dict(t, y=Tensor("y", (1, 4), f)), [Cast("in", ["x"], "q", f), lookup], ["x"], ["y"])
    with pytest.raises(ValueError, match=r"node tanh\(x\): its table has 64 entries, its input ap_fixed<7,3> has 128"):
        generate(graph, tmp_path / "l")
    spec = SoftmaxSpec.build(f, 3)
    bad = Softmax("sm", ["q"], "y", spec.acc, spec=spec)
    graph = Graph(dict(t, y=Tensor("y", (1, 4), spec.acc)), [Cast("in", ["x"], "q", f), bad], ["x"], ["y"])
    with pytest.raises(ValueError, match="node sm: softmax over 3 values, but the last axis has 4"):
        generate(graph, tmp_path / "s")
