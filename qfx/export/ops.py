"""The qfx-domain ``FixedCast`` op: ap_fixed assignment in a QONNX graph, executable by qonnx.

QONNX's ``Quant`` always saturates and knows only some rounding modes; ``FixedCast(x)`` with a ``format``
attribute such as ``"ap_fixed<8,3,AP_RND,AP_WRAP>"`` covers every quantization and overflow mode. The node's
domain is this module's import path, which is how qonnx's registry finds the class; its execution is
:func:`qfx.cast` (proven bit-exact against the Xilinx headers).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from qfx.format import FixedFormat

__all__ = ["DOMAIN", "FixedCast", "fits_float32", "output_dtype"]

DOMAIN = "qfx.export.ops"


def fits_float32(fmt: FixedFormat) -> bool:
    """Whether every value of ``fmt`` is a normal float32 (or zero): then tensors of it travel as float32."""
    return fmt.width <= 24 and -100 <= fmt.frac_bits <= 100


def output_dtype(fmt: FixedFormat) -> type:
    """The numpy dtype a cast into ``fmt`` outputs: float32 like QONNX's Quant when it holds ``fmt``."""
    return np.float32 if fits_float32(fmt) else np.float64


class FixedCast(CustomOp):
    """``y = ap_fixed-cast(x)`` into the format named by the ``format`` attribute."""

    def get_nodeattr_types(self) -> dict:
        return {"format": ("s", True, "")}

    @property
    def fixed_format(self) -> FixedFormat:
        return FixedFormat.parse(self.get_nodeattr("format"))

    def make_shape_compatible_op(self, model):
        to = TensorProto.FLOAT if fits_float32(self.fixed_format) else TensorProto.DOUBLE
        return helper.make_node("Cast", [self.onnx_node.input[0]], [self.onnx_node.output[0]], to=to)

    def infer_node_datatype(self, model) -> None:
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["FLOAT32"])

    def execute_node(self, context: dict, graph) -> None:
        import torch

        from qfx.functional import cast

        x = np.asarray(context[self.onnx_node.input[0]])
        y = cast(torch.from_numpy(x.astype(np.float64)), self.fixed_format).numpy()
        context[self.onnx_node.output[0]] = y.astype(output_dtype(self.fixed_format))

    def verify_node(self) -> list[str]:
        try:
            fmt = self.fixed_format
        except ValueError as e:
            return [f"FixedCast {self.onnx_node.name}: {e}"]
        return [f"FixedCast {self.onnx_node.name}: {fmt}"]
