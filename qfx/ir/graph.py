"""The IR: a small typed graph in which every tensor has a fixed-point format and constants are integer codes.

A node computes its exact result in ``node.acc`` (the ap_fixed result type of its arithmetic: nothing rounds),
then assigns it to its output tensor's format, which applies that format's quantization and overflow modes. An
unfused node has output format == ``acc``; a separate :class:`Cast` does the rounding. Passes (e.g.
:func:`qfx.ir.passes.fuse_casts`) fold the cast into the node before it, as the hardware's assignment does.

Shapes leave out the batch dimension; data is laid out as PyTorch does (NCHW, row-major), so a flatten moves no
value. One-dimensional feature maps (Conv1d, pools over a sequence) have shape (C, L) and are the two-dimensional
case with H = 1: a 1-D convolution is a :class:`Conv2d` with kernel (1, K), stride (1, S), padding (0, P0, 0, P1)
on a (C, L) tensor, whose values sit in memory exactly as (C, 1, L) (see :func:`spatial`). Nothing here imports
torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from qfx.format import FixedFormat

__all__ = [
    "Add",
    "Affine",
    "ArgMax",
    "Cast",
    "Clip",
    "Concat",
    "Conv2d",
    "Dense",
    "GlobalSum",
    "Graph",
    "LeakyRelu",
    "Lookup",
    "MaxPool2d",
    "Mul",
    "Node",
    "Pad",
    "Relu",
    "Reshape",
    "Softmax",
    "SumPool2d",
    "Tensor",
    "Threshold",
    "Upsample",
    "is_channel_gate",
    "spatial",
]


def spatial(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of a feature map: (C, H, W) itself, or (C, 1, L) for a 1-D map (C, L); same memory order."""
    if len(shape) == 3:
        return (int(shape[0]), int(shape[1]), int(shape[2]))
    if len(shape) == 2:
        return (int(shape[0]), 1, int(shape[1]))
    raise ValueError(f"a feature map has shape (C, H, W) or (C, L), not {tuple(shape)}")


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
    bipolar: bool = False  # inputs and weights are all +-1 (BipolarQuant): XNOR-popcount hardware, no multipliers


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
    bipolar: bool = False  # inputs and weights are all +-1, no zero padding: XNOR-popcount hardware


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
    """Element-wise sum of two tensors of the same shape, or their difference (``subtract``: first minus second)."""

    op: ClassVar[str] = "add"

    subtract: bool = False


@dataclass
class Mul(Node):
    """Element-wise product of two tensors, exact in ``acc`` (F = F_a + F_b): of the same shape, or a feature map
    (first) times a per-channel gate (second, shape (C,) or (C, 1, ...): squeeze-and-excitation), which
    :func:`is_channel_gate` tells."""

    op: ClassVar[str] = "mul"


def is_channel_gate(map_shape: tuple[int, ...], gate_shape: tuple[int, ...]) -> bool:
    """Whether ``gate_shape`` is one value per channel of the feature map ``map_shape`` ((C,) or (C, 1, ...))."""
    return (
        len(map_shape) >= 2
        and tuple(map_shape) != tuple(gate_shape)
        and len(gate_shape) >= 1
        and gate_shape[0] == map_shape[0]
        and all(d == 1 for d in gate_shape[1:])
    )


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
class Clip(Node):
    """``min(max(x, min_code), max_code)`` with both bounds codes in ``acc`` (either may be None: unbounded);
    ReLU6 and Hardtanh. (A lower bound of exactly 0 is a :class:`Relu`.)"""

    op: ClassVar[str] = "clip"

    min_code: int | None = None
    max_code: int | None = None


@dataclass
class LeakyRelu(Node):
    """``x if x >= 0 else x * alpha`` with ``alpha`` an exact fixed-point constant (code ``alpha`` in
    ``alpha_fmt``, 0 < alpha < 1); ``acc`` holds both branches exactly: F = F_x + F_alpha."""

    op: ClassVar[str] = "leaky_relu"

    alpha: int = 0
    alpha_fmt: FixedFormat = None


@dataclass
class Pad(Node):
    """Zero padding of a feature map (C, H, W) or (C, L): ``padding`` = (top, left, bottom, right), top/bottom 0
    for a 1-D map. Moves values (output format = input format)."""

    op: ClassVar[str] = "pad"

    padding: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass
class Upsample(Node):
    """Nearest-neighbour upsampling by integer factors ``scale`` = (sh, sw) (sh = 1 for a 1-D map): output
    element (c, i, j) = input (c, i // sh, j // sw). Moves values."""

    op: ClassVar[str] = "upsample"

    scale: tuple[int, int] = (2, 2)


@dataclass
class Concat(Node):
    """Concatenation of the inputs along ``axis`` of the shape without batch (0: channels). ``acc`` is the union
    of the input formats (every value exact); an output cast may follow (fused)."""

    op: ClassVar[str] = "concat"

    axis: int = 0


@dataclass
class Lookup(Node):
    """A function tabulated on every input code (sigmoid, tanh): ``y = table[code(x) - min_code(x's format)]``,
    the table holding codes of ``acc`` (= the output format before any fused cast). Built by
    :func:`qfx.tables.function_table`; ``function`` names it (documentation, reports)."""

    op: ClassVar[str] = "lookup"

    table: np.ndarray = field(repr=False, default=None)
    function: str = ""


@dataclass
class Softmax(Node):
    """Fixed-point softmax over the last axis, every step in a declared format (:class:`qfx.tables.SoftmaxSpec`
    holds the formats and the two tables; :func:`qfx.tables.softmax_codes` is the exact definition). ``acc`` is
    the format of ``exp * reciprocal``; the output format follows by a cast."""

    op: ClassVar[str] = "softmax"

    spec: object = None  # qfx.tables.SoftmaxSpec


@dataclass
class ArgMax(Node):
    """Index of the largest value over the last axis (first one on ties), as an unsigned integer code
    (``acc`` = ap_ufixed<B, B> with 2**B >= the axis length); a classifier's output without softmax."""

    op: ClassVar[str] = "argmax"


@dataclass
class Threshold(Node):
    """A per-channel step function of integer codes (FINN's MultiThreshold, generalised): ``y = values[c, n]``
    with ``n`` = the number of ``k`` such that ``x >= thresholds[c, k]``. ``thresholds`` (C, K) holds codes of
    the input's format, ascending per channel (one above every reachable code never fires); ``values`` (C, K + 1)
    holds codes of ``acc``. A float batch norm (or any per-channel float function) between integer codes and the
    next quantizer becomes this node, tabulated on every reachable input code (:mod:`qfx.ir.qonnx_float`); a
    decreasing channel simply has decreasing values. Channels are axis 0 of the shape without batch."""

    op: ClassVar[str] = "threshold"

    thresholds: np.ndarray = field(repr=False, default=None)
    values: np.ndarray = field(repr=False, default=None)


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
    #: float32 steps the host applies to the model's raw input before ``inputs[0]`` (:mod:`qfx.ir.host`), and to
    #: the output codes' values after ``outputs[0]`` (Brevitas' pre-processing and TensorNorm); empty for QFX's own.
    host_pre: list = field(default_factory=list)
    host_post: list = field(default_factory=list)

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
