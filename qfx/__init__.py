"""QFX: train with the exact fixed-point arithmetic an FPGA runs, then lower the model bit for bit."""

from qfx import nn
from qfx.format import MAX_WIDTH, FixedFormat, Overflow, Quant
from qfx.functional import cast, codes, fixed_quantize, result_dtype

__all__ = ["MAX_WIDTH", "FixedFormat", "Overflow", "Quant", "cast", "codes", "fixed_quantize", "nn", "result_dtype"]
__version__ = "0.1.0"
