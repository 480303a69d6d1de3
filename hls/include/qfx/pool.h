// qfx/pool.h -- pooling over ap_fixed types: maxpool2d, sumpool2d, global_sum.
//
// Arrays are flat NCHW without batch. Window (oh, ow) covers input rows oh * SH - PAD_T + kh and columns
// ow * SW - PAD_L + kw (kh < KH, kw < KW); bottom/right padding is implied by H_OUT/W_OUT.
//   maxpool2d: the maximum over the window's in-range positions (padding is ignored, as in PyTorch/ONNX MaxPool;
//              a window with no in-range position, which PyTorch/ONNX never build, gives 0).
//   sumpool2d: the sum over the window, padding counted as zeros (PyTorch avg_pool2d with divisor_override=1); the
//              generator follows it with an affine/scalar multiply for the division.
//   global_sum: y[c] = sum of the HW values of channel c (global average pooling before its division).
//
// Why it is exact: the maximum is selected with exact comparisons in in_t; the sums run in acc_t, chosen by the
// generator to hold every partial sum exactly. The only rounding/overflow is the final assignment to out_t.
#ifndef QFX_POOL_H_
#define QFX_POOL_H_

#include "ap_fixed.h"

namespace qfx {

template <class in_t, class out_t, int C, int H_IN, int W_IN, int H_OUT, int W_OUT, int KH, int KW, int SH, int SW,
          int PAD_T, int PAD_L>
void maxpool2d(const in_t x[C * H_IN * W_IN], out_t y[C * H_OUT * W_OUT]) {
#pragma HLS PIPELINE II=1
maxpool_c:
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL
  maxpool_oh:
    for (int oh = 0; oh < H_OUT; ++oh) {
#pragma HLS UNROLL
    maxpool_ow:
      for (int ow = 0; ow < W_OUT; ++ow) {
#pragma HLS UNROLL
        in_t m = 0;
        bool any = false;  // a compile-time constant at each position once the loops are unrolled
      maxpool_kh:
        for (int kh = 0; kh < KH; ++kh) {
#pragma HLS UNROLL
          const int ih = oh * SH - PAD_T + kh;
        maxpool_kw:
          for (int kw = 0; kw < KW; ++kw) {
#pragma HLS UNROLL
            const int iw = ow * SW - PAD_L + kw;
            if (ih >= 0 && ih < H_IN && iw >= 0 && iw < W_IN) {
              const in_t v = x[(c * H_IN + ih) * W_IN + iw];
              if (!any || v > m) m = v;
              any = true;
            }
          }
        }
        y[(c * H_OUT + oh) * W_OUT + ow] = m;
      }
    }
  }
}

template <class in_t, class acc_t, class out_t, int C, int H_IN, int W_IN, int H_OUT, int W_OUT, int KH, int KW,
          int SH, int SW, int PAD_T, int PAD_L>
void sumpool2d(const in_t x[C * H_IN * W_IN], out_t y[C * H_OUT * W_OUT]) {
#pragma HLS PIPELINE II=1
sumpool_c:
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL
  sumpool_oh:
    for (int oh = 0; oh < H_OUT; ++oh) {
#pragma HLS UNROLL
    sumpool_ow:
      for (int ow = 0; ow < W_OUT; ++ow) {
#pragma HLS UNROLL
        acc_t acc = 0;
      sumpool_kh:
        for (int kh = 0; kh < KH; ++kh) {
#pragma HLS UNROLL
          const int ih = oh * SH - PAD_T + kh;
        sumpool_kw:
          for (int kw = 0; kw < KW; ++kw) {
#pragma HLS UNROLL
            const int iw = ow * SW - PAD_L + kw;
            if (ih >= 0 && ih < H_IN && iw >= 0 && iw < W_IN) {
              acc += x[(c * H_IN + ih) * W_IN + iw];
            }
          }
        }
        y[(c * H_OUT + oh) * W_OUT + ow] = acc;
      }
    }
  }
}

template <class in_t, class acc_t, class out_t, int C, int HW>
void global_sum(const in_t x[C * HW], out_t y[C]) {
#pragma HLS PIPELINE II=1
global_sum_c:
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL
    acc_t acc = 0;
  global_sum_j:
    for (int j = 0; j < HW; ++j) {
#pragma HLS UNROLL
      acc += x[c * HW + j];
    }
    y[c] = acc;
  }
}

}  // namespace qfx

#endif  // QFX_POOL_H_
