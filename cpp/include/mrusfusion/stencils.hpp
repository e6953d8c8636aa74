// Periodic forward differences along each axis, their adjoints and the scan-direction gradient
// on a 2-D or 3-D grid (DESIGN.md sec. 2 and 11), with the per-axis weights w_a = h_ref / h_a:
//   (D_a x)[i] = x[i + e_a] - x[i]  (indices modulo the shape)
//   directional:  g = sum_a u_a w_a D_a x
//   magnitude:    g = sqrt(sum_a (w_a D_a x)^2 + eps^2)
// A row is a run of the last (contiguous) axis; axes 0 and 1 are reached through the rows
// before and after it (Grid::next0 etc.). On a 2-D image axis 0 has length 1 and its terms are
// compiled out (the A0 flag), so the 2-D arithmetic is the one of a plain 5-point stencil.
#pragma once
#include <cmath>

#include "common.hpp"

namespace mrusfusion::MRF_NS {

using mrusfusion::GradMode;
using mrusfusion::GradSpec;
using mrusfusion::Grid;

// The rows around row i: the row itself, and the next and previous rows along axes 0 and 1.
template <class T>
struct Rows {
  const T *r, *n0, *n1, *p0, *p1;
  Rows(const T* x, const Grid& g, idx i) {
    const idx w = g.width();
    r = x + i * w;
    n0 = x + g.next0(i) * w;
    n1 = x + g.next1(i) * w;
    p0 = x + g.prev0(i) * w;
    p1 = x + g.prev1(i) * w;
  }
};

// The gradient map at one pixel, from the rows of x (j the column, jp = j + 1 mod width).
template <class T>
struct GradPx {
  T c0, c1, c2;  // u_a w_a (directional)
  T w0, w1, w2;  // w_a (magnitude)
  T eps2;
  GradPx(const GradSpec& s, const Grid& g)
      : c0(static_cast<T>(s.u[0] * g.w[0])), c1(static_cast<T>(s.u[1] * g.w[1])),
        c2(static_cast<T>(s.u[2] * g.w[2])), w0(static_cast<T>(g.w[0])),
        w1(static_cast<T>(g.w[1])), w2(static_cast<T>(g.w[2])),
        eps2(static_cast<T>(s.eps * s.eps)) {}
  template <bool A0, bool MAG>
  MRF_INLINE T at(const Rows<T>& q, idx j, idx jp) const {
    const T x = q.r[j];
    if constexpr (MAG) {
      const T d1 = w1 * (q.n1[j] - x), d2 = w2 * (q.r[jp] - x);
      T s = d1 * d1 + d2 * d2;
      if constexpr (A0) {
        const T d0 = w0 * (q.n0[j] - x);
        s += d0 * d0;
      }
      return std::sqrt(s + eps2);
    } else {
      T s = c1 * (q.n1[j] - x) + c2 * (q.r[jp] - x);
      if constexpr (A0) s += c0 * (q.n0[j] - x);
      return s;
    }
  }
};

// Call f(A0, MAG) with both as compile-time flags: whether axis 0 is longer than 1 (a volume),
// and whether the gradient is the magnitude variant.
template <class F>
inline decltype(auto) with_grid_flags(const Grid& g, const GradSpec& s, F&& f) {
  return with_flag(g.n[0] > 1, [&](auto A0) {
    return with_flag(s.mode == GradMode::magnitude, [&](auto MAG) { return f(A0, MAG); });
  });
}

// g = gradient of x along the scan direction, or its magnitude.
template <class T>
void gradient(const T* MRF_RESTRICT x, const Grid& gr, const GradSpec& spec, T* MRF_RESTRICT g,
              int threads) {
  const GradPx<T> gp(spec, gr);
  const idx n = gr.width();
  with_grid_flags(gr, spec, [&](auto A0, auto MAG) {
    for_rows(gr.rows(), threads, [&](idx i) MRF_FLATTEN {
      const Rows<T> q(x, gr, i);
      T* o = g + i * n;
      for_row(n, [&](idx j, idx, idx jp) { o[j] = gp.template at<A0, MAG>(q, j, jp); });
    });
  });
}

// out = sum_a u_a w_a D_a^T y, with (D_a^T y)[i] = y[i - e_a] - y[i].
template <class T>
void gradient_adjoint(const T* MRF_RESTRICT y, const Grid& gr, const GradSpec& spec,
                      T* MRF_RESTRICT out, int threads) {
  const GradPx<T> gp(spec, gr);
  const idx n = gr.width();
  with_flag(gr.n[0] > 1, [&](auto A0) {
    for_rows(gr.rows(), threads, [&](idx i) MRF_FLATTEN {
      const Rows<T> q(y, gr, i);
      T* o = out + i * n;
      for_row(n, [&](idx j, idx jm, idx) {
        const T v = q.r[j];
        T s = gp.c1 * (q.p1[j] - v) + gp.c2 * (q.r[jm] - v);
        if constexpr (A0) s += gp.c0 * (q.p0[j] - v);
        o[j] = s;
      });
    });
  });
}

// sum_a w_a^2 D_a^T D_a p at one pixel: the periodic negative Laplacian (5 or 7 points).
template <bool A0, class T>
MRF_INLINE T neg_laplacian(const Rows<T>& q, idx j, idx jm, idx jp, T a0, T a1, T a2) {
  const T v2 = T(2) * q.r[j];
  T lap = a1 * (v2 - q.p1[j] - q.n1[j]) + a2 * (v2 - q.r[jm] - q.r[jp]);
  if constexpr (A0) lap += a0 * (v2 - q.p0[j] - q.n0[j]);
  return lap;
}

// out = a * p + b * sum_a w_a^2 D_a^T D_a p. Returns <p, out> (deterministic row order), which
// conjugate gradients need.
template <class T>
double dtd_apply(const T* MRF_RESTRICT p, const Grid& gr, const T* MRF_RESTRICT a_px, double a,
                 double b, T* MRF_RESTRICT out, int threads) {
  const T ta = static_cast<T>(a), tb = static_cast<T>(b);
  const T a0 = static_cast<T>(gr.w[0] * gr.w[0]), a1 = static_cast<T>(gr.w[1] * gr.w[1]),
          a2 = static_cast<T>(gr.w[2] * gr.w[2]);
  const idx n = gr.width();
  return with_flag(gr.n[0] > 1, [&](auto A0) {
    return sum_rows(gr.rows(), threads, [&](idx i) MRF_FLATTEN {
      const Rows<T> q(p, gr, i);
      const T* ap = a_px ? a_px + i * n : nullptr;
      T* o = out + i * n;
      with_flag(ap != nullptr, [&](auto HA) {
        for_row(n, [&](idx j, idx jm, idx jp) {
          const T lap = neg_laplacian<A0>(q, j, jm, jp, a0, a1, a2);
          T diag = ta;
          if constexpr (HA) diag += ap[j];
          o[j] = diag * q.r[j] + tb * lap;
        });
      });
      return dot_row(q.r, o, n);
    });
  });
}

// sum_a w_a^2 ||D_a x||^2, accumulated in double.
template <class T>
double squared_gradient_norm(const T* MRF_RESTRICT x, const Grid& gr, int threads) {
  const double a0 = gr.w[0] * gr.w[0], a1 = gr.w[1] * gr.w[1], a2 = gr.w[2] * gr.w[2];
  const idx n = gr.width();
  return with_flag(gr.n[0] > 1, [&](auto A0) {
    return sum_rows_scratch(gr.rows(), n, threads, [&](idx i, double* sq) MRF_FLATTEN {
      const Rows<T> q(x, gr, i);
      for_row(n, [&](idx j, idx, idx jp) {
        const double v = q.r[j];
        const double dh = static_cast<double>(q.r[jp]) - v, dv = static_cast<double>(q.n1[j]) - v;
        double s = a2 * dh * dh + a1 * dv * dv;
        if constexpr (A0) {
          const double d0 = static_cast<double>(q.n0[j]) - v;
          s += a0 * d0 * d0;
        }
        sq[j] = s;
      });
      return row_sum(sq, n);
    });
  });
}

}  // namespace mrusfusion::MRF_NS
