// Types shared by every build of the kernels (baseline and AVX2 ones live in different
// namespaces, see common.hpp), so that the binding can hand the same arguments to either.
#pragma once
#include <cstddef>
#include <stdexcept>

namespace mrusfusion {

using idx = std::ptrdiff_t;

constexpr int kMaxDegree = 10;

constexpr int n_coeffs(int degree) { return (degree + 1) * (degree + 2) / 2; }

enum class GradMode : int { directional = 0, magnitude = 1 };

struct GradSpec {
  GradMode mode = GradMode::directional;
  double uv = 1.0;  // scan direction, vertical component (down the rows)
  double uh = 0.0;  // horizontal component (along a row)
  double eps = 0.0;  // smoothing of the magnitude variant
};

// Shapes of the fine grid (n1, n2), ratio s, coarse grid (m1, m2) and half-spectrum widths
// h2 = n2/2+1, mh2 = m2/2+1 of real FFTs.
struct SpectralGrid {
  idx n1, n2, s, m1, m2, h2, mh2;
  SpectralGrid(idx n1_, idx n2_, idx s_)
      : n1(n1_), n2(n2_), s(s_), m1(s_ > 0 ? n1_ / s_ : 0), m2(s_ > 0 ? n2_ / s_ : 0),
        h2(n2_ / 2 + 1), mh2((s_ > 0 ? n2_ / s_ : 0) / 2 + 1) {
    if (!(s_ >= 1 && n1_ % s_ == 0 && n2_ % s_ == 0))
      throw std::invalid_argument("image shape must be a multiple of the ratio");
  }
  // Index into the half spectrum of the full-spectrum entry (r, c); conj says to conjugate it.
  inline idx at(idx r, idx c, bool& conj) const {
    if (c < h2) {
      conj = false;
      return r * h2 + c;
    }
    conj = true;
    return (r == 0 ? 0 : n1 - r) * h2 + (n2 - c);
  }
};

}  // namespace mrusfusion
