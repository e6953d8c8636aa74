// Periodic forward differences, their adjoints and the scan-direction gradient (DESIGN.md sec. 2).
//   (Dh x)[i,j] = x[i,j+1] - x[i,j],  (Dv x)[i,j] = x[i+1,j] - x[i,j]  (indices modulo the shape)
//   directional:  g = u_v Dv x + u_h Dh x
//   magnitude:    g = sqrt((Dh x)^2 + (Dv x)^2 + eps^2)
#pragma once
#include <cmath>

#include "common.hpp"

namespace mrusfusion::MRF_NS {

using mrusfusion::GradMode;
using mrusfusion::GradSpec;

// g = gradient of x along the scan direction, or its magnitude.
template <class T>
void gradient(const T* MRF_RESTRICT x, idx n1, idx n2, const GradSpec& spec, T* MRF_RESTRICT g,
              int threads) {
  const T uv = static_cast<T>(spec.uv), uh = static_cast<T>(spec.uh);
  const T eps2 = static_cast<T>(spec.eps * spec.eps);
  const bool mag = spec.mode == GradMode::magnitude;
  for_rows(n1, threads, [&](idx i) MRF_FLATTEN {
    const T* r = x + i * n2;
    const T* rn = x + next_row(i, n1) * n2;
    T* o = g + i * n2;
    if (mag) {
      for_row(n2, [&](idx j, idx, idx jp) {
        const T dh = r[jp] - r[j], dv = rn[j] - r[j];
        o[j] = std::sqrt(dh * dh + dv * dv + eps2);
      });
    } else {
      for_row(n2, [&](idx j, idx, idx jp) { o[j] = uv * (rn[j] - r[j]) + uh * (r[jp] - r[j]); });
    }
  });
}

// out = Du^T y = u_v Dv^T y + u_h Dh^T y, with (Dh^T y)[i,j] = y[i,j-1] - y[i,j].
template <class T>
void gradient_adjoint(const T* MRF_RESTRICT y, idx n1, idx n2, double uv_, double uh_,
                      T* MRF_RESTRICT out, int threads) {
  const T uv = static_cast<T>(uv_), uh = static_cast<T>(uh_);
  for_rows(n1, threads, [&](idx i) MRF_FLATTEN {
    const T* r = y + i * n2;
    const T* rp = y + prev_row(i, n1) * n2;
    T* o = out + i * n2;
    for_row(n2, [&](idx j, idx jm, idx) { o[j] = uv * (rp[j] - r[j]) + uh * (r[jm] - r[j]); });
  });
}

// out = a * p + b * (Dh^T Dh + Dv^T Dv) p, where the bracket is the 5-point periodic negative
// Laplacian. Returns <p, out> (deterministic row order), which conjugate gradients need.
template <class T>
double dtd_apply(const T* MRF_RESTRICT p, idx n1, idx n2, const T* MRF_RESTRICT a_px, double a,
                 double b, T* MRF_RESTRICT out, int threads) {
  const T ta = static_cast<T>(a), tb = static_cast<T>(b);
  return sum_rows(n1, threads, [&](idx i) MRF_FLATTEN {
    const T* r = p + i * n2;
    const T* rp = p + prev_row(i, n1) * n2;
    const T* rn = p + next_row(i, n1) * n2;
    const T* ap = a_px ? a_px + i * n2 : nullptr;
    T* o = out + i * n2;
    with_flag(ap != nullptr, [&](auto HA) {
      for_row(n2, [&](idx j, idx jm, idx jp) {
        const T lap = T(4) * r[j] - r[jm] - r[jp] - rp[j] - rn[j];
        T diag = ta;
        if constexpr (HA) diag += ap[j];
        o[j] = diag * r[j] + tb * lap;
      });
    });
    return dot_row(r, o, n2);
  });
}

// ||Dh x||^2 + ||Dv x||^2.
template <class T>
double squared_gradient_norm(const T* MRF_RESTRICT x, idx n1, idx n2, int threads) {
  return sum_rows_scratch(n1, n2, threads, [&](idx i, double* sq) MRF_FLATTEN {
    const T* r = x + i * n2;
    const T* rn = x + next_row(i, n1) * n2;
    for_row(n2, [&](idx j, idx, idx jp) {
      const double dh = static_cast<double>(r[jp]) - r[j], dv = static_cast<double>(rn[j]) - r[j];
      sq[j] = dh * dh + dv * dv;
    });
    return row_sum(sq, n2);
  });
}

}  // namespace mrusfusion::MRF_NS
