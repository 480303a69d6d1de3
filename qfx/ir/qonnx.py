"""QONNX file -> IR graph: ours, or any producer's (e.g. Brevitas' ``export_qonnx``) with power-of-two quantizers.

The file goes through qonnx's cleanup transformations first (shape inference, constant folding that keeps the
quantizers, unique parameter tensors). Then every node is mapped to an IR node, with the exact format of each
result derived from its operands' (ap_fixed result types); quantized constants become integer codes. Anything that
cannot be fixed point exactly gets one error naming the node and the reason.

What is read (:data:`SUPPORTED_OPS`; the readers of windows, activations, moves and tables are in
:mod:`qfx.ir.qonnx_ops`):

* Quant / FixedCast -> Cast (or integer codes of a constant); Identity, Dropout, Cast -> nothing (aliases);
* MatMul / Gemm on (N, F) -> Dense; Conv on (N, C, L) or (N, C, H, W), float32 or float64 operands, explicit or
  auto pads (asymmetric allowed) -> Conv2d (a 1-D conv is the H = 1 case), or SumPool2d when depthwise by ones;
* Mul / Add by a constant that broadcasts per channel (shape (C,), (C, 1), (C, 1, 1), (1, C, ...) or a scalar)
  -> Affine (an Add folds into the producer's bias when nothing else reads it); Add of two tensors -> Add; Mul of
  two tensors of one shape, or of a feature map and a per-channel gate -> Mul;
* MaxPool / AveragePool (power-of-two area) 1-D or 2-D -> MaxPool2d / SumPool2d + Affine(2**-k);
  GlobalAveragePool / ReduceMean / ReduceSum over every spatial axis -> GlobalSum (+ Affine);
* Relu, Clip(0, max) -> Relu; other Clip -> Clip; LeakyRelu -> LeakyRelu (exact slope); Pad (constant 0) -> Pad;
  Resize / Upsample nearest by integer factors -> Upsample; Concat -> Concat; Flatten / Reshape -> Reshape;
* qfx-domain FixedTable -> Lookup, FixedSoftmax -> Softmax; ArgMax over the last axis -> ArgMax;
* Brevitas' float parts (:mod:`qfx.ir.qonnx_float`): BatchNormalization / Sub / Div / Mul / Add between integer
  codes and the next Quant or BipolarQuant -> Threshold (exact, tabulated through qonnx's executor); BipolarQuant
  -> codes +-1 (constants, the input's sign on the host, or a Threshold); Transpose of a constant -> folded;
  float pre-processing before the first quantizer and a float tail after the last layer -> host steps.

Node domains are checked first: qonnx imports a custom op's domain as a Python module, so only the standard,
qonnx and qfx domains are accepted.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import onnx

from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir import qonnx_float as flt
from qfx.ir import qonnx_ops as ops
from qfx.ir.constants import fitted_format, khot_tables, per_channel_codes, sanitize
from qfx.ir.graph import (
    Add,
    Affine,
    Cast,
    Conv2d,
    Dense,
    Graph,
    Mul,
    Node,
    Relu,
    Reshape,
    SumPool2d,
    Tensor,
    is_channel_gate,
)
from qfx.ir.intcast import float_codes
from qfx.ir.qonnx_ops import IRError, attrs, fail
from qfx.ir.qonnx_ops import quoted as _q
from qfx.result_types import accumulator_format, add_format, product_format, sub_format

__all__ = ["IRError", "from_qonnx"]

_ROUNDING = {
    "ROUND": Quant.RND_CONV, "HALF_EVEN": Quant.RND_CONV, "FLOOR": Quant.TRN, "DOWN": Quant.TRN_ZERO,
    "HALF_UP": Quant.RND_INF, "HALF_DOWN": Quant.RND_ZERO,
}  # fmt: skip
_ALIASES = {"Identity", "Dropout", "Cast"}
#: Every ONNX op type the IR reads (what the "not supported" error lists).
SUPPORTED_OPS = (
    "Add", "ArgMax", "AveragePool", "BatchNormalization", "BipolarQuant", "Cast", "Clip", "Concat", "Conv", "Div",
    "Dropout", "FixedCast", "FixedSoftmax", "FixedTable", "Flatten", "Gemm", "GlobalAveragePool", "Identity",
    "LeakyRelu", "MatMul", "MaxPool", "Mul", "Pad", "Quant", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Resize",
    "Sub", "Transpose", "Upsample",
)  # fmt: skip


class _Const:
    """A constant: float values, and codes + format once a quantizer (or exactness) gave it one."""

    def __init__(self, values: np.ndarray, codes: np.ndarray | None = None, fmt: FixedFormat | None = None):
        self.values, self.codes, self.fmt = values, codes, fmt

    def quantized(self) -> tuple[np.ndarray, FixedFormat]:
        if self.fmt is None:  # an unquantized float constant: take the format that holds it exactly
            self.fmt = fitted_format(self.values)
            self.codes = np.asarray(float_codes(self.values, self.fmt))
        return self.codes, self.fmt


def _power_of_two_exponent(node: str, scale: np.ndarray) -> np.ndarray:
    mantissa, exponent = np.frexp(scale)
    if not (np.all(mantissa == 0.5) and np.all(scale > 0)):
        bad = scale.ravel()[np.argmax((mantissa.ravel() != 0.5) | (scale.ravel() <= 0))]
        raise IRError(f"node {_q(node)}: scale {bad:g} is not a power of two")
    return exponent.astype(np.int64) - 1  # scale = 2**that


def _quant_formats(node: onnx.NodeProto, consts: dict[str, _Const]) -> tuple[list[FixedFormat], int | None]:
    """The format(s) a QONNX Quant node casts into: one, or one per channel with the channel axis."""
    name = node.name
    for i, what in ((1, "scale"), (2, "zero point"), (3, "bit width")):
        if node.input[i] not in consts:
            raise IRError(f"node {_q(name)}: the {what} must be a constant")
    scale = np.asarray(consts[node.input[1]].values, dtype=np.float64)
    zero = np.asarray(consts[node.input[2]].values)
    bits = np.asarray(consts[node.input[3]].values)
    if np.any(zero != 0):
        raise IRError(f"node {_q(name)}: zero point {zero.ravel()[np.argmax(zero.ravel() != 0)]:g} is not 0")
    if bits.size != 1:
        raise IRError(f"node {_q(name)}: bit width must be one number, not an array of shape {bits.shape}")
    if not (np.isfinite(bits.item()) and bits.item() == int(bits.item()) and bits.item() >= 1):
        raise IRError(f"node {_q(name)}: bit width must be an integer >= 1, not {bits.item():g}")
    width = int(bits.item())
    a = attrs(node)
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    mode = a.get("rounding_mode", "ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode.upper() not in _ROUNDING:
        raise IRError(f"node {_q(name)}: rounding mode {mode} has no ap_fixed equivalent")
    if signed and width == 1:
        raise IRError(f"node {_q(name)}: a signed 1-bit Quant is bipolar (+-1), which no ap_fixed type is")
    if narrow and not signed:
        raise IRError(f"node {_q(name)}: an unsigned narrow-range Quant (max 2**W - 2) is not an ap_fixed type")
    overflow = Overflow.SAT_SYM if narrow else Overflow.SAT
    exps = _power_of_two_exponent(name, scale)
    fmts = [FixedFormat(width, width + int(e), signed, _ROUNDING[mode.upper()], overflow) for e in exps.ravel()]
    if len(fmts) == 1:
        return fmts, None
    axes = [i for i, n in enumerate(scale.shape) if n > 1]
    if len(axes) != 1:
        raise IRError(f"node {_q(name)}: scale of shape {scale.shape} is neither per tensor nor per channel")
    return fmts, axes[0] - scale.ndim  # negative: counted from the last axis of the data


class _Builder:
    def __init__(self, model) -> None:
        self.model = model
        self.consts: dict[str, _Const] = {
            t.name: _Const(onnx.numpy_helper.to_array(t)) for t in model.graph.initializer
        }
        self.alias: dict[str, str] = {}
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.names: set[str] = set()
        self.bipolar: set[str] = set()  # tensors whose codes are all +-1 (BipolarQuant, bipolar thresholds)
        self.plan = flt.FloatPlan()
        props = {p.key: p.value for p in model.model.metadata_props}
        self.khot: dict[str, int] = json.loads(props.get("qfx.khot", "{}"))

    # ------------------------------------------------------------------------------------------------ helpers
    def shape(self, name: str) -> tuple[int, ...]:
        shape = self.model.get_tensor_shape(name)
        if shape is None:
            raise IRError(f"tensor {name}: no shape (run shape inference)")
        return tuple(int(d) for d in shape[1:])

    def act(self, node: onnx.NodeProto, i: int) -> str:
        """Name of the IR tensor behind input ``i`` of ``node`` (which must not be a constant)."""
        name = self.alias.get(node.input[i], node.input[i])
        if name in self.consts:
            raise IRError(f"node {_q(node.name)}: input {i} is a constant where a tensor is expected")
        if name not in self.tensors:
            raise IRError(f"node {_q(node.name)}: input {node.input[i]} is not produced by any supported node")
        return name

    def act_named(self, node: onnx.NodeProto, name: str) -> str:
        """The IR tensor ``name`` (an input of ``node`` or of the float chain before it)."""
        name = self.alias.get(name, name)
        if name not in self.tensors:
            raise IRError(f"node {_q(node.name)}: input {name} is not produced by any supported node")
        return name

    def const(self, node: onnx.NodeProto, i: int, what: str) -> _Const:
        name = self.alias.get(node.input[i], node.input[i])
        if name not in self.consts:
            raise IRError(f"node {_q(node.name)}: the {what} must be a constant")
        return self.consts[name]

    def fmt(self, tensor: str, node: onnx.NodeProto) -> FixedFormat:
        fmt = self.tensors[tensor].fmt
        if fmt is None:
            raise IRError(f"node {_q(node.name)}: its input {tensor} is a float tensor; quantize it first (Quant node)")
        return fmt

    def emit(self, cls, node: onnx.NodeProto, inputs: list[str], acc: FixedFormat | None, out_fmt=None, **kw):
        out = node.output[0]
        self.tensors[out] = Tensor(out, self.shape(out), out_fmt if out_fmt is not None else acc)
        ir = cls(sanitize(node.name or f"{node.op_type}_{len(self.nodes)}", self.names), inputs, out, acc, **kw)
        k = self.khot.get(node.name)
        if k is not None:
            constant = ir.scale if isinstance(ir, Affine) else ir.weight
            try:
                khot_tables(constant, k)
            except ValueError as e:
                raise IRError(f"node {_q(node.name)}: marked K-hot with K = {k}, but {e}") from None
            ir.khot = k
        self.nodes.append(ir)
        return ir

    def sole_consumer(self, tensor: str) -> bool:
        """Whether exactly one node reads ``tensor`` (through any Identity/Cast aliases) and it is no graph output:
        only then may that node's constant be folded into ``tensor``'s producer."""
        outputs = {o.name for o in self.model.graph.output}
        readers, todo = 0, [tensor]
        while todo:
            name = todo.pop()
            if name in outputs:
                return False
            for c in self.model.find_consumers(name):
                if c.op_type in _ALIASES:
                    todo.append(c.output[0])
                else:
                    readers += 1
        return readers == 1

    # ------------------------------------------------------------------------------------------------ ops
    def quant(self, node: onnx.NodeProto, fmts: list[FixedFormat], axis: int | None) -> None:
        src = self.alias.get(node.input[0], node.input[0])
        if src in self.consts:
            c = self.consts[src]
            if axis is None:
                codes, fmt = np.asarray(float_codes(c.values, fmts[0])), fmts[0]
            else:
                codes, fmt = per_channel_codes(c.values, fmts, axis % np.ndim(c.values))
            self.consts[node.output[0]] = _Const(codes * 2.0**-fmt.frac_bits, codes, fmt)
            return
        if axis is not None:
            raise IRError(f"node {_q(node.name)}: per-channel quantization of an activation has no single format")
        self.emit(Cast, node, [self.act(node, 0)], None, out_fmt=fmts[0])
        self.nodes[-1].acc = self.tensors[self.nodes[-1].inputs[0]].fmt

    def dense(self, node: onnx.NodeProto, weight: _Const, transposed: bool, bias: _Const | None) -> None:
        x = self.act(node, 0)
        if len(self.tensors[x].shape) != 1:
            raise fail(node, f"multiplies a tensor of shape {list(self.tensors[x].shape)}; flatten it to (N, F) first")
        w, w_fmt = weight.quantized()
        w = w if transposed else w.T  # IR weights are (out, in)
        b, b_fmt = bias.quantized() if bias is not None else (None, None)
        acc = accumulator_format(self.fmt(x, node), w_fmt, w.shape[1], b_fmt)
        b = None if b is None else b.reshape(-1)
        bipolar = x in self.bipolar and bool(np.all(np.abs(w) == 1))
        self.emit(Dense, node, [x], acc, weight=w, weight_fmt=w_fmt, bias=b, bias_fmt=b_fmt, bipolar=bipolar)

    def conv(self, node: onnx.NodeProto) -> None:
        """1-D or 2-D Conv (float32 or float64 operands); a depthwise Conv by ones is a window sum."""
        a, x = attrs(node), self.act(node, 0)
        w, w_fmt = self.const(node, 1, "weight").quantized()
        shape = self.tensors[x].shape
        kernel, stride, padding, dilation = ops.window(node, a, tuple(np.shape(w)[2:]), shape)
        w = np.asarray(w).reshape(w.shape[:2] + kernel)  # (C_out, C_in / groups, 1, K) for a 1-D kernel
        groups, x_fmt, channels = int(a.get("group", 1)), self.fmt(x, node), shape[0]
        if channels % groups or w.shape[0] % groups or w.shape[1] * groups != channels:
            raise fail(node, f"weight shape {list(w.shape)} with {groups} groups does not fit {channels} channels")
        if (
            groups == channels == w.shape[0]
            and w.shape[1] == 1
            and np.all(w == 1)
            and dilation == (1, 1)
            and (w_fmt.frac_bits == 0 and not ops.has_input(node, 2))
        ):  # a depthwise convolution by ones is a window sum
            acc = ops.sum_format(x_fmt, math.prod(kernel))
            self.emit(SumPool2d, node, [x], acc, kernel=kernel, stride=stride, padding=padding)
            return
        b, b_fmt = self.const(node, 2, "bias").quantized() if ops.has_input(node, 2) else (None, None)
        acc = accumulator_format(x_fmt, w_fmt, w.shape[1] * kernel[0] * kernel[1], b_fmt)
        self.emit(
            Conv2d, node, [x], acc, weight=w, weight_fmt=w_fmt, bias=None if b is None else b.reshape(-1),
            bias_fmt=b_fmt, stride=stride, padding=padding, dilation=dilation, groups=groups,
            bipolar=x in self.bipolar and bool(np.all(np.abs(w) == 1)) and not any(padding),
        )  # fmt: skip

    def channel_codes(self, node: onnx.NodeProto, c: _Const, shape: tuple[int, ...]) -> tuple[np.ndarray, FixedFormat]:
        """Codes of a constant that broadcasts per channel (axis 1 of (N, C, ...), or a scalar) over a tensor of
        ``shape`` (without batch): one code per channel."""
        codes, fmt = c.quantized()
        dims = tuple(np.shape(c.values))
        full = (1,) * (len(shape) + 1 - len(dims)) + dims
        per_channel = (
            len(shape) >= 1
            and len(full) == len(shape) + 1
            and full[0] == 1
            and full[1] in (1, shape[0])
            and all(d == 1 for d in full[2:])
        )
        if not per_channel:
            where = ", ".join(map(str, ("N", *shape)))
            raise fail(node, f"a constant of shape {list(dims)} is not per channel on a tensor of shape [{where}]")
        codes = np.asarray(codes).reshape(-1)
        return (np.repeat(codes, shape[0]) if codes.size == 1 else codes), fmt

    def add_const(self, node: onnx.NodeProto, x: str, c: _Const) -> None:
        """``x + constant``: folded into the producer's bias/shift when it has none, else a shift-only affine."""
        prev = self.nodes[-1] if self.nodes and self.nodes[-1].output == x else None
        codes, fmt = self.channel_codes(node, c, self.tensors[x].shape)
        if isinstance(prev, (Dense, Conv2d)) and prev.bias is None and self.sole_consumer(x):
            prev.bias, prev.bias_fmt, prev.acc = codes, fmt, add_format(prev.acc, fmt)
        elif isinstance(prev, Affine) and prev.shift is None and self.sole_consumer(x):
            prev.shift, prev.shift_fmt, prev.acc = codes, fmt, add_format(prev.acc, fmt)
        else:
            self.emit(Affine, node, [x], add_format(self.fmt(x, node), fmt), shift=codes, shift_fmt=fmt)
            return
        del self.tensors[x]
        prev.output = node.output[0]
        self.tensors[prev.output] = Tensor(prev.output, self.shape(prev.output), prev.acc)

    def scale(self, node: onnx.NodeProto, x: str, c: _Const) -> None:
        codes, fmt = self.channel_codes(node, c, self.tensors[x].shape)
        self.emit(Affine, node, [x], product_format(self.fmt(x, node), fmt), scale=codes, scale_fmt=fmt)

    def summed(self, node: onnx.NodeProto, cls, x: str, area: int, **kw) -> str:
        """Emit a window/global sum of ``x`` under a private name; returns it (the caller divides)."""
        x_fmt = self.fmt(x, node)
        acc = ops.sum_format(x_fmt, area)
        out = node.output[0] + "_sum"
        taken = {n for nd in self.model.graph.node for n in nd.output} | set(self.tensors)
        while out in taken:  # a private name no tensor of the file has
            out += "_"
        shape = self.shape(node.output[0])
        self.tensors[out] = Tensor(out, shape, acc)
        self.nodes.append(cls(sanitize(node.name + "_sum", self.names), [x], out, acc, **kw))
        return out

    # ------------------------------------------------------------------------------------------------ dispatch
    def visit(self, node: onnx.NodeProto) -> None:
        op, a = node.op_type, attrs(node)
        if node.name in self.plan.skip:
            return
        if op in _ALIASES:
            self.alias[node.output[0]] = self.alias.get(node.input[0], node.input[0])
            if self.alias[node.output[0]] in self.consts:
                self.consts[node.output[0]] = self.consts[self.alias[node.output[0]]]
        elif op == "Quant" and node.name in self.plan.chains:
            fmts, axis = _quant_formats(node, self.consts)
            if axis is not None:
                raise fail(node, "a per-channel activation quantizer after a float chain has no single format")
            flt.threshold(self, node, self.plan.chains[node.name], fmts[0])
        elif op == "Quant":
            self.quant(node, *_quant_formats(node, self.consts))
        elif op == "BipolarQuant":
            flt.bipolar_quant(self, node)
        elif op == "Transpose":
            flt.transpose(self, node, a)
        elif op == "FixedCast":
            self.quant(node, [FixedFormat.parse(a["format"])], None)
        elif op == "MatMul":
            self.dense(node, self.const(node, 1, "weight"), transposed=False, bias=None)
        elif op == "Gemm":
            if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                raise IRError(f"node {_q(node.name)}: Gemm with transA, alpha or beta != 1 is not supported")
            bias = self.const(node, 2, "bias") if len(node.input) > 2 and node.input[2] else None
            self.dense(node, self.const(node, 1, "weight"), transposed=bool(a.get("transB", 0)), bias=bias)
        elif op == "Conv":
            self.conv(node)
        elif op in ("Add", "Mul") or (op == "Sub" and not any(self.alias.get(i, i) in self.consts for i in node.input)):
            self.arith(node)
        elif op == "Relu":
            x = self.act(node, 0)
            self.emit(Relu, node, [x], self.fmt(x, node))
        elif op in ("Flatten", "Reshape"):
            x = self.act(node, 0)
            self.emit(Reshape, node, [x], self.fmt(x, node))
        elif op in _READERS:
            _READERS[op](self, node)
        elif op in flt.FLOAT_ONLY:
            raise fail(
                node,
                "a float op is read only between integer codes and the next quantizer (it becomes "
                "thresholds), before the first quantizer or after the last quantized layer (host steps)",
            )
        else:
            raise IRError(
                f"node {_q(node.name)}: op {op} is not supported by the QFX IR (supported: {', '.join(SUPPORTED_OPS)})"
            )

    def arith(self, node: onnx.NodeProto) -> None:
        """Add, Sub or Mul of two tensors of one shape; Add or Mul of a tensor and a per-channel constant."""
        op, ins = node.op_type, [self.alias.get(i, i) for i in node.input]
        const = [i for i in ins if i in self.consts]
        if len(const) == 2:
            raise fail(node, f"{op} of two constants should have been folded")
        if const:
            x = self.act(node, 1 - ins.index(const[0]))
            (self.add_const if op == "Add" else self.scale)(node, x, self.consts[const[0]])
            return
        x, y = self.act(node, 0), self.act(node, 1)
        if op == "Mul" and is_channel_gate(self.tensors[y].shape, self.tensors[x].shape):
            x, y = y, x  # the feature map first, its per-channel gate second
        if op == "Mul" and is_channel_gate(self.tensors[x].shape, self.tensors[y].shape):
            self.emit(Mul, node, [x, y], product_format(self.fmt(x, node), self.fmt(y, node)))
            return
        if self.tensors[x].shape != self.tensors[y].shape:
            shapes = f"{list(self.tensors[x].shape)} and {list(self.tensors[y].shape)}"
            if op == "Mul":
                raise fail(node, f"multiplies tensors of shapes {shapes}; only equal shapes, or a feature map and "
                           "one value per channel, are supported")  # fmt: skip
            raise fail(node, f"adds tensors of shapes {shapes}; only equal shapes are supported (no broadcasting)")
        if op == "Mul":
            self.emit(Mul, node, [x, y], product_format(self.fmt(x, node), self.fmt(y, node)))
            return
        if op == "Sub":
            self.emit(Add, node, [x, y], sub_format(self.fmt(x, node), self.fmt(y, node)), subtract=True)
        else:
            self.emit(Add, node, [x, y], add_format(self.fmt(x, node), self.fmt(y, node)))


_READERS = {
    "ArgMax": ops.argmax, "AveragePool": ops.average_pool, "Clip": ops.clip, "Concat": ops.concat,
    "FixedSoftmax": ops.fixed_softmax, "FixedTable": ops.fixed_table, "GlobalAveragePool": ops.global_sum,
    "LeakyRelu": ops.leaky_relu, "MaxPool": ops.max_pool, "Pad": ops.pad, "ReduceMean": ops.global_sum,
    "ReduceSum": ops.global_sum, "Resize": ops.resize, "Upsample": ops.resize,
}  # fmt: skip


def _clean(model):
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (
        GiveUniqueParameterTensors,
        RemoveStaticGraphInputs,
        RemoveUnusedTensors,
        SortGraph,
    )
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    for q in model.get_nodes_by_op_type("Quant"):
        q.domain = "qonnx.custom_op.general"  # Brevitas' older exports name it onnx.brevitas
    keep = ["Quant", "BipolarQuant", "FixedCast", "QuantizeLinear", "DequantizeLinear"]
    for t in (InferShapes(), GiveUniqueParameterTensors(), FoldConstants(exclude_op_types=keep),
              FoldTransposeIntoQuantInit(), RemoveUnusedTensors(), RemoveStaticGraphInputs(), SortGraph(),
              InferShapes()):  # fmt: skip
        model = model.transform(t)
    return model


#: The fixed-point type attributes of the qfx-domain ops.
_FORMAT_ATTRS = {
    "FixedCast": ("format",),
    "FixedTable": ("in_format", "out_format"),
    "FixedSoftmax": ("in_format", "exp_format", "index_format", "recip_format"),
}


def _check_structure(graph: onnx.GraphProto) -> None:
    """What qonnx's cleanup would trip over with an obscure error: no nodes, no inputs or outputs, qfx-domain ops
    without a valid format. (Domains are checked before, by :func:`qfx.safety.check_domains`.)"""
    if not graph.node:
        raise IRError("not an ONNX model with a graph: it has no nodes")
    consts = {t.name for t in graph.initializer}
    if not [i for i in graph.input if i.name not in consts]:
        raise IRError("the graph has no input (every graph input is a constant)")
    if not graph.output:
        raise IRError("the graph has no output")
    for node in graph.node:
        for attr in _FORMAT_ATTRS.get(node.op_type, ()):
            fmt = attrs(node).get(attr)
            if fmt is None:
                raise IRError(f"node {_q(node.name)}: {node.op_type} has no {attr} attribute")
            try:
                FixedFormat.parse(fmt)
            except ValueError as e:
                raise IRError(f"node {_q(node.name)}: {node.op_type} {attr}: {e}") from None


def _name_nodes(graph: onnx.GraphProto) -> None:
    """Give unnamed nodes a name (``<op>_<index>``), so that every message can name its node."""
    taken = {n.name for n in graph.node}
    for i, node in enumerate(graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
            while node.name in taken:
                node.name += "_"
            taken.add(node.name)


def from_qonnx(source: str | os.PathLike | onnx.ModelProto, *, name: str | None = None) -> Graph:
    """Build the IR graph of a QONNX model (a path or a loaded ``ModelProto``); see the module docstring.

    Raises :class:`IRError` naming the file (when given a path), the node and what is wrong.
    """
    where = ""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder, not a QONNX file")
        if not path.is_file():
            raise FileNotFoundError(f"no QONNX file at {path}")
        if path.stat().st_size == 0:
            raise IRError(f"{path}: the file is empty, not an ONNX model")
        try:
            proto = onnx.load(str(path))
        except Exception as e:  # protobuf's DecodeError and friends
            raise IRError(f"{path}: not a readable ONNX file ({type(e).__name__}: {e})") from None
        name, where = name or path.stem, f"{path}: "
    elif isinstance(source, onnx.ModelProto):
        proto = source
    else:
        raise TypeError(f"from_qonnx takes a path or an onnx.ModelProto, not {type(source).__name__}")
    try:
        return _graph(proto, name)
    except IRError as e:
        raise IRError(f"{where}{e}") from None


def _graph(proto: onnx.ModelProto, name: str | None) -> Graph:
    from qonnx.core.modelwrapper import ModelWrapper

    from qfx.safety import check_domains

    check_domains(proto, IRError)  # before qonnx imports the module a domain names
    _check_structure(proto.graph)
    try:
        model = flt.hoist_input_transpose(_clean(ModelWrapper(proto)))
    except Exception as e:  # qonnx's shape inference and folding on a graph they cannot process
        raise IRError(f"qonnx cannot process the graph ({type(e).__name__}: {str(e).strip()})") from None
    _name_nodes(model.graph)
    b = _Builder(model)
    b.plan = flt.plan_float(model)
    inputs = [i.name for i in model.graph.input if i.name not in b.consts]
    if b.plan.input is not None:
        inputs = [b.plan.input]  # the host pre-processes the raw input into this tensor
    for i in inputs:
        b.tensors[i] = Tensor(i, b.shape(i), None)
    for node in model.graph.node:
        try:
            b.visit(node)
        except IRError:
            raise
        except ValueError as e:  # a format no ap_fixed type has (FixedFormat's checks), a malformed constant
            raise IRError(f"node {_q(node.name)} ({node.op_type}): {e}") from None
    outputs = [b.alias.get(o.name, o.name) for o in model.graph.output]
    if b.plan.output is not None:
        outputs = [b.alias.get(b.plan.output, b.plan.output)]  # the host runs the float tail after it
    for o in outputs:
        if o not in b.tensors or b.tensors[o].fmt is None:
            raise IRError(f"graph output {_q(o)} is not a fixed-point tensor (end the model with a quantizer)")
    return Graph(b.tensors, b.nodes, inputs, outputs, name=sanitize(name or "qfx_model", set()),
                 host_pre=b.plan.pre, host_post=b.plan.post)  # fmt: skip
