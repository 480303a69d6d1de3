"""Small IR graphs (no torch) for the streaming units that move values or act on each value: padded max pools,
grouped convolutions, leaky ReLU, zero padding, concatenations along channels, rows and columns, nearest
upsampling, and a vector re-ordered into a feature map (a relayout). Used by tests/test_rtl_stream.py, where the
folded streaming Verilog of each is compared code for code with the IR interpreter.
"""

from __future__ import annotations

import numpy as np

from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir.graph import (
    ArgMax,
    Cast,
    Concat,
    Conv2d,
    Graph,
    LeakyRelu,
    MaxPool2d,
    Node,
    Pad,
    Relu,
    Reshape,
    Tensor,
    Upsample,
)
from qfx.result_types import accumulator_format, union_format

IN = FixedFormat(8, 2, quant=Quant.RND, overflow=Overflow.SAT)  # signed inputs: negative values everywhere
OUT = FixedFormat(6, 2, quant=Quant.RND, overflow=Overflow.SAT)  # a narrower output: the unit's cast matters
ALPHA = FixedFormat(8, 0, signed=False)  # a leaky ReLU's slope: code 13 is about 0.05


def _graph(name: str, in_shape: tuple[int, ...], nodes: list[Node], shapes: dict[str, tuple], fmts: dict) -> Graph:
    """Cast ``x`` (float, ``in_shape``) to ``q`` (``IN``), then ``nodes``; the last node's output is the result."""
    t = {"x": Tensor("x", in_shape, None), "q": Tensor("q", in_shape, IN)}
    t.update({k: Tensor(k, s, fmts[k]) for k, s in shapes.items()})
    return Graph(t, [Cast("in", ["x"], "q", IN), *nodes], ["x"], [nodes[-1].output], name=name)


def _out_hw(size: int, k: int, s: int, p0: int, p1: int) -> int:
    return (size + p0 + p1 - k) // s + 1


def padded_max_pool(c: int = 4, size: int = 5, kernel: int = 3, stride: int = 2,
                    padding: tuple[int, int, int, int] = (1, 1, 1, 1)) -> Graph:  # fmt: skip
    """A max pool over signed codes with padding (top, left, bottom, right): the padding must never win."""
    ho = _out_hw(size, kernel, stride, padding[0], padding[2])
    wo = _out_hw(size, kernel, stride, padding[1], padding[3])
    node = MaxPool2d("pool", ["q"], "y", IN, kernel=(kernel, kernel), stride=(stride, stride), padding=padding)
    return _graph("padded_max_pool", (c, size, size), [node], {"y": (c, ho, wo)}, {"y": IN})


def grouped_conv(c_in: int = 4, c_out: int = 4, groups: int = 2, size: int = 5, kernel: int = 3,
                 seed: int = 3, stride: int = 1, pad: int | None = None) -> Graph:  # fmt: skip
    """A convolution (padded by ``kernel // 2`` unless told) with ``groups`` groups of ``c_in // groups`` input
    channels each."""
    rng = np.random.default_rng(seed)
    w_fmt = FixedFormat(6, 1)
    weight = rng.integers(-32, 32, size=(c_out, c_in // groups, kernel, kernel))
    bias_fmt = FixedFormat(8, 3)
    bias = rng.integers(-128, 128, size=c_out)
    acc = accumulator_format(IN, w_fmt, kernel * kernel * c_in // groups, bias_fmt)
    pad = kernel // 2 if pad is None else pad
    node = Conv2d("conv", ["q"], "y", acc, weight=weight, weight_fmt=w_fmt, bias=bias, bias_fmt=bias_fmt,
                  padding=(pad, pad, pad, pad), groups=groups, stride=(stride, stride))  # fmt: skip
    out = (size + 2 * pad - kernel) // stride + 1
    return _graph("grouped_conv", (c_in, size, size), [node], {"y": (c_out, out, out)}, {"y": OUT})


def leaky_relu(alpha: int = 13, alpha_fmt: FixedFormat = ALPHA, shape: tuple[int, ...] = (4, 3, 3)) -> Graph:
    """``x < 0 ? alpha * x : x`` (alpha = code ``alpha`` of ``alpha_fmt``), exact, then cast to ``OUT``."""
    acc = FixedFormat(IN.width + alpha_fmt.width + 1, IN.int_bits + alpha_fmt.int_bits + 1)
    node = LeakyRelu("leaky", ["q"], "y", acc, alpha=alpha, alpha_fmt=alpha_fmt)
    return _graph("leaky_relu", shape, [node], {"y": shape}, {"y": OUT})


def pad(c: int = 3, h: int = 3, w: int = 4, padding: tuple[int, int, int, int] = (1, 2, 0, 1)) -> Graph:
    """Zero padding (top, left, bottom, right) of a signed map, its output cast to ``OUT`` (a fused cast: the
    streaming design follows the pad unit with a cast unit)."""
    shape = (c, h + padding[0] + padding[2], w + padding[1] + padding[3])
    return _graph("pad", (c, h, w), [Pad("pad", ["q"], "y", IN, padding=padding)], {"y": shape}, {"y": OUT})


def vector_to_map(c: int = 4, h: int = 2, w: int = 3) -> Graph:
    """A vector reshaped into a map, then padded: the pad unit needs pixels, the vector is one word (a relayout)."""
    n = c * h * w
    nodes = [Reshape("map", ["q"], "m", IN), Pad("pad", ["m"], "y", IN, padding=(1, 1, 0, 0))]
    return _graph("vector_to_map", (n,), nodes, {"m": (c, h, w), "y": (c, h + 1, w + 1)}, {"m": IN, "y": IN})


def map_to_argmax(c: int = 2, h: int = 2, w: int = 3) -> Graph:
    """A map flattened (PyTorch order) into the argmax of all its values: the argmax needs the whole vector in one
    word in flat order, the map arrives pixel by pixel (a relayout from words of C values to one of C H W)."""
    n = c * h * w
    idx = FixedFormat(n.bit_length(), n.bit_length(), signed=False)
    nodes = [Reshape("flat", ["q"], "f", IN), ArgMax("argmax", ["f"], "y", idx)]
    return _graph("map_to_argmax", (c, h, w), nodes, {"f": (n,), "y": (1,)}, {"f": IN, "y": idx})


def concat(axis: int = 0, c: int = 2, h: int = 3, w: int = 4) -> Graph:
    """The input and its ReLU in another format (fewer fraction bits) side by side along ``axis`` (0 channels,
    1 rows, 2 columns), exact in the union of the formats, then cast to ``OUT``."""
    f_r = FixedFormat(7, 4, signed=False, quant=Quant.RND, overflow=Overflow.SAT)
    acc = union_format([IN, f_r])
    shape = [c, h, w]
    shape[axis] *= 2
    nodes = [Relu("relu", ["q"], "r0", IN), Cast("act", ["r0"], "r", f_r),
             Concat("cat", ["q", "r"], "y", acc, axis=axis)]  # fmt: skip
    shapes = {"r0": (c, h, w), "r": (c, h, w), "y": tuple(shape)}
    return _graph(f"concat{axis}", (c, h, w), nodes, shapes, {"r0": IN, "r": f_r, "y": OUT})


def upsample(c: int = 3, h: int = 3, w: int = 2, scale: tuple[int, int] = (2, 3)) -> Graph:
    """Nearest-neighbour upsampling by ``scale``, its output cast to ``OUT`` (a cast unit follows)."""
    node = Upsample("up", ["q"], "y", IN, scale=scale)
    return _graph("upsample", (c, h, w), [node], {"y": (c, h * scale[0], w * scale[1])}, {"y": OUT})


def strided_conv(c_in: int = 4, c_out: int = 4, depthwise: bool = False, size: int = 6, kernel: int = 3,
                 stride: int = 1, dilation: int = 1, padding: tuple[int, int, int, int] = (1, 1, 1, 1),
                 seed: int = 5) -> Graph:  # fmt: skip
    """A convolution (ungrouped, or depthwise with ``c_out = c_in``) of any stride, dilation and padding."""
    rng = np.random.default_rng(seed)
    c_out = c_in if depthwise else c_out
    groups = c_in if depthwise else 1
    w_fmt = FixedFormat(6, 1)
    weight = rng.integers(-32, 32, size=(c_out, c_in // groups, kernel, kernel))
    acc = accumulator_format(IN, w_fmt, kernel * kernel * c_in // groups)
    span = (kernel - 1) * dilation + 1
    ho = (size + padding[0] + padding[2] - span) // stride + 1
    wo = (size + padding[1] + padding[3] - span) // stride + 1
    node = Conv2d("conv", ["q"], "y", acc, weight=weight, weight_fmt=w_fmt, padding=padding, groups=groups,
                  stride=(stride, stride), dilation=(dilation, dilation))  # fmt: skip
    return _graph("strided_conv", (c_in, size, size), [node], {"y": (c_out, ho, wo)}, {"y": OUT})
