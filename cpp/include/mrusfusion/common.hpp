// Shared helpers of the mrusfusion kernels: shapes, periodic row traversal, deterministic sums.
// Kernels know nothing of Python: raw pointers, shapes and a thread count.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#define MRF_RESTRICT __restrict

namespace mrusfusion::detail {

using idx = std::ptrdiff_t;

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

// Apply row(i) to every row in parallel (no reduction).
template <class Row>
inline void for_rows(idx n1, int threads, Row&& row) {
#pragma omp parallel for num_threads(clamp_threads(threads)) schedule(static)
  for (idx i = 0; i < n1; ++i) row(i);
}

inline void require(bool ok, const char* msg) {
  if (!ok) throw std::invalid_argument(msg);
}

}  // namespace mrusfusion::detail
