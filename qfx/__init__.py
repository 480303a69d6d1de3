"""QFX: train with the exact fixed-point arithmetic an FPGA runs, then lower the model bit for bit."""

from qfx import nn
from qfx.format import MAX_WIDTH, FixedFormat, Overflow, Quant
from qfx.functional import cast, codes, fixed_quantize, result_dtype
from qfx.quantize import LayerConfig, QuantizeConfig, quantize_

__all__ = [
    "MAX_WIDTH",
    "FixedFormat",
    "LayerConfig",
    "Overflow",
    "Quant",
    "QuantizeConfig",
    "cast",
    "codes",
    "export_qonnx",
    "fixed_quantize",
    "nn",
    "quantize_",
    "result_dtype",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``qfx.export_qonnx`` without importing onnx/qonnx at ``import qfx``."""
    if name == "export_qonnx":
        from qfx.export import export_qonnx

        return export_qonnx
    raise AttributeError(f"module 'qfx' has no attribute {name!r}")
