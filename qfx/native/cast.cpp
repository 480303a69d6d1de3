// The fused ap_fixed cast: the operations of qfx/kernel.py, in the same order and the same floating-point type,
// one element at a time, so every result is the bit pattern the tensor-op kernel gives (see there why it is exact).
// Forward: scale, round by mode, overflow by mode, unscale, in one pass; learned formats' backward (the STE mask,
// the binary-point and width gradients, summed per channel) in one pass too. Compiled with -ffp-contract=off and no
// -ffast-math: no operation may be fused or reordered.
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

template <class T>
inline T round_code(T y, int quant) {
  switch (quant) {
    case TRN:
      return std::floor(y);
    case TRN_ZERO:
      return std::trunc(y);
    case RND_CONV:
      return std::nearbyint(y);
    case RND: {
      T fl = std::floor(y);
      return fl + b2f<T>((y - fl) >= T(0.5));
    }
    case RND_MIN_INF: {
      T ce = std::ceil(y);
      return ce - b2f<T>((-y + ce) >= T(0.5));
    }
    case RND_INF: {
      T m = std::fabs(y);
      T fl = std::floor(m);
      return std::copysign(fl + b2f<T>((m - fl) >= T(0.5)), y);
    }
    default: {  // RND_ZERO
      T m = std::fabs(y);
      T ce = std::ceil(m);
      return std::copysign(ce - b2f<T>((-m + ce) >= T(0.5)), y);
    }
  }
}

template <class T>
inline T clamp(T v, T lo, T hi) {  // NaN passes, as torch.clamp
  return v < lo ? lo : (v > hi ? hi : v);
}

template <class T>
inline T overflow_code(T r, bool first_deleted, const Mode& m, const Pow2<T>& p) {
  const int ov = m.overflow;
  if (ov == SAT || (ov == SAT_SYM && !m.is_signed)) return clamp(r, p.lo, p.hi);
  if (ov == SAT_SYM) return clamp(r, -p.half + b2f<T>(p.half >= T(2)), p.hi);
  if (ov == SAT_ZERO) return (r < p.lo || r > p.hi) ? T(0) : r;
  if (ov == WRAP && m.sat_bits == 0) {
    r = r - std::floor(r * p.inv_modulus) * p.modulus;
    if (m.is_signed) r = r - std::floor(r * p.inv_half) * p.modulus;
    return r;
  }
  const bool out_of_range = r < p.lo || r > p.hi;
  const bool negative = r < p.lo;
  T u = mod_pow2(r, p.modulus, p.inv_modulus);
  if (ov == WRAP_SM) {
    const bool msb_set = u >= p.half;
    bool flip;
    if (m.sat_bits == 0)
      flip = first_deleted != msb_set;
    else if (m.sat_bits == 1)
      flip = negative != msb_set;
    else
      flip = bit(u, p.inv_low) == negative;
    if (out_of_range && flip) u = (p.modulus - T(1)) - u;
  }
  if (m.sat_bits > 0 && out_of_range) {
    const T top = m.is_signed ? (negative ? p.half : p.half - p.low) : p.modulus - p.low;
    u = mod_pow2(u, p.low, p.inv_low) + top;
  }
  return m.is_signed ? u - b2f<T>(u >= p.half) * p.modulus : u;
}

template <class T>
constexpr T big() {
  return sizeof(T) == 4 ? T(18446744073709551616.0) : T(1329227995784915872903807060280344576.0);  // 2**64, 2**120
}

// One element: returns the exact value; *inside says whether the rounded code was in range.
template <class T>
inline T cast_one(T x, const Mode& m, const Pow2<T>& p, bool* inside) {
  T y = x * p.scale;
  if (m.may_underflow && y == T(0)) y = x;
  const bool wraps = m.overflow == WRAP || m.overflow == WRAP_SM;
  if (wraps) y = clamp(y, -big<T>(), big<T>());
  bool first_deleted = false;
  if (m.overflow == WRAP_SM && m.sat_bits == 0) first_deleted = bit(std::floor(y), p.inv_modulus);
  const T r = round_code(y, m.quant);
  *inside = r >= p.lo && r <= p.hi;
  return overflow_code(r, first_deleted, m, p) * p.inv_scale + T(0);
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
void forward(const T* x, To* out, uint8_t* inside, int64_t n, const double* frac, const double* width,
             int64_t channels, int64_t inner, const Mode& m, int threads) {
  std::vector<Pow2<T>> ps(channels);
  for (int64_t c = 0; c < channels; ++c) ps[c] = make_pow2<T>(frac[c], width[c], m.sat_bits, m.is_signed);
  parallel(n, threads, [&](int64_t b, int64_t e, int) {
    int64_t i = b;
    while (i < e) {
      const int64_t block = i / inner;
      const int64_t stop = (block + 1) * inner < e ? (block + 1) * inner : e;
      const Pow2<T> p = ps[block % channels];
      bool in;
      if (inside) {
        for (; i < stop; ++i) {
          out[i] = static_cast<To>(cast_one(x[i], m, p, &in));
          inside[i] = in;
        }
      } else {
        for (; i < stop; ++i) out[i] = static_cast<To>(cast_one(x[i], m, p, &in));
      }
    }
  });
}

// Learned formats' backward, as functional.py's _LearnedCast.backward: grad_x (masked unless wrapping) and, per
// channel, sum(grad * d value / d frac_bits) and sum(grad * d value / d width), accumulated in double.
template <class T>
void backward(const T* x, const T* grad, T* grad_x, double* sum_frac, double* sum_width, int64_t n,
              const double* frac, const double* width, int64_t channels, int64_t inner, const Mode& m, int threads) {
  std::vector<Pow2<T>> ps(channels);
  for (int64_t c = 0; c < channels; ++c) ps[c] = make_pow2<T>(frac[c], width[c], m.sat_bits, m.is_signed);
  const int64_t t = chunk_threads(n, threads);
  std::vector<double> partial(2 * t * channels, 0.0);
  const bool wraps = m.overflow == WRAP || m.overflow == WRAP_SM;
  const T ln2 = static_cast<T>(0.6931471805599453);
  parallel(n, threads, [&](int64_t b, int64_t e, int k) {
    double* pf = partial.data() + 2 * k * channels;
    double* pw = pf + channels;
    int64_t i = b;
    while (i < e) {
      const int64_t block = i / inner;
      const int64_t stop = (block + 1) * inner < e ? (block + 1) * inner : e;
      const int64_t c = block % channels;
      const Pow2<T> p = ps[c];
      double sf = 0.0, sw = 0.0;
      for (; i < stop; ++i) {
        const T xv = x[i], g = grad[i];
        const T r = round_code(xv * p.scale, m.quant);
        const bool inside = r >= p.lo && r <= p.hi;
        const T sat = clamp(r, p.lo, p.hi) * p.inv_scale;
        if (inside) {
          sf += static_cast<double>(g * (ln2 * (xv - sat)));
        } else {
          sf += static_cast<double>(g * (-ln2 * sat));
          sw += static_cast<double>(g * (ln2 * sat));
        }
        if (grad_x) grad_x[i] = (wraps || inside) ? g : g * T(0);
      }
      pf[c] += sf;
      pw[c] += sw;
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

// dtype codes: 0 = float32, 1 = float64. The compute type is the input's.
int qfx_cast_forward(const void* x, int in_dtype, void* out, int out_dtype, uint8_t* inside, int64_t n,
                     const double* frac, const double* width, int64_t channels, int64_t inner, int is_signed,
                     int quant, int overflow, int sat_bits, int may_underflow, int threads) {
  const Mode m{is_signed, quant, overflow, sat_bits, may_underflow};
  if (in_dtype == 0 && out_dtype == 0)
    forward<float, float>(static_cast<const float*>(x), static_cast<float*>(out), inside, n, frac, width, channels,
                          inner, m, threads);
  else if (in_dtype == 1 && out_dtype == 1)
    forward<double, double>(static_cast<const double*>(x), static_cast<double*>(out), inside, n, frac, width,
                            channels, inner, m, threads);
  else if (in_dtype == 1 && out_dtype == 0)
    forward<double, float>(static_cast<const double*>(x), static_cast<float*>(out), inside, n, frac, width,
                           channels, inner, m, threads);
  else
    return 1;
  return 0;
}

int qfx_cast_backward(const void* x, const void* grad, void* grad_x, int dtype, double* sum_frac, double* sum_width,
                      int64_t n, const double* frac, const double* width, int64_t channels, int64_t inner,
                      int is_signed, int quant, int overflow, int sat_bits, int threads) {
  const Mode m{is_signed, quant, overflow, sat_bits, 0};
  if (dtype == 0)
    backward<float>(static_cast<const float*>(x), static_cast<const float*>(grad), static_cast<float*>(grad_x),
                    sum_frac, sum_width, n, frac, width, channels, inner, m, threads);
  else if (dtype == 1)
    backward<double>(static_cast<const double*>(x), static_cast<const double*>(grad), static_cast<double*>(grad_x),
                     sum_frac, sum_width, n, frac, width, channels, inner, m, threads);
  else
    return 1;
  return 0;
}

int qfx_cast_abi_version() { return 1; }
}
