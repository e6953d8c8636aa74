// Log-Rayleigh data term of the US image and the v-step sub-problem (DESIGN.md sec. 4 and 7):
//   G_k(v) = tau2 sum m [exp(y - v) - gamma (y - v)] + tau3 ||grad v||^2 + d/2 ||v - w||^2
#pragma once
#include <algorithm>
#include <cmath>

#include "common.hpp"

namespace mrusfusion::detail {

// exp with its argument clipped, so that a wild iterate cannot overflow (float32 included).
template <class T>
inline T safe_exp(T z) {
  constexpr T hi = static_cast<T>(80);
  return std::exp(std::min(z, hi));
}

// Per-pixel prox: out = argmin_z tau2 m [exp(y - z) - gamma (y - z)] + rho/2 (z - a)^2, by Newton.
// h(z) = tau2 m (gamma - exp(y - z)) + rho (z - a) is increasing and concave, so after the first
// step Newton iterates approach the root monotonically from the left: no line search is needed.
template <class T>
void log_rayleigh_prox(const T* MRF_RESTRICT a, const T* MRF_RESTRICT y,
                       const T* MRF_RESTRICT mask, idx n, double tau2, double gamma, double rho,
                       T* MRF_RESTRICT out, int threads) {
  const idx n1 = (n + 4095) / 4096;
  for_rows(n1, threads, [&](idx blk) {
    const idx lo = blk * 4096, hi = std::min(n, lo + 4096);
    for (idx k = lo; k < hi; ++k) {
      const double t = tau2 * (mask ? static_cast<double>(mask[k]) : 1.0);
      const double ak = a[k], yk = y[k];
      double z = ak;
      if (t > 0.0) {
        for (int it = 0; it < 60; ++it) {
          const double e = safe_exp(yk - z);
          const double h = t * (gamma - e) + rho * (z - ak);
          const double step = h / (t * e + rho);
          z -= step;
          if (std::abs(step) <= 1e-15 * (1.0 + std::abs(z))) break;
        }
      }
      out[k] = static_cast<T>(z);
    }
  });
}

// Value of G_k at v (d = 0 and w = nullptr give G(v) of the objective) and, when grad is
// non-null, its gradient; when curv is non-null, the data-term curvature tau2 m exp(y - v).
// stats (if non-null) receives [min curvature, mean curvature].
template <class T>
double vstep_eval(const T* MRF_RESTRICT v, const T* MRF_RESTRICT y, const T* MRF_RESTRICT w,
                  const T* MRF_RESTRICT mask, idx n1, idx n2, double tau2, double gamma,
                  double tau3, double dk, T* MRF_RESTRICT grad, T* MRF_RESTRICT curv,
                  double* stats, int threads) {
  std::vector<double> cmin(static_cast<size_t>(n1)), csum(static_cast<size_t>(n1));
  const double val = sum_rows(n1, threads, [&](idx i) {
    const T* r = v + i * n2;
    const T* rp = v + prev_row(i, n1) * n2;
    const T* rn = v + next_row(i, n1) * n2;
    double s = 0.0, mn = INFINITY, sm = 0.0;
    for (idx j = 0; j < n2; ++j) {
      const idx k = i * n2 + j;
      const idx jm = j == 0 ? n2 - 1 : j - 1, jp = j + 1 == n2 ? 0 : j + 1;
      const double t = tau2 * (mask ? static_cast<double>(mask[k]) : 1.0);
      const double z = static_cast<double>(y[k]) - r[j];
      const double e = safe_exp(z);
      const double dh = static_cast<double>(r[jp]) - r[j], dv = static_cast<double>(rn[j]) - r[j];
      const double dw = w ? static_cast<double>(r[j]) - w[k] : 0.0;
      s += t * (e - gamma * z) + tau3 * (dh * dh + dv * dv) + 0.5 * dk * dw * dw;
      const double c = t * e;
      mn = std::min(mn, c);
      sm += c;
      if (grad) {
        const double lap = 4.0 * r[j] - r[jm] - r[jp] - rp[j] - rn[j];
        grad[k] = static_cast<T>(t * (gamma - e) + 2.0 * tau3 * lap + dk * dw);
      }
      if (curv) curv[k] = static_cast<T>(c);
    }
    cmin[static_cast<size_t>(i)] = mn;
    csum[static_cast<size_t>(i)] = sm;
    return s;
  });
  if (stats) {
    double mn = INFINITY, sm = 0.0;
    for (idx i = 0; i < n1; ++i) {
      mn = std::min(mn, cmin[static_cast<size_t>(i)]);
      sm += csum[static_cast<size_t>(i)];
    }
    stats[0] = mn;
    stats[1] = sm / static_cast<double>(n1 * n2);
  }
  return val;
}

}  // namespace mrusfusion::detail
