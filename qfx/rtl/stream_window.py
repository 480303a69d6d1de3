"""Convolutions and pools in the folded streaming Verilog (:mod:`qfx.rtl.stream`): the window unit in front of
their fold unit. A folding whose steps each read one group of channels at one kernel position (SIMD dividing an
ungrouped convolution's input channels; SIMD 1 for a depthwise convolution or a pool:
:func:`qfx.plan.cost.window_chunk`) gets a window generator (swg.v.j2) that streams each window as one word of
channels per clock from distributed RAM; other foldings a sliding window (window.v.j2) that hands whole windows
over; a 1 x 1 convolution at stride 1 without padding reads its input pixels directly."""

from __future__ import annotations

from qfx.backends.hls.stream_design import Call, Stream, UnsupportedNode
from qfx.format import FixedFormat
from qfx.plan.cost import window_chunk
from qfx.rtl.stream_common import bits, fill, fmt

__all__ = ["chunked", "conv2d_unit", "pointwise", "pool2d_unit", "window_unit"]


def pointwise(ints: dict) -> bool:
    """Whether a convolution's window is its input pixel (1 x 1 kernel, stride 1, no padding): no window unit."""
    return (ints["KH"], ints["KW"], ints["SH"], ints["SW"], ints["PAD_T"], ints["PAD_L"]) == (1, 1, 1, 1, 0, 0) and (
        ints["H_OUT"],
        ints["W_OUT"],
    ) == (ints["H_IN"], ints["W_IN"])


def window_unit(r, call: Call, x: Stream, ints: dict, in_fmt: FixedFormat, chunk: int = 0, passes: int = 1,
                by_pass: bool = False, pad: int = 0) -> tuple[str, int]:  # fmt: skip
    """The window unit of a convolution or pool: its stream wire and the values of each of its words. ``chunk``
    = G: a window generator (swg.v.j2) streaming G channels per word, ``passes`` times over each window, the
    channel group chosen by the pass (``by_pass``, depthwise and pools) or stepped per kernel position; else the
    whole window per word (window.v.j2). ``pad``: the code of every value in the padding (0, or a max pool's
    least code)."""
    if pointwise(ints):  # a 1 x 1 kernel at stride 1 without padding: each input pixel is the window
        return r.read(x), ints["C_IN"]
    g = dict(C=ints["C_IN"], H=ints["H_IN"], W=ints["W_IN"], KH=ints["KH"], KW=ints["KW"], SH=ints["SH"],
             SW=ints["SW"], DH=ints["DH"], DW=ints["DW"], PT=ints["PAD_T"], PL=ints["PAD_L"], HO=ints["H_OUT"],
             WO=ints["W_OUT"], IW=in_fmt.width)  # fmt: skip
    g["R"] = (g["KH"] - 1) * g["DH"] + 1
    g["RB"] = 2 * g["R"] + g["SH"]  # the window's rows, the next output row's, the next frame's first
    g["PW"] = g["C"] * g["IW"]
    g["PAD"], g["PAD_ZERO"] = fill(pad, g["IW"], g["C"]), pad == 0
    g["VW"] = g["KH"] * g["KW"] * g["PW"]
    g["SVW"] = g["KH"] * (g["KW"] - 1) * g["PW"]  # the stored columns (the last one is read as it is handed over)
    g["CB"] = bits(g["W"] - 1)
    g["BB"] = bits(g["RB"])
    span = max(g["H"] + g["PT"] + g["R"], g["W"] + g["PL"] + g["KW"] * g["DW"], g["HO"] * g["SH"] + g["R"],
               g["WO"] * g["SW"] + g["KW"] * g["DW"], 2 * g["RB"] + g["H"])  # fmt: skip
    g["NB"] = bits(span) + 2
    if chunk:
        nq = g["C"] // chunk
        g.update(
            G=chunk,
            GW=chunk * g["IW"],
            NQ=nq,
            GPAD=fill(pad, g["IW"], chunk),
            NF=passes,
            D=int(by_pass),
            Q=1 if by_pass else nq,
            KB=bits(max(g["KH"], g["KW"])),
            FB=bits(passes),
            QB=bits(nq),
            AB=bits(g["RB"] * g["W"] - 1),
        )
        module = r.module(call.node, "swg")
        r.render("swg", module, u=dict(node=call.node, module=module), g=g)
        wire = r.internal(f"{module}_w", g["GW"], f"{call.node}: window words")
        r.unit(module, call.node, "swg", [("s", r.read(x)), ("m", wire)])
        return wire, chunk
    g["RELOAD"] = max(0, g["KW"] - g["SW"]) if g["DW"] == 1 else 0
    if g["DW"] != 1:  # dilated columns are not shared between neighbouring windows in the same places
        g["RELOAD"] = 0
    module = r.module(call.node, "window")
    r.render("window", module, u=dict(node=call.node, module=module), g=g)
    wire = r.internal(f"{module}_w", g["VW"], f"{call.node}: windows")
    r.unit(module, call.node, "window", [("s", r.read(x)), ("m", wire)])
    return wire, g["KH"] * g["KW"] * g["C"]


def conv2d_unit(r, call: Call) -> None:
    """A convolution: its window unit (or none for a 1 x 1 kernel at stride 1) and its fold unit."""
    x, y = call.args[0], call.args[1]
    cfg = r.configs[call.targs[0]]
    ints = cfg.ints
    groups, c_in, c_out = ints["GROUPS"], ints["C_IN"], ints["C_OUT"]
    cig, cog = c_in // groups, c_out // groups
    pe, simd = ints["PE"], ints["SIMD"]

    def index(n, s_, p, k):
        j = s_ * simd + k
        kk, ic = divmod(j, cig)
        oc = n * pe + p
        return kk * c_in + (oc // cog) * cig + ic

    chunk = 0 if pointwise(ints) else window_chunk(c_in, c_out, groups, pe, simd)
    vec, n_vec = window_unit(r, call, x, ints, fmt(cfg.types["in_t"]), chunk, c_out // pe, groups > 1)
    if chunk:
        index = chunked(call.node, index, chunk, c_in, groups > 1, c_out // pe,
                         ints["KH"] * ints["KW"] * cig // simd, pe, simd)  # fmt: skip
    r.mac(call, x, y, vec, n_vec, c_out, index, call.node in r.bipolar, bool(chunk))


def pool2d_unit(r, call: Call) -> None:
    """A max or sum pool: its window unit and a fold unit of kind \"max\" or \"sum\"."""
    x, y = call.args[0], call.args[1]
    cfg = r.configs[call.targs[0]]
    ints = cfg.ints
    in_fmt = fmt(cfg.types["in_t"])
    is_max = bool(ints["MAX"])
    c, pe, simd = ints["C_IN"], ints["PE"], ints["SIMD"]
    kk = ints["KH"] * ints["KW"]
    nf, sf = c // pe, kk // simd
    chunk = window_chunk(c, c, c, pe, simd)

    def index(n, s_, p, k):
        return (s_ * simd + k) * c + n * pe + p

    # a max pool's padding is the format's least code: it never wins (ONNX ignores padding positions)
    vec, n_vec = window_unit(r, call, x, ints, in_fmt, chunk, nf, True, in_fmt.min_code if is_max else 0)
    if chunk:
        index = chunked(call.node, index, chunk, c, True, nf, sf, pe, simd)
    x_max = max(abs(in_fmt.min_code), abs(in_fmt.max_code))
    bound = x_max * (1 if is_max else kk) + 1
    r.fold(call, cfg, vec, n_vec, in_fmt, "max" if is_max else "sum", y, c, pe, simd, nf, sf, index, None,
              None, bound, extra=dict(chunk=bool(chunk)))  # fmt: skip


def chunked(node: str, index, chunk: int, c: int, by_pass: bool, nf: int, sf: int, pe: int, simd: int):
    """The lane positions within the window generator's words, checked against the whole-window ``index`` (the
    window [kh][kw][c], c innermost): step (n, s) reads word (kernel position, channel group) and lane (p, k)
    the same place of every word."""
    groups = c // chunk
    per_pos = 1 if by_pass else groups

    def offset(n, s_, p, k):
        kk, q = divmod(s_, per_pos)
        base = kk * c + (n if by_pass else q) * chunk
        return index(n, s_, p, k) - base

    lanes = {(p, k): offset(0, 0, p, k) for p in range(pe) for k in range(simd)}
    for n in range(nf):
        for s_ in range(sf):
            for (p, k), off in lanes.items():
                if offset(n, s_, p, k) != off or not 0 <= off < chunk:
                    raise UnsupportedNode(f"node {node}: internal error: the window generator's word order does "
                                          "not match the fold unit's steps")  # fmt: skip
    return lambda n, s_, p, k: lanes[(p, k)]
