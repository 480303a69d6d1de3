"""Fold units of binarized networks (Brevitas' bnn_pynq) for the streaming Verilog backend: Threshold nodes.

A Threshold node (``y = values[c, n]``, ``n`` the number of the channel's ascending thresholds the input code
reaches) becomes a fold unit (hls/templates/rtl/stream/fold.v.j2) with PE channels per clock and SIMD 1: the word
of W channels takes W / PE clocks, and ROM row ``r`` holds, for each of its PE lanes (channel r * PE + p), the K
thresholds (codes of the input format with two more integer bits, so "never fires" fits) and the K + 1 values
(codes of the accumulator format), packed lane by lane. A fully unrolled unit (one row) holds them as constants.
XNOR-popcount dense and conv layers are fold units of kind "xnor" (:meth:`qfx.rtl.stream._Renderer.mac`).
"""

from __future__ import annotations

import numpy as np

from qfx.backends.hls.stream_design import Call, UnsupportedNode
from qfx.format import FixedFormat

__all__ = ["bits_of", "pack_rows", "threshold_rows", "threshold_unit"]


def bits_of(codes: np.ndarray, width: int) -> np.ndarray:
    """The two's complement bits (LSB first) of integer ``codes`` (..., n) in ``width`` bits each: (..., n * width)."""
    codes = np.asarray(codes, dtype=np.int64)
    bits = (codes[..., None] >> np.arange(width, dtype=np.int64)) & 1
    return bits.reshape(*codes.shape[:-1], -1).astype(np.uint8)


def pack_rows(bits: np.ndarray) -> list[int]:
    """ROM words (Python ints) of a (rows, bits) array, bit 0 first."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def threshold_rows(thresholds: np.ndarray, values: np.ndarray, pe: int, t_width: int, v_width: int) -> list[int]:
    """ROM words of a threshold unit: row ``r``, lane ``p`` (channel ``r * pe + p``) at bit ``p * L`` with
    ``L = K * t_width + (K + 1) * v_width``: threshold ``j`` at ``j * t_width``, value ``j`` at
    ``K * t_width + j * v_width`` (two's complement)."""
    lanes = np.concatenate([bits_of(thresholds, t_width), bits_of(values, v_width)], axis=-1)  # (C, L)
    return pack_rows(lanes.reshape(thresholds.shape[0] // pe, -1))


def threshold_unit(r, call: Call) -> None:
    """Render the ``threshold`` call of the streaming design with the renderer ``r`` (a fold unit)."""
    x, y, t_name, v_name = call.args
    cfg = r.configs[call.targs[0]]
    ints = cfg.ints
    w, k, pe, period = ints["W"], ints["K"], ints["PE"], ints["PERIOD"]
    if period != w:
        raise UnsupportedNode(f"node {call.node}: thresholds that do not repeat every stream word are not rendered "
                              "in Verilog yet")  # fmt: skip
    in_fmt, t_fmt, acc = (FixedFormat.parse(cfg.types[n]) for n in ("in_t", "t_t", "acc_t"))
    if t_fmt.frac_bits != in_fmt.frac_bits:
        raise UnsupportedNode(f"node {call.node}: thresholds and input codes differ in fraction bits")
    thresholds = np.asarray(r.constants[t_name].values).reshape(period, k)
    values = np.asarray(r.constants[v_name].values).reshape(period, k + 1)
    t_width, v_width = t_fmt.width, acc.width
    words = threshold_rows(thresholds, values, pe, t_width, v_width)
    lane_bits = k * t_width + (k + 1) * v_width
    extra = dict(K=k, TW=t_width, VW=v_width, LB=lane_bits, CB=max(1, k.bit_length()), AF=acc.frac_bits,
                 v_signed=acc.signed)  # fmt: skip
    r.fold(call, cfg, r.read(x), w, in_fmt, "threshold", y, w, pe, 1, w // pe, 1, lambda n, s_, p, j: n * pe + p,
           acc_bound=1 << v_width, rows=(words, pe * lane_bits), extra=extra)  # fmt: skip
