// Closed-form x-step in the Fourier domain (Zhao et al. 2016; DESIGN.md sec. 6 and 11), on the
// half spectra of real FFTs over all axes: an (n0, n1, n2) grid (n0 = 1 for an image) has an
// (n0, n1, n2/2+1) spectrum.
//   phi = 2 tau1 |D|^2 + L,   R = conj(Lam) tile(Y_m) + L X_k - G_k     (= fft2(C^T S^T y + L z))
//   W = B(|Lam|^2 / phi),     T = B(Lam R / phi) / (1 + W),   X = (R - conj(Lam) tile(T)) / phi
// B(Q) = (1/P) sum of the P = s0 s1 s2 tiles of shape (m0, m1, m2) of the full spectrum Q;
// columns beyond n2/2 are read through Hermitian symmetry Q[-k] = conj(Q[k]).
#pragma once
#include <algorithm>
#include <complex>
#include <vector>

#include "common.hpp"

namespace mrusfusion::MRF_NS {

using mrusfusion::SpectralGrid;

// The fold B visits, for coarse row kk = (k0, k1), the fine rows r = (k0 + a0 m0, k1 + a1 m1)
// and in each the column segments [b m2, b m2 + mh2). A segment's columns below h2 are read
// forwards from row r; those at or beyond h2 are read backwards from row -r (mod the shape) and
// conjugated. seg(k0, step, conj, lo, hi) is called for both parts with the half-spectrum index
// k = k0 + step * ll, so each inner loop streams through memory and vectorises.
template <class Seg>
inline void fold_segments(const SpectralGrid& sg, idx kk, Seg&& seg) {
  const idx n0 = sg.n[0], n1 = sg.n[1], n2 = sg.n[2], m2 = sg.m[2];
  const idx k0 = kk / sg.m[1], k1 = kk % sg.m[1];
  for (idx a0 = 0; a0 < sg.s[0]; ++a0) {
    const idx R0 = k0 + a0 * sg.m[0], N0 = (n0 - R0) % n0;
    for (idx a1 = 0; a1 < sg.s[1]; ++a1) {
      const idx R1 = k1 + a1 * sg.m[1], N1 = (n1 - R1) % n1;
      const idx r = R0 * n1 + R1, rn = N0 * n1 + N1;
      for (idx b = 0; b < sg.s[2]; ++b) {
        const idx c0 = b * m2;
        const idx split = std::min(sg.mh2, std::max<idx>(0, sg.h2 - c0));  // ll < split: direct
        if (split > 0) seg(r * sg.h2 + c0, idx(1), false, idx(0), split);
        if (split < sg.mh2) seg(rn * sg.h2 + (n2 - c0), idx(-1), true, split, sg.mh2);
      }
    }
  }
}

// The coarse row whose T a fine row k reads when tiling (kk), and its negative (kn).
inline void tile_rows(const SpectralGrid& sg, idx k, idx& kk, idx& kn) {
  const idx m0 = sg.m[0], m1 = sg.m[1];
  const idx q0 = (k / sg.n[1]) % m0, q1 = (k % sg.n[1]) % m1;
  kk = q0 * m1 + q1;
  kn = ((m0 - q0) % m0) * m1 + (m1 - q1) % m1;
}

// Complex arithmetic is written out on (re, im) pairs: std::complex products without
// -ffast-math go through a NaN-checking library call that cost 5x here.
template <class T>
void xstep_solve(const std::complex<T>* MRF_RESTRICT Rm_, const std::complex<T>* MRF_RESTRICT Xk_,
                 const std::complex<T>* MRF_RESTRICT Gk_, const std::complex<T>* MRF_RESTRICT Lam_,
                 const T* MRF_RESTRICT dtd, const SpectralGrid& sg, double tau1, double L,
                 std::complex<T>* MRF_RESTRICT Twork_, std::complex<T>* MRF_RESTRICT X_,
                 std::complex<T>* MRF_RESTRICT X2_, int threads) {
  const T* Rm = reinterpret_cast<const T*>(Rm_);
  const T* Xk = reinterpret_cast<const T*>(Xk_);
  const T* Gk = reinterpret_cast<const T*>(Gk_);
  const T* Lam = reinterpret_cast<const T*>(Lam_);
  T* Tw = reinterpret_cast<T*>(Twork_);
  T* X = reinterpret_cast<T*>(X_);
  T* X2 = reinterpret_cast<T*>(X2_);  // optional second copy (the inverse FFT's input buffer)
  const T tl = static_cast<T>(L), t1 = static_cast<T>(2.0 * tau1);
  const T inv_s2 = T(1) / static_cast<T>(sg.tiles());
  const T xs = Xk ? tl : T(0), gs = Gk ? T(1) : T(0);
  // Absent terms read a zero spectrum through a scale of 0, which keeps one loop body.
  const T* Xr = Xk ? Xk : Rm;
  const T* Gr = Gk ? Gk : Rm;
  // Fold Lam R / phi and |Lam|^2 / phi onto the coarse half spectrum, with
  // R = Rm + L Xk - Gk and phi = 2 tau1 |D|^2 + L.
#pragma omp parallel num_threads(clamp_threads(threads))
  {
    std::vector<T> acc(static_cast<size_t>(3 * sg.mh2));
#pragma omp for schedule(static)
    for (idx kk = 0; kk < sg.coarse_rows(); ++kk) {
      T* MRF_RESTRICT are = acc.data();
      T* MRF_RESTRICT aim = are + sg.mh2;
      T* MRF_RESTRICT wac = aim + sg.mh2;
      std::fill(acc.begin(), acc.end(), T(0));
      fold_segments(sg, kk, [&](idx k0, idx step, bool cj, idx lo, idx hi) {
        const T sgn = cj ? T(-1) : T(1);
#pragma omp simd
        for (idx ll = lo; ll < hi; ++ll) {
          const idx k = k0 + step * ll;
          const T iphi = T(1) / (t1 * dtd[k] + tl);
          const T rre = Rm[2 * k] + xs * Xr[2 * k] - gs * Gr[2 * k];
          const T rim = Rm[2 * k + 1] + xs * Xr[2 * k + 1] - gs * Gr[2 * k + 1];
          const T lre = Lam[2 * k], lim = Lam[2 * k + 1];
          are[ll] += (lre * rre - lim * rim) * iphi;
          aim[ll] += sgn * (lre * rim + lim * rre) * iphi;
          wac[ll] += (lre * lre + lim * lim) * iphi;
        }
      });
      for (idx ll = 0; ll < sg.mh2; ++ll) {
        const T den = T(1) / (T(1) + wac[ll] * inv_s2) * inv_s2;
        Tw[2 * (kk * sg.mh2 + ll)] = are[ll] * den;
        Tw[2 * (kk * sg.mh2 + ll) + 1] = aim[ll] * den;
      }
    }
  }
  // X = (R - conj(Lam) tile(T)) / phi, streaming through the half spectrum.
  const idx m2 = sg.m[2];
  for_rows(sg.fine_rows(), threads, [&](idx k1) MRF_FLATTEN {
    idx kk, kn;
    tile_rows(sg, k1, kk, kn);
    for (idx c0 = 0; c0 < sg.h2; c0 += m2) {
      const idx width = std::min(m2, sg.h2 - c0);
      auto run = [&](idx lo, idx hi, const T* t0, idx tstep, T tsgn) {
#pragma omp simd
        for (idx ll = lo; ll < hi; ++ll) {
          const idx k = k1 * sg.h2 + c0 + ll;
          const T tre = t0[2 * tstep * ll], tim = tsgn * t0[2 * tstep * ll + 1];
          const T iphi = T(1) / (t1 * dtd[k] + tl);
          const T rre = Rm[2 * k] + xs * Xr[2 * k] - gs * Gr[2 * k];
          const T rim = Rm[2 * k + 1] + xs * Xr[2 * k + 1] - gs * Gr[2 * k + 1];
          const T lre = Lam[2 * k], lim = Lam[2 * k + 1];
          X[2 * k] = (rre - (lre * tre + lim * tim)) * iphi;
          X[2 * k + 1] = (rim - (lre * tim - lim * tre)) * iphi;
        }
      };
      // Tiled column ll < mh2 reads T[kk, ll]; beyond, conj(T[kn, m2 - ll]).
      const idx direct = std::min(width, sg.mh2);
      run(0, direct, Tw + 2 * (kk * sg.mh2), 1, T(1));
      if (direct < width) run(direct, width, Tw + 2 * (kn * sg.mh2 + m2), -1, T(-1));
    }
    if (X2)
      for (idx k = 2 * k1 * sg.h2; k < 2 * (k1 + 1) * sg.h2; ++k) X2[k] = X[k];
  });
}

// ||y_m - S C x||^2 from spectra: X = rfftn(x) on the fine grid, Ym = rfftn(y_m) on the coarse one.
template <class T>
double mr_residual_energy(const std::complex<T>* MRF_RESTRICT X_,
                          const std::complex<T>* MRF_RESTRICT Lam_,
                          const std::complex<T>* MRF_RESTRICT Ym_, const SpectralGrid& sg,
                          int threads) {
  const T* X = reinterpret_cast<const T*>(X_);
  const T* Lam = reinterpret_cast<const T*>(Lam_);
  const T* Ym = reinterpret_cast<const T*>(Ym_);
  const double inv_s2 = 1.0 / static_cast<double>(sg.tiles());
  const double e = sum_rows_scratch(sg.coarse_rows(), 2 * sg.mh2, threads, [&](idx kk, double* acc) MRF_FLATTEN {
    double* MRF_RESTRICT fre = acc;
    double* MRF_RESTRICT fim = acc + sg.mh2;
    std::fill(acc, acc + 2 * sg.mh2, 0.0);
    fold_segments(sg, kk, [&](idx k0, idx step, bool cj, idx lo, idx hi) {
      const double sgn = cj ? -1.0 : 1.0;
#pragma omp simd
      for (idx ll = lo; ll < hi; ++ll) {
        const idx k = k0 + step * ll;
        const double lre = Lam[2 * k], lim = Lam[2 * k + 1], xre = X[2 * k], xim = X[2 * k + 1];
        fre[ll] += lre * xre - lim * xim;
        fim[ll] += sgn * (lre * xim + lim * xre);
      }
    });
    double s = 0.0;
    for (idx ll = 0; ll < sg.mh2; ++ll) {
      const idx c = kk * sg.mh2 + ll;
      const double rre = Ym[2 * c] - fre[ll] * inv_s2, rim = Ym[2 * c + 1] - fim[ll] * inv_s2;
      const bool single = ll == 0 || (sg.m[2] % 2 == 0 && ll == sg.m[2] / 2);
      s += (single ? 1.0 : 2.0) * (rre * rre + rim * rim);
    }
    return s;
  });
  return e / static_cast<double>(sg.m[0] * sg.m[1] * sg.m[2]);
}

}  // namespace mrusfusion::MRF_NS
