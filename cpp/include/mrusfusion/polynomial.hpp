// Polynomial link f(x, g) = sum_{p+q<=d} c_pq x^p g^q (DESIGN.md sec. 3), coefficients q-major:
// for q = 0..d, for p = 0..d-q. Value and both partials are evaluated in one pass.
#pragma once
#include <cmath>

#include "common.hpp"
#include "stencils.hpp"

namespace mrusfusion::MRF_NS {

using mrusfusion::kMaxDegree;
using mrusfusion::n_coeffs;

// f, f_x, f_g at one pixel. Horner in x for each power of g, then Horner in g. The degree is a
// template parameter so the loops unroll and the pixel loop vectorises.
template <int D, class T>
MRF_INLINE void poly_point(const T* MRF_RESTRICT c, T x, T g, T& f, T& fx, T& fg) {
  // Row q of the coefficient table starts at off(q) = sum_{r<q} (D - r + 1).
  T F = 0, FX = 0, FG = 0;
  int off = n_coeffs(D);
  // Fully unrolled (D is a constant): a loop left in the body would stop the pixel loop from
  // vectorising.
#pragma GCC unroll 16
  for (int q = D; q >= 0; --q) {
    off -= D - q + 1;
    const T* cq = c + off;
    T pq = 0, dpq = 0;
#pragma GCC unroll 16
    for (int p = D - q; p >= 0; --p) {
      dpq = dpq * x + pq;
      pq = pq * x + cq[p];
    }
    FG = FG * g + F;
    F = F * g + pq;
    FX = FX * g + dpq;
  }
  f = F;
  fx = FX;
  fg = FG;
}

template <int D, class T>
double coupling_eval_d(const T* MRF_RESTRICT x, idx n1, idx n2, const GradSpec& spec,
                       const T* MRF_RESTRICT c, const T* MRF_RESTRICT v,
                       const T* MRF_RESTRICT mask, T* MRF_RESTRICT f, T* MRF_RESTRICT fx,
                       T* MRF_RESTRICT fg, int threads) {
  const T uv = static_cast<T>(spec.uv), uh = static_cast<T>(spec.uh);
  const T eps2 = static_cast<T>(spec.eps * spec.eps);
  const bool mag = spec.mode == GradMode::magnitude;
  T cc[n_coeffs(D)];
  for (int k = 0; k < n_coeffs(D); ++k) cc[k] = c[k];
  return sum_rows_scratch(n1, n2, threads, [&](idx i, double* e2) MRF_FLATTEN {
    const T* r = x + i * n2;
    const T* rn = x + next_row(i, n1) * n2;
    T* fr = f + i * n2;
    T* fxr = fx + i * n2;
    T* fgr = fg + i * n2;
    if (mag) {
      for_row(n2, [&](idx j, idx, idx jp) {
        const T dh = r[jp] - r[j], dv = rn[j] - r[j];
        poly_point<D>(cc, r[j], std::sqrt(dh * dh + dv * dv + eps2), fr[j], fxr[j], fgr[j]);
      });
    } else {
      for_row(n2, [&](idx j, idx, idx jp) {
        poly_point<D>(cc, r[j], uv * (rn[j] - r[j]) + uh * (r[jp] - r[j]), fr[j], fxr[j], fgr[j]);
      });
    }
    if (!v) return 0.0;
    const T* vr = v + i * n2;
    const T* mr = mask ? mask + i * n2 : nullptr;
    with_flag(mr != nullptr, [&](auto HM) {
      for (idx j = 0; j < n2; ++j) {
        const double e = static_cast<double>(vr[j]) - static_cast<double>(fr[j]);
        if constexpr (HM) e2[j] = static_cast<double>(mr[j]) * e * e;
        else e2[j] = e * e;
      }
    });
    return row_sum(e2, n2);
  });
}

// Evaluate the link at x with g = gradient(x) (computed here from the stencil), writing f, f_x
// and f_g. When v is given, returns sum_i m_i (v_i - f_i)^2 (m = mask, or 1), else 0.
template <class T>
double coupling_eval(const T* MRF_RESTRICT x, idx n1, idx n2, const GradSpec& spec,
                     const T* MRF_RESTRICT c, int d, const T* MRF_RESTRICT v,
                     const T* MRF_RESTRICT mask, T* MRF_RESTRICT f, T* MRF_RESTRICT fx,
                     T* MRF_RESTRICT fg, int threads) {
  switch (d) {
#define MRF_CASE(D) \
  case D:           \
    return coupling_eval_d<D>(x, n1, n2, spec, c, v, mask, f, fx, fg, threads);
    MRF_CASE(0) MRF_CASE(1) MRF_CASE(2) MRF_CASE(3) MRF_CASE(4) MRF_CASE(5)
    MRF_CASE(6) MRF_CASE(7) MRF_CASE(8) MRF_CASE(9) MRF_CASE(10)
#undef MRF_CASE
    default:
      throw std::invalid_argument("degree must be between 0 and 10");
  }
}

// out = scale * J^T r for the map x -> f(x, g(x)), with r = m (a - b) when b is given, else r = a:
//   directional: J^T r = f_x r + Du^T (f_g r)
//   magnitude:   J^T r = f_x r + Dh^T (f_g r Dh x / g) + Dv^T (f_g r Dv x / g)
// w1 (and w2 for the magnitude variant) are caller-owned work images.
template <class T>
void jacobian_transpose(const T* MRF_RESTRICT x, idx n1, idx n2, const GradSpec& spec,
                        const T* MRF_RESTRICT a, const T* MRF_RESTRICT b,
                        const T* MRF_RESTRICT mask, const T* MRF_RESTRICT fx,
                        const T* MRF_RESTRICT fg, double scale, T* MRF_RESTRICT w1,
                        T* MRF_RESTRICT w2, T* MRF_RESTRICT out, int threads) {
  const T sc = static_cast<T>(scale);
  const T uv = static_cast<T>(spec.uv), uh = static_cast<T>(spec.uh);
  const T eps2 = static_cast<T>(spec.eps * spec.eps);
  const bool mag = spec.mode == GradMode::magnitude;
  for_rows(n1, threads, [&](idx i) MRF_FLATTEN {
    const T* xr = x + i * n2;
    const T* xn = x + next_row(i, n1) * n2;
    const T* ar = a + i * n2;
    const T* br = b ? b + i * n2 : nullptr;
    const T* mr = mask ? mask + i * n2 : nullptr;
    const T* fxr = fx + i * n2;
    const T* fgr = fg + i * n2;
    T* o = out + i * n2;
    T* w1r = w1 + i * n2;
    T* w2r = mag ? w2 + i * n2 : nullptr;
    with_flag(br != nullptr, [&](auto HB) {
      with_flag(mr != nullptr, [&](auto HM) {
        with_flag(mag, [&](auto MAG) {
          for_row(n2, [&](idx j, idx, idx jp) {
            T r = ar[j];
            if constexpr (HB) r -= br[j];
            if constexpr (HM) r *= mr[j];
            r *= sc;
            o[j] = fxr[j] * r;
            const T t = fgr[j] * r;
            if constexpr (MAG) {
              const T dh = xr[jp] - xr[j], dv = xn[j] - xr[j];
              const T ig = T(1) / std::sqrt(dh * dh + dv * dv + eps2);
              w1r[j] = t * dh * ig;
              w2r[j] = t * dv * ig;
            } else {
              w1r[j] = t;
            }
          });
        });
      });
    });
  });
  for_rows(n1, threads, [&](idx i) MRF_FLATTEN {
    const T* r1 = w1 + i * n2;
    const T* p1 = w1 + prev_row(i, n1) * n2;
    T* o = out + i * n2;
    if (mag) {
      const T* p2 = w2 + prev_row(i, n1) * n2;
      const T* r2 = w2 + i * n2;
      for_row(n2, [&](idx j, idx jm, idx) { o[j] += (r1[jm] - r1[j]) + (p2[j] - r2[j]); });
    } else {
      for_row(n2, [&](idx j, idx jm, idx) { o[j] += uv * (p1[j] - r1[j]) + uh * (r1[jm] - r1[j]); });
    }
  });
}

// Normal equations of the least-squares fit y ~ sum_k c_k t^p s^q with t = (x - x_c) / x_s and
// s = g / g_s (scaled features keep the Gram matrix well conditioned), weighted by the mask.
// Accumulated in one pass without storing the feature matrix; gram is nc x nc (row-major), rhs nc.
// Returns sum m y^2.
template <class T>
double poly_normal_equations(const T* MRF_RESTRICT x, const T* MRF_RESTRICT g,
                             const T* MRF_RESTRICT y, const T* MRF_RESTRICT mask, idx n1, idx n2,
                             int d, double x_c, double x_s, double g_s, double* gram, double* rhs,
                             int threads) {
  const int nc = n_coeffs(d);
  const size_t blk = static_cast<size_t>(nc) * (nc + 1);
  std::vector<double> part(static_cast<size_t>(n1) * blk, 0.0);
  std::vector<double> yy(static_cast<size_t>(n1), 0.0);
#pragma omp parallel num_threads(clamp_threads(threads))
  {
    double feat[n_coeffs(kMaxDegree)];
    double tp[kMaxDegree + 1], sq[kMaxDegree + 1];
#pragma omp for schedule(static)
    for (idx i = 0; i < n1; ++i) {
      double* G = part.data() + static_cast<size_t>(i) * blk;
      double* B = G + static_cast<size_t>(nc) * nc;
      double acc = 0.0;
      for (idx j = 0; j < n2; ++j) {
        const idx k = i * n2 + j;
        const double w = mask ? static_cast<double>(mask[k]) : 1.0;
        if (w == 0.0) continue;
        const double t = (static_cast<double>(x[k]) - x_c) / x_s, s = static_cast<double>(g[k]) / g_s;
        tp[0] = sq[0] = 1.0;
        for (int p = 1; p <= d; ++p) {
          tp[p] = tp[p - 1] * t;
          sq[p] = sq[p - 1] * s;
        }
        int n = 0;
        for (int q = 0; q <= d; ++q)
          for (int p = 0; p <= d - q; ++p) feat[n++] = tp[p] * sq[q];
        const double yk = static_cast<double>(y[k]);
        acc += w * yk * yk;
        for (int a = 0; a < nc; ++a) {
          const double wa = w * feat[a];
          B[a] += wa * yk;
          double* Ga = G + static_cast<size_t>(a) * nc;
          for (int bb = a; bb < nc; ++bb) Ga[bb] += wa * feat[bb];
        }
      }
      yy[static_cast<size_t>(i)] = acc;
    }
  }
  for (int a = 0; a < nc * (nc + 1); ++a) {
    double s = 0.0;
    for (idx i = 0; i < n1; ++i) s += part[static_cast<size_t>(i) * blk + a];
    if (a < nc * nc) gram[a] = s; else rhs[a - nc * nc] = s;
  }
  for (int a = 0; a < nc; ++a)
    for (int bb = 0; bb < a; ++bb) gram[a * nc + bb] = gram[bb * nc + a];
  double s = 0.0;
  for (double v : yy) s += v;
  return s;
}

}  // namespace mrusfusion::MRF_NS
