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

// Arrays of 2 or 3 dimensions are handled as three axes: a 2-D (n1, n2) image is the grid
// (1, n1, n2), whose first axis contributes nothing (a periodic difference along an axis of
// length 1 is zero), so 2-D is not a special case of any kernel (DESIGN.md sec. 11).
constexpr int kMaxDim = 3;

// The fine grid: shape n (C order, the last axis contiguous) and the weight w[a] = h_ref / h_a
// of the difference along axis a (1 on an isotropic grid). The kernels walk it as rows() rows of
// width() values.
struct Grid {
  idx n[kMaxDim] = {1, 1, 1};
  double w[kMaxDim] = {1.0, 1.0, 1.0};
  idx rows() const { return n[0] * n[1]; }
  idx width() const { return n[2]; }
  idx size() const { return n[0] * n[1] * n[2]; }
  // The rows one step after (next) and before (prev) row o along axis 0 and along axis 1.
  idx next0(idx o) const { return o / n[1] + 1 == n[0] ? o - (n[0] - 1) * n[1] : o + n[1]; }
  idx prev0(idx o) const { return o / n[1] == 0 ? o + (n[0] - 1) * n[1] : o - n[1]; }
  idx next1(idx o) const { return o % n[1] + 1 == n[1] ? o - (n[1] - 1) : o + 1; }
  idx prev1(idx o) const { return o % n[1] == 0 ? o + (n[1] - 1) : o - 1; }
};

// The gradient map of the link: directional g = sum_a u[a] w[a] D_a x, or the magnitude
// sqrt(sum_a (w[a] D_a x)^2 + eps^2). u is the scan direction, one component per axis of the
// padded grid (u[0] = 0 for a 2-D image).
struct GradSpec {
  GradMode mode = GradMode::directional;
  double u[kMaxDim] = {0.0, 1.0, 0.0};
  double eps = 0.0;  // smoothing of the magnitude variant
};

// Fine grid n, per-axis ratios s, coarse grid m = n / s, and the half-spectrum widths
// h2 = n[2]/2+1, mh2 = m[2]/2+1 of real FFTs over all axes (Hermitian along the last axis).
struct SpectralGrid {
  idx n[kMaxDim], s[kMaxDim], m[kMaxDim];
  idx h2, mh2;
  SpectralGrid(const idx* n_, const idx* s_) {
    for (int a = 0; a < kMaxDim; ++a) {
      if (!(s_[a] >= 1 && n_[a] % s_[a] == 0))
        throw std::invalid_argument("image shape must be a multiple of the ratio on every axis");
      n[a] = n_[a];
      s[a] = s_[a];
      m[a] = n_[a] / s_[a];
    }
    h2 = n[2] / 2 + 1;
    mh2 = m[2] / 2 + 1;
  }
  idx tiles() const { return s[0] * s[1] * s[2]; }
  idx coarse_rows() const { return m[0] * m[1]; }
  idx fine_rows() const { return n[0] * n[1]; }
};

}  // namespace mrusfusion
