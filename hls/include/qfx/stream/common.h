// qfx/stream/common.h -- the streaming (dataflow) layer library: stream words, constants read from integer codes,
// the multiply-accumulate of a weight code or of K-hot digits, and the data-moving units (dup, relayout, pad,
// upsample, concat).
//
// Streams carry words: a word holds the values one unit reads per clock at most (a feature map's pixel: its C
// channels; a vector: all its values). A feature map streams in raster order (row by row, pixel by pixel, channels
// inside a word); the code generator re-orders weights and constants to the order the values arrive in, so no unit
// re-orders data except qfx::stream::relayout, which the generator inserts where two orders meet.
//
// Constants are arrays of integer codes (plain C integers compile fast, and HLS synthesizes them as ROMs or logic);
// a code becomes its ap_fixed value through the .V member (the raw bits), no rounding anywhere. Every intermediate
// is typed by the generator so that it is exact; the only rounding of a layer is the assignment to out_t.
#ifndef QFX_STREAM_COMMON_H_
#define QFX_STREAM_COMMON_H_

#include "ap_fixed.h"
#include "ap_int.h"
#include "hls_stream.h"

namespace qfx {
namespace stream {

// One stream word: N values of T.
template <class T, int N>
struct word {
  T d[N];
};

namespace detail {

// The ap_fixed value whose raw code is `code` (exact: the code is the value times 2^F).
template <class T, class C>
inline T from_code(const C code) {
#pragma HLS INLINE
  T v;
  v.V = code;
  return v;
}

// acc += sign * (x << shift) in sh_t (sign 0: an unused digit). `t << s` keeps sh_t's type and drops no bit when
// sh_t holds x * 2^s (the generator's choice, see qfx/khot.h), so the sum is exact: no multiplier.
template <class sh_t, class in_t, class acc_t>
inline void shift_add(acc_t &acc, const in_t &x, const signed char sign, const signed char shift) {
#pragma HLS INLINE
  if (sign == 0) return;
  const int s = shift;
  sh_t t = x;
  t = (s >= 0) ? (t << s) : (t >> -s);
  if (sign > 0) {
    acc += t;
  } else {
    acc -= t;
  }
}

// acc += x * w for one weight: a code of CFG::w_t (a multiplier), or K-hot digits {sign, shift}[K] (shift-and-add).
template <class CFG, bool KHOT = (CFG::K > 0)>
struct mac;

template <class CFG>
struct mac<CFG, false> {
  template <class acc_t, class in_t, class code_t>
  static void run(acc_t &acc, const in_t &x, const code_t &code) {
#pragma HLS INLINE
    acc += x * from_code<typename CFG::w_t>(code);
  }
};

template <class CFG>
struct mac<CFG, true> {
  template <class acc_t, class in_t, class digits_t>
  static void run(acc_t &acc, const in_t &x, const digits_t &digits) {
#pragma HLS INLINE
  mac_digit:
    for (int k = 0; k < CFG::K; ++k) {
#pragma HLS UNROLL
      shift_add<typename CFG::sh_t>(acc, x, digits[k][0], digits[k][1]);
    }
  }
};

}  // namespace detail

// Fan-out: every word of x to y0 and y1 (a stream has one producer and one consumer in a dataflow region).
template <class W, int COUNT>
void dup(hls::stream<W> &x, hls::stream<W> &y0, hls::stream<W> &y1) {
dup_n:
  for (int n = 0; n < COUNT; ++n) {
#pragma HLS PIPELINE II=1
    const W v = x.read();
    y0.write(v);
    y1.write(v);
  }
}

// Re-order a whole tensor (N values): read it in words of WI, write words of WO; output value m is input value
// idx[m] (both in stream order). Inserted only where a unit needs another order than its producer writes.
template <class T, int N, int WI, int WO, class idx_t>
void relayout(hls::stream<word<T, WI> > &x, hls::stream<word<T, WO> > &y, const idx_t idx[N]) {
  T buf[N];
relayout_in:
  for (int n = 0; n < N / WI; ++n) {
#pragma HLS PIPELINE II=1
    const word<T, WI> v = x.read();
    for (int c = 0; c < WI; ++c) buf[n * WI + c] = v.d[c];
  }
relayout_out:
  for (int n = 0; n < N / WO; ++n) {
#pragma HLS PIPELINE II=1
    word<T, WO> v;
    for (int c = 0; c < WO; ++c) v.d[c] = buf[idx[n * WO + c]];
    y.write(v);
  }
}

// Zero padding of a raster-ordered feature map: CFG::{T, C, H_IN, W_IN, H_OUT, W_OUT, PAD_T, PAD_L}.
template <class CFG>
void pad(hls::stream<word<typename CFG::T, CFG::C> > &x, hls::stream<word<typename CFG::T, CFG::C> > &y) {
pad_h:
  for (int h = 0; h < CFG::H_OUT; ++h) {
  pad_w:
    for (int w = 0; w < CFG::W_OUT; ++w) {
#pragma HLS PIPELINE II=1
      const int ih = h - CFG::PAD_T, iw = w - CFG::PAD_L;
      word<typename CFG::T, CFG::C> v;
      if (ih >= 0 && ih < CFG::H_IN && iw >= 0 && iw < CFG::W_IN) {
        v = x.read();
      } else {
        for (int c = 0; c < CFG::C; ++c) v.d[c] = 0;
      }
      y.write(v);
    }
  }
}

// Nearest-neighbour upsampling by (SH, SW): one input row is buffered and written SH times, each pixel SW times.
template <class CFG>
void upsample(hls::stream<word<typename CFG::T, CFG::C> > &x, hls::stream<word<typename CFG::T, CFG::C> > &y) {
  word<typename CFG::T, CFG::C> row[CFG::W_IN];
upsample_h:
  for (int h = 0; h < CFG::H_IN; ++h) {
  upsample_read:
    for (int w = 0; w < CFG::W_IN; ++w) {
#pragma HLS PIPELINE II=1
      row[w] = x.read();
    }
  upsample_rows:
    for (int r = 0; r < CFG::SH; ++r) {
    upsample_w:
      for (int w = 0; w < CFG::W_IN * CFG::SW; ++w) {
#pragma HLS PIPELINE II=1
        y.write(row[w / CFG::SW]);
      }
    }
  }
}

// Concatenation of two streams word by word (channels of a pixel, or two vectors): CFG::{a_t, b_t, acc_t, out_t,
// CA, CB, COUNT}; acc_t holds both inputs exactly, then one assignment to out_t.
template <class CFG>
void concat(hls::stream<word<typename CFG::a_t, CFG::CA> > &a, hls::stream<word<typename CFG::b_t, CFG::CB> > &b,
            hls::stream<word<typename CFG::out_t, CFG::CA + CFG::CB> > &y) {
concat_n:
  for (int n = 0; n < CFG::COUNT; ++n) {
#pragma HLS PIPELINE II=1
    const word<typename CFG::a_t, CFG::CA> va = a.read();
    const word<typename CFG::b_t, CFG::CB> vb = b.read();
    word<typename CFG::out_t, CFG::CA + CFG::CB> v;
    for (int c = 0; c < CFG::CA; ++c) v.d[c] = typename CFG::acc_t(va.d[c]);
    for (int c = 0; c < CFG::CB; ++c) v.d[CFG::CA + c] = typename CFG::acc_t(vb.d[c]);
    y.write(v);
  }
}

// Concatenation along rows or columns of raster-ordered maps with the same channels: ROWS times, RUN_A words of a
// then RUN_B words of b (along H: ROWS = 1, runs = whole maps; along W or a 1-D map's L: ROWS = H, runs = row
// widths). CFG::{a_t, b_t, acc_t, out_t, C, ROWS, RUN_A, RUN_B}; acc_t holds both inputs exactly.
template <class CFG>
void concat_runs(hls::stream<word<typename CFG::a_t, CFG::C> > &a, hls::stream<word<typename CFG::b_t, CFG::C> > &b,
                 hls::stream<word<typename CFG::out_t, CFG::C> > &y) {
concat_runs_rows:
  for (int r = 0; r < CFG::ROWS; ++r) {
  concat_runs_words:
    for (int i = 0; i < CFG::RUN_A + CFG::RUN_B; ++i) {
#pragma HLS PIPELINE II=1
      word<typename CFG::out_t, CFG::C> v;
      if (i < CFG::RUN_A) {
        const word<typename CFG::a_t, CFG::C> va = a.read();
        for (int c = 0; c < CFG::C; ++c) v.d[c] = typename CFG::acc_t(va.d[c]);
      } else {
        const word<typename CFG::b_t, CFG::C> vb = b.read();
        for (int c = 0; c < CFG::C; ++c) v.d[c] = typename CFG::acc_t(vb.d[c]);
      }
      y.write(v);
    }
  }
}

}  // namespace stream
}  // namespace qfx

#endif  // QFX_STREAM_COMMON_H_
