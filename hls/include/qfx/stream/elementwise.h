// qfx/stream/elementwise.h -- element-wise units on streams: cast, relu / clip, leaky relu, affine (plain or K-hot
// scale), lookup table, add, argmax.
//
// Each unit reads COUNT words of W values and handles PE lanes per clock, W / PE clocks per word, in one pipelined
// loop (a word is read on its first clock and written on its last). Per-channel
// constants are tables of codes indexed by k = (n * W + lane) % PERIOD, the position of the value in the stream
// modulo the table's period (the generator writes the table in stream order: a feature map's channel table has
// PERIOD = C). Exactness: comparisons are exact in ap_fixed; x * scale and a + b have their exact result types;
// acc_t holds every intermediate; one assignment to out_t rounds.
#ifndef QFX_STREAM_ELEMENTWISE_H_
#define QFX_STREAM_ELEMENTWISE_H_

#include "common.h"

namespace qfx {
namespace stream {

// Cast / relu / clip: CFG::{in_t, acc_t, out_t, W, COUNT, PE, LO, HI, LO_CODE, HI_CODE}: the value, bounded below
// by LO_CODE (when LO) and above by HI_CODE (when HI), both codes of acc_t; relu is LO with LO_CODE 0.
template <class CFG>
void clip(hls::stream<word<typename CFG::in_t, CFG::W> > &x, hls::stream<word<typename CFG::out_t, CFG::W> > &y) {
  const typename CFG::acc_t lo = detail::from_code<typename CFG::acc_t>(CFG::LO_CODE);
  const typename CFG::acc_t hi = detail::from_code<typename CFG::acc_t>(CFG::HI_CODE);
  word<typename CFG::in_t, CFG::W> v;
  word<typename CFG::out_t, CFG::W> out;
  const int F = CFG::W / CFG::PE;  // clocks per word
clip_fold:
  for (int it = 0; it < CFG::COUNT * F; ++it) {
#pragma HLS PIPELINE II=1
    const int f = it % F;
    if (f == 0) {
      v = x.read();
    }
    for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
      const int lane = f * CFG::PE + p;
      // min(max(x, lo), hi) compared exactly across types; the value assigned is x itself or a bound (never
      // x first squeezed into acc_t), as the interpreter computes.
      if (CFG::LO && v.d[lane] < lo) {
        if (CFG::HI && lo > hi) {
          out.d[lane] = hi;
        } else {
          out.d[lane] = lo;
        }
      } else if (CFG::HI && v.d[lane] > hi) {
        out.d[lane] = hi;
      } else {
        out.d[lane] = v.d[lane];
      }
    }
    if (f == F - 1) y.write(out);
  }
}

// Leaky relu: x >= 0 ? x : x * alpha, exact in acc_t. CFG::{in_t, alpha_t, acc_t, out_t, W, COUNT, PE, ALPHA_CODE}.
template <class CFG>
void leaky_relu(hls::stream<word<typename CFG::in_t, CFG::W> > &x,
                hls::stream<word<typename CFG::out_t, CFG::W> > &y) {
  const typename CFG::alpha_t alpha = detail::from_code<typename CFG::alpha_t>(CFG::ALPHA_CODE);
  word<typename CFG::in_t, CFG::W> v;
  word<typename CFG::out_t, CFG::W> out;
  const int F = CFG::W / CFG::PE;  // clocks per word
leaky_fold:
  for (int it = 0; it < CFG::COUNT * F; ++it) {
#pragma HLS PIPELINE II=1
    const int f = it % F;
    if (f == 0) {
      v = x.read();
    }
    for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
      const int lane = f * CFG::PE + p;
      typename CFG::acc_t a;
      if (v.d[lane] >= 0) {
        a = v.d[lane];
      } else {
        a = v.d[lane] * alpha;
      }
      out.d[lane] = a;
    }
    if (f == F - 1) y.write(out);
  }
}

// Affine: a = x * scale[k] (when SCALE; a multiplier, or K-hot digits), a += shift[k] (when SHIFT), y = a.
// CFG::{in_t, w_t (scale), b_t (shift), acc_t, out_t, (sh_t), W, COUNT, PE, PERIOD, SCALE, SHIFT, K}.
template <class CFG, class SROW, class tcode_t>
void affine(hls::stream<word<typename CFG::in_t, CFG::W> > &x, hls::stream<word<typename CFG::out_t, CFG::W> > &y,
            const SROW scale[], const tcode_t shift[CFG::PERIOD]) {
  word<typename CFG::in_t, CFG::W> v;
  word<typename CFG::out_t, CFG::W> out;
  const int F = CFG::W / CFG::PE;  // clocks per word
affine_fold:
  for (int it = 0; it < CFG::COUNT * F; ++it) {
#pragma HLS PIPELINE II=1
    const int n = it / F, f = it % F;
    if (f == 0) {
      v = x.read();
    }
    for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
      const int lane = f * CFG::PE + p;
      const int k = (n * CFG::W + lane) % CFG::PERIOD;
      typename CFG::acc_t a = 0;
      if (CFG::SCALE) {
        detail::mac<CFG>::run(a, v.d[lane], scale[k]);
      } else {
        a = v.d[lane];
      }
      if (CFG::SHIFT) a += detail::from_code<typename CFG::b_t>(shift[k]);
      out.d[lane] = a;
    }
    if (f == F - 1) y.write(out);
  }
}

// Lookup: y = table[code(x) - min code of in_t] (codes of acc_t). CFG::{in_t, acc_t, out_t, W, COUNT, PE, IN_BITS,
// SIGNED}: the index is x's raw bits, with the sign bit flipped for a signed in_t (code - min code).
template <class CFG, class tcode_t>
void lookup(hls::stream<word<typename CFG::in_t, CFG::W> > &x, hls::stream<word<typename CFG::out_t, CFG::W> > &y,
            const tcode_t table[1 << CFG::IN_BITS]) {
  word<typename CFG::in_t, CFG::W> v;
  word<typename CFG::out_t, CFG::W> out;
  const int F = CFG::W / CFG::PE;  // clocks per word
lookup_fold:
  for (int it = 0; it < CFG::COUNT * F; ++it) {
#pragma HLS PIPELINE II=1
    const int f = it % F;
    if (f == 0) {
      v = x.read();
    }
    for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
      const int lane = f * CFG::PE + p;
      ap_uint<CFG::IN_BITS> index = v.d[lane].range(CFG::IN_BITS - 1, 0);
      if (CFG::SIGNED) index[CFG::IN_BITS - 1] = !index[CFG::IN_BITS - 1];
      out.d[lane] = detail::from_code<typename CFG::acc_t>(table[index.to_uint()]);
    }
    if (f == F - 1) y.write(out);
  }
}

// Add: y = a + b (exact ap_fixed sum), both streams in the same order. CFG::{a_t, b_t, out_t, W, COUNT, PE}.
template <class CFG>
void add(hls::stream<word<typename CFG::a_t, CFG::W> > &a, hls::stream<word<typename CFG::b_t, CFG::W> > &b,
         hls::stream<word<typename CFG::out_t, CFG::W> > &y) {
  word<typename CFG::a_t, CFG::W> va;
  word<typename CFG::b_t, CFG::W> vb;
  word<typename CFG::out_t, CFG::W> out;
  const int F = CFG::W / CFG::PE;  // clocks per word
add_fold:
  for (int it = 0; it < CFG::COUNT * F; ++it) {
#pragma HLS PIPELINE II=1
    const int f = it % F;
    if (f == 0) {
      va = a.read();
      vb = b.read();
    }
    for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
      const int lane = f * CFG::PE + p;
      out.d[lane] = va.d[lane] + vb.d[lane];
    }
    if (f == F - 1) y.write(out);
  }
}

// ArgMax over each word of N values (first index on ties), one index per word: CFG::{in_t, acc_t, out_t, N, COUNT}.
template <class CFG>
void argmax(hls::stream<word<typename CFG::in_t, CFG::N> > &x, hls::stream<word<typename CFG::out_t, 1> > &y) {
argmax_n:
  for (int n = 0; n < CFG::COUNT; ++n) {
#pragma HLS PIPELINE II=1
    const word<typename CFG::in_t, CFG::N> v = x.read();
    typename CFG::in_t best = v.d[0];
    int index = 0;
  argmax_i:
    for (int i = 1; i < CFG::N; ++i) {
#pragma HLS UNROLL
      if (v.d[i] > best) {
        best = v.d[i];
        index = i;
      }
    }
    word<typename CFG::out_t, 1> out;
    out.d[0] = typename CFG::acc_t(index);
    y.write(out);
  }
}

// Softmax over each word of N values, as qfx.tables.softmax_codes defines it: k = code(max) - code(x), e =
// exp_table[k] (exp_t), s = sum of the e (sum_t, exact), i = s assigned to index_t (its rounding and saturation),
// r = recip_table[code(i)] (recip_t), y = e * r (acc_t, exact), then out_t. CFG::{in_t, diff_t, exp_t, sum_t,
// index_t, recip_t, acc_t, out_t, N, COUNT, IN_BITS, INDEX_BITS}; diff_t holds max - x exactly.
template <class CFG, class ecode_t, class rcode_t>
void softmax(hls::stream<word<typename CFG::in_t, CFG::N> > &x, hls::stream<word<typename CFG::out_t, CFG::N> > &y,
             const ecode_t exp_table[1 << CFG::IN_BITS], const rcode_t recip_table[1 << CFG::INDEX_BITS]) {
softmax_n:
  for (int n = 0; n < CFG::COUNT; ++n) {
#pragma HLS PIPELINE II=1
    const word<typename CFG::in_t, CFG::N> v = x.read();
    typename CFG::in_t m = v.d[0];
    for (int i = 1; i < CFG::N; ++i) {
      if (v.d[i] > m) m = v.d[i];
    }
    typename CFG::exp_t e[CFG::N];
    typename CFG::sum_t sum = 0;
    for (int i = 0; i < CFG::N; ++i) {
      const typename CFG::diff_t d = typename CFG::diff_t(m) - typename CFG::diff_t(v.d[i]);
      const ap_uint<CFG::IN_BITS> k = d.range(CFG::IN_BITS - 1, 0);
      e[i] = detail::from_code<typename CFG::exp_t>(exp_table[k.to_uint()]);
      sum += e[i];
    }
    const typename CFG::index_t index = sum;
    const ap_uint<CFG::INDEX_BITS> code = index.range(CFG::INDEX_BITS - 1, 0);
    const typename CFG::recip_t r = detail::from_code<typename CFG::recip_t>(recip_table[code.to_uint()]);
    word<typename CFG::out_t, CFG::N> out;
    for (int i = 0; i < CFG::N; ++i) {
      const typename CFG::acc_t a = e[i] * r;
      out.d[i] = a;
    }
    y.write(out);
  }
}

}  // namespace stream
}  // namespace qfx

#endif  // QFX_STREAM_ELEMENTWISE_H_
