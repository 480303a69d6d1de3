"""Float steps a graph leaves to the host: Brevitas' input pre-processing (``2 * x - 1`` before the first
quantizer, a flatten), a transpose of the model's input (a channels-last input permuted to channels-first), and
its float tail (TensorNorm after the last quantized layer).

They run in float32, one IEEE operation per step, exactly as qonnx's executor (onnxruntime, node by node) computes
them, so the host's result equals qonnx's bit for bit. The accelerator sees only integer codes: its input is the
pre-processed tensor (cast into the first quantizer's format, or its sign for a bipolar input), its output the
codes of the last fixed-point tensor. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["HostStep", "describe", "post", "pre"]

#: The float ops a host step may be.
HOST_OPS = ("reshape", "transpose", "add", "sub", "mul", "div", "sign")
MOVES = ("reshape", "transpose")  # steps that only move values: they keep the input's dtype


@dataclass(frozen=True)
class HostStep:
    """One float32 step: ``reshape`` to ``shape`` (without batch); ``transpose`` of the axes after the batch by
    ``perm`` (0 is the first axis after the batch); ``add``/``sub``/``mul``/``div`` by the float32
    constant ``const`` (broadcast as ONNX does, with the batch axis first); ``sign`` (``+1`` where ``x >= 0`` else
    ``-1``: a BipolarQuant of unit scale). ``const_first``: the constant is the left operand (``c - x``)."""

    op: str
    const: np.ndarray | None = field(default=None, repr=False)
    shape: tuple[int, ...] = ()
    const_first: bool = False
    perm: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in HOST_OPS:
            raise ValueError(f"host step {self.op!r} is not one of {', '.join(HOST_OPS)}")

    def apply(self, x: np.ndarray) -> np.ndarray:
        if self.op == "transpose":
            return np.transpose(np.asarray(x), (0, *(p + 1 for p in self.perm)))
        if self.op == "reshape":
            x = np.asarray(x)
            return x.reshape((x.shape[0], *self.shape))
        x = np.asarray(x, dtype=np.float32)
        if self.op == "sign":
            return np.where(x >= 0, np.float32(1), np.float32(-1)).astype(np.float32)
        c = np.asarray(self.const, dtype=np.float32)
        a, b = (c, x) if self.const_first else (x, c)
        fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[self.op]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(a, b, dtype=np.float32)

    def text(self) -> str:
        """The step as one line of a README (constants summarised when large)."""
        if self.op == "reshape":
            return f"x = x.reshape(batch, {', '.join(map(str, self.shape))})"
        if self.op == "transpose":
            return f"x = x.transpose(0, {', '.join(str(p + 1) for p in self.perm)})  (numpy axes, batch first)"
        if self.op == "sign":
            return "x = +1 where x >= 0 else -1 (the bipolar input quantizer)"
        c = np.asarray(self.const, dtype=np.float32)
        value = repr(float(c.ravel()[0])) if c.size == 1 else f"<float32 constant of shape {list(c.shape)}>"
        sym = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[self.op]
        return f"x = {value} {sym} x" if self.const_first else f"x = x {sym} {value}"


def pre(steps: list[HostStep], x: np.ndarray) -> np.ndarray:
    """The graph's input from the model's raw input: the host's pre-processing (float32; a reshape or transpose
    alone keeps the input's dtype, so a float64 input is cast into the first format as the model casts it)."""
    x = np.asarray(x) if all(s.op in MOVES for s in steps) else np.asarray(x, dtype=np.float32)
    for step in steps:
        x = step.apply(x)
    return x


def post(steps: list[HostStep], codes: np.ndarray, frac_bits: int) -> np.ndarray:
    """The model's float output from the output codes (values ``code * 2**-frac_bits``, exact in float32 below
    2**24) through the host's float tail."""
    codes = np.asarray(codes)
    if codes.size and np.abs(codes).max() >= 1 << 24:
        raise ValueError("output codes of 24 bits or more are not exact float32 values: no float tail is exact")
    x = np.ldexp(codes.astype(np.float32), -frac_bits).astype(np.float32)
    for step in steps:
        x = step.apply(x)
    return x


def describe(steps: list[HostStep]) -> list[str]:
    """One line per step (for the generated projects' READMEs)."""
    return [s.text() for s in steps]
