// qfx/activation.h -- clip, leaky_relu, lookup (table functions), softmax and argmax over ap_fixed types.
//
// Arrays are flat, row-major, without batch. softmax and argmax work on the last axis: ROWS rows of N values.
//
// Why it is exact: comparisons between ap_fixed values of any two types are exact; x * alpha has the exact product
// type; a table holds the integer codes of its declared type and is indexed by the input's integer code (read with
// .range(), never through a double); the softmax's sum runs in sum_t, which holds every partial sum exactly, and
// every other intermediate is assigned to its declared type, whose quantization and overflow modes are the
// definition (qfx.tables.softmax_codes). The only other rounding/overflow is the final assignment to out_t.
#ifndef QFX_ACTIVATION_H_
#define QFX_ACTIVATION_H_

#include "ap_fixed.h"
#include "ap_int.h"
#include "constant.h"

namespace qfx {
namespace detail {

// code(v) - min_code(in_t) as an unsigned integer: the raw W bits, with the sign bit flipped for a signed type
// (two's complement code + 2^(W-1)).
template <class in_t, bool SIGNED>
inline ap_uint<in_t::width> offset_code(const in_t &v) {
#pragma HLS INLINE
  ap_uint<in_t::width> u = v.range(in_t::width - 1, 0);
  if (SIGNED) u[in_t::width - 1] = !u[in_t::width - 1];
  return u;
}

}  // namespace detail

// y[i] = min(max(x[i], lo), hi) in that order (crossed bounds lo > hi give hi; a bound applies only when HAS_LO /
// HAS_HI), every comparison exact across the two types, the chosen value assigned into out_t.
template <class in_t, class b_t, class out_t, int N, bool HAS_LO, bool HAS_HI>
void clip(const in_t x[N], out_t y[N], const b_t lo, const b_t hi) {
#pragma HLS PIPELINE II=1
clip_i:
  for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
    if (HAS_LO && x[i] < lo) {  // max(x, lo) = lo
      if (HAS_HI && lo > hi) {
        y[i] = hi;
      } else {
        y[i] = lo;
      }
    } else if (HAS_HI && x[i] > hi) {
      y[i] = hi;
    } else {
      y[i] = x[i];
    }
  }
}

// y[i] = x[i] if x[i] >= 0, else x[i] * alpha (the exact product), assigned into out_t.
template <class in_t, class a_t, class out_t, int N>
void leaky_relu(const in_t x[N], out_t y[N], const a_t alpha) {
#pragma HLS PIPELINE II=1
leaky_relu_i:
  for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
    if (x[i] >= 0) {
      y[i] = x[i];
    } else {
      y[i] = x[i] * alpha;
    }
  }
}

// y[i] = the tab_t value whose code is table[code(x[i]) - min_code(in_t)], assigned into out_t. TABLE_N = 2^W_in.
template <class in_t, class tab_t, class out_t, int N, int TABLE_N, bool IN_SIGNED, class code_t>
void lookup(const in_t x[N], out_t y[N], const code_t table[TABLE_N]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=table
lookup_i:
  for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
    y[i] = detail::as<tab_t>(table[detail::offset_code<in_t, IN_SIGNED>(x[i]).to_uint()]);
  }
}

// Fixed-point softmax over each row of N values (qfx.tables.softmax_codes):
// Both tables hold integer codes (of exp_t and recip_t), as lookup's.
//   k = code(max) - code(x);  e = exp_table[k] (exp_t);  s = sum e (sum_t, exact);  i = s (idx_t: AP_TRN, AP_SAT);
//   r = recip_table[code(i)] (recip_t);  p = e * r (acc_t, exact);  y = p (out_t).
template <class in_t, class exp_t, class sum_t, class idx_t, class recip_t, class acc_t, class out_t, int ROWS, int N,
          int EXP_N, int RECIP_N, bool IN_SIGNED, class code_t>
void softmax(const in_t x[ROWS * N], out_t y[ROWS * N], const code_t exp_table[EXP_N],
             const code_t recip_table[RECIP_N]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=exp_table,recip_table
softmax_row:
  for (int r = 0; r < ROWS; ++r) {
#pragma HLS UNROLL
    in_t m = x[r * N];
  softmax_max:
    for (int j = 1; j < N; ++j) {
#pragma HLS UNROLL
      if (x[r * N + j] > m) m = x[r * N + j];
    }
    const ap_uint<in_t::width> top = detail::offset_code<in_t, IN_SIGNED>(m);
    exp_t e[N];
    sum_t s = 0;
  softmax_exp:
    for (int j = 0; j < N; ++j) {
#pragma HLS UNROLL
      const ap_uint<in_t::width> k = top - detail::offset_code<in_t, IN_SIGNED>(x[r * N + j]);  // 0 <= k < 2^W
      e[j] = detail::as<exp_t>(exp_table[k.to_uint()]);
      s += e[j];
    }
    const idx_t i = s;
    const ap_uint<idx_t::width> code = i.range(idx_t::width - 1, 0);
    const recip_t rec = detail::as<recip_t>(recip_table[code.to_uint()]);
  softmax_out:
    for (int j = 0; j < N; ++j) {
#pragma HLS UNROLL
      const acc_t p = e[j] * rec;
      y[r * N + j] = p;
    }
  }
}

// y[r] = the first index of the largest of the N values of row r, as acc_t (an integer type), assigned into out_t.
template <class in_t, class acc_t, class out_t, int ROWS, int N>
void argmax(const in_t x[ROWS * N], out_t y[ROWS]) {
#pragma HLS PIPELINE II=1
argmax_row:
  for (int r = 0; r < ROWS; ++r) {
#pragma HLS UNROLL
    in_t m = x[r * N];
    int best = 0;
  argmax_j:
    for (int j = 1; j < N; ++j) {
#pragma HLS UNROLL
      if (x[r * N + j] > m) {
        m = x[r * N + j];
        best = j;
      }
    }
    const acc_t index = best;
    y[r] = index;
  }
}

}  // namespace qfx

#endif  // QFX_ACTIVATION_H_
