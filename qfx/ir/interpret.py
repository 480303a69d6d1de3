"""The golden model: runs an IR graph on integer codes (numpy int64, or Python ints past 62 bits), never floats.

Each node computes its exact result as codes of ``node.acc`` (operands aligned to the finer LSB by left shifts,
products and sums of integers), then :func:`~qfx.ir.intcast.requantize` assigns it to the output's format.
"""

from __future__ import annotations

import numpy as np

from qfx.format import FixedFormat
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
from qfx.ir.intcast import as_ints, float_codes, requantize
from qfx.tables import lookup_codes, softmax_codes

__all__ = ["run"]


def _align(codes: np.ndarray, frac_bits: int, acc: FixedFormat) -> np.ndarray:
    """Codes with ``frac_bits`` fraction bits re-expressed with ``acc``'s (never fewer), as ``acc``-wide ints."""
    shift = acc.frac_bits - frac_bits
    if shift < 0:
        raise AssertionError(f"internal: cannot align {frac_bits} fraction bits to {acc} exactly")
    return as_ints(codes, acc.width + 1) << shift


def _per_channel(values: np.ndarray, ndim: int) -> np.ndarray:
    """Per-channel constants shaped to broadcast over (N, C, ...) with ``ndim`` dims."""
    return values.reshape((1, -1) + (1,) * (ndim - 2))


def _windows(x: np.ndarray, kernel, stride, dilation, out_hw) -> np.ndarray:
    """(N, C, KH, KW, Ho, Wo) views of the padded input ``x`` (N, C, Hp, Wp) under each kernel position."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    n, c = x.shape[:2]
    out = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
            out[:, :, i, j] = x[:, :, rows, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
    return out


def _pad(x: np.ndarray, padding, value) -> np.ndarray:
    top, left, bottom, right = padding
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def bipolar_dot(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w.T`` for +-1 operands as XNOR-popcount: with bits ``b = (v > 0)``, each product is +1 where the bits
    agree, so the sum over n terms is ``2 * popcount(xnor(bx, bw)) - n`` (what the hardware computes)."""
    bx, bw = (np.asarray(x) > 0).astype(np.int64), (np.asarray(w) > 0).astype(np.int64)
    agree = bx @ bw.T + (1 - bx) @ (1 - bw).T  # popcount of the XNOR
    return 2 * agree - bx.shape[-1]


def threshold_codes(x: np.ndarray, thresholds: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Codes of a :class:`Threshold` node for input codes ``x`` (N, C, ...): ``values[c, #(x >= t[c, :])]``."""
    x = np.asarray(x)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    count = np.zeros(x.shape, dtype=np.int64)
    for k in range(thresholds.shape[1]):
        count += x >= thresholds[:, k].reshape(shape)
    channel = np.broadcast_to(np.arange(values.shape[0]).reshape(shape), x.shape)
    return np.asarray(values)[channel, count]


def _dense(node: Dense, x: np.ndarray, fx: int) -> np.ndarray:
    acc = node.acc
    if node.bipolar:
        prod = bipolar_dot(x, node.weight)
    else:
        prod = as_ints(x, acc.width + 1) @ as_ints(node.weight, acc.width + 1).T
    out = _align(prod, fx + node.weight_fmt.frac_bits, acc)
    if node.bias is not None:
        out = out + _align(node.bias, node.bias_fmt.frac_bits, acc)[None, :]
    return out


def _conv(node: Conv2d, x: np.ndarray, fx: int, out_shape: tuple[int, ...]) -> np.ndarray:
    acc, w = node.acc, as_ints(node.weight, node.acc.width + 1)
    x = _pad(as_ints(x, acc.width + 1), node.padding, 0)
    cols = _windows(x, w.shape[2:], node.stride, node.dilation, out_shape[1:])
    g, cin_g, cout_g = node.groups, w.shape[1], w.shape[0] // node.groups
    axes = ([1, 2, 3], [1, 2, 3])
    exact_in_double = acc.width <= 52  # every partial sum is an integer below 2**53: BLAS in float64 is exact

    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if exact_in_double and a.dtype == np.int64:
            return np.tensordot(a.astype(np.float64), b.astype(np.float64), axes=axes).astype(np.int64)
        return np.tensordot(a, b, axes=axes)

    parts = [dot(cols[:, k * cin_g : (k + 1) * cin_g], w[k * cout_g : (k + 1) * cout_g]) for k in range(g)]
    # each (N, Ho, Wo, C_out / groups)
    out = _align(np.concatenate(parts, axis=-1).transpose(0, 3, 1, 2), fx + node.weight_fmt.frac_bits, acc)
    if node.bias is not None:
        out = out + _per_channel(_align(node.bias, node.bias_fmt.frac_bits, acc), 4)
    return out


def _affine(node: Affine, x: np.ndarray, fx: int) -> np.ndarray:
    acc = node.acc
    out, frac = as_ints(x, acc.width + 1), fx
    if node.scale is not None:
        out = out * _per_channel(as_ints(node.scale, acc.width + 1), x.ndim)
        frac += node.scale_fmt.frac_bits
    out = _align(out, frac, acc)
    if node.shift is not None:
        out = out + _per_channel(_align(node.shift, node.shift_fmt.frac_bits, acc), x.ndim)
    return out


def _pool(node: MaxPool2d | SumPool2d, x: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    acc = node.acc
    x = as_ints(x, acc.width + 1)
    if isinstance(node, MaxPool2d):
        low = -(1 << (acc.width + 1))  # below every code: padding never wins
        cols = _windows(_pad(x, node.padding, low), node.kernel, node.stride, (1, 1), out_shape[1:])
        return cols.max(axis=(2, 3))
    cols = _windows(_pad(x, node.padding, 0), node.kernel, node.stride, (1, 1), out_shape[1:])
    return cols.sum(axis=(2, 3))


def _maps(x: np.ndarray, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[np.ndarray, tuple]:
    """A feature map as (N, C, H, W) (a 1-D map (C, L) is (C, 1, L)), and the output's (C, H, W)."""
    return x.reshape((x.shape[0], *spatial(in_shape))), spatial(out_shape)


def _compute(node: Node, graph: Graph, env: dict[str, np.ndarray]) -> np.ndarray:
    """Exact result of ``node`` as codes of ``node.acc``."""
    args = [env[name] for name in node.inputs]
    fracs = [graph.tensors[name].fmt.frac_bits if graph.tensors[name].fmt else None for name in node.inputs]
    in_shape = graph.tensors[node.inputs[0]].shape
    out_shape = graph.tensors[node.output].shape
    batch = args[0].shape[0]
    if isinstance(node, Dense):
        return _dense(node, args[0].reshape(batch, -1), fracs[0])
    if isinstance(node, Conv2d):
        x, out = _maps(args[0], in_shape, out_shape)
        return _conv(node, x, fracs[0], out)
    if isinstance(node, Affine):
        return _affine(node, args[0], fracs[0])
    if isinstance(node, Add):
        second = _align(args[1], fracs[1], node.acc)
        return _align(args[0], fracs[0], node.acc) + (-second if node.subtract else second)
    if isinstance(node, Mul):  # the exact product: F_a + F_b fraction bits, aligned into acc
        wide = node.acc.width + 1
        a, g = as_ints(args[0], wide), as_ints(args[1], wide)
        if is_channel_gate(in_shape, graph.tensors[node.inputs[1]].shape):  # one value per channel
            g = g.reshape((batch, -1) + (1,) * (a.ndim - 2))
        return _align(a * g, fracs[0] + fracs[1], node.acc)
    if isinstance(node, Relu):
        out = np.maximum(_align(args[0], fracs[0], node.acc), 0)
        return out if node.max_code is None else np.minimum(out, node.max_code)
    if isinstance(node, Clip):
        out = _align(args[0], fracs[0], node.acc)
        out = out if node.min_code is None else np.maximum(out, node.min_code)
        return out if node.max_code is None else np.minimum(out, node.max_code)
    if isinstance(node, LeakyRelu):
        x = as_ints(args[0], node.acc.width + 1)
        negative = x * int(node.alpha)
        positive = x << node.alpha_fmt.frac_bits
        return _align(np.where(x >= 0, positive, negative), fracs[0] + node.alpha_fmt.frac_bits, node.acc)
    if isinstance(node, (MaxPool2d, SumPool2d)):
        x, out = _maps(args[0], in_shape, out_shape)
        return _pool(node, x, out)
    if isinstance(node, GlobalSum):
        x = as_ints(args[0], node.acc.width + 1)
        return x.reshape(batch, x.shape[1], -1).sum(axis=2)
    if isinstance(node, Pad):
        x, _ = _maps(args[0], in_shape, out_shape)
        return _align(_pad(x, node.padding, 0), fracs[0], node.acc)
    if isinstance(node, Upsample):
        x, _ = _maps(args[0], in_shape, out_shape)
        sh, sw = node.scale
        return _align(np.repeat(np.repeat(x, sh, axis=2), sw, axis=3), fracs[0], node.acc)
    if isinstance(node, Concat):
        parts = [_align(as_ints(a, node.acc.width + 1), f, node.acc) for a, f in zip(args, fracs, strict=True)]
        return np.concatenate(parts, axis=node.axis + 1)
    if isinstance(node, Lookup):
        return lookup_codes(node.table, args[0], graph.fmt(node.inputs[0]))
    if isinstance(node, Softmax):
        return softmax_codes(args[0], node.spec)
    if isinstance(node, ArgMax):
        return np.argmax(args[0], axis=-1).astype(np.int64)
    if isinstance(node, Reshape):
        return args[0]
    if isinstance(node, Threshold):
        return threshold_codes(args[0].reshape(batch, *in_shape) if in_shape else args[0], node.thresholds,
                               node.values)  # fmt: skip
    raise TypeError(f"node {node.name}: the interpreter has no rule for {type(node).__name__}")


def run(
    graph: Graph, x: np.ndarray | dict[str, np.ndarray], *, trace: bool = False
) -> np.ndarray | dict[str, np.ndarray]:
    """Output codes for the batch ``x`` (float values of the graph input, batch first).

    ``x`` may be a dict by input name; the result is a dict by output name when the graph has several outputs.
    With ``trace`` the result is a dict of every tensor's codes (to find the first layer where two links differ).
    """
    inputs = x if isinstance(x, dict) else {graph.inputs[0]: x}
    env: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        if name not in inputs:
            raise ValueError(f"missing input {name!r}")
        value = np.asarray(inputs[name])
        shape = graph.tensors[name].shape
        if value.shape[1:] != shape:
            raise ValueError(f"input {name!r} must have shape (batch, {', '.join(map(str, shape))}), not {value.shape}")
        env[name] = value
    for node in graph.nodes:
        out = graph.tensors[node.output]
        if isinstance(node, Cast):
            src = graph.tensors[node.inputs[0]].fmt
            arg = env[node.inputs[0]]
            codes = float_codes(arg, out.fmt) if src is None else requantize(arg, src.frac_bits, out.fmt)
        else:
            codes = _compute(node, graph, env)
            if out.fmt != node.acc:
                codes = requantize(codes, node.acc.frac_bits, out.fmt)
        env[node.output] = codes.reshape((codes.shape[0], *out.shape))
    if trace:
        return env
    outputs = {name: env[name] for name in graph.outputs}
    return outputs if isinstance(x, dict) or len(outputs) > 1 else outputs[graph.outputs[0]]
