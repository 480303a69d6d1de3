// The fused ap_fixed cast: the operations of qfx/kernel.py, in the same order and the same floating-point type,
// one element at a time, so every result is the bit pattern the tensor-op kernel gives (see there why it is exact).
// Forward: scale, round by mode, overflow by mode, unscale, in one pass; learned formats' backward (the STE mask,
// the binary-point and width gradients, summed per channel) in one pass too. Compiled with -ffp-contract=off and no
// -ffast-math: no operation may be fused or reordered (-fno-trapping-math only lets branch-free code vectorize: it
// changes no result).
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

enum Quant { TRN, TRN_ZERO, RND, RND_ZERO, RND_MIN_INF, RND_INF, RND_CONV };
enum Overflow { SAT, SAT_ZERO, SAT_SYM, WRAP, WRAP_SM };

struct Mode {
  int is_signed, quant, overflow, sat_bits, may_underflow;
};

template <class T>
struct Pow2 {
  T scale, inv_scale, modulus, inv_modulus, half, inv_half, low, inv_low, lo, hi;
};

// 2**e rounded into T exactly as torch's float64 -> T conversion of the same power of two.
template <class T>
T pow2(double e) {
  return static_cast<T>(std::ldexp(1.0, static_cast<int>(e)));
}

// Per-channel frac_bits and width as the caller holds them (float32 or float64, one value or one per channel),
// rounded half to even as torch.round does.
struct Params {
  const void* frac;
  const void* width;
  int dtype;  // 0 float32, 1 float64
  int64_t frac_count, width_count;

  double get(const void* p, int64_t count, int64_t c) const {
    const int64_t i = count == 1 ? 0 : c;
    return std::nearbyint(dtype == 0 ? static_cast<double>(static_cast<const float*>(p)[i])
                                     : static_cast<const double*>(p)[i]);
  }
};

template <class T>
Pow2<T> make_pow2(double frac, double width, int sat_bits, int is_signed) {
  Pow2<T> p;
  p.scale = pow2<T>(frac);
  p.inv_scale = pow2<T>(-frac);
  p.modulus = pow2<T>(width);
  p.inv_modulus = pow2<T>(-width);
  p.half = pow2<T>(width - 1);
  p.inv_half = pow2<T>(1 - width);
  p.low = pow2<T>(width - sat_bits);
  p.inv_low = pow2<T>(sat_bits - width);
  if (is_signed) {
    p.lo = -p.half;
    p.hi = p.half - T(1);
  } else {
    p.lo = T(0);
    p.hi = p.modulus - T(1);
  }
  return p;
}

template <class T>
inline T mod_pow2(T a, T m, T inv_m) {
  return a - std::floor(a * inv_m) * m;
}

template <class T>
inline bool bit(T u, T inv_weight) {
  return mod_pow2<T>(std::floor(u * inv_weight), T(2), T(0.5)) >= T(1);
}

template <class T>
inline T b2f(bool b) {
  return b ? T(1) : T(0);
}

// Branch-free throughout (both sides computed, then selected; & and | on bools) so that loops vectorize.
template <class T, int Q>
inline T round_code(T y) {
  if (Q == TRN) return std::floor(y);
  if (Q == TRN_ZERO) return std::trunc(y);
  if (Q == RND_CONV) return std::nearbyint(y);
  if (Q == RND) {
    T fl = std::floor(y);
    return fl + b2f<T>((y - fl) >= T(0.5));
  }
  if (Q == RND_MIN_INF) {
    T ce = std::ceil(y);
    return ce - b2f<T>((-y + ce) >= T(0.5));
  }
  const T m = std::fabs(y);
  if (Q == RND_INF) {
    T fl = std::floor(m);
    return std::copysign(fl + b2f<T>((m - fl) >= T(0.5)), y);
  }
  T ce = std::ceil(m);  // RND_ZERO
  return std::copysign(ce - b2f<T>((-m + ce) >= T(0.5)), y);
}

template <class T>
inline T clamp(T v, T lo, T hi) {  // NaN passes, as torch.clamp
  const T a = v < lo ? lo : v;
  return v > hi ? hi : a;
}

// Mode flags as loop-invariant locals (no aliasing with the output), read by value.
struct Flags {
  bool is_signed, may_underflow;
  int sat_bits;
};

// NS: the class of sat_bits for the wrap modes (0, 1, or 2 for >= 2), a compile-time constant so loops vectorize.
template <class T, int O, int NS>
inline T overflow_code(T r, bool first_deleted, const Flags f, const Pow2<T> p) {
  const bool below = r < p.lo, above = r > p.hi;
  if (O == SAT) return clamp(r, p.lo, p.hi);
  if (O == SAT_SYM) return clamp(r, f.is_signed ? -p.half + b2f<T>(p.half >= T(2)) : p.lo, p.hi);
  if (O == SAT_ZERO) return (below | above) ? T(0) : r;
  if (O == WRAP && NS == 0) {
    const T u = r - std::floor(r * p.inv_modulus) * p.modulus;
    const T s = u - std::floor(u * p.inv_half) * p.modulus;
    return f.is_signed ? s : u;
  }
  const bool out_of_range = below | above;
  const bool negative = below;
  T u = mod_pow2(r, p.modulus, p.inv_modulus);
  if (O == WRAP_SM) {
    const bool msb_set = u >= p.half;
    bool flip;
    if (NS == 0)
      flip = first_deleted != msb_set;
    else if (NS == 1)
      flip = negative != msb_set;
    else
      flip = bit(u, p.inv_low) == negative;
    const T inverted = (p.modulus - T(1)) - u;
    u = (out_of_range & flip) ? inverted : u;
  }
  if (NS > 0) {
    const T top_signed = negative ? p.half : p.half - p.low;
    const T top = f.is_signed ? top_signed : p.modulus - p.low;
    const T forced = mod_pow2(u, p.low, p.inv_low) + top;
    u = out_of_range ? forced : u;
  }
  const T as_signed = u - b2f<T>(u >= p.half) * p.modulus;
  return f.is_signed ? as_signed : u;
}

template <class T>
constexpr T big() {
  return sizeof(T) == 4 ? T(18446744073709551616.0) : T(1329227995784915872903807060280344576.0);  // 2**64, 2**120
}

// One element: returns the exact value; `inside` says whether the rounded code was in range.
template <class T, int Q, int O, int NS>
inline T cast_one(T x, const Flags f, const Pow2<T> p, bool& inside) {
  T y = x * p.scale;
  const T repaired = y == T(0) ? x : y;
  y = f.may_underflow ? repaired : y;
  if (O == WRAP || O == WRAP_SM) y = clamp(y, -big<T>(), big<T>());
  bool first_deleted = false;
  if (O == WRAP_SM && NS == 0) first_deleted = bit(std::floor(y), p.inv_modulus);
  const T r = round_code<T, Q>(y);
  inside = (r >= p.lo) & (r <= p.hi);
  return overflow_code<T, O, NS>(r, first_deleted, f, p) * p.inv_scale + T(0);
}

// A run of elements sharing one format: the loop the compiler vectorizes.
template <class T, class To, int Q, int O, int NS>
void segment(const T* __restrict x, To* __restrict out, uint8_t* __restrict inside, int64_t len, const Mode& m,
             const Pow2<T>& pr) {
  const Flags f{m.is_signed != 0, m.may_underflow != 0, m.sat_bits};
  const Pow2<T> p = pr;
  bool in;
  if (inside) {
    for (int64_t i = 0; i < len; ++i) {
      out[i] = static_cast<To>(cast_one<T, Q, O, NS>(x[i], f, p, in));
      inside[i] = in;
    }
  } else {
    for (int64_t i = 0; i < len; ++i) out[i] = static_cast<To>(cast_one<T, Q, O, NS>(x[i], f, p, in));
  }
}

template <class T, class To>
using SegmentFn = void (*)(const T*, To*, uint8_t*, int64_t, const Mode&, const Pow2<T>&);

template <class T, class To, int Q, int O>
SegmentFn<T, To> pick_sat_bits(int n) {
  if (O != WRAP && O != WRAP_SM) return segment<T, To, Q, O, 0>;
  return n == 0 ? segment<T, To, Q, O, 0> : (n == 1 ? segment<T, To, Q, O, 1> : segment<T, To, Q, O, 2>);
}

template <class T, class To, int Q>
SegmentFn<T, To> pick_overflow(int o, int n) {
  switch (o) {
    case SAT: return pick_sat_bits<T, To, Q, SAT>(n);
    case SAT_ZERO: return pick_sat_bits<T, To, Q, SAT_ZERO>(n);
    case SAT_SYM: return pick_sat_bits<T, To, Q, SAT_SYM>(n);
    case WRAP: return pick_sat_bits<T, To, Q, WRAP>(n);
    default: return pick_sat_bits<T, To, Q, WRAP_SM>(n);
  }
}

template <class T, class To>
SegmentFn<T, To> pick(int q, int o, int n) {
  switch (q) {
    case TRN: return pick_overflow<T, To, TRN>(o, n);
    case TRN_ZERO: return pick_overflow<T, To, TRN_ZERO>(o, n);
    case RND: return pick_overflow<T, To, RND>(o, n);
    case RND_ZERO: return pick_overflow<T, To, RND_ZERO>(o, n);
    case RND_MIN_INF: return pick_overflow<T, To, RND_MIN_INF>(o, n);
    case RND_INF: return pick_overflow<T, To, RND_INF>(o, n);
    default: return pick_overflow<T, To, RND_CONV>(o, n);
  }
}

// Run body(begin, end) over [0, n) on up to `threads` threads (std::thread: no second OpenMP runtime in torch's
// process). Small tensors stay on the calling thread.
template <class F>
void parallel(int64_t n, int threads, F body) {
  const int64_t grain = 1 << 15;
  int64_t t = threads < 1 ? 1 : threads;
  if (t > n / grain) t = n / grain;
  if (t <= 1) {
    body(0, n, 0);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t chunk = (n + t - 1) / t;
  for (int64_t k = 1; k < t; ++k) {
    const int64_t b = k * chunk, e = b + chunk < n ? b + chunk : n;
    pool.emplace_back([=] { body(b, e, static_cast<int>(k)); });
  }
  body(0, chunk, 0);
  for (auto& th : pool) th.join();
}

inline int64_t chunk_threads(int64_t n, int threads) {
  const int64_t grain = 1 << 15;
  int64_t t = threads < 1 ? 1 : threads;
  if (t > n / grain) t = n / grain;
  return t < 1 ? 1 : t;
}

// x: n elements; channel of element i = (i / inner) % channels; frac/width: one (integer-valued) entry per channel.
template <class T, class To>
void forward(const T* x, To* out, uint8_t* inside, int64_t n, const Params& pa, int64_t channels, int64_t inner,
             const Mode& m, int threads) {
  std::vector<Pow2<T>> ps(channels);
  for (int64_t c = 0; c < channels; ++c)
    ps[c] = make_pow2<T>(pa.get(pa.frac, pa.frac_count, c), pa.get(pa.width, pa.width_count, c), m.sat_bits,
                         m.is_signed);
  const SegmentFn<T, To> fn = pick<T, To>(m.quant, m.overflow, m.sat_bits);
  parallel(n, threads, [&](int64_t b, int64_t e, int) {
    int64_t i = b;
    while (i < e) {
      const int64_t block = i / inner;
      const int64_t stop = (block + 1) * inner < e ? (block + 1) * inner : e;
      fn(x + i, out + i, inside ? inside + i : nullptr, stop - i, m, ps[block % channels]);
      i = stop;
    }
  });
}

// One run of elements sharing a format, for backward below.
template <class T, int Q>
void backward_segment(const T* __restrict x, const T* __restrict grad, T* __restrict grad_x, int64_t len, bool wraps,
                      const Pow2<T>& pr, double* sf_out, double* sw_out) {
  const Pow2<T> p = pr;
  const T ln2 = static_cast<T>(0.6931471805599453);
  constexpr int64_t B = 1024;  // a branch-free map into small buffers (vectorized), then their sums in double
  T cf[B], cw[B];
  uint8_t keep[B];
  double tf = 0.0, tw = 0.0;
  for (int64_t b = 0; b < len; b += B) {
    const int64_t n = len - b < B ? len - b : B;
    const T* __restrict xb = x + b;
    const T* __restrict gb = grad + b;
    for (int64_t i = 0; i < n; ++i) {
      const T xv = xb[i], g = gb[i];
      const T r = round_code<T, Q>(xv * p.scale);
      const bool inside = (r >= p.lo) & (r <= p.hi);
      const T sat = clamp(r, p.lo, p.hi) * p.inv_scale;
      const T d_in = ln2 * (xv - sat), d_out = -ln2 * sat;
      cf[i] = g * (inside ? d_in : d_out);
      cw[i] = inside ? T(0) : g * (ln2 * sat);
      keep[i] = wraps | inside;
    }
    T lf[8] = {}, lw[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) {
        lf[j] += cf[i + j];
        lw[j] += cw[i + j];
      }
    for (; i < n; ++i) {
      lf[0] += cf[i];
      lw[0] += cw[i];
    }
    for (int j = 0; j < 8; ++j) {
      tf += static_cast<double>(lf[j]);
      tw += static_cast<double>(lw[j]);
    }
    if (grad_x) {
      T* __restrict ob = grad_x + b;
      for (int64_t k = 0; k < n; ++k) ob[k] = keep[k] ? gb[k] : gb[k] * T(0);
    }
  }
  *sf_out += tf;
  *sw_out += tw;
}

// Learned formats' backward, as functional.py's _LearnedCast.backward: grad_x (masked unless wrapping) and, per
// channel, sum(grad * d value / d frac_bits) and sum(grad * d value / d width), in blocks added in double.
template <class T>
void backward(const T* x, const T* grad, T* grad_x, double* sum_frac, double* sum_width, int64_t n,
              const Params& pa, int64_t channels, int64_t inner, const Mode& m, int threads) {
  std::vector<Pow2<T>> ps(channels);
  for (int64_t c = 0; c < channels; ++c)
    ps[c] = make_pow2<T>(pa.get(pa.frac, pa.frac_count, c), pa.get(pa.width, pa.width_count, c), m.sat_bits,
                         m.is_signed);
  const int64_t t = chunk_threads(n, threads);
  std::vector<double> partial(2 * t * channels, 0.0);
  const bool wraps = m.overflow == WRAP || m.overflow == WRAP_SM;
  using Fn = void (*)(const T*, const T*, T*, int64_t, bool, const Pow2<T>&, double*, double*);
  Fn fn;
  switch (m.quant) {
    case TRN: fn = backward_segment<T, TRN>; break;
    case TRN_ZERO: fn = backward_segment<T, TRN_ZERO>; break;
    case RND: fn = backward_segment<T, RND>; break;
    case RND_ZERO: fn = backward_segment<T, RND_ZERO>; break;
    case RND_MIN_INF: fn = backward_segment<T, RND_MIN_INF>; break;
    case RND_INF: fn = backward_segment<T, RND_INF>; break;
    default: fn = backward_segment<T, RND_CONV>; break;
  }
  const int64_t block_len = 4096;  // float sums over short blocks, blocks added in double
  parallel(n, threads, [&](int64_t b, int64_t e, int k) {
    double* pf = partial.data() + 2 * k * channels;
    double* pw = pf + channels;
    int64_t i = b;
    while (i < e) {
      const int64_t block = i / inner;
      int64_t stop = (block + 1) * inner < e ? (block + 1) * inner : e;
      if (stop - i > block_len) stop = i + block_len;
      const int64_t c = block % channels;
      fn(x + i, grad + i, grad_x ? grad_x + i : nullptr, stop - i, wraps, ps[c], pf + c, pw + c);
      i = stop;
    }
  });
  for (int64_t c = 0; c < channels; ++c) {
    double f = 0.0, w = 0.0;
    for (int64_t k = 0; k < t; ++k) {
      f += partial[2 * k * channels + c];
      w += partial[(2 * k + 1) * channels + c];
    }
    sum_frac[c] = f;
    sum_width[c] = w;
  }
}

}  // namespace

extern "C" {

// dtype codes: 0 = float32, 1 = float64. The compute type is the input's. frac/width: param_dtype values, one or
// one per channel (frac_count / width_count).
int qfx_cast_forward(const void* x, int in_dtype, void* out, int out_dtype, uint8_t* inside, int64_t n,
                     const void* frac, const void* width, int param_dtype, int64_t frac_count, int64_t width_count,
                     int64_t channels, int64_t inner, int is_signed, int quant, int overflow, int sat_bits,
                     int may_underflow, int threads) {
  const Mode m{is_signed, quant, overflow, sat_bits, may_underflow};
  const Params pa{frac, width, param_dtype, frac_count, width_count};
  if (in_dtype == 0 && out_dtype == 0)
    forward<float, float>(static_cast<const float*>(x), static_cast<float*>(out), inside, n, pa, channels, inner, m,
                          threads);
  else if (in_dtype == 1 && out_dtype == 1)
    forward<double, double>(static_cast<const double*>(x), static_cast<double*>(out), inside, n, pa, channels, inner,
                            m, threads);
  else if (in_dtype == 1 && out_dtype == 0)
    forward<double, float>(static_cast<const double*>(x), static_cast<float*>(out), inside, n, pa, channels, inner,
                           m, threads);
  else
    return 1;
  return 0;
}

int qfx_cast_backward(const void* x, const void* grad, void* grad_x, int dtype, double* sum_frac, double* sum_width,
                      int64_t n, const void* frac, const void* width, int param_dtype, int64_t frac_count,
                      int64_t width_count, int64_t channels, int64_t inner, int is_signed, int quant, int overflow,
                      int sat_bits, int threads) {
  const Mode m{is_signed, quant, overflow, sat_bits, 0};
  const Params pa{frac, width, param_dtype, frac_count, width_count};
  if (dtype == 0)
    backward<float>(static_cast<const float*>(x), static_cast<const float*>(grad), static_cast<float*>(grad_x),
                    sum_frac, sum_width, n, pa, channels, inner, m, threads);
  else if (dtype == 1)
    backward<double>(static_cast<const double*>(x), static_cast<const double*>(grad), static_cast<double*>(grad_x),
                     sum_frac, sum_width, n, pa, channels, inner, m, threads);
  else
    return 1;
  return 0;
}

int qfx_cast_abi_version() { return 2; }
}
