// The one list of kernels, and the table of them for one float type, so that the binding can
// choose at run time between the baseline build and the AVX2/FMA build (kernels_avx2.cpp) of the
// same templates.
#pragma once
#include <complex>

#include "types.hpp"

// X(name, return type, parameter types) for every kernel, with T the float type and
// C = std::complex<T>. It generates the table's fields (below) and their filling (make_table in
// table_impl.hpp, where a signature that differs from the template's fails to compile). A new
// kernel: its template in a kernel header, one line here, its binding in bindings.cpp (and its
// stub in python/mrusfusion/_core.pyi).
#define MRUSFUSION_KERNELS(X)                                                                  \
  X(gradient, void, (const T*, const Grid&, const GradSpec&, T*, int))                        \
  X(gradient_adjoint, void, (const T*, const Grid&, const GradSpec&, T*, int))                \
  X(dtd_apply, double, (const T*, const Grid&, const T*, double, double, T*, int))            \
  X(squared_gradient_norm, double, (const T*, const Grid&, int))                              \
  X(coupling_eval, double,                                                                     \
    (const T*, const Grid&, const GradSpec&, const T*, int, const T*, const T*, T*, T*, T*,    \
     int))                                                                                     \
  X(jacobian_transpose, void,                                                                  \
    (const T*, const Grid&, const GradSpec&, const T*, const T*, const T*, const T*, const T*, \
     double, T*, T*, T*, T*, int))                                                             \
  X(poly_normal_equations, double,                                                             \
    (const T*, const T*, const T*, const T*, idx, idx, int, double, double, double, double*,   \
     double*, int))                                                                            \
  X(local_coupling_eval, double,                                                               \
    (const T*, idx, idx, const GradSpec&, const T*, int, idx, idx, double, double, double,     \
     const T*, const T*, T*, T*, T*, int))                                                     \
  X(local_normal_equations, double,                                                            \
    (const T*, const T*, const T*, const T*, idx, idx, int, idx, idx, double, double, double,  \
     double*, double*, int))                                                                   \
  X(vstep_eval, double,                                                                        \
    (const T*, const T*, const T*, const T*, const Grid&, double, double, double, double, T*,  \
     T*, double*, int))                                                                        \
  X(dot, double, (const T*, const T*, idx, idx, int))                                          \
  X(diff_stats, void, (const T*, const T*, const T*, const T*, idx, idx, double*, int))        \
  X(prox_target, void, (const T*, const T*, const T*, idx, double, T*, int))                   \
  X(xstep_solve, void,                                                                         \
    (const C*, const C*, const C*, const C*, const T*, const SpectralGrid&, double, double,    \
     C*, C*, C*, int))                                                                         \
  X(axpby, double, (const T*, const T*, idx, idx, double, double, T*, int))                    \
  X(spectral_scale, void, (C*, const T*, idx, idx, double, double, int))                       \
  X(mr_residual_energy, double, (const C*, const C*, const C*, const SpectralGrid&, int))

namespace mrusfusion {

template <class T>
struct KernelTable {
  using C = std::complex<T>;
#define MRUSFUSION_FIELD(name, ret, params) ret(*name) params = nullptr;
  MRUSFUSION_KERNELS(MRUSFUSION_FIELD)
#undef MRUSFUSION_FIELD
};

// Defined in kernels_avx2.cpp when that build exists (x86-64 with GCC or Clang).
bool avx2_compiled();
const KernelTable<double>& avx2_table_double();
const KernelTable<float>& avx2_table_float();

}  // namespace mrusfusion
