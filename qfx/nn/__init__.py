"""QFX layers: PyTorch modules whose every tensor is an exact fixed-point value."""

from qfx.nn.quantizer import FixedQuantizer

__all__ = ["FixedQuantizer"]
