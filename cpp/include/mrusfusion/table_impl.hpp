// The kernel table of the build this header is compiled in (namespace MRF_NS).
#pragma once
#include "fourier.hpp"
#include "kernel_table.hpp"
#include "log_rayleigh.hpp"
#include "polynomial.hpp"
#include "stencils.hpp"
#include "vector_ops.hpp"

namespace mrusfusion::MRF_NS {

template <class T>
KernelTable<T> make_table() {
  KernelTable<T> k;
  k.gradient = &gradient<T>;
  k.gradient_adjoint = &gradient_adjoint<T>;
  k.dtd_apply = &dtd_apply<T>;
  k.squared_gradient_norm = &squared_gradient_norm<T>;
  k.coupling_eval = &coupling_eval<T>;
  k.jacobian_transpose = &jacobian_transpose<T>;
  k.poly_normal_equations = &poly_normal_equations<T>;
  k.log_rayleigh_prox = &log_rayleigh_prox<T>;
  k.vstep_eval = &vstep_eval<T>;
  k.dot = &dot<T>;
  k.diff_stats = &diff_stats<T>;
  k.prox_target = &prox_target<T>;
  k.xstep_solve = &xstep_solve<T>;
  k.mr_residual_energy = &mr_residual_energy<T>;
  k.axpby = &axpby<T>;
  k.spectral_scale = &spectral_scale<T>;
  return k;
}

}  // namespace mrusfusion::MRF_NS
