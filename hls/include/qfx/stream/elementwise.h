// qfx/stream/elementwise.h -- element-wise units on streams: cast, relu / clip, leaky relu, affine (plain or K-hot
// scale), lookup table, add, argmax.
//
// Each unit reads COUNT words of W values and handles PE lanes per clock, W / PE clocks per word, in one pipelined
// loop (a word is read on its first clock and written on its last): the loop is detail::fold_lanes, shared by
// every unit, and what a unit computes per value is its functor (detail::clip_op, affine_op, ...). Per-channel
// constants are tables of codes indexed by k = (n * W + lane) % PERIOD, the position of the value in the stream
// modulo the table's period (the generator writes the table in stream order: a feature map's channel table has
// PERIOD = C). Exactness: comparisons are exact in ap_fixed; x * scale and a + b have their exact result types;
// acc_t holds every intermediate; one assignment to out_t rounds.
#ifndef QFX_STREAM_ELEMENTWISE_H_
#define QFX_STREAM_ELEMENTWISE_H_

#include "common.h"

namespace qfx {
namespace stream {

namespace detail {

// The input of an element-wise unit: one stream, read a word at a time.
template <class T, int W>
struct one_stream {
  typedef word<T, W> value_type;
  hls::stream<value_type> &x;
  explicit one_stream(hls::stream<value_type> &s) : x(s) {}
  value_type read() {
#pragma HLS INLINE
    return x.read();
  }
};

// Two streams in the same order, read together (add): a word of each.
template <class A, class B, int W>
struct two_words {
  word<A, W> a;
  word<B, W> b;
};

template <class A, class B, int W>
struct two_streams {
  typedef two_words<A, B, W> value_type;
  hls::stream<word<A, W> > &a;
  hls::stream<word<B, W> > &b;
  two_streams(hls::stream<word<A, W> > &sa, hls::stream<word<B, W> > &sb) : a(sa), b(sb) {}
  value_type read() {
#pragma HLS INLINE
    value_type v;
    v.a = a.read();
    v.b = b.read();
    return v;
  }
};

// The loop of every element-wise unit: CFG::COUNT words of CFG::W values, CFG::PE lanes per clock (W / PE clocks
// per word); a word is read on its first clock and written on its last. op(out, v, lane, k) computes output value
// `lane` of the word from the input word(s) v; k = n * W + lane is the value's position in the stream.
template <class CFG, class out_t, class IN, class OP>
inline void fold_lanes(IN in, hls::stream<word<out_t, CFG::W> > &y, const OP &op) {
#pragma HLS INLINE
  typename IN::value_type v;
  word<out_t, CFG::W> out;
  const int F = CFG::W / CFG::PE;  // clocks per word
elementwise_fold:
  for (int it = 0; it < CFG::COUNT * F; ++it) {
#pragma HLS PIPELINE II=1
    const int n = it / F, f = it % F;
    if (f == 0) v = in.read();
    for (int p = 0; p < CFG::PE; ++p) {
#pragma HLS UNROLL
      const int lane = f * CFG::PE + p;
      op(out.d[lane], v, lane, n * CFG::W + lane);
    }
    if (f == F - 1) y.write(out);
  }
}

// min(max(x, lo), hi) compared exactly across types; the value assigned is x itself or a bound (never x first
// squeezed into acc_t), as the interpreter computes.
template <class CFG>
struct clip_op {
  typename CFG::acc_t lo, hi;
  void operator()(typename CFG::out_t &y, const word<typename CFG::in_t, CFG::W> &v, int lane, int) const {
#pragma HLS INLINE
    if (CFG::LO && v.d[lane] < lo) {
      if (CFG::HI && lo > hi) {
        y = hi;
      } else {
        y = lo;
      }
    } else if (CFG::HI && v.d[lane] > hi) {
      y = hi;
    } else {
      y = v.d[lane];
    }
  }
};

template <class CFG>
struct leaky_relu_op {
  typename CFG::alpha_t alpha;
  void operator()(typename CFG::out_t &y, const word<typename CFG::in_t, CFG::W> &v, int lane, int) const {
#pragma HLS INLINE
    typename CFG::acc_t a;
    if (v.d[lane] >= 0) {
      a = v.d[lane];
    } else {
      a = v.d[lane] * alpha;
    }
    y = a;
  }
};

template <class CFG, class SROW, class tcode_t>
struct affine_op {
  const SROW *scale;
  const tcode_t *shift;
  void operator()(typename CFG::out_t &y, const word<typename CFG::in_t, CFG::W> &v, int lane, int pos) const {
#pragma HLS INLINE
    const int k = pos % CFG::PERIOD;
    typename CFG::acc_t a = 0;
    if (CFG::SCALE) {
      mac<CFG>::run(a, v.d[lane], scale[k]);
    } else {
      a = v.d[lane];
    }
    if (CFG::SHIFT) a += from_code<typename CFG::b_t>(shift[k]);
    y = a;
  }
};

template <class CFG, class tcode_t>
struct lookup_op {
  const tcode_t *table;
  void operator()(typename CFG::out_t &y, const word<typename CFG::in_t, CFG::W> &v, int lane, int) const {
#pragma HLS INLINE
    ap_uint<CFG::IN_BITS> index = v.d[lane].range(CFG::IN_BITS - 1, 0);
    if (CFG::SIGNED) index[CFG::IN_BITS - 1] = !index[CFG::IN_BITS - 1];
    y = from_code<typename CFG::acc_t>(table[index.to_uint()]);
  }
};

template <class CFG>
struct add_op {
  void operator()(typename CFG::out_t &y, const two_words<typename CFG::a_t, typename CFG::b_t, CFG::W> &v,
                  int lane, int) const {
#pragma HLS INLINE
    if (CFG::MUL)
      y = v.a.d[lane] * v.b.d[lane];
    else if (CFG::SUB)
      y = v.a.d[lane] - v.b.d[lane];
    else
      y = v.a.d[lane] + v.b.d[lane];
  }
};

}  // namespace detail

// Cast / relu / clip: CFG::{in_t, acc_t, out_t, W, COUNT, PE, LO, HI, LO_CODE, HI_CODE}: the value, bounded below
// by LO_CODE (when LO) and above by HI_CODE (when HI), both codes of acc_t; relu is LO with LO_CODE 0.
template <class CFG>
void clip(hls::stream<word<typename CFG::in_t, CFG::W> > &x, hls::stream<word<typename CFG::out_t, CFG::W> > &y) {
  detail::clip_op<CFG> op;
  op.lo = detail::from_code<typename CFG::acc_t>(CFG::LO_CODE);
  op.hi = detail::from_code<typename CFG::acc_t>(CFG::HI_CODE);
  detail::fold_lanes<CFG>(detail::one_stream<typename CFG::in_t, CFG::W>(x), y, op);
}

// Leaky relu: x >= 0 ? x : x * alpha, exact in acc_t. CFG::{in_t, alpha_t, acc_t, out_t, W, COUNT, PE, ALPHA_CODE}.
template <class CFG>
void leaky_relu(hls::stream<word<typename CFG::in_t, CFG::W> > &x,
                hls::stream<word<typename CFG::out_t, CFG::W> > &y) {
  detail::leaky_relu_op<CFG> op;
  op.alpha = detail::from_code<typename CFG::alpha_t>(CFG::ALPHA_CODE);
  detail::fold_lanes<CFG>(detail::one_stream<typename CFG::in_t, CFG::W>(x), y, op);
}

// Affine: a = x * scale[k] (when SCALE; a multiplier, or K-hot digits), a += shift[k] (when SHIFT), y = a.
// CFG::{in_t, w_t (scale), b_t (shift), acc_t, out_t, (sh_t), W, COUNT, PE, PERIOD, SCALE, SHIFT, K}.
template <class CFG, class SROW, class tcode_t>
void affine(hls::stream<word<typename CFG::in_t, CFG::W> > &x, hls::stream<word<typename CFG::out_t, CFG::W> > &y,
            const SROW scale[], const tcode_t shift[CFG::PERIOD]) {
  detail::affine_op<CFG, SROW, tcode_t> op;
  op.scale = scale;
  op.shift = shift;
  detail::fold_lanes<CFG>(detail::one_stream<typename CFG::in_t, CFG::W>(x), y, op);
}

// Lookup: y = table[code(x) - min code of in_t] (codes of acc_t). CFG::{in_t, acc_t, out_t, W, COUNT, PE, IN_BITS,
// SIGNED}: the index is x's raw bits, with the sign bit flipped for a signed in_t (code - min code).
template <class CFG, class tcode_t>
void lookup(hls::stream<word<typename CFG::in_t, CFG::W> > &x, hls::stream<word<typename CFG::out_t, CFG::W> > &y,
            const tcode_t table[1 << CFG::IN_BITS]) {
  detail::lookup_op<CFG, tcode_t> op;
  op.table = table;
  detail::fold_lanes<CFG>(detail::one_stream<typename CFG::in_t, CFG::W>(x), y, op);
}

// Add: y = a + b, a - b when CFG::SUB, a * b when CFG::MUL (exact in ap_fixed), both streams in the same order.
// CFG::{a_t, b_t, out_t, W, COUNT, PE, SUB, MUL}.
template <class CFG>
void add(hls::stream<word<typename CFG::a_t, CFG::W> > &a, hls::stream<word<typename CFG::b_t, CFG::W> > &b,
         hls::stream<word<typename CFG::out_t, CFG::W> > &y) {
  detail::fold_lanes<CFG>(detail::two_streams<typename CFG::a_t, typename CFG::b_t, CFG::W>(a, b), y,
                          detail::add_op<CFG>());
}

// Gate (squeeze-and-excitation): y = a * g[channel], exact, assigned into out_t. The C gate values come first
// (GCOUNT words of GW, in channel order), then the map's COUNT words; lane l of word n belongs to channel
// chan[(n * W + l) % PERIOD]. CFG::{a_t, g_t, out_t, W, COUNT, GW, GCOUNT, C, PERIOD}.
template <class CFG, class ccode_t>
void gate(hls::stream<word<typename CFG::a_t, CFG::W> > &a, hls::stream<word<typename CFG::g_t, CFG::GW> > &g,
          hls::stream<word<typename CFG::out_t, CFG::W> > &y, const ccode_t chan[CFG::PERIOD]) {
  typename CFG::g_t gates[CFG::C];
#pragma HLS ARRAY_PARTITION variable=gates complete
gate_load:
  for (int n = 0; n < CFG::GCOUNT; ++n) {
#pragma HLS PIPELINE II=1
    const word<typename CFG::g_t, CFG::GW> v = g.read();
    for (int l = 0; l < CFG::GW; ++l) {
#pragma HLS UNROLL
      gates[n * CFG::GW + l] = v.d[l];
    }
  }
gate_run:
  for (int n = 0; n < CFG::COUNT; ++n) {
#pragma HLS PIPELINE II=1
    const word<typename CFG::a_t, CFG::W> v = a.read();
    word<typename CFG::out_t, CFG::W> out;
    for (int l = 0; l < CFG::W; ++l) {
#pragma HLS UNROLL
      out.d[l] = v.d[l] * gates[chan[(n * CFG::W + l) % CFG::PERIOD]];
    }
    y.write(out);
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
