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
double coupling_eval_d(const T* MRF_RESTRICT x, const Grid& gr, const GradSpec& spec,
                       const T* MRF_RESTRICT c, const T* MRF_RESTRICT v,
                       const T* MRF_RESTRICT mask, T* MRF_RESTRICT f, T* MRF_RESTRICT fx,
                       T* MRF_RESTRICT fg, int threads) {
  const GradPx<T> gp(spec, gr);
  const idx n = gr.width();
  T cc[n_coeffs(D)];
  for (int k = 0; k < n_coeffs(D); ++k) cc[k] = c[k];
  return with_grid_flags(gr, spec, [&](auto A0, auto MAG) {
    return sum_rows_scratch(gr.rows(), n, threads, [&](idx i, double* e2) MRF_FLATTEN {
      const Rows<T> q(x, gr, i);
      T* fr = f + i * n;
      T* fxr = fx + i * n;
      T* fgr = fg + i * n;
      for_row(n, [&](idx j, idx, idx jp) {
        poly_point<D>(cc, q.r[j], gp.template at<A0, MAG>(q, j, jp), fr[j], fxr[j], fgr[j]);
      });
      if (!v) return 0.0;
      const T* vr = v + i * n;
      const T* mr = mask ? mask + i * n : nullptr;
      with_flag(mr != nullptr, [&](auto HM) {
        for (idx j = 0; j < n; ++j) {
          const double e = static_cast<double>(vr[j]) - static_cast<double>(fr[j]);
          if constexpr (HM) e2[j] = static_cast<double>(mr[j]) * e * e;
          else e2[j] = e * e;
        }
      });
      return row_sum(e2, n);
    });
  });
}

// Evaluate the link at x with g = gradient(x) (computed here from the stencil), writing f, f_x
// and f_g. When v is given, returns sum_i m_i (v_i - f_i)^2 (m = mask, or 1), else 0.
template <class T>
double coupling_eval(const T* MRF_RESTRICT x, const Grid& gr, const GradSpec& spec,
                     const T* MRF_RESTRICT c, int d, const T* MRF_RESTRICT v,
                     const T* MRF_RESTRICT mask, T* MRF_RESTRICT f, T* MRF_RESTRICT fx,
                     T* MRF_RESTRICT fg, int threads) {
  switch (d) {
#define MRF_CASE(D) \
  case D:           \
    return coupling_eval_d<D>(x, gr, spec, c, v, mask, f, fx, fg, threads);
    MRF_CASE(0) MRF_CASE(1) MRF_CASE(2) MRF_CASE(3) MRF_CASE(4) MRF_CASE(5)
    MRF_CASE(6) MRF_CASE(7) MRF_CASE(8) MRF_CASE(9) MRF_CASE(10)
#undef MRF_CASE
    default:
      throw std::invalid_argument("degree must be between 0 and 10");
  }
}

// out = scale * J^T r for the map x -> f(x, g(x)), with r = m (a - b) when b is given, else r = a:
//   directional: J^T r = f_x r + sum_a u_a w_a D_a^T (f_g r)
//   magnitude:   J^T r = f_x r + sum_a D_a^T (f_g r w_a^2 D_a x / g)
// w1 (last axis), w2 (axis 1) and w3 (axis 0, volumes) are caller-owned work images; the
// directional variant needs w1 only, the magnitude one w2 too, and w3 on a volume.
template <class T>
void jacobian_transpose(const T* MRF_RESTRICT x, const Grid& gr, const GradSpec& spec,
                        const T* MRF_RESTRICT a, const T* MRF_RESTRICT b,
                        const T* MRF_RESTRICT mask, const T* MRF_RESTRICT fx,
                        const T* MRF_RESTRICT fg, double scale, T* MRF_RESTRICT w1,
                        T* MRF_RESTRICT w2, T* MRF_RESTRICT w3, T* MRF_RESTRICT out,
                        int threads) {
  const T sc = static_cast<T>(scale);
  const GradPx<T> gp(spec, gr);
  const idx n = gr.width();
  with_grid_flags(gr, spec, [&](auto A0, auto MAG) {
    for_rows(gr.rows(), threads, [&](idx i) MRF_FLATTEN {
      const Rows<T> q(x, gr, i);
      const idx o0 = i * n;
      const T* ar = a + o0;
      const T* br = b ? b + o0 : nullptr;
      const T* mr = mask ? mask + o0 : nullptr;
      const T* fxr = fx + o0;
      const T* fgr = fg + o0;
      T* o = out + o0;
      T* w1r = w1 + o0;
      T* w2r = MAG ? w2 + o0 : nullptr;
      T* w3r = (MAG && A0) ? w3 + o0 : nullptr;
      with_flag(br != nullptr, [&](auto HB) {
        with_flag(mr != nullptr, [&](auto HM) {
          for_row(n, [&](idx j, idx, idx jp) {
            T r = ar[j];
            if constexpr (HB) r -= br[j];
            if constexpr (HM) r *= mr[j];
            r *= sc;
            o[j] = fxr[j] * r;
            const T t = fgr[j] * r;
            if constexpr (MAG) {
              const T xj = q.r[j];
              const T ig = T(1) / gp.template at<A0, true>(q, j, jp);
              w1r[j] = t * (gp.w2 * gp.w2 * (q.r[jp] - xj)) * ig;
              w2r[j] = t * (gp.w1 * gp.w1 * (q.n1[j] - xj)) * ig;
              if constexpr (A0) w3r[j] = t * (gp.w0 * gp.w0 * (q.n0[j] - xj)) * ig;
            } else {
              w1r[j] = t;
            }
          });
        });
      });
    });
    for_rows(gr.rows(), threads, [&](idx i) MRF_FLATTEN {
      const Rows<T> q1(w1, gr, i);
      T* o = out + i * n;
      if constexpr (MAG) {
        const Rows<T> q2(w2, gr, i);
        const Rows<T> q3(A0 ? w3 : w2, gr, i);
        for_row(n, [&](idx j, idx jm, idx) {
          T s = (q1.r[jm] - q1.r[j]) + (q2.p1[j] - q2.r[j]);
          if constexpr (A0) s += q3.p0[j] - q3.r[j];
          o[j] += s;
        });
      } else {
        for_row(n, [&](idx j, idx jm, idx) {
          T s = gp.c1 * (q1.p1[j] - q1.r[j]) + gp.c2 * (q1.r[jm] - q1.r[j]);
          if constexpr (A0) s += gp.c0 * (q1.p0[j] - q1.r[j]);
          o[j] += s;
        });
      }
    });
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
