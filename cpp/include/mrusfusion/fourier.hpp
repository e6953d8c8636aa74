// Closed-form x-step in the Fourier domain (Zhao et al. 2016; DESIGN.md sec. 6), on the
// half spectra of real FFTs: an (n1, n2) image has an (n1, n2/2+1) spectrum.
//   phi = 2 tau1 |D|^2 + L,   R = conj(Lam) tile(Y_m) + L X_k - G_k     (= fft2(C^T S^T y + L z))
//   W = B(|Lam|^2 / phi),     T = B(Lam R / phi) / (1 + W),   X = (R - conj(Lam) tile(T)) / phi
// B(Q) = (1/s^2) sum of the s x s tiles of the full spectrum Q; columns beyond n2/2 are read
// through Hermitian symmetry Q[-r, -c] = conj(Q[r, c]).
#pragma once
#include <complex>

#include "common.hpp"

namespace mrusfusion::MRF_NS {

using mrusfusion::SpectralGrid;

// Complex arithmetic is written out on (re, im) pairs: std::complex products without
// -ffast-math go through a NaN-checking library call that cost 5x here.
template <class T>
void xstep_solve(const std::complex<T>* MRF_RESTRICT Rm_, const std::complex<T>* MRF_RESTRICT Xk_,
                 const std::complex<T>* MRF_RESTRICT Gk_, const std::complex<T>* MRF_RESTRICT Lam_,
                 const T* MRF_RESTRICT dtd, const SpectralGrid& sg, double tau1, double L,
                 std::complex<T>* MRF_RESTRICT Twork_, std::complex<T>* MRF_RESTRICT X_,
                 int threads) {
  const T* Rm = reinterpret_cast<const T*>(Rm_);
  const T* Xk = reinterpret_cast<const T*>(Xk_);
  const T* Gk = reinterpret_cast<const T*>(Gk_);
  const T* Lam = reinterpret_cast<const T*>(Lam_);
  T* Tw = reinterpret_cast<T*>(Twork_);
  T* X = reinterpret_cast<T*>(X_);
  const T tl = static_cast<T>(L), t1 = static_cast<T>(2.0 * tau1);
  const T inv_s2 = T(1) / static_cast<T>(sg.s * sg.s);
  // Right-hand side R = Rm + L Xk - Gk at half-spectrum index k.
  auto rhs = [&](idx k, T& re, T& im) {
    re = Rm[2 * k];
    im = Rm[2 * k + 1];
    if (Xk) {
      re += tl * Xk[2 * k];
      im += tl * Xk[2 * k + 1];
    }
    if (Gk) {
      re -= Gk[2 * k];
      im -= Gk[2 * k + 1];
    }
  };
  // Fold Lam R / phi and |Lam|^2 / phi onto the coarse half spectrum.
  for_rows(sg.m1, threads, [&](idx kk) {
    for (idx ll = 0; ll < sg.mh2; ++ll) {
      T are = 0, aim = 0, wacc = 0;
      for (idx a = 0; a < sg.s; ++a) {
        for (idx b = 0; b < sg.s; ++b) {
          bool cj;
          const idx k = sg.at(kk + a * sg.m1, ll + b * sg.m2, cj);
          const T iphi = T(1) / (t1 * dtd[k] + tl);
          T rre, rim;
          rhs(k, rre, rim);
          const T lre = Lam[2 * k], lim = Lam[2 * k + 1];
          const T pre = (lre * rre - lim * rim) * iphi, pim = (lre * rim + lim * rre) * iphi;
          are += pre;
          aim += cj ? -pim : pim;
          wacc += (lre * lre + lim * lim) * iphi;
        }
      }
      const T den = T(1) / (T(1) + wacc * inv_s2) * inv_s2;
      Tw[2 * (kk * sg.mh2 + ll)] = are * den;
      Tw[2 * (kk * sg.mh2 + ll) + 1] = aim * den;
    }
  });
  for_rows(sg.n1, threads, [&](idx k1) {
    const idx kk = k1 % sg.m1, kn = (sg.m1 - kk) % sg.m1;
    idx ll = 0;  // l mod m2, kept by a counter instead of a division per entry
    for (idx l = 0; l < sg.h2; ++l, ll = (ll + 1 == sg.m2 ? 0 : ll + 1)) {
      T tre, tim;
      if (ll < sg.mh2) {
        tre = Tw[2 * (kk * sg.mh2 + ll)];
        tim = Tw[2 * (kk * sg.mh2 + ll) + 1];
      } else {
        tre = Tw[2 * (kn * sg.mh2 + (sg.m2 - ll))];
        tim = -Tw[2 * (kn * sg.mh2 + (sg.m2 - ll)) + 1];
      }
      const idx k = k1 * sg.h2 + l;
      const T iphi = T(1) / (t1 * dtd[k] + tl);
      T rre, rim;
      rhs(k, rre, rim);
      const T lre = Lam[2 * k], lim = Lam[2 * k + 1];
      // X = (R - conj(Lam) T) / phi
      X[2 * k] = (rre - (lre * tre + lim * tim)) * iphi;
      X[2 * k + 1] = (rim - (lre * tim - lim * tre)) * iphi;
    }
  });
}

// ||y_m - S C x||^2 from spectra: X = rfft2(x) on the fine grid, Ym = rfft2(y_m) on the coarse one.
template <class T>
double mr_residual_energy(const std::complex<T>* MRF_RESTRICT X_,
                          const std::complex<T>* MRF_RESTRICT Lam_,
                          const std::complex<T>* MRF_RESTRICT Ym_, const SpectralGrid& sg,
                          int threads) {
  const T* X = reinterpret_cast<const T*>(X_);
  const T* Lam = reinterpret_cast<const T*>(Lam_);
  const T* Ym = reinterpret_cast<const T*>(Ym_);
  const double inv_s2 = 1.0 / static_cast<double>(sg.s * sg.s);
  const double e = sum_rows(sg.m1, threads, [&](idx kk) {
    double acc = 0.0;
    for (idx ll = 0; ll < sg.mh2; ++ll) {
      double fre = 0, fim = 0;
      for (idx a = 0; a < sg.s; ++a)
        for (idx b = 0; b < sg.s; ++b) {
          bool cj;
          const idx k = sg.at(kk + a * sg.m1, ll + b * sg.m2, cj);
          const double lre = Lam[2 * k], lim = Lam[2 * k + 1], xre = X[2 * k], xim = X[2 * k + 1];
          fre += lre * xre - lim * xim;
          const double pim = lre * xim + lim * xre;
          fim += cj ? -pim : pim;
        }
      const idx c = kk * sg.mh2 + ll;
      const double rre = Ym[2 * c] - fre * inv_s2, rim = Ym[2 * c + 1] - fim * inv_s2;
      const bool single = ll == 0 || (sg.m2 % 2 == 0 && ll == sg.m2 / 2);
      acc += (single ? 1.0 : 2.0) * (rre * rre + rim * rim);
    }
    return acc;
  });
  return e / static_cast<double>(sg.m1 * sg.m2);
}

}  // namespace mrusfusion::MRF_NS
