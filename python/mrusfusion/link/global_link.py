"""The global polynomial link and its least-squares fit (DESIGN.md section 3, paper III-C)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .. import _core
from .._config import get_num_threads
from .._validation import (as_image, as_mask, check_direction, check_gradient, check_int,
                           check_scalar, check_spacing, default_direction)
from ..operators import make_gradient
from .base import LinkMethods
from .features import MAX_DEGREE, FeatureScaling, exponents, monomial_coeffs, n_coeffs

__all__ = ["PolynomialLink", "fit_polynomial", "degree_residuals", "solve_normal_equations"]

# Above this condition number of the equilibrated normal matrix a fit is called rank deficient.
COND_LIMIT = 1e13


def solve_normal_equations(gram: np.ndarray, rhs: np.ndarray, *, exact: bool = False):
    """Solve ``gram c = rhs`` after equilibration; returns ``(c, condition)``.

    ``c`` is None when the condition number of the equilibrated matrix reaches ``COND_LIMIT``
    or a feature vanishes, unless ``exact``: a singular system then gets the minimum-norm
    least-squares solution in the scaled features (still a minimiser of the quadratic; the
    features are at most 1, so a direction they barely span is dropped rather than blown up).
    """
    diag = np.sqrt(np.maximum(np.diag(gram), 0.0))
    live = diag > 0
    cond = np.inf
    if live.all():
        ge = gram / np.outer(diag, diag)
        ev = np.linalg.eigvalsh(ge)
        cond = float(ev[-1] / ev[0]) if ev[0] > 0 else np.inf
        if cond < COND_LIMIT:
            return np.linalg.solve(ge, rhs / diag) / diag, cond
    if not exact:
        return None, cond
    return np.linalg.lstsq(gram, rhs, rcond=1e-14)[0], cond


@dataclass(frozen=True, eq=False)
class PolynomialLink(LinkMethods):
    """A fitted (or given) global polynomial link ``x -> f(x, g(x))``.

    Attributes
    ----------
    coeffs : ndarray
        Coefficients of ``x^p g^q`` in q-major order (see :mod:`mrusfusion.link.features`).
    degree : int
    gradient : {"directional", "magnitude"}
    scan_direction : tuple of float
        Unit vector, one component per axis: ``(u_v, u_h)`` for an image (directional variant).
    eps : float
        Smoothing of the magnitude variant.
    residual_norm : float
        ``||m (y_u - f)||`` of the fit (NaN when the coefficients were given).
    relative_residual : float
        ``residual_norm / ||m y_u||``; 0 when both are 0 (a zero ``us`` is fitted exactly).
    n_pixels : int
        Pixels used in the fit.
    condition : float
        Condition number of the equilibrated normal matrix of the fit (scaled features).
    spacing : tuple of float or None
        The fine grid's voxel size, one per axis (DESIGN.md 11): the differences are weighted by
        ``h_ref / h_a``. None: isotropic.
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
    spacing: Optional[Tuple[float, ...]] = None

    def __post_init__(self):
        d = check_int(self.degree, "degree", low=0, high=MAX_DEGREE)
        c = np.asarray(self.coeffs, dtype=np.float64).ravel()
        if c.size != n_coeffs(d):
            raise ValueError(f"`coeffs` must have {n_coeffs(d)} entries for degree {d}, "
                             f"got {c.size}")
        if not np.isfinite(c).all():
            raise ValueError("`coeffs` must be finite")
        object.__setattr__(self, "coeffs", c)
        object.__setattr__(self, "degree", d)
        object.__setattr__(self, "gradient", check_gradient(self.gradient))
        object.__setattr__(self, "scan_direction", check_direction(self.scan_direction))
        ndim = len(self.scan_direction)
        object.__setattr__(self, "spacing", check_spacing(self.spacing, ndim))

    def _args(self, dtype):
        g = self.grad
        with np.errstate(over="ignore"):  # a coefficient beyond float32 becomes inf, and f shows it
            c = self.coeffs.astype(dtype)
        return c, self.degree, g.mode, g.u, g.eps

    def coupling(self, x, v, mask, f, fx, fg, threads: int = 1, kernels=_core) -> float:
        """``sum m (v - f)^2``, writing ``f(x, g(x))``, ``f_x``, ``f_g`` where not None.

        ``kernels`` is ``_core`` or its NumPy twins ``mrusfusion._reference``; arrays must be
        C-contiguous of one float dtype (the engine's buffers).
        """
        return kernels.coupling_eval(x, *self._args(x.dtype), v, mask, f, fx, fg, threads,
                                     self.grad.weights)

    def penalty(self) -> float:
        """The ridge terms of the link: none for the global link."""
        return 0.0

    def refit(self, x, v, mask=None, threads: Optional[int] = None) -> "PolynomialLink":
        """The exact minimiser over ``c`` of ``sum m (v - A(x) c)^2`` (DESIGN 12.3).

        Degree and gradient stay; a singular system (a flat ``x``) gets the minimum-norm
        minimiser, so that the c-step never raises the objective.

        Examples
        --------
        >>> yy, xx = np.mgrid[0:32, 0:32] / 32
        >>> x = 0.5 + 0.25 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
        >>> link = PolynomialLink(np.zeros(3), 1).refit(x, 1 + 2 * x)
        >>> np.round(link.coeffs, 9) + 0.0
        array([1., 2., 0.])
        """
        x = self._image(x, dtype=np.float64)
        v = as_image(v, "v", min_size=1, dtype=np.float64, ndims=(2, 3))
        if v.shape != x.shape:
            raise ValueError(f"`v` must have shape {x.shape}, got {v.shape}")
        m = as_mask(mask, "mask", x.shape, np.float64)
        nt = get_num_threads(threads)
        g = self.grad.apply(x)
        sc = FeatureScaling.from_data(x, g, m)
        gram, rhs, yy = _core.poly_normal_equations(x, g, v, m, self.degree, sc.x_c, sc.x_s,
                                                    sc.g_s, nt)
        cs, cond = solve_normal_equations(gram, rhs, exact=True)
        link = PolynomialLink(monomial_coeffs(cs, self.degree, sc), self.degree, self.gradient,
                              self.scan_direction, self.eps)
        rn = math.sqrt(max(link.coupling(x, v, m, None, None, None, nt), 0.0))
        n_pix = int(np.count_nonzero(m)) if m is not None else x.size
        return PolynomialLink(link.coeffs, self.degree, self.gradient, self.scan_direction,
                              self.eps, rn, _relative(rn, yy), n_pix, cond)


def _relative(rn: float, yy: float) -> float:
    """``rn / sqrt(yy)``, with 0/0 = 0 (a zero image fitted exactly)."""
    if yy > 0:
        return rn / math.sqrt(yy)
    return 0.0 if rn == 0 else float("inf")


def _to_units(cn: np.ndarray, degree: int, sx: float, sy: float) -> Optional[np.ndarray]:
    """``sy c_pq / sx^(p+q)`` without intermediate overflow (mantissas and exponents apart);
    None when a coefficient overflows."""
    mx, ex = math.frexp(sx)
    my, ey = math.frexp(sy)
    out = np.empty(cn.size)
    for k, (c, (p, q)) in enumerate(zip(cn, exponents(degree))):
        try:
            out[k] = math.ldexp(float(c) * my / mx ** (p + q), ey - (p + q) * ex)
        except OverflowError:
            return None
    return out


def fit_polynomial(mr, us, degree: int = 4, *, gradient: str = "directional",
                   scan_direction=None, eps: float = 1e-3, mask=None,
                   threads: Optional[int] = None, spacing=None) -> PolynomialLink:
    """Least-squares estimate of the link coefficients (paper section III-C).

    Solves ``min_c || m (y_u - A c) ||^2`` with ``A[:, k] = x^p g^q`` built from ``mr`` (the MR
    image on the fine grid, e.g. :func:`~mrusfusion.operators.bicubic_upsample` of the
    observation) and its gradient.

    Parameters
    ----------
    mr : ndarray, 2-D or 3-D
        MR image (or volume) on the US grid.
    us : ndarray, shape of ``mr``
        US image (log-compressed B-mode).
    degree : int
        Polynomial degree ``d`` (0 to 10).
    gradient : {"directional", "magnitude"}
        Gradient variant of the link.
    scan_direction : tuple of float
        One component per axis, ``(u_v, u_h)`` for an image; default (None) axial, down the
        first axis: ``(1, 0)``, or ``(1, 0, 0)`` on a volume.
    eps : float
        Smoothing of the gradient magnitude (in the units of ``mr``).
    mask : ndarray of bool, optional
        Pixels to fit on (the US field of view).
    threads : int, optional
    spacing : float or tuple of float, optional
        Voxel size of the grid, one per axis; weights the differences (DESIGN.md 11).

    Returns
    -------
    PolynomialLink

    Raises
    ------
    ValueError
        If the system is rank deficient (a constant image, or a gradient that is zero to
        rounding); if the fitted link cannot be evaluated accurately in the precision of ``mr``
        (a narrow intensity range at a high degree; the message advises a lower degree); or if
        its coefficients or terms do not fit the float range at the intensity scales of ``mr``
        and ``us`` (the message names both and advises rescaling).

    Notes
    -----
    The fit runs in units where ``max |mr| = max |us| = 1`` and the coefficients are mapped back
    exactly, ``c_pq = s_u c'_pq / s_m^(p+q)``, so any finite scale works as long as the result
    is representable. The normal equations are accumulated in one C++ pass without storing
    ``A``, on features rescaled to ``t = (x - x_c) / x_s`` and ``s = g / g_s`` in [-1, 1] and
    then equilibrated, so the fit stays well conditioned up to degree 6 and beyond; the
    coefficients are mapped back to the monomials of ``x`` and ``g`` exactly.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:32, 0:32] / 32
    >>> x = 0.5 + 0.25 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    >>> fit = fit_polynomial(x, 0.5 + x**2, degree=2)
    >>> np.round(fit.coeffs[:3], 6) + 0.0
    array([0.5, 0. , 1. ])
    """
    x_in = as_image(mr, "mr", ndims=(2, 3))
    y = as_image(us, "us", dtype=np.float64, ndims=(2, 3))
    if y.shape != x_in.shape:
        raise ValueError(f"`us` must have the shape of `mr` {x_in.shape}, got {y.shape}")
    scan_direction = default_direction(scan_direction, x_in.ndim)
    spacing = check_spacing(spacing, x_in.ndim)
    d = check_int(degree, "degree", low=0, high=MAX_DEGREE)
    check_scalar(eps, "eps", positive=True)
    eps = float(eps)
    check_gradient(gradient)
    m = as_mask(mask, "mask", x_in.shape, np.float64)
    nt = get_num_threads(threads)
    # Differences below a few rounding units of the input carry no information: a fit to them
    # has coefficients of 1e60 that explode as soon as the image moves. The link is evaluated
    # in the precision of the input (fuse passes its working image).
    eps_eval = float(np.finfo(x_in.dtype).eps)
    unit = 64.0 * eps_eval
    # Powers of 1e100 overflow and powers of 1e-200 vanish (issue 19): fit in units of the
    # largest magnitudes, where every feature is at most 1.
    x = x_in.astype(np.float64)
    sx = float(np.max(np.abs(x))) or 1.0
    sy = float(np.max(np.abs(y))) or 1.0
    x /= sx
    y /= sy
    gmap = make_gradient(gradient, scan_direction, max(eps / sx, np.finfo(float).tiny),
                         spacing=spacing, threads=nt)
    g = gmap.apply(x)
    sel = (m > 0) if m is not None else np.ones(x.shape, bool)
    n_pix = int(sel.sum())
    if n_pix < n_coeffs(d):
        raise ValueError(f"the fit needs at least {n_coeffs(d)} pixels for degree {d}, "
                         f"the mask gives {n_pix}")
    sc = FeatureScaling.from_data(x, g, m)
    xs_raw = float(np.max(np.abs(x[sel] - sc.x_c)))
    gs_raw = float(np.max(np.abs(g[sel])))
    resolution = unit * float(np.max(np.abs(x[sel])))
    if d >= 1 and xs_raw <= resolution:
        raise ValueError(f"the polynomial fit of degree {d} is rank deficient: the MR image is "
                         f"constant (it varies by {xs_raw * sx:.3g} around {sc.x_c * sx:.6g}); "
                         f"use a lower degree")
    if d >= 1 and gs_raw <= resolution:
        raise ValueError(f"the polynomial fit of degree {d} is rank deficient: the {gradient} "
                         f"gradient of the MR image is zero (at most {gs_raw * sx:.3g}); use a "
                         f"lower degree, another `scan_direction` or `gradient`")
    gram, rhs, yy = _core.poly_normal_equations(x, g, y, m, d, sc.x_c, sc.x_s, sc.g_s, nt)
    cs, cond = solve_normal_equations(gram, rhs)
    if cs is None:
        raise ValueError(f"the polynomial fit of degree {d} is rank deficient (is the MR image "
                         f"constant or nearly so?); use a lower degree "
                         f"(condition number {cond:.3g})")
    cn = monomial_coeffs(cs, d, sc)
    # The link is evaluated in monomials of x and g: when its terms are far larger than its
    # value (a narrow intensity range at a high degree), cancellation leaves no correct digit
    # (in float32, a factor of 1e4 already costs all but three).
    xm, gm = float(np.max(np.abs(x[sel]))), float(np.max(np.abs(g[sel])))
    terms = sum(abs(c) * xm**p * gm**q for c, (p, q) in zip(cn, exponents(d)))
    fn = np.empty_like(x)
    ssr, fmax, fspread = float("nan"), float("nan"), float("nan")
    if np.isfinite(terms):
        ssr = _core.coupling_eval(x, cn, d, gmap.mode, gmap.u, float(gmap.eps or 0.0),
                                  y, m, fn, None, None, nt, gmap.weights)
        fmax = float(np.max(np.abs(fn[sel])))
        fspread = float(np.max(np.abs(fn[sel] - np.mean(fn[sel]))))
    prec = "float32" if eps_eval > 1e-10 else "float64"
    # The rounding of the evaluation (about eps times the terms) must stay far below the link's
    # variation, not only below its values: a link that varies by 1e-6 around 0.1 with terms of
    # 1e12 predicts nothing (a link as flat as the rounding of its values is fine).
    if not terms * 1e3 * eps_eval <= max(fspread, 2e3 * eps_eval * fmax):  # catches inf, NaN
        raise ValueError(f"the polynomial link of degree {d} cannot be evaluated accurately in "
                         f"{prec}: its terms reach {terms:.3g} while its values vary by "
                         f"{fspread:.3g} around at most {fmax:.3g} (the MR intensities span too "
                         f"narrow a range); use a lower degree"
                         + (" or float64 images" if prec == "float32" else ""))
    coeffs = _to_units(cn, d, sx, sy)
    ok = False
    if coeffs is not None:
        # The link in the given units, evaluated as fuse would, must give the same values.
        link = PolynomialLink(coeffs, d, gradient, scan_direction, eps, spacing=spacing)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            fu = link.evaluate(x_in, threads=nt).astype(np.float64) / sy
        err = np.abs(fu - fn)[sel]
        ok = bool(np.all(err <= 100.0 * terms * eps_eval + 1e-300))
    if coeffs is None or not ok:
        raise ValueError(f"the polynomial link of degree {d} is not representable in {prec} at "
                         f"the intensity scales of `mr` (max |mr| = {sx:.3g}) and `us` "
                         f"(max |us| = {sy:.3g}): its coefficients or terms overflow or underflow; "
                         "rescale `mr` and `us` (for example divide each by its maximum) or use a "
                         "lower degree")
    rn = math.sqrt(max(ssr, 0.0))
    return PolynomialLink(coeffs, d, gradient, scan_direction, eps, rn * sy, _relative(rn, yy),
                          n_pix, cond, spacing)


def degree_residuals(mr, us, max_degree: int = 6, **kwargs) -> dict:
    """Residual norm of the fit for degrees 1..``max_degree`` (paper Fig. 3), to choose ``d``.

    Returns
    -------
    dict
        ``{degree: residual_norm}``; degrees whose fit is rank deficient map to NaN.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:32, 0:32] / 32
    >>> x = 0.5 + 0.25 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    >>> res = degree_residuals(x, x**3, 3)
    >>> res[1] > res[2] > res[3]
    True
    """
    out = {}
    for d in range(1, check_int(max_degree, "max_degree", low=1, high=MAX_DEGREE) + 1):
        try:
            out[d] = fit_polynomial(mr, us, d, **kwargs).residual_norm
        except ValueError:
            out[d] = float("nan")
    return out
