"""The polynomial link between the modalities (DESIGN.md section 3).

``f(x, g) = sum_{p+q<=d} c_pq x^p g^q`` with ``g = g(x)`` the scan-direction gradient (or the
gradient magnitude) of the MR image; coefficients in q-major order: for q = 0..d, for
p = 0..d-q (for d = 4: 1, x, x^2, x^3, x^4, g, gx, gx^2, gx^3, g^2, g^2x, g^2x^2, g^3, g^3x, g^4).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import List, Optional, Tuple

import numpy as np

from . import _core
from ._config import get_num_threads
from ._validation import as_image, as_mask, check_direction, check_gradient, check_int, check_scalar
from .operators import Gradient, make_gradient

__all__ = [
    "n_coeffs", "exponents", "polynomial_features", "PolynomialLink", "fit_polynomial",
    "degree_residuals", "MAX_DEGREE",
]

MAX_DEGREE = 10


def n_coeffs(degree: int) -> int:
    """Number of coefficients ``(d + 1)(d + 2) / 2`` of a degree-``d`` link."""
    return (degree + 1) * (degree + 2) // 2


def exponents(degree: int) -> List[Tuple[int, int]]:
    """The ``(p, q)`` exponent pairs of ``x^p g^q`` in coefficient order (q-major).

    Examples
    --------
    >>> exponents(2)
    [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (0, 2)]
    """
    return [(p, q) for q in range(degree + 1) for p in range(degree + 1 - q)]


def polynomial_features(x: np.ndarray, g: np.ndarray, degree: int) -> np.ndarray:
    """Feature matrix ``A[:, k] = x^p g^q`` (pixels in C order, one column per coefficient)."""
    xs, gs = np.ravel(x), np.ravel(g)
    return np.stack([xs**p * gs**q for p, q in exponents(degree)], axis=1)


@dataclass(frozen=True)
class PolynomialLink:
    """A fitted (or given) polynomial link ``x -> f(x, g(x))``.

    Attributes
    ----------
    coeffs : ndarray
        Coefficients in q-major order (see module docstring), float64.
    degree : int
    gradient : {"directional", "magnitude"}
    scan_direction : (float, float)
        Unit ``(u_v, u_h)`` (directional variant).
    eps : float
        Smoothing of the magnitude variant.
    residual_norm : float
        ``||m (y_u - f)||`` of the fit (NaN when the coefficients were given).
    relative_residual : float
        ``residual_norm / ||m y_u||``.
    n_pixels : int
        Pixels used in the fit.
    condition : float
        Condition number of the equilibrated normal matrix of the fit (scaled features).
    """

    coeffs: np.ndarray
    degree: int
    gradient: str = "directional"
    scan_direction: Tuple[float, float] = (1.0, 0.0)
    eps: float = 1e-3
    residual_norm: float = float("nan")
    relative_residual: float = float("nan")
    n_pixels: int = 0
    condition: float = float("nan")

    def __post_init__(self):
        d = check_int(self.degree, "degree", low=0, high=MAX_DEGREE)
        c = np.asarray(self.coeffs, dtype=np.float64).ravel()
        if c.size != n_coeffs(d):
            raise ValueError(f"`coeffs` must have {n_coeffs(d)} entries for degree {d}, got {c.size}")
        if not np.isfinite(c).all():
            raise ValueError("`coeffs` must be finite")
        object.__setattr__(self, "coeffs", c)
        object.__setattr__(self, "gradient", check_gradient(self.gradient))
        object.__setattr__(self, "scan_direction", check_direction(self.scan_direction))

    @property
    def grad(self) -> Gradient:
        """The gradient map ``g(x)`` this link uses."""
        return make_gradient(self.gradient, self.scan_direction, self.eps)

    def _args(self, dtype):
        g = self.grad
        return self.coeffs.astype(dtype), self.degree, g.mode, g.uv, g.uh, g.eps

    def evaluate(self, x, *, derivatives: bool = False, threads: Optional[int] = None):
        """``f(x, g(x))``, and with ``derivatives`` also ``f_x`` and ``f_g`` (one C++ pass).

        Parameters
        ----------
        x : ndarray, shape (n1, n2)
            MR-domain image on the fine grid.
        derivatives : bool
            Also return the partial derivatives.

        Returns
        -------
        f or (f, f_x, f_g) : ndarray
        """
        x = as_image(x, "x", min_size=1)
        f = np.empty_like(x)
        fx = np.empty_like(x) if derivatives else None
        fg = np.empty_like(x) if derivatives else None
        _core.coupling_eval(x, *self._args(x.dtype), None, None, f, fx, fg, get_num_threads(threads))
        return (f, fx, fg) if derivatives else f

    __call__ = evaluate

    def jacobian_transpose(self, x, r, *, threads: Optional[int] = None) -> np.ndarray:
        """``J^T r`` of the map ``x -> f(x, g(x))``.

        Directional: ``f_x r + Du^T (f_g r)``; magnitude:
        ``f_x r + Dh^T(f_g r Dh x / g) + Dv^T(f_g r Dv x / g)``. The gradient term is kept (the
        authors' code drops it).
        """
        x = as_image(x, "x", min_size=1)
        r = as_image(r, "r", min_size=1, dtype=x.dtype)
        if r.shape != x.shape:
            raise ValueError(f"`r` must have shape {x.shape}, got {r.shape}")
        nt = get_num_threads(threads)
        _, fx, fg = self.evaluate(x, derivatives=True, threads=nt)
        c, d, mode, uv, uh, eps = self._args(x.dtype)
        w1 = np.empty_like(x)
        w2 = np.empty_like(x) if mode == 1 else None
        out = np.empty_like(x)
        _core.jacobian_transpose(x, r, None, None, fx, fg, mode, uv, uh, eps, 1.0, w1, w2, out, nt)
        return out


def _monomial_coeffs(cs: np.ndarray, degree: int, xc: float, xs: float, gs: float) -> np.ndarray:
    """Map coefficients of ``t^p s^q`` (``t = (x - xc)/xs``, ``s = g/gs``) to ``x^a g^q``."""
    index = {pq: k for k, pq in enumerate(exponents(degree))}
    out = np.zeros(n_coeffs(degree))
    for (p, q), c in zip(exponents(degree), cs):
        scale = c / (xs**p * gs**q)
        for a in range(p + 1):
            out[index[(a, q)]] += scale * comb(p, a) * (-xc) ** (p - a)
    return out


def fit_polynomial(mr, us, degree: int = 4, *, gradient: str = "directional",
                   scan_direction=(1.0, 0.0), eps: float = 1e-3, mask=None,
                   threads: Optional[int] = None) -> PolynomialLink:
    """Least-squares estimate of the link coefficients (paper section III-C).

    Solves ``min_c || m (y_u - A c) ||^2`` with ``A[:, k] = x^p g^q`` built from ``mr`` (the MR
    image on the fine grid, e.g. :func:`~mrusfusion.operators.bicubic_upsample` of the
    observation) and its gradient.

    Parameters
    ----------
    mr : ndarray, shape (n1, n2)
        MR image on the US grid.
    us : ndarray, shape (n1, n2)
        US image (log-compressed B-mode).
    degree : int
        Polynomial degree ``d`` (0 to 10).
    gradient : {"directional", "magnitude"}
        Gradient variant of the link.
    scan_direction : (float, float)
        ``(u_v, u_h)``; default axial (down the rows).
    eps : float
        Smoothing of the gradient magnitude.
    mask : ndarray of bool, optional
        Pixels to fit on (the US field of view).
    threads : int, optional

    Returns
    -------
    PolynomialLink

    Raises
    ------
    ValueError
        If the system is rank deficient (a constant image, or a gradient that is zero to
        rounding), or if the fitted link cannot be evaluated accurately in the precision of
        ``mr`` (a narrow intensity range at a high degree); the message advises a lower degree.

    Notes
    -----
    The normal equations are accumulated in one C++ pass without storing ``A``, on features
    rescaled to ``t = (x - x_c) / x_s`` and ``s = g / g_s`` in [-1, 1] and then equilibrated, so the
    fit stays well conditioned up to degree 6 and beyond; the coefficients are mapped back to
    the monomials of ``x`` and ``g`` exactly.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:32, 0:32] / 32
    >>> x = 0.5 + 0.25 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    >>> fit = fit_polynomial(x, 0.5 + x**2, degree=2)
    >>> np.round(fit.coeffs[:3], 6) + 0.0
    array([0.5, 0. , 1. ])
    """
    x = as_image(mr, "mr")
    y = as_image(us, "us", dtype=np.float64)
    if y.shape != x.shape:
        raise ValueError(f"`us` must have the shape of `mr` {x.shape}, got {y.shape}")
    # Differences below a few rounding units of the input carry no information: a fit to them
    # has coefficients of 1e60 that explode as soon as the image moves. The link is evaluated
    # in the precision of the input (fuse passes its working image).
    eps_eval = float(np.finfo(x.dtype).eps)
    unit = 64.0 * eps_eval
    x = x.astype(np.float64, copy=False)
    d = check_int(degree, "degree", low=0, high=MAX_DEGREE)
    check_scalar(eps, "eps", positive=True)
    m = as_mask(mask, "mask", x.shape, np.float64)
    nt = get_num_threads(threads)
    gmap = make_gradient(gradient, scan_direction, eps, threads=nt)
    g = gmap.apply(x)
    sel = (m > 0) if m is not None else np.ones(x.shape, bool)
    w = m[sel] if m is not None else None
    n_pix = int(sel.sum())
    if n_pix < n_coeffs(d):
        raise ValueError(f"the fit needs at least {n_coeffs(d)} pixels for degree {d}, the mask gives {n_pix}")
    hint = (f"the polynomial fit of degree {d} is rank deficient (is the MR image constant or "
            f"nearly so?); use a lower degree")
    xc = float(np.average(x[sel], weights=w))
    xs = float(np.max(np.abs(x[sel] - xc)))
    gs = float(np.max(np.abs(g[sel])))
    resolution = unit * float(np.max(np.abs(x[sel])))
    if d >= 1 and xs <= resolution:
        raise ValueError(f"the polynomial fit of degree {d} is rank deficient: the MR image is "
                         f"constant (it varies by {xs:.3g} around {xc:.6g}); use a lower degree")
    if d >= 1 and gs <= resolution:
        raise ValueError(f"the polynomial fit of degree {d} is rank deficient: the {gradient} "
                         f"gradient of the MR image is zero (at most {gs:.3g}); use a lower "
                         f"degree, another `scan_direction` or `gradient`")
    xs, gs = xs or 1.0, gs or 1.0
    gram, rhs, yy = _core.poly_normal_equations(x, g, y, m, d, xc, xs, gs, nt)
    diag = np.sqrt(np.diag(gram))
    if not (diag > 0).all():
        raise ValueError(hint)
    ge = gram / np.outer(diag, diag)
    ev = np.linalg.eigvalsh(ge)
    cond = float(ev[-1] / ev[0]) if ev[0] > 0 else np.inf
    if not cond < 1e13:
        raise ValueError(hint + f" (condition number {cond:.3g})")
    cs = np.linalg.solve(ge, rhs / diag) / diag
    coeffs = _monomial_coeffs(cs, d, xc, xs, gs)
    # The link is evaluated in monomials of x and g: when its terms are far larger than its
    # value (a narrow intensity range at a high degree), cancellation leaves no correct digit
    # (in float32, a factor of 1e4 already costs all but three).
    xm, gm = float(np.max(np.abs(x[sel]))), float(np.max(np.abs(g[sel])))
    terms = sum(abs(c) * xm**p * gm**q for c, (p, q) in zip(coeffs, exponents(d)))
    link, fmax = None, float("nan")
    if np.isfinite(terms):
        link = PolynomialLink(coeffs, d, gradient, scan_direction, eps)
        f = np.empty_like(x)
        ssr = _core.coupling_eval(x, *link._args(np.float64), y, m, f, None, None, nt)
        fmax = float(np.max(np.abs(f[sel])))
    if not terms * 1e3 * eps_eval <= fmax:  # also catches inf and NaN
        prec = "float32" if eps_eval > 1e-10 else "float64"
        raise ValueError(f"the polynomial link of degree {d} cannot be evaluated accurately in "
                         f"{prec}: its terms reach {terms:.3g} for values of at most {fmax:.3g} "
                         f"(the MR intensities span too narrow a range); use a lower degree"
                         + (" or float64 images" if prec == "float32" else ""))
    rn = float(np.sqrt(max(ssr, 0.0)))
    return PolynomialLink(coeffs, d, link.gradient, link.scan_direction, eps, rn,
                          rn / np.sqrt(yy) if yy > 0 else float("nan"), n_pix, cond)


def degree_residuals(mr, us, max_degree: int = 6, **kwargs) -> dict:
    """Residual norm of the fit for degrees 1..``max_degree`` (paper Fig. 3), to choose ``d``.

    Returns
    -------
    dict
        ``{degree: residual_norm}``; degrees whose fit is rank deficient map to NaN.
    """
    out = {}
    for d in range(1, check_int(max_degree, "max_degree", low=1, high=MAX_DEGREE) + 1):
        try:
            out[d] = fit_polynomial(mr, us, d, **kwargs).residual_norm
        except ValueError:
            out[d] = float("nan")
    return out
