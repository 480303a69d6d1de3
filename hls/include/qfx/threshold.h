// qfx/threshold.h -- per-channel thresholds (a float batch norm before a quantizer, made exact) and bipolar
// (XNOR-popcount) dense layers.
//
// qfx::threshold: y = values[c][n], n = the number of k with x >= thresholds[c][k] (FINN's MultiThreshold with an
// output table). The thresholds are codes of t_t (the input's type with one more integer bit, so that "never fires"
// fits), the values codes of acc_t; comparisons of ap_fixed values are exact, so the only rounding is the final
// assignment to out_t (none unless a cast was fused). The values of a channel are read through the count: a
// K-comparator adder and a small mux per element, no multiplier.
//
// qfx::dense_xnor: y[o] = b[o] + sum_i x[i] * w[o][i] for x and w all +-1, computed as 2 * popcount(xnor) - N:
// the bit of x[i] is "x[i] > 0", w is stored as bits (1: +1, 0: -1). The popcount is an integer below 2**16 here
// and the sum is exact in acc_t (the generator's accumulator type); p_t is acc_t's width with the product's
// fraction bits (the dot product's LSB), so `acc += p_t` never rounds.
#ifndef QFX_THRESHOLD_H_
#define QFX_THRESHOLD_H_

#include "ap_fixed.h"
#include "ap_int.h"
#include "constant.h"

namespace qfx {

template <class in_t, class t_t, class acc_t, class out_t, int C, int HW, int K, class tc_t, class vc_t>
void threshold(const in_t x[C * HW], out_t y[C * HW], const tc_t t[C * K], const vc_t v[C * (K + 1)]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=t,v
threshold_channel:
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL
  threshold_position:
    for (int p = 0; p < HW; ++p) {
#pragma HLS UNROLL
      const in_t value = x[c * HW + p];
      int count = 0;
    threshold_k:
      for (int k = 0; k < K; ++k) {
#pragma HLS UNROLL
        count += value >= detail::as<t_t>(t[c * K + k]) ? 1 : 0;
      }
      y[c * HW + p] = detail::as<acc_t>(v[c * (K + 1) + count]);
    }
  }
}

template <class in_t, class p_t, class b_t, class acc_t, class out_t, int N_IN, int N_OUT, class bc_t = b_t>
void dense_xnor(const in_t x[N_IN], out_t y[N_OUT], const unsigned char w[N_OUT * N_IN], const bc_t b[N_OUT]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=w,b
dense_xnor_out:
  for (int o = 0; o < N_OUT; ++o) {
#pragma HLS UNROLL
    ap_uint<24> agree = 0;
  dense_xnor_in:
    for (int i = 0; i < N_IN; ++i) {
#pragma HLS UNROLL
      const bool bit = x[i] > 0;
      agree += (bit == (w[o * N_IN + i] != 0)) ? 1 : 0;  // XNOR, counted
    }
    acc_t acc = detail::as<b_t>(b[o]);
    acc += detail::as<p_t>(2 * (int)agree - N_IN);
    y[o] = acc;
  }
}

}  // namespace qfx

#endif  // QFX_THRESHOLD_H_
