// qfx/khot.h -- multiplier-free (shift-and-add) dense, conv2d and per-channel affine for K-hot weights.
//
// A K-hot weight is a sum of at most K signed powers of two, w = sum_k sign[k] * 2^shift[k], with sign in
// {-1, 0, +1} (0 = unused digit slot) and shift a possibly negative int. The digit tables are laid out in the weight
// order of the multiplying template (dense: [N_OUT][N_IN]; conv: [C_OUT][C_IN / GROUPS][KH][KW]; affine: [C]) with
// the K digits innermost. Each product x * w becomes K shifts of x added to or subtracted from acc_t: no multiplier.
//
// Why it is exact. `t << s` / `t >> s` (s an int) on an ap_fixed value return the same ap_fixed_base type (same W,
// I, signedness, Q, O, N; checked with g++ against the Xilinx headers, see tests/test_hls_lib.py): the raw W-bit
// code is shifted, bits leaving either end are dropped, and NO quantization or overflow mode is applied (the
// headers do that only under __SC_COMPATIBLE__). So after `sh_t t = x; t = t << s` (or `>> -s`), t == x * 2^s
// exactly iff sh_t holds x and x * 2^s. The generator picks a signed sh_t with
//   F_sh >= F_in - min(0, min s)       (x and every right-shifted x keep all their bits)
//   I_sh >= I_in + max(0, max s) (+1 if in_t is unsigned)   (x and every left-shifted x fit)
// An exact acc_t (F_acc >= F_in - min s, I_acc bounding sum |x| * sum_k 2^s_k) gives the rule
// F_sh = max(F_in, F_acc), I_sh = max(I_acc, I_in + (in_t unsigned)); note the max with I_in: an accumulator of
// small weights can have fewer integer bits than x, and then `sh_t t = x` would wrap before the right shift.
// acc += t / acc -= t are then exact (acc_t holds every partial sum), and the only rounding/overflow is the final
// assignment to out_t. The shift amounts are table constants: once the loops are unrolled each digit is wiring plus
// one adder.
#ifndef QFX_KHOT_H_
#define QFX_KHOT_H_

#include "ap_fixed.h"
#include "constant.h"

namespace qfx {
namespace detail {

// acc += sign * (x << shift), the sum of one digit, with the shift done in sh_t.
template <class sh_t, class in_t, class acc_t>
inline void shift_add(acc_t &acc, const in_t &x, const signed char sign, const signed char shift) {
#pragma HLS INLINE
  if (sign == 0) return;
  const int s = shift;  // int, so that the member operator<< / >> (int) keeps sh_t's type and modes
  sh_t t = x;
  t = (s >= 0) ? (t << s) : (t >> -s);
  if (sign > 0) {
    acc += t;
  } else {
    acc -= t;
  }
}

}  // namespace detail

// dense with K-hot weights: y[o] = b[o] + sum_i sum_k sign * (x[i] << shift), tables [N_OUT][N_IN][K].
// bc_t (tc_t below): the bias array's element type, b_t itself or integer codes of it (constant.h).
template <class in_t, class sh_t, class b_t, class acc_t, class out_t, int N_IN, int N_OUT, int K, class bc_t = b_t>
void dense_khot(const in_t x[N_IN], out_t y[N_OUT], const signed char sign[N_OUT * N_IN * K],
                const signed char shift[N_OUT * N_IN * K], const bc_t b[N_OUT]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=sign,shift,b
khot_dense_out:
  for (int o = 0; o < N_OUT; ++o) {
#pragma HLS UNROLL
    acc_t acc = detail::as<b_t>(b[o]);
  khot_dense_in:
    for (int i = 0; i < N_IN; ++i) {
#pragma HLS UNROLL
    khot_dense_digit:
      for (int k = 0; k < K; ++k) {
#pragma HLS UNROLL
        detail::shift_add<sh_t>(acc, x[i], sign[(o * N_IN + i) * K + k], shift[(o * N_IN + i) * K + k]);
      }
    }
    y[o] = acc;
  }
}

// conv2d with K-hot weights: the geometry of qfx::conv2d (conv2d.h), tables [C_OUT][C_IN / GROUPS][KH][KW][K].
template <class in_t, class sh_t, class b_t, class acc_t, class out_t, int C_IN, int H_IN, int W_IN, int C_OUT,
          int H_OUT, int W_OUT, int KH, int KW, int SH, int SW, int PAD_T, int PAD_L, int DH, int DW, int GROUPS,
          int K, class bc_t = b_t>
void conv2d_khot(const in_t x[C_IN * H_IN * W_IN], out_t y[C_OUT * H_OUT * W_OUT],
                 const signed char sign[C_OUT * (C_IN / GROUPS) * KH * KW * K],
                 const signed char shift[C_OUT * (C_IN / GROUPS) * KH * KW * K], const bc_t b[C_OUT]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=sign,shift,b
  static_assert(C_IN % GROUPS == 0 && C_OUT % GROUPS == 0, "GROUPS must divide C_IN and C_OUT");
  const int CIG = C_IN / GROUPS;   // input channels per group
  const int COG = C_OUT / GROUPS;  // output channels per group
khot_conv_oc:
  for (int oc = 0; oc < C_OUT; ++oc) {
#pragma HLS UNROLL
    const int c0 = (oc / COG) * CIG;  // first input channel of oc's group
  khot_conv_oh:
    for (int oh = 0; oh < H_OUT; ++oh) {
#pragma HLS UNROLL
    khot_conv_ow:
      for (int ow = 0; ow < W_OUT; ++ow) {
#pragma HLS UNROLL
        acc_t acc = detail::as<b_t>(b[oc]);
      khot_conv_ic:
        for (int ic = 0; ic < CIG; ++ic) {
#pragma HLS UNROLL
        khot_conv_kh:
          for (int kh = 0; kh < KH; ++kh) {
#pragma HLS UNROLL
            const int ih = oh * SH - PAD_T + kh * DH;
          khot_conv_kw:
            for (int kw = 0; kw < KW; ++kw) {
#pragma HLS UNROLL
              const int iw = ow * SW - PAD_L + kw * DW;
              if (ih >= 0 && ih < H_IN && iw >= 0 && iw < W_IN) {
              khot_conv_digit:
                for (int k = 0; k < K; ++k) {
#pragma HLS UNROLL
                  detail::shift_add<sh_t>(acc, x[((c0 + ic) * H_IN + ih) * W_IN + iw],
                                          sign[(((oc * CIG + ic) * KH + kh) * KW + kw) * K + k],
                                          shift[(((oc * CIG + ic) * KH + kh) * KW + kw) * K + k]);
                }
              }
            }
          }
        }
        y[(oc * H_OUT + oh) * W_OUT + ow] = acc;
      }
    }
  }
}

// Per-channel affine with K-hot scales (batch norm without multipliers): for i = c * HW + j,
// y[i] = sum_k sign[c][k] * (x[i] << shift[c][k]) + offset[c], tables [C][K].
template <class in_t, class sh_t, class t_t, class acc_t, class out_t, int C, int HW, int K, class tc_t = t_t>
void affine_khot(const in_t x[C * HW], out_t y[C * HW], const signed char sign[C * K],
                 const signed char shift[C * K], const tc_t offset[C]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=sign,shift,offset
khot_affine_c:
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL
  khot_affine_j:
    for (int j = 0; j < HW; ++j) {
#pragma HLS UNROLL
      acc_t a = 0;
    khot_affine_digit:
      for (int k = 0; k < K; ++k) {
#pragma HLS UNROLL
        detail::shift_add<sh_t>(a, x[c * HW + j], sign[c * K + k], shift[c * K + k]);
      }
      a += detail::as<t_t>(offset[c]);
      y[c * HW + j] = a;
    }
  }
}

}  // namespace qfx

#endif  // QFX_KHOT_H_
