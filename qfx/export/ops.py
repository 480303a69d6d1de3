"""The qfx-domain ``FixedCast`` op: ap_fixed assignment in a QONNX graph, executable by qonnx.

QONNX's ``Quant`` always saturates and knows only some rounding modes; ``FixedCast(x)`` with a ``format``
attribute such as ``"ap_fixed<8,3,AP_RND,AP_WRAP>"`` covers every quantization and overflow mode. ``FixedTable``
(sigmoid, tanh) and ``FixedSoftmax`` compute the table-based functions of :mod:`qfx.tables` on the input's integer
codes. The nodes' domain is this module's import path, which is how qonnx's registry finds the classes; FixedCast's
execution is :func:`qfx.cast` (proven bit-exact against the Xilinx headers).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from qfx.format import FixedFormat

__all__ = ["DOMAIN", "FixedCast", "FixedSoftmax", "FixedTable", "fits_float32", "input_codes", "output_dtype"]

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


def _format_attr(op: CustomOp, name: str) -> FixedFormat:
    return FixedFormat.parse(op.get_nodeattr(name))


def input_codes(x: np.ndarray, fmt: FixedFormat, node: str) -> np.ndarray:
    """Integer codes of the values ``x`` of ``fmt`` (int64); raises when a value is not on ``fmt``'s grid."""
    scaled = np.ldexp(np.asarray(x, dtype=np.float64), fmt.frac_bits)
    codes = np.rint(scaled)
    if not np.array_equal(codes, scaled) or (codes.size and (codes.min() < fmt.min_code or codes.max() > fmt.max_code)):
        raise ValueError(f"{node}: its input holds values that are not codes of {fmt}")
    return codes.astype(np.int64)


class FixedTable(CustomOp):
    """``y = table[code(x) - min_code]``: a function of the input code (``function`` names it), values of
    ``out_format``; input 1 is the table of output codes (int64, one per input code, lowest first)."""

    def get_nodeattr_types(self) -> dict:
        return {"function": ("s", True, ""), "in_format": ("s", True, ""), "out_format": ("s", True, "")}

    def make_shape_compatible_op(self, model):
        to = TensorProto.FLOAT if fits_float32(_format_attr(self, "out_format")) else TensorProto.DOUBLE
        return helper.make_node("Cast", [self.onnx_node.input[0]], [self.onnx_node.output[0]], to=to)

    def infer_node_datatype(self, model) -> None:
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["FLOAT32"])

    def execute_node(self, context: dict, graph) -> None:
        from qfx.tables import lookup_codes

        in_fmt, out_fmt = _format_attr(self, "in_format"), _format_attr(self, "out_format")
        codes = input_codes(context[self.onnx_node.input[0]], in_fmt, self.onnx_node.name)
        y = lookup_codes(np.asarray(context[self.onnx_node.input[1]]), codes, in_fmt)
        context[self.onnx_node.output[0]] = np.ldexp(y.astype(np.float64), -out_fmt.frac_bits).astype(
            output_dtype(out_fmt)
        )

    def verify_node(self) -> list[str]:
        return [f"FixedTable {self.onnx_node.name}: {self.get_nodeattr('function')}"]


class FixedSoftmax(CustomOp):
    """Fixed-point softmax over the last axis (:func:`qfx.tables.softmax_codes`): inputs x, the exp table and the
    reciprocal table (int64 codes); the output is exact in ``exp_format * recip_format``."""

    def get_nodeattr_types(self) -> dict:
        return {
            "in_format": ("s", True, ""),
            "exp_format": ("s", True, ""),
            "index_format": ("s", True, ""),
            "recip_format": ("s", True, ""),
            "axis": ("i", False, -1),
        }

    def spec(self, exp_table: np.ndarray, recip_table: np.ndarray, length: int):
        """The :class:`qfx.tables.SoftmaxSpec` this node computes."""
        from qfx.tables import SoftmaxSpec

        return SoftmaxSpec(
            _format_attr(self, "in_format"), length, _format_attr(self, "exp_format"),
            _format_attr(self, "index_format"), _format_attr(self, "recip_format"),
            np.asarray(exp_table, dtype=np.int64), np.asarray(recip_table, dtype=np.int64),
        )  # fmt: skip

    def _acc(self) -> FixedFormat:
        from qfx.result_types import product_format

        return product_format(_format_attr(self, "exp_format"), _format_attr(self, "recip_format"))

    def make_shape_compatible_op(self, model):
        to = TensorProto.FLOAT if fits_float32(self._acc()) else TensorProto.DOUBLE
        return helper.make_node("Cast", [self.onnx_node.input[0]], [self.onnx_node.output[0]], to=to)

    def infer_node_datatype(self, model) -> None:
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["FLOAT32"])

    def execute_node(self, context: dict, graph) -> None:
        from qfx.tables import softmax_codes

        if self.get_nodeattr("axis") != -1:
            raise ValueError(f"{self.onnx_node.name}: FixedSoftmax runs over the last axis only (axis=-1)")
        x = np.asarray(context[self.onnx_node.input[0]])
        spec = self.spec(context[self.onnx_node.input[1]], context[self.onnx_node.input[2]], x.shape[-1])
        y = softmax_codes(input_codes(x, spec.in_fmt, self.onnx_node.name), spec)
        acc = self._acc()
        context[self.onnx_node.output[0]] = np.ldexp(y.astype(np.float64), -acc.frac_bits).astype(output_dtype(acc))

    def verify_node(self) -> list[str]:
        return [f"FixedSoftmax {self.onnx_node.name}"]
