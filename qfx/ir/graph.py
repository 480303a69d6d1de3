"""The IR: a small typed graph in which every tensor has a fixed-point format and constants are integer codes.

A node computes its exact result in ``node.acc`` (the ap_fixed result type of its arithmetic: nothing rounds),
then assigns it to its output tensor's format, which applies that format's quantization and overflow modes. An
unfused node has output format == ``acc``; a separate :class:`Cast` does the rounding. Passes (e.g.
:func:`qfx.ir.passes.fuse_casts`) fold the cast into the node before it, as the hardware's assignment does.

Shapes leave out the batch dimension; data is laid out as PyTorch does (NCHW, row-major), so a flatten moves no
value. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from qfx.format import FixedFormat

__all__ = [
    "Add",
    "Affine",
    "Cast",
    "Conv2d",
    "Dense",
    "GlobalSum",
    "Graph",
    "MaxPool2d",
    "Node",
    "Relu",
    "Reshape",
    "SumPool2d",
    "Tensor",
]


@dataclass(frozen=True)
class Tensor:
    """A named tensor: its shape without the batch dimension, and its format (``None`` only for a float input)."""

    name: str
    shape: tuple[int, ...]
    fmt: FixedFormat | None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Node:
    """One operation: input and output tensor names, and the exact format of its result."""

    op: ClassVar[str] = "node"  # the op's name as the backends know it, e.g. "dense"

    name: str
    inputs: list[str]
    output: str
    acc: FixedFormat | None


@dataclass
class Cast(Node):
    """Assign the input to the output's format (quantization, then overflow). From a float input: the C double
    conversion, which is how the network's input enters the fixed-point world."""

    op: ClassVar[str] = "cast"


@dataclass
class Dense(Node):
    """``y[o] = sum_i x[i] * w[o, i] + b[o]``; weight codes shaped (out, in), as torch's Linear."""

    op: ClassVar[str] = "dense"

    weight: np.ndarray = field(repr=False, default=None)
    weight_fmt: FixedFormat = None
    bias: np.ndarray | None = field(repr=False, default=None)
    bias_fmt: FixedFormat | None = None
    khot: int | None = None  # weights have at most this many nonzero signed digits: shift-and-add hardware


@dataclass
class Conv2d(Node):
    """2-D convolution (NCHW, zero padding), weight codes shaped (C_out, C_in / groups, KH, KW)."""

    op: ClassVar[str] = "conv2d"

    weight: np.ndarray = field(repr=False, default=None)
    weight_fmt: FixedFormat = None
    bias: np.ndarray | None = field(repr=False, default=None)
    bias_fmt: FixedFormat | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    khot: int | None = None


@dataclass
class Affine(Node):
    """Per-channel ``x * scale[c] + shift[c]`` (batch norm as the hardware runs it; also a constant multiply or
    add). ``scale``/``shift`` hold one code per channel (axis 0 of the shape without batch); either may be None."""

    op: ClassVar[str] = "affine"

    scale: np.ndarray | None = field(repr=False, default=None)
    scale_fmt: FixedFormat | None = None
    shift: np.ndarray | None = field(repr=False, default=None)
    shift_fmt: FixedFormat | None = None
    khot: int | None = None  # for the scale


@dataclass
class Add(Node):
    """Element-wise sum of two tensors of the same shape."""

    op: ClassVar[str] = "add"


@dataclass
class Relu(Node):
    """``max(x, 0)``, clipped at ``max_code`` (a code in ``acc``) when that is set."""

    op: ClassVar[str] = "relu"

    max_code: int | None = None


@dataclass
class MaxPool2d(Node):
    """Window maximum (padding positions are ignored, as in ONNX)."""

    op: ClassVar[str] = "maxpool2d"

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass
class SumPool2d(Node):
    """Window sum, zero padding counted (an average pool is this, then a constant multiply)."""

    op: ClassVar[str] = "sumpool2d"

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass
class GlobalSum(Node):
    """Sum over all positions of each channel: (C, H, W) -> (C,) (keeping 1-sized dims when the shape says so)."""

    op: ClassVar[str] = "global_sum"


@dataclass
class Reshape(Node):
    """Flatten / reshape: the same values in the same order."""

    op: ClassVar[str] = "reshape"


@dataclass
class Graph:
    """Tensors by name, nodes in topological order, the graph's inputs and outputs."""

    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    name: str = "qfx_model"

    def fmt(self, tensor: str) -> FixedFormat:
        fmt = self.tensors[tensor].fmt
        if fmt is None:
            raise ValueError(f"tensor {tensor!r} is a float input and has no fixed-point format")
        return fmt

    def run(self, x: np.ndarray | dict[str, np.ndarray], *, trace: bool = False) -> np.ndarray | dict:
        """Integer codes of the outputs for the float input batch ``x`` (see :func:`qfx.ir.interpret.run`)."""
        from qfx.ir.interpret import run

        return run(self, x, trace=trace)

    def summary(self) -> str:
        """One line per node: op, output tensor, shape, result and output formats."""
        lines = []
        for n in self.nodes:
            t = self.tensors[n.output]
            acc = "" if n.acc == t.fmt or n.acc is None else f"  acc {n.acc}"
            lines.append(f"{n.name:24s} {n.op:10s} -> {t.name} {list(t.shape)} {t.fmt}{acc}")
        return "\n".join(lines)
