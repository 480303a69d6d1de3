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
from qfx.plan import plan
from qfx.result_types import accumulator_format, grow_bits, union_format
from qfx.rtl import generate, read_rtl, simulate, simulate_codes
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


def _dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (shape[0], 1, shape[1]) if len(shape) == 2 else shape


def _axis(rng: np.random.Generator, n: int, dilate: bool = False) -> tuple[int, int, int, int, int, int]:
    """(kernel, stride, pad before, pad after, dilation, output length) of one random window axis over ``n``
    values: pads smaller than the kernel (so no window is padding only), often asymmetric."""
    while True:
        k, s = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        d = int(rng.integers(1, 3)) if dilate and k > 1 else 1
        p0, p1 = (int(v) for v in rng.integers(0, k, size=2))
        out = (n + p0 + p1 - d * (k - 1) - 1) // s + 1
        if out >= 1:
            return k, s, p0, p1, d, out


def _window(rng: np.random.Generator, shape: tuple[int, ...], dilate: bool = False):
    """Kernel, stride, padding (top, left, bottom, right), dilation and output (H, W) of a random window; a 1-D
    map's H axis is the identity."""
    _, h, w = _dims(shape)
    kh, sh, pt, pb, dh, ho = _axis(rng, h, dilate) if len(shape) == 3 else (1, 1, 0, 0, 1, 1)
    kw, sw, pl, pr, dw, wo = _axis(rng, w, dilate)
    return (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw), (ho, wo)


def _shape(shape: tuple[int, ...], c: int, hw: tuple[int, int]) -> tuple[int, ...]:
    return (c, hw[1]) if len(shape) == 2 else (c, *hw)


def _conv(net: Net, x: str, rng: np.random.Generator, name: str) -> None:
    shape = net.tensors[x].shape
    c_in = shape[0]
    groups = int(rng.choice([g for g in range(1, c_in + 1) if c_in % g == 0]))
    c_out = groups * int(rng.integers(1, 3))
    kernel, stride, padding, dilation, out_hw = _window(rng, shape, dilate=True)
    w_fmt = FixedFormat(5, 2)
    weight = rng.integers(-16, 16, size=(c_out, c_in // groups, *kernel))
    weight.flat[0] = 0  # a zero weight: no term
    bias_fmt = FixedFormat(6, 3)
    bias = rng.integers(-32, 32, size=c_out)
    acc = accumulator_format(net.tensors[x].fmt, w_fmt, weight[0].size, bias_fmt)
    node = Conv2d(name, [x], name, acc, weight=weight, weight_fmt=w_fmt, bias=bias, bias_fmt=bias_fmt,
                  stride=stride, padding=padding, dilation=dilation, groups=groups)  # fmt: skip
    net.add(node, _shape(shape, c_out, out_hw), random_format(rng, (6, 10), ints=(3, 7)))


def _pool(net: Net, x: str, rng: np.random.Generator, name: str, cls: type) -> None:
    shape = net.tensors[x].shape
    kernel, stride, padding, _, out_hw = _window(rng, shape)
    fx = net.tensors[x].fmt
    if cls is SumPool2d:
        g = grow_bits(kernel[0] * kernel[1])
        acc = FixedFormat(fx.width + g, fx.int_bits + g, fx.signed)
        out = random_format(rng, (6, 10), ints=(2, 5))
    else:
        acc = out = fx
    node = cls(name, [x], name, acc, kernel=kernel, stride=stride, padding=padding)
    net.add(node, _shape(shape, shape[0], out_hw), out)


def maps_net(seed: int) -> Graph:
    """2-D and 1-D convolutions and pools (asymmetric padding, strides, dilation, groups), global sums, leaky
    ReLU, clip, pad and upsample, on a random (C, H, W) input and the same values seen as a 1-D map (C*H, W)."""
    rng = np.random.default_rng(seed)
    f_in = FixedFormat(int(rng.integers(6, 9)), int(rng.integers(2, 5)), True)
    c, h, w = (int(v) for v in rng.integers((1, 2, 3), (4, 5, 7)))
    net = Net((c, h, w), f_in, f"maps_{seed}")
    x = "q"
    line = net.reshape(x, (c * h, w))  # the same values as a 1-D map: C*H channels of length W
    for t, kind in ((x, "2d"), (line, "1d")):
        _conv(net, t, rng, f"conv {kind}")
        _conv(net, t, rng, f"conv{kind}_b")
        _pool(net, t, rng, f"maxpool{kind}", MaxPool2d)
        _pool(net, t, rng, f"sumpool{kind}", SumPool2d)
        g = grow_bits(h * w)
        acc = FixedFormat(f_in.width + g, f_in.int_bits + g)
        shape = (c, 1, 1) if t == x else (c * h,)
        net.add(GlobalSum(f"gsum{kind}", [t], f"gsum{kind}", acc), shape, random_format(rng, ints=(3, 8)))
        pad = tuple(int(v) for v in rng.integers(0, 3, size=4))
        pad = pad if t == x else (0, pad[1], 0, pad[3])  # (top, left, bottom, right); a 1-D map: left, right
        _, ih, iw = _dims(net.tensors[t].shape)
        out = _shape(net.tensors[t].shape, net.tensors[t].shape[0], (ih + pad[0] + pad[2], iw + pad[1] + pad[3]))
        net.add(Pad(f"pad{kind}", [t], f"pad{kind}", f_in, padding=pad), out,
                f_in if t == x else random_format(rng))  # fmt: skip
        scale = (int(rng.integers(1, 3)) if t == x else 1, int(rng.integers(1, 4)))
        out = _shape(net.tensors[t].shape, net.tensors[t].shape[0], (ih * scale[0], iw * scale[1]))
        net.add(Upsample(f"up{kind}", [t], f"up{kind}", f_in, scale=scale), out, f_in)
    fa = int(rng.integers(7, 10))
    alpha_fmt = FixedFormat(fa, 0, False)
    acc = FixedFormat(f_in.width + fa + 1, f_in.int_bits, True)  # one extra fraction bit: aligned by a shift
    for k, alpha in enumerate((int(rng.integers(1, 1 << fa)), 0b1010101)):  # random, and one with 4 NAF digits
        net.add(LeakyRelu(f"leaky{k}", [x], f"leaky{k}", acc, alpha=alpha, alpha_fmt=alpha_fmt), (c, h, w),
                random_format(rng, (6, 10), True, (1, 3)))  # fmt: skip
    acc = FixedFormat(f_in.width + 1, f_in.int_bits, True)
    lo, hi = sorted(int(v) | 1 for v in rng.integers(acc.min_code // 2, acc.max_code // 2, size=2))  # odd: between
    for k, (a, b) in enumerate([(lo, hi), (None, hi), (lo - 1, None), (hi, lo)]):
        net.add(Clip(f"clip{k}", [x], f"clip{k}", acc, min_code=a, max_code=b), (c, h, w),
                acc if k == 0 else random_format(rng))  # fmt: skip
    return net.graph()


def tables_net(seed: int) -> Graph:
    """Sigmoid and tanh tables, softmax and argmax over rows of 5 values and over the whole vector, of signed and
    unsigned inputs (6 to 8 bits); concatenations of 3 inputs, along L, and of one tensor with itself."""
    rng = np.random.default_rng(seed)
    width, rows = int(rng.integers(6, 9)), int(rng.integers(1, 4))
    f_in = FixedFormat(width, int(rng.integers(2, 5)), True)
    net = Net((rows, 5), f_in, f"tables_{seed}")
    f_u = FixedFormat(width, f_in.int_bits, False)  # AP_WRAP: every signed code becomes another unsigned one
    net.add(Cast("to unsigned", ["q"], "qu", f_u), (rows, 5), f_u, flat=False)
    outs = {}
    for x in ("q", "qu"):
        fx = net.tensors[x].fmt
        for function, signed in (("sigmoid", False), ("tanh", True)):
            acc = FixedFormat(8, 1, signed, Quant.RND, Overflow.SAT)
            table = function_table(function, fx, acc)
            node = Lookup(f"{function}({x})", [x], f"{function}_{x}", acc, table=table, function=function)
            outs[function, x] = net.add(node, (rows, 5), acc if function == "tanh" else random_format(rng, ints=(1, 2)))
        for t in (x, net.reshape(x, (rows * 5,))):
            shape = net.tensors[t].shape
            spec = SoftmaxSpec.build(fx, shape[-1])
            net.add(Softmax(f"softmax({t})", [t], f"softmax_{t}", spec.acc, spec=spec), shape,
                    random_format(rng, (6, 10), False, (1, 2)))  # fmt: skip
            b = grow_bits(shape[-1])
            net.add(ArgMax(f"argmax({t})", [t], f"argmax_{t}", FixedFormat(b, b, False)), shape[:-1] or (1,),
                    FixedFormat(b, b, False))  # fmt: skip
    three = [net.reshape(t, (rows, 1, 5)) for t in ("q", outs["sigmoid", "q"], outs["tanh", "qu"])]
    fmts = [net.tensors[t].fmt for t in three]
    net.add(Concat("cat3", three, "cat3", union_format(fmts)), (3 * rows, 1, 5), random_format(rng, (6, 10)))
    tanh = outs["tanh", "q"]
    union = union_format([f_in, net.tensors[tanh].fmt])
    net.add(Concat("cat_l", ["q", tanh], "cat_l", union, axis=1), (rows, 10), union)
    net.add(Concat("cat_same", ["qu", "qu"], "cat_same", f_u), (2 * rows, 5), f_u)
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
    _check(maps_net(1), tmp_path, simulator, summary, 1)


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
    units = (rtl / meta["sources"][2]).read_text()
    assert "function signed" in layers and "case (a)" in layers
    cat3 = next(la for la in meta["layers"] if la["node"] == "cat3")
    assert ".x3(s3_data)" in units and f"{cat3['layer_module']} u_layer" in units
    softmax = [la["multipliers"] for la in meta["layers"] if la["op"] == "softmax"]
    assert softmax == [graph.tensors["q"].size] * 4  # one product per element
    maps = generate(maps_net(1), tmp_path / "m")
    leaky = {la["node"]: la["multipliers"] for la in read_rtl(maps)["layers"] if la["op"] == "leaky_relu"}
    alpha = next(n.alpha for n in maps_net(1).nodes if n.name == "leaky0")
    negative = maps_net(1).tensors["q"].size  # every element can be negative: one product each
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
    with pytest.raises(DesignTooLarge, match=r"layer big fc needs 16,777,216 multiply-accumulates .* RTL backend"):
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


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_classifier_argmax_output(tmp_path, simulator: str) -> None:
    """A classifier ending in ArgMax: the output port is one index (shape ()), first index on ties."""
    need(simulator)
    rng = np.random.default_rng(11)
    f, w_fmt, h = FixedFormat(6, 3), FixedFormat(3, 1), FixedFormat(5, 2, True, Quant.TRN, Overflow.SAT)
    weight = rng.integers(-4, 4, size=(7, 6))
    t = {"x": Tensor("x", (6,), None), "q": Tensor("q", (6,), f), "h": Tensor("h", (7,), h),
         "y": Tensor("y", (), FixedFormat(3, 3, False))}  # fmt: skip
    nodes = [Cast("in", ["x"], "q", f),
             Dense("fc", ["q"], "h", accumulator_format(f, w_fmt, 6), weight=weight, weight_fmt=w_fmt),
             ArgMax("class", ["h"], "y", FixedFormat(3, 3, False))]  # fmt: skip
    graph = Graph(t, nodes, ["x"], ["y"], name="classifier")
    codes = rng.integers(f.min_code, f.max_code + 1, size=(300, 6))
    expected = np.asarray(graph.run(codes * f.lsb))
    result = simulate_codes(generate(graph, tmp_path / "c"), codes, simulator=simulator)
    assert result.codes.shape == expected.shape == (300,)
    assert len(np.unique(expected)) == 7 and (result.codes == expected).all()


@pytest.mark.parametrize("seed", [5, 6])
def test_tables_in_the_folded_stream_design(tmp_path, seed: int, summary) -> None:
    """The same tables, softmax (three register stages), argmax and concatenations as streaming units of a folded
    plan: equal to the IR under 30 % valid gaps and ready stalls."""
    need("icarus")
    graph = tables_net(seed)
    p = plan(graph, "ultra96v2", parallel=False)
    rtl = generate(graph, tmp_path / graph.name, architecture="stream", plan=p)
    fmt = graph.tensors["q"].fmt
    codes = _input_codes(fmt, graph.tensors["q"].size, np.random.default_rng(seed))
    expected = np.asarray(graph.run(codes.reshape(-1, *graph.tensors["q"].shape) * fmt.lsb), dtype=np.int64)
    result = simulate_codes(rtl, codes, simulator="icarus", seed=seed, valid_gaps=0.3, ready_stalls=0.3)
    mismatches = int((result.codes != expected).sum())
    summary(f"stream RTL (icarus) vs IR, {graph.name}: {len(codes)} inputs, {expected.size} codes, "
            f"{mismatches} mismatches under gaps and stalls")  # fmt: skip
    assert mismatches == 0


@pytest.mark.parametrize("architecture", ["parallel", "stream"])
def test_difference_of_two_tensors(tmp_path, architecture: str, summary) -> None:
    """``a - b`` (the IR's Add with ``subtract``) of random formats, as adder wiring (parallel) and as a streaming
    element-wise unit under valid gaps and ready stalls: equal to the IR."""
    from test_hls_ops import case_sub, rand_input

    need("icarus")
    rng = np.random.default_rng(21)
    compared = 0
    for k in range(4):
        graph = case_sub(rng, k)
        x = rand_input(rng, graph, batch=40)
        p = plan(graph, "ultra96v2", parallel=architecture == "parallel")
        rtl = generate(graph, tmp_path / f"{architecture}{k}", architecture=architecture, plan=p if architecture ==
                       "stream" else None)  # fmt: skip
        result = simulate(rtl, x, simulator="icarus", seed=k, valid_gaps=0.3, ready_stalls=0.3)
        want = np.asarray(graph.run(x), dtype=np.int64).reshape(len(x), -1)
        got = np.asarray(result.codes, dtype=np.int64).reshape(want.shape)
        assert np.array_equal(got, want), f"{graph.name}: {int((got != want).sum())} codes differ"
        compared += want.size
    summary(f"RTL ({architecture}, icarus) vs IR, a - b: 4 graphs, {compared} codes, 0 mismatches")
