// Closed-form x-step in the Fourier domain (Zhao et al. 2016; DESIGN.md sec. 6), on the
// half spectra of real FFTs: an (n1, n2) image has an (n1, n2/2+1) spectrum.
//   phi = 2 tau1 |D|^2 + L,   R = conj(Lam) tile(Y_m) + L X_k - G_k     (= fft2(C^T S^T y + L z))
//   W = B(|Lam|^2 / phi),     T = B(Lam R / phi) / (1 + W),   X = (R - conj(Lam) tile(T)) / phi
// B(Q) = (1/s^2) sum of the s x s tiles of the full spectrum Q; columns beyond n2/2 are read
// through Hermitian symmetry Q[-r, -c] = conj(Q[r, c]).
#pragma once
#include <complex>

#include "common.hpp"

namespace mrusfusion::detail {

struct SpectralGrid {
  idx n1, n2, s, m1, m2, h2, mh2;  // h2 = n2/2+1 and mh2 = m2/2+1: half-spectrum widths
  SpectralGrid(idx n1_, idx n2_, idx s_)
      : n1(n1_), n2(n2_), s(s_), m1(n1_ / s_), m2(n2_ / s_), h2(n2_ / 2 + 1), mh2(n2_ / s_ / 2 + 1) {
    require(s_ >= 1 && n1_ % s_ == 0 && n2_ % s_ == 0, "image shape must be a multiple of the ratio");
  }
  // Index into the half spectrum of the full-spectrum entry (r, c); conj says to conjugate it.
  inline idx at(idx r, idx c, bool& conj) const {
    if (c < h2) {
      conj = false;
      return r * h2 + c;
    }
    conj = true;
    return ((n1 - r) % n1) * h2 + (n2 - c);
  }
};

template <class T>
void xstep_solve(const std::complex<T>* MRF_RESTRICT Rm, const std::complex<T>* MRF_RESTRICT Xk,
                 const std::complex<T>* MRF_RESTRICT Gk, const std::complex<T>* MRF_RESTRICT Lam,
                 const T* MRF_RESTRICT dtd, const SpectralGrid& sg, double tau1, double L,
                 std::complex<T>* MRF_RESTRICT Twork, std::complex<T>* MRF_RESTRICT X,
                 int threads) {
  using C = std::complex<T>;
  const T tl = static_cast<T>(L), t1 = static_cast<T>(2.0 * tau1);
  const T inv_s2 = T(1) / static_cast<T>(sg.s * sg.s);
  auto rhs = [&](idx k) -> C {
    C r = Rm[k];
    if (Xk) r += tl * Xk[k];
    if (Gk) r -= Gk[k];
    return r;
  };
  // Fold Lam R / phi and |Lam|^2 / phi onto the coarse half spectrum.
  for_rows(sg.m1, threads, [&](idx kk) {
    for (idx ll = 0; ll < sg.mh2; ++ll) {
      C acc(0, 0);
      T wacc = 0;
      for (idx a = 0; a < sg.s; ++a) {
        for (idx b = 0; b < sg.s; ++b) {
          bool cj;
          const idx k = sg.at(kk + a * sg.m1, ll + b * sg.m2, cj);
          const T phi = t1 * dtd[k] + tl;
          const C lam = Lam[k];
          const C p = lam * rhs(k) / phi;
          acc += cj ? std::conj(p) : p;
          wacc += std::norm(lam) / phi;
        }
      }
      Twork[kk * sg.mh2 + ll] = acc * inv_s2 / (T(1) + wacc * inv_s2);
    }
  });
  for_rows(sg.n1, threads, [&](idx k1) {
    const idx kk = k1 % sg.m1, kn = (sg.m1 - kk) % sg.m1;
    for (idx l = 0; l < sg.h2; ++l) {
      const idx ll = l % sg.m2;
      const C t = ll < sg.mh2 ? Twork[kk * sg.mh2 + ll] : std::conj(Twork[kn * sg.mh2 + (sg.m2 - ll)]);
      const idx k = k1 * sg.h2 + l;
      const T phi = t1 * dtd[k] + tl;
      X[k] = (rhs(k) - std::conj(Lam[k]) * t) / phi;
    }
  });
}

// ||y_m - S C x||^2 from spectra: X = rfft2(x) on the fine grid, Ym = rfft2(y_m) on the coarse one.
template <class T>
double mr_residual_energy(const std::complex<T>* MRF_RESTRICT X,
                          const std::complex<T>* MRF_RESTRICT Lam,
                          const std::complex<T>* MRF_RESTRICT Ym, const SpectralGrid& sg,
                          int threads) {
  const double inv_s2 = 1.0 / static_cast<double>(sg.s * sg.s);
  const double e = sum_rows(sg.m1, threads, [&](idx kk) {
    double acc = 0.0;
    for (idx ll = 0; ll < sg.mh2; ++ll) {
      std::complex<double> f(0, 0);
      for (idx a = 0; a < sg.s; ++a)
        for (idx b = 0; b < sg.s; ++b) {
          bool cj;
          const idx k = sg.at(kk + a * sg.m1, ll + b * sg.m2, cj);
          const std::complex<double> p = std::complex<double>(Lam[k]) * std::complex<double>(X[k]);
          f += cj ? std::conj(p) : p;
        }
      const std::complex<double> r = std::complex<double>(Ym[kk * sg.mh2 + ll]) - f * inv_s2;
      const bool single = ll == 0 || (sg.m2 % 2 == 0 && ll == sg.m2 / 2);
      acc += (single ? 1.0 : 2.0) * std::norm(r);
    }
    return acc;
  });
  return e / static_cast<double>(sg.m1 * sg.m2);
}

}  // namespace mrusfusion::detail
