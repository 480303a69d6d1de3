// qfx/dense.h -- fully connected layer over ap_fixed types.
//
// Provides qfx::dense: y[o] = b[o] + sum_i x[i] * w[o][i], weights stored [out][in] like PyTorch's Linear.
//
// Why it is exact: x[i] * w[...] has the exact ap_fixed product type <W_in + W_w, I_in + I_w>; acc_t is chosen by the
// code generator wide enough to hold the bias and every partial sum exactly, so `acc += product` (which computes the
// exact sum and then re-quantizes into acc_t) never rounds or overflows. The only rounding/overflow is the final
// `y[o] = acc`, which applies out_t's quantization and overflow modes exactly as the hardware does.
#ifndef QFX_DENSE_H_
#define QFX_DENSE_H_

#include "ap_fixed.h"
#include "constant.h"

namespace qfx {

// No bias: the generator passes a zero array of type acc_t.
// wc_t / bc_t: the arrays' element types, w_t / b_t themselves or integer codes of them (constant.h).
template <class in_t, class w_t, class b_t, class acc_t, class out_t, int N_IN, int N_OUT, class wc_t = w_t,
          class bc_t = b_t>
void dense(const in_t x[N_IN], out_t y[N_OUT], const wc_t w[N_OUT * N_IN], const bc_t b[N_OUT]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=w,b
dense_out:
  for (int o = 0; o < N_OUT; ++o) {
#pragma HLS UNROLL
    acc_t acc = detail::as<b_t>(b[o]);
  dense_in:
    for (int i = 0; i < N_IN; ++i) {
#pragma HLS UNROLL
      acc += x[i] * detail::as<w_t>(w[o * N_IN + i]);
    }
    y[o] = acc;
  }
}

}  // namespace qfx

#endif  // QFX_DENSE_H_
