"""Table-based non-linear functions, defined once in integer codes: sigmoid, tanh, hard sigmoid and swish, SiLU,
ELU, GELU, softplus, mish (:data:`FUNCTIONS`) and softmax (no torch here).

A non-linear function of a fixed-point input is a table indexed by the input's integer code: the table is built
once in float64 (the function evaluated at every representable input value) and rounded into the output format by
the exact double-to-fixed conversion (:func:`qfx.ir.intcast.float_codes`). PyTorch, the QONNX op, the IR
interpreter, the HLS C++ and the Verilog all read the same table, so they agree bit for bit by construction.

Softmax is a fixed-point algorithm whose every intermediate has a declared format (:class:`SoftmaxSpec`):

1. ``m = max(x)`` over the axis; ``k = code(m) - code(x)``, an integer in ``[0, 2**Wx - 1]``;
2. ``e = exp_table[k]``, codes of ``exp_fmt`` (``ap_ufixed<We, 1, AP_RND, AP_SAT>``: exp(-k * 2**-Fx), <= 1);
3. ``s = sum(e)``, exact in ``sum_fmt`` (``ap_ufixed<We + g, 1 + g>``, g = ceil(log2 n)); s >= 1 because the
   largest element contributes exp(0) = 1;
4. ``i = s`` assigned to ``index_fmt`` (``ap_ufixed<Wi, 1 + g, AP_TRN, AP_SAT>``: the sum's top bits);
5. ``r = recip_table[code(i)]``, codes of ``recip_fmt`` (``ap_ufixed<Wr, 1, AP_RND, AP_SAT>``: 1 / i);
6. ``p = e * r``, exact in ``acc`` = ``ap_ufixed<We + Wr, 2>``; the layer's output format follows by a cast.

Tables are bounded: an input of more than :data:`MAX_TABLE_BITS` bits is refused, naming the width to lower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir.intcast import float_codes, requantize
from qfx.result_types import grow_bits, product_format

__all__ = [
    "BOUNDED",
    "FUNCTIONS",
    "MAX_TABLE_BITS",
    "SoftmaxSpec",
    "TableError",
    "check_table_input",
    "function_range",
    "function_table",
    "lookup_codes",
    "softmax_codes",
]

#: Widest input a table may be indexed by: 2**16 = 65,536 entries.
MAX_TABLE_BITS = 16


class TableError(ValueError):
    """A table would be too large (or its input is not fixed point); the message says which width to lower."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) as torch's ``F.softplus`` defines it (beta 1): x itself above the threshold 20."""
    return np.where(x > 20, x, np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))))


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


#: The tabulated functions, evaluated in float64 as torch defines them (GELU exact or its tanh approximation; ELU
#: with alpha 1; softplus with beta 1 and threshold 20).
FUNCTIONS = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "hardsigmoid": lambda x: np.clip(x + 3, 0, 6) / 6,
    "hardswish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "silu": lambda x: x * _sigmoid(x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "softplus": _softplus,
    "mish": lambda x: x * np.tanh(_softplus(x)),
}
#: Functions whose values lie in [0, 1] or [-1, 1] (the output's binary point is fixed by that range).
BOUNDED = {"sigmoid": (0.0, 1.0), "hardsigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


def _function_values(function: str, in_fmt: FixedFormat) -> np.ndarray:
    """``function`` (float64) at every value of ``in_fmt``, lowest code first; refuses an unknown function or a
    table too wide."""
    if function not in FUNCTIONS:
        raise TableError(f"no table for function {function!r}; tabulated: {', '.join(FUNCTIONS)}")
    check_table_input(in_fmt, function)
    codes = np.arange(in_fmt.min_code, in_fmt.max_code + 1, dtype=np.int64)
    return FUNCTIONS[function](np.ldexp(codes.astype(np.float64), -in_fmt.frac_bits))  # exact: <= 16 bits each


def function_range(function: str, in_fmt: FixedFormat) -> tuple[float, float]:
    """(least, greatest) value of ``function`` over every value of ``in_fmt``: what its output format must hold."""
    values = _function_values(function, in_fmt)
    return float(values.min()), float(values.max())


def check_table_input(fmt: FixedFormat, what: str) -> None:
    """Raise :class:`TableError` unless a table indexed by codes of ``fmt`` has at most 2**MAX_TABLE_BITS entries."""
    if fmt.width > MAX_TABLE_BITS:
        raise TableError(
            f"{what}: its input format {fmt} has {fmt.width} bits, so its table would need 2**{fmt.width} entries; "
            f"lower the width of the tensor feeding it to at most {MAX_TABLE_BITS} bits"
        )


def function_table(function: str, in_fmt: FixedFormat, out_fmt: FixedFormat) -> np.ndarray:
    """Codes of ``out_fmt`` for ``function`` at every code of ``in_fmt``, lowest input code first (int64)."""
    return np.asarray(float_codes(_function_values(function, in_fmt), out_fmt), dtype=np.int64)


def lookup_codes(table: np.ndarray, x_codes: np.ndarray, in_fmt: FixedFormat) -> np.ndarray:
    """``table[code - min_code]`` for every input code (the integer definition of a table-based function)."""
    index = np.asarray(x_codes, dtype=np.int64) - in_fmt.min_code
    if index.size and (index.min() < 0 or index.max() >= len(table)):
        raise ValueError(f"input codes outside {in_fmt}")
    return np.asarray(table, dtype=np.int64)[index]


@dataclass(frozen=True)
class SoftmaxSpec:
    """Formats and tables of the fixed-point softmax over an axis of ``length`` values of ``in_fmt``."""

    in_fmt: FixedFormat
    length: int
    exp_fmt: FixedFormat
    index_fmt: FixedFormat
    recip_fmt: FixedFormat
    exp_table: np.ndarray = field(repr=False, compare=False)
    recip_table: np.ndarray = field(repr=False, compare=False)

    @classmethod
    def build(
        cls, in_fmt: FixedFormat, length: int, *, exp_width: int = 12, index_width: int = 10, recip_width: int = 12
    ) -> SoftmaxSpec:
        """The spec for ``length`` inputs of ``in_fmt``; the index keeps at least 2 fraction bits of the sum."""
        if length < 1:
            raise TableError(f"softmax over {length} values")
        check_table_input(in_fmt, "softmax")
        g = grow_bits(length)
        index_width = max(index_width, g + 3)
        check_table_input(FixedFormat(index_width, 1 + g, False), "softmax reciprocal")
        exp_fmt = FixedFormat(exp_width, 1, False, Quant.RND, Overflow.SAT)
        index_fmt = FixedFormat(index_width, 1 + g, False, Quant.TRN, Overflow.SAT)
        recip_fmt = FixedFormat(recip_width, 1, False, Quant.RND, Overflow.SAT)
        k = np.arange(0, 1 << in_fmt.width, dtype=np.int64)
        exp_table = float_codes(np.exp(-np.ldexp(k.astype(np.float64), -in_fmt.frac_bits)), exp_fmt)
        i = np.arange(0, 1 << index_width, dtype=np.int64)
        with np.errstate(divide="ignore"):
            recip = np.where(i > 0, 1.0 / np.ldexp(np.maximum(i, 1).astype(np.float64), -index_fmt.frac_bits), 0.0)
        recip_table = np.asarray(float_codes(recip, recip_fmt), dtype=np.int64)
        recip_table[0] = recip_fmt.max_code  # never read: the sum is at least 1
        return cls(in_fmt, length, exp_fmt, index_fmt, recip_fmt, np.asarray(exp_table, dtype=np.int64), recip_table)

    @property
    def sum_fmt(self) -> FixedFormat:
        """Exact format of the sum of ``length`` exponentials."""
        g = grow_bits(self.length)
        return FixedFormat(self.exp_fmt.width + g, 1 + g, False)

    @property
    def acc(self) -> FixedFormat:
        """Exact format of ``exp * reciprocal``."""
        return product_format(self.exp_fmt, self.recip_fmt)


def softmax_codes(x_codes: np.ndarray, spec: SoftmaxSpec) -> np.ndarray:
    """Codes of ``spec.acc`` of the fixed-point softmax over the last axis of ``x_codes`` (see the module doc)."""
    x = np.asarray(x_codes, dtype=np.int64)
    if x.shape[-1] != spec.length:
        raise ValueError(f"softmax over {spec.length} values, but the last axis has {x.shape[-1]}")
    k = x.max(axis=-1, keepdims=True) - x
    e = spec.exp_table[k]
    s = e.sum(axis=-1, keepdims=True)
    i = requantize(s, spec.exp_fmt.frac_bits, spec.index_fmt)
    r = spec.recip_table[np.asarray(i, dtype=np.int64)]
    return e * r
