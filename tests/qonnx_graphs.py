"""Small QONNX graphs built by hand with onnx.helper, run by qonnx's ``execute_onnx`` and by the IR, compared
as integer codes (for tests/test_ir_ops.py)."""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from qfx.export.ops import DOMAIN
from qfx.export.quant import quant_node_spec
from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir import from_qonnx
from qfx.ir.passes import fuse_casts

F32, F64 = TensorProto.FLOAT, TensorProto.DOUBLE
QDOMAIN = "qonnx.custom_op.general"

QUANTS = list(Quant)
OVERFLOWS = [Overflow.SAT, Overflow.SAT_SYM, Overflow.WRAP, Overflow.SAT_ZERO, Overflow.WRAP_SM]


@st.composite
def formats(draw, min_width: int = 2, max_width: int = 10, signed: bool | None = None, quant_only: bool = False):
    """A random fixed-point format; ``quant_only``: one a QONNX Quant node expresses (saturation, TRN/RND_CONV)."""
    width = draw(st.integers(min_width, max_width))
    int_bits = draw(st.integers(-2, width + 2))
    sign = draw(st.booleans()) if signed is None else signed
    if quant_only:
        q = draw(st.sampled_from([Quant.TRN, Quant.RND_CONV]))
        return FixedFormat(width, int_bits, sign, q, Overflow.SAT)
    overflow = draw(st.sampled_from(OVERFLOWS if sign else OVERFLOWS[:4]))
    sat = draw(st.integers(0, min(2, width))) if overflow.wraps and draw(st.booleans()) else 0
    return FixedFormat(width, int_bits, sign, draw(st.sampled_from(QUANTS)), overflow, sat)


def grid_values(rng: np.random.Generator, fmt: FixedFormat, shape: tuple[int, ...]) -> np.ndarray:
    """float32 inputs around ``fmt``'s range (some outside it), on a grid 2 bits finer: casts round and clip."""
    span = (fmt.max_code - fmt.min_code + 1) * 4
    lo = fmt.min_code * 4 - span // 4 - 2
    codes = rng.integers(lo, lo + span + span // 2 + 4, size=shape)
    return np.ldexp(codes.astype(np.float64), -fmt.frac_bits - 2).astype(np.float32)


def rand_codes(rng: np.random.Generator, fmt: FixedFormat, shape) -> np.ndarray:
    """Random codes of ``fmt``."""
    return rng.integers(fmt.min_code, fmt.max_code + 1, size=shape, dtype=np.int64)


def codes_of(values: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    """Integer codes of float outputs that must lie on ``fmt``'s grid (asserted: no rounding here)."""
    scaled = np.ldexp(np.asarray(values, dtype=np.float64), fmt.frac_bits)
    assert np.array_equal(scaled, np.round(scaled)), "qonnx output is off the format's grid"
    codes = scaled.astype(np.int64)
    assert codes.size == 0 or (codes.min() >= fmt.min_code and codes.max() <= fmt.max_code)
    return codes


class Net:
    """A QONNX graph under construction: nodes and initializers with generated names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.k = 0

    def name(self, base: str) -> str:
        self.k += 1
        return f"{base}{self.k}"

    def init(self, array, base: str = "c") -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def i64(self, values) -> str:
        return self.init(np.array(values, dtype=np.int64))

    def f32(self, values) -> str:
        return self.init(np.array(values, dtype=np.float32))

    def op(self, op: str, inputs: list[str], domain: str = "", outputs: int = 1, **attrs) -> str:
        out = self.name(op.lower())
        names = [out] + [f"{out}_{i}" for i in range(1, outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=out, domain=domain, **attrs))
        return out

    def cast(self, x: str, fmt: FixedFormat) -> str:
        """A Quant node where it expresses ``fmt`` exactly, else a qfx FixedCast."""
        spec = quant_node_spec(fmt)
        if spec is None:
            return self.op("FixedCast", [x], domain=DOMAIN, format=str(fmt))
        scale, zero = self.init(np.array(2.0**-fmt.frac_bits)), self.init(np.array(0.0))
        return self.op("Quant", [x, scale, zero, self.init(np.array(float(fmt.width)))], domain=QDOMAIN, **spec)

    def const(self, codes: np.ndarray, fmt: FixedFormat, double: bool = False) -> str:
        """Quantized constant: the values of ``codes`` behind a Quant in ``fmt`` (saturating, on its grid); with
        ``double``, float64 values and the Quant's float32 output cast to float64 (as the export writes them)."""
        plain = FixedFormat(fmt.width, fmt.int_bits, fmt.signed, Quant.RND_CONV, Overflow.SAT)
        values = np.ldexp(np.asarray(codes, dtype=np.float64), -fmt.frac_bits)
        out = self.cast(self.init(values if double else values.astype(np.float32)), plain)
        return self.double(out) if double else out

    def double(self, x: str) -> str:
        return self.op("Cast", [x], to=F64)

    def model(self, x_shape: tuple[int, ...], out: str, opset: int = 13, out_type: int = F32) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info("x", F32, list(x_shape))],
            [helper.make_tensor_value_info(out, out_type, None)],
            self.inits,
        )
        ops = [helper.make_opsetid("", opset), helper.make_opsetid(QDOMAIN, 1), helper.make_opsetid(DOMAIN, 1)]
        return helper.make_model(graph, opset_imports=ops)


def qonnx_outputs(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """qonnx's ``execute_onnx`` output. Float64 Convs (which onnxruntime cannot run) are lowered first with
    qonnx's LowerConvsToMatMul (Im2Col + MatMul, batch 1: run sample by sample) after folding the constants."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    def prepared(batch: int) -> ModelWrapper:
        proto = onnx.ModelProto.FromString(model.SerializeToString())
        proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = batch
        del proto.graph.value_info[:]
        return ModelWrapper(proto).transform(InferShapes())

    wrapper = prepared(x.shape[0])
    out_name = wrapper.graph.output[0].name
    convs = [n for n in wrapper.graph.node if n.op_type == "Conv"]
    if not any(wrapper.get_tensor_valueinfo(n.input[0]).type.tensor_type.elem_type == F64 for n in convs):
        return execute_onnx(wrapper, {"x": x})[out_name]
    lowered = prepared(1).transform(FoldConstants(exclude_op_types=[]))
    before = {v.name: v.type.tensor_type.elem_type for v in lowered.graph.value_info}
    lowered = lowered.transform(LowerConvsToMatMul())
    for info in lowered.graph.value_info:  # the lowering declares its new tensors float32: they are float64
        info.type.tensor_type.elem_type = before.get(info.name, F64)
    for n in lowered.graph.node:  # a depthwise weight comes back as float32: the MatMul needs both in float64
        w = lowered.get_initializer(n.input[1]) if n.op_type == "MatMul" else None
        if w is not None and w.dtype != np.float64:
            lowered.set_initializer(n.input[1], w.astype(np.float64))
    return np.concatenate([execute_onnx(lowered, {"x": x[i : i + 1]})[out_name] for i in range(x.shape[0])])


def compare(model: onnx.ModelProto, x: np.ndarray, out_fmt: FixedFormat, counts: list[int]) -> None:
    """qonnx's codes == the IR interpreter's == the IR's after fuse_casts; adds the codes compared to ``counts``."""
    expected = codes_of(qonnx_outputs(model, x), out_fmt)
    graph = from_qonnx(model)
    fmt = graph.fmt(graph.outputs[0])  # (an unsigned AP_SAT_SYM reads back as the equal AP_SAT)
    assert (fmt.width, fmt.int_bits, fmt.signed) == (out_fmt.width, out_fmt.int_bits, out_fmt.signed)
    got = np.asarray(graph.run(x.astype(np.float64)), dtype=np.int64)
    fused = np.asarray(fuse_casts(graph).run(x.astype(np.float64)), dtype=np.int64)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(fused, expected)
    counts.append(expected.size)
