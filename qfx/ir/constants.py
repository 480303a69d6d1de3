"""Constants and names in the IR: exact formats of float constants, per-channel codes, C-identifier names."""

from __future__ import annotations

import keyword
import re

import numpy as np

from qfx.format import FixedFormat
from qfx.ir.intcast import float_codes

__all__ = ["fitted_format", "khot_tables", "naf_digits", "per_channel_codes", "printable", "sanitize"]


def _lowest_bit_exponents(values: np.ndarray) -> np.ndarray:
    """For each nonzero double, the exponent of its lowest set bit (value = odd * 2**that)."""
    mantissa, exponent = np.frexp(values)
    m = np.abs(mantissa * 2.0**53).astype(np.int64)
    e = exponent.astype(np.int64) - 53
    trailing = np.zeros_like(m)
    rest = m.copy()
    for bits in (32, 16, 8, 4, 2, 1):  # count trailing zero bits
        mask = (rest & ((1 << bits) - 1)) == 0
        trailing += np.where(mask, bits, 0)
        rest = np.where(mask, rest >> bits, rest)
    return e + trailing


def fitted_format(values: np.ndarray) -> FixedFormat:
    """The narrowest format holding every value of the float array exactly (unsigned when none is negative)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(values).all():
        raise ValueError("a constant holds inf or NaN, which no fixed-point format does")
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return FixedFormat(1, 1, signed=False)
    frac = int(-_lowest_bit_exponents(nonzero).min())
    codes = [int(v) for v in np.ldexp(values, frac)]  # exact integers
    signed = min(codes) < 0
    bits = max(max(abs(c) for c in codes).bit_length(), (-min(codes) - 1).bit_length() if signed else 0)
    width = bits + signed
    return FixedFormat(width, width - frac, signed)


def per_channel_codes(values: np.ndarray, formats: list[FixedFormat], axis: int) -> tuple[np.ndarray, FixedFormat]:
    """Cast each channel (along ``axis``) of float ``values`` into its own format, then express all the codes in
    one format that holds every channel's values exactly (finest LSB, widest range)."""
    from qfx.result_types import union_format

    union = union_format(formats)
    moved = np.moveaxis(np.asarray(values, dtype=np.float64), axis, 0)
    out = np.empty(moved.shape, dtype=object)
    for c, fmt in enumerate(formats):
        codes = float_codes(moved[c], fmt)
        out[c] = np.asarray(codes, dtype=object) * (1 << (union.frac_bits - fmt.frac_bits))
    codes = np.moveaxis(out, 0, axis)
    return (codes.astype(np.int64) if union.width <= 62 else codes), union


_NOT_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]")


def sanitize(name: str, taken: set[str]) -> str:
    """A C (and Verilog) identifier for ``name``, unique among ``taken`` (which it is added to), that is no keyword
    of C++17, Verilog-2005 or SystemVerilog and no name QFX's generated code uses (:mod:`qfx.names`)."""
    from qfx.names import is_reserved

    ident = re.sub(r"__+", "_", _NOT_IDENTIFIER.sub("_", name)).strip("_") or "node"
    if ident[0].isdigit() or ident.lower().startswith("ap_"):  # ap_*: the ap_fixed headers' names
        ident = "n_" + ident
    if keyword.iskeyword(ident) or ident in _RESERVED or is_reserved(ident):
        ident += "_"
    base, k = ident.rstrip("_"), 1
    while ident in taken or is_reserved(ident):
        ident, k = f"{base}_{k}", k + 1
    taken.add(ident)
    return ident


def printable(name: str) -> str:
    """``name`` with every non-printable character (a newline, a tab, ...) replaced by a space: safe in the
    ``//`` comments of generated C++ and Verilog, which a line break would end."""
    return "".join(c if c.isprintable() else " " for c in name)


# C++ and Verilog words a layer name must not become.
_RESERVED = {
    "auto", "bool", "break", "case", "char", "class", "const", "continue", "default", "delete", "do", "double",
    "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "namespace", "new",
    "operator", "private", "public", "register", "return", "short", "signed", "sizeof", "static", "struct",
    "switch", "template", "this", "typedef", "union", "unsigned", "void", "volatile", "while", "module",
    "input", "output", "wire", "reg", "assign", "always", "begin", "end", "endmodule", "integer", "parameter",
    "main", "qfx", "std",
}  # fmt: skip


def naf_digits(code: int) -> list[tuple[int, int]]:
    """The non-adjacent form of an integer: (shift, sign) pairs with ``code = sum(sign * 2**shift)``, fewest
    nonzero digits (canonical signed digits), lowest shift first."""
    digits, shift, c = [], 0, int(code)
    while c:
        if c & 1:
            sign = 2 - (c & 3)  # +1 when c = 1 (mod 4), -1 when c = 3 (mod 4)
            digits.append((shift, sign))
            c -= sign
        c >>= 1
        shift += 1
    return digits


def khot_tables(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(shift, sign) tables of shape ``codes.shape + (k,)`` (unused slots: sign 0) for K-hot constants.

    Raises when a code needs more than ``k`` nonzero digits.
    """
    flat = np.asarray(codes).ravel()
    shift = np.zeros((flat.size, k), dtype=np.int64)
    sign = np.zeros((flat.size, k), dtype=np.int64)
    for i, c in enumerate(flat):
        digits = naf_digits(int(c))
        if len(digits) > k:
            raise ValueError(f"code {int(c)} has {len(digits)} nonzero digits, more than K = {k}")
        for j, (s, d) in enumerate(digits):
            shift[i, j], sign[i, j] = s, d
    shape = (*np.shape(codes), k)
    return shift.reshape(shape), sign.reshape(shape)
