"""Choosing the link by blocked spatial cross-validation (DESIGN.md 12.1, 12.2).

The fine grid is cut into about ``blocks`` blocks per axis, dealt into ``folds`` folds
(deterministically: block ``b`` in row-major order goes to fold ``b mod folds``, so that
neighbouring blocks land in different folds). Each fold is held out in turn; the link is fitted
on the others and scored by its mean squared residual on the held-out fold. Blocks rather than
random pixels, because speckle and the MR blur make neighbours dependent, and random-pixel CV
then rewards fitting the speckle. The one-standard-error rule picks the simplest candidate whose
CV error is within one standard error (over the folds) of the minimum.

Every fold's normal equations are accumulated once, on that fold alone; the held-in system is
the total minus the fold, and the held-out error ``y^T y - 2 c^T b + c^T G c`` comes from the
same sums, so each candidate costs a few small solves and no further pass over the image. One
accumulation at the highest degree serves every lower one (its features are a subset).

When cross-validation cannot run (an image with blocks under ``MIN_BLOCK`` pixels, folds with
fewer than ``MIN_FOLD_PIXELS`` pixels in the mask, or no candidate with a full-rank fit on every
fold) the selection falls back on degree 1 and the global link and says why. Degree 1, not 2:
it is what the one-SE rule chose on the paper's protocol and on a real pair, it fused as well as
degree 4 there, and it cannot bend to fit speckle or flatten tissue contrast when the data are
too few to tell.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .._config import get_num_threads
from .._validation import as_image, as_mask, check_int, default_direction
from ..operators import make_gradient
from .base import real_scalar
from .features import MAX_DEGREE, FeatureScaling, degree_subset, n_coeffs
from .global_link import solve_normal_equations
from .local_link import _normal_matrix, _solve, knot_shape

__all__ = ["DegreeSelection", "LocalLinkSelection", "select_degree", "select_local_link",
           "block_folds", "FALLBACK_DEGREE"]

FALLBACK_DEGREE = 1
MIN_BLOCK = 4
MIN_FOLD_PIXELS = 16


@dataclass(frozen=True, eq=False)
class DegreeSelection:
    """The degree chosen by blocked cross-validation.

    Attributes
    ----------
    degree : int
        The chosen degree.
    degrees : tuple of int
        Degrees tried.
    cv_error : ndarray
        Mean held-out squared residual per degree, relative to the variance of ``us`` over the
        mask (NaN where a fit was rank deficient, or all NaN after a fallback).
    cv_se : ndarray
        Its standard error over the folds.
    fallback : bool
        True when cross-validation could not run and ``degree`` is ``FALLBACK_DEGREE``.
    message : str
    """

    degree: int
    degrees: Tuple[int, ...]
    cv_error: np.ndarray
    cv_se: np.ndarray
    fallback: bool
    message: str


@dataclass(frozen=True, eq=False)
class LocalLinkSelection:
    """Knot spacing and ``mu`` of the local link chosen by blocked cross-validation.

    Attributes
    ----------
    knot_spacing : float or None
        Chosen spacing; None means the global link.
    mu : float or None
        Chosen neighbour weight (None for the global link).
    candidates : tuple of (spacing or None, mu or None)
        Candidates in the order of the one-SE rule (simplest first).
    cv_error, cv_se : ndarray
        Relative CV error per candidate and its standard error.
    fallback : bool
    message : str
    """

    knot_spacing: Optional[float]
    mu: Optional[float]
    candidates: Tuple[Tuple[Optional[float], Optional[float]], ...]
    cv_error: np.ndarray
    cv_se: np.ndarray
    fallback: bool
    message: str


def block_folds(shape: Tuple[int, ...], blocks: int = 8, folds: int = 5) -> np.ndarray:
    """Fold label of every pixel: block ``(b_1, .., b_D)``, ``b_a = floor(i_a blocks / n_a)``,
    goes to fold ``ravel(b) mod folds``.

    Examples
    --------
    >>> block_folds((4, 4), blocks=2, folds=3)
    array([[0, 0, 1, 1],
           [0, 0, 1, 1],
           [2, 2, 0, 0],
           [2, 2, 0, 0]])
    """
    label = np.zeros(shape, np.int64)
    for a, n in enumerate(shape):
        view = [1] * len(shape)
        view[a] = n
        label = label * blocks + (np.arange(n) * blocks // n).reshape(view)
    return label % folds


class _Data:
    """Validated inputs in units where ``max |mr_up| = max |us| = 1``, ``us`` centred."""

    def __init__(self, mr_up, us, mask, gradient, scan_direction, eps, threads, spacing=None):
        x = as_image(mr_up, "mr_up", dtype=np.float64, ndims=(2, 3))
        y = as_image(us, "us", dtype=np.float64, ndims=(2, 3))
        if y.shape != x.shape:
            raise ValueError(f"`us` must have the shape of `mr_up` {x.shape}, got {y.shape}")
        scan_direction = default_direction(scan_direction, x.ndim)
        eps = real_scalar(eps, "eps", positive=True)
        self.m = as_mask(mask, "mask", x.shape, np.float64)
        self.nt = get_num_threads(threads)
        sx = float(np.max(np.abs(x))) or 1.0
        self.x = x / sx
        self.gmap = make_gradient(gradient, scan_direction, max(eps / sx, np.finfo(float).tiny),
                                  spacing=spacing, threads=self.nt)
        self.g = self.gmap.apply(self.x)
        w = np.ones(x.shape) if self.m is None else self.m
        y = y / (float(np.max(np.abs(y))) or 1.0)
        self.y = y - float(np.sum(w * y) / np.sum(w))
        var = float(np.sum(w * self.y**2) / np.sum(w))
        self.var = var if var > 0 else 1.0
        self.scaling = FeatureScaling.from_data(self.x, self.g, self.m)

    def fold_masks(self, blocks: int, folds: int):
        """Held-out masks of the folds, or a message saying why CV cannot run."""
        small = [n for n in self.x.shape if n // blocks < MIN_BLOCK]
        if small:
            return None, (f"the image {self.x.shape} is too small for {blocks} blocks of at least "
                          f"{MIN_BLOCK} pixels per axis")
        label = block_folds(self.x.shape, blocks, folds)
        base = np.ones(self.x.shape) if self.m is None else self.m
        masks = [base * (label == k) for k in range(folds)]
        counts = [int(np.count_nonzero(mk)) for mk in masks]
        if min(counts) < MIN_FOLD_PIXELS:
            return None, (f"the mask leaves {min(counts)} pixels in a fold (at least "
                          f"{MIN_FOLD_PIXELS} needed)")
        return masks, ""

    def global_systems(self, masks, degree):
        sc = self.scaling
        out = [_core.poly_normal_equations(self.x, self.g, self.y, mk, degree, sc.x_c, sc.x_s,
                                           sc.g_s, self.nt) for mk in masks]
        grams, rhss, yys = (np.array(v) for v in zip(*out))
        return grams, rhss, yys, np.array([float(mk.sum()) for mk in masks])


def _fold_errors(grams, rhss, yys, wsum, sub):
    """Held-out mean squared residual of each fold for the features ``sub`` (None if a
    held-in fit is rank deficient)."""
    gt, bt = grams.sum(0), rhss.sum(0)
    errs = []
    for k in range(len(yys)):
        gi = (gt - grams[k])[np.ix_(sub, sub)]
        c, _ = solve_normal_equations(gi, (bt - rhss[k])[sub])
        if c is None:
            return None
        sse = yys[k] - 2 * c @ rhss[k][sub] + c @ grams[k][np.ix_(sub, sub)] @ c
        errs.append(max(float(sse), 0.0) / wsum[k])
    return np.array(errs)


def _one_se(errors: np.ndarray, ses: np.ndarray) -> int:
    """Index of the first (simplest) candidate within one standard error of the minimum."""
    best = int(np.nanargmin(errors))
    ok = np.flatnonzero(errors <= errors[best] + ses[best])
    return int(ok[0])


def _stats(errs: np.ndarray, var: float):
    return float(np.mean(errs)) / var, float(np.std(errs, ddof=1) / np.sqrt(errs.size)) / var


def select_degree(mr_up, us, *, mask=None, gradient: str = "directional", scan_direction=None,
                  eps: float = 1e-3, max_degree: int = 6, blocks: int = 8, folds: int = 5,
                  threads: Optional[int] = None, spacing=None) -> DegreeSelection:
    """Degree of the global link by blocked cross-validation and the one-SE rule (DESIGN 12.1).

    Parameters
    ----------
    mr_up : ndarray, 2-D or 3-D
        MR image on the US grid (the bicubic upsampling of the observation, as ``fuse`` uses).
    us : ndarray, shape of ``mr_up``
        US image.
    mask : ndarray of bool, optional
        Pixels to fit and score on.
    gradient, scan_direction, eps, spacing
        Gradient map of the link, as in :func:`~mrusfusion.fit_polynomial`.
    max_degree : int
        Degrees 1..``max_degree`` are tried.
    blocks : int
        Blocks per axis.
    folds : int
        Number of folds ``K``.
    threads : int, optional

    Returns
    -------
    DegreeSelection

    Notes
    -----
    See the module docstring: fold ``k``'s held-out error of coefficients ``c`` fitted on the
    other folds is ``(y_k^T y_k - 2 c^T b_k + c^T G_k c) / n_k``; ``cv_error`` is their mean
    over the folds divided by the variance of ``us``, ``cv_se`` their standard deviation over
    ``sqrt(K)`` (same units).

    Examples
    --------
    >>> yy, xx = np.mgrid[0:32, 0:32] / 32
    >>> x = 0.5 + 0.25 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    >>> sel = select_degree(x, 1 + 2 * x + 0.01 * np.cos(7 * xx * yy), max_degree=3)
    >>> sel.degree, sel.fallback
    (1, False)
    """
    dmax = check_int(max_degree, "max_degree", low=1, high=MAX_DEGREE)
    blocks = check_int(blocks, "blocks", low=2)
    folds = check_int(folds, "folds", low=2)
    data = _Data(mr_up, us, mask, gradient, scan_direction, eps, threads, spacing)
    degrees = tuple(range(1, dmax + 1))
    nan = np.full(len(degrees), np.nan)

    def fallback(why: str) -> DegreeSelection:
        return DegreeSelection(FALLBACK_DEGREE, degrees, nan, nan.copy(), True,
                               f"cross-validation cannot run: {why}; degree {FALLBACK_DEGREE}")

    masks, why = data.fold_masks(blocks, folds)
    if masks is None:
        return fallback(why)
    grams, rhss, yys, wsum = data.global_systems(masks, dmax)
    err, se = nan.copy(), nan.copy()
    for i, d in enumerate(degrees):
        if min(wsum.sum() - wsum) < 2 * n_coeffs(d):
            continue
        e = _fold_errors(grams, rhss, yys, wsum, degree_subset(d, dmax))
        if e is not None:
            err[i], se[i] = _stats(e, data.var)
    if not np.isfinite(err).any():
        return fallback("every fit is rank deficient on some fold")
    best = _one_se(err, se)
    dropped = [d for d, e in zip(degrees, err) if not np.isfinite(e)]
    note = f" (degrees {dropped} rank deficient)" if dropped else ""
    return DegreeSelection(degrees[best], degrees, err, se, False,
                           f"degree {degrees[best]} by {folds}-fold blocked cross-validation, "
                           f"one-SE rule{note}")


def select_local_link(mr_up, us, degree: int, *, mask=None,
                      spacings: Sequence[Optional[float]] = (32, 64, 128, None),
                      mus: Sequence[float] = (0.1, 1.0, 10.0), nu: float = 1e-2,
                      gradient: str = "directional", scan_direction=(1.0, 0.0), eps: float = 1e-3,
                      blocks: int = 8, folds: int = 5, threads: Optional[int] = None,
                      kernels=_core) -> LocalLinkSelection:
    """Knot spacing and ``mu`` of the local link by blocked cross-validation (DESIGN 12.2).

    Parameters
    ----------
    mr_up, us, mask, gradient, scan_direction, eps, blocks, folds, threads
        As in :func:`select_degree`.
    degree : int
        Degree of the link.
    spacings : sequence of float or None
        Knot spacings ``P`` to try; None is the global link. Spacings giving the same knot
        grid as a larger one are skipped.
    mus : sequence of float
        Neighbour weights to try with each spacing.
    nu : float
        Pull towards the global fit (fixed).
    kernels : module
        ``_core`` or the NumPy twins ``mrusfusion._reference``.

    Returns
    -------
    LocalLinkSelection
        The simplest candidate (the global link first, then larger ``P`` and larger ``mu``)
        within one standard error of the best; after a fallback, the global link.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:32, 0:32] / 32
    >>> x = 0.5 + 0.25 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    >>> sel = select_local_link(x, (1 + 2 * yy) * x, 1, spacings=(16, None), mus=(0.01,))
    >>> sel.knot_spacing, sel.fallback
    (16.0, False)
    """
    d = check_int(degree, "degree", low=0, high=MAX_DEGREE)
    blocks = check_int(blocks, "blocks", low=2)
    folds = check_int(folds, "folds", low=2)
    nu = real_scalar(nu, "nu", positive=True)
    mus = tuple(sorted({real_scalar(m, "mus", nonnegative=True) for m in mus}, reverse=True))
    data = _Data(mr_up, us, mask, gradient, scan_direction, eps, threads)
    local: List[float] = []
    seen = set()
    for p in sorted((real_scalar(p, "spacings", positive=True) for p in spacings if p is not None),
                    reverse=True):
        if p < 2:
            raise ValueError(f"`spacings` must be at least 2 pixels (or None), got {p:g}")
        ks = knot_shape(data.x.shape, p)
        if ks not in seen:
            seen.add(ks)
            local.append(p)
    cands: List[Tuple[Optional[float], Optional[float]]] = []
    if None in tuple(spacings) or not local:
        cands.append((None, None))
    cands += [(p, mu) for p in local for mu in mus]
    nan = np.full(len(cands), np.nan)
    masks, why = data.fold_masks(blocks, folds)
    if masks is None:
        return LocalLinkSelection(None, None, tuple(cands), nan, nan.copy(), True,
                                  f"cross-validation cannot run: {why}; the global link")
    grams, rhss, yys, wsum = data.global_systems(masks, d)
    err, se = nan.copy(), nan.copy()
    gt, bt = grams.sum(0), rhss.sum(0)
    c_glob = [solve_normal_equations(gt - grams[k], bt - rhss[k], exact=True)[0]
              for k in range(folds)]
    if cands[0][0] is None:
        e = _fold_errors(grams, rhss, yys, wsum, np.arange(n_coeffs(d)))
        if e is not None:
            err[0], se[0] = _stats(e, data.var)
    sc = data.scaling
    for p in local:
        ks = knot_shape(data.x.shape, p)
        systems = [kernels.local_normal_equations(data.x, data.g, data.y, mk, d, ks, sc.x_c,
                                                  sc.x_s, sc.g_s, data.nt) for mk in masks]
        blk = np.array([s[0] for s in systems])
        rhs = np.array([s[1] for s in systems])
        mats = [_normal_matrix(b, ks) for b in blk]
        for mu in mus:
            errs = []
            for k in range(folds):
                diag = np.diag(gt - grams[k])
                gam = np.sqrt(np.maximum(diag, 1e-12 * max(diag.max(), 1e-300)) / np.prod(ks))
                c = _solve(blk.sum(0) - blk[k], rhs.sum(0) - rhs[k], ks, gam, c_glob[k], mu,
                           nu).ravel()
                sse = yys[k] - 2 * c @ rhs[k].ravel() + c @ (mats[k] @ c)
                errs.append(max(float(sse), 0.0) / wsum[k])
            i = cands.index((p, mu))
            err[i], se[i] = _stats(np.array(errs), data.var)
    if not np.isfinite(err).any():
        return LocalLinkSelection(None, None, tuple(cands), err, se, True,
                                  "cross-validation cannot run: every fit is rank deficient on "
                                  "some fold; the global link")
    spacing, mu_best = cands[_one_se(err, se)]
    what = ("the global link" if spacing is None else
            f"knot spacing {spacing:g}, mu {mu_best:g}")
    return LocalLinkSelection(spacing, mu_best, tuple(cands), err, se, False,
                              f"{what} by {folds}-fold blocked cross-validation, one-SE rule")
