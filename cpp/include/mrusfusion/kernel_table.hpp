// A table of the kernels for one float type, so that the binding can choose at run time
// between the baseline build and the AVX2/FMA build (kernels_avx2.cpp) of the same templates.
#pragma once
#include <complex>

#include "types.hpp"

namespace mrusfusion {

template <class T>
struct KernelTable {
  using C = std::complex<T>;
  void (*gradient)(const T*, idx, idx, const GradSpec&, T*, int);
  void (*gradient_adjoint)(const T*, idx, idx, double, double, T*, int);
  double (*dtd_apply)(const T*, idx, idx, const T*, double, double, T*, int);
  double (*squared_gradient_norm)(const T*, idx, idx, int);
  double (*coupling_eval)(const T*, idx, idx, const GradSpec&, const T*, int, const T*, const T*,
                          T*, T*, T*, int);
  void (*jacobian_transpose)(const T*, idx, idx, const GradSpec&, const T*, const T*, const T*,
                             const T*, const T*, double, T*, T*, T*, int);
  double (*poly_normal_equations)(const T*, const T*, const T*, const T*, idx, idx, int, double,
                                  double, double, double*, double*, int);
  void (*log_rayleigh_prox)(const T*, const T*, const T*, idx, double, double, double, T*, int);
  double (*vstep_eval)(const T*, const T*, const T*, const T*, idx, idx, double, double, double,
                       double, T*, T*, double*, int);
  double (*dot)(const T*, const T*, idx, idx, int);
  void (*diff_stats)(const T*, const T*, const T*, const T*, idx, idx, double*, int);
  void (*prox_target)(const T*, const T*, const T*, idx, double, T*, int);
  void (*xstep_solve)(const C*, const C*, const C*, const C*, const T*, const SpectralGrid&,
                      double, double, C*, C*, C*, int);
  double (*axpby)(const T*, const T*, idx, idx, double, double, T*, int);
  void (*spectral_scale)(C*, const T*, idx, idx, double, double, int);
  double (*mr_residual_energy)(const C*, const C*, const C*, const SpectralGrid&, int);
};

// Defined in kernels_avx2.cpp when that build exists (x86-64 with GCC or Clang).
bool avx2_compiled();
const KernelTable<double>& avx2_table_double();
const KernelTable<float>& avx2_table_float();

}  // namespace mrusfusion
