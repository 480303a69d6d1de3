"""QFX: train with the exact fixed-point arithmetic an FPGA runs, then lower the model bit for bit."""

from qfx import nn
from qfx.format import MAX_WIDTH, FixedFormat, Overflow, Quant
from qfx.functional import cast, codes, fixed_quantize, result_dtype
from qfx.quantize import LayerConfig, QuantizeConfig, QuantizeError, quantize_

__all__ = [
    "MAX_WIDTH",
    "FixedFormat",
    "LayerConfig",
    "Overflow",
    "Quant",
    "QuantizeConfig",
    "QuantizeError",
    "cast",
    "codes",
    "execute_qonnx",
    "export_qonnx",
    "fixed_quantize",
    "nn",
    "quantize_",
    "result_dtype",
    "to_hls4ml",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``qfx.export_qonnx`` / ``qfx.execute_qonnx`` / ``qfx.to_hls4ml`` without importing onnx/qonnx at
    ``import qfx``."""
    if name in ("export_qonnx", "execute_qonnx", "to_hls4ml"):
        import qfx.export

        return getattr(qfx.export, name)
    raise AttributeError(f"module 'qfx' has no attribute {name!r}")
