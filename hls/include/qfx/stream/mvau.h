// qfx/stream/mvau.h -- folded matrix-vector units: dense and conv2d (line buffer), plain or K-hot weights.
//
// A unit computes PE outputs x SIMD inputs per clock: its pipelined loop runs NF = N_OUT / PE times SF = (inputs
// per output) / SIMD iterations per output vector; PE accumulators (acc_t) carry the partial sums over the SF
// chunks, so the sum is exact however it is folded (acc_t holds the bias and every partial sum: the generator's
// guarantee), and each output is assigned to out_t once, after its last chunk. Weights are rows of a ROM
// w[NF * SF][PE][SIMD] read one row per clock (codes of w_t, or K-hot digits [K][2] = {sign, shift}); the
// generator orders the columns the way the inputs arrive. A convolution keeps (KH - 1) * DH + 1 rows of its
// zero-padded input in a line buffer and computes an output pixel as soon as its window's last pixel arrives.
// The loops are shared: detail::fold_pe_simd (the PE x SIMD fold of dense, conv2d and pool2d, whose per-lane work is
// a functor: detail::mvau_op, detail::pool_pixel) and detail::slide (the line-buffer walk of conv2d and pool2d).
#ifndef QFX_STREAM_MVAU_H_
#define QFX_STREAM_MVAU_H_

#include "common.h"

namespace qfx {
namespace stream {
namespace detail {

// Line buffer step at padded position (hp, wp): read the pixel (or zeros in the padding) into row hp % R. True
// when (hp, wp) is the last pixel of output (oh, ow)'s window. CFG: C_IN, H_IN, W_IN, H_OUT, W_OUT, KH, KW, SH, SW,
// DH, DW, PAD_T, PAD_L, COLS.
template <class CFG, class in_t, int R>
inline bool line_step(hls::stream<word<in_t, CFG::C_IN> > &x, in_t buf[R][CFG::COLS][CFG::C_IN], int hp, int wp,
                      int &oh, int &ow) {
#pragma HLS INLINE
  const int ih = hp - CFG::PAD_T, iw = wp - CFG::PAD_L;
  word<in_t, CFG::C_IN> px;
  if (ih >= 0 && ih < CFG::H_IN && iw >= 0 && iw < CFG::W_IN) {
    px = x.read();
  } else {
    for (int c = 0; c < CFG::C_IN; ++c) px.d[c] = 0;
  }
  if (wp < CFG::COLS) {
    for (int c = 0; c < CFG::C_IN; ++c) buf[hp % R][wp][c] = px.d[c];
  }
  const int dh = hp - (CFG::KH - 1) * CFG::DH, dw = wp - (CFG::KW - 1) * CFG::DW;
  oh = dh / CFG::SH;
  ow = dw / CFG::SW;
  return dh >= 0 && dw >= 0 && dh % CFG::SH == 0 && dw % CFG::SW == 0 && oh < CFG::H_OUT && ow < CFG::W_OUT;
}

// The folded loop of every PE x SIMD unit: NF x SF pipelined clocks, PE outputs x SIMD inputs per clock. For lane
// pe of output group nf: op.start(pe, nf) on the first chunk (sf == 0), op.step(pe, nf, it, j, s) for its SIMD
// inputs j = sf * SIMD + s (it: the clock, the weight ROM's row), op.finish(pe, nf) after the last chunk.
template <int NF, int SF, int PE, int SIMD, class OP>
inline void fold_pe_simd(OP &op) {
#pragma HLS INLINE
unit_fold:
  for (int it = 0; it < NF * SF; ++it) {
#pragma HLS PIPELINE II=1
    const int nf = it / SF, sf = it % SF;
  unit_pe:
    for (int pe = 0; pe < PE; ++pe) {
#pragma HLS UNROLL
      if (sf == 0) op.start(pe, nf);
    unit_simd:
      for (int s = 0; s < SIMD; ++s) {
#pragma HLS UNROLL
        op.step(pe, nf, it, sf * SIMD + s, s);
      }
      if (sf == SF - 1) op.finish(pe, nf);
    }
  }
}

// The sliding-window loop of conv2d and pool2d: every padded input position goes through the line buffer; where a
// window is complete, unit(oh, ow, out) computes output pixel (oh, ow) and it is written.
template <class CFG, class in_t, int R, class OUT, class UNIT>
inline void slide(hls::stream<word<in_t, CFG::C_IN> > &x, in_t buf[R][CFG::COLS][CFG::C_IN], hls::stream<OUT> &y,
                  UNIT &unit) {
#pragma HLS INLINE
window_rows:
  for (int hp = 0; hp < CFG::ROWS; ++hp) {
  window_cols:
    for (int wp = 0; wp < CFG::IN_COLS; ++wp) {
      int oh, ow;
      if (!line_step<CFG, in_t, R>(x, buf, hp, wp, oh, ow)) continue;
      OUT out;
      unit(oh, ow, out);
      y.write(out);
    }
  }
}

// Matrix-vector step of dense and conv2d: acc[pe] starts at the bias of output oc = nf * PE + pe, adds
// input(oc, j) * w[it][pe][s] for each input j, and the sum after the last chunk goes to out.d[oc] (one rounding).
template <class CFG, class WROW, class bcode_t, class INPUT, int N>
struct mvau_op {
  typename CFG::acc_t *acc;  // PE accumulators
  word<typename CFG::out_t, N> *out;
  const WROW *w;
  const bcode_t *b;
  const INPUT *input;
  void start(int pe, int nf) {
#pragma HLS INLINE
    acc[pe] = from_code<typename CFG::b_t>(b[nf * CFG::PE + pe]);
  }
  void step(int pe, int nf, int it, int j, int s) {
#pragma HLS INLINE
    mac<CFG>::run(acc[pe], (*input)(nf * CFG::PE + pe, j), w[it][pe][s]);
  }
  void finish(int pe, int nf) {
#pragma HLS INLINE
    out->d[nf * CFG::PE + pe] = acc[pe];
  }
};

// Input j of a dense layer: the buffered vector.
template <class in_t>
struct vector_input {
  const in_t *buf;
  in_t operator()(int, int j) const {
#pragma HLS INLINE
    return buf[j];
  }
};

// Input j = (kh, kw, ic) of output channel oc's window at output pixel (oh, ow): the line buffer (ic within oc's
// group).
template <class CFG, int R>
struct window_input {
  typedef typename CFG::in_t in_t;
  const in_t (*buf)[CFG::COLS][CFG::C_IN];
  int oh, ow;
  in_t operator()(int oc, int j) const {
#pragma HLS INLINE
    const int CIG = CFG::C_IN / CFG::GROUPS, COG = CFG::C_OUT / CFG::GROUPS;
    const int kk = j / CIG, ic = j % CIG;
    const int kh = kk / CFG::KW, kw = kk % CFG::KW;
    return buf[(oh * CFG::SH + kh * CFG::DH) % R][ow * CFG::SW + kw * CFG::DW][(oc / COG) * CIG + ic];
  }
};

// One output pixel of conv2d: PE x SIMD folded over (output channels) x (kh, kw, ic).
template <class CFG, class WROW, class bcode_t, int R>
struct conv_pixel {
  typedef typename CFG::in_t in_t;
  const in_t (*buf)[CFG::COLS][CFG::C_IN];
  const WROW *w;
  const bcode_t *b;
  void operator()(int oh, int ow, word<typename CFG::out_t, CFG::C_OUT> &out) const {
#pragma HLS INLINE
    const int NF = CFG::C_OUT / CFG::PE, SF = CFG::C_IN / CFG::GROUPS * CFG::KH * CFG::KW / CFG::SIMD;
    typename CFG::acc_t acc[CFG::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    window_input<CFG, R> input;
    input.buf = buf;
    input.oh = oh;
    input.ow = ow;
    mvau_op<CFG, WROW, bcode_t, window_input<CFG, R>, CFG::C_OUT> op;
    op.acc = acc;
    op.out = &out;
    op.w = w;
    op.b = b;
    op.input = &input;
    fold_pe_simd<NF, SF, CFG::PE, CFG::SIMD>(op);
  }
};

// One output pixel of pool2d: PE channels x SIMD window positions per clock; max ignores the padding (an empty
// window gives 0), sum counts it as zeros.
template <class CFG, int R>
struct pool_pixel {
  typedef typename CFG::in_t in_t;
  const in_t (*buf)[CFG::COLS][CFG::C_IN];
  int oh, ow;
  typename CFG::acc_t *acc;  // sums
  in_t *mx;                  // maxima (a value of x itself)
  bool *any;
  word<typename CFG::out_t, CFG::C_IN> *out;
  void start(int pe, int) {
#pragma HLS INLINE
    acc[pe] = 0;
    mx[pe] = 0;
    any[pe] = false;
  }
  void step(int pe, int nf, int, int j, int) {
#pragma HLS INLINE
    const int c = nf * CFG::PE + pe;
    const int kh = j / CFG::KW, kw = j % CFG::KW;
    const int ih = oh * CFG::SH + kh - CFG::PAD_T, iw = ow * CFG::SW + kw - CFG::PAD_L;
    const in_t v = buf[(oh * CFG::SH + kh) % R][ow * CFG::SW + kw][c];
    if (CFG::MAX) {
      if (ih >= 0 && ih < CFG::H_IN && iw >= 0 && iw < CFG::W_IN && (!any[pe] || v > mx[pe])) {
        mx[pe] = v;
        any[pe] = true;
      }
    } else {
      acc[pe] += v;
    }
  }
  void finish(int pe, int nf) {
#pragma HLS INLINE
    const int c = nf * CFG::PE + pe;
    if (CFG::MAX) {
      out->d[c] = mx[pe];
    } else {
      out->d[c] = acc[pe];
    }
  }
  void operator()(int oh_, int ow_, word<typename CFG::out_t, CFG::C_IN> &o) {
#pragma HLS INLINE
    typename CFG::acc_t sums[CFG::PE];
    in_t maxima[CFG::PE];
    bool seen[CFG::PE];
#pragma HLS ARRAY_PARTITION variable=sums complete
#pragma HLS ARRAY_PARTITION variable=maxima complete
#pragma HLS ARRAY_PARTITION variable=seen complete
    oh = oh_;
    ow = ow_;
    acc = sums;
    mx = maxima;
    any = seen;
    out = &o;
    fold_pe_simd<CFG::C_IN / CFG::PE, CFG::KH * CFG::KW / CFG::SIMD, CFG::PE, CFG::SIMD>(*this);
  }
};

}  // namespace detail

// Dense: CFG::{in_t, w_t, b_t, acc_t, out_t, (sh_t), N_IN, IN_W, N_OUT, PE, SIMD, K}. The input vector arrives as
// N_IN / IN_W words (in stream order, which the weight columns follow) and is kept while the unit folds.
template <class CFG, class WROW, class bcode_t>
void dense(hls::stream<word<typename CFG::in_t, CFG::IN_W> > &x, hls::stream<word<typename CFG::out_t, CFG::N_OUT> > &y,
           const WROW w[], const bcode_t b[CFG::N_OUT]) {
  const int NF = CFG::N_OUT / CFG::PE, SF = CFG::N_IN / CFG::SIMD;
  const int SIMD = CFG::SIMD;  // pragma arguments: plain constants
  typename CFG::in_t buf[CFG::N_IN];
#pragma HLS ARRAY_PARTITION variable=buf cyclic factor=SIMD
dense_read:
  for (int n = 0; n < CFG::N_IN / CFG::IN_W; ++n) {
#pragma HLS PIPELINE II=1
    const word<typename CFG::in_t, CFG::IN_W> v = x.read();
    for (int c = 0; c < CFG::IN_W; ++c) buf[n * CFG::IN_W + c] = v.d[c];
  }
  typename CFG::acc_t acc[CFG::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
  word<typename CFG::out_t, CFG::N_OUT> out;
  detail::vector_input<typename CFG::in_t> input;
  input.buf = buf;
  detail::mvau_op<CFG, WROW, bcode_t, detail::vector_input<typename CFG::in_t>, CFG::N_OUT> op;
  op.acc = acc;
  op.out = &out;
  op.w = w;
  op.b = b;
  op.input = &input;
  detail::fold_pe_simd<NF, SF, CFG::PE, CFG::SIMD>(op);
  y.write(out);
}

// Conv2d on a raster-ordered feature map: CFG::{in_t, w_t, b_t, acc_t, out_t, (sh_t), C_IN, H_IN, W_IN, C_OUT,
// H_OUT, W_OUT, KH, KW, SH, SW, DH, DW, PAD_T, PAD_L, GROUPS, ROWS, COLS, PE, SIMD, K}. The SIMD dimension runs over
// (kh, kw, ic) with ic innermost; ROWS x COLS is the padded input the windows cover (and any input rows/columns no
// window uses, which are read and dropped).
template <class CFG, class WROW, class bcode_t>
void conv2d(hls::stream<word<typename CFG::in_t, CFG::C_IN> > &x,
            hls::stream<word<typename CFG::out_t, CFG::C_OUT> > &y, const WROW w[], const bcode_t b[CFG::C_OUT]) {
  typedef typename CFG::in_t in_t;
  const int R = (CFG::KH - 1) * CFG::DH + 1;
  const int LANES = CFG::SIMD < CFG::C_IN ? CFG::SIMD : CFG::C_IN;  // channels read per clock and row
  in_t buf[R][CFG::COLS][CFG::C_IN];
#pragma HLS ARRAY_PARTITION variable=buf complete dim=1
#pragma HLS ARRAY_PARTITION variable=buf cyclic factor=LANES dim=3
  detail::conv_pixel<CFG, WROW, bcode_t, R> pixel;
  pixel.buf = buf;
  pixel.w = w;
  pixel.b = b;
  detail::slide<CFG, in_t, R>(x, buf, y, pixel);
}

// Max / sum pooling over the line buffer: CFG::{in_t, acc_t, out_t, C_IN (= C_OUT), H_IN, W_IN, H_OUT, W_OUT, KH,
// KW, SH, SW, DH = DW = 1, PAD_T, PAD_L, ROWS, COLS, IN_COLS, PE, SIMD, MAX}. Max ignores padding (as ONNX MaxPool;
// an empty window gives 0); sum counts it as zeros. PE channels x SIMD window positions per clock.
template <class CFG>
void pool2d(hls::stream<word<typename CFG::in_t, CFG::C_IN> > &x,
            hls::stream<word<typename CFG::out_t, CFG::C_IN> > &y) {
  typedef typename CFG::in_t in_t;
  const int R = CFG::KH;
  const int PE = CFG::PE;
  in_t buf[R][CFG::COLS][CFG::C_IN];
#pragma HLS ARRAY_PARTITION variable=buf complete dim=1
#pragma HLS ARRAY_PARTITION variable=buf cyclic factor=PE dim=3
  detail::pool_pixel<CFG, R> pixel;
  pixel.buf = buf;
  detail::slide<CFG, in_t, R>(x, buf, y, pixel);
}

// Global sum per channel over HW pixels: CFG::{in_t, acc_t, out_t, C, HW, PE}; one output word of C values.
template <class CFG>
void global_sum(hls::stream<word<typename CFG::in_t, CFG::C> > &x,
                hls::stream<word<typename CFG::out_t, CFG::C> > &y) {
  const int PE = CFG::PE;
  typename CFG::acc_t acc[CFG::C];
#pragma HLS ARRAY_PARTITION variable=acc cyclic factor=PE
  for (int c = 0; c < CFG::C; ++c) acc[c] = 0;
  const int NF = CFG::C / CFG::PE;  // clocks per pixel
  word<typename CFG::in_t, CFG::C> v;
global_sum_fold:
  for (int it = 0; it < CFG::HW * NF; ++it) {
#pragma HLS PIPELINE II=1
    const int nf = it % NF;
    if (nf == 0) v = x.read();
    for (int pe = 0; pe < CFG::PE; ++pe) {
#pragma HLS UNROLL
      acc[nf * CFG::PE + pe] += v.d[nf * CFG::PE + pe];
    }
  }
  word<typename CFG::out_t, CFG::C> out;
  for (int c = 0; c < CFG::C; ++c) out.d[c] = acc[c];
  y.write(out);
}

}  // namespace stream
}  // namespace qfx

#endif  // QFX_STREAM_MVAU_H_
