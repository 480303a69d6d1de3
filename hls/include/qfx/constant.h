// qfx/constant.h -- constants of the layer library: a value of its type, or that type's integer code.
//
// The generator writes weights, biases, scales and tables as ROMs of plain integers (their codes): a C++ compiler
// initialises such an array statically, where an array of ap_fixed literals costs a constructor call per entry
// (4,096 literals: 21 s of g++, 16,384: over 10 min; as codes: 2 s). detail::as<T>(c) turns an entry back into its
// type T: exact (the low W bits of the code, no rounding), and a constant once the loops are unrolled. Arrays of
// T itself (as the library's own tests pass) are returned unchanged.
#ifndef QFX_CONSTANT_H_
#define QFX_CONSTANT_H_

#include "ap_fixed.h"

namespace qfx {
namespace detail {

template <class T>
inline T as(const T &v) {
#pragma HLS INLINE
  return v;
}

template <class T>
inline T as(const int c) {
#pragma HLS INLINE
  T v;
  v.range(T::width - 1, 0) = c;  // the low W bits of the code
  return v;
}

template <class T>
inline T as(const long long c) {
#pragma HLS INLINE
  T v;
  v.range(T::width - 1, 0) = c;
  return v;
}

}  // namespace detail
}  // namespace qfx

#endif  // QFX_CONSTANT_H_
