// Shared helpers of the mrusfusion kernels: shapes, periodic row traversal, deterministic sums.
// Kernels know nothing of Python: raw pointers, shapes and a thread count.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "types.hpp"

#define MRF_RESTRICT __restrict
// Per-pixel helpers called inside loops that must vectorise: forced inline, because GCC's unit
// growth limits otherwise left vexp as an out-of-line call (through the PLT) in the AVX2 build.
#if defined(__GNUC__)
#define MRF_INLINE inline __attribute__((always_inline))
#define MRF_FLATTEN __attribute__((flatten))
#else
#define MRF_INLINE inline
#define MRF_FLATTEN
#endif

// The kernels' namespace: `detail` in the baseline build; kernels_avx2.cpp compiles the same
// headers a second time as `mrusfusion::avx2` with AVX2/FMA enabled.
#ifndef MRF_NS
#define MRF_NS detail
#endif

namespace mrusfusion::MRF_NS {

using mrusfusion::idx;

inline int clamp_threads(int threads) { return threads < 1 ? 1 : threads; }

// Call px(j, jm, jp) for every column j of a periodic row of length n, with jm = j-1 and
// jp = j+1 modulo n. The interior loop has no modulo, so the compiler can vectorise it.
template <class Px>
inline void for_row(idx n, Px&& px) {
  if (n == 1) {
    px(0, 0, 0);
    return;
  }
  px(0, n - 1, 1);
#pragma omp simd
  for (idx j = 1; j < n - 1; ++j) px(j, j - 1, j + 1);
  px(n - 1, n - 2, 0);
}

// Call f(std::true_type{}) or f(std::false_type{}): a loop-invariant option (an optional mask or
// output) then becomes `if constexpr` in the pixel loop. A run-time branch there, even an
// invariant one, stopped GCC from vectorising the loop.
template <class F>
inline decltype(auto) with_flag(bool on, F&& f) {
  if (on) return f(std::true_type{});
  return f(std::false_type{});
}

inline idx prev_row(idx i, idx n) { return i == 0 ? n - 1 : i - 1; }
inline idx next_row(idx i, idx n) { return i + 1 == n ? 0 : i + 1; }

// Deterministic reduction: row(i) returns the partial sum of row i; rows are summed in order, so
// the result does not depend on the number of threads.
template <class Row>
inline double sum_rows(idx n1, int threads, Row&& row) {
  std::vector<double> part(static_cast<size_t>(n1));
#pragma omp parallel for num_threads(clamp_threads(threads)) schedule(static)
  for (idx i = 0; i < n1; ++i) part[static_cast<size_t>(i)] = row(i);
  double s = 0.0;
  for (double p : part) s += p;
  return s;
}

// As sum_rows, with a per-thread scratch buffer of `width` doubles: row(i, scratch).
template <class Row>
inline double sum_rows_scratch(idx n1, idx width, int threads, Row&& row) {
  std::vector<double> part(static_cast<size_t>(n1));
#pragma omp parallel num_threads(clamp_threads(threads))
  {
    std::vector<double> scratch(static_cast<size_t>(width));
#pragma omp for schedule(static)
    for (idx i = 0; i < n1; ++i) part[static_cast<size_t>(i)] = row(i, scratch.data());
  }
  double s = 0.0;
  for (double p : part) s += p;
  return s;
}

// Sum of n doubles with four interleaved accumulators (a fixed order, so deterministic).
inline double row_sum(const double* MRF_RESTRICT a, idx n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  idx j = 0;
  for (; j + 4 <= n; j += 4) {
    s0 += a[j];
    s1 += a[j + 1];
    s2 += a[j + 2];
    s3 += a[j + 3];
  }
  for (; j < n; ++j) s0 += a[j];
  return (s0 + s1) + (s2 + s3);
}

// sum_j a[j] b[j] over one row, in double. Reductions live in plain functions with local
// accumulators: an `omp simd reduction` over variables a lambda captured by reference kept them
// in memory, and GCC then ran the loop scalar or with emulated gathers.
template <class T>
MRF_INLINE double dot_row(const T* MRF_RESTRICT a, const T* MRF_RESTRICT b, idx n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (idx j = 0; j < n; ++j) s += static_cast<double>(a[j]) * static_cast<double>(b[j]);
  return s;
}

// Apply row(i) to every row in parallel (no reduction).
template <class Row>
inline void for_rows(idx n1, int threads, Row&& row) {
#pragma omp parallel for num_threads(clamp_threads(threads)) schedule(static)
  for (idx i = 0; i < n1; ++i) row(i);
}

// exp(x) for double, written so that loops calling it vectorise (the C library's exp is a
// scalar call without -ffast-math). Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, then a
// degree-13 Taylor polynomial (truncation error below 1e-17 relative) and scaling by 2^k through
// the exponent bits. Accurate to a few ulp; arguments are clamped to [-708, 709].
MRF_INLINE double vexp(double x) {
  x = std::min(std::max(x, -708.0), 709.0);  // min/max, not a branch: the loop must vectorise
  constexpr double log2e = 1.4426950408889634074;
  constexpr double ln2_hi = 6.93145751953125e-1, ln2_lo = 1.42860682030941723212e-6;
  constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to an integer in its low bits
  const double kd = x * log2e + shifter;
  const double k = kd - shifter;
  const double r = (x - k * ln2_hi) - k * ln2_lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  std::int64_t bits;
  std::memcpy(&bits, &kd, sizeof bits);
  // The low bits of kd hold k (two's complement); k + 1023 goes into the exponent field.
  const std::int64_t e = (bits - static_cast<std::int64_t>(0x4338000000000000LL) + 1023) << 52;
  double scale;
  std::memcpy(&scale, &e, sizeof scale);
  return p * scale;
}

// exp(x) for float, the same construction in single precision: |r| <= ln2/2 and a degree-7
// Taylor polynomial (truncation below 1e-8 relative), a few ulp; arguments clamped to [-87, 88].
MRF_INLINE float vexp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  constexpr float log2e = 1.44269504f;
  constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
  const float kd = x * log2e + shifter;
  const float k = kd - shifter;
  const float r = (x - k * ln2_hi) - k * ln2_lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  std::int32_t bits;
  std::memcpy(&bits, &kd, sizeof bits);
  const std::int32_t e = (bits - static_cast<std::int32_t>(0x4B400000) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, sizeof scale);
  return p * scale;
}

inline void require(bool ok, const char* msg) {
  if (!ok) throw std::invalid_argument(msg);
}

}  // namespace mrusfusion::MRF_NS
