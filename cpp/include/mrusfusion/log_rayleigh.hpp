// Log-Rayleigh data term of the US image and the v-step sub-problem (DESIGN.md sec. 4 and 7):
//   G_k(v) = tau2 sum m [exp(y - v) - gamma (y - v)] + tau3 ||grad v||^2 + d/2 ||v - w||^2
#pragma once
#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "stencils.hpp"

namespace mrusfusion::MRF_NS {

// One pixel of vstep_eval, in double even for float32 images: evaluated in float, G(v) carried
// rounding noise of ~1e-7 per pixel, which the line searches and psi comparisons then saw.
struct VStepParams {
  double t2, t3, gm, dk, hd;
  double a0, a1, a2;  // squared difference weights w_a^2 (DESIGN.md sec. 11)
};
struct VStepPixel {
  double obj, px, cv, g2;  // G(v) term, d/2 (v - w)^2, curvature, squared gradient
};

template <bool A0, bool HM, bool HW, bool HG, class T>
MRF_INLINE VStepPixel vstep_pixel(const Rows<T>& rw, const T* yr, const T* wr, const T* mr, T* gr,
                                  idx j, idx jm, idx jp, const VStepParams& q) {
  const T* r = rw.r;
  double t = q.t2;
  if constexpr (HM) t *= mr[j];
  const double vj = r[j];
  const double z = static_cast<double>(yr[j]) - vj;
  const double e = vexp(z < 80.0 ? z : 80.0);
  const double dh = static_cast<double>(r[jp]) - vj, dv = static_cast<double>(rw.n1[j]) - vj;
  double sq = q.a2 * dh * dh + q.a1 * dv * dv;
  if constexpr (A0) {
    const double d0 = static_cast<double>(rw.n0[j]) - vj;
    sq += q.a0 * d0 * d0;
  }
  double dw = 0.0;
  if constexpr (HW) dw = vj - static_cast<double>(wr[j]);
  VStepPixel p{t * (e - q.gm * z) + q.t3 * sq, q.hd * dw * dw, t * e, 0.0};
  if constexpr (HG) {
    const double v2 = 2.0 * vj;
    double lap = q.a2 * (v2 - r[jm] - r[jp]) + q.a1 * (v2 - rw.p1[j] - rw.n1[j]);
    if constexpr (A0) lap += q.a0 * (v2 - rw.p0[j] - rw.n0[j]);
    const T g = static_cast<T>(t * (q.gm - e) + 2.0 * q.t3 * lap + q.dk * dw);
    gr[j] = g;
    p.g2 = static_cast<double>(g) * static_cast<double>(g);
  }
  return p;
}

// One row of vstep_eval in one pass: out = [min curvature, sum obj, sum px, sum curvature,
// sum g2], the curvature copied to cr (when HC). The sums are local `omp simd` reductions (see
// dot_row); the two boundary pixels, whose neighbours wrap around, are done outside the loop.
template <bool A0, bool HM, bool HW, bool HG, bool HC, class T>
MRF_INLINE void vstep_row(const Rows<T>& rw, const T* MRF_RESTRICT yr,
                          const T* MRF_RESTRICT wr, const T* MRF_RESTRICT mr, T* MRF_RESTRICT gr,
                          T* MRF_RESTRICT cr, idx n, const VStepParams& q, double* out) {
  double mn = INFINITY, so = 0.0, sp = 0.0, sc = 0.0, sg = 0.0;
  auto edge = [&](idx j, idx jm, idx jp) {
    const VStepPixel p = vstep_pixel<A0, HM, HW, HG>(rw, yr, wr, mr, gr, j, jm, jp, q);
    mn = mn < p.cv ? mn : p.cv;
    so += p.obj;
    sp += p.px;
    sc += p.cv;
    sg += p.g2;
    if constexpr (HC) cr[j] = static_cast<T>(p.cv);
  };
  if (n == 1) {
    edge(0, 0, 0);
  } else {
    edge(0, n - 1, 1);
    edge(n - 1, n - 2, 0);
  }
  // The loop repeats edge's accumulation on purpose: calling edge would hand the reduction
  // variables over by reference, and they would stay in memory.
#pragma omp simd reduction(+ : so, sp, sc, sg) reduction(min : mn)
  for (idx j = 1; j < n - 1; ++j) {
    const VStepPixel p = vstep_pixel<A0, HM, HW, HG>(rw, yr, wr, mr, gr, j, j - 1, j + 1, q);
    mn = mn < p.cv ? mn : p.cv;
    so += p.obj;
    sp += p.px;
    sc += p.cv;
    sg += p.g2;
    if constexpr (HC) cr[j] = static_cast<T>(p.cv);
  }
  out[0] = mn;
  out[1] = so;
  out[2] = sp;
  out[3] = sc;
  out[4] = sg;
}

// Value of G_k at v (d = 0 and w = nullptr give G(v) of the objective) and, when grad is
// non-null, its gradient; when curv is non-null, the data-term curvature tau2 m exp(y - v).
// stats (if non-null) receives [min curvature, mean curvature, G(v), ||grad||^2] where G(v) is
// the value without the proximal term d/2 ||v - w||^2 (||grad||^2 is 0 without grad).
template <class T>
double vstep_eval(const T* MRF_RESTRICT v, const T* MRF_RESTRICT y, const T* MRF_RESTRICT w,
                  const T* MRF_RESTRICT mask, const Grid& gd, double tau2, double gamma,
                  double tau3, double dk, T* MRF_RESTRICT grad, T* MRF_RESTRICT curv,
                  double* stats, int threads) {
  const idx n1 = gd.rows(), n2 = gd.width();
  std::vector<double> cmin(static_cast<size_t>(n1)), csum(static_cast<size_t>(n1)),
      prox(static_cast<size_t>(n1)), gsq(static_cast<size_t>(n1));
  const VStepParams q{tau2, tau3, gamma, dk, 0.5 * dk,
                      gd.w[0] * gd.w[0], gd.w[1] * gd.w[1], gd.w[2] * gd.w[2]};
  const bool vol = gd.n[0] > 1;
  const double val = sum_rows(n1, threads, [&](idx i) MRF_FLATTEN {
    const Rows<T> rw(v, gd, i);
    const T* yr = y + i * n2;
    const T* wr = w ? w + i * n2 : nullptr;
    const T* mr = mask ? mask + i * n2 : nullptr;
    T* gr = grad ? grad + i * n2 : nullptr;
    T* cr = curv ? curv + i * n2 : nullptr;
    double rs[5];
    with_flag(vol, [&](auto A0) {
      with_flag(mr != nullptr, [&](auto HM) {
        with_flag(wr != nullptr, [&](auto HW) {
          with_flag(gr != nullptr, [&](auto HG) {
            with_flag(cr != nullptr, [&](auto HC) {
              vstep_row<A0, HM, HW, HG, HC>(rw, yr, wr, mr, gr, cr, n2, q, rs);
            });
          });
        });
      });
    });
    const double mn = rs[0], so = rs[1], sp = rs[2], sc = rs[3], sg = rs[4];
    cmin[static_cast<size_t>(i)] = mn;
    csum[static_cast<size_t>(i)] = sc;
    prox[static_cast<size_t>(i)] = sp;
    gsq[static_cast<size_t>(i)] = sg;
    return so;
  });
  if (stats) {
    double mn = INFINITY, sm = 0.0, pr = 0.0;
    for (idx i = 0; i < n1; ++i) {
      mn = std::min(mn, cmin[static_cast<size_t>(i)]);
      sm += csum[static_cast<size_t>(i)];
      pr += prox[static_cast<size_t>(i)];
    }
    stats[0] = mn;
    stats[1] = sm / static_cast<double>(n1 * n2);
    stats[2] = val;
    double gg = 0.0;
    for (double gv : gsq) gg += gv;
    stats[3] = gg;
    return val + pr;
  }
  double pr = 0.0;
  for (double p : prox) pr += p;
  return val + pr;
}

// Fused reductions for the PALM bookkeeping, one pass:
//   out[0] = sum (a - b) c  (0 when c is null),  out[1] = sum m (a - b)^2,  out[2] = sum b^2.
// One row of diff_stats. A plain function with local accumulators: `omp simd reduction` over
// variables captured by reference in a lambda kept them in memory, and the loop ran scalar.
template <bool HC, bool HM, class T>
MRF_INLINE void diff_row(const T* MRF_RESTRICT a, const T* MRF_RESTRICT b,
                         const T* MRF_RESTRICT c, const T* MRF_RESTRICT m, idx n, double* out) {
  double sdc = 0.0, sdd = 0.0, sbb = 0.0;
#pragma omp simd reduction(+ : sdc, sdd, sbb)
  for (idx j = 0; j < n; ++j) {
    const double bj = static_cast<double>(b[j]);
    const double d = static_cast<double>(a[j]) - bj;
    if constexpr (HC) sdc += d * static_cast<double>(c[j]);
    if constexpr (HM) sdd += static_cast<double>(m[j]) * d * d;
    else sdd += d * d;
    sbb += bj * bj;
  }
  out[0] = sdc;
  out[1] = sdd;
  out[2] = sbb;
}

template <class T>
void diff_stats(const T* MRF_RESTRICT a, const T* MRF_RESTRICT b, const T* MRF_RESTRICT c,
                const T* MRF_RESTRICT mask, idx n1, idx n2, double* out, int threads) {
  std::vector<double> p1(static_cast<size_t>(n1)), p2(static_cast<size_t>(n1));
  // One pass, sums in registers: `omp simd reduction` lets the compiler split each row's sum
  // into vector lanes, in a fixed order for a given build (so thread counts cannot change it).
  out[2] = sum_rows(n1, threads, [&](idx i) MRF_FLATTEN {
    const idx o = i * n2;
    const T* cr = c ? c + o : nullptr;
    const T* mr = mask ? mask + o : nullptr;
    double r[3];
    if (cr && mr) diff_row<true, true>(a + o, b + o, cr, mr, n2, r);
    else if (cr) diff_row<true, false>(a + o, b + o, cr, mr, n2, r);
    else if (mr) diff_row<false, true>(a + o, b + o, cr, mr, n2, r);
    else diff_row<false, false>(a + o, b + o, cr, mr, n2, r);
    p1[static_cast<size_t>(i)] = r[0];
    p2[static_cast<size_t>(i)] = r[1];
    return r[2];
  });
  double s1 = 0.0, s2 = 0.0;
  for (idx i = 0; i < n1; ++i) {
    s1 += p1[static_cast<size_t>(i)];
    s2 += p2[static_cast<size_t>(i)];
  }
  out[0] = s1;
  out[1] = s2;
}

// <a, b> accumulated in double, rows in a fixed order (no BLAS: its threads fought ours).
template <class T>
double dot(const T* MRF_RESTRICT a, const T* MRF_RESTRICT b, idx n1, idx n2, int threads) {
  return sum_rows(n1, threads,
                  [&](idx i) MRF_FLATTEN { return dot_row(a + i * n2, b + i * n2, n2); });
}

// The v-step target w = v - alpha m (v - f) (DESIGN.md sec. 5, step 2, alpha = 2 tau4 / d_k).
template <class T>
void prox_target(const T* MRF_RESTRICT v, const T* MRF_RESTRICT f, const T* MRF_RESTRICT mask,
                 idx n, double alpha, T* MRF_RESTRICT out, int threads) {
  const T al = static_cast<T>(alpha);
  const idx nb = (n + 4095) / 4096;
  for_rows(nb, threads, [&](idx blk) MRF_FLATTEN {
    const idx lo = blk * 4096, hi = std::min(n, lo + 4096);
    for (idx k = lo; k < hi; ++k) out[k] = v[k] - al * (mask ? mask[k] : T(1)) * (v[k] - f[k]);
  });
}

}  // namespace mrusfusion::MRF_NS
