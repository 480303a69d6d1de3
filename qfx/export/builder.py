"""The ONNX graph builder of the QONNX export: nodes, initializers, element types, casts into fixed-point formats.

Tensors are float64 so that onnxruntime's sums and products are exact up to 53 bits; a Quant node's output is
float32 (qonnx); ``cast`` emits QONNX ``Quant`` where that expresses the format exactly, else a qfx-domain
``FixedCast``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

from qfx.export.ops import DOMAIN, fits_float32
from qfx.export.quant import constant_format, quant_node_spec
from qfx.format import FixedFormat
from qfx.nn import FixedQuantizer
from qfx.result_types import union_format

__all__ = ["F32", "F64", "MAX_FLOAT32_BITS", "MAX_FLOAT64_BITS", "Builder", "ExportError", "sum_type", "weight_format"]

F64, F32 = TensorProto.DOUBLE, TensorProto.FLOAT
MAX_FLOAT32_BITS, MAX_FLOAT64_BITS = 24, 53


class ExportError(ValueError):
    """The model cannot be exported exactly; the message names the node and why."""


@dataclass
class Builder:
    """Accumulates ONNX nodes and initializers; ``cast`` emits Quant or FixedCast."""

    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    names: set = field(default_factory=set)
    dtypes: dict = field(default_factory=dict)  # tensor name -> ONNX element type
    widened: dict = field(default_factory=dict)  # float32 tensor -> its float64 copy
    label: str = ""  # the module being exported, as named in the model (for error messages)
    input_formats: list = field(default_factory=list)  # the formats of that module's tensor inputs
    khot: dict = field(default_factory=dict)  # ONNX node multiplying by K-hot constants -> K

    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def node(self, op: str, inputs: list[str], name: str, domain: str = "", **attrs) -> str:
        out = self.unique(name)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        if op == "Cast":
            self.dtypes[out] = attrs["to"]
        elif op == "Quant":
            self.dtypes[out] = F32  # qonnx's Quant always returns float32
        elif op == "FixedCast":
            self.dtypes[out] = F32 if fits_float32(FixedFormat.parse(attrs["format"])) else F64
        else:  # Conv keeps float32, arithmetic float64 (see arith), moves keep their input's type
            self.dtypes[out] = self.dtypes.get(inputs[0], F64)
        return out

    def arith(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        """An arithmetic node computed in float64: exact for sums and products of up to 53 bits."""
        return self.node(op, [self.as_float64(x) for x in inputs], name, **attrs)

    def as_float64(self, x: str) -> str:
        if self.dtypes.get(x, F64) == F64:
            return x
        if x not in self.widened:
            self.widened[x] = self.node("Cast", [x], f"{x}_f64", to=F64)
        return self.widened[x]

    def as_float32(self, x: str) -> str:
        return x if self.dtypes.get(x) == F32 else self.node("Cast", [x], f"{x}_f32", to=F32)

    def init(self, name: str, array: np.ndarray) -> str:
        name = self.unique(name)
        tensor = numpy_helper.from_array(np.asarray(array), name)
        self.inits.append(tensor)
        self.dtypes[name] = tensor.data_type
        return name

    def cast(self, x: str, fmt: FixedFormat, name: str) -> str:
        spec = quant_node_spec(fmt)
        if spec is None:
            return self.node("FixedCast", [x], name, domain=DOMAIN, format=str(fmt))
        scale = self.init(f"{name}_scale", np.array(2.0**-fmt.frac_bits))
        zero = self.init(f"{name}_zeropt", np.array(0.0))
        bits = self.init(f"{name}_bitwidth", np.array(float(fmt.width)))
        return self.node("Quant", [x, scale, zero, bits], name, domain="qonnx.custom_op.general", **spec)

    def constant(self, name: str, values: torch.Tensor, fmt: FixedFormat, dtype=np.float64) -> str:
        """Quantized constant values behind a Quant in ``fmt`` (a no-op on them: they are already in it)."""
        fmt = constant_format(values.detach().to(torch.float64).numpy(), fmt, name)
        init = self.init(f"{name}_value", values.detach().to(torch.float64).numpy().astype(dtype))
        return self.cast(init, fmt, f"{name}_quant")


def weight_format(q: FixedQuantizer) -> FixedFormat:
    """One format for a (possibly per-channel) constant quantizer: the union of its channels' formats."""
    formats = q.formats() if q.frac_bits.dim() > 0 else [q.format]
    return formats[0] if len(formats) == 1 else union_format(formats)


def sum_type(b: Builder, bits: int, what: str) -> int:
    """The ONNX element type in which a Conv's sums of ``bits`` bits are exact: float32 up to 24 bits (onnxruntime
    runs it), float64 up to 53 (:func:`qfx.export.execute_qonnx` lowers it to MatMul); beyond, an error."""
    if bits <= MAX_FLOAT32_BITS:
        return F32
    if bits <= MAX_FLOAT64_BITS:
        return F64
    raise ExportError(
        f"module {b.label}: {what} needs {bits} bits, more than float64's 53-bit significand holds exactly, so "
        "the QONNX file could not be executed exactly; narrow the input or weight widths"
    )
