// The kernel table of the build this header is compiled in (namespace MRF_NS), filled from the
// one list of kernels in kernel_table.hpp.
#pragma once
#include "fourier.hpp"
#include "kernel_table.hpp"
#include "local_link.hpp"
#include "log_rayleigh.hpp"
#include "polynomial.hpp"
#include "stencils.hpp"
#include "vector_ops.hpp"

namespace mrusfusion::MRF_NS {

template <class T>
KernelTable<T> make_table() {
  KernelTable<T> k;
#define MRUSFUSION_FILL(name, ret, params) k.name = &name<T>;
  MRUSFUSION_KERNELS(MRUSFUSION_FILL)
#undef MRUSFUSION_FILL
  return k;
}

}  // namespace mrusfusion::MRF_NS
