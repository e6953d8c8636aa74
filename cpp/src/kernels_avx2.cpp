// The kernels compiled a second time with AVX2 and FMA (namespace mrusfusion::avx2); the
// binding uses them when the CPU has both, else the baseline x86-64 build (namespace detail).
// Standard headers come first, outside the target pragma, so that no library code compiled
// with AVX2 can be picked by the linker for the baseline path.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "mrusfusion/kernel_table.hpp"

#if defined(MRUSFUSION_AVX2)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define MRF_NS avx2
#include "mrusfusion/table_impl.hpp"

namespace mrusfusion {

bool avx2_compiled() { return true; }

const KernelTable<double>& avx2_table_double() {
  static const KernelTable<double> t = avx2::make_table<double>();
  return t;
}

const KernelTable<float>& avx2_table_float() {
  static const KernelTable<float> t = avx2::make_table<float>();
  return t;
}

}  // namespace mrusfusion
#pragma GCC pop_options
#else
namespace mrusfusion {
bool avx2_compiled() { return false; }
const KernelTable<double>& avx2_table_double() { throw std::logic_error("no AVX2 build"); }
const KernelTable<float>& avx2_table_float() { throw std::logic_error("no AVX2 build"); }
}  // namespace mrusfusion
#endif
