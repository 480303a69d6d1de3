// qfx/stream/threshold.h -- the streaming threshold unit (a float batch norm before a quantizer, made exact; see
// qfx/threshold.h for the fully parallel one and the IR's Threshold node for the definition).
//
// y = values[k][n], n = the number of j with x >= thresholds[k][j], k the value's channel in arrival order (the
// generator cuts the per-channel tables to their period: one word, or the whole tensor). Thresholds are codes of
// t_t (the input type with two more integer bits, so "never fires" fits), values codes of acc_t; ap_fixed
// comparisons are exact and the only rounding is the assignment to out_t. CFG::{in_t, t_t, acc_t, out_t, W, COUNT,
// PE, PERIOD, K}: PE values per clock, W / PE clocks per word.
#ifndef QFX_STREAM_THRESHOLD_H_
#define QFX_STREAM_THRESHOLD_H_

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

}  // namespace stream
}  // namespace qfx

#endif  // QFX_STREAM_THRESHOLD_H_
