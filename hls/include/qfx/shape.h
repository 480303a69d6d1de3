// qfx/shape.h -- layers that move values: pad (zero padding), upsample (nearest neighbour), concat2.
//
// Arrays are flat NCHW without batch; a 1-D map (C, L) is (C, 1, L).
//   pad:      y[c][h][w] = x[c][h - PAD_T][w - PAD_L] inside the input, 0 outside; bottom/right padding is implied
//             by H_OUT/W_OUT.
//   upsample: y[c][h][w] = x[c][h / SH][w / SW].
//   concat2:  OUTER blocks; block o of y is block o of a (A values) followed by block o of b (B values): axis 0 is
//             OUTER = 1, the last axis is OUTER = the product of the other dimensions. More inputs chain concat2
//             through acc_t arrays.
//
// Why it is exact: every value is first assigned to acc_t (the union of the input formats: exact), then into
// out_t, whose quantization and overflow modes are the only rounding/overflow; 0 is a value of every type.
#ifndef QFX_SHAPE_H_
#define QFX_SHAPE_H_

#include "ap_fixed.h"

namespace qfx {

template <class in_t, class out_t, int C, int H_IN, int W_IN, int H_OUT, int W_OUT, int PAD_T, int PAD_L>
void pad(const in_t x[C * H_IN * W_IN], out_t y[C * H_OUT * W_OUT]) {
#pragma HLS PIPELINE II=1
pad_c:
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL
  pad_h:
    for (int h = 0; h < H_OUT; ++h) {
#pragma HLS UNROLL
    pad_w:
      for (int w = 0; w < W_OUT; ++w) {
#pragma HLS UNROLL
        const int ih = h - PAD_T, iw = w - PAD_L;
        if (ih >= 0 && ih < H_IN && iw >= 0 && iw < W_IN) {
          y[(c * H_OUT + h) * W_OUT + w] = x[(c * H_IN + ih) * W_IN + iw];
        } else {
          y[(c * H_OUT + h) * W_OUT + w] = 0;
        }
      }
    }
  }
}

template <class in_t, class out_t, int C, int H_IN, int W_IN, int SH, int SW>
void upsample(const in_t x[C * H_IN * W_IN], out_t y[C * H_IN * SH * W_IN * SW]) {
#pragma HLS PIPELINE II=1
upsample_c:
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL
  upsample_h:
    for (int h = 0; h < H_IN * SH; ++h) {
#pragma HLS UNROLL
    upsample_w:
      for (int w = 0; w < W_IN * SW; ++w) {
#pragma HLS UNROLL
        y[(c * H_IN * SH + h) * W_IN * SW + w] = x[(c * H_IN + h / SH) * W_IN + w / SW];
      }
    }
  }
}

template <class a_t, class b_t, class acc_t, class out_t, int OUTER, int A, int B>
void concat2(const a_t a[OUTER * A], const b_t b[OUTER * B], out_t y[OUTER * (A + B)]) {
#pragma HLS PIPELINE II=1
concat_o:
  for (int o = 0; o < OUTER; ++o) {
#pragma HLS UNROLL
  concat_a:
    for (int j = 0; j < A; ++j) {
#pragma HLS UNROLL
      const acc_t v = a[o * A + j];
      y[o * (A + B) + j] = v;
    }
  concat_b:
    for (int j = 0; j < B; ++j) {
#pragma HLS UNROLL
      const acc_t v = b[o * B + j];
      y[o * (A + B) + A + j] = v;
    }
  }
}

}  // namespace qfx

#endif  // QFX_SHAPE_H_
