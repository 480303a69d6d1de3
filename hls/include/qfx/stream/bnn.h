// qfx/stream/bnn.h -- streaming units of binarized networks (Brevitas' bnn_pynq): thresholds and XNOR-popcount
// dense layers (see qfx/threshold.h for the fully parallel ones and the IR's Threshold node for the definition).
//
// threshold: y = values[k][n], n = the number of j with x >= thresholds[k][j], k the value's channel in arrival
// order (the generator cuts the per-channel tables to their period: one word, or the whole tensor). Thresholds are codes of
// t_t (the input type with two more integer bits, so "never fires" fits), values codes of acc_t; ap_fixed
// comparisons are exact and the only rounding is the assignment to out_t. CFG::{in_t, t_t, acc_t, out_t, W, COUNT,
// PE, PERIOD, K}: PE values per clock, W / PE clocks per word.
#ifndef QFX_STREAM_BNN_H_
#define QFX_STREAM_BNN_H_

#include "common.h"

namespace qfx {
namespace stream {

template <class CFG, class tcode_t, class vcode_t>
void threshold(hls::stream<word<typename CFG::in_t, CFG::W> > &x, hls::stream<word<typename CFG::out_t, CFG::W> > &y,
               const tcode_t t[CFG::PERIOD * CFG::K], const vcode_t v[CFG::PERIOD * (CFG::K + 1)]) {
  word<typename CFG::in_t, CFG::W> in;
  word<typename CFG::out_t, CFG::W> out;
  const int F = CFG::W / CFG::PE;  // clocks per word
threshold_fold:
  for (int it = 0; it < CFG::COUNT * F; ++it) {
#pragma HLS PIPELINE II=1
    const int n = it / F, f = it % F;
    if (f == 0) {
      in = x.read();
    }
    for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
      const int lane = f * CFG::PE + p;
      const int k = (n * CFG::W + lane) % CFG::PERIOD;
      int count = 0;
      for (int j = 0; j < CFG::K; ++j) {
#pragma HLS UNROLL
        count += in.d[lane] >= detail::from_code<typename CFG::t_t>(t[k * CFG::K + j]) ? 1 : 0;
      }
      typename CFG::acc_t a = detail::from_code<typename CFG::acc_t>(v[k * (CFG::K + 1) + count]);
      out.d[lane] = a;
    }
    if (f == F - 1) y.write(out);
  }
}

// dense_xnor: y[o] = b[o] + sum_i x[i] * w[o][i] for x and w all +-1, folded as the dense unit (PE outputs x SIMD
// inputs per clock): each clock adds 2 * popcount(xnor) - SIMD per PE, where x's bit is "x > 0" and the weight ROM
// holds bits (1: +1, 0: -1), so the MAC is an XNOR and a popcount, no multiplier. p_t is the dot product's LSB with
// acc_t's width: the sums are exact in acc_t. CFG::{in_t, p_t, b_t, acc_t, out_t, N_IN, IN_W, N_OUT, PE, SIMD}.
template <class CFG, class WROW, class bcode_t>
void dense_xnor(hls::stream<word<typename CFG::in_t, CFG::IN_W> > &x,
                hls::stream<word<typename CFG::out_t, CFG::N_OUT> > &y, const WROW w[], const bcode_t b[CFG::N_OUT]) {
  const int NF = CFG::N_OUT / CFG::PE, SF = CFG::N_IN / CFG::SIMD;
  const int SIMD = CFG::SIMD;
  bool bits[CFG::N_IN];
#pragma HLS ARRAY_PARTITION variable=bits cyclic factor=SIMD
dense_xnor_read:
  for (int n = 0; n < CFG::N_IN / CFG::IN_W; ++n) {
#pragma HLS PIPELINE II=1
    const word<typename CFG::in_t, CFG::IN_W> v = x.read();
    for (int c = 0; c < CFG::IN_W; ++c) bits[n * CFG::IN_W + c] = v.d[c] > 0;
  }
  typename CFG::acc_t acc[CFG::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
  word<typename CFG::out_t, CFG::N_OUT> out;
dense_xnor_fold:
  for (int it = 0; it < NF * SF; ++it) {
#pragma HLS PIPELINE II=1
    const int nf = it / SF, sf = it % SF;
    for (int pe = 0; pe < CFG::PE; ++pe) {
#pragma HLS UNROLL
      if (sf == 0) acc[pe] = detail::from_code<typename CFG::b_t>(b[nf * CFG::PE + pe]);
      int agree = 0;
      for (int s = 0; s < CFG::SIMD; ++s) {
#pragma HLS UNROLL
        agree += (bits[sf * CFG::SIMD + s] == (w[it][pe][s] != 0)) ? 1 : 0;
      }
      acc[pe] += detail::from_code<typename CFG::p_t>(2 * agree - CFG::SIMD);
      if (sf == SF - 1) out.d[nf * CFG::PE + pe] = acc[pe];
    }
  }
  y.write(out);
}

}  // namespace stream
}  // namespace qfx

#endif  // QFX_STREAM_BNN_H_
