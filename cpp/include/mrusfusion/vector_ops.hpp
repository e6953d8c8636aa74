// Whole-image vector updates of the solvers, fused into one pass each (in NumPy they took two or
// three passes and a temporary): out = alpha a + beta b with its squared norm, and the diagonal
// spectral scaling of the v-step preconditioner.
#pragma once
#include <complex>

#include "common.hpp"

namespace mrusfusion::MRF_NS {

// out = alpha a + beta b over n1 rows of n2 values; returns ||out||^2 (rows summed in order, so
// independent of the thread count). out may be a or b: each element depends on its own index
// only, which is all `omp simd` assumes.
template <class T>
MRF_INLINE double axpby_row(const T* a, const T* b, idx n, double alpha, double beta, T* o) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (idx j = 0; j < n; ++j) {
    const T r = static_cast<T>(alpha * static_cast<double>(a[j]) + beta * static_cast<double>(b[j]));
    o[j] = r;
    s += static_cast<double>(r) * static_cast<double>(r);
  }
  return s;
}

template <class T>
double axpby(const T* a, const T* b, idx n1, idx n2, double alpha, double beta, T* out,
             int threads) {
  return sum_rows(n1, threads, [&](idx i) MRF_FLATTEN {
    return axpby_row(a + i * n2, b + i * n2, n2, alpha, beta, out + i * n2);
  });
}

// Z /= (shift + scale * d) in place, Z complex and d real, both (n1, h2).
template <class T>
void spectral_scale(std::complex<T>* Z_, const T* MRF_RESTRICT d, idx n1, idx h2, double shift,
                    double scale, int threads) {
  T* MRF_RESTRICT Z = reinterpret_cast<T*>(Z_);
  const T sh = static_cast<T>(shift), sc = static_cast<T>(scale);
  for_rows(n1, threads, [&](idx i) MRF_FLATTEN {
    for (idx j = i * h2; j < (i + 1) * h2; ++j) {
      const T inv = T(1) / (sh + sc * d[j]);
      Z[2 * j] *= inv;
      Z[2 * j + 1] *= inv;
    }
  });
}

}  // namespace mrusfusion::MRF_NS
