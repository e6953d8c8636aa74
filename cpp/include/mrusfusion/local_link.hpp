// Local polynomial link (DESIGN.md 12.2): coefficients c_k on a grid of knots, interpolated at each
// pixel by tensor-product hat functions, c(i) = sum_k w_k(i) c_k, in the scaled features
// t = (x - x_c) / x_s, s = g / g_s. Evaluation (f, f_x, f_g and the coupling sum, the contract of
// coupling_eval) and the block-sparse normal equations of the joint fit of all c_k.
//
// Knots: k_a >= 2 per axis spread evenly over its n_a pixels; pixel i lies at u = i (k_a - 1) /
// (n_a - 1) in knot units, between knots lo = min(floor(u), k_a - 2) and lo + 1 with weights
// 1 - w and w = u - lo (clamped at the border, weights sum to 1). The kernels are written for 2-D:
// axis 0 is contracted once per row and axis 1 per pixel; a 3-D version contracts the two outer
// axes per row the same way.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.hpp"
#include "polynomial.hpp"

namespace mrusfusion::MRF_NS {

struct Hat {
  idx lo;    // lower knot
  double w;  // weight of the upper knot
};

inline Hat hat(idx i, idx n, idx k) {
  const double u = n > 1 ? static_cast<double>(i * (k - 1)) / static_cast<double>(n - 1) : 0.0;
  const idx lo = std::min(static_cast<idx>(u), k - 2);  // u >= 0: the cast is the floor
  return {lo, u - static_cast<double>(lo)};
}

// Forward neighbour offsets stored per knot in 2-D, (0,0) (0,1) (1,-1) (1,0) (1,1): the centre and
// the offsets after it in lexicographic order of {-1,0,1}^2; the others are their transposes.
constexpr int kLocalSlots2 = 5;
inline int local_slot(int d0, int d1) { return (d0 + 1) * 3 + (d1 + 1) - 4; }

template <int D, class T>
double local_coupling_eval_d(const T* MRF_RESTRICT x, idx n1, idx n2, const GradSpec& spec,
                             const T* MRF_RESTRICT c, idx k1, idx k2, double x_c, double x_s,
                             double g_s, const T* MRF_RESTRICT v, const T* MRF_RESTRICT mask,
                             T* MRF_RESTRICT f, T* MRF_RESTRICT fx, T* MRF_RESTRICT fg,
                             int threads) {
  constexpr int nd = n_coeffs(D);
  const T uv = static_cast<T>(spec.u[1]), uh = static_cast<T>(spec.u[2]);  // 2-D only
  const T eps2 = static_cast<T>(spec.eps * spec.eps);
  const bool mag = spec.mode == GradMode::magnitude;
  const T xc = static_cast<T>(x_c), ixs = static_cast<T>(1.0 / x_s), igs = static_cast<T>(1.0 / g_s);
  // The column hats are the same for every row: tabulated once, outside the pixel loop, with the
  // first column of each knot cell.
  std::vector<T> w2(static_cast<size_t>(n2));
  std::vector<idx> first(static_cast<size_t>(k2), 0);
  for (idx j = 0; j < n2; ++j) {
    const Hat h = hat(j, n2, k2);
    w2[static_cast<size_t>(j)] = static_cast<T>(h.w);
    ++first[static_cast<size_t>(h.lo) + 1];
  }
  for (idx q = 1; q < k2; ++q) first[static_cast<size_t>(q)] += first[static_cast<size_t>(q) - 1];
  const idx row = k2 * nd;
  std::vector<double> part(static_cast<size_t>(n1), 0.0);
#pragma omp parallel num_threads(clamp_threads(threads))
  {
    // Coefficients of one row, interpolated along axis 0 between its two knot rows.
    std::vector<T> crow(static_cast<size_t>(row));
#pragma omp for schedule(static)
    for (idx i = 0; i < n1; ++i) {
      const Hat h1 = hat(i, n1, k1);
      const T a = static_cast<T>(h1.w);
      const T* c0 = c + h1.lo * row;
      const T* c1 = c0 + row;
      T* cr = crow.data();
      for (idx q = 0; q < row; ++q) cr[q] = c0[q] + a * (c1[q] - c0[q]);
      const T* r = x + i * n2;
      const T* rn = x + next_row(i, n1) * n2;
      T* fr = f + i * n2;
      T* fxr = fx + i * n2;
      T* fgr = fg + i * n2;
      const T* wr = w2.data();
      // f is linear in the coefficients, so along a knot cell of the row it is the blend
      // (1 - w) f_a + w f_b of the polynomials of the cell's two knots: fixed coefficients in
      // the pixel loop, which then vectorises as the global link's does.
      for (idx q = 0; q + 1 < k2; ++q) {
        T A[nd], B[nd];
        for (int k = 0; k < nd; ++k) {
          A[k] = cr[q * nd + k];
          B[k] = cr[(q + 1) * nd + k];
        }
        const idx j0 = first[static_cast<size_t>(q)], j1 = first[static_cast<size_t>(q) + 1];
        with_flag(mag, [&](auto MAG) {
          auto px = [&](idx j, idx jp) MRF_FLATTEN {
            const T dh = r[jp] - r[j], dv = rn[j] - r[j];
            T gg;
            if constexpr (MAG) gg = std::sqrt(dh * dh + dv * dv + eps2);
            else gg = uv * dv + uh * dh;
            const T t = (r[j] - xc) * ixs, s = gg * igs;
            T Fa, Fta, Fsa, Fb, Ftb, Fsb;
            poly_point<D>(A, t, s, Fa, Fta, Fsa);
            poly_point<D>(B, t, s, Fb, Ftb, Fsb);
            const T w = wr[j];
            fr[j] = Fa + w * (Fb - Fa);
            fxr[j] = (Fta + w * (Ftb - Fta)) * ixs;
            fgr[j] = (Fsa + w * (Fsb - Fsa)) * igs;
          };
          const idx je = j1 < n2 ? j1 : n2 - 1;  // the last column wraps around
#pragma omp simd
          for (idx j = j0; j < je; ++j) px(j, j + 1);
          if (je < j1) px(n2 - 1, 0);
        });
      }
      if (v) {
        const T* vr = v + i * n2;
        const T* mr = mask ? mask + i * n2 : nullptr;
        double acc = 0.0;
        for (idx j = 0; j < n2; ++j) {
          const double e = static_cast<double>(vr[j]) - static_cast<double>(fr[j]);
          acc += (mr ? static_cast<double>(mr[j]) : 1.0) * e * e;
        }
        part[static_cast<size_t>(i)] = acc;
      }
    }
  }
  double s = 0.0;
  for (double p : part) s += p;
  return s;
}

// Evaluate the local link at x (coefficients c of shape (k1, k2, n_coeffs(d)), scaled features),
// writing f, f_x and f_g; returns sum_i m_i (v_i - f_i)^2 when v is given, else 0.
template <class T>
double local_coupling_eval(const T* MRF_RESTRICT x, idx n1, idx n2, const GradSpec& spec,
                           const T* MRF_RESTRICT c, int d, idx k1, idx k2, double x_c,
                           double x_s, double g_s, const T* MRF_RESTRICT v,
                           const T* MRF_RESTRICT mask, T* MRF_RESTRICT f, T* MRF_RESTRICT fx,
                           T* MRF_RESTRICT fg, int threads) {
  require(k1 >= 2 && k2 >= 2, "the knot grid needs at least 2 knots per axis");
  require(x_s > 0 && g_s > 0, "feature scales must be positive");
  switch (d) {
#define MRF_CASE(D)                                                                              \
  case D:                                                                                        \
    return local_coupling_eval_d<D>(x, n1, n2, spec, c, k1, k2, x_c, x_s, g_s, v, mask, f, fx, \
                                    fg, threads);
    MRF_CASE(0) MRF_CASE(1) MRF_CASE(2) MRF_CASE(3) MRF_CASE(4) MRF_CASE(5)
    MRF_CASE(6) MRF_CASE(7) MRF_CASE(8) MRF_CASE(9) MRF_CASE(10)
#undef MRF_CASE
    default:
      throw std::invalid_argument("degree must be between 0 and 10");
  }
}

// Normal equations of the joint least-squares fit of the knot coefficients, weighted by the mask:
// for every knot k (row-major over (k1, k2)) and forward offset o (see kLocalSlots2), the nd x nd
// block blocks[k][o] = sum_i m_i w_k(i) w_{k+o}(i) a_i a_i^T (symmetric), and
// rhs[k] = sum_i m_i w_k(i) y_i a_i. Blocks whose neighbour lies outside the grid stay zero.
// Returns sum m y^2.
//
// Within a row the knot weights along axis 1 are (1-u, u): the row accumulates, per knot cell,
// the moments sum (1-u)^2 S, sum (1-u) u S and sum u^2 S of S = m a a^T, and hands them to the
// knot blocks with the row's axis-0 weights at the end of the row (one outer product per pixel
// instead of one per pair of knots). Cell rows of one parity touch disjoint knot rows, so they
// run in parallel without locks, and every block is summed in a fixed order.
template <class T>
double local_normal_equations(const T* MRF_RESTRICT x, const T* MRF_RESTRICT g,
                              const T* MRF_RESTRICT y, const T* MRF_RESTRICT mask, idx n1, idx n2,
                              int d, idx k1, idx k2, double x_c, double x_s, double g_s,
                              double* MRF_RESTRICT blocks, double* MRF_RESTRICT rhs, int threads) {
  require(d >= 0 && d <= kMaxDegree, "degree must be between 0 and 10");
  require(k1 >= 2 && k2 >= 2, "the knot grid needs at least 2 knots per axis");
  require(x_s > 0 && g_s > 0, "feature scales must be positive");
  const int nd = n_coeffs(d);
  const int ntri = nd * (nd + 1) / 2;
  const size_t bsz = static_cast<size_t>(nd) * nd;
  const idx nk = k1 * k2;
  std::fill(blocks, blocks + static_cast<size_t>(nk) * kLocalSlots2 * bsz, 0.0);
  std::fill(rhs, rhs + static_cast<size_t>(nk) * nd, 0.0);
  std::vector<Hat> h2(static_cast<size_t>(n2));
  for (idx j = 0; j < n2; ++j) h2[static_cast<size_t>(j)] = hat(j, n2, k2);
  // Pixel rows of each knot cell row (contiguous, as lo grows with i).
  std::vector<idx> start(static_cast<size_t>(k1), 0);
  for (idx i = 0; i < n1; ++i) ++start[static_cast<size_t>(hat(i, n1, k1).lo + 1)];
  for (idx r = 1; r < k1; ++r) start[static_cast<size_t>(r)] += start[static_cast<size_t>(r - 1)];
  std::vector<double> yy(static_cast<size_t>(n1), 0.0);
  const idx ncell = k2 - 1;
  for (int parity = 0; parity < 2; ++parity) {
#pragma omp parallel num_threads(clamp_threads(threads))
    {
      std::vector<double> M(static_cast<size_t>(ncell) * 3 * ntri);
      std::vector<double> R(static_cast<size_t>(ncell) * 2 * nd);
      double feat[n_coeffs(kMaxDegree)];
      double tp[kMaxDegree + 1], sq[kMaxDegree + 1];
      int rowoff[n_coeffs(kMaxDegree)];
      for (int a = 0; a < nd; ++a) rowoff[a] = a * nd - a * (a + 1) / 2;
#pragma omp for schedule(static)
      for (idx r = parity; r < k1 - 1; r += 2) {
        const idx i_end = start[static_cast<size_t>(r) + 1];
        for (idx i = start[static_cast<size_t>(r)]; i < i_end; ++i) {
          std::fill(M.begin(), M.end(), 0.0);
          std::fill(R.begin(), R.end(), 0.0);
          double acc = 0.0;
          for (idx j = 0; j < n2; ++j) {
            const idx k = i * n2 + j;
            const double w = mask ? static_cast<double>(mask[k]) : 1.0;
            if (w == 0.0) continue;
            const double t = (static_cast<double>(x[k]) - x_c) / x_s;
            const double s = static_cast<double>(g[k]) / g_s;
            tp[0] = sq[0] = 1.0;
            for (int p = 1; p <= d; ++p) {
              tp[p] = tp[p - 1] * t;
              sq[p] = sq[p - 1] * s;
            }
            int n = 0;
            for (int q = 0; q <= d; ++q)
              for (int p = 0; p <= d - q; ++p) feat[n++] = tp[p] * sq[q];
            const Hat hc = h2[static_cast<size_t>(j)];
            const double u = hc.w;
            const double o0 = w * (1 - u) * (1 - u), o1 = w * (1 - u) * u, o2 = w * u * u;
            double* MRF_RESTRICT M0 = M.data() + static_cast<size_t>(hc.lo) * 3 * ntri;
            double* MRF_RESTRICT M1 = M0 + ntri;
            double* MRF_RESTRICT M2 = M1 + ntri;
            // Row a of the packed upper triangle starts at rowoff[a] + a; the b loop is
            // contiguous and vectorises.
            for (int a = 0; a < nd; ++a) {
              const double f0 = o0 * feat[a], f1 = o1 * feat[a], f2 = o2 * feat[a];
              const int off = rowoff[a];
#pragma omp simd
              for (int b = a; b < nd; ++b) {
                M0[off + b] += f0 * feat[b];
                M1[off + b] += f1 * feat[b];
                M2[off + b] += f2 * feat[b];
              }
            }
            const double yk = static_cast<double>(y[k]);
            double* R0 = R.data() + static_cast<size_t>(hc.lo) * 2 * nd;
            const double wy0 = w * yk * (1 - u), wy1 = w * yk * u;
            for (int a = 0; a < nd; ++a) {
              R0[a] += wy0 * feat[a];
              R0[nd + a] += wy1 * feat[a];
            }
            acc += w * yk * yk;
          }
          yy[static_cast<size_t>(i)] = acc;
          const double a1 = hat(i, n1, k1).w;
          const double A[2] = {1 - a1, a1};
          for (idx c2 = 0; c2 < ncell; ++c2) {
            // Corners 0..3 = (0,0) (0,1) (1,0) (1,1) in (axis 0, axis 1): increasing knot index.
            for (int P = 0; P < 4; ++P) {
              const int aP = P >> 1, bP = P & 1;
              const idx kP = (r + aP) * k2 + c2 + bP;
              const double* Rm = R.data() + (static_cast<size_t>(c2) * 2 + bP) * nd;
              double* rk = rhs + static_cast<size_t>(kP) * nd;
              for (int a = 0; a < nd; ++a) rk[a] += A[aP] * Rm[a];
              for (int Q = P; Q < 4; ++Q) {
                const int aQ = Q >> 1, bQ = Q & 1;
                const double f1 = A[aP] * A[aQ];
                const double* Mm = M.data() + (static_cast<size_t>(c2) * 3 + bP + bQ) * ntri;
                double* B = blocks + (static_cast<size_t>(kP) * kLocalSlots2 +
                                      local_slot(aQ - aP, bQ - bP)) * bsz;
                int tri = 0;
                for (int a = 0; a < nd; ++a)
                  for (int b = a; b < nd; ++b, ++tri) B[a * nd + b] += f1 * Mm[tri];
              }
            }
          }
        }
      }
    }
  }
  for (size_t blk = 0; blk < static_cast<size_t>(nk) * kLocalSlots2; ++blk) {
    double* B = blocks + blk * bsz;
    for (int a = 0; a < nd; ++a)
      for (int b = 0; b < a; ++b) B[a * nd + b] = B[b * nd + a];
  }
  double s = 0.0;
  for (double v : yy) s += v;
  return s;
}

}  // namespace mrusfusion::MRF_NS
