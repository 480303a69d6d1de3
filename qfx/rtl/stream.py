"""IR graph + hardware plan -> folded streaming Verilog: one unit per layer, joined by valid/ready streams.

The units are those of the streaming HLS design (:func:`qfx.backends.hls.stream_units.lower_stream`, which this
module reuses: the same stream words and orders, ROM rows, FIFO depths); this module only renders them as
Verilog from the templates of hls/templates/rtl/stream:

- a convolution or pool is a sliding-window unit (row banks, one window column per clock) feeding a fold unit;
- a dense layer is a collector (its input words into one vector) feeding a fold unit;
- a fold unit computes PE outputs x SIMD inputs per clock over NF x SF clocks per vector, weights read from a
  ``$readmemh`` ROM (one row per clock; Yosys maps it to LUT RAM or block RAM) or, when the layer is fully
  unrolled (one row), constants; K-hot weights are digits {shift, sign}: shift-and-add, no multiplier; +-1
  (bipolar) layers keep one bit per weight: XNOR and popcount, no multiplier;
- a Threshold node is a fold unit too (PE channels per clock, SIMD 1): per channel a ROM row of its thresholds
  and output values (:mod:`qfx.rtl.stream_bnn`);
- element-wise units (cast, ReLU, clip, leaky ReLU, affine, add) take a whole word, or the plan's PE lanes of it,
  per clock; fan-out is a dup unit;
- units that move values (concat, concat_runs, pad, upsample, relayout) are in :mod:`qfx.rtl.stream_move`;
- a max pool's padding is the input format's least code (it never wins), a convolution's or sum pool's zero;
- a stream whose planned depth exceeds 2 words gets a ``qfx_fifo`` (hls/rtl/qfx_fifo.v).

Every sum is exact (accumulators as wide as the bound of the sum) and every output goes through ``qfx_cast``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qfx.backends.hls.stream_design import Call, Stream, StreamDesign, UnsupportedNode
from qfx.format import FixedFormat
from qfx.rtl.stream_bnn import bits_of, pack_rows, threshold_unit
from qfx.rtl.stream_common import bits as _bits
from qfx.rtl.stream_common import cast_args as _cast
from qfx.rtl.stream_common import fmt as _fmt
from qfx.rtl.stream_common import lit as _lit
from qfx.rtl.stream_common import signed_width as _signed_width
from qfx.rtl.stream_common import tree as _tree
from qfx.rtl.stream_move import MOVE_UNITS
from qfx.rtl.stream_window import conv2d_unit, pool2d_unit

__all__ = ["RtlDesign", "UnsupportedNode", "render_design"]

PIPELINED = ("mac", "xnor", "sign", "sum")  # fold units whose terms and adder tree are register stages
SUPPORTED = ("dense", "dense_xnor", "conv2d", "pool2d", "global_sum", "clip", "leaky_relu", "affine", "add", "gate",
             "lookup", "softmax", "argmax", "dup", "threshold", *MOVE_UNITS)  # fmt: skip


@dataclass
class RtlDesign:
    """Modules (name -> Verilog text), ROM images (file -> text), the top's context."""

    modules: dict[str, str] = field(default_factory=dict)
    roms: dict[str, str] = field(default_factory=dict)
    units: list[dict] = field(default_factory=list)
    streams: list[dict] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    output: str | None = None  # the stream the top's output port reads (None: the output tensor's)
    multipliers: int = 0  # `*` operators in the units (PE x SIMD per folded MAC with plain weights, affine lanes)


def _lane_groups(p: int, values: list[dict], e: dict) -> dict:
    """Lane ``p`` of a time-multiplexed element-wise unit: the constants of the word's values ``values`` (one per
    clock of the word, selected by the group counter). K-hot digits become (sign, shift) selections: 2'd1 adds,
    2'd3 subtracts, 2'd0 is an unused digit."""
    ndigits = max((len(v["digits"]) for v in values if v.get("digits") is not None), default=0)
    max_shift = max((sh for v in values for _, sh in (v.get("digits") or [])), default=0)
    e["SHW"] = max(e.get("SHW", 1), max_shift.bit_length())
    groups = []
    for v in values:
        digits = [("2'd1" if sg > 0 else "2'd3", sh) for sg, sh in (v.get("digits") or [])]
        digits += [("2'd0", 0)] * (ndigits - len(digits))
        groups.append(dict(shift=v.get("shift") or "0", scale=v.get("scale_code"), digits=digits))
    has_scale = any(v.get("scale_code") is not None for v in values)
    return dict(i=p, groups=groups, ndigits=ndigits, scale="k" if has_scale else None)


class _Renderer:
    def __init__(self, design: StreamDesign, env, prefix: str, bipolar: frozenset[str] = frozenset()) -> None:
        self.d = design
        self.bipolar = bipolar  # nodes whose inputs and weights are all +-1 (XNOR-popcount)
        self.env = env
        self.prefix = prefix
        self.out = RtlDesign()
        self.configs = {c.name: c for c in design.configs}
        self.constants = {c.name: c for c in design.constants}
        self.consumer: dict[str, str] = {}  # stream name -> the wire its reader uses
        self.count = 0

    # ------------------------------------------------------------------------------------------- helpers
    def module(self, node: str, what: str) -> str:
        self.count += 1
        return f"{self.prefix}_u{self.count}_{what}"

    def bits(self, s: Stream) -> int:
        return s.word * _fmt(s.ctype).width

    def read(self, s: Stream) -> str:
        return self.consumer[s.name]

    def add_stream(self, s: Stream, comment: str) -> None:
        fifo = s.depth if s.depth > 2 else 0
        self.out.streams.append(dict(name=s.name, bits=self.bits(s), fifo=fifo, comment=comment))
        self.consumer[s.name] = f"{s.name}_f" if fifo else s.name

    def internal(self, name: str, bits: int, comment: str) -> str:
        self.out.streams.append(dict(name=name, bits=bits, fifo=0, comment=comment))
        self.consumer[name] = name
        return name

    def render(self, template: str, module: str, **ctx) -> None:
        self.out.modules[module] = self.env.get_template(f"stream/{template}.v.j2").render(**ctx)

    def unit(self, module: str, node: str, op: str, ports: list[tuple[str, str]]) -> None:
        self.out.units.append(dict(module=module, node=node, op=op, ports=ports))

    # --------------------------------------------------------------------------------------------- units
    def fold(self, call: Call, cfg, x_name: str, vec_values: int, in_fmt: FixedFormat, kind: str, y: Stream,
             n_out: int, pe: int, simd: int, nf: int, sf: int, index, weights=None, bias=None,
             acc_bound: int = 0, align: int = 0, rows: tuple[list[int], int] | None = None,
             extra: dict | None = None) -> str:  # fmt: skip
        """The fold unit of ``call``: ``index(nf, sf, pe, s)`` is the vector position lane (pe, s) reads. ``kind``:
        "mac" (``weights``: codes or K-hot digits), "xnor" (``weights``: bits, +-1 operands), "sign" (``weights``:
        one bit per +-1 weight or two per ternary one, any inputs), "threshold" (``rows``: the packed ROM words and
        their width), "max" or "sum" (no weights)."""
        out_fmt = _fmt(cfg.types["out_t"])
        module = self.module(call.node, "fold")
        iw = in_fmt.width
        shared = all(index(n, s_, 0, k) == index(n, s_, p, k) for n in range(nf) for s_ in range(sf)
                     for p in range(pe) for k in range(simd))  # fmt: skip
        by_nf = any(index(n, s_, p, k) != index(0, s_, p, k) for n in range(nf) for s_ in range(sf)
                    for p in range(pe) for k in range(simd))  # fmt: skip
        sel, names = [], {}
        for p in range(1 if shared else pe):
            for k in range(simd):
                name = f"{p}_{k}"
                if by_nf:
                    cases = [(n * sf + s_, index(n, s_, p, k)) for n in range(nf) for s_ in range(sf)]
                    key = "it"
                else:
                    cases = [(s_, index(0, s_, p, k)) for s_ in range(sf)]
                    key = "sf"
                single = cases[0][1] if all(c[1] == cases[0][1] for c in cases) else None
                sel.append(dict(name=name, key=key, cases=cases, single=single))
                names[(p, k)] = name
        f = dict(NO=n_out, NV=vec_values, IW=iw, PE=pe, SIMD=simd, NF=nf, SF=sf, kind=kind, khot=0, rom=None,
                 const_width=0, IB=_bits(nf * sf), out_fmt=str(out_fmt), OW=out_fmt.width, cast=_cast(out_fmt),
                 in_signed=in_fmt.signed, sel=sel, bias_single=None, chunk=False)  # fmt: skip
        if kind == "mac":
            codes, khot, w_fmt, shifts = weights
            f.update(khot=khot, ALIGN=align, AF=cfg_frac(cfg), w_signed=w_fmt.signed if w_fmt else True)
            if khot:
                shb = _bits(int(shifts.max()) if shifts.size else 0)
                f.update(SHB=shb, DB=shb + 2)
                signs, sh = codes  # (rows, pe, simd, k)
                digits = np.where(signs == 0, 0, ((np.where(signs > 0, 1, 3) << shb) | sh))
                words, width = pack_rows(bits_of(digits.reshape(nf * sf, -1), shb + 2)), pe * simd * khot * (shb + 2)
            else:
                f.update(WB=w_fmt.width)
                words = pack_rows(bits_of(np.asarray(codes).reshape(nf * sf, -1), w_fmt.width))
                width = pe * simd * w_fmt.width
                self.out.multipliers += pe * simd
            rows = (words, width)
        elif kind in ("xnor", "sign"):  # one bit per weight (1: +1, 0: -1), or two {negative, positive} (ternary)
            wb = 2 if np.max(weights) > 1 else 1
            f.update(ALIGN=align, AF=cfg_frac(cfg), WB=wb)
            rows = (pack_rows(bits_of(np.asarray(weights).reshape(nf * sf, -1), wb)), pe * simd * wb)
        elif kind != "threshold":
            f.update(AF=in_fmt.frac_bits)
        if rows is not None:
            words, width = rows
            if len(words) == 1:
                f.update(const_width=width, const_hex=format(words[0], "x"))
            else:
                file = f"{module}.mem"
                digits = (width + 3) // 4
                self.out.roms[file] = "".join(format(w, f"0{digits}x") + "\n" for w in words)
                f["rom"] = dict(file=file, width=width)
        f.update(extra or {})
        aw = _signed_width(-acc_bound, acc_bound) + 1
        f["AW"] = aw
        # Pipelined sums: products and K-hot shift-adds are registered (not XNOR bits, +-1 selections or a sum pool's
        # inputs: each would take LUTs of its own, where unregistered they merge into the adder tree's first LUTs),
        # then (over SIMD > 1 terms) the adder tree; the accumulator, cast and output follow. Max and threshold units
        # compare in one stage.
        f["pipe_terms"] = int(kind == "mac")
        f["pipe_tree"] = int(kind in PIPELINED and simd > 1)
        term = "tq" if f["pipe_terms"] else "t"
        lanes = []
        for p in range(pe):
            terms = [dict(s=k, x=names[(0 if shared else p, k)], w=p * simd + k) for k in range(simd)]
            lane = dict(pe=p, terms=terms, tree=_tree([f"{term}{p}_{k}" for k in range(simd)]))
            if bias is not None:
                lane["bias"] = [(n, _lit(int(bias[n * pe + p]), aw)) for n in range(nf)]
                lane["bias_single"] = lane["bias"][0][1]
            else:
                lane["bias"] = [(n, _lit(0, aw)) for n in range(nf)]
                lane["bias_single"] = _lit(0, aw)
            lanes.append(lane)
        f["lanes"] = lanes
        f["bias_single"] = True if nf == 1 else None
        self.render("fold", module, u=dict(node=call.node, op=call.func, module=module), f=f)
        self.unit(module, call.node, call.func, [("s", x_name), ("m", y.name)])
        return module

    def mac(self, call: Call, x: Stream, y: Stream, vec: str, vec_values: int, n_out: int, index,
            xnor: bool = False, chunk: bool = False) -> None:  # fmt: skip
        """The fold unit of a dense or conv layer; ``xnor``: +-1 inputs and weights (XNOR-popcount); ``chunk``: its
        input is streamed by a window generator (``index`` is then the position within each word)."""
        cfg = self.configs[call.targs[0]]
        ints = cfg.ints
        in_fmt = _fmt(cfg.types["in_t"])
        acc = _fmt(cfg.types["acc_t"])
        pe, simd = ints["PE"], ints["SIMD"]
        dense = call.func in ("dense", "dense_xnor")
        n_in = vec_values if dense else ints["C_IN"] // ints["GROUPS"] * ints["KH"] * ints["KW"]
        nf, sf = n_out // pe, n_in // simd
        wconst = self.constants[call.args[2]]
        bconst = self.constants[call.args[3]]
        b_fmt = _fmt(cfg.types["b_t"])
        khot = ints.get("K", 0)
        kind = "xnor" if xnor else "mac"
        if xnor:
            p_frac = (_fmt(cfg.types["p_t"]).frac_bits if "p_t" in cfg.types
                      else in_fmt.frac_bits + _fmt(cfg.types["w_t"]).frac_bits)  # fmt: skip
            align = acc.frac_bits - p_frac
            if align < 0:
                raise UnsupportedNode(f"node {call.node}: the product has more fraction bits than the accumulator")
            weights = (wconst.values.reshape(nf * sf, pe, simd) > 0).astype(np.int64)
            w_bound_scale = np.full(weights.shape, 1 << align)
        elif khot:
            digits = wconst.values.reshape(nf * sf, pe, simd, khot, 2)
            signs, exps = digits[..., 0], digits[..., 1]
            sh = exps + acc.frac_bits - in_fmt.frac_bits
            if (sh[signs != 0] < 0).any():
                raise UnsupportedNode(f"node {call.node}: a K-hot digit has fewer fraction bits than the accumulator")
            sh = np.where(signs != 0, sh, 0)
            weights = ((signs, sh), khot, None, sh)
            wmax = np.abs(digits[..., 0] * np.exp2(np.where(signs != 0, sh, 0))).sum(axis=-1)
            align = 0
            w_bound_scale = wmax  # in accumulator LSBs per input LSB
        else:
            w_fmt = _fmt(cfg.types["w_t"])
            align = acc.frac_bits - in_fmt.frac_bits - w_fmt.frac_bits
            if align < 0:
                raise UnsupportedNode(f"node {call.node}: the product has more fraction bits than the accumulator")
            codes = wconst.values.reshape(nf * sf, pe, simd)
            weights = (codes, 0, w_fmt, None)
            if np.all(np.abs(codes) <= 1):  # binary / ternary weights: add, subtract or skip, no multiplier
                kind, weights = "sign", (codes > 0) + 2 * (codes < 0) if (codes == 0).any() else (codes > 0)
            w_bound_scale = np.abs(codes.astype(np.float64)) * (1 << align)
        b_shift = acc.frac_bits - b_fmt.frac_bits
        if b_shift < 0:
            raise UnsupportedNode(f"node {call.node}: the bias has more fraction bits than the accumulator")
        bias = [int(v) << b_shift for v in bconst.values]
        x_max = 1 if xnor else max(abs(in_fmt.min_code), abs(in_fmt.max_code))
        # bound of every partial sum: |bias| + sum |w| * max |x| (per output, over all its terms)
        per_out = w_bound_scale.reshape(nf, sf, pe, simd).sum(axis=(1, 3)).reshape(-1) * x_max
        bound = int(max(abs(b) for b in bias) + per_out.max()) + 1
        self.fold(call, cfg, vec, vec_values, in_fmt, kind, y, n_out, pe, simd, nf, sf, index, weights, bias, bound,
                  align, extra=dict(PB=_bits(simd), chunk=chunk))  # fmt: skip

    def u_conv2d(self, call: Call) -> None:
        conv2d_unit(self, call)

    def u_pool2d(self, call: Call) -> None:
        pool2d_unit(self, call)

    # ------------------------------------------------------------------------------------------- per call
    def call(self, call: Call) -> None:
        if call.func not in SUPPORTED:
            raise UnsupportedNode(f"node {call.node}: the streaming Verilog backend has no {call.func} unit yet")
        if call.func in MOVE_UNITS:
            MOVE_UNITS[call.func](self, call)
        else:
            getattr(self, f"u_{call.func}")(call)

    def u_dup(self, call: Call) -> None:
        x, a, b = call.args
        module = self.module(call.node, "dup")
        self.render("dup", module, u=dict(node=call.node, module=module), d=dict(WW=self.bits(x)))
        self.unit(module, call.node, "dup", [("s", self.read(x)), ("m0", a.name), ("m1", b.name)])

    def u_dense_xnor(self, call: Call) -> None:
        self.u_dense(call, xnor=True)

    def u_threshold(self, call: Call) -> None:
        threshold_unit(self, call)

    def u_dense(self, call: Call, xnor: bool = False) -> None:
        x, y = call.args[0], call.args[1]
        cfg = self.configs[call.targs[0]]
        ints = cfg.ints
        module = self.module(call.node, "collect")
        count = ints["N_IN"] // ints["IN_W"]
        self.render("collect", module, u=dict(node=call.node, module=module),
                    c=dict(COUNT=count, WW=self.bits(x), CB=_bits(count)))  # fmt: skip
        vec = self.internal(f"{module}_v", ints["N_IN"] * _fmt(cfg.types["in_t"]).width, f"{call.node}: input vector")
        self.unit(module, call.node, "collect", [("s", self.read(x)), ("m", vec)])
        simd = ints["SIMD"]
        self.mac(call, x, y, vec, ints["N_IN"], ints["N_OUT"], lambda n, s_, p, k: s_ * simd + k, xnor)

    def elementwise(self, call: Call, kind: str, e: dict, inputs: list[tuple[str, Stream]], y: Stream) -> None:
        cfg = self.configs[call.targs[0]]
        out_fmt = _fmt(cfg.types["out_t"])
        module = self.module(call.node, kind)
        pe = math.gcd(cfg.ints.get("PE", y.word), y.word)
        groups = y.word // pe
        e.update(W=y.word, OW=out_fmt.width, out_fmt=str(out_fmt), cast=_cast(out_fmt), kind=kind, PE=pe, G=groups,
                 CW=max(1, (groups - 1).bit_length()))  # fmt: skip
        e.setdefault("lanes", [dict(i=i, digits=None, scale=None, shift=None) for i in range(y.word)])
        if groups > 1:  # PE lanes, each computing the word's values p, PE + p, 2 PE + p, ... over G clocks
            e["lanes"] = [_lane_groups(p, [e["lanes"][g * pe + p] for g in range(groups)], e) for p in range(pe)]
        self.out.multipliers += sum(1 for lane in e["lanes"] if lane.get("scale") is not None)
        self.out.multipliers += len(e["lanes"]) if e.get("MUL") else 0
        self.render("elementwise", module, u=dict(node=call.node, op=call.func, module=module), e=e)
        self.unit(module, call.node, call.func, [*((p, self.read(s)) for p, s in inputs), ("m", y.name)])

    def u_clip(self, call: Call) -> None:
        x, y = call.args
        cfg = self.configs[call.targs[0]]
        ints = cfg.ints
        in_fmt, acc = _fmt(cfg.types["in_t"]), _fmt(cfg.types["acc_t"])
        frac = max(in_fmt.frac_bits, acc.frac_bits)
        lo = ints["LO_CODE"] << (frac - acc.frac_bits) if ints["LO"] else None
        hi = ints["HI_CODE"] << (frac - acc.frac_bits) if ints["HI"] else None
        big = max(abs(in_fmt.min_code), in_fmt.max_code) << (frac - in_fmt.frac_bits)
        aw = _signed_width(-max(big, abs(lo or 0), abs(hi or 0)), max(big, abs(lo or 0), abs(hi or 0))) + 1
        e = dict(IW=in_fmt.width, in_signed=in_fmt.signed, AW=aw, AF=frac, SA=frac - in_fmt.frac_bits,
                 lo=None if lo is None else _lit(lo, aw), hi=None if hi is None else _lit(hi, aw),
                 lo_above_hi=lo is not None and hi is not None and lo > hi)  # fmt: skip
        self.elementwise(call, "clip", e, [("s", x)], y)

    def u_leaky_relu(self, call: Call) -> None:
        """``x < 0 ? x * alpha : x``, exact in the accumulator's fraction bits (a shift when alpha is a power of two,
        else a multiplier per lane), then qfx_cast: the plan's PE lanes, as the other element-wise units."""
        x, y = call.args
        cfg = self.configs[call.targs[0]]
        in_fmt, a_fmt, acc = (_fmt(cfg.types[k]) for k in ("in_t", "alpha_t", "acc_t"))
        alpha, frac = cfg.ints["ALPHA_CODE"], acc.frac_bits
        nsa = frac - in_fmt.frac_bits - a_fmt.frac_bits
        if nsa < 0:
            raise UnsupportedNode(f"node {call.node}: x * alpha has more fraction bits than the accumulator")
        x_max = max(abs(in_fmt.min_code), abs(in_fmt.max_code))
        bound = max(x_max << (frac - in_fmt.frac_bits), (x_max * abs(alpha)) << nsa) + 1
        aw = _signed_width(-bound, bound) + 1
        shift = alpha > 0 and alpha & (alpha - 1) == 0  # a power of two: no multiplier
        e = dict(IW=in_fmt.width, in_signed=in_fmt.signed, AW=aw, AF=frac, SA=frac - in_fmt.frac_bits, NSA=nsa,
                 NSH=alpha.bit_length() - 1 + nsa if shift else 0,
                 alpha=None if shift else _lit(alpha, aw))  # fmt: skip
        self.elementwise(call, "leaky", e, [("s", x)], y)
        if not shift:
            self.out.multipliers += math.gcd(cfg.ints.get("PE", y.word), y.word)

    def u_affine(self, call: Call) -> None:
        x, y, s_name, t_name = call.args
        cfg = self.configs[call.targs[0]]
        ints = cfg.ints
        if ints["PERIOD"] != x.word:
            raise UnsupportedNode(f"node {call.node}: per-position constants that do not repeat every word are not "
                                  "rendered in Verilog yet")  # fmt: skip
        in_fmt, acc = _fmt(cfg.types["in_t"]), _fmt(cfg.types["acc_t"])
        w_fmt = _fmt(cfg.types["w_t"]) if ints["SCALE"] else None
        b_fmt = _fmt(cfg.types["b_t"]) if ints["SHIFT"] else None
        khot = ints["K"]
        scale = self.constants[s_name].values
        shift = self.constants[t_name].values
        prod_frac = in_fmt.frac_bits + (w_fmt.frac_bits if w_fmt else 0)
        frac = max(acc.frac_bits, prod_frac, b_fmt.frac_bits if b_fmt else 0)
        sa = frac - prod_frac
        x_max = max(abs(in_fmt.min_code), abs(in_fmt.max_code))
        lanes, bound = [], 0
        for i in range(x.word):
            lane = dict(i=i, digits=None, scale=None)
            t = int(shift[i]) << (frac - b_fmt.frac_bits) if b_fmt else 0
            if khot and w_fmt:
                d = scale.reshape(x.word, khot, 2)[i]
                digits = [(int(sg), int(ex) + frac - in_fmt.frac_bits) for sg, ex in d if sg != 0]
                if any(sh < 0 for _, sh in digits):
                    raise UnsupportedNode(f"node {call.node}: a K-hot digit is finer than the accumulator")
                lane["digits"] = digits
                mag = sum(1 << sh for _, sh in digits) * x_max
            elif w_fmt:
                lane["scale_value"] = int(scale[i])
                lane["scale_code"] = _lit(int(scale[i]), w_fmt.width)
                mag = abs(int(scale[i])) * x_max << sa
            else:
                mag = x_max << sa
            bound = max(bound, mag + abs(t))
            lane["t"] = t
            lanes.append(lane)
        aw = _signed_width(-bound - 1, bound + 1) + 1
        for lane in lanes:
            lane["shift"] = _lit(lane.pop("t"), aw)
            if "scale_value" in lane:
                lane["scale"] = _lit(lane.pop("scale_value"), aw)
        e = dict(IW=in_fmt.width, in_signed=in_fmt.signed, AW=aw, AF=frac, SA=sa, lanes=lanes,
                 KW=w_fmt.width if w_fmt else 0)  # fmt: skip
        self.elementwise(call, "affine", e, [("s", x)], y)

    def u_add(self, call: Call) -> None:
        a, b, y = call.args
        cfg = self.configs[call.targs[0]]
        fa, fb = _fmt(cfg.types["a_t"]), _fmt(cfg.types["b_t"])
        ma, mb = max(abs(fa.min_code), fa.max_code), max(abs(fb.min_code), fb.max_code)
        if cfg.ints.get("MUL", 0):  # the exact product: F_a + F_b fraction bits, a multiplier per lane
            frac, sa, sb, bound = fa.frac_bits + fb.frac_bits, 0, 0, ma * mb
        else:
            frac = max(fa.frac_bits, fb.frac_bits)
            sa, sb = frac - fa.frac_bits, frac - fb.frac_bits
            bound = (ma << sa) + (mb << sb)
        aw = _signed_width(-bound, bound) + 1
        e = dict(IW=fa.width, IW2=fb.width, in_signed=fa.signed, in2_signed=fb.signed, AW=aw, AF=frac, SA=sa, SB=sb,
                 SUB=bool(cfg.ints.get("SUB", 0)), MUL=bool(cfg.ints.get("MUL", 0)))  # fmt: skip
        self.elementwise(call, "add", e, [("s", a), ("s2", b)], y)

    def table(self, module: str, what: str, codes, width: int) -> str:
        """A $readmemh image of ``codes`` (two's complement in ``width`` bits); its file name."""
        file = f"{module}_{what}.mem"
        mask, digits = (1 << width) - 1, (width + 3) // 4
        self.out.roms[file] = "".join(format(int(v) & mask, f"0{digits}x") + "\n" for v in np.asarray(codes).ravel())
        return file

    def simple(self, call: Call, template: str, e: dict, x: Stream, y: Stream, key: str = "e") -> None:
        module = self.module(call.node, template)
        e = e(module) if callable(e) else e
        self.render(template, module, u=dict(node=call.node, op=call.func, module=module), **{key: e})
        self.unit(module, call.node, call.func, [("s", self.read(x)), ("m", y.name)])

    def u_gate(self, call: Call) -> None:
        """A map times one value per channel: the gate's words loaded, then a multiplier per lane of the map word,
        the gate read by a case on the word's phase within the channel table's period."""
        a, g, y, chan_name = call.args
        cfg = self.configs[call.targs[0]]
        fa, fg, out_fmt = (_fmt(cfg.types[k]) for k in ("a_t", "g_t", "out_t"))
        ints = cfg.ints
        chan = np.asarray(self.constants[chan_name].values).reshape(-1, a.word)  # (P, W): the channel of each lane
        bound = max(abs(fa.min_code), fa.max_code) * max(abs(fg.min_code), fg.max_code)
        aw = _signed_width(-bound, bound) + 1
        e = dict(W=a.word, IW=fa.width, in_signed=fa.signed, GW=g.word, GIW=fg.width, g_signed=fg.signed,
                 C=ints["C"], COUNT=ints["COUNT"], GCOUNT=ints["GCOUNT"], P=len(chan), AW=aw,
                 AF=fa.frac_bits + fg.frac_bits, OW=out_fmt.width, out_fmt=str(out_fmt), cast=_cast(out_fmt),
                 GB=_bits(ints["GCOUNT"]), NB=_bits(ints["COUNT"]), PB=_bits(len(chan)),
                 chan=[[(p, int(chan[p, lane])) for p in range(len(chan))] for lane in range(a.word)])  # fmt: skip
        module = self.module(call.node, "gate")
        self.out.multipliers += a.word
        self.render("gate", module, u=dict(node=call.node, op=call.func, module=module), e=e)
        self.unit(module, call.node, call.func, [("s", self.read(a)), ("s2", self.read(g)), ("m", y.name)])

    def u_global_sum(self, call: Call) -> None:
        x, y = call.args
        cfg = self.configs[call.targs[0]]
        in_fmt, out_fmt = _fmt(cfg.types["in_t"]), _fmt(cfg.types["out_t"])
        c, hw = cfg.ints["C"], cfg.ints["HW"]
        big = max(abs(in_fmt.min_code), in_fmt.max_code) * hw
        e = dict(C=c, HW=hw, IW=in_fmt.width, in_signed=in_fmt.signed, AW=_signed_width(-big, big) + 1,
                 AF=in_fmt.frac_bits, OW=out_fmt.width, out_fmt=str(out_fmt), cast=_cast(out_fmt),
                 NB=_bits(hw))  # fmt: skip
        self.simple(call, "global_sum", e, x, y)

    def u_lookup(self, call: Call) -> None:
        x, y, t_name = call.args
        cfg = self.configs[call.targs[0]]
        in_fmt, acc, out_fmt = (_fmt(cfg.types[k]) for k in ("in_t", "acc_t", "out_t"))
        codes = self.constants[t_name].values

        def ctx(module: str) -> dict:
            return dict(W=x.word, IW=in_fmt.width, in_signed=in_fmt.signed, ENTRIES=len(codes), TW=acc.width,
                        AF=acc.frac_bits, AS=int(acc.signed), OW=out_fmt.width, out_fmt=str(out_fmt),
                        cast=_cast(out_fmt), file=self.table(module, "table", codes, acc.width))  # fmt: skip

        self.simple(call, "lookup", ctx, x, y)

    def u_softmax(self, call: Call) -> None:
        x, y, exp_name, recip_name = call.args
        cfg = self.configs[call.targs[0]]
        t = {k: _fmt(v) for k, v in cfg.types.items()}
        if t["exp_t"].signed or t["recip_t"].signed or t["sum_t"].signed:
            raise UnsupportedNode(f"node {call.node}: signed softmax tables are not rendered in Verilog")
        if t["acc_t"].frac_bits != t["exp_t"].frac_bits + t["recip_t"].frac_bits:
            raise UnsupportedNode(f"node {call.node}: the softmax product is not exact in its accumulator")

        def ctx(module: str) -> dict:
            return dict(N=cfg.ints["N"], IW=t["in_t"].width, in_signed=t["in_t"].signed, EW=t["exp_t"].width,
                        EF=t["exp_t"].frac_bits, RW=t["recip_t"].width, RF=t["recip_t"].frac_bits,
                        XW=t["index_t"].width, SW=t["sum_t"].width, OW=t["out_t"].width, out_fmt=str(t["out_t"]),
                        index_fmt=str(t["index_t"]), cast=_cast(t["out_t"]), index_cast=_cast(t["index_t"]),
                        exp_file=self.table(module, "exp", self.constants[exp_name].values, t["exp_t"].width),
                        recip_file=self.table(module, "recip", self.constants[recip_name].values,
                                              t["recip_t"].width))  # fmt: skip

        self.simple(call, "softmax", ctx, x, y)

    def u_argmax(self, call: Call) -> None:
        x, y = call.args
        cfg = self.configs[call.targs[0]]
        in_fmt, out_fmt = _fmt(cfg.types["in_t"]), _fmt(cfg.types["out_t"])
        n = cfg.ints["N"]
        e = dict(N=n, IW=in_fmt.width, in_signed=in_fmt.signed, XB=_bits(n - 1), OW=out_fmt.width,
                 out_fmt=str(out_fmt), cast=_cast(out_fmt))  # fmt: skip
        self.simple(call, "argmax", e, x, y)


def cfg_frac(cfg) -> int:
    return _fmt(cfg.types["acc_t"]).frac_bits


def render_design(design: StreamDesign, env, prefix: str, bipolar: frozenset[str] = frozenset()) -> RtlDesign:
    """Verilog modules, ROM images and the top's wiring for ``design`` (module names start with ``prefix``);
    ``bipolar``: the nodes whose inputs and weights are all +-1 (XNOR-popcount fold units)."""
    r = _Renderer(design, env, prefix, bipolar)
    r.add_stream(design.input, "input")
    for s in design.streams:
        if s is not design.input:
            r.add_stream(s, f"{s.size} values of {s.ctype}, {s.count} word(s) of {s.word}")
    for call in design.calls:
        r.call(call)
    r.out.layers = [dict(node=u["node"], op=u["op"], module=u["module"]) for u in r.out.units]
    return r.out


def write_roms(folder: Path, roms: dict[str, str]) -> list[str]:
    for name, text in roms.items():
        (folder / name).write_text(text)
    return sorted(roms)
