"""The importer reads every QONNX pattern of the issue-12 contract: small graphs built by hand (input cast -> op ->
output cast) give the same integer codes in qonnx's ``execute_onnx`` and in the IR interpreter (also after
fuse_casts); the interpreter's new rules agree with independent numpy references; refused patterns get one clear
error naming the node."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qonnx_graphs import Net, compare, formats, grid_values, qonnx_outputs, rand_codes

from qfx.export.ops import DOMAIN
from qfx.format import FixedFormat
from qfx.ir import IRError, from_qonnx
from qfx.ir.graph import (
    Add,
    ArgMax,
    Clip,
    Concat,
    Conv2d,
    LeakyRelu,
    Lookup,
    Pad,
    Relu,
    Softmax,
    SumPool2d,
    Upsample,
)
from qfx.ir.passes import fuse_casts
from qfx.ir.qonnx_ops import nearest_source_index
from qfx.result_types import grow_bits
from qfx.tables import SoftmaxSpec, function_table, softmax_codes

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)
COUNTS: dict[str, list[int]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report():
    """One line per op in the run's exactness summary (every comparison asserts equality, so 0 mismatches)."""
    from conftest import _SUMMARY

    yield
    for op, counts in sorted(COUNTS.items()):
        _SUMMARY.append(f"IR import vs qonnx, {op}: {len(counts)} graphs, {sum(counts)} codes, 0 mismatches")


def counts(op: str) -> list[int]:
    return COUNTS.setdefault(op, [])


# ---------------------------------------------------------------------------------------------------- windows
@st.composite
def conv_cases(draw, rank: int, wide: bool = False):
    # qonnx's LowerConvsToMatMul (needed to execute float64 convs) handles no grouped convs but depthwise ones
    groups_kind = draw(st.sampled_from(["plain", "depthwise"] if wide else ["plain", "grouped", "depthwise"]))
    cin = draw(st.integers(1, 4)) * (2 if groups_kind == "grouped" else 1)
    groups = {"plain": 1, "grouped": 2, "depthwise": cin}[groups_kind]
    cout = cin if groups_kind == "depthwise" else draw(st.integers(1, 3)) * groups
    kernel = [draw(st.integers(1, 3)) for _ in range(rank)]
    stride = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 2)) for _ in range(rank)]
    pads = [draw(st.integers(0, 2)) for _ in range(2 * rank)]
    # (and its Im2Col refuses a window taller or wider than 1 on a map 1 pixel high or wide)
    size = [draw(st.integers(max((k - 1) * d + 1, 2 if wide else 1), 7)) for k, d in zip(kernel, dilation, strict=True)]
    x_fmt = draw(formats(13, 16, quant_only=True)) if wide else draw(formats(2, 6, quant_only=True))
    w_fmt = draw(formats(12, 14)) if wide else draw(formats(2, 5))
    return dict(cin=cin, cout=cout, groups=groups, kernel=kernel, stride=stride, dilation=dilation, pads=pads,
                size=size, x_fmt=x_fmt, w_fmt=w_fmt, bias=draw(st.sampled_from([None, "input", "add"])),
                out_fmt=draw(formats(2, 12)))  # fmt: skip


def _conv_model(case: dict, rng: np.random.Generator, wide: bool) -> tuple[onnx.ModelProto, np.ndarray]:
    n, rank = 3, len(case["kernel"])
    x_shape = (n, case["cin"], *case["size"])
    net = Net()
    x = net.cast("x", case["x_fmt"])
    w_shape = (case["cout"], case["cin"] // case["groups"], *case["kernel"])
    w = net.const(rand_codes(rng, case["w_fmt"], w_shape), case["w_fmt"], double=wide)
    if wide:
        x = net.double(x)
    b_fmt = FixedFormat(8, 4)
    inputs = [x, w]
    if case["bias"] == "input":
        inputs.append(net.const(rand_codes(rng, b_fmt, (case["cout"],)), b_fmt, double=wide))
    y = net.op(
        "Conv", inputs, kernel_shape=case["kernel"], strides=case["stride"], dilations=case["dilation"],
        pads=case["pads"], group=case["groups"],
    )  # fmt: skip
    if case["bias"] == "add":
        bias = net.const(rand_codes(rng, b_fmt, (case["cout"],) + (1,) * rank), b_fmt, double=True)
        y = net.op("Add", [y if wide else net.double(y), bias])
    return net.model(x_shape, net.cast(y, case["out_fmt"])), grid_values(rng, case["x_fmt"], x_shape)


@pytest.mark.parametrize("rank", [1, 2])
@SETTINGS
@given(case=st.data(), seed=seeds)
def test_conv(rank: int, case, seed: int) -> None:
    """1-D and 2-D Conv (asymmetric pads, strides, dilations, groups, depthwise; bias input or Add) in float32."""
    c = case.draw(conv_cases(rank))
    model, x = _conv_model(c, np.random.default_rng(seed), wide=False)
    compare(model, x, c["out_fmt"], counts(f"Conv {rank}-D"))
    node = next(nd for nd in from_qonnx(model).nodes if isinstance(nd, (Conv2d, SumPool2d)))
    if rank == 1:  # the H = 1 case of the 2-D node
        assert node.stride[0] == 1 and node.padding[0] == node.padding[2] == 0
        assert node.weight.shape[2] == 1 if isinstance(node, Conv2d) else node.kernel[0] == 1


@SETTINGS
@given(case=st.data(), seed=seeds)
def test_conv_float64_wide_accumulator(case, seed: int) -> None:
    """Convs with float64 operands and accumulators wider than 24 bits (qonnx: LowerConvsToMatMul first)."""
    c = case.draw(conv_cases(2, wide=True))
    model, x = _conv_model(c, np.random.default_rng(seed), wide=True)
    compare(model, x, c["out_fmt"], counts("Conv float64"))
    assert next(nd for nd in from_qonnx(model).nodes if isinstance(nd, Conv2d)).acc.width > 24


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_pools(op: str, rank: int, data, seed: int) -> None:
    """MaxPool and AveragePool (power-of-two area, padding counted) in 1-D and 2-D, asymmetric pads."""
    kernel = [data.draw(st.sampled_from([1, 2, 4] if op == "AveragePool" else [1, 2, 3])) for _ in range(rank)]
    stride = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    pads = [data.draw(st.integers(0, k - 1)) for k in kernel * 2]
    size = [data.draw(st.integers(k, 8)) for k in kernel]
    x_fmt, out_fmt = data.draw(formats(2, 8, quant_only=True)), data.draw(formats(2, 12))
    rng, net = np.random.default_rng(seed), Net()
    attrs = dict(kernel_shape=kernel, strides=stride, pads=pads)
    if op == "AveragePool":
        attrs["count_include_pad"] = 1
    y = net.op(op, [net.cast("x", x_fmt)], **attrs)
    x_shape = (2, data.draw(st.integers(1, 3)), *size)
    model = net.model(x_shape, net.cast(y, out_fmt))
    compare(model, grid_values(rng, x_fmt, x_shape), out_fmt, counts(f"{op} {rank}-D"))


@pytest.mark.parametrize("rank", [1, 2])
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_window_sum_conv_and_reciprocal(rank: int, data, seed: int) -> None:
    """The export's average pool: a depthwise Conv by ones (a SumPool2d) then Mul by a quantized reciprocal."""
    kernel = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    size = [data.draw(st.integers(k, 7)) for k in kernel]
    channels, x_fmt = data.draw(st.integers(1, 3)), data.draw(formats(2, 8, quant_only=True))
    recip_fmt, out_fmt = FixedFormat(8, 0, False), data.draw(formats(2, 12))
    area = math.prod(kernel)
    rng, net = np.random.default_rng(seed), Net()
    ones = net.init(np.ones((channels, 1, *kernel), dtype=np.float32))
    sums = net.op("Conv", [net.cast("x", x_fmt), ones], kernel_shape=kernel, strides=kernel, group=channels)
    factor = net.const(np.array(round(2**8 / area)), recip_fmt, double=True)
    y = net.op("Mul", [net.double(sums), factor])
    x_shape = (2, channels, *size)
    model = net.model(x_shape, net.cast(y, out_fmt))
    compare(model, grid_values(rng, x_fmt, x_shape), out_fmt, counts(f"window-sum Conv {rank}-D"))
    assert any(isinstance(nd, SumPool2d) for nd in from_qonnx(model).nodes)


@pytest.mark.parametrize("op", ["ReduceSum", "GlobalAveragePool", "ReduceMean"])
@pytest.mark.parametrize("rank", [1, 2])
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_global_sums(op: str, rank: int, data, seed: int) -> None:
    """ReduceSum over axis 2 of (N, C, L) / axes (2, 3), keepdims or not; the pooled means over 2**k values."""
    pow2 = op != "ReduceSum"
    size = [data.draw(st.sampled_from([1, 2, 4]) if pow2 else st.integers(1, 6)) for _ in range(rank)]
    x_fmt, out_fmt = data.draw(formats(2, 8, quant_only=True)), data.draw(formats(2, 14))
    rng, net = np.random.default_rng(seed), Net()
    x = net.cast("x", x_fmt)
    axes = list(range(2, 2 + rank)) if data.draw(st.booleans()) else [-1 - i for i in range(rank)]
    if op == "GlobalAveragePool":
        y = net.op(op, [x])
    elif op == "ReduceMean":
        y = net.op(op, [x], axes=axes, keepdims=data.draw(st.integers(0, 1)))
    else:
        y = net.op(op, [net.double(x), net.init(np.array(axes, dtype=np.int64))], keepdims=data.draw(st.integers(0, 1)))
    x_shape = (2, data.draw(st.integers(1, 3)), *size)
    model = net.model(x_shape, net.cast(y, out_fmt))
    compare(model, grid_values(rng, x_fmt, x_shape), out_fmt, counts(f"{op} {rank}-D"))


# ---------------------------------------------------------------------------------------------------- constants
@pytest.mark.parametrize("rank", [1, 2, 3])
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_affine_constants(rank: int, data, seed: int) -> None:
    """Mul then Add by per-channel constants of shape (C,), (C, 1), (C, 1, 1), (1, C, ...) or scalars on (N, C),
    (N, C, L) and (N, C, H, W) tensors (batch norm 1-D, torch.mul by a number)."""
    channels = data.draw(st.integers(1, 4))
    size = [data.draw(st.integers(1, 4)) for _ in range(rank - 1)]
    per_channel = [(channels,) + (1,) * (rank - 1), (1, channels) + (1,) * (rank - 1), ()]
    if rank == 1:
        per_channel.append((1,))
    x_fmt, s_fmt, t_fmt = data.draw(formats(2, 8, quant_only=True)), data.draw(formats(2, 8)), data.draw(formats(2, 8))
    out_fmt = data.draw(formats(2, 14))
    rng, net = np.random.default_rng(seed), Net()
    scale_shape, shift_shape = data.draw(st.sampled_from(per_channel)), data.draw(st.sampled_from(per_channel))
    scale = net.const(rand_codes(rng, s_fmt, scale_shape), s_fmt, double=True)
    y = net.op("Mul", [net.double(net.cast("x", x_fmt)), scale])
    if data.draw(st.booleans()):
        y = net.op("Add", [net.const(rand_codes(rng, t_fmt, shift_shape), t_fmt, double=True), y])
    x_shape = (2, channels, *size)
    model = net.model(x_shape, net.cast(y, out_fmt))
    compare(model, grid_values(rng, x_fmt, x_shape), out_fmt, counts(f"Mul/Add constants rank {rank + 1}"))


# ---------------------------------------------------------------------------------------------------- activations
def _bound(draw, fmt: FixedFormat) -> float:
    """A bound on a grid finer or coarser than ``fmt``'s, around its range."""
    lsb_exp = draw(st.integers(-fmt.frac_bits - 2, -fmt.frac_bits + 2))
    return math.ldexp(draw(st.integers(-12, 12)), lsb_exp + fmt.width // 2)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_clip(data, seed: int) -> None:
    """Clip(min, max) in float64 with any bounds (either absent, min 0 = a clipped Relu) -> Relu or Clip."""
    x_fmt, out_fmt = data.draw(formats(2, 10, quant_only=True)), data.draw(formats(2, 12))
    lo = data.draw(st.sampled_from([None, 0.0, _bound(data.draw, x_fmt)]))
    hi = data.draw(st.sampled_from([None, _bound(data.draw, x_fmt)]))
    rng, net = np.random.default_rng(seed), Net()
    bounds = [net.init(np.array(v)) if v is not None else "" for v in (lo, hi)]
    y = net.op("Clip", [net.double(net.cast("x", x_fmt)), *bounds])
    x_shape = (4, data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5)))
    model = net.model(x_shape, net.cast(y, out_fmt))
    compare(model, grid_values(rng, x_fmt, x_shape), out_fmt, counts("Clip"))
    node = from_qonnx(model).nodes[1]
    assert isinstance(node, Relu if lo == 0.0 else Clip)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_leaky_relu(data, seed: int) -> None:
    """LeakyRelu(alpha) on float32 with an exact slope (x * alpha within 24 bits)."""
    x_fmt = data.draw(formats(2, 12, quant_only=True))
    alpha_bits = data.draw(st.integers(1, min(8, 22 - x_fmt.width)))
    alpha = math.ldexp(data.draw(st.integers(1, 2**alpha_bits - 1)), -alpha_bits)
    out_fmt = data.draw(formats(2, 16))
    rng, net = np.random.default_rng(seed), Net()
    y = net.op("LeakyRelu", [net.cast("x", x_fmt)], alpha=alpha)
    x_shape = (4, data.draw(st.integers(1, 3)), data.draw(st.integers(1, 6)))
    model = net.model(x_shape, net.cast(y, out_fmt))
    compare(model, grid_values(rng, x_fmt, x_shape), out_fmt, counts("LeakyRelu"))
    node = from_qonnx(model).nodes[1]
    assert isinstance(node, LeakyRelu) and node.alpha * 2.0**-node.alpha_fmt.frac_bits == alpha
    assert node.acc.frac_bits == x_fmt.frac_bits + node.alpha_fmt.frac_bits


# ---------------------------------------------------------------------------------------------------- moves
@pytest.mark.parametrize("rank", [1, 2])
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_pad(rank: int, data, seed: int) -> None:
    """Pad (constant 0) of (N, C, L) and (N, C, H, W) maps, pads from an initializer (opset 13) or the attribute
    (opset 10), with or without an explicit zero value."""
    spatial = [data.draw(st.integers(0, 3)) for _ in range(2 * rank)]
    pads = [0, 0, *spatial[:rank], 0, 0, *spatial[rank:]]
    x_fmt, out_fmt = data.draw(formats(2, 10, quant_only=True)), data.draw(formats(2, 12))
    opset = data.draw(st.sampled_from([10, 13]))
    rng, net = np.random.default_rng(seed), Net()
    x = net.cast("x", x_fmt)
    if opset == 10:
        y = net.op("Pad", [x], mode="constant", pads=pads, value=0.0)
    else:
        value = [net.init(np.array(0.0, dtype=np.float32))] if data.draw(st.booleans()) else []
        y = net.op("Pad", [x, net.init(np.array(pads, dtype=np.int64)), *value], mode="constant")
    x_shape = (2, data.draw(st.integers(1, 3)), *[data.draw(st.integers(1, 4)) for _ in range(rank)])
    model = net.model(x_shape, net.cast(y, out_fmt), opset=opset)
    compare(model, grid_values(rng, x_fmt, x_shape), out_fmt, counts(f"Pad {rank}-D"))
    node = from_qonnx(model).nodes[1]
    assert isinstance(node, Pad) and (node.padding[1], node.padding[3]) == (spatial[rank - 1], spatial[-1])


RESIZE_MODES = [
    ("asymmetric", "floor"),
    ("half_pixel", "round_prefer_floor"),
    ("half_pixel", "round_prefer_ceil"),
    ("pytorch_half_pixel", "round_prefer_floor"),
    ("tf_half_pixel_for_nn", "floor"),
]


@pytest.mark.parametrize("rank", [1, 2])
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_resize_nearest(rank: int, data, seed: int) -> None:
    """Resize nearest by integer factors, by scales or sizes, in every mode that repeats each pixel."""
    factors = [data.draw(st.integers(1, 4)) for _ in range(rank)]
    mode, rounding = data.draw(st.sampled_from(RESIZE_MODES))
    x_fmt, out_fmt = data.draw(formats(2, 10, quant_only=True)), data.draw(formats(2, 12))
    size = [data.draw(st.integers(1, 4)) for _ in range(rank)]
    x_shape = (2, data.draw(st.integers(1, 3)), *size)
    rng, net = np.random.default_rng(seed), Net()
    if data.draw(st.booleans()):
        sizing = [net.init(np.array([1.0, 1.0, *factors], dtype=np.float32))]
    else:
        sizing = [
            "",
            net.init(np.array([*x_shape[:2], *(f * n for f, n in zip(factors, size, strict=True))], dtype=np.int64)),
        ]
    y = net.op("Resize", [net.cast("x", x_fmt), "", *sizing], mode="nearest",
               coordinate_transformation_mode=mode, nearest_mode=rounding)  # fmt: skip
    model = net.model(x_shape, net.cast(y, out_fmt))
    compare(model, grid_values(rng, x_fmt, x_shape), out_fmt, counts(f"Resize {rank}-D"))
    node = from_qonnx(model).nodes[1]
    assert isinstance(node, Upsample) and node.scale == ((1, *factors) if rank == 1 else tuple(factors))


@pytest.mark.parametrize("rank", [1, 2, 3])
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_concat(rank: int, data, seed: int) -> None:
    """Concat of 1 to 4 tensors of different formats along channels (axis 1) or the last axis (-1)."""
    n_in = data.draw(st.integers(1, 4))
    axis = data.draw(st.sampled_from([1, -1]))
    fmts = [data.draw(formats(2, 10, quant_only=True)) for _ in range(n_in)]
    out_fmt = data.draw(formats(2, 14))
    shape = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    rng, net = np.random.default_rng(seed), Net()
    y = net.op("Concat", [net.double(net.cast("x", fmt)) for fmt in fmts], axis=axis)  # the input in n formats
    model = net.model((3, *shape), net.cast(y, out_fmt))
    compare(model, grid_values(rng, fmts[0], (3, *shape)), out_fmt, counts(f"Concat rank {rank + 1}"))
    node = next(nd for nd in from_qonnx(model).nodes if isinstance(nd, Concat))
    assert node.axis == (0 if axis == 1 else rank - 1)


# ---------------------------------------------------------------------------------------------------- tables
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_fixed_table(data, seed: int) -> None:
    """FixedTable (sigmoid, tanh) -> Lookup, on an input of in_format or of a narrower format inside it."""
    function = data.draw(st.sampled_from(["sigmoid", "tanh"]))
    in_fmt = data.draw(formats(2, 10, quant_only=True))
    narrow = data.draw(st.booleans()) and in_fmt.width > 2
    x_fmt = FixedFormat(in_fmt.width - 1, in_fmt.int_bits - 1, in_fmt.signed, in_fmt.quant, in_fmt.overflow)
    x_fmt = x_fmt if narrow else in_fmt
    table_fmt, out_fmt = data.draw(formats(2, 12)), data.draw(formats(2, 12))
    rng, net = np.random.default_rng(seed), Net()
    table = net.init(function_table(function, in_fmt, table_fmt))
    y = net.op("FixedTable", [net.cast("x", x_fmt), table], domain=DOMAIN, function=function,
               in_format=str(in_fmt), out_format=str(table_fmt))  # fmt: skip
    if data.draw(st.booleans()):
        y, out_fmt = net.cast(y, out_fmt), out_fmt
    else:
        out_fmt = table_fmt
    x_shape = (5, data.draw(st.integers(1, 8)))
    model = net.model(x_shape, y)
    x = grid_values(rng, x_fmt, x_shape)
    compare(model, x, out_fmt, counts("FixedTable"))
    graph = from_qonnx(model)
    node = next(nd for nd in graph.nodes if isinstance(nd, Lookup))
    assert node.function == function and len(node.table) == 2**x_fmt.width and node.acc == table_fmt
    # the interpreter's Lookup against the function's table indexed directly by the input's codes
    x_codes = np.asarray(graph.run(x.astype(np.float64), trace=True)[node.inputs[0]], dtype=np.int64)
    direct = function_table(function, in_fmt, table_fmt)[
        (x_codes << (in_fmt.frac_bits - x_fmt.frac_bits)) - in_fmt.min_code
    ]
    np.testing.assert_array_equal(graph.run(x.astype(np.float64), trace=True)[node.output], direct)


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_fixed_softmax(data, seed: int) -> None:
    """FixedSoftmax -> Softmax (spec rebuilt from the attributes and tables) then a cast; = softmax_codes."""
    in_fmt = data.draw(formats(2, 9, quant_only=True))
    length = data.draw(st.integers(1, 12))
    widths = {k: data.draw(st.integers(4, 12)) for k in ("exp_width", "index_width", "recip_width")}
    spec = SoftmaxSpec.build(in_fmt, length, **widths)
    out_fmt = data.draw(formats(2, 14))
    rng, net = np.random.default_rng(seed), Net()
    y = net.op("FixedSoftmax", [net.cast("x", in_fmt), net.init(spec.exp_table), net.init(spec.recip_table)],
               domain=DOMAIN, in_format=str(spec.in_fmt), exp_format=str(spec.exp_fmt),
               index_format=str(spec.index_fmt), recip_format=str(spec.recip_fmt), axis=-1)  # fmt: skip
    x_shape = (6, length)
    model = net.model(x_shape, net.cast(y, out_fmt))
    x = grid_values(rng, in_fmt, x_shape)
    compare(model, x, out_fmt, counts("FixedSoftmax"))
    graph = from_qonnx(model)
    node = next(nd for nd in graph.nodes if isinstance(nd, Softmax))
    assert node.acc == spec.acc and node.spec.index_fmt == spec.index_fmt
    env = graph.run(x.astype(np.float64), trace=True)
    np.testing.assert_array_equal(env[node.output], softmax_codes(env[node.inputs[0]], spec))


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_argmax(data, seed: int) -> None:
    """ArgMax(axis=-1, keepdims=0) -> Cast(FLOAT) -> Quant into ap_ufixed<B, B>: the first index of the maximum."""
    x_fmt = data.draw(formats(2, 6, quant_only=True))  # narrow: ties are common
    length = data.draw(st.integers(1, 17))
    bits = max(1, grow_bits(length))
    out_fmt = FixedFormat(bits, bits, signed=False, overflow="AP_SAT")
    rng, net = np.random.default_rng(seed), Net()
    index = net.op("ArgMax", [net.cast("x", x_fmt)], axis=-1, keepdims=0)
    y = net.cast(net.op("Cast", [index], to=1), out_fmt)
    model = net.model((8, length), y)
    x = grid_values(rng, x_fmt, (8, length))
    compare(model, x, out_fmt, counts("ArgMax"))
    graph = from_qonnx(model)
    node = next(nd for nd in graph.nodes if isinstance(nd, ArgMax))
    assert node.acc == FixedFormat(bits, bits, signed=False)
    assert [n.op for n in fuse_casts(graph).nodes] == ["cast", "argmax"]


# ---------------------------------------------------------------------------------------------------- more patterns
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_auto_pad(auto_pad: str, stride: int) -> None:
    """auto_pad becomes the explicit (asymmetric) pads onnxruntime computes; an even kernel puts the odd pixel at
    the end (SAME_UPPER, as PyTorch's padding='same') or the start (SAME_LOWER)."""
    rng, net = np.random.default_rng(stride), Net()
    x_fmt, w_fmt, out_fmt = FixedFormat(6, 2, True, "AP_RND_CONV", "AP_SAT"), FixedFormat(4, 1), FixedFormat(10, 5)
    w = net.const(rand_codes(rng, w_fmt, (3, 2, 2, 3)), w_fmt)
    y = net.op("Conv", [net.cast("x", x_fmt), w], kernel_shape=[2, 3], strides=[stride, stride], auto_pad=auto_pad)
    model = net.model((2, 2, 5, 6), net.cast(y, out_fmt))
    compare(model, grid_values(rng, x_fmt, (2, 2, 5, 6)), out_fmt, counts("Conv auto_pad"))


def test_upsample_opset9() -> None:
    """The deprecated Upsample op (opset 9: scales as an input) repeats pixels like Resize asymmetric + floor."""
    rng, net = np.random.default_rng(0), Net()
    x_fmt = FixedFormat(6, 2, True, "AP_RND_CONV", "AP_SAT")
    y = net.op("Upsample", [net.cast("x", x_fmt), net.f32([1, 1, 2, 3])], mode="nearest")
    model = net.model((2, 2, 3, 2), net.cast(y, x_fmt), opset=9)
    compare(model, grid_values(rng, x_fmt, (2, 2, 3, 2)), x_fmt, counts("Upsample (opset 9)"))
    assert next(n for n in from_qonnx(model).nodes if isinstance(n, Upsample)).scale == (2, 3)


def test_bias_not_folded_into_a_conv_read_elsewhere_through_an_alias() -> None:
    """Conv -> Identity -> {Add bias, Add}: the bias must not be folded into the conv the second Add also reads."""
    rng, net = np.random.default_rng(0), Net()
    x_fmt, w_fmt, out_fmt = FixedFormat(6, 2, True, "AP_RND_CONV", "AP_SAT"), FixedFormat(4, 1), FixedFormat(12, 6)
    conv = net.op("Conv", [net.cast("x", x_fmt), net.const(rand_codes(rng, w_fmt, (2, 2, 3)), w_fmt)], pads=[1, 1])
    alias = net.op("Identity", [conv])
    biased = net.op("Add", [net.double(alias), net.const(np.array([[3], [-5]]), FixedFormat(6, 3), double=True)])
    y = net.op("Add", [net.double(alias), biased])
    model = net.model((2, 2, 5), net.cast(y, out_fmt))
    compare(model, grid_values(rng, x_fmt, (2, 2, 5)), out_fmt, counts("Conv + aliased bias"))


ALL_COORDINATE_MODES = ["asymmetric", "half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "align_corners"]
ALL_NEAREST_MODES = ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"]


@settings(max_examples=60, deadline=None)
@given(mode=st.sampled_from(ALL_COORDINATE_MODES), rounding=st.sampled_from(ALL_NEAREST_MODES),
       factor=st.integers(1, 4), length=st.integers(1, 5))  # fmt: skip
def test_resize_accepted_exactly_when_onnxruntime_repeats_pixels(mode: str, rounding: str, factor: int, length: int):
    """Every coordinate/rounding mode pair: the importer takes it (-> Upsample, = qonnx) exactly when onnxruntime's
    Resize repeats each pixel ``factor`` times, and refuses it (naming the modes) otherwise."""
    x_fmt = FixedFormat(8, 4, True, "AP_RND_CONV", "AP_SAT")
    net = Net()
    y = net.op("Resize", [net.cast("x", x_fmt), "", net.f32([1, 1, factor])], mode="nearest",
               coordinate_transformation_mode=mode, nearest_mode=rounding)  # fmt: skip
    model = net.model((1, 1, length), y)
    x = np.ldexp(np.arange(length, dtype=np.float64), -2).astype(np.float32).reshape(1, 1, length)
    repeats = np.array_equal(qonnx_outputs(model, x), np.repeat(x, factor, axis=-1))
    shifts = any(nearest_source_index(mode, rounding, i, factor, length) != i // factor for i in range(factor * length))
    if factor == 1 and shifts:  # onnxruntime copies at scale 1 whatever the modes say; the importer follows ONNX
        assert repeats
        repeats = False
    if repeats:
        compare(model, x, x_fmt, counts("Resize, every mode pair"))
    else:
        with pytest.raises(IRError, match=rf"coordinate_transformation_mode '{mode}' with nearest_mode '{rounding}'"):
            from_qonnx(model)


LEGACY = {  # older opsets and optional forms: (opset, input shape, build)
    "Clip-6 attributes": (6, (2, 3, 4), lambda n, x: n.op("Clip", [x], min=-0.75, max=1.5)),
    "ReduceSum-11 axes attribute": (11, (2, 3, 4), lambda n, x: n.op("ReduceSum", [x], axes=[2], keepdims=1)),
    "ArgMax keepdims=1": (13, (2, 3, 5), lambda n, x: n.cast(n.op("Cast", [n.op("ArgMax", [x], axis=2)], to=1),
                                                            FixedFormat(3, 3, False, overflow="AP_SAT"))),
    "Resize-10 (X, scales)": (10, (2, 3, 4), lambda n, x: n.op("Resize", [x, n.f32([1, 1, 3])], mode="nearest")),
    "Concat of 3-D maps on the last axis": (13, (2, 3, 4), lambda n, x: n.op("Concat", [x, x, x], axis=2)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LEGACY))
def test_legacy_and_optional_forms(case: str) -> None:
    opset, x_shape, build = LEGACY[case]
    x_fmt = FixedFormat(7, 3, True, "AP_RND_CONV", "AP_SAT")
    net = Net()
    y = build(net, net.cast("x", x_fmt))
    out_fmt = FixedFormat(3, 3, False, overflow="AP_SAT") if "ArgMax" in case else FixedFormat(9, 5)
    y = y if "ArgMax" in case else net.cast(y, out_fmt)
    model = net.model(x_shape, y, opset=opset)
    compare(model, grid_values(np.random.default_rng(1), x_fmt, x_shape), out_fmt, counts("older opsets / forms"))


@SETTINGS
@given(a_fmt=formats(2, 9), b_fmt=formats(2, 9), out_fmt=formats(2, 12), swap=st.booleans(), seed=seeds)
def test_sub_of_two_tensors(a_fmt: FixedFormat, b_fmt: FixedFormat, out_fmt: FixedFormat, swap: bool, seed: int):
    """Sub of two casts of the input (any formats and modes) -> the IR's Add with ``subtract``, exact in ap_fixed's
    signed difference type, which holds every difference of the two formats' values."""
    rng = np.random.default_rng(seed)
    net = Net()
    x = net.cast("x", FixedFormat(10, 4))
    a, b = net.double(net.cast(x, a_fmt)), net.double(net.cast(x, b_fmt))
    model = net.model((3, 2, 5), net.cast(net.op("Sub", [b, a] if swap else [a, b]), out_fmt))
    compare(model, grid_values(rng, FixedFormat(10, 4), (3, 2, 5)), out_fmt, counts("Sub"))
    node = next(n for n in from_qonnx(model).nodes if isinstance(n, Add))
    assert node.subtract and node.acc.signed
    lo, hi = node.acc.min_code * node.acc.lsb, node.acc.max_code * node.acc.lsb
    first, second = (b_fmt, a_fmt) if swap else (a_fmt, b_fmt)
    assert lo <= first.min_code * first.lsb - second.max_code * second.lsb
    assert first.max_code * first.lsb - second.min_code * second.lsb <= hi
    assert node.acc.frac_bits == max(a_fmt.frac_bits, b_fmt.frac_bits)
