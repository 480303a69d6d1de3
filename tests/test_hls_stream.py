"""Streaming HLS backend: the dataflow project's g++ C-simulation equals the IR interpreter code for code, at the
planned folding, fully folded (PE = SIMD = 1) and fully parallel, on hand-built graphs of every op the backend
renders and on small quantized PyTorch models (nn.Sequential CNN, a residual block with QAdd, K-hot weights).

Each C-simulation is one g++ build, so one graph holds many small layers side by side: every branch reads the same
input, is flattened and joins the output through one many-input Concat. Formats (rounding and overflow modes
included) are random but seeded. Nothing here measures time (benchmarks/bench_hls.py does).
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

from qfx.backends.hls import csim, read_project
from qfx.backends.hls.stream import UnsupportedNode, generate_stream
from qfx.format import FixedFormat, Overflow, Quant
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
    Node,
    Pad,
    Relu,
    Reshape,
    Softmax,
    SumPool2d,
    Tensor,
    Upsample,
    spatial,
)
from qfx.ir.passes import fuse_casts
from qfx.plan import Folding, fully_parallel, plan
from qfx.plan.cost import work_of
from qfx.result_types import accumulator_format, add_format, grow_bits, product_format, sub_format, union_format
from qfx.tables import SoftmaxSpec, function_table

BOARD = "ultra96v2"
N_INPUTS = 24


def random_format(rng: np.random.Generator, width: tuple[int, int] = (5, 9)) -> FixedFormat:
    """Any quantization and overflow mode, integer bits around the data's range (overflows happen)."""
    w = int(rng.integers(*width, endpoint=True))
    signed = bool(rng.random() < 0.7)
    overflow = Overflow(rng.choice(list(Overflow)))
    if overflow is Overflow.WRAP_SM and not signed:
        overflow = Overflow.WRAP
    sat = int(rng.integers(0, min(2, w) + 1)) if overflow.wraps else 0
    return FixedFormat(w, int(rng.integers(1, 5)), signed, Quant(rng.choice(list(Quant))), overflow, sat)


class Net:
    """A graph under construction: a float input cast to ``fmt``, branches, and a Concat of their flats."""

    def __init__(self, shape: tuple[int, ...], fmt: FixedFormat, name: str, rng: np.random.Generator) -> None:
        self.name, self.rng = name, rng
        self.tensors = {"x": Tensor("x", shape, None), "q": Tensor("q", shape, fmt)}
        self.nodes: list[Node] = [Cast("in", ["x"], "q", fmt)]
        self.flats: list[str] = []

    def shape(self, t: str) -> tuple[int, ...]:
        return self.tensors[t].shape

    def fmt(self, t: str) -> FixedFormat:
        return self.tensors[t].fmt

    def add(self, node: Node, shape: tuple[int, ...], fmt: FixedFormat | None = None, flat: bool = True) -> str:
        fmt = fmt or random_format(self.rng)
        self.tensors[node.output] = Tensor(node.output, shape, fmt)
        self.nodes.append(node)
        if flat:
            self.flats.append(self.reshape(node.output, (int(np.prod(shape)),)))
        return node.output

    def reshape(self, t: str, shape: tuple[int, ...]) -> str:
        out = f"{t}/r{len(self.nodes)}"
        self.tensors[out] = Tensor(out, shape, self.fmt(t))
        self.nodes.append(Reshape(f"reshape {t} {len(self.nodes)}", [t], out, self.fmt(t)))
        return out

    def conv(self, x: str, name: str, c_out: int, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
             groups=1, khot: int | None = None) -> str:  # fmt: skip
        c_in, h, w = spatial(self.shape(x))
        (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
        ho = (h + padding[0] + padding[2] - dh * (kh - 1) - 1) // sh + 1
        wo = (w + padding[1] + padding[3] - dw * (kw - 1) - 1) // sw + 1
        w_fmt, b_fmt = FixedFormat(6, 2), FixedFormat(7, 3)
        weight = self.weights((c_out, c_in // groups, kh, kw), khot)
        bias = self.rng.integers(-64, 64, size=c_out)
        acc = accumulator_format(self.fmt(x), w_fmt, c_in // groups * kh * kw, b_fmt)
        shape = (c_out, wo) if len(self.shape(x)) == 2 else (c_out, ho, wo)
        node = Conv2d(name, [x], name, acc, weight=weight, weight_fmt=w_fmt, bias=bias, bias_fmt=b_fmt, stride=stride,
                      padding=padding, dilation=dilation, groups=groups, khot=khot)  # fmt: skip
        return self.add(node, shape)

    def weights(self, shape: tuple[int, ...], khot: int | None) -> np.ndarray:
        """Random 6-bit codes, or sums of two signed powers of two (K-hot, K = 2); some zeros."""
        if khot:
            a, b = self.rng.integers(0, 4, size=(2, *shape))
            s = self.rng.choice([-1, 0, 1], size=(2, *shape))
            return s[0] * (1 << a) + s[1] * (1 << b)
        return self.rng.integers(-32, 32, size=shape) * (self.rng.random(shape) < 0.9)

    def pool(self, x: str, name: str, cls, kernel, stride, padding=(0, 0, 0, 0)) -> str:
        c, h, w = spatial(self.shape(x))
        ho = (h + padding[0] + padding[2] - kernel[0]) // stride[0] + 1
        wo = (w + padding[1] + padding[3] - kernel[1]) // stride[1] + 1
        fx = self.fmt(x)
        g = grow_bits(kernel[0] * kernel[1])
        acc = FixedFormat(fx.width + g, fx.int_bits + g, fx.signed) if cls is SumPool2d else fx
        shape = (c, wo) if len(self.shape(x)) == 2 else (c, ho, wo)
        return self.add(cls(name, [x], name, acc, kernel=kernel, stride=stride, padding=padding), shape)

    def graph(self) -> Graph:
        union = union_format([self.fmt(t) for t in self.flats])
        size = sum(self.tensors[t].size for t in self.flats)
        self.tensors["y"] = Tensor("y", (size,), union)
        nodes = [*self.nodes, Concat("out concat", list(self.flats), "y", union, axis=0)]
        return Graph(self.tensors, nodes, ["x"], ["y"], name=self.name)


def ops_graph(seed: int = 0) -> Graph:
    """Convolutions (stride, asymmetric padding, dilation, groups, depthwise, 1-D, K-hot), max/sum pools (2-D and
    1-D, padded), global sum, affine (per channel, per element, K-hot), relu with a ceiling, clip, leaky relu,
    lookup, pad, upsample, add of a tensor read many times, concat along channels, rows, columns and L, an unfused
    cast, dense (plain and K-hot) on a flattened map, argmax and softmax over rows; a node and a tensor named like
    the C++ library's own identifiers."""
    rng = np.random.default_rng(seed)
    f_in = FixedFormat(8, 3, True)
    net = Net((2, 5, 7), f_in, "ops graph", rng)
    q = "q"
    line = net.reshape(q, (10, 7))  # the same values as a 1-D map of 10 channels
    net.conv(q, "conv 2d", 3, (2, 3), (1, 2), (0, 1, 1, 2))
    net.conv(line, "conv1d", 4, (1, 3), (1, 1), (0, 2, 0, 1), dilation=(1, 2), groups=2)
    net.conv(q, "depthwise", 2, (3, 3), padding=(1, 1, 1, 1), groups=2)
    net.conv(q, "dilated", 4, (2, 2), (2, 2), (0, 0, 1, 1), dilation=(2, 1))
    net.conv(q, "khot conv", 3, (3, 3), padding=(1, 1, 1, 1), khot=2)
    net.pool(q, "maxpool", MaxPool2d, (3, 3), (2, 2), (1, 1, 1, 0))
    net.pool(q, "sumpool", SumPool2d, (2, 2), (1, 1), (1, 0, 0, 1))
    net.pool(line, "maxpool1d", MaxPool2d, (1, 2), (1, 2), (0, 1, 0, 0))
    net.pool(line, "sumpool1d", SumPool2d, (1, 3), (1, 2), (0, 0, 0, 1))
    g = grow_bits(35)
    net.add(GlobalSum("gsum", [q], "gsum", FixedFormat(8 + g, 3 + g)), (2,))
    fa = 5
    leaky_acc = FixedFormat(f_in.width + fa + 1, f_in.int_bits, True)
    leaky = net.add(LeakyRelu("leaky", [q], "leaky", leaky_acc, alpha=13, alpha_fmt=FixedFormat(fa, 0, False)),
                    (2, 5, 7))  # fmt: skip
    clip_acc = FixedFormat(9, 3, True)
    for k, (lo, hi) in enumerate([(-101, 77), (None, 31), (-9, None), (77, -101)]):  # the last: bounds crossed
        net.add(Clip(f"clip{k}", [q], f"clip{k}", clip_acc, min_code=lo, max_code=hi), (2, 5, 7))
    net.add(Relu("word", [q], "ap_fixed", f_in, max_code=45), (2, 5, 7))  # names of the C++ library's own
    s_fmt, t_fmt = FixedFormat(6, 1), FixedFormat(8, 3)
    acc = add_format(product_format(f_in, s_fmt), t_fmt)
    net.add(Affine("bn", [q], "bn", acc, scale=rng.integers(-32, 32, 2), scale_fmt=s_fmt,
                   shift=rng.integers(-128, 128, 2), shift_fmt=t_fmt), (2, 5, 7))  # fmt: skip
    net.add(Affine("per element", [line], "per element", add_format(f_in, t_fmt), shift=rng.integers(-128, 128, 10),
                   shift_fmt=t_fmt), (10, 7))  # fmt: skip
    net.add(Affine("khot bn", [q], "khot bn", acc, scale=np.array([-12, 5]), scale_fmt=s_fmt,
                   shift=rng.integers(-128, 128, 2), shift_fmt=t_fmt, khot=2), (2, 5, 7))  # fmt: skip
    sig = FixedFormat(8, 1, False, Quant.RND, Overflow.SAT)
    net.add(Lookup("sigmoid", [q], "sigmoid", sig, table=function_table("sigmoid", f_in, sig), function="sigmoid"),
            (2, 5, 7))  # fmt: skip
    net.add(Pad("pad", [q], "pad", f_in, padding=(1, 0, 0, 2)), (2, 6, 9))
    net.add(Upsample("up", [line], "up", f_in, scale=(1, 2)), (10, 14), f_in)
    net.add(Add("add", [q, leaky], "add", add_format(f_in, net.fmt(leaky))), (2, 5, 7))
    net.add(Add("sub", [leaky, q], "sub", sub_format(net.fmt(leaky), f_in), subtract=True), (2, 5, 7),
            FixedFormat(8, 3, True, Quant.RND, Overflow.SAT))  # fmt: skip
    union = union_format([f_in, net.fmt(leaky)])
    net.add(Concat("channels", [leaky, q], "channels", union), (4, 5, 7))  # two maps side by side, pixel by pixel
    net.add(Concat("rows", [q, leaky], "rows", union, axis=1), (2, 10, 7))
    net.add(Concat("columns", [leaky, q], "columns", union, axis=2), (2, 5, 14))
    net.add(Concat("along L", [line, line], "along L", f_in, axis=1), (10, 14), f_in)
    f_u = FixedFormat(7, 2, False, Quant.RND_INF, Overflow.WRAP, 1)
    net.add(Cast("to unsigned", [q], "unsigned", f_u), (2, 5, 7), f_u)  # a cast of its own (q has other readers)
    flat = net.reshape(q, (70,))
    w_fmt = FixedFormat(6, 2)
    for name, khot in (("fc", None), ("khot fc", 2)):
        acc = accumulator_format(f_in, w_fmt, 70, w_fmt)
        net.add(Dense(name, [flat], name, acc, weight=net.weights((6, 70), khot), weight_fmt=w_fmt,
                      bias=rng.integers(-32, 32, 6), bias_fmt=w_fmt, khot=khot), (6,))  # fmt: skip
    b = grow_bits(7)
    net.add(ArgMax("argmax", [line], "argmax", FixedFormat(b, b, False)), (10,), FixedFormat(b, b, False))
    spec = SoftmaxSpec.build(f_in, 7)
    net.add(Softmax("softmax", [line], "softmax", spec.acc, spec=spec), (10, 7),
            FixedFormat(9, 1, False, Quant.RND_CONV, Overflow.SAT))  # fmt: skip
    return net.graph()


def foldings(graph: Graph) -> dict[str, object]:
    """The planned folding, every unit fully folded (PE = SIMD = 1) and the fully parallel plan."""
    fused = fuse_casts(graph)
    folded = {n.name: Folding() for n in fused.nodes if not isinstance(n, Reshape)}
    return {
        "planned": plan(graph, BOARD),
        "folded": plan(graph, BOARD, overrides=folded, margin=1.0),
        "parallel": fully_parallel(graph, BOARD),
    }


def inputs(graph: Graph, seed: int = 1, low: float = -6.0, high: float = 6.0) -> np.ndarray:
    shape = graph.tensors[graph.inputs[0]].shape
    return np.random.default_rng(seed).uniform(low, high, (N_INPUTS, *shape))


def check(graph: Graph, project, x: np.ndarray) -> np.ndarray:
    """The C-simulation's codes, after checking them against the IR interpreter's."""
    codes = csim(project, x)
    reference = np.asarray(graph.run(x), dtype=np.int64).reshape(len(x), -1)
    assert codes.shape == reference.shape
    mismatches = int((codes != reference).sum())
    assert mismatches == 0, f"{mismatches} of {codes.size} codes differ from the IR interpreter"
    return codes


@pytest.mark.parametrize("folding", ["planned", "folded", "parallel"])
def test_ops_graph_is_exact_at_each_folding(folding: str, tmp_path, toolchain) -> None:
    graph = ops_graph()
    p = foldings(graph)[folding]
    project = generate_stream(graph, tmp_path / folding, plan=p)
    check(graph, project, inputs(graph))


def test_project_is_a_dataflow_of_folded_loops(tmp_path) -> None:
    graph = ops_graph()
    fused = fuse_casts(graph)
    conv = next(n for n in fused.nodes if n.name == "conv 2d")
    p = plan(graph, BOARD, overrides={"conv 2d": Folding(pe=3, simd=2), "fc": Folding(pe=2, simd=7)})
    project = generate_stream(graph, tmp_path / "p", plan=p, tool="vivado", name="for")
    meta = read_project(project)
    top = meta["top"]
    assert top != "for" and meta["architecture"] == "stream" and meta["cycles"] == p.cycles
    assert meta["folding"]["conv 2d"] == [3, 2, 1]
    cpp = (project / "firmware" / f"{top}.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in cpp and "hls::stream<" in cpp and "DATA_PACK" in cpp
    assert "qfx::stream::dup<" in cpp  # q is read by many units
    streams = re.findall(r"hls::stream<.*> (\w+)\(", cpp)
    calls = re.findall(r"qfx::stream::\w+<.*>\((.*)\);", cpp)
    uses = Counter(a.strip() for c in calls for a in c.split(","))
    assert streams and all(uses[s] == 2 for s in streams)  # canonical dataflow: one writer and one reader each
    assert uses["x"] == 1 and uses["y"] == 1
    params = (project / "firmware" / "parameters.h").read_text()
    assert "static const int PE = 3;" in params and "static const int SIMD = 2;" in params
    weights = (project / "firmware" / "weights.h").read_text()
    assert "ap_fixed<" not in weights and "static const short" in weights  # integer codes only
    rows = work_of(fused, conv).simd_dim // 2 * (3 // 3)
    assert f"conv_2d_w[{rows}][3][2]" in weights
    assert "_digits[" in weights  # K-hot layers keep digit tables, no weight codes
    assert "khot_fc_w" not in weights
    assert (project / "firmware" / "qfx" / "stream" / "mvau.h").is_file()
    assert json.loads((project / "qfx_project.json").read_text())["tool"] == "vivado"


class Mystery(Node):
    """An op no backend knows."""

    op = "mystery"


def test_unsupported_node_is_named(tmp_path) -> None:
    f = FixedFormat(8, 3)
    t = {"x": Tensor("x", (4,), None), "q": Tensor("q", (4,), f), "m": Tensor("m", (4,), f)}
    g = Graph(t, [Cast("in", ["x"], "q", f), Mystery("my op", ["q"], "m", f)], ["x"], ["m"])
    with pytest.raises(UnsupportedNode, match=r"node my op: .* no unit for Mystery"):
        generate_stream(g, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_plan_of_another_graph_is_refused(tmp_path) -> None:
    other = fully_parallel(ops_graph(), BOARD)
    f = FixedFormat(8, 3)
    t = {"x": Tensor("x", (4,), None), "q": Tensor("q", (4,), f), "r": Tensor("r", (4,), f)}
    g = Graph(t, [Cast("in", ["x"], "q", f), Relu("r", ["q"], "r", f)], ["x"], ["r"])
    with pytest.raises(ValueError, match="another graph"):
        generate_stream(g, tmp_path / "g", plan=other)
    with pytest.raises(ValueError, match="for the board 'alveo_u250'"):
        generate_stream(g, tmp_path / "g", plan=plan(g, "alveo_u250"))
    assert not (tmp_path / "g").exists()


# ------------------------------------------------------------------------------------------ quantized models
def _models():
    import torch
    from torch import nn

    from qfx.train import DigitsCNN

    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4, 10))  # fmt: skip
    residual = DigitsCNN(channels=4)  # conv-bn-relu, a residual block (QAdd), max pool, global average pool, linear
    for m in [*seq.modules(), *residual.modules()]:
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return {"sequential": (seq, {}), "residual": (residual, {}), "khot": (DigitsCNN(channels=4), {"khot": 2})}


@pytest.mark.parametrize(("name", "folding"), [("sequential", "folded"), ("residual", "planned"),
                                               ("khot", "parallel")])  # fmt: skip
def test_quantized_model_is_exact(name: str, folding: str, tmp_path, toolchain) -> None:
    import torch

    import qfx
    from qfx.ir import from_qonnx

    model, options = _models()[name]
    calibration = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    quantized = qfx.quantize_(model.eval(), qfx.QuantizeConfig(mode="ptq", **options), calibration)
    graph = from_qonnx(qfx.export_qonnx(quantized, calibration[:4], tmp_path / f"{name}.onnx"))
    project = generate_stream(graph, tmp_path / name, plan=foldings(graph)[folding])
    x = inputs(graph, low=0.0, high=1.0)
    codes = check(graph, project, x)
    with torch.no_grad():
        reference = qfx.codes(quantized(torch.tensor(x, dtype=torch.float32)), graph.fmt(graph.outputs[0]))
    assert np.array_equal(codes, reference.numpy().reshape(len(x), -1))
