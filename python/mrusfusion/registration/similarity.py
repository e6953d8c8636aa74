"""The link's own similarity and its gradient (DESIGN.md section 15; Roche et al. 2001).

For the warped US ``w = y_u o T_A`` (``w(o) = y_u(A [o, 1])``, cubic B-spline interpolation)
and the overlap weights ``m`` (the fixed mask times a smooth taper that falls to 0 where ``A``
sends a pixel out of the moving US),

    S(A) = 1 - min_c sum m (w - F c)^2 / sum m (w - mean_m w)^2,

with ``F`` the scaled link features ``t^p s^q`` of the fixed MR on the fine grid (``t`` its
intensity, ``s`` its gradient, :class:`mrusfusion.link.FeatureScaling`): the share of the US
variance the global polynomial link explains, :meth:`PolynomialLink.explained_variance` of the
fitted link. The fitted ``c`` and the mean minimise their sums, so by the envelope theorem

    dS/dw = -2 m (r - (1 - S) (w - mean)) / V,    r = w - F c,  V = sum m (w - mean)^2,

``dS/dm = -(r^2 - (1 - S) (w - mean)^2) / V``, and
``dS/dA_ij = sum_o (dS/dw(o) d_i y_u(p) + dS/dm(o) d_i m(p)) [o, 1]_j`` at ``p = A [o, 1]``.
The derivatives of the cubic spline and of the taper are exact, so the gradient matches
finite differences of ``S`` even as pixels enter or leave the overlap.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import itertools

import numpy as np
from scipy import ndimage

from ..link import FeatureScaling
from ..operators import make_gradient

__all__ = ["LinkSimilarity", "Evaluation", "warp"]

# Margin of spline coefficients around the moving image, so every cubic kernel that a point
# inside the image touches reads stored coefficients (mirror extension).
_PAD = 3


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of the similarity.

    Attributes
    ----------
    value : float
        ``S`` (times ``q^alpha`` with ``coverage``); NaN when the overlap is smaller than
        ``min_pixels``.
    grad : ndarray, shape (ndim, ndim + 1)
        Its derivative with respect to ``A`` (zeros with a NaN value).
    overlap : int
        Pixels in the overlap.
    """

    value: float
    grad: np.ndarray
    overlap: int


def _spline(image: np.ndarray) -> np.ndarray:
    """Cubic spline coefficients of ``image`` (whole-sample mirror boundary, as
    ``map_coordinates(mode="mirror")``), padded by ``_PAD`` with their own mirror images."""
    coef = ndimage.spline_filter(image.astype(np.float64), order=3, mode="mirror")
    return np.pad(coef, _PAD, mode="reflect")


def _bspline3(t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The cubic B-spline and its derivative at ``t``."""
    a = np.abs(t)
    inner = a < 1.0
    far = np.clip(2.0 - a, 0.0, None)
    val = np.where(inner, 2.0 / 3.0 - t * t + 0.5 * a**3, far**3 / 6.0)
    der = np.where(inner, -2.0 * t + 1.5 * t * a, -np.sign(t) * 0.5 * far**2)
    return val, der


def warp(coef: np.ndarray, points: np.ndarray, *, derivatives: bool = True):
    """Values (and per-axis derivatives) of the padded spline ``coef`` at ``points``.

    ``points`` (ndim x N) are in the unpadded image's index coordinates. The tensor-product
    sum over the ``4^ndim`` neighbouring coefficients is written out (``map_coordinates`` has
    no mixed-order derivative), so the derivative is exactly that of the interpolant.
    """
    d, n = points.shape
    p = points + _PAD
    base = np.floor(p).astype(np.intp) - 1
    weights, dweights = [], []
    for a in range(d):
        t = p[a][None, :] - (base[a][None, :] + np.arange(4)[:, None])
        w, dw = _bspline3(t)
        weights.append(w)
        dweights.append(dw)
    limit = np.array(coef.shape)[:, None] - 1
    val = np.zeros(n)
    der = np.zeros((d, n)) if derivatives else None
    for off in itertools.product(range(4), repeat=d):
        idx = np.clip(base + np.array(off)[:, None], 0, limit)
        c = coef[tuple(idx)]
        ws = [weights[a][off[a]] for a in range(d)]
        val += np.prod(ws, axis=0) * c
        if der is not None:
            for a in range(d):
                others = [ws[b] for b in range(d) if b != a]
                der[a] += dweights[a][off[a]] * np.prod(others, axis=0) * c
    return val, der


class LinkSimilarity:
    """``S(A)`` and ``dS/dA`` of a fixed MR and a moving US on one grid (one pyramid level).

    Parameters
    ----------
    mr : ndarray
        Fixed MR image on the grid of ``us`` (e.g. the bicubic upsampling of the observation).
    us : ndarray
        Moving US image, same shape.
    mask : ndarray, optional
        Weights in [0, 1] of the fixed grid's pixels (default: all ones).
    degree : int
        Degree of the link.
    gradient, scan_direction, eps
        The link's gradient variant (see :func:`mrusfusion.fit_polynomial`).
    min_pixels : int
        Smallest overlap to evaluate on.
    taper : float
        Width in pixels of the smooth edge of the overlap weights (see :meth:`overlap`).
    coverage : float
        Exponent ``alpha`` of the covered share ``q = sum m / sum mask``: the value is
        ``S q^alpha``. A ratio such as ``S`` can rise by shrinking the overlap onto easy pixels;
        ``alpha > 0`` (coarse levels) keeps the moving image from drifting off the field, and
        ``alpha = 0`` (the finest level) leaves ``S`` unbiased.
    us_mask : ndarray, optional
        The moving US's own field of view (on its grid; e.g. the fan of a sector probe): its
        Gaussian-smoothed (1 pixel) spline, clipped to [0, 1], multiplies the weights where
        each pixel lands.
    """

    def __init__(self, mr: np.ndarray, us: np.ndarray, mask: Optional[np.ndarray] = None, *,
                 degree: int = 3, gradient: str = "magnitude", scan_direction=(1.0, 0.0),
                 eps: float = 1e-3, min_pixels: int = 64, taper: float = 2.0,
                 coverage: float = 0.0, us_mask: Optional[np.ndarray] = None):
        x = np.asarray(mr, dtype=np.float64)
        self.shape = x.shape
        self.mask = (np.ones(x.shape) if mask is None
                     else np.asarray(mask, dtype=np.float64)).ravel()
        g = make_gradient(gradient, scan_direction, eps, threads=1).apply(x)
        scaling = FeatureScaling.from_data(x, g, self.mask.reshape(x.shape))
        self.features = scaling.features(x, g, degree)
        self.min_pixels = max(int(min_pixels), 2 * self.features.shape[1])
        self.grid = np.indices(x.shape, dtype=np.float64).reshape(x.ndim, -1)
        self.coef = _spline(np.asarray(us))
        self.upper = np.array(x.shape, dtype=np.float64)[:, None] - 1.0
        self.taper = float(taper)
        self.coverage = float(coverage)
        self.us_coef = None
        if us_mask is not None:  # smoothed so that its spline is smooth and mostly in [0, 1]
            soft = ndimage.gaussian_filter(np.asarray(us_mask, dtype=np.float64), 1.0)
            self.us_coef = _spline(soft)

    def points(self, a: np.ndarray) -> np.ndarray:
        """Where ``A`` sends every grid point (ndim x N)."""
        d = self.grid.shape[0]
        return a[:, :d] @ self.grid + a[:, d:]

    def _taper(self, p: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Overlap weights at points ``p`` and their derivative along each axis."""
        u = np.minimum(p, self.upper - p) / self.taper
        sign = np.where(p <= self.upper - p, 1.0, -1.0) / self.taper
        s = np.clip(u, 0.0, 1.0)
        tau = s * s * (3.0 - 2.0 * s)  # smoothstep: C1 at both ends
        dtau = np.where((u > 0) & (u < 1), 6.0 * s * (1.0 - s), 0.0) * sign
        w = np.prod(tau, axis=0)
        dw = np.stack([dtau[a] * np.prod(np.delete(tau, a, axis=0), axis=0)
                       for a in range(p.shape[0])])
        return w, dw

    def _weights(self, p: np.ndarray, derivatives: bool = True):
        """Overlap weights ``m`` at the points ``p`` (flat) and ``dm/dp`` (ndim x N)."""
        tw, dtw = self._taper(p)
        w = self.mask * tw
        dw = dtw * self.mask if derivatives else None
        if self.us_coef is not None:
            cand = np.flatnonzero(w > 0)
            fm, dfm = warp(self.us_coef, p[:, cand], derivatives=derivatives)
            inside = (fm > 0) & (fm < 1)
            fm = np.clip(fm, 0.0, 1.0)
            if dw is not None and dfm is not None:
                dw[:, cand] = dw[:, cand] * fm + w[cand] * dfm * inside
            w[cand] *= fm
        return w, dw

    def overlap(self, a: np.ndarray) -> np.ndarray:
        """Overlap weights (flat): the mask times a taper from 0 at the moving image's edge to
        1 at ``taper`` pixels inside it (so that ``S`` stays differentiable as pixels enter
        or leave the overlap), times the moving image's own mask where it lands."""
        return self._weights(self.points(np.asarray(a, dtype=np.float64)), False)[0]

    def __call__(self, a: np.ndarray, *, gradient: bool = True) -> Evaluation:
        """Evaluate ``S`` (and ``dS/dA``) at the ``ndim x (ndim+1)`` matrix ``a``."""
        a = np.asarray(a, dtype=np.float64)
        d = self.grid.shape[0]
        zero = np.zeros((d, d + 1))
        p = self.points(a)
        w, dw = self._weights(p, gradient)
        sel = np.flatnonzero(w > 1e-12)
        if sel.size < self.min_pixels:
            return Evaluation(float("nan"), zero, int(sel.size))
        grid = self.grid[:, sel]
        y, dy = warp(self.coef, p[:, sel], derivatives=gradient)
        ws = w[sel]
        yc = y - np.average(y, weights=ws)
        var = float(np.sum(ws * yc * yc))
        if not var > 0:
            return Evaluation(float("nan"), zero, int(sel.size))
        f = self.features[sel]
        sw = np.sqrt(ws)
        c = np.linalg.lstsq(f * sw[:, None], yc * sw, rcond=None)[0]
        r = yc - f @ c
        ssr = float(np.sum(ws * r * r))
        value = 1.0 - ssr / var
        total = float(np.sum(self.mask))
        q = float(np.sum(ws)) / total
        bonus = q**self.coverage
        if not gradient or dy is None or dw is None:
            return Evaluation(value * bonus, zero, int(sel.size))
        # through the warped values, and through the weights (dS/dw_i by the same envelope)
        h = -2.0 * ws * (r - (ssr / var) * yc) / var
        hw = -(r * r - (ssr / var) * yc * yc) / var
        hd = dy * h + dw[:, sel] * hw  # (ndim, n): dS/dp_i at each point
        if self.coverage:
            dq = dw[:, sel] / total
            hd = bonus * hd + value * self.coverage * q ** (self.coverage - 1.0) * dq
        grad = np.concatenate([hd @ grid.T, hd.sum(axis=1, keepdims=True)], axis=1)
        return Evaluation(value * bonus, grad, int(sel.size))
