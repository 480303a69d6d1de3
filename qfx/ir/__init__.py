"""The typed graph between QONNX and the backends; its integer interpreter is the golden model.

Nothing here imports torch.
"""

from qfx.ir.graph import (
    Add,
    Affine,
    Cast,
    Conv2d,
    Dense,
    GlobalSum,
    Graph,
    MaxPool2d,
    Mul,
    Node,
    Relu,
    Reshape,
    SumPool2d,
    Tensor,
)
from qfx.ir.qonnx import IRError, from_qonnx

__all__ = [
    "Add",
    "Affine",
    "Cast",
    "Conv2d",
    "Dense",
    "GlobalSum",
    "Graph",
    "IRError",
    "MaxPool2d",
    "Mul",
    "Node",
    "Relu",
    "Reshape",
    "SumPool2d",
    "Tensor",
    "from_qonnx",
]
