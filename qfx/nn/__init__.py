"""QFX layers: PyTorch modules whose every tensor is an exact fixed-point value."""

from qfx.nn.activations import QArgMax, QClip, QLeakyReLU, QPReLU, QScale, QSoftmax, QTable
from qfx.nn.cost import enable_width_learning, resource_cost
from qfx.nn.elementwise import (
    QAbs,
    QAdd,
    QAvgPool2d,
    QBatchNorm1d,
    QBatchNorm2d,
    QExtremum,
    QFlatten,
    QGlobalAvgPool2d,
    QInput,
    QMaxPool2d,
    QMul,
    QReLU,
)
from qfx.nn.exact import accumulator_format, add_format, product_format
from qfx.nn.layers import QConv1d, QConv2d, QLinear, fold_batchnorm
from qfx.nn.quantizer import FixedQuantizer
from qfx.nn.shape import QAvgPool1d, QCat, QGlobalAvgPool, QMaxPool1d, QPad, QUpsample

__all__ = [
    "FixedQuantizer",
    "QAbs",
    "QAdd",
    "QArgMax",
    "QAvgPool1d",
    "QAvgPool2d",
    "QBatchNorm1d",
    "QBatchNorm2d",
    "QCat",
    "QClip",
    "QConv1d",
    "QConv2d",
    "QExtremum",
    "QFlatten",
    "QGlobalAvgPool",
    "QGlobalAvgPool2d",
    "QInput",
    "QLeakyReLU",
    "QLinear",
    "QMaxPool1d",
    "QMaxPool2d",
    "QMul",
    "QPReLU",
    "QPad",
    "QReLU",
    "QScale",
    "QSoftmax",
    "QTable",
    "QUpsample",
    "accumulator_format",
    "add_format",
    "enable_width_learning",
    "fold_batchnorm",
    "product_format",
    "resource_cost",
]
