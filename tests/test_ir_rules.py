"""The IR's new rules on their own and the importer's refusals: fuse_casts on the new nodes, the interpreter's
LeakyRelu/Clip/Pad/Upsample/Concat/GlobalSum/ArgMax rules against numpy, and one clear IRError naming the node for
every QONNX pattern outside the contract."""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qonnx_graphs import Net, compare, formats, grid_values

from qfx.export.ops import DOMAIN
from qfx.format import FixedFormat
from qfx.ir import IRError, from_qonnx
from qfx.ir.graph import ArgMax, Cast, Clip, Concat, GlobalSum, Graph, LeakyRelu, Pad, Tensor, Upsample
from qfx.ir.passes import fuse_casts
from qfx.result_types import grow_bits, union_format
from qfx.tables import SoftmaxSpec, function_table

seeds = st.integers(0, 2**32 - 1)


def test_constant_broadcasting_along_length_is_refused() -> None:
    net = Net()
    y = net.op("Mul", [net.cast("x", FixedFormat(8, 4)), net.const(np.arange(5), FixedFormat(4, 4))])
    model = net.model((1, 3, 5), net.cast(y, FixedFormat(8, 4)))
    with pytest.raises(IRError, match=r"node mul\d+ \(Mul\): a constant of shape \[5\] is not per channel on a tensor"):
        from_qonnx(model)


# ---------------------------------------------------------------------------------------------------- fuse_casts
def test_fuse_casts_on_new_nodes() -> None:
    """A cast after a computing node (Clip, LeakyRelu, Concat, Lookup, Softmax, ArgMax) fuses into it; after a
    value move (Pad, Upsample) it stays a Cast, so moves keep output format = input format."""
    x_fmt, out_fmt = FixedFormat(6, 2), FixedFormat(5, 2, quant="AP_RND", overflow="AP_SAT")
    net = Net()
    x = net.cast("x", x_fmt)
    spec = SoftmaxSpec.build(x_fmt, 4)
    table = net.op("FixedTable", [x, net.init(function_table("tanh", x_fmt, out_fmt))], domain=DOMAIN,
                   function="tanh", in_format=str(x_fmt), out_format=str(out_fmt))  # fmt: skip
    softmax = net.op("FixedSoftmax", [x, net.init(spec.exp_table), net.init(spec.recip_table)], domain=DOMAIN,
                     in_format=str(x_fmt), exp_format=str(spec.exp_fmt), index_format=str(spec.index_fmt),
                     recip_format=str(spec.recip_fmt))  # fmt: skip
    chain = [
        net.cast(net.op("Clip", [x, net.init(np.array(-1.0, dtype=np.float32)), ""]), out_fmt),
        net.cast(net.op("LeakyRelu", [x], alpha=0.25), out_fmt),
        net.cast(net.op("Concat", [x, x], axis=-1), out_fmt),
        net.cast(table, out_fmt),
        net.cast(softmax, out_fmt),
    ]
    y = net.op("Concat", chain, axis=-1)
    padded = net.cast(net.op("Pad", [y, net.init(np.array([0, 0, 1, 0, 0, 2], dtype=np.int64))]), out_fmt)
    model = net.model((3, 2, 4), padded)
    graph = from_qonnx(model)
    fused = fuse_casts(graph)
    ops = sorted(n.op for n in fused.nodes)
    assert ops == sorted(["cast", "clip", "leaky_relu", "concat", "lookup", "softmax", "concat", "pad", "cast"])
    for node in fused.nodes:
        if node.op in ("clip", "leaky_relu", "lookup", "softmax") or (node.op == "concat" and len(node.inputs) == 2):
            assert fused.fmt(node.output) == out_fmt and (node.acc != out_fmt or node.op == "lookup")
    pad = next(n for n in fused.nodes if n.op == "pad")
    assert fused.fmt(pad.output) == fused.fmt(pad.inputs[0])  # the move kept its format; the Cast after it stays
    x = grid_values(np.random.default_rng(0), x_fmt, (3, 2, 4))
    np.testing.assert_array_equal(fused.run(x.astype(np.float64)), graph.run(x.astype(np.float64)))
    compare(model, x, out_fmt, [])


# ---------------------------------------------------------------------------------------------------- interpreter
def _ir(x_fmts: list[FixedFormat], shapes: list[tuple], node_cls, acc: FixedFormat, out_shape, **kw) -> Graph:
    """An IR graph: float inputs cast into ``x_fmts``, then one node of ``node_cls`` with output format ``acc``."""
    tensors, nodes, inputs = {}, [], []
    for k, (fmt, shape) in enumerate(zip(x_fmts, shapes, strict=True)):
        tensors[f"x{k}"], tensors[f"q{k}"] = Tensor(f"x{k}", shape, None), Tensor(f"q{k}", shape, fmt)
        nodes.append(Cast(f"cast{k}", [f"x{k}"], f"q{k}", None))
        inputs.append(f"x{k}")
    tensors["y"] = Tensor("y", tuple(out_shape), acc)
    nodes.append(node_cls("op", [f"q{k}" for k in range(len(x_fmts))], "y", acc, **kw))
    return Graph(tensors, nodes, inputs, ["y"])


def _values(rng, fmt: FixedFormat, shape) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``fmt`` and their values (not the most negative code, which AP_SAT_SYM's input cast moves)."""
    codes = rng.integers(fmt.min_code + fmt.signed, fmt.max_code + 1, size=shape, dtype=np.int64)
    return codes, np.ldexp(codes.astype(np.float64), -fmt.frac_bits)


def _exact_codes(values: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    scaled = np.ldexp(values, fmt.frac_bits)
    assert np.array_equal(scaled, np.round(scaled))
    return scaled.astype(np.int64)


@settings(max_examples=60, deadline=None)
@given(x_fmt=formats(2, 16), alpha_bits=st.integers(1, 12), data=st.data(), seed=seeds)
def test_interpreter_leaky_relu_clip_vs_numpy(x_fmt: FixedFormat, alpha_bits: int, data, seed: int) -> None:
    """LeakyRelu and Clip rules against float64 numpy (exact at these widths)."""
    rng = np.random.default_rng(seed)
    alpha_code = data.draw(st.integers(1, 2**alpha_bits - 1))
    alpha_fmt = FixedFormat(alpha_bits, 0, signed=False)
    acc = FixedFormat(x_fmt.width + alpha_bits, x_fmt.int_bits, x_fmt.signed)
    _, x = _values(rng, x_fmt, (50, 3))
    graph = _ir([x_fmt], [(3,)], LeakyRelu, acc, (3,), alpha=alpha_code, alpha_fmt=alpha_fmt)
    alpha = alpha_code * 2.0**-alpha_bits
    np.testing.assert_array_equal(graph.run(x), _exact_codes(np.where(x >= 0, x, x * alpha), acc))
    lo, hi = sorted(rng.integers(x_fmt.min_code - 3, x_fmt.max_code + 4, size=2))
    clip = _ir([x_fmt], [(3,)], Clip, x_fmt, (3,), min_code=int(lo), max_code=int(hi))
    expected = np.clip(x, lo * x_fmt.lsb, hi * x_fmt.lsb)
    np.testing.assert_array_equal(clip.run(x), _exact_codes(expected, x_fmt))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), seed=seeds)
def test_interpreter_moves_vs_numpy(data, seed: int) -> None:
    """Pad, Upsample and Concat rules against numpy's pad / repeat / concatenate of the values."""
    rng = np.random.default_rng(seed)
    rank = data.draw(st.integers(1, 2))
    shape = (data.draw(st.integers(1, 3)), *[data.draw(st.integers(1, 4)) for _ in range(rank)])
    fmt = data.draw(formats(2, 12))
    _, x = _values(rng, fmt, (2, *shape))
    top, left, bottom, right = [data.draw(st.integers(0, 2)) for _ in range(4)]
    if rank == 1:
        top = bottom = 0
    out = np.pad(x, ((0, 0), (0, 0), *([(top, bottom)] if rank == 2 else []), (left, right)))
    pads = [top, left, bottom, right]
    pad = _ir([fmt], [shape], Pad, fmt, out.shape[1:], padding=tuple(pads))
    np.testing.assert_array_equal(pad.run(x), _exact_codes(out, fmt))
    scale = (1 if rank == 1 else data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    up = x if rank == 1 else np.repeat(x, scale[0], axis=2)
    up = np.repeat(up, scale[1], axis=-1)
    upsample = _ir([fmt], [shape], Upsample, fmt, up.shape[1:], scale=scale)
    np.testing.assert_array_equal(upsample.run(x), _exact_codes(up, fmt))
    fmt2 = data.draw(formats(2, 12))
    axis = data.draw(st.integers(0, rank))
    shape2 = tuple(d + (k == axis) for k, d in enumerate(shape))
    _, x2 = _values(rng, fmt2, (2, *shape2))
    acc = union_format([fmt, fmt2])
    cat = _ir([fmt, fmt2], [shape, shape2], Concat, acc, np.concatenate([x, x2], axis + 1).shape[1:], axis=axis)
    expected = _exact_codes(np.concatenate([x, x2], axis + 1), acc)
    np.testing.assert_array_equal(cat.run({"x0": x, "x1": x2})["y"], expected)


@settings(max_examples=40, deadline=None)
@given(fmt=formats(2, 10), length=st.integers(1, 9), seed=seeds)
def test_interpreter_global_sum_and_argmax_vs_numpy(fmt: FixedFormat, length: int, seed: int) -> None:
    """GlobalSum of a (C, L) map and ArgMax (first index on ties) against numpy."""
    rng = np.random.default_rng(seed)
    _, x = _values(rng, fmt, (4, 3, length))
    acc = FixedFormat(fmt.width + grow_bits(length), fmt.int_bits + grow_bits(length), fmt.signed)
    graph = _ir([fmt], [(3, length)], GlobalSum, acc, (3,))
    np.testing.assert_array_equal(graph.run(x), _exact_codes(x.sum(axis=2), acc))
    bits = max(1, grow_bits(length))
    arg = _ir([fmt], [(3, length)], ArgMax, FixedFormat(bits, bits, False), (3,))
    np.testing.assert_array_equal(arg.run(x), np.argmax(x, axis=-1))


# ---------------------------------------------------------------------------------------------------- refusals
F8 = FixedFormat(8, 4)


def _refused(x_shape, build) -> tuple[onnx.ModelProto, str]:
    """A graph input cast -> the node ``build(net, x)`` makes (it returns its output name, = the node's name)."""
    net = Net()
    y = build(net, net.cast("x", F8))
    return net.model(x_shape, net.cast(y, F8)), y


def _table_node(net: Net, x: str, entries: int, code: int = 0, in_fmt: FixedFormat = F8) -> str:
    """A FixedTable into ap_fixed<4,2> whose every entry is ``code``."""
    return net.op("FixedTable", [x, net.i64(np.full(entries, code))], domain=DOMAIN,
                  function="tanh", in_format=str(in_fmt), out_format="ap_fixed<4,2>")  # fmt: skip


def _softmax_node(net: Net, x: str, exp_entries: int) -> str:
    spec = SoftmaxSpec.build(F8, 4)
    return net.op("FixedSoftmax", [x, net.init(spec.exp_table[:exp_entries]), net.init(spec.recip_table)],
                  domain=DOMAIN, in_format=str(F8), exp_format=str(spec.exp_fmt),
                  index_format=str(spec.index_fmt), recip_format=str(spec.recip_fmt))  # fmt: skip


REFUSED = {
    "pad value": ((1, 2, 5), lambda n, x: n.op("Pad", [x, n.i64([0, 0, 1, 0, 0, 1]), n.f32(1.5)]),
                  r"\(Pad\): pads with the value 1.5; only zero padding is supported"),
    "pad reflect": ((1, 2, 5), lambda n, x: n.op("Pad", [x, n.i64([0, 0, 1, 0, 0, 1])], mode="reflect"),
                    r"\(Pad\): mode 'reflect' is not supported; only constant zero padding is"),
    "pad channels": ((1, 2, 5), lambda n, x: n.op("Pad", [x, n.i64([0, 1, 0, 0, 0, 0])]),
                     r"\(Pad\): pads \[0, 1, 0, 0, 0, 0\] pad the batch or channel axis"),
    "resize linear": ((1, 2, 3, 3), lambda n, x: n.op("Resize", [x, "", n.f32([1, 1, 2, 2])], mode="linear"),
                      r"\(Resize\): mode 'linear' is not supported; only nearest upsampling by integer factors"),
    "resize 1.5": ((1, 2, 4, 4), lambda n, x: n.op("Resize", [x, "", n.f32([1, 1, 1.5, 2])], mode="nearest"),
                   r"\(Resize\): scales \[1.0, 1.0, 1.5, 2.0\] are not all integers >= 1"),
    "resize rounding": ((1, 2, 3), lambda n, x: n.op("Resize", [x, "", n.f32([1, 1, 3])], mode="nearest",
                        coordinate_transformation_mode="asymmetric", nearest_mode="round_prefer_floor"),
                        r"'asymmetric' with nearest_mode 'round_prefer_floor' at scale 3 does not repeat each pixel"),
    "concat batch": ((1, 4), lambda n, x: n.op("Concat", [x, x], axis=0),
                     r"\(Concat\): concatenates along the batch axis"),
    "leaky slope": ((1, 4), lambda n, x: n.op("LeakyRelu", [x], alpha=1.5),
                    r"\(LeakyRelu\): slope alpha = 1.5 is outside \(0, 1\)"),
    "table length": ((1, 4), lambda n, x: _table_node(n, x, 100),
                     r"\(FixedTable\): its table has shape \[100\], not \[256\]"),
    "table codes": ((1, 4), lambda n, x: _table_node(n, x, 256, code=8),
                    r"\(FixedTable\): its table holds codes outside ap_fixed<4,2>"),
    "table input": ((1, 4), lambda n, x: _table_node(n, x, 64, in_fmt=FixedFormat(6, 2)),
                    r"its input is ap_fixed<8,4>, whose values are not all codes of its in_format ap_fixed<6,2>"),
    "softmax table": ((1, 4), lambda n, x: _softmax_node(n, x, 17),
                      r"\(FixedSoftmax\): its exp table has shape \[17\], not \[256\]"),
    "argmax axis": ((1, 3, 4), lambda n, x: n.op("ArgMax", [x], axis=1, keepdims=0),
                    r"\(ArgMax\): axis 1 is not the last axis"),
    "argmax last": ((1, 4), lambda n, x: n.op("ArgMax", [x], axis=-1, keepdims=0, select_last_index=1),
                    r"\(ArgMax\): select_last_index=1 \(last index on ties\) is not supported"),
    "maxpool ceil": ((1, 2, 5), lambda n, x: n.op("MaxPool", [x], kernel_shape=[2], strides=[2], ceil_mode=1),
                     r"\(MaxPool\): pooling with ceil_mode, dilations or storage_order is not supported"),
    "avgpool area": ((1, 2, 6), lambda n, x: n.op("AveragePool", [x], kernel_shape=[3], strides=[3]),
                     r"averaging over 3 values is not exact in fixed point"),
    "reduce axis": ((1, 2, 6), lambda n, x: n.op("ReduceSum", [x, n.i64([1])], keepdims=0),
                    r"\(ReduceSum\): reduces over axes \[1\], not over every spatial axis \[2\]"),
    "conv 3-D": ((1, 1, 3, 3, 3), lambda n, x: n.op("Conv", [x, n.const(np.ones((1, 1, 2, 2, 2)), F8)]),
                 r"\(Conv\): only 1-D windows on \(C, L\) and 2-D windows on \(C, H, W\) tensors are supported"),
    "mul broadcast": ((1, 2, 4, 4), lambda n, x: n.op("Mul", [x, n.op("MaxPool", [x], kernel_shape=[1, 4],
                                                                      strides=[1, 4])]),
                      r"\(Mul\): multiplies tensors of shapes \[2, 4, 4\] and \[2, 4, 1\]; only equal shapes, or a "
                      r"feature map and one value per channel"),
    "add broadcast": ((1, 2, 4), lambda n, x: n.op("Add", [x, n.cast(n.op("ReduceSum", [x, n.i64([2])]), F8)]),
                      r"\(Add\): adds tensors of shapes \[2, 4\] and \[2, 1\]"),
    "matmul 3-D": ((1, 2, 4), lambda n, x: n.op("MatMul", [x, n.const(np.ones((4, 3)), F8)]),
                   r"\(MatMul\): multiplies a tensor of shape \[2, 4\]; flatten it to \(N, F\) first"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_patterns(case: str) -> None:
    """Each pattern outside the contract: one IRError naming the node, its op and why."""
    x_shape, build, message = REFUSED[case]
    model, name = _refused(x_shape, build)
    with pytest.raises(IRError, match=rf"^node {name}\b.*{message}") as e:
        from_qonnx(model)
    assert "\n" not in str(e.value)


def test_unknown_domain_is_refused_before_qonnx_imports_it() -> None:
    net = Net()
    y = net.op("Evil", [net.cast("x", F8)], domain="os")
    message = r"node 'evil\d+' has domain 'os', which QFX does not know \(qonnx would import a Python module"
    with pytest.raises(IRError, match=message):
        from_qonnx(net.model((1, 4), net.cast(y, F8)))


def test_bad_format_attribute_names_the_node() -> None:
    net = Net()
    y = net.op("FixedTable", [net.cast("x", F8), net.i64(np.zeros(256))], domain=DOMAIN, function="tanh",
               in_format="ap_fixed<8,4>", out_format="ap_fixed<zero,2>")  # fmt: skip
    with pytest.raises(IRError, match=rf"node {y}: FixedTable out_format: .*ap_fixed<zero,2>"):
        from_qonnx(net.model((1, 4), net.cast(y, F8)))


def _random_node(n: Net, x: str, r: random.Random) -> str:
    """One of the contract's ops with attributes and constants drawn at random, many of them invalid."""
    fmt = FixedFormat(4, 2)
    spec = SoftmaxSpec.build(F8, 4)
    makers = [
        lambda: n.op("Conv", [x, n.const(np.ones((2, 2, r.choice([1, 2, 3]))), fmt)], pads=[r.randint(-1, 2)] * 2,
                     strides=[r.choice([0, 1, 2])], dilations=[r.choice([1, 2])]),
        lambda: n.op("Pad", [x, n.i64([r.randint(-1, 1) for _ in range(r.choice([4, 6, 8]))])],
                     mode=r.choice(["constant", "edge"])),
        lambda: n.op("Resize", [x, "", n.f32([1, 1, r.choice([0.5, 1, 2, 2.5, float("nan")])][: r.choice([2, 3])])],
                     mode=r.choice(["nearest", "linear"])),
        lambda: n.op("Concat", [x] * r.randint(1, 3), axis=r.randint(-4, 3)),
        lambda: n.op("ArgMax", [x], axis=r.randint(-3, 2), keepdims=r.randint(0, 1)),
        lambda: n.op("FixedTable", [x, n.i64(np.zeros(r.choice([256, 255, 512])))], domain=DOMAIN, function="f",
                     in_format=r.choice(["ap_fixed<8,4>", "ap_fixed<9,4>", "ap_ufixed<8,4>"]), out_format="ap_int<2>"),
        lambda: n.op("FixedSoftmax", [x, n.init(spec.exp_table[: r.choice([256, 10])]), n.init(spec.recip_table)],
                     domain=DOMAIN, in_format=str(F8), exp_format=str(spec.exp_fmt), recip_format=str(spec.recip_fmt),
                     index_format=r.choice([str(spec.index_fmt), "ap_fixed<10,4>"]), axis=r.randint(-2, 2)),
        lambda: n.op("Clip", [x, n.f32(r.choice([[1.0], [0.0], 0.0, [1.0, 2.0], float("nan")])), ""]),
        lambda: n.op("LeakyRelu", [x], alpha=r.choice([0.0, 0.1, -0.5, 2.0, float("nan")])),
        lambda: n.op(r.choice(["MaxPool", "AveragePool"]), [x], kernel_shape=[r.choice([1, 2, 3])] * r.choice([1, 2]),
                     strides=[r.choice([1, 2])], pads=[r.randint(0, 1)] * 2),
        lambda: n.op(r.choice(["ReduceSum", "ReduceMean"]), [x, n.i64(r.choice([[2], [1], [0, 2], []]))]),
        lambda: n.op(r.choice(["Mul", "Add"]), [x, n.const(np.ones(r.choice([(2,), (4,), (2, 1), (1, 2, 1)])), fmt)]),
    ]  # fmt: skip
    return r.choice(makers)()


@settings(max_examples=150, deadline=None)
@given(seed=seeds)
def test_random_attributes_give_a_graph_or_one_clear_error(seed: int) -> None:
    """Whatever the attributes and constants, the importer builds a graph or raises one IRError of one line that
    starts by naming the node, or says that qonnx's own shape inference failed (never another exception)."""
    r, net = random.Random(seed), Net()
    y = _random_node(net, net.cast("x", F8), r)
    model = net.model((2, 2, 4), net.cast(y, F8))
    try:
        from_qonnx(model)
    except IRError as e:
        assert str(e).startswith((f"node {y}", "qonnx cannot process the graph")) and "\n" not in str(e), str(e)
