"""Monomial features of the link and their scaling (DESIGN.md section 3).

``f(x, g) = sum_{p+q<=d} c_pq x^p g^q`` with coefficients in q-major order: for q = 0..d, for
p = 0..d-q (for d = 4: 1, x, x^2, x^3, x^4, g, gx, gx^2, gx^3, g^2, g^2x, g^2x^2, g^3, g^3x, g^4).
Fits work on the scaled features ``t^p s^q`` with ``t = (x - x_c) / x_s`` and ``s = g / g_s`` in
[-1, 1] (:class:`FeatureScaling`), which keeps their Gram matrix well conditioned.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import List, Optional, Tuple

import numpy as np

__all__ = ["MAX_DEGREE", "n_coeffs", "exponents", "polynomial_features", "degree_subset",
           "FeatureScaling", "monomial_coeffs"]

MAX_DEGREE = 10


def n_coeffs(degree: int) -> int:
    """Number of coefficients ``(d + 1)(d + 2) / 2`` of a degree-``d`` link.

    Examples
    --------
    >>> n_coeffs(4)
    15
    """
    return (degree + 1) * (degree + 2) // 2


def exponents(degree: int) -> List[Tuple[int, int]]:
    """The ``(p, q)`` exponent pairs of ``x^p g^q`` in coefficient order (q-major).

    Examples
    --------
    >>> exponents(2)
    [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (0, 2)]
    """
    return [(p, q) for q in range(degree + 1) for p in range(degree + 1 - q)]


def degree_subset(degree: int, max_degree: int) -> np.ndarray:
    """Indices, in the degree-``max_degree`` coefficient order, of the degree-``degree`` terms.

    Lets one accumulation at the highest degree serve every lower degree (the features of a
    lower degree are a subset of those of a higher one, with the same scaling).

    Examples
    --------
    >>> degree_subset(1, 2)
    array([0, 1, 3])
    """
    return np.array([k for k, (p, q) in enumerate(exponents(max_degree)) if p + q <= degree])


def polynomial_features(x: np.ndarray, g: np.ndarray, degree: int) -> np.ndarray:
    """Feature matrix ``A[:, k] = x^p g^q`` (pixels in C order, one column per coefficient).

    Examples
    --------
    >>> polynomial_features(np.array([[2.0]]), np.array([[3.0]]), 1)
    array([[1., 2., 3.]])
    """
    xs, gs = np.ravel(x), np.ravel(g)
    return np.stack([xs**p * gs**q for p, q in exponents(degree)], axis=1)


@dataclass(frozen=True)
class FeatureScaling:
    """``t = (x - x_c) / x_s`` and ``s = g / g_s``: the variables the fits work in.

    Attributes
    ----------
    x_c, x_s : float
        Weighted mean of ``x`` over the fitted pixels and the largest deviation from it.
    g_s : float
        Largest ``|g|`` over the fitted pixels.
    """

    x_c: float
    x_s: float
    g_s: float

    @classmethod
    def from_data(cls, x: np.ndarray, g: np.ndarray,
                  mask: Optional[np.ndarray] = None) -> "FeatureScaling":
        """The scaling of ``x`` and ``g`` over the pixels where ``mask`` > 0 (all when None).

        Spreads at the rounding level of ``x`` (a constant image, a zero gradient) become
        ``max |x|`` (or 1), so that the scaling is always usable and a feature that does not
        vary stays near 0 instead of amplifying rounding; whether a fit on such an image makes
        sense is for the caller to decide.

        Examples
        --------
        >>> FeatureScaling.from_data(np.array([[0.0, 2.0]]), np.array([[1.0, -4.0]]))
        FeatureScaling(x_c=1.0, x_s=1.0, g_s=4.0)
        """
        sel = np.ones(x.shape, bool) if mask is None else mask > 0
        w = None if mask is None else mask[sel]
        xc = float(np.average(x[sel], weights=w))
        xs = float(np.max(np.abs(x[sel] - xc)))
        gs = float(np.max(np.abs(g[sel])))
        big = float(np.max(np.abs(x[sel])))
        floor = 64.0 * float(np.finfo(np.float64).eps) * big
        return cls(xc, xs if xs > floor else big or 1.0, gs if gs > floor else big or 1.0)

    def features(self, x: np.ndarray, g: np.ndarray, degree: int) -> np.ndarray:
        """Scaled feature matrix ``A[:, k] = t^p s^q`` (float64, pixels in C order)."""
        t = (np.ravel(x).astype(np.float64) - self.x_c) / self.x_s
        s = np.ravel(g).astype(np.float64) / self.g_s
        return np.stack([t**p * s**q for p, q in exponents(degree)], axis=1)


def monomial_coeffs(cs: np.ndarray, degree: int, scaling: FeatureScaling) -> np.ndarray:
    """Map coefficients of ``t^p s^q`` to those of ``x^a g^q`` (binomial expansion of ``t``).

    Examples
    --------
    >>> monomial_coeffs(np.array([0.0, 1.0, 0.0]), 1, FeatureScaling(1.0, 2.0, 1.0))
    array([-0.5,  0.5,  0. ])
    """
    xc, xs, gs = scaling.x_c, scaling.x_s, scaling.g_s
    index = {pq: k for k, pq in enumerate(exponents(degree))}
    out = np.zeros(n_coeffs(degree))
    for (p, q), c in zip(exponents(degree), np.asarray(cs, dtype=np.float64)):
        scale = c / (xs**p * gs**q)
        for a in range(p + 1):
            out[index[(a, q)]] += scale * comb(p, a) * (-xc) ** (p - a)
    return out
