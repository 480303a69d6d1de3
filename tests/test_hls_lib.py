"""The HLS layer library (hls/include/qfx) against exact integer references, compiled by g++ with the Xilinx headers.

Every template is instantiated with several formats (signed and unsigned, binary points below 0 and beyond the
width, out_t with rounding and saturating/wrapping modes so that the final assignment matters) and shapes (strides,
asymmetric padding, dilation, groups, non-square kernels). The cases of one group run in one C++ program (three
compiles in all, cached by ``qfx.sim.apfixed.compile_cached``): codes go in on stdin, codes come back on stdout, and
every output code must equal the reference's, whose sums are exact numpy int64 and whose final assignment to out_t
is ``qfx.cast`` (itself proven bit-exact against the same headers). Zero mismatches, no tolerance.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qfx import FixedFormat, Overflow, Quant, cast, codes
from qfx.sim import apfixed

HLS_INCLUDE = Path(__file__).resolve().parents[1] / "hls" / "include"
QUANTS = [Quant.RND, Quant.RND_CONV, Quant.TRN, Quant.RND_ZERO, Quant.RND_INF, Quant.RND_MIN_INF, Quant.TRN_ZERO]
OVERFLOWS = [
    (Overflow.SAT, 0),
    (Overflow.WRAP, 0),
    (Overflow.SAT_SYM, 0),
    (Overflow.SAT_ZERO, 0),
    (Overflow.WRAP, 1),
    (Overflow.WRAP_SM, 0),
]


# ------------------------------------------------------------------------------------------------ formats and codes
def fx(text: str) -> FixedFormat:
    """A format from its C++ spelling."""
    return FixedFormat.parse(text)


def max_abs(fmt: FixedFormat) -> int:
    """Largest |code| of ``fmt``."""
    return max(-fmt.min_code, fmt.max_code)


def rand_codes(rng: np.random.Generator, fmt: FixedFormat, shape: int | tuple[int, ...]) -> np.ndarray:
    """Uniform codes of ``fmt`` with about a tenth each pinned to the two range ends."""
    c = rng.integers(fmt.min_code, fmt.max_code + 1, size=shape, dtype=np.int64)
    c[rng.random(c.shape) < 0.1] = fmt.max_code
    c[rng.random(c.shape) < 0.1] = fmt.min_code
    return c


def acc_format(bound: int, frac: int, extra_frac: int = 0, modes: bool = False) -> FixedFormat:
    """A signed accumulator holding every value of magnitude <= ``bound * 2**-frac`` exactly.

    ``modes`` gives it AP_RND/AP_SAT, which must make no difference since it never rounds or overflows.
    """
    int_bits = bound.bit_length() + 1 - frac
    width = int_bits + frac + extra_frac
    assert width <= 53, "keep every exact value a float64 for qfx.cast"
    if modes:
        return FixedFormat(width, int_bits, True, Quant.RND, Overflow.SAT)
    return FixedFormat(width, int_bits)


_modes = itertools.count()


def reset_modes(start: int) -> None:
    """Restart the rotation of out_t modes (each case builder does, so its formats do not depend on the others)."""
    global _modes
    _modes = itertools.count(start)


def out_format(exact: np.ndarray, frac: int, signed: bool = True) -> FixedFormat:
    """An out_t that rounds away 1-3 fraction bits of ``exact`` (codes at ``frac``) and has one integer bit too few
    for its largest values, so both its quantization and overflow modes act; the modes rotate from call to call."""
    k = next(_modes)
    peak = max(1, int(np.abs(exact).max()))
    frac_out = frac - 1 - k % 3
    int_bits = peak.bit_length() - frac - (0 if signed else 1)  # one short of holding the peak
    width = max(2, int_bits + frac_out)
    overflow, sat_bits = OVERFLOWS[k % len(OVERFLOWS)]
    if not signed and overflow is Overflow.WRAP_SM:
        overflow = Overflow.WRAP
    return FixedFormat(width, width - frac_out, signed, QUANTS[k % len(QUANTS)], overflow, sat_bits)


def align(a: np.ndarray, fa: int, b: np.ndarray, fb: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes ``a`` (at ``fa`` fraction bits) and ``b`` (at ``fb``) rescaled to the common max(fa, fb)."""
    f = max(fa, fb)
    return a << (f - fa), b << (f - fb), f


def cast_codes(exact: np.ndarray, frac: int, fmt: FixedFormat) -> np.ndarray:
    """Codes of ``out_t y = v`` for the exact values ``exact * 2**-frac`` (via qfx.cast, float64 holds them)."""
    exact = np.asarray(exact, dtype=np.int64)
    assert exact.size == 0 or int(np.abs(exact).max()) < 2**53
    values = torch.from_numpy(exact.astype(np.float64)) * 2.0**-frac
    return codes(cast(values, fmt), fmt).numpy().reshape(-1)


# ------------------------------------------------------------------------------------------------ geometry references
@dataclass(frozen=True)
class Geom:
    """A conv/pool window geometry; bottom/right padding ``pb``/``pr`` only sets H_OUT/W_OUT, as in the templates."""

    c_in: int
    h_in: int
    w_in: int
    c_out: int
    kh: int
    kw: int
    sh: int = 1
    sw: int = 1
    pt: int = 0
    pl: int = 0
    pb: int = 0
    pr: int = 0
    dh: int = 1
    dw: int = 1
    groups: int = 1

    @property
    def h_out(self) -> int:
        return (self.h_in + self.pt + self.pb - self.dh * (self.kh - 1) - 1) // self.sh + 1

    @property
    def w_out(self) -> int:
        return (self.w_in + self.pl + self.pr - self.dw * (self.kw - 1) - 1) // self.sw + 1

    def conv_args(self) -> str:
        """C_IN, H_IN, W_IN, C_OUT, H_OUT, W_OUT, KH, KW, SH, SW, PAD_T, PAD_L, DH, DW, GROUPS."""
        vals = (
            self.c_in,
            self.h_in,
            self.w_in,
            self.c_out,
            self.h_out,
            self.w_out,
            self.kh,
            self.kw,
            self.sh,
            self.sw,
            self.pt,
            self.pl,
            self.dh,
            self.dw,
            self.groups,
        )
        return ", ".join(map(str, vals))

    def pool_args(self) -> str:
        """C, H_IN, W_IN, H_OUT, W_OUT, KH, KW, SH, SW, PAD_T, PAD_L."""
        vals = (
            self.c_in,
            self.h_in,
            self.w_in,
            self.h_out,
            self.w_out,
            self.kh,
            self.kw,
            self.sh,
            self.sw,
            self.pt,
            self.pl,
        )
        return ", ".join(map(str, vals))

    def padded(self, x: np.ndarray, fill: int | float = 0) -> np.ndarray:
        return np.pad(x, ((0, 0), (self.pt, self.pb), (self.pl, self.pr)), constant_values=fill)


def conv_ref(x: np.ndarray, w: np.ndarray, g: Geom) -> np.ndarray:
    """Exact int64 sum of products of a grouped, strided, dilated, zero-padded convolution (no bias)."""
    xp, cig, cog = g.padded(x), g.c_in // g.groups, g.c_out // g.groups
    out = np.zeros((g.c_out, g.h_out, g.w_out), dtype=np.int64)
    for grp in range(g.groups):
        for a in range(g.kh):
            for b in range(g.kw):
                rows = slice(a * g.dh, a * g.dh + g.sh * (g.h_out - 1) + 1, g.sh)
                cols = slice(b * g.dw, b * g.dw + g.sw * (g.w_out - 1) + 1, g.sw)
                xs = xp[grp * cig : (grp + 1) * cig, rows, cols]
                wg = w[grp * cog : (grp + 1) * cog, :, a, b]
                out[grp * cog : (grp + 1) * cog] += np.einsum("ihw,oi->ohw", xs, wg)
    return out


def pool_windows(x: np.ndarray, g: Geom, fill: int) -> np.ndarray:
    """The (C, H_OUT, W_OUT, KH*KW) windows of a pool, padding filled with ``fill``."""
    xp = g.padded(x, fill)
    return np.stack(
        [
            xp[:, a : a + g.sh * (g.h_out - 1) + 1 : g.sh, b : b + g.sw * (g.w_out - 1) + 1 : g.sw]
            for a in range(g.kh)
            for b in range(g.kw)
        ],
        axis=-1,
    )


NEG_FILL = -(2**62)  # below every code: a padding position never wins a max


# ------------------------------------------------------------------------------------------------ cases and programs
@dataclass
class Case:
    """One template call: typed input arrays of codes, the call, and the expected output codes."""

    name: str
    call: str
    inputs: list[tuple[str, str, np.ndarray]]  # (variable, C++ type, codes)
    outputs: list[tuple[str, FixedFormat]]  # (variable, out_t); sizes from `expected`
    expected: dict[str, np.ndarray]
    same: list[tuple[str, str]] = field(default_factory=list)  # outputs that must agree (K-hot vs multiplying)
    exact: tuple[np.ndarray, int] | None = None  # exact result codes and their fraction bits, before out_t


_PRELUDE = """#include <cstdio>
#include <cstdlib>
#include "ap_fixed.h"
#include "qfx/qfx.h"

template <class T, int N> void read_codes(T (&a)[N]) {
  for (int i = 0; i < N; ++i) {
    long long c;
    if (std::scanf("%lld", &c) != 1) std::exit(3);
    a[i].range(T::width - 1, 0) = c;  // the low W bits of the code
  }
}
template <int N> void read_codes(signed char (&a)[N]) {
  for (int i = 0; i < N; ++i) {
    long long c;
    if (std::scanf("%lld", &c) != 1) std::exit(3);
    a[i] = (signed char)c;
  }
}
template <class T, int N> void write_codes(const T (&a)[N]) {
  for (int i = 0; i < N; ++i) {
    ap_uint<T::width> u = a[i].range(T::width - 1, 0);  // the raw W bits, sign-extended in Python
    std::printf("%llu ", (unsigned long long)u.to_uint64());
  }
  std::printf("\\n");
}
"""


def _case_cpp(i: int, case: Case) -> str:
    lines = [f"void case_{i}() {{  // {case.name}"]
    for name, ctype, values in case.inputs:
        lines += [f"  static {ctype} {name}[{values.size}];", f"  read_codes({name});"]
    for name, fmt in case.outputs:
        lines.append(f"  static {fmt} {name}[{case.expected[name].size}];")
    lines.append(f"  {case.call}")
    lines += [f"  write_codes({name});" for name, _ in case.outputs]
    return "\n".join([*lines, "}\n"])


def program_sources(cases: list[Case], extra: str = "", units: int = 2) -> dict[str, str]:
    """C++ sources running ``cases`` in order, split over ``units`` translation units (one per core)."""
    sources = {}
    for u in range(units):
        body = [_case_cpp(i, c) for i, c in enumerate(cases) if i % units == u]
        sources[f"cases{u}.cpp"] = _PRELUDE + extra + "\n".join(body)
    decls = "".join(f"void case_{i}();\n" for i in range(len(cases)))
    calls = "".join(f"  case_{i}();\n" for i in range(len(cases)))
    sources["main.cpp"] = f"{decls}int main() {{\n{calls}  return 0;\n}}\n"
    return sources


def sign_extend(raw: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    """Codes from the raw W-bit patterns the program prints."""
    assert fmt.width <= 62
    neg = (raw >> (fmt.width - 1)) & 1 if fmt.signed else np.zeros_like(raw)
    return raw - neg * (1 << fmt.width)


COMPILE_SECONDS: dict[str, float] = {}
CODES_EQUAL: dict[str, int] = {}


def run_cases(name: str, cases: list[Case], extra: str = "") -> dict[str, dict[str, np.ndarray]]:
    """Compile (cached) and run one program; the output codes of every case, by case and variable."""
    start = time.perf_counter()
    exe = apfixed.compile_cached(
        program_sources(cases, extra), include_dirs=[apfixed.headers_dir(), HLS_INCLUDE], name=f"hls-lib-{name}"
    )
    COMPILE_SECONDS[name] = time.perf_counter() - start
    stdin = "\n".join(" ".join(map(str, v.reshape(-1).tolist())) for c in cases for _, _, v in c.inputs)
    proc = subprocess.run([str(exe)], input=stdin + "\n", capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{exe} failed (exit {proc.returncode}): {proc.stderr[-2000:]}"
    lines = iter(proc.stdout.splitlines())
    got = {}
    for c in cases:
        got[c.name] = {}
        for var, fmt in c.outputs:
            raw = np.array([int(t) for t in next(lines).split()], dtype=np.int64)
            got[c.name][var] = sign_extend(raw, fmt)
    return got


def check_case(case: Case, got: dict[str, np.ndarray]) -> int:
    """Assert every output equals its reference code for code; returns the number of codes compared."""
    for var, fmt in case.outputs:
        want = case.expected[var].reshape(-1)
        bad = np.flatnonzero(got[var] != want)
        assert bad.size == 0, (
            f"{case.name}: {var} ({fmt}) differs at {bad.size}/{want.size} positions, first {bad[:5].tolist()}: "
            f"got {got[var][bad[:5]].tolist()}, want {want[bad[:5]].tolist()}"
        )
    for a, b in case.same:
        assert np.array_equal(got[a], got[b]), f"{case.name}: {a} and {b} differ"
    return sum(case.expected[v].size for v, _ in case.outputs)


# ------------------------------------------------------------------------------------------------ dense and conv2d
def dense_case(rng: np.random.Generator, name: str, n_in: int, n_out: int, tin: str, tw: str, tb: str | None) -> Case:
    """qfx::dense; ``tb`` None is the generator's no-bias path (a zero bias array of type acc_t)."""
    fin, fw = fx(tin), fx(tw)
    x, w = rand_codes(rng, fin, n_in), rand_codes(rng, fw, (n_out, n_in))
    prod, fp = w @ x, fin.frac_bits + fw.frac_bits
    fb = fx(tb) if tb else None
    b = rand_codes(rng, fb, n_out) if fb else np.zeros(n_out, dtype=np.int64)
    exact, bias, f = align(prod, fp, b, fb.frac_bits if fb else fp)
    bound = n_in * max_abs(fin) * max_abs(fw) << (f - fp)
    if fb:
        bound += max_abs(fb) << (f - fb.frac_bits)
    acc = acc_format(bound, f, extra_frac=int(rng.integers(3)), modes=bool(rng.integers(2)))
    if fb is None:  # the zero bias is an acc_t array
        fb, b = acc, np.zeros(n_out, dtype=np.int64)
    out = out_format(exact + bias, f)
    return Case(
        name,
        f"qfx::dense<{fin}, {fw}, {fb}, {acc}, {out}, {n_in}, {n_out}>(x, y, w, b);",
        [("x", str(fin), x), ("w", str(fw), w), ("b", str(fb), b)],
        [("y", out)],
        {"y": cast_codes(exact + bias, f, out)},
        exact=(exact + bias, f),
    )


def conv_case(rng: np.random.Generator, name: str, g: Geom, tin: str, tw: str, tb: str | None) -> Case:
    """qfx::conv2d with geometry ``g``; ``tb`` None: zero bias of type acc_t."""
    fin, fw = fx(tin), fx(tw)
    x = rand_codes(rng, fin, (g.c_in, g.h_in, g.w_in))
    w = rand_codes(rng, fw, (g.c_out, g.c_in // g.groups, g.kh, g.kw))
    prod, fp = conv_ref(x, w, g), fin.frac_bits + fw.frac_bits
    fb = fx(tb) if tb else None
    b = rand_codes(rng, fb, g.c_out) if fb else np.zeros(g.c_out, dtype=np.int64)
    exact, bias, f = align(prod, fp, b[:, None, None], fb.frac_bits if fb else fp)
    bound = (g.c_in // g.groups) * g.kh * g.kw * max_abs(fin) * max_abs(fw) << (f - fp)
    if fb:
        bound += max_abs(fb) << (f - fb.frac_bits)
    acc = acc_format(bound, f, extra_frac=int(rng.integers(2)), modes=bool(rng.integers(2)))
    if fb is None:
        fb = acc
    out = out_format(exact + bias, f)
    return Case(
        name,
        f"qfx::conv2d<{fin}, {fw}, {fb}, {acc}, {out}, {g.conv_args()}>(x, y, w, b);",
        [("x", str(fin), x), ("w", str(fw), w), ("b", str(fb), b)],
        [("y", out)],
        {"y": cast_codes(exact + bias, f, out)},
        exact=(exact + bias, f),
    )


CONV_GEOMS = {
    "conv3x3_pad1": Geom(3, 7, 6, 4, 3, 3, pt=1, pl=1, pb=1, pr=1),
    "conv3x2_stride2_dil2x1_asym": Geom(2, 9, 8, 3, 3, 2, sh=2, sw=2, pt=1, pl=0, pb=2, pr=1, dh=2, dw=1),
    "conv2x3_groups2_dil1x2": Geom(4, 6, 7, 6, 2, 3, sh=1, sw=2, pt=0, pl=1, pb=1, pr=0, dh=1, dw=2, groups=2),
    "conv_depthwise_stride2": Geom(3, 8, 8, 3, 3, 3, sh=2, sw=2, pt=1, pl=1, pb=0, pr=1, groups=3),
    "conv1x1_groups3": Geom(6, 3, 4, 9, 1, 1, groups=3),
}


@cache
def linear_cases() -> list[Case]:
    """dense and conv2d."""
    rng = np.random.default_rng(1234)
    reset_modes(0)
    return [
        dense_case(rng, "dense_fixed", 17, 12, "ap_fixed<8,3>", "ap_fixed<6,1>", "ap_fixed<10,4>"),
        dense_case(rng, "dense_ufixed_tiny_in_wide_w", 9, 10, "ap_ufixed<6,-1>", "ap_fixed<5,7>", "ap_fixed<8,9>"),
        dense_case(rng, "dense_integer_in_no_bias", 6, 16, "ap_fixed<12,12>", "ap_ufixed<4,2>", None),
        dense_case(rng, "dense_wide", 32, 8, "ap_ufixed<8,0>", "ap_fixed<8,-2>", "ap_ufixed<5,3>"),
        conv_case(rng, "conv3x3_pad1", CONV_GEOMS["conv3x3_pad1"], "ap_fixed<8,3>", "ap_fixed<6,1>", "ap_fixed<9,4>"),
        conv_case(
            rng,
            "conv3x2_stride2_dil2x1_asym",
            CONV_GEOMS["conv3x2_stride2_dil2x1_asym"],
            "ap_ufixed<7,2>",
            "ap_fixed<5,0>",
            "ap_fixed<6,8>",
        ),
        conv_case(
            rng, "conv2x3_groups2_dil1x2", CONV_GEOMS["conv2x3_groups2_dil1x2"], "ap_fixed<6,-1>", "ap_fixed<7,9>", None
        ),
        conv_case(
            rng,
            "conv_depthwise_stride2",
            CONV_GEOMS["conv_depthwise_stride2"],
            "ap_fixed<9,9>",
            "ap_ufixed<4,1>",
            "ap_fixed<12,10>",
        ),
        conv_case(
            rng, "conv1x1_groups3", CONV_GEOMS["conv1x1_groups3"], "ap_fixed<5,2>", "ap_fixed<4,2>", "ap_fixed<6,3>"
        ),
    ]


# ------------------------------------------------------------------------------------------------ K-hot
def rand_digits(rng: np.random.Generator, shape: tuple[int, ...], k: int, lo: int, hi: int) -> tuple:
    """Random digit tables (signs in {-1, 0, +1}, shifts in [lo, hi], shift 0 where unused) and the weight codes
    they sum to at ``fw = max(0, -lo)`` fraction bits."""
    sign = rng.choice(np.array([-1, 0, 1], dtype=np.int64), size=(*shape, k), p=[0.4, 0.2, 0.4])
    shift = np.where(sign != 0, rng.integers(lo, hi + 1, size=(*shape, k)), 0)
    fw = max(0, -lo)
    wcode = (sign << (shift + fw)).sum(-1)
    return sign, shift, wcode, fw


def w_format(wcode: np.ndarray, fw: int) -> FixedFormat:
    """The narrowest signed format with ``fw`` fraction bits holding the digit sums exactly."""
    width = max(2, int(np.abs(wcode).max()).bit_length() + 1)
    return FixedFormat(width, width - fw)


def sh_format(fin: FixedFormat, acc: FixedFormat) -> FixedFormat:
    """khot.h's rule for sh_t: F = max(F_in, F_acc), I = max(I_acc, I_in (+1 if in_t is unsigned)), signed."""
    frac = max(fin.frac_bits, acc.frac_bits)
    int_bits = max(acc.int_bits, fin.int_bits + (0 if fin.signed else 1))
    return FixedFormat(int_bits + frac, int_bits)


def khot_layer_case(
    rng: np.random.Generator,
    name: str,
    tin: str,
    tb: str,
    k: int,
    lo: int,
    hi: int,
    *,
    n: tuple[int, int] = (0, 0),
    g: Geom | None = None,
) -> Case:
    """dense_khot (``n`` = (N_IN, N_OUT)) or conv2d_khot (``g``), run beside the multiplying template fed the digit
    sums: both must give the reference codes."""
    fin, fb = fx(tin), fx(tb)
    if g is None:
        x = rand_codes(rng, fin, n[0])
        sign, shift, wcode, fw = rand_digits(rng, (n[1], n[0]), k, lo, hi)
        prod, n_out = wcode @ x, n[1]
    else:
        x = rand_codes(rng, fin, (g.c_in, g.h_in, g.w_in))
        sign, shift, wcode, fw = rand_digits(rng, (g.c_out, g.c_in // g.groups, g.kh, g.kw), k, lo, hi)
        prod, n_out = conv_ref(x, wcode, g), g.c_out
    fp = fin.frac_bits + fw
    b = rand_codes(rng, fb, n_out)
    exact, bias, f = align(prod, fp, b if g is None else b[:, None, None], fb.frac_bits)
    digit_mass = int((np.abs(sign) << (shift + fw)).sum(-1).reshape(n_out, -1).sum(-1).max())  # every partial sum
    bound = (max_abs(fin) * digit_mass << (f - fp)) + (max_abs(fb) << (f - fb.frac_bits))
    acc = acc_format(bound, f, extra_frac=int(rng.integers(2)))
    sh, fwt, out = sh_format(fin, acc), w_format(wcode, fw), out_format(exact + bias, f)
    if g is None:
        khot = f"qfx::dense_khot<{fin}, {sh}, {fb}, {acc}, {out}, {n[0]}, {n[1]}, {k}>(x, y, sg, sf, b);"
        mul = f"qfx::dense<{fin}, {fwt}, {fb}, {acc}, {out}, {n[0]}, {n[1]}>(x, y_mul, w, b);"
    else:
        khot = f"qfx::conv2d_khot<{fin}, {sh}, {fb}, {acc}, {out}, {g.conv_args()}, {k}>(x, y, sg, sf, b);"
        mul = f"qfx::conv2d<{fin}, {fwt}, {fb}, {acc}, {out}, {g.conv_args()}>(x, y_mul, w, b);"
    want = cast_codes(exact + bias, f, out)
    return Case(
        name,
        f"{khot}\n  {mul}",
        [
            ("x", str(fin), x),
            ("sg", "signed char", sign),
            ("sf", "signed char", shift),
            ("w", str(fwt), wcode),
            ("b", str(fb), b),
        ],
        [("y", out), ("y_mul", out)],
        {"y": want, "y_mul": want},
        same=[("y", "y_mul")],
        exact=(exact + bias, f),
    )


def affine_khot_case(
    rng: np.random.Generator, name: str, c: int, hw: int, tin: str, tt: str, k: int, lo: int, hi: int
) -> Case:
    """affine_khot beside affine fed the digit sums as scales."""
    fin, ft = fx(tin), fx(tt)
    x = rand_codes(rng, fin, (c, hw))
    sign, shift, scode, fs = rand_digits(rng, (c,), k, lo, hi)
    t = rand_codes(rng, ft, c)
    fp = fin.frac_bits + fs
    exact, off, f = align(x * scode[:, None], fp, t[:, None], ft.frac_bits)
    digit_mass = int((np.abs(sign) << (shift + fs)).sum(-1).max())
    bound = (max_abs(fin) * digit_mass << (f - fp)) + (max_abs(ft) << (f - ft.frac_bits))
    acc = acc_format(bound, f, modes=True)
    sh, fst, out = sh_format(fin, acc), w_format(scode, fs), out_format(exact + off, f)
    want = cast_codes(exact + off, f, out)
    return Case(
        name,
        f"qfx::affine_khot<{fin}, {sh}, {ft}, {acc}, {out}, {c}, {hw}, {k}>(x, y, sg, sf, t);\n"
        f"  qfx::affine<{fin}, {fst}, {ft}, {acc}, {out}, {c}, {hw}>(x, y_mul, s, t);",
        [
            ("x", str(fin), x),
            ("sg", "signed char", sign),
            ("sf", "signed char", shift),
            ("s", str(fst), scode),
            ("t", str(ft), t),
        ],
        [("y", out), ("y_mul", out)],
        {"y": want, "y_mul": want},
        same=[("y", "y_mul")],
        exact=(exact + off, f),
    )


SHIFT_TYPE = fx("ap_fixed<10,4,AP_RND,AP_SAT>")

# The claim khot.h rests on: on an ap_fixed value, `<<`/`>>` by an int keep the type (modes included) and shift the
# raw code, bits falling off either end, with no quantization or overflow handling.
_SHIFT_PROBE = f"""#include <type_traits>
typedef {SHIFT_TYPE} probe_t;
typedef ap_fixed_base<10, 4, true, AP_RND, AP_SAT, 0> probe_base_t;
static_assert(std::is_same<decltype(probe_t() << int(1)), probe_base_t>::value, "<< keeps the type");
static_assert(std::is_same<decltype(probe_t() >> int(1)), probe_base_t>::value, ">> keeps the type");
"""


def shift_case(rng: np.random.Generator) -> Case:
    """``t << s`` / ``t >> s`` in an AP_RND/AP_SAT type: the code shifted, wrapped to W bits, truncated (floor)."""
    n, fmt = 400, SHIFT_TYPE
    x = rand_codes(rng, fmt, n)
    s = rng.integers(-12, 13, size=n)
    raw = np.where(s >= 0, x << np.maximum(s, 0), x >> np.maximum(-s, 0)) & ((1 << fmt.width) - 1)
    want = sign_extend(raw, fmt)
    call = (
        f"for (int i = 0; i < {n}; ++i) {{ const int k = s[i]; probe_t t = x[i]; "
        "t = (k >= 0) ? (t << k) : (t >> -k); y[i] = t; }"
    )
    return Case("shift_semantics", call, [("x", str(fmt), x), ("s", "signed char", s)], [("y", fmt)], {"y": want})


@cache
def khot_cases() -> list[Case]:
    """dense_khot, conv2d_khot, affine_khot (each beside its multiplying twin) and the shift semantics."""
    rng = np.random.default_rng(5678)
    reset_modes(3)
    return [
        khot_layer_case(rng, "dense_khot_k2", "ap_fixed<8,3>", "ap_fixed<10,4>", 2, -4, 3, n=(13, 12)),
        khot_layer_case(rng, "dense_khot_k3_unsigned_in", "ap_ufixed<6,2>", "ap_fixed<7,1>", 3, -6, 2, n=(8, 10)),
        khot_layer_case(rng, "dense_khot_k1_negative_shifts", "ap_fixed<8,6>", "ap_fixed<6,0>", 1, -5, -1, n=(10, 8)),
        khot_layer_case(rng, "dense_khot_acc_narrower_than_in", "ap_fixed<8,6>", "ap_fixed<4,-2>", 1, -6, -4, n=(2, 6)),
        khot_layer_case(
            rng,
            "conv_khot_k2_groups2",
            "ap_fixed<7,2>",
            "ap_fixed<8,3>",
            2,
            -3,
            2,
            g=CONV_GEOMS["conv2x3_groups2_dil1x2"],
        ),
        khot_layer_case(
            rng,
            "conv_khot_k3_stride2_dil",
            "ap_ufixed<6,-1>",
            "ap_fixed<6,-2>",
            3,
            -7,
            1,
            g=CONV_GEOMS["conv3x2_stride2_dil2x1_asym"],
        ),
        affine_khot_case(rng, "affine_khot_k2", 4, 6, "ap_fixed<9,4>", "ap_fixed<8,2>", 2, -5, 2),
        affine_khot_case(rng, "affine_khot_k3_unsigned", 3, 10, "ap_ufixed<7,7>", "ap_fixed<6,6>", 3, -2, 4),
        shift_case(rng),
    ]


# ------------------------------------------------------------------------------------------------ elementwise and pool
def unary_case(
    name: str,
    call: str,
    fin: FixedFormat,
    x: np.ndarray,
    exact: np.ndarray,
    f: int,
    signed: bool,
    extra_inputs: tuple = (),
) -> Case:
    """A one-input, one-output case whose exact result is ``exact`` (codes at ``f``)."""
    out = out_format(exact, f, signed)
    return Case(
        name,
        call.format(out=out, n=x.size),
        [("x", str(fin), x), *extra_inputs],
        [("y", out)],
        {"y": cast_codes(exact, f, out)},
        exact=(exact, f),
    )


def cast_case(rng: np.random.Generator, name: str, tin: str, signed: bool) -> Case:
    fin = fx(tin)
    x = rand_codes(rng, fin, 200)
    return unary_case(name, f"qfx::cast<{fin}, {{out}}, {{n}}>(x, y);", fin, x, x, fin.frac_bits, signed)


def relu_case(rng: np.random.Generator, name: str, tin: str, signed: bool) -> Case:
    fin = fx(tin)
    x = rand_codes(rng, fin, 200)
    return unary_case(name, f"qfx::relu<{fin}, {{out}}, {{n}}>(x, y);", fin, x, np.maximum(x, 0), fin.frac_bits, signed)


def relu_clip_case(rng: np.random.Generator, name: str, tin: str, tmax: str, max_code: int, signed: bool) -> Case:
    fin, fm = fx(tin), fx(tmax)
    x = rand_codes(rng, fin, 200)
    r, m, f = align(np.maximum(x, 0), fin.frac_bits, np.array(max_code), fm.frac_bits)
    call = f"qfx::relu_clip<{fin}, {fm}, {{out}}, {{n}}>(x, y, m[0]);"
    return unary_case(name, call, fin, x, np.minimum(r, m), f, signed, (("m", str(fm), np.array([max_code])),))


def add_case(rng: np.random.Generator, name: str, ta: str, tb: str) -> Case:
    fa, fb = fx(ta), fx(tb)
    a, b = rand_codes(rng, fa, 150), rand_codes(rng, fb, 150)
    a2, b2, f = align(a, fa.frac_bits, b, fb.frac_bits)
    out = out_format(a2 + b2, f)
    return Case(
        name,
        f"qfx::add<{fa}, {fb}, {out}, 150>(a, b, y);",
        [("a", ta, a), ("b", tb, b)],
        [("y", out)],
        {"y": cast_codes(a2 + b2, f, out)},
        exact=(a2 + b2, f),
    )


def affine_case(
    rng: np.random.Generator, name: str, c: int, hw: int, tin: str, ts: str, tt: str, scalar: bool = False
) -> Case:
    """Per-channel affine; ``scalar``: one scale repeated over the channels, zero shifts (a scalar multiply)."""
    fin, fs, ft = fx(tin), fx(ts), fx(tt)
    x = rand_codes(rng, fin, (c, hw))
    s = np.full(c, rand_codes(rng, fs, 1)[0]) if scalar else rand_codes(rng, fs, c)
    t = np.zeros(c, dtype=np.int64) if scalar else rand_codes(rng, ft, c)
    fp = fin.frac_bits + fs.frac_bits
    exact, off, f = align(x * s[:, None], fp, t[:, None], ft.frac_bits)
    bound = (max_abs(fin) * max_abs(fs) << (f - fp)) + (max_abs(ft) << (f - ft.frac_bits))
    acc = acc_format(bound, f, extra_frac=int(rng.integers(3)), modes=scalar)
    out = out_format(exact + off, f)
    return Case(
        name,
        f"qfx::affine<{fin}, {fs}, {ft}, {acc}, {out}, {c}, {hw}>(x, y, s, t);",
        [("x", tin, x), ("s", ts, s), ("t", tt, t)],
        [("y", out)],
        {"y": cast_codes(exact + off, f, out)},
        exact=(exact + off, f),
    )


def maxpool_case(rng: np.random.Generator, name: str, g: Geom, tin: str, negative: bool = False) -> Case:
    """``negative``: every input below zero, so a padding position counted as 0 would win."""
    fin = fx(tin)
    x = rand_codes(rng, fin, (g.c_in, g.h_in, g.w_in))
    if negative:
        x = -1 - np.abs(x) % (-fin.min_code)
    exact = pool_windows(x, g, NEG_FILL).max(-1)
    call = f"qfx::maxpool2d<{fin}, {{out}}, {g.pool_args()}>(x, y);"
    return unary_case(name, call, fin, x, exact, fin.frac_bits, fin.signed)


def sumpool_case(rng: np.random.Generator, name: str, g: Geom, tin: str) -> Case:
    fin = fx(tin)
    x = rand_codes(rng, fin, (g.c_in, g.h_in, g.w_in))
    exact = pool_windows(x, g, 0).sum(-1)
    acc = acc_format(g.kh * g.kw * max_abs(fin), fin.frac_bits, extra_frac=1)
    call = f"qfx::sumpool2d<{fin}, {acc}, {{out}}, {g.pool_args()}>(x, y);"
    return unary_case(name, call, fin, x, exact, fin.frac_bits, True)


def global_sum_case(rng: np.random.Generator, name: str, c: int, hw: int, tin: str) -> Case:
    fin = fx(tin)
    x = rand_codes(rng, fin, (c, hw))
    acc = acc_format(hw * max_abs(fin), fin.frac_bits, modes=True)
    call = f"qfx::global_sum<{fin}, {acc}, {{out}}, {c}, {hw}>(x, y);"
    return unary_case(name, call, fin, x, x.sum(-1), fin.frac_bits, True)


POOL_GEOMS = {
    "pool3x2_stride2_pad": Geom(2, 7, 9, 2, 3, 2, sh=2, sw=2, pt=1, pl=1, pb=1, pr=0),
    "pool2x2_stride2": Geom(3, 6, 6, 3, 2, 2, sh=2, sw=2),
    "pool3x3_stride2_pad1": Geom(3, 6, 5, 3, 3, 3, sh=2, sw=2, pt=1, pl=1, pb=1, pr=1),
    "pool2x3_stride1x2_pad": Geom(2, 5, 8, 2, 2, 3, sh=1, sw=2, pt=0, pl=1, pb=1, pr=1),
}


@cache
def elementwise_cases() -> list[Case]:
    """cast, relu, relu_clip, add, affine, maxpool2d, sumpool2d, global_sum."""
    rng = np.random.default_rng(9012)
    reset_modes(5)
    pg = POOL_GEOMS
    return [
        cast_case(rng, "cast_fixed", "ap_fixed<16,6>", True),
        cast_case(rng, "cast_ufixed_to_fixed", "ap_ufixed<9,-2>", True),
        cast_case(rng, "cast_wide_int_bits", "ap_fixed<10,13>", True),
        relu_case(rng, "relu_to_ufixed", "ap_fixed<10,4>", False),
        relu_case(rng, "relu_to_fixed", "ap_fixed<7,9>", True),
        relu_clip_case(rng, "relu6", "ap_fixed<12,5>", "ap_ufixed<6,3>", 48, False),
        relu_clip_case(rng, "relu_clip_fine_max", "ap_fixed<8,2>", "ap_fixed<12,2>", 1331, False),
        relu_clip_case(rng, "relu_clip_negative_max", "ap_fixed<8,2>", "ap_fixed<6,2>", -5, True),
        add_case(rng, "add_mixed_sign", "ap_fixed<8,3>", "ap_ufixed<7,5>"),
        add_case(rng, "add_negative_int_bits", "ap_fixed<10,-1>", "ap_fixed<6,-4>"),
        affine_case(rng, "affine_batchnorm", 4, 6, "ap_fixed<8,4>", "ap_fixed<10,2>", "ap_fixed<12,6>"),
        affine_case(rng, "affine_scalar", 3, 5, "ap_ufixed<8,6>", "ap_ufixed<6,-2>", "ap_fixed<4,2>", scalar=True),
        maxpool_case(rng, "maxpool3x2_stride2_pad", pg["pool3x2_stride2_pad"], "ap_fixed<8,3>"),
        maxpool_case(rng, "maxpool_pad_negative", pg["pool3x2_stride2_pad"], "ap_fixed<7,1>", negative=True),
        maxpool_case(rng, "maxpool2x2_ufixed", pg["pool2x2_stride2"], "ap_ufixed<6,2>"),
        sumpool_case(rng, "sumpool3x3_stride2_pad1", pg["pool3x3_stride2_pad1"], "ap_fixed<8,3>"),
        sumpool_case(rng, "sumpool2x3_ufixed", pg["pool2x3_stride1x2_pad"], "ap_ufixed<7,-1>"),
        global_sum_case(rng, "global_sum", 4, 25, "ap_fixed<9,2>"),
    ]


PROGRAMS: dict[str, tuple[Callable[[], list[Case]], str]] = {
    "linear": (linear_cases, ""),
    "khot": (khot_cases, _SHIFT_PROBE),
    "elementwise": (elementwise_cases, ""),
}


@cache
def program_results(name: str) -> dict[str, dict[str, np.ndarray]]:
    build, extra = PROGRAMS[name]
    return run_cases(name, build(), extra)


def _params(name: str) -> list:
    return [pytest.param(name, c, id=c.name) for c in PROGRAMS[name][0]()]


# ------------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize(("program", "case"), _params("linear") + _params("khot") + _params("elementwise"))
def test_template_codes(toolchain: None, summary: Callable[[str], None], program: str, case: Case) -> None:
    """Every template call gives the reference's codes, all of them."""
    CODES_EQUAL[program] = CODES_EQUAL.get(program, 0) + check_case(case, program_results(program)[case.name])
    if case is PROGRAMS[program][0]()[-1]:
        summary(
            f"hls lib {program}: {len(PROGRAMS[program][0]())} cases, {CODES_EQUAL[program]} codes equal "
            f"(compile or cache lookup {COMPILE_SECONDS.get(program, 0.0):.1f} s)"
        )


def test_cases_exercise_out_modes() -> None:
    """The out_t formats cover every rounding and overflow mode, and in every case the final assignment both rounds
    (an exact result off out_t's grid) and overflows (an exact result out of out_t's range)."""
    cases = linear_cases() + khot_cases() + elementwise_cases()
    outs = [fmt for c in cases for _, fmt in c.outputs]
    assert {f.quant for f in outs} == set(Quant)
    assert {f.overflow for f in outs} == set(Overflow)
    assert any(f.sat_bits for f in outs)
    no_rounding = {"relu_clip_negative_max"}  # a constant result, on the grid
    for case in cases:
        if case.exact is None:
            continue
        exact, f = case.exact
        fmt = case.outputs[0][1]
        drop = f - fmt.frac_bits
        assert case.name in no_rounding or (drop > 0 and np.any(exact % (1 << drop))), f"{case.name}: never rounds"
        lo, hi = fmt.min_code << drop, fmt.max_code << drop
        assert np.any((exact < lo) | (exact > hi)), f"{case.name}: never overflows"


def test_conv_and_pool_references_match_torch() -> None:
    """The int64 references use PyTorch's geometry: conv2d, max_pool2d, avg_pool2d(divisor_override=1)."""
    rng = np.random.default_rng(3)
    for g in CONV_GEOMS.values():
        x = rng.integers(-50, 50, (g.c_in, g.h_in, g.w_in))
        w = rng.integers(-50, 50, (g.c_out, g.c_in // g.groups, g.kh, g.kw))
        xt = F.pad(torch.tensor(x, dtype=torch.float64)[None], (g.pl, g.pr, g.pt, g.pb))
        want = F.conv2d(
            xt, torch.tensor(w, dtype=torch.float64), stride=(g.sh, g.sw), dilation=(g.dh, g.dw), groups=g.groups
        )[0]
        assert torch.equal(torch.from_numpy(conv_ref(x, w, g)).double(), want)
    for g in POOL_GEOMS.values():
        x = rng.integers(-50, 0, (g.c_in, g.h_in, g.w_in))
        xt = torch.tensor(x, dtype=torch.float64)[None]
        pads = (g.pl, g.pr, g.pt, g.pb)
        mx = F.max_pool2d(F.pad(xt, pads, value=-torch.inf), (g.kh, g.kw), (g.sh, g.sw))[0]
        sm = F.avg_pool2d(F.pad(xt, pads), (g.kh, g.kw), (g.sh, g.sw), divisor_override=1)[0]
        assert torch.equal(torch.from_numpy(pool_windows(x, g, NEG_FILL).max(-1)).double(), mx)
        assert torch.equal(torch.from_numpy(pool_windows(x, g, 0).sum(-1)).double(), sm)


def test_khot_header_has_no_data_multiply() -> None:
    """khot.h multiplies no data: every `*` is index arithmetic, inside [...] or in a `const int` index line."""
    text = (HLS_INCLUDE / "qfx" / "khot.h").read_text()
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    while (stripped := re.sub(r"\[[^\[\]]*\]", "[]", code)) != code:
        code = stripped
    index_line = re.compile(r"\s*const int \w+ = [\w\s*/+\-()]+;\s*")
    offenders = [line for line in code.splitlines() if "*" in line and not index_line.fullmatch(line)]
    assert not offenders, offenders
    assert "<<" in code and ">>" in code


def test_headers_are_self_contained() -> None:
    """Each header includes only ap_fixed.h / ap_int.h / <cstddef> / its siblings, has a guard and no INLINE off."""
    allowed = {'"ap_fixed.h"', '"ap_int.h"', "<cstddef>"}
    headers = sorted((HLS_INCLUDE / "qfx").glob("*.h"))
    assert {h.name for h in headers} >= {"dense.h", "conv2d.h", "khot.h", "elementwise.h", "pool.h", "qfx.h"}
    for h in headers:
        text = h.read_text()
        for inc in re.findall(r"#include\s+(\S+)", text):
            assert inc in allowed or inc.strip('"') in {x.name for x in headers}, (h.name, inc)
        guard = f"QFX_{h.stem.upper()}_H_"
        assert f"#ifndef {guard}" in text and f"#define {guard}" in text, h.name
        assert not re.search(r"^\s*#pragma\s+HLS\s+INLINE\s+off", text, re.I | re.M), h.name
