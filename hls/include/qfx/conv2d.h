// qfx/conv2d.h -- 2-D convolution over ap_fixed types, PyTorch/ONNX Conv semantics.
//
// Provides qfx::conv2d on flat row-major NCHW arrays without batch (element (c, h, w) at (c * H + h) * W + w):
//   y[oc][oh][ow] = b[oc] + sum_{ic, kh, kw} x[g * C_IN / GROUPS + ic][ih][iw] * w[oc][ic][kh][kw]
// with ih = oh * SH - PAD_T + kh * DH, iw = ow * SW - PAD_L + kw * DW and g = oc / (C_OUT / GROUPS). Positions
// outside the input are zero padding (they contribute nothing); bottom/right padding is implied by H_OUT/W_OUT.
// Weight layout [C_OUT][C_IN / GROUPS][KH][KW], as PyTorch's Conv2d weight; wc_t / bc_t are the arrays' element
// types: w_t / b_t themselves or integer codes of them (constant.h).
//
// Why it is exact: as in dense.h -- every product has its exact ap_fixed type, acc_t holds the bias and every
// partial sum exactly (the generator's guarantee), and the only rounding/overflow is the final assignment to out_t.
#ifndef QFX_CONV2D_H_
#define QFX_CONV2D_H_

#include "ap_fixed.h"
#include "constant.h"

namespace qfx {

template <class in_t, class w_t, class b_t, class acc_t, class out_t, int C_IN, int H_IN, int W_IN, int C_OUT,
          int H_OUT, int W_OUT, int KH, int KW, int SH, int SW, int PAD_T, int PAD_L, int DH, int DW, int GROUPS,
          class wc_t = w_t, class bc_t = b_t>
void conv2d(const in_t x[C_IN * H_IN * W_IN], out_t y[C_OUT * H_OUT * W_OUT],
            const wc_t w[C_OUT * (C_IN / GROUPS) * KH * KW], const bc_t b[C_OUT]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=w,b
  static_assert(C_IN % GROUPS == 0 && C_OUT % GROUPS == 0, "GROUPS must divide C_IN and C_OUT");
  const int CIG = C_IN / GROUPS;   // input channels per group
  const int COG = C_OUT / GROUPS;  // output channels per group
conv_oc:
  for (int oc = 0; oc < C_OUT; ++oc) {
#pragma HLS UNROLL
    const int c0 = (oc / COG) * CIG;  // first input channel of oc's group
  conv_oh:
    for (int oh = 0; oh < H_OUT; ++oh) {
#pragma HLS UNROLL
    conv_ow:
      for (int ow = 0; ow < W_OUT; ++ow) {
#pragma HLS UNROLL
        acc_t acc = detail::as<b_t>(b[oc]);
      conv_ic:
        for (int ic = 0; ic < CIG; ++ic) {
#pragma HLS UNROLL
        conv_kh:
          for (int kh = 0; kh < KH; ++kh) {
#pragma HLS UNROLL
            const int ih = oh * SH - PAD_T + kh * DH;
          conv_kw:
            for (int kw = 0; kw < KW; ++kw) {
#pragma HLS UNROLL
              const int iw = ow * SW - PAD_L + kw * DW;
              if (ih >= 0 && ih < H_IN && iw >= 0 && iw < W_IN) {
                acc += x[((c0 + ic) * H_IN + ih) * W_IN + iw] *
                       detail::as<w_t>(w[((oc * CIG + ic) * KH + kh) * KW + kw]);
              }
            }
          }
        }
        y[(oc * H_OUT + oh) * W_OUT + ow] = acc;
      }
    }
  }
}

}  // namespace qfx

#endif  // QFX_CONV2D_H_
