"""Units that move values in the folded streaming Verilog (:mod:`qfx.rtl.stream`): concatenations (word by word
along channels, or runs of words along rows and columns), zero padding, nearest-neighbour upsampling and the
re-ordering of a whole tensor (relayout), with the words, orders and parameters of the streaming HLS units
(hls/include/qfx/stream/common.h). Templates: hls/templates/rtl/stream/{concat,pad,upsample,relayout}.v.j2.

A concatenation's values are exact in the union of its inputs' formats and go through ``qfx_cast`` to its output
format (the last of a chain of two-input units assigns to the node's output format, as the HLS unit does); pad,
upsample and relayout move codes unchanged (the streaming design follows them with a cast unit where the output
format differs).
"""

from __future__ import annotations

from qfx.backends.hls.stream_design import Call, UnsupportedNode
from qfx.format import FixedFormat
from qfx.rtl.stream_common import bits as _bits
from qfx.rtl.stream_common import cast_args as _cast
from qfx.rtl.stream_common import signed_width as _signed_width

__all__ = ["MOVE_UNITS", "RELAYOUT_MAX_VALUES"]

#: A relayout holds its whole tensor in registers and selects each output word with constant wiring: refused above
#: this many values (a large re-ordering belongs in block RAM, which this simple unit does not build).
RELAYOUT_MAX_VALUES = 4096


def _concat(r, call: Call) -> None:
    """``concat`` (channels or vector values, word by word) and ``concat_runs`` (runs of words of raster maps)."""
    a, b, y = call.args
    cfg = r.configs[call.targs[0]]
    fa, fb, acc, out = (FixedFormat.parse(cfg.types[k]) for k in ("a_t", "b_t", "acc_t", "out_t"))
    frac = acc.frac_bits
    if fa.frac_bits > frac or fb.frac_bits > frac:
        raise UnsupportedNode(f"node {call.node}: a concatenated input has more fraction bits than the union format")
    ma = max(abs(fa.min_code), fa.max_code) << (frac - fa.frac_bits)
    mb = max(abs(fb.min_code), fb.max_code) << (frac - fb.frac_bits)
    big = max(ma, mb)
    runs = call.func == "concat_runs"
    ints = cfg.ints
    c = dict(runs=runs, IWA=fa.width, IWB=fb.width, a_signed=fa.signed, b_signed=fb.signed, SA=frac - fa.frac_bits,
             SB=frac - fb.frac_bits, AF=frac, AW=_signed_width(-big, big) + 1, OW=out.width, out_fmt=str(out),
             cast=_cast(out))  # fmt: skip
    if runs:
        c.update(CA=ints["C"], CB=ints["C"], NO=ints["C"], ROWS=ints["ROWS"], RUN_A=ints["RUN_A"],
                 RUN_B=ints["RUN_B"], NB=_bits(ints["RUN_A"] + ints["RUN_B"] - 1))  # fmt: skip
    else:
        c.update(CA=ints["CA"], CB=ints["CB"], NO=ints["CA"] + ints["CB"])
    module = r.module(call.node, "concat")
    r.render("concat", module, u=dict(node=call.node, op=call.func, module=module), c=c)
    r.unit(module, call.node, call.func, [("s", r.read(a)), ("s2", r.read(b)), ("m", y.name)])


def _pad(r, call: Call) -> None:
    x, y = call.args
    ints = r.configs[call.targs[0]].ints
    pt, pl, h_in, w_in = ints["PAD_T"], ints["PAD_L"], ints["H_IN"], ints["W_IN"]
    terms = [f"h >= {pt}" if pt else "", f"h < {pt + h_in}" if pt + h_in < ints["H_OUT"] else "",
             f"w >= {pl}" if pl else "", f"w < {pl + w_in}" if pl + w_in < ints["W_OUT"] else ""]  # fmt: skip
    p = dict(C=ints["C"], H_IN=h_in, W_IN=w_in, H_OUT=ints["H_OUT"], W_OUT=ints["W_OUT"], PT=pt, PL=pl,
             PW=r.bits(x), HB=_bits(ints["H_OUT"] - 1), WB=_bits(ints["W_OUT"] - 1),
             in_map=" && ".join(t for t in terms if t) or "1'b1")  # fmt: skip
    r.simple(call, "pad", p, x, y, key="p")


def _upsample(r, call: Call) -> None:
    x, y = call.args
    ints = r.configs[call.targs[0]].ints
    w_in = ints["W_IN"]
    p = dict(C=ints["C"], H_IN=ints["H_IN"], W_IN=w_in, SH=ints["SH"], SW=ints["SW"], PW=r.bits(x),
             CB=_bits(w_in - 1), AB=_bits(2 * w_in - 1), KB=_bits(ints["SW"] - 1),
             RB=_bits(ints["SH"] - 1))  # fmt: skip
    r.simple(call, "upsample", p, x, y, key="p")


def _relayout(r, call: Call) -> None:
    x, y, idx_name = call.args
    n, iw = x.size, FixedFormat.parse(x.ctype).width
    if n > RELAYOUT_MAX_VALUES:
        raise UnsupportedNode(f"node {call.node}: re-ordering {n} values (more than {RELAYOUT_MAX_VALUES}) is not "
                              "rendered in Verilog: the relayout unit keeps the whole tensor in registers")  # fmt: skip
    idx = [int(v) for v in r.constants[idx_name].values]
    words = [(k, [f"held[{idx[k * y.word + c] * iw} +: {iw}]" for c in reversed(range(y.word))])
             for k in range(n // y.word)]  # fmt: skip
    p = dict(N=n, IW=iw, WI=x.word, WO=y.word, words=words, WCB=_bits(n // x.word - 1), RCB=_bits(n // y.word - 1))
    r.simple(call, "relayout", p, x, y, key="p")


MOVE_UNITS = {"concat": _concat, "concat_runs": _concat, "pad": _pad, "upsample": _upsample, "relayout": _relayout}
