"""Fixed-point formats with Xilinx ``ap_fixed`` semantics.

A :class:`FixedFormat` is the one description of a fixed-point type in QFX: PyTorch layers, the QONNX export,
the IR and the HLS/RTL backends all speak it. ``str(fmt)`` is the C++ type an HLS tool accepts, and
:meth:`FixedFormat.parse` reads it back.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["MAX_WIDTH", "FixedFormat", "Overflow", "Quant"]

#: Widest type the Xilinx headers accept by default (``AP_INT_MAX_W``).
MAX_WIDTH = 1024
#: Largest |int_bits| and |frac_bits|: beyond, the format's largest value or its LSB is no finite double, which the
#: testbenches, the interpreter's inputs and the reports need (2**1024 overflows, 2**-1075 underflows).
MAX_BINARY_POINT = 1024


class Quant(enum.Enum):
    """Quantization (rounding) mode applied when a value has more fraction bits than the target."""

    TRN = "AP_TRN"  #: truncate toward minus infinity (floor)
    TRN_ZERO = "AP_TRN_ZERO"  #: truncate toward zero
    RND = "AP_RND"  #: round to nearest, ties toward plus infinity
    RND_ZERO = "AP_RND_ZERO"  #: round to nearest, ties toward zero
    RND_MIN_INF = "AP_RND_MIN_INF"  #: round to nearest, ties toward minus infinity
    RND_INF = "AP_RND_INF"  #: round to nearest, ties away from zero
    RND_CONV = "AP_RND_CONV"  #: round to nearest, ties to even (convergent)

    @property
    def cpp(self) -> str:
        """The C++ enumerator name, e.g. ``AP_RND``."""
        return self.value

    @classmethod
    def from_name(cls, name: str | Quant) -> Quant:
        """Accept ``Quant.RND``, ``"RND"`` or ``"AP_RND"``."""
        return _enum_from_name(cls, name, "quant")


class Overflow(enum.Enum):
    """Overflow mode applied to the integer code after quantization."""

    SAT = "AP_SAT"  #: clamp to the minimum or maximum
    SAT_ZERO = "AP_SAT_ZERO"  #: any out-of-range value becomes zero
    SAT_SYM = "AP_SAT_SYM"  #: signed: clamp to +-max, the most negative code is never produced
    WRAP = "AP_WRAP"  #: keep the low bits (two's complement wrap-around); sat_bits forces the top bits
    WRAP_SM = "AP_WRAP_SM"  #: sign-magnitude wrap-around (signed formats only)

    @property
    def cpp(self) -> str:
        """The C++ enumerator name, e.g. ``AP_SAT``."""
        return self.value

    @property
    def wraps(self) -> bool:
        """True for the wrap-around modes, whose result keeps the low bits of the code."""
        return self in (Overflow.WRAP, Overflow.WRAP_SM)

    @classmethod
    def from_name(cls, name: str | Overflow) -> Overflow:
        """Accept ``Overflow.SAT``, ``"SAT"`` or ``"AP_SAT"``."""
        return _enum_from_name(cls, name, "overflow")


def _enum_from_name(cls, name, field: str):
    if isinstance(name, cls):
        return name
    if isinstance(name, str):
        key = name.strip().upper()
        for member in cls:
            if key in (member.name, member.value):
                return member
    choices = ", ".join(m.value for m in cls)
    raise ValueError(f"{field} must be one of {choices}, not {name!r}")


def _require_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer, not {value!r}")
    return value


@dataclass(frozen=True)
class FixedFormat:
    """``ap_fixed<width, int_bits, quant, overflow, sat_bits>`` (or ``ap_ufixed`` when ``signed`` is False).

    ``int_bits`` counts the sign bit for signed formats and may be negative or larger than ``width``:
    the value of code ``c`` is ``c * 2**-frac_bits`` with ``frac_bits = width - int_bits``.
    """

    width: int
    int_bits: int
    signed: bool = True
    quant: Quant = Quant.TRN
    overflow: Overflow = Overflow.WRAP
    sat_bits: int = 0

    def __post_init__(self) -> None:
        width = _require_int("width", self.width)
        if not 1 <= width <= MAX_WIDTH:
            raise ValueError(f"width must be between 1 and {MAX_WIDTH}, not {width}")
        int_bits = _require_int("int_bits", self.int_bits)
        if not -MAX_BINARY_POINT <= int_bits <= MAX_BINARY_POINT or abs(width - int_bits) > MAX_BINARY_POINT:
            raise ValueError(
                f"int_bits must be between {width - MAX_BINARY_POINT} and {MAX_BINARY_POINT} for width {width} "
                f"(|int_bits| and |frac_bits| <= {MAX_BINARY_POINT}), not {int_bits}"
            )
        if not isinstance(self.signed, bool):
            raise ValueError(f"signed must be True or False, not {self.signed!r}")
        object.__setattr__(self, "quant", Quant.from_name(self.quant))
        object.__setattr__(self, "overflow", Overflow.from_name(self.overflow))
        sat_bits = _require_int("sat_bits", self.sat_bits)
        if not 0 <= sat_bits <= width:
            raise ValueError(f"sat_bits must be between 0 and width ({width}), not {sat_bits}")
        if sat_bits and not self.overflow.wraps:
            raise ValueError(
                f"sat_bits applies to AP_WRAP and AP_WRAP_SM only, not {self.overflow.cpp} (sat_bits={sat_bits})"
            )
        if self.overflow is Overflow.WRAP_SM and not self.signed:
            raise ValueError("overflow AP_WRAP_SM needs a signed format, not ap_ufixed")

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def frac_bits(self) -> int:
        """Number of fraction bits, ``width - int_bits`` (negative when the LSB weighs more than 1)."""
        return self.width - self.int_bits

    @property
    def lsb(self) -> float:
        """Weight of one code step, ``2**-frac_bits``."""
        return 2.0**-self.frac_bits

    @property
    def min_code(self) -> int:
        """Smallest integer code of the type (``-2**(width-1)`` signed, 0 unsigned)."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        """Largest integer code of the type."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min(self) -> float:
        """Smallest value of the type. A cast with AP_SAT_SYM never produces it for signed formats (see docs)."""
        return self.min_code * self.lsb

    @property
    def max(self) -> float:
        """Largest value of the type."""
        return self.max_code * self.lsb

    # ----------------------------------------------------------------------------------------------- C++ names
    def __str__(self) -> str:
        name = "ap_fixed" if self.signed else "ap_ufixed"
        args = [str(self.width), str(self.int_bits)]
        tail = [self.quant.cpp, self.overflow.cpp, str(self.sat_bits)]
        # C++ template arguments are positional: keep everything up to the last non-default one.
        defaults = [Quant.TRN.cpp, Overflow.WRAP.cpp, "0"]
        keep = len(tail)
        while keep and tail[keep - 1] == defaults[keep - 1]:
            keep -= 1
        return f"{name}<{','.join(args + tail[:keep])}>"

    @classmethod
    def parse(cls, text: str) -> FixedFormat:
        """Read a C++ type: ``ap_fixed<8,3,AP_RND,AP_SAT>``, ``ap_ufixed<6,2>``, ``ap_int<8>``, ``ap_uint<4>``."""
        if not isinstance(text, str):
            raise ValueError(f"a fixed-point type must be given as a string, not {text!r}")
        match = _TYPE_RE.match(text)
        if match is None:
            raise ValueError(
                f"cannot parse {text!r} as a fixed-point type: expected e.g. 'ap_fixed<8,3,AP_RND,AP_SAT>', "
                "'ap_ufixed<6,2>' or 'ap_int<8>'"
            )
        kind = match.group("kind")
        args = [a.strip() for a in match.group("args").split(",")]
        if kind in ("ap_int", "ap_uint"):
            if len(args) != 1:
                raise ValueError(f"{kind} takes exactly one argument (the width), got {len(args)} in {text!r}")
            width = _parse_int("width", args[0], text)
            try:
                return cls(width, width, signed=kind == "ap_int")
            except ValueError as e:
                raise ValueError(f"{e} (in {text!r})") from None
        if not 2 <= len(args) <= 5:
            raise ValueError(f"{kind} takes 2 to 5 arguments (W, I, Q, O, N), got {len(args)} in {text!r}")
        width = _parse_int("width", args[0], text)
        int_bits = _parse_int("int_bits", args[1], text)
        sat_bits = _parse_int("sat_bits", args[4], text) if len(args) > 4 else 0
        try:
            quant = Quant.from_name(args[2]) if len(args) > 2 else Quant.TRN
            overflow = Overflow.from_name(args[3]) if len(args) > 3 else Overflow.WRAP
            return cls(width, int_bits, kind == "ap_fixed", quant, overflow, sat_bits)
        except ValueError as e:  # name the text the bad field came from
            raise ValueError(f"{e} (in {text!r})") from None


_TYPE_RE = re.compile(r"^\s*(?P<kind>ap_fixed|ap_ufixed|ap_int|ap_uint)\s*<(?P<args>[^<>]*)>\s*$")


def _parse_int(field: str, token: str, text: str) -> int:
    try:
        return int(token, 10)
    except ValueError:
        raise ValueError(f"{field} must be an integer, not {token!r} (in {text!r})") from None
