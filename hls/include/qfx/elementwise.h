// qfx/elementwise.h -- element-wise layers over ap_fixed types: cast, relu, relu_clip, add, affine.
//
// Arrays are flat NCHW without batch; `affine` is per channel (element i = c * HW + j belongs to channel c).
//
// Why it is exact: comparisons between ap_fixed values of any two types are exact; a + b and x * scale have the
// exact ap_fixed result types (a + b: F = max(F_a, F_b), one more integer bit; x * s: <W_x + W_s, I_x + I_s>);
// affine's acc_t is chosen by the generator to hold x * scale + shift exactly. The only rounding/overflow is the
// final assignment to out_t, with out_t's quantization and overflow modes, as in hardware.
#ifndef QFX_ELEMENTWISE_H_
#define QFX_ELEMENTWISE_H_

#include "ap_fixed.h"
#include "constant.h"

namespace qfx {

// y[i] = x[i], re-quantized into out_t.
template <class in_t, class out_t, int N>
void cast(const in_t x[N], out_t y[N]) {
#pragma HLS PIPELINE II=1
cast_i:
  for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
    y[i] = x[i];
  }
}

// y[i] = max(x[i], 0), assigned into out_t.
template <class in_t, class out_t, int N>
void relu(const in_t x[N], out_t y[N]) {
#pragma HLS PIPELINE II=1
relu_i:
  for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
    if (x[i] > 0) {
      y[i] = x[i];
    } else {
      y[i] = 0;
    }
  }
}

// y[i] = min(max(x[i], 0), max_value), compared exactly in the operand types, then assigned into out_t.
template <class in_t, class max_t, class out_t, int N>
void relu_clip(const in_t x[N], out_t y[N], const max_t max_value) {
#pragma HLS PIPELINE II=1
relu_clip_i:
  for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
    const in_t r = (x[i] > 0) ? x[i] : in_t(0);  // 0 is a value of every ap_fixed type
    if (r > max_value) {
      y[i] = max_value;
    } else {
      y[i] = r;
    }
  }
}

// y[i] = a[i] + b[i], or a[i] - b[i] when SUB: exact in its ap_fixed result type (a difference's is signed), then
// assigned into out_t.
template <class a_t, class b_t, class out_t, int N, bool SUB = false>
void add(const a_t a[N], const b_t b[N], out_t y[N]) {
#pragma HLS PIPELINE II=1
add_i:
  for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
    if (SUB)
      y[i] = a[i] - b[i];
    else
      y[i] = a[i] + b[i];
  }
}

// y[i] = a[i] * b[i]: the exact product (ap_fixed's result type of *), assigned into out_t.
template <class a_t, class b_t, class out_t, int N>
void mul(const a_t a[N], const b_t b[N], out_t y[N]) {
#pragma HLS PIPELINE II=1
mul_i:
  for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
    y[i] = a[i] * b[i];
  }
}

// y[c * HW + j] = a[c * HW + j] * g[c]: a feature map times one value per channel (squeeze-and-excitation), the
// exact product assigned into out_t.
template <class a_t, class g_t, class out_t, int C, int HW>
void mul_channel(const a_t a[C * HW], const g_t g[C], out_t y[C * HW]) {
#pragma HLS PIPELINE II=1
mul_c:
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL
  mul_j:
    for (int j = 0; j < HW; ++j) {
#pragma HLS UNROLL
      y[c * HW + j] = a[c * HW + j] * g[c];
    }
  }
}

// Per-channel affine (batch norm as the hardware runs it; also a scalar multiply with C equal scales and zero
// shifts): for i = c * HW + j, acc_t a = x[i] * scale[c]; a += shift[c]; y[i] = a.
// sc_t / tc_t: the arrays' element types, s_t / t_t themselves or integer codes of them (constant.h).
template <class in_t, class s_t, class t_t, class acc_t, class out_t, int C, int HW, class sc_t = s_t,
          class tc_t = t_t>
void affine(const in_t x[C * HW], out_t y[C * HW], const sc_t scale[C], const tc_t shift[C]) {
#pragma HLS PIPELINE II=1
#pragma HLS FUNCTION_INSTANTIATE variable=scale,shift
affine_c:
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL
  affine_j:
    for (int j = 0; j < HW; ++j) {
#pragma HLS UNROLL
      acc_t a = x[c * HW + j] * detail::as<s_t>(scale[c]);
      a += detail::as<t_t>(shift[c]);
      y[c * HW + j] = a;
    }
  }
}

}  // namespace qfx

#endif  // QFX_ELEMENTWISE_H_
