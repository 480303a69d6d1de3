"""Small IR graphs (no torch) for calibrating the plan's resource model against Yosys: a convolution + max pool +
dense network and a two-layer MLP, with random weight codes (plain, or K-hot with at most K signed digits).

Used by tests/test_plan_calibration.py and benchmarks/bench_calibrate.py. Sizes are chosen so that one design
synthesizes in tens of seconds on 2 cores.
"""

from __future__ import annotations

import numpy as np

from qfx.format import FixedFormat
from qfx.ir.constants import naf_digits
from qfx.ir.graph import Cast, Conv2d, Dense, Graph, MaxPool2d, Relu, Reshape, Tensor
from qfx.result_types import accumulator_format


def _codes(rng: np.random.Generator, shape: tuple[int, ...], bits: int, khot: int | None) -> np.ndarray:
    half = 1 << (bits - 1)
    allowed = np.array([c for c in range(-half, half) if khot is None or len(naf_digits(c)) <= khot])
    return rng.choice(allowed, size=shape)


def conv_net(khot: int | None = None, size: int = 8, channels: int = 4, classes: int = 3, seed: int = 5) -> Graph:
    """Cast -> 3x3 convolution (1 -> ``channels``) -> ReLU -> 2x2 max pool -> flatten -> dense (-> ``classes``),
    8-bit inputs, weights and activations."""
    rng = np.random.default_rng(seed)
    f_in, f_w, f_h = FixedFormat(8, 1), FixedFormat(8, 1), FixedFormat(8, 3, signed=False)
    co, ho = channels, size - 2
    hp = ho // 2
    n = co * hp * hp
    w1, w2 = _codes(rng, (co, 1, 3, 3), 8, khot), _codes(rng, (classes, n), 8, khot)
    acc1 = accumulator_format(f_in, f_w, 9)
    acc2 = accumulator_format(f_h, f_w, n)
    t = {
        "x": Tensor("x", (1, size, size), None),
        "q": Tensor("q", (1, size, size), f_in),
        "c": Tensor("c", (co, ho, ho), acc1),
        "rr": Tensor("rr", (co, ho, ho), acc1),
        "r": Tensor("r", (co, ho, ho), f_h),
        "p": Tensor("p", (co, hp, hp), f_h),
        "f": Tensor("f", (n,), f_h),
        "y": Tensor("y", (classes,), acc2),
    }
    nodes = [
        Cast("in", ["x"], "q", f_in),
        Conv2d("conv", ["q"], "c", acc1, weight=w1, weight_fmt=f_w, khot=khot),
        Relu("relu", ["c"], "rr", acc1),
        Cast("act", ["rr"], "r", f_h),
        MaxPool2d("pool", ["r"], "p", f_h),
        Reshape("flat", ["p"], "f", f_h),
        Dense("fc", ["f"], "y", acc2, weight=w2, weight_fmt=f_w, khot=khot),
    ]
    return Graph(t, nodes, ["x"], ["y"], name="conv_net")


def mlp(khot: int | None = None, n_in: int = 16, hidden: int = 8, n_out: int = 4, seed: int = 6) -> Graph:
    """Cast -> dense (``n_in`` -> ``hidden``) -> ReLU -> dense (-> ``n_out``), 8-bit inputs, weights, activations."""
    rng = np.random.default_rng(seed)
    f_in, f_w, f_h = FixedFormat(8, 2), FixedFormat(8, 1), FixedFormat(8, 3, signed=False)
    w1, w2 = _codes(rng, (hidden, n_in), 8, khot), _codes(rng, (n_out, hidden), 8, khot)
    acc1, acc2 = accumulator_format(f_in, f_w, n_in), accumulator_format(f_h, f_w, hidden)
    t = {
        "x": Tensor("x", (n_in,), None),
        "q": Tensor("q", (n_in,), f_in),
        "h": Tensor("h", (hidden,), acc1),
        "hr": Tensor("hr", (hidden,), acc1),
        "r": Tensor("r", (hidden,), f_h),
        "y": Tensor("y", (n_out,), acc2),
    }
    nodes = [
        Cast("in", ["x"], "q", f_in),
        Dense("fc1", ["q"], "h", acc1, weight=w1, weight_fmt=f_w, khot=khot),
        Relu("relu", ["h"], "hr", acc1),
        Cast("act", ["hr"], "r", f_h),
        Dense("fc2", ["r"], "y", acc2, weight=w2, weight_fmt=f_w, khot=khot),
    ]
    return Graph(t, nodes, ["x"], ["y"], name="mlp")


def dw_net(khot: int | None = None, size: int = 8, channels: int = 16, classes: int = 3, seed: int = 7) -> Graph:
    """Cast -> 3x3 convolution (``channels`` -> ``channels``, padding 1) -> ReLU -> 3x3 depthwise convolution
    (padding 1) -> ReLU -> 2x2 max pool -> flatten -> dense (-> ``classes``), 8-bit inputs, weights, activations:
    the wide windows of ResNet- and DS-CNN-like layers, in both unit styles (window generator, whole windows)."""
    rng = np.random.default_rng(seed)
    c, f_in, f_w, f_h = channels, FixedFormat(8, 1), FixedFormat(8, 1), FixedFormat(8, 3, signed=False)
    hp = size // 2
    n = c * hp * hp
    w1, w2 = _codes(rng, (c, c, 3, 3), 8, khot), _codes(rng, (c, 1, 3, 3), 8, khot)
    w3 = _codes(rng, (classes, n), 8, khot)
    acc1, acc2 = accumulator_format(f_in, f_w, 9 * c), accumulator_format(f_h, f_w, 9)
    acc3 = accumulator_format(f_h, f_w, n)
    m = (c, size, size)
    t = {
        "x": Tensor("x", m, None),
        "q": Tensor("q", m, f_in),
        "c1": Tensor("c1", m, acc1),
        "r1": Tensor("r1", m, acc1),
        "a1": Tensor("a1", m, f_h),
        "c2": Tensor("c2", m, acc2),
        "r2": Tensor("r2", m, acc2),
        "a2": Tensor("a2", m, f_h),
        "p": Tensor("p", (c, hp, hp), f_h),
        "f": Tensor("f", (n,), f_h),
        "y": Tensor("y", (classes,), acc3),
    }
    pad = (1, 1, 1, 1)
    nodes = [
        Cast("in", ["x"], "q", f_in),
        Conv2d("conv", ["q"], "c1", acc1, weight=w1, weight_fmt=f_w, khot=khot, padding=pad),
        Relu("relu1", ["c1"], "r1", acc1),
        Cast("act1", ["r1"], "a1", f_h),
        Conv2d("dw", ["a1"], "c2", acc2, weight=w2, weight_fmt=f_w, khot=khot, padding=pad, groups=c),
        Relu("relu2", ["c2"], "r2", acc2),
        Cast("act2", ["r2"], "a2", f_h),
        MaxPool2d("pool", ["a2"], "p", f_h),
        Reshape("flat", ["p"], "f", f_h),
        Dense("fc", ["f"], "y", acc3, weight=w3, weight_fmt=f_w, khot=khot),
    ]
    return Graph(t, nodes, ["x"], ["y"], name="dw_net")
