"""QFX layers: PyTorch modules whose every tensor is an exact fixed-point value."""

from qfx.nn.cost import enable_width_learning, resource_cost
from qfx.nn.elementwise import QAdd, QAvgPool2d, QBatchNorm2d, QFlatten, QGlobalAvgPool2d, QInput, QMaxPool2d, QReLU
from qfx.nn.exact import accumulator_format, add_format, product_format
from qfx.nn.layers import QConv2d, QLinear, fold_batchnorm
from qfx.nn.quantizer import FixedQuantizer

__all__ = [
    "FixedQuantizer",
    "QAdd",
    "QAvgPool2d",
    "QBatchNorm2d",
    "QConv2d",
    "QFlatten",
    "QGlobalAvgPool2d",
    "QInput",
    "QLinear",
    "QMaxPool2d",
    "QReLU",
    "accumulator_format",
    "add_format",
    "enable_width_learning",
    "fold_batchnorm",
    "product_format",
    "resource_cost",
]
