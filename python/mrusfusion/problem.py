"""Set-up of a fusion: scaled observations, operators, link and weights (DESIGN.md 1-4, 10).

:func:`build_problem` takes validated arrays and builds the :class:`FusionProblem` that the PALM
engine (:mod:`mrusfusion.palm`) runs on. Nothing here iterates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

import numpy as np

from . import _core
from ._validation import difference_weights
from .fourier import FourierProblem
from .operators import bicubic_upsample
from .link import Link, PolynomialLink, fit_local_link, fit_polynomial
from .link.selection import DegreeSelection, LocalLinkSelection, select_degree, select_local_link
from .weights import Weights, estimate_weights

__all__ = ["FusionProblem", "LinkChoice", "build_problem", "choose_link", "LINKS"]

#: Kinds of link :func:`build_problem` fits: one polynomial for the image (the paper), or
#: coefficients varying smoothly over a knot grid (DESIGN 12.2), spacing chosen by CV.
LINKS = ("global", "local")


@dataclass(frozen=True)
class LinkChoice:
    """How the link of a fusion was chosen (DESIGN 12.1-12.2).

    Attributes
    ----------
    kind : str
        ``"global"``, ``"local"``, ``"given"`` (coefficients or a link passed in).
    degree : int
    degree_selection : DegreeSelection or None
        Blocked cross-validation of the degree (``degree=None``).
    local_selection : LocalLinkSelection or None
        Blocked cross-validation of the knot spacing and ``mu`` (``link="local"``).
    message : str
    """

    kind: str
    degree: int
    degree_selection: Optional[DegreeSelection] = None
    local_selection: Optional[LocalLinkSelection] = None
    message: str = ""


@dataclass
class FusionProblem:
    """Everything PALM needs, in solver units (each input divided by its maximum).

    Attributes
    ----------
    ym, yu : ndarray
        Scaled MR (coarse grid) and US (fine grid) observations, in the working dtype.
    mask : ndarray or None
        US field of view on the fine grid (0..1 weights).
    ratio : int or tuple of int
        One ratio for every axis, or one per axis when they differ.
    dtype : numpy.dtype
    threads : int
    fourier : FourierProblem
        Plans, PSF transfer function and the closed-form x-step.
    x0 : ndarray
        Starting point: aligned bicubic interpolation of ``ym``.
    link : Link
        The global :class:`~mrusfusion.link.PolynomialLink` or a local link.
    link_choice : LinkChoice
    weights : Weights
    mr_scale, us_scale : float
        The maxima the inputs were divided by.
    kernels : module
        ``mrusfusion._core`` or its NumPy twins (benchmark only).
    """

    ym: np.ndarray
    yu: np.ndarray
    mask: Optional[np.ndarray]
    ratio: Union[int, Tuple[int, ...]]
    dtype: np.dtype
    threads: int
    fourier: FourierProblem
    x0: np.ndarray
    link: Link
    link_choice: LinkChoice
    weights: Weights
    mr_scale: float
    us_scale: float
    kernels: Any = _core


def scale_of(img: np.ndarray, name: str) -> float:
    """The maximum an input is divided by.

    Refuses an image whose maximum is not positive, or whose 99th percentile is below the
    rounding level of its maximum: a few outlier pixels would set the scale, and after division
    every tissue value would be lost in rounding.
    """
    m = float(img.max())
    if not m > 0:
        raise ValueError(f"`{name}` must have a positive maximum (it is divided by its maximum), "
                         f"got {m:g}")
    typical = float(np.quantile(np.abs(img), 0.99))
    if typical < float(np.finfo(img.dtype).eps) * m:
        raise ValueError(f"`{name}` has a maximum of {m:.3g} but 99 % of its pixels are below "
                         f"{typical:.3g}: a few outlier pixels would set its scale; clip or "
                         "remove them")
    return m


def choose_link(x0: np.ndarray, yu: np.ndarray, mask: Optional[np.ndarray], *,
                degree: Optional[int], link: Any, coeffs, gradient: str, scan_direction,
                eps: float, threads: int, kernels: Any = _core, spacing=None):
    """Fit (or take) the link, choosing the degree and the knot grid by blocked CV.

    Returns ``(link, LinkChoice)``. ``link`` is ``"global"``, ``"local"`` or a fitted
    :class:`~mrusfusion.link.Link`; ``degree=None`` means the smallest degree within one
    standard error of the best blocked cross-validation error (DESIGN 12.1), or degree 1 with a
    message when cross-validation cannot run.
    """
    geo = dict(gradient=gradient, scan_direction=scan_direction, eps=eps)
    if spacing is not None:
        geo["spacing"] = spacing
    if not isinstance(link, str):
        return link, LinkChoice("given", int(link.degree), message="link given")
    if coeffs is not None:
        if degree is None:
            raise ValueError("`coeffs` needs `degree`")
        return (PolynomialLink(coeffs, degree, **geo),
                LinkChoice("given", int(degree), message="coefficients given"))
    dsel = None
    if degree is None:
        dsel = select_degree(x0, yu, mask=mask, threads=threads, **geo)
        degree = dsel.degree
    if link == "global":
        fitted = fit_polynomial(x0, yu, degree, mask=mask, threads=threads, **geo)
        msg = dsel.message if dsel is not None else f"degree {degree} given"
        return fitted, LinkChoice("global", degree, dsel, None, f"global link, {msg}")
    lsel = select_local_link(x0, yu, degree, mask=mask, threads=threads, kernels=kernels, **geo)
    if lsel.knot_spacing is None:
        fitted = fit_polynomial(x0, yu, degree, mask=mask, threads=threads, **geo)
        return fitted, LinkChoice("global", degree, dsel, lsel,
                                  f"local link asked, cross-validation chose the global one "
                                  f"({lsel.message})")
    mu = 1.0 if lsel.mu is None else lsel.mu
    local = fit_local_link(x0, yu, degree, knot_spacing=lsel.knot_spacing, mu=mu,
                           mask=mask, threads=threads, kernels=kernels, **geo)
    return local, LinkChoice("local", degree, dsel, lsel,
                              f"local link, knots {lsel.knot_spacing:g} px apart, mu "
                              f"{mu:g} ({lsel.message})")


def build_problem(y_m: np.ndarray, y_u: np.ndarray, *, ratio, degree: Optional[int],
                  psf: np.ndarray, gradient: str, scan_direction, eps: float, coeffs,
                  spacing=None,
                  mask: Optional[np.ndarray], threads: int, planner_effort: str,
                  link: Any = "global", tau1=None, tau2=None, tau3=None, tau4=None, gamma=None,
                  kernels: Any = _core) -> FusionProblem:
    """Build a fusion problem from validated inputs (see :func:`mrusfusion.fuse`).

    ``y_m`` and ``y_u`` must already be validated, private arrays of one float dtype; ``y_u`` is
    scaled in place.
    """
    dtype = y_u.dtype
    mr_scale, us_scale = scale_of(y_m, "mr"), scale_of(y_u, "us")
    ym = y_m / dtype.type(mr_scale)
    yu = y_u
    yu /= dtype.type(us_scale)
    weights = difference_weights(spacing)
    fp = FourierProblem(yu.shape, ratio, psf, dtype, threads, ym, planner_effort, kernels=kernels,
                        weights=weights)
    x0 = np.ascontiguousarray(bicubic_upsample(ym, ratio), dtype=dtype)
    link, choice = choose_link(x0, yu, mask, degree=degree, link=link, coeffs=coeffs,
                               gradient=gradient, scan_direction=scan_direction, eps=eps,
                               threads=threads, kernels=kernels, spacing=spacing)
    n_fit = float(mask.sum()) if mask is not None else float(yu.size)
    resvar = link.coupling(x0, yu, mask, None, None, None, threads, kernels=kernels) / n_fit
    tau = estimate_weights(ym, yu, ratio, fp.abs_lam2, resvar, tau1=tau1, tau2=tau2,
                           tau3=tau3, tau4=tau4, gamma=gamma, mask=mask,
                           fit_residual=yu - link.evaluate(x0, threads=threads), weights=weights)
    return FusionProblem(ym=ym, yu=yu, mask=mask, ratio=ratio, dtype=dtype, threads=threads,
                         fourier=fp, x0=x0, link=link, link_choice=choice, weights=tau,
                         mr_scale=mr_scale, us_scale=us_scale, kernels=kernels)
