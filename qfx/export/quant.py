"""Which ap_fixed formats a QONNX ``Quant`` node expresses exactly, and how (checked against qonnx's code).

qonnx computes ``Quant`` as ``round(clip(x / scale + zeropt, min_int, max_int))``: clipping first and rounding
after equals ap_fixed's round-then-saturate because the bounds are integers. With ``scale = 2**-F``, zero point 0:

* AP_SAT is ``narrow=0``; signed AP_SAT_SYM is ``narrow=1`` (unsigned AP_SAT_SYM is plain saturation);
* ``FLOOR`` is AP_TRN, ``DOWN`` (numpy's fix) is AP_TRN_ZERO, ``ROUND`` (numpy's half-to-even) is AP_RND_CONV;
* ``HALF_UP``/``HALF_DOWN`` are computed as ``floor(|x| + 0.5)`` in the tensor's dtype, which rounds wrongly
  when ``|x| + 0.5`` is not representable (e.g. 0.5 - 2**-54 in float64), so AP_RND_INF/AP_RND_ZERO use FixedCast;
* a signed 1-bit Quant is bipolar (+-1), not ap_fixed<1,...> (-1 or 0), so it uses FixedCast too;
* qonnx returns Quant's output as float32, so formats wider than 24 bits use FixedCast (float64 output).

Wrap-around overflow, AP_SAT_ZERO, AP_RND, AP_RND_MIN_INF and saturation bits have no Quant equivalent.
"""

from __future__ import annotations

import numpy as np

from qfx.export.ops import fits_float32
from qfx.format import FixedFormat, Overflow, Quant

__all__ = ["QUANT_ROUNDING", "constant_format", "quant_node_spec"]

#: ap_fixed rounding -> the QONNX rounding_mode that computes it exactly.
QUANT_ROUNDING = {Quant.TRN: "FLOOR", Quant.TRN_ZERO: "DOWN", Quant.RND_CONV: "ROUND"}


def quant_node_spec(fmt: FixedFormat) -> dict | None:
    """Attributes (signed, narrow, rounding_mode) of the Quant node equal to casting into ``fmt``, or None."""
    if fmt.quant not in QUANT_ROUNDING or fmt.sat_bits or (fmt.signed and fmt.width == 1) or not fits_float32(fmt):
        return None
    if fmt.overflow is Overflow.SAT or (fmt.overflow is Overflow.SAT_SYM and not fmt.signed):
        narrow = 0
    elif fmt.overflow is Overflow.SAT_SYM:
        narrow = 1
    else:
        return None
    return {"signed": int(fmt.signed), "narrow": narrow, "rounding_mode": QUANT_ROUNDING[fmt.quant]}


def constant_format(values: np.ndarray, fmt: FixedFormat, name: str) -> FixedFormat:
    """The format a quantized constant is declared in: ``fmt`` with plain saturation and half-to-even rounding
    (the values are already on its grid, so any mode leaves them alone), one bit wider for a signed 1-bit type."""
    codes = np.asarray(values, dtype=np.float64) * 2.0**fmt.frac_bits
    if (
        not np.array_equal(codes, np.round(codes))
        or codes.min(initial=0) < fmt.min_code
        or codes.max(initial=0) > fmt.max_code
    ):
        raise ValueError(f"constant {name}: its values are not all in {fmt}")
    if fmt.signed and fmt.width == 1:
        fmt = FixedFormat(2, fmt.int_bits + 1, True)
    return FixedFormat(fmt.width, fmt.int_bits, fmt.signed, Quant.RND_CONV, Overflow.SAT)
