"""QONNX -> IR: the float parts of Brevitas' exports, made exact.

* **Float chains before a quantizer** (a BatchNormalization, Sub, Div, Mul or Add by constants between integer
  codes and the next Quant / BipolarQuant) become one :class:`~qfx.ir.graph.Threshold` node. Its thresholds are
  not derived from a formula: the chain and its quantizer run through qonnx's own executor (the same onnxruntime
  float32 kernels ``execute_onnx`` uses) on every input code the producer can reach, per channel, and the
  thresholds are where the output code changes. They reproduce qonnx's float32 evaluation exactly, for any
  per-channel function (an increasing batch norm, a negative scale: decreasing values, anything else with at most
  :data:`MAX_STEPS` steps per channel; more is refused, naming the node and channel).
* **BipolarQuant** (``+-s``, ``s`` a power of two): codes +-1 of ``ap_fixed<2, 2 + log2 s>``; constants (weights)
  become those codes, a bipolar activation after integer codes is a Threshold at 0.
* **Pre-processing** (Reshape / Flatten, and Add / Sub / Mul / Div by constants between the graph input and the
  first quantizer) and a **float tail** after the last fixed-point tensor (TensorNorm: Sub, Div, Mul, Add) go to
  the host as :class:`~qfx.ir.host.HostStep` s; a bipolar first quantizer's sign too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import onnx

from qfx.format import FixedFormat, Overflow
from qfx.ir.graph import Cast, Conv2d, Dense, MaxPool2d, Pad, Reshape, Threshold
from qfx.ir.host import HostStep
from qfx.ir.qonnx_ops import IRError, fail

if TYPE_CHECKING:
    from qfx.ir.qonnx import _Builder

__all__ = ["FloatPlan", "bipolar_format", "hoist_input_transpose", "plan_float", "step_table"]

PRE_OPS = ("Reshape", "Flatten", "Transpose", "Mul", "Add", "Sub", "Div")
CHAIN_OPS = ("BatchNormalization", "Mul", "Add", "Sub", "Div")
POST_OPS = ("Mul", "Add", "Sub", "Div")
FLOAT_ONLY = ("BatchNormalization", "Sub", "Div")  # ops the exact IR has no node for: their chain is tabulated
MAX_STEPS = 64  # steps (threshold positions) of one channel's function
MAX_TABLE = 1 << 25  # input codes x channels tabulated in all
_BATCH = 1 << 22  # values per executor call


@dataclass
class FloatPlan:
    """Which ONNX nodes go to the host or into thresholds (found before the nodes are read)."""

    pre: list[HostStep] = field(default_factory=list)
    input: str | None = None  # the IR's input tensor when there is pre-processing
    bipolar_input: str | None = None  # the BipolarQuant whose sign the host takes
    post: list[HostStep] = field(default_factory=list)
    output: str | None = None  # the IR's output tensor when there is a float tail
    chains: dict[str, list[onnx.NodeProto]] = field(default_factory=dict)  # quantizer name -> float chain
    skip: set[str] = field(default_factory=set)  # names of nodes read by the host or by a chain


def bipolar_format(scale: float) -> FixedFormat:
    """The format of a BipolarQuant of ``scale`` (a power of two): codes +-1 of ``ap_fixed<2, 2 + log2 s>``."""
    mantissa, exponent = np.frexp(np.float64(scale))
    if mantissa != 0.5:
        raise ValueError(f"a bipolar scale {scale:g} is not a power of two")
    return FixedFormat(2, 2 + int(exponent) - 1, True)


def _const_input(model, node: onnx.NodeProto, data: str) -> tuple[np.ndarray, bool] | None:
    """The constant operand of a binary op whose other operand is ``data``: (values, constant-is-first)."""
    if len(node.input) != 2 or data not in node.input:
        return None
    other = node.input[1 - list(node.input).index(data)]
    value = model.get_initializer(other)
    return None if value is None else (np.asarray(value), list(node.input).index(data) == 1)


def _only_consumer(model, tensor: str) -> onnx.NodeProto | None:
    consumers = model.find_consumers(tensor) or []
    outputs = {o.name for o in model.graph.output}
    return consumers[0] if len(consumers) == 1 and tensor not in outputs else None


def _scan_pre(model, plan: FloatPlan) -> None:
    inputs = [i.name for i in model.graph.input if model.get_initializer(i.name) is None]
    if len(inputs) != 1:
        return
    t, steps = inputs[0], []
    while (node := _only_consumer(model, t)) is not None and node.op_type in PRE_OPS:
        if node.op_type in ("Reshape", "Flatten"):
            steps.append(HostStep("reshape", shape=tuple(int(d) for d in model.get_tensor_shape(node.output[0])[1:])))
        elif node.op_type == "Transpose":
            perm = [int(p) for p in onnx.helper.get_attribute_value(node.attribute[0])] if node.attribute else []
            if not perm or perm[0] != 0:
                break  # a transpose that moves the batch (or reverses every axis): left for the builder to refuse
            steps.append(HostStep("transpose", perm=tuple(p - 1 for p in perm[1:])))
        else:
            c = _const_input(model, node, t)
            if c is None:
                break
            steps.append(HostStep(node.op_type.lower(), c[0].astype(np.float32), const_first=c[1]))
        plan.skip.add(node.name)
        t = node.output[0]
    q = _only_consumer(model, t)
    bipolar = q is not None and q.op_type == "BipolarQuant"
    if not steps and not bipolar:
        return
    plan.pre, plan.input = steps, t
    if bipolar:
        scale = model.get_initializer(q.input[1])
        if scale is not None and np.size(scale) == 1:
            plan.pre.append(HostStep("sign"))
            if float(np.asarray(scale).item()) != 1.0:
                plan.pre.append(HostStep("mul", np.asarray(scale, dtype=np.float32).reshape(())))
            plan.bipolar_input = q.name


def _scan_post(model, plan: FloatPlan) -> None:
    if len(model.graph.output) != 1:
        return
    t, chain = model.graph.output[0].name, []
    while (node := model.find_producer(t)) is not None and node.op_type in POST_OPS:
        data = next((i for i in node.input if model.get_initializer(i) is None), None)
        c = None if data is None else _const_input(model, node, data)
        if c is None or (chain and _only_consumer(model, node.output[0]) is None):
            break
        chain.append((node, c))
        t = data
    if not any(n.op_type in ("Sub", "Div") for n, _ in chain):
        return
    for node, (value, const_first) in reversed(chain):
        plan.post.append(HostStep(node.op_type.lower(), value.astype(np.float32), const_first=const_first))
        plan.skip.add(node.name)
    plan.output = t


def _scan_chains(model, plan: FloatPlan) -> None:
    for q in model.graph.node:
        if q.op_type not in ("Quant", "BipolarQuant") or model.get_initializer(q.input[0]) is not None:
            continue
        chain, t = [], q.input[0]
        while (p := model.find_producer(t)) is not None and p.op_type in CHAIN_OPS and p.name not in plan.skip:
            if _only_consumer(model, t) is None:
                break
            if p.op_type == "BatchNormalization":
                if any(model.get_initializer(i) is None for i in p.input[1:5]):
                    break
                data = p.input[0]
            else:
                data = next((i for i in p.input if model.get_initializer(i) is None), None)
                if data is None or _const_input(model, p, data) is None:
                    break
            chain.insert(0, p)
            t = data
        if t == plan.input or (t in [i.name for i in model.graph.input]):
            continue  # pre-processing (host) or a quantizer of the raw input
        if any(n.op_type in FLOAT_ONLY for n in chain) or (q.op_type == "BipolarQuant"):
            plan.chains[q.name] = chain
            plan.skip.update(n.name for n in chain)


def hoist_input_transpose(model):
    """``input -> Quant/FixedCast -> reshapes and transposes`` (QFX's export of a model that permutes its input)
    becomes ``input -> the moves -> cast``: an element-wise, per-tensor cast commutes with moving values, and moves
    before the first quantizer are host steps. Other graphs are returned unchanged."""
    inputs = [i.name for i in model.graph.input if model.get_initializer(i.name) is None]
    if len(inputs) != 1:
        return model
    cast = _only_consumer(model, inputs[0])
    if cast is None or cast.op_type not in ("Quant", "FixedCast") or cast.input[0] != inputs[0]:
        return model
    if cast.op_type == "Quant" and any(np.size(model.get_initializer(t)) != 1 for t in cast.input[1:3]):
        return model  # a per-channel quantizer does not commute with a transpose
    moves: list[onnx.NodeProto] = []
    while (move := _only_consumer(model, (moves[-1] if moves else cast).output[0])) is not None and (
        move.op_type in ("Reshape", "Flatten", "Transpose")
    ):
        moves.append(move)
    while moves and moves[-1].op_type != "Transpose":
        moves.pop()  # reshapes after the last transpose stay after the cast
    if not moves:
        return model
    final, source, nodes = moves[-1].output[0], inputs[0], model.graph.node
    for move in moves:  # input -> the moves, in their order -> the cast -> what read the last move
        moved = model.make_new_valueinfo_name()
        move.input[0], move.output[0], source = source, moved, moved
        nodes.remove(move)
        nodes.insert(list(nodes).index(cast), move)
    cast.input[0], cast.output[0] = source, final
    from qonnx.transformation.infer_shapes import InferShapes

    return model.transform(InferShapes())


def plan_float(model) -> FloatPlan:
    """Find the pre-processing, the float tail and the float chains of a (cleaned) QONNX model."""
    plan = FloatPlan()
    _scan_pre(model, plan)
    _scan_post(model, plan)
    _scan_chains(model, plan)
    return plan


# ---------------------------------------------------------------------------------------------------- bounds
def code_bounds(b: _Builder, tensor: str) -> tuple[int, int]:
    """Smallest and largest code ``tensor`` can hold, from its producer (tight for Dense / Conv by constants)."""
    node = next((n for n in reversed(b.nodes) if n.output == tensor), None)
    fmt = b.tensors[tensor].fmt
    lo, hi = fmt.min_code, fmt.max_code
    if fmt.overflow == Overflow.SAT_SYM and fmt.signed:
        lo = -hi
    if node is None:
        return lo, hi
    if isinstance(node, Threshold):
        return int(node.values.min()), int(node.values.max())
    if isinstance(node, Cast) and tensor in b.bipolar:
        return -1, 1
    if isinstance(node, (Reshape, MaxPool2d)):
        return code_bounds(b, node.inputs[0])
    if isinstance(node, Pad):
        x_lo, x_hi = code_bounds(b, node.inputs[0])
        return min(x_lo, 0), max(x_hi, 0)
    if isinstance(node, (Dense, Conv2d)) and node.acc == fmt:
        x_lo, x_hi = code_bounds(b, node.inputs[0])
        if isinstance(node, Conv2d) and any(node.padding):  # padded positions read 0
            x_lo, x_hi = min(x_lo, 0), max(x_hi, 0)
        w = np.asarray(node.weight, dtype=np.int64).reshape(node.weight.shape[0], -1)
        if isinstance(node, Conv2d) and node.groups != 1:
            return lo, hi
        top = np.maximum(w * x_lo, w * x_hi).sum(axis=1)
        bottom = np.minimum(w * x_lo, w * x_hi).sum(axis=1)
        x_frac = b.tensors[node.inputs[0]].fmt.frac_bits
        shift = fmt.frac_bits - x_frac - node.weight_fmt.frac_bits
        top, bottom = top << shift, bottom << shift
        if node.bias is not None:
            bias = np.asarray(node.bias, dtype=np.int64) << (fmt.frac_bits - node.bias_fmt.frac_bits)
            top, bottom = top + bias, bottom + bias
        return max(lo, int(bottom.min())), min(hi, int(top.max()))
    return lo, hi


# ---------------------------------------------------------------------------------------------------- tables
def _run_chain(b: _Builder, chain: list[onnx.NodeProto], q: onnx.NodeProto, start: str, x: np.ndarray) -> np.ndarray:
    """The quantizer's float output for the chain's input ``x`` (batch of (C, 1, ...)), by qonnx's executor."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.basic import qonnx_make_model

    nodes = [onnx.NodeProto() for _ in [*chain, q]]
    for copy, node in zip(nodes, [*chain, q], strict=True):
        copy.CopyFrom(node)
    names = {i for n in nodes for i in n.input if i}
    inits = [onnx.numpy_helper.from_array(np.asarray(b.model.get_initializer(i)), i) for i in names
             if b.model.get_initializer(i) is not None]  # fmt: skip
    vi = lambda name, shape: onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)  # noqa: E731
    middle = [vi(n.output[0], list(x.shape)) for n in nodes[:-1]]  # elementwise: every shape is the input's
    graph = onnx.helper.make_graph(nodes, "chain", [vi(start, list(x.shape))], [vi(q.output[0], list(x.shape))], inits,
                                   value_info=middle)  # fmt: skip
    model = qonnx_make_model(graph, opset_imports=list(b.model.model.opset_import))
    return np.asarray(execute_onnx(ModelWrapper(model), {start: x})[q.output[0]])


def step_table(table: np.ndarray, lo: int, hi: int, node: str = "", max_steps: int = MAX_STEPS):
    """Thresholds (C, K) and values (C, K + 1) of per-channel step functions tabulated as ``table[r, c]`` =
    output code for input code ``lo + r`` (r = 0 .. hi - lo). Channels with fewer steps are padded with the
    threshold ``hi + 1`` (never reached) and their last value."""
    table = np.asarray(table, dtype=np.int64)
    changes = table[1:] != table[:-1]
    counts = changes.sum(axis=0)
    if counts.size and counts.max() > max_steps:
        c = int(np.argmax(counts))
        raise IRError(f"node {node}: channel {c} changes its output {int(counts[c])} times over the input codes "
                      f"{lo}..{hi} (more than {max_steps}): not a threshold function")  # fmt: skip
    k = max(1, int(counts.max()) if counts.size else 1)
    channels = table.shape[1]
    thresholds = np.full((channels, k), hi + 1, dtype=np.int64)
    values = np.repeat(table[-1][:, None], k + 1, axis=1)
    for c in range(channels):
        at = np.flatnonzero(changes[:, c]) + 1
        thresholds[c, : at.size] = lo + at
        values[c, 0] = table[0, c]
        values[c, 1 : at.size + 1] = table[at, c]
    return thresholds, values


def threshold(b: _Builder, q: onnx.NodeProto, chain: list[onnx.NodeProto], out_fmt: FixedFormat) -> None:
    """Emit the Threshold node that replaces ``chain`` + quantizer ``q`` (output codes of ``out_fmt``)."""
    start = chain[0].input[0] if chain else q.input[0]
    if chain and chain[0].op_type != "BatchNormalization":
        start = next(i for i in chain[0].input if b.model.get_initializer(i) is None)
    start = b.alias.get(start, start)
    x = b.act_named(q, start)
    x_fmt = b.fmt(x, q)
    shape = b.tensors[x].shape
    lo, hi = code_bounds(b, x)
    if max(abs(lo), abs(hi)) >= 1 << 24:
        raise fail(q, f"its input codes reach {max(abs(lo), abs(hi))}: beyond 2**24, not exact float32 values")
    channels = shape[0] if shape else 1
    if (hi - lo + 1) * channels > MAX_TABLE:
        raise fail(q, f"tabulating {hi - lo + 1} input codes x {channels} channels is too large (> {MAX_TABLE})")
    codes = np.arange(lo, hi + 1, dtype=np.int64)
    rows = max(1, _BATCH // max(channels, 1))
    parts = []
    for i in range(0, codes.size, rows):
        part = np.ldexp(codes[i : i + rows].astype(np.float32), -x_fmt.frac_bits).astype(np.float32)
        feed = np.broadcast_to(part.reshape((-1,) + (1,) * len(shape)), (part.size, channels) + (1,) * (len(shape) - 1))
        y = _run_chain(b, chain, q, start, np.ascontiguousarray(feed, dtype=np.float32))
        parts.append(y.reshape(part.size, channels))
    y = np.concatenate(parts).astype(np.float64)
    out = np.ldexp(y, out_fmt.frac_bits)
    if not np.all(out == np.round(out)) or out.min() < out_fmt.min_code or out.max() > out_fmt.max_code:
        raise fail(q, f"its outputs are not codes of {out_fmt}")
    thresholds, values = step_table(out.astype(np.int64), lo, hi, q.name)
    b.emit(Threshold, q, [x], out_fmt, thresholds=thresholds, values=values)
    if np.all(np.abs(values) == 1):
        b.bipolar.add(q.output[0])


# ---------------------------------------------------------------------------------------------------- readers
def bipolar_quant(b: _Builder, node: onnx.NodeProto) -> None:
    """BipolarQuant: constant codes +-1, the input's sign (taken by the host), or a threshold at 0."""
    from qfx.ir.qonnx import _Const as Const

    scale = np.asarray(b.const(node, 1, "scale").values, dtype=np.float64)
    if scale.size != 1:
        raise fail(node, f"a bipolar scale of shape {list(scale.shape)} is not supported (one number)")
    try:
        fmt = bipolar_format(float(scale.item()))
    except ValueError as e:
        raise fail(node, str(e)) from None
    src = b.alias.get(node.input[0], node.input[0])
    if src in b.consts:
        codes = np.where(np.asarray(b.consts[src].values) >= 0, 1, -1).astype(np.int64)
        b.consts[node.output[0]] = Const(codes * 2.0**-fmt.frac_bits, codes, fmt)
    elif node.name == b.plan.bipolar_input:
        b.emit(Cast, node, [b.act(node, 0)], None, out_fmt=fmt)
        b.bipolar.add(node.output[0])
    elif node.name in b.plan.chains:
        threshold(b, node, b.plan.chains[node.name], fmt)
    else:
        raise fail(node, "a bipolar quantizer of a float tensor other than the pre-processed input")


def transpose(b: _Builder, node: onnx.NodeProto, a: dict) -> None:
    """Transpose of a constant (Brevitas' weight layout): folded into it; of a tensor: only the identity."""
    from qfx.ir.qonnx import _Const as Const

    src = b.alias.get(node.input[0], node.input[0])
    if src in b.consts:
        c = b.consts[src]
        perm = a.get("perm", list(reversed(range(np.ndim(c.values)))))
        codes = None if c.codes is None else np.transpose(c.codes, perm)
        b.consts[node.output[0]] = Const(np.transpose(c.values, perm), codes, c.fmt)
        return
    x = b.act(node, 0)
    perm = list(a.get("perm", []))
    if perm and perm != list(range(len(perm))):
        raise fail(node, f"a transpose {perm} of a tensor inside the network moves every value (layouts are NCHW); "
                         "only the model's input (a host step) and constants may be transposed")
    b.emit(Reshape, node, [x], b.fmt(x, node))
