"""``tau1`` and the MR noise variance by generalised cross-validation (DESIGN.md section 10).

The MR-only problem is Fourier-diagonal: with ``W(tau) = B(|Lam|^2 / (2 tau |D|^2 + eps))`` the
eigenvalues of ``I - A(tau)`` are ``1 / (1 + W)``, so ``GCV(tau) = m RSS / tr(I - A)^2`` is exact
and costs no FFT per trial; ``sigma_m^2 = RSS(tau1) / tr(I - A(tau1))``.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..fourier import as_ratios, dtd_symbol, fold

__all__ = ["gcv_tau1"]

_RIDGE = 1e-6


def _gcv_terms(abs_lam2: np.ndarray, dtd: np.ndarray, ym_pow: np.ndarray, s, tau: float):
    W = fold(abs_lam2 / (2.0 * tau * dtd + _RIDGE), s)
    inv = 1.0 / (1.0 + W)
    m = ym_pow.size
    rss = float(np.sum(ym_pow * inv**2)) / m
    tr = float(np.sum(inv))
    return rss, tr


class _HalfGCV:
    """``_gcv_terms`` on half of the coarse spectrum. ``|Lam|^2``, ``|D|^2`` and the power of a
    real image are even, so the folded ``W`` is too, and the coarse indices ``0..m/2`` of the
    last axis hold everything: each other one stands for its mirror as well (weight 2). The
    fine-grid entries they fold are gathered once, in tile order (tile axes first), which halves
    each evaluation. 2-D or 3-D, one ratio per axis."""

    def __init__(self, abs_lam2: np.ndarray, dtd: np.ndarray, ym_pow: np.ndarray, s):
        ratios = as_ratios(s, abs_lam2.ndim)
        coarse = [n // r for n, r in zip(abs_lam2.shape, ratios)]
        m2 = coarse[-1]
        h = m2 // 2 + 1
        split = [d for r, m in zip(ratios, coarse) for d in (r, m)]
        order = list(range(0, 2 * len(ratios), 2)) + list(range(1, 2 * len(ratios), 2))
        self.tile_axes = tuple(range(len(ratios)))

        def tiles(q):
            return np.ascontiguousarray(q.reshape(split).transpose(order)[..., :h])

        self.lam2, self.dtd2 = tiles(abs_lam2), 2.0 * tiles(dtd)
        wcol = np.full(h, 2.0)
        wcol[0] = 1.0
        if m2 % 2 == 0:
            wcol[-1] = 1.0
        self.wcol = wcol
        self.ym_pow = ym_pow[..., :h] * wcol
        self.m, self.s2 = ym_pow.size, int(np.prod(ratios))
        self._buf = np.empty_like(self.lam2)

    def __call__(self, tau: float):
        b = self._buf
        np.multiply(self.dtd2, tau, out=b)
        np.add(b, _RIDGE, out=b)
        np.divide(self.lam2, b, out=b)
        W = b.sum(axis=self.tile_axes) / self.s2
        inv = 1.0 / (1.0 + W)
        rss = float(np.sum(self.ym_pow * inv**2)) / self.m
        tr = float(np.sum(self.wcol * inv))
        return rss, tr


def gcv_tau1(y_m: np.ndarray, ratio, abs_lam2: np.ndarray, *,
             grid=None, weights: Optional[Sequence[float]] = None) -> Tuple[float, float]:
    """``tau1`` minimising GCV of the MR-only problem, and ``sigma_m^2``.

    Parameters
    ----------
    y_m : ndarray
        MR observation (coarse grid, solver units), 2-D or 3-D.
    ratio : int or tuple of int
        One ratio, or one per axis.
    abs_lam2 : ndarray
        ``|Lam|^2`` on the full fine-grid spectrum.
    grid : array_like, optional
        Trial values (default: 61 points log-spaced on [1e-5, 10]).
    weights : sequence of float, optional
        Difference weights ``h_ref / h_a`` (DESIGN.md 11); None: all 1.

    Returns
    -------
    (tau1, sigma_m2) : (float, float)

    Notes
    -----
    ``GCV(tau) = m RSS / tr(I - A)^2`` with ``RSS = (1/m) sum |Y_m|^2 (1 + W)^-2`` and
    ``tr(I - A) = sum (1 + W)^-1``, minimised over the grid with a parabolic refinement;
    ``sigma_m^2 = RSS(tau1) / tr(I - A(tau1))`` (DESIGN.md section 10).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(0.5, 0.01, (16, 16))
    >>> tau1, sigma_m2 = gcv_tau1(y, 2, np.ones((32, 32)))
    >>> bool(5e-5 < sigma_m2 < 2e-4)
    True
    """
    dtd = dtd_symbol(abs_lam2.shape, weights=weights)
    ym_pow = np.abs(np.fft.fftn(y_m)) ** 2
    m = ym_pow.size
    grid = np.logspace(-5, 1, 61) if grid is None else np.asarray(grid, float)

    terms = _HalfGCV(abs_lam2, dtd, ym_pow, ratio)

    def gcv(lt):
        rss, tr = terms(10.0**lt)
        return m * rss / tr**2

    lg = np.log10(grid)
    vals = np.array([gcv(t) for t in lg])
    k = int(np.argmin(vals))
    best = lg[k]
    if 0 < k < len(lg) - 1:  # parabolic refinement through the three points around the minimum
        a, b, c = vals[k - 1], vals[k], vals[k + 1]
        h = lg[k] - lg[k - 1]
        den = a - 2 * b + c
        if den > 0:
            cand = lg[k] + 0.5 * h * (a - c) / den
            if gcv(cand) < b:
                best = cand
    tau1 = float(10.0**best)
    rss, tr = _gcv_terms(abs_lam2, dtd, ym_pow, ratio, tau1)
    return tau1, rss / tr
