"""``register``: align the US to the MR by the link's explained variance (DESIGN.md section 15).

Coarse to fine: at a level of factor ``f`` both images are Gaussian-smoothed (the US by
``smooth * f`` fine pixels, since raw speckle gradients are noise; the MR by ``f / 2`` against
aliasing) and sampled every ``f`` fine pixels. The parameters stay in fine-grid units at every
level (a level's matrix is ``[M | t / f]``), so each level starts where the previous one ended.
Each level runs L-BFGS-B on ``-S`` with the analytic gradient of :mod:`.similarity`; the
coarse levels on ``-S q`` (``q`` the covered share of the mask), so that they cannot drift off
the field onto a few easy pixels. An affine registration from the identity runs rigid over the
pyramid first, then affine at the finest level.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
from scipy import ndimage, optimize

from .._validation import (as_image, as_mask, check_gradient, check_int, check_scalar,
                           default_direction, infer_ratios)
from ..operators import bicubic_upsample
from .similarity import LinkSimilarity
from .transforms import check_transform, jacobian, matrix, n_params

__all__ = ["RegistrationResult", "register", "register_for_fusion"]


@dataclass(frozen=True, eq=False)
class RegistrationResult:
    """The outcome of :func:`register`.

    Attributes
    ----------
    matrix : ndarray, shape (ndim+1, ndim+1)
        Homogeneous matrix in fine-grid (US) index coordinates, in the
        ``scipy.ndimage.affine_transform`` convention: the output point ``o`` of the registered
        US is sampled at ``matrix @ [o, 1]`` of the moving US.
    transform : str
        ``"translation"``, ``"rigid"`` or ``"affine"``.
    params : ndarray
        The parameters of :mod:`mrusfusion.registration.transforms` (fine-grid pixels and
        radians, about the grid centre).
    similarity : float
        Explained variance ``S`` at the finest level after registration.
    initial_similarity : float
        ``S`` of the initial transform at the finest level.
    history : ndarray
        The objective after each iteration, all levels in order: ``S`` at the finest level,
        ``S q`` (``q`` the covered share of the mask) at the coarse ones, on their own images.
    iterations : int
        L-BFGS-B iterations over all levels.
    levels : tuple of int
        Pyramid factors, coarse to fine.
    overlap : float
        Share of the fixed mask's pixels that the moving US covers after registration.
    success : bool
        False when the similarity could not be improved or the overlap fell below
        ``min_overlap``.
    message : str
    seconds : float
        Wall time of the registration.
    """

    matrix: np.ndarray
    transform: str
    params: np.ndarray
    similarity: float
    initial_similarity: float
    history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    iterations: int = 0
    levels: Tuple[int, ...] = ()
    overlap: float = 1.0
    success: bool = True
    message: str = ""
    seconds: float = 0.0

    def apply(self, us, *, order: int = 3, us_mask=None) -> Tuple[np.ndarray, np.ndarray]:
        """The moving US resampled onto the MR-aligned grid, and its mask of valid pixels.

        Pixels sampled from outside the moving US (or outside ``us_mask``, its own field of
        view, resampled with nearest neighbours) are 0 and False in the mask: pass the mask on
        (``fuse(..., mask=valid)``) rather than fusing the zeros.

        Examples
        --------
        >>> res = RegistrationResult(np.eye(3), "translation", np.zeros(2), 1.0, 1.0)
        >>> out, valid = res.apply(np.ones((4, 4)))
        >>> bool(valid.all()), round(float(out.sum()), 9)
        (True, 16.0)
        """
        a = as_image(us, "us", ndims=(2, 3))
        d = a.ndim
        if self.matrix.shape != (d + 1, d + 1):
            raise ValueError(f"`us` must be {self.matrix.shape[0] - 1}-D, got shape {a.shape}")
        order = check_int(order, "order", low=0, high=5)
        out = ndimage.affine_transform(a, self.matrix, order=order, mode="mirror")
        grid = np.indices(a.shape, dtype=np.float64).reshape(d, -1)
        p = self.matrix[:d, :d] @ grid + self.matrix[:d, d:]
        upper = np.array(a.shape, dtype=np.float64)[:, None] - 1.0
        tol = 1e-9 * float(max(a.shape))
        valid = np.all((p >= -tol) & (p <= upper + tol), axis=0).reshape(a.shape)
        if us_mask is not None:
            fov = as_mask(us_mask, "us_mask", a.shape, np.float64)
            valid &= ndimage.affine_transform(fov, self.matrix, order=0, mode="nearest") > 0.5
        out[~valid] = 0
        return out, valid


def _levels(shape, levels: Optional[int]) -> Tuple[int, ...]:
    if levels is None:  # coarsest level at least 32 pixels across, at most 3 levels
        n = 1
        while n < 3 and min(shape) / 2**n >= 32:
            n += 1
        levels = n
    levels = check_int(levels, "levels", low=1, high=8)
    return tuple(2**k for k in reversed(range(levels)))


def _scales(transform: str, shape) -> np.ndarray:
    """Optimiser units: a rotation or strain of 1 unit moves the field's edge by ~1 pixel."""
    d = len(shape)
    radius = 0.5 * max(shape)
    k = n_params(transform, d) - d
    return np.concatenate([np.full(k, 1.0 / radius), np.ones(d)])


def _bounds(transform: str, shape, scale: np.ndarray):
    d = len(shape)
    lin = {"translation": 0.0, "rigid": math.pi / 4, "affine": 0.5}[transform]
    k = n_params(transform, d) - d
    hi = np.concatenate([np.full(k, lin), 0.5 * np.array(shape, dtype=np.float64)]) / scale
    return list(zip(-hi, hi))


class _Level:
    """One pyramid level: the similarity and the objective in the optimiser's units."""

    def __init__(self, sim: LinkSimilarity, factor: int, transform: str, center, scale):
        self.sim, self.f, self.transform, self.center, self.scale = (sim, factor, transform,
                                                                     center, scale)
        self.last: Tuple[Optional[np.ndarray], float] = (None, float("nan"))

    def level_matrix(self, theta: np.ndarray):
        a, da = jacobian(self.transform, theta, self.center)
        d = a.shape[0]
        al = a.copy()
        al[:, d] /= self.f
        return al, da

    def objective(self, z: np.ndarray):
        theta = z * self.scale
        al, da = self.level_matrix(theta)
        ev = self.sim(al)
        if not np.isfinite(ev.value):  # no overlap: worse than any S in [0, 1]
            self.last = (z.copy(), float("nan"))
            return 1.0, np.zeros_like(z)
        g = ev.grad.copy()
        g[:, -1] /= self.f
        dtheta = np.einsum("kij,ij->k", da, g)
        self.last = (z.copy(), ev.value)
        return -ev.value, -dtheta * self.scale

    def value(self, z: np.ndarray) -> float:
        if self.last[0] is not None and np.array_equal(self.last[0], z):
            return self.last[1]
        return self.sim(self.level_matrix(z * self.scale)[0], gradient=False).value


def _pyramid(x0: np.ndarray, us: np.ndarray, mask: np.ndarray, f: int, smooth: float,
             us_mask: Optional[np.ndarray]):
    sl = tuple(slice(None, None, f) for _ in range(us.ndim))
    fov = None if us_mask is None else us_mask[sl]
    u = ndimage.gaussian_filter(us, smooth * f, mode="nearest") if smooth > 0 else us
    x = ndimage.gaussian_filter(x0, 0.5 * f, mode="nearest") if f > 1 else x0
    return x[sl], u[sl], mask[sl], fov


def register(mr, us, *, ratio=None, transform: str = "rigid", mask=None,
             degree: int = 3, gradient: str = "magnitude", scan_direction=None,
             levels: Optional[int] = None, smooth: float = 1.0, max_iter: int = 100,
             min_overlap: float = 0.25, initial=None, us_mask=None) -> RegistrationResult:
    """Register the US to the MR by the share of its variance the polynomial link explains.

    Parameters
    ----------
    mr : array_like, shape (m1, m2) or (m1, m2, m3)
        Fixed MR image or volume (the observation, on its coarse grid).
    us : array_like, shape (n1, n2) = ratio * (m1, m2), or a volume
        Moving US image (log-compressed B-mode).
    ratio : int or tuple of int, optional
        Decimation ratio (one, or one per axis); inferred from the shapes by default.
    transform : {"translation", "rigid", "affine"}
        ``"rigid"`` is 2-D only for now; volumes take ``"translation"`` or ``"affine"``.
    mask : array_like of bool, shape (n1, n2), optional
        Pixels of the fixed (MR-aligned) grid to measure the similarity on.
    degree : int
        Degree of the link (1 to 6).
    gradient : {"magnitude", "directional"}
        Gradient feature of the link; the magnitude does not depend on the orientation.
    scan_direction : tuple of float, optional
        Beam direction for ``gradient="directional"`` (default: down the first axis).
    levels : int, optional
        Pyramid levels (factors 2^k); default: up to 3, the coarsest at least 32 pixels across.
    smooth : float
        Gaussian smoothing of the US at the finest level, in fine pixels (``smooth * f`` at
        factor ``f``).
    max_iter : int
        L-BFGS-B iterations per level.
    min_overlap : float
        Below this share of the mask covered by the moving US, the result is flagged failed.
    initial : array_like, optional
        Initial homogeneous matrix (default: the identity), same convention as the result's.
    us_mask : array_like of bool, shape (n1, n2), optional
        The moving US's own field of view, on its grid (e.g. the fan of a sector probe): it
        moves with the US, unlike ``mask``.

    Returns
    -------
    RegistrationResult

    Raises
    ------
    ValueError
        On NaN or infinite values, shapes that do not match a ratio, unknown options, or an
        initial transform under which the images do not overlap.

    Notes
    -----
    ``S(A) = 1 - min_c ||m (y_u o T_A - F c)||^2 / ||m (y_u o T_A - mean)||^2`` (DESIGN.md 15),
    ``F`` the link features of the bicubic upsampling of ``mr``; its gradient by the envelope
    theorem is in :mod:`mrusfusion.registration.similarity`. A band of ``ratio + 1`` fine
    pixels along the border is left out (the upsampling and the differences are periodic).
    Levels, smoothing and the warp are the same in 3-D (a cubic spline over 64 neighbours).

    References
    ----------
    A. Roche, X. Pennec, G. Malandain, N. Ayache, "Rigid registration of 3-D ultrasound with MR
    images: a new approach combining intensity and gradient information", IEEE Trans. Med.
    Imaging 20(10), 2001.

    Examples
    --------
    >>> from mrusfusion import phantom, simulate
    >>> sim = simulate(phantom((64, 64)), 2, seed=0)
    >>> res = register(sim.mr, sim.us, transform="translation")
    >>> res.matrix.shape, bool(res.similarity >= res.initial_similarity)
    ((3, 3), True)
    """
    started = time.perf_counter()
    y_m = as_image(mr, "mr", dtype=np.float64, ndims=(2, 3))
    y_u = as_image(us, "us", dtype=np.float64, ndims=(2, 3))
    if y_m.ndim != y_u.ndim:
        raise ValueError(f"`mr` and `us` must have the same number of axes, got shapes "
                         f"{y_m.shape} and {y_u.shape}")
    s = infer_ratios(y_m.shape, y_u.shape, ratio)
    transform = check_transform(transform, y_u.ndim)
    scan_direction = default_direction(scan_direction, y_u.ndim)
    d = check_int(degree, "degree", low=1, high=6)
    check_gradient(gradient)
    smooth = check_scalar(smooth, "smooth", nonnegative=True)
    max_iter = check_int(max_iter, "max_iter", low=1)
    min_overlap = check_scalar(min_overlap, "min_overlap", nonnegative=True, high=1.0)
    m = as_mask(mask, "mask", y_u.shape, np.float64)
    fov = as_mask(us_mask, "us_mask", y_u.shape, np.float64)
    m = np.ones(y_u.shape) if m is None else m
    inner = np.zeros(y_u.shape)
    inner[tuple(slice(r + 1, n - r - 1) for r, n in zip(s, y_u.shape))] = 1.0
    m = m * inner
    if not m.any():
        raise ValueError(f"`mask` selects no pixel away from the border band of ratio + 1 "
                         f"pixels {tuple(r + 1 for r in s)}")
    factors = _levels(y_u.shape, levels)
    center = (np.array(y_u.shape, dtype=np.float64) - 1.0) / 2.0
    scale = _scales(transform, y_u.shape)
    theta = np.zeros(n_params(transform, y_u.ndim))
    if initial is not None:
        theta = _params_of(initial, transform, center)
    x0 = bicubic_upsample(y_m, s)
    kw = dict(degree=d, gradient=gradient, scan_direction=scan_direction)
    history: List[float] = []
    iterations = 0
    # coarse levels weigh S by the covered share: on small images a ratio rewards drifting
    # onto a few easy pixels; the finest level measures S alone (unbiased)
    sims = []
    for f in factors:
        xl, ul, ml, fl = _pyramid(x0, y_u, m, f, smooth, fov)
        sims.append((f, LinkSimilarity(xl, ul, ml, **kw, coverage=1.0 if f > 1 else 0.0,
                                       us_mask=fl)))
    finest = _Level(sims[-1][1], 1, transform, center, scale)
    theta0 = theta.copy()
    s0 = finest.value(theta0 / scale)
    if not np.isfinite(s0):
        raise ValueError("the images do not overlap under the initial transform (or the overlap "
                         "holds no variance to explain)")
    stages = [(transform, sims)]
    if transform == "affine" and initial is None and len(sims) > 1:
        # measured on the B-mode trials: six parameters from the identity drift at the coarse
        # levels (2 of 20 trials lost); rigid (translation in 3-D) over the pyramid, then
        # affine at the finest level
        first = "rigid" if y_u.ndim == 2 else "translation"
        stages = [(first, sims), ("affine", sims[-1:])]
    current = matrix(transform, theta, center)
    for kind, stage in stages:
        sc = _scales(kind, y_u.shape)
        th = _params_of(current, kind, center)
        for f, sim in stage:
            level = _Level(sim, f, kind, center, sc)
            res = optimize.minimize(level.objective, th / sc, jac=True, method="L-BFGS-B",
                                    bounds=_bounds(kind, y_u.shape, sc),
                                    callback=lambda z, lv=level: history.append(lv.value(z)),
                                    options={"maxiter": max_iter})
            iterations += int(res.nit)
            if np.isfinite(level.value(res.x)):
                th = res.x * sc
        current = matrix(kind, th, center)
    theta = _params_of(current, transform, center)
    final = finest.value(theta / scale)
    success, msg = True, f"registered: S {s0:.4f} -> {final:.4f}"
    if not final > s0:
        theta, final, success = theta0, s0, False
        msg = (f"the similarity could not be improved over the initial transform (S = {s0:.4f}); "
               "returning the initial transform")
    a = finest.level_matrix(theta)[0]
    cover = float(np.sum(finest.sim.overlap(a)) / np.sum(finest.sim.mask))
    if cover < min_overlap:
        success = False
        msg += (f"; the registered US covers {100 * cover:.0f}% of the mask, below min_overlap = "
                f"{100 * min_overlap:.0f}%: the transform left the field, do not trust it")
    return RegistrationResult(matrix(transform, theta, center), transform, theta, final, s0,
                              np.asarray(history), iterations, factors, cover, success, msg,
                              time.perf_counter() - started)


def _params_of(initial, transform: str, center: np.ndarray) -> np.ndarray:
    """Parameters of an initial homogeneous matrix (must be of the kind ``transform``)."""
    a = np.asarray(initial, dtype=np.float64)
    d = center.size
    if a.shape != (d + 1, d + 1):
        raise ValueError(f"`initial` must be a {d + 1}x{d + 1} matrix, got shape {a.shape}")
    lin = a[:d, :d]
    t = a[:d, d] - center + lin @ center
    if transform == "translation":
        theta = t
    elif transform == "rigid":
        theta = np.concatenate([[math.atan2(lin[1, 0], lin[0, 0])], t])
    else:
        theta = np.concatenate([(lin - np.eye(d)).ravel(), t])
    if not np.allclose(matrix(transform, theta, center), a, atol=1e-9):
        raise ValueError(f"`initial` is not a {transform} transform")
    return theta


def register_for_fusion(mr, us, *, mask=None, order: int = 3, **kwargs
                        ) -> Tuple[np.ndarray, np.ndarray, RegistrationResult]:
    """Register, then return what :func:`mrusfusion.fuse` needs: ``(us_registered, mask, res)``.

    The mask is the user's ``mask`` (if any) times the pixels the moved US covers, so pixels
    outside its support are masked, never zero-filled into the fusion. A failed registration
    raises ``ValueError`` with its message rather than handing on a garbage image.

    Examples
    --------
    >>> from mrusfusion import phantom, simulate
    >>> sim = simulate(phantom((64, 64)), 2, seed=0)
    >>> us_reg, valid, res = register_for_fusion(sim.mr, sim.us, transform="translation")
    >>> us_reg.shape == valid.shape == sim.us.shape
    True
    """
    res = register(mr, us, mask=mask, **kwargs)
    if not res.success and res.overlap < kwargs.get("min_overlap", 0.25):
        raise ValueError(f"registration failed: {res.message}")
    us_reg, valid = res.apply(us, order=order, us_mask=kwargs.get("us_mask"))
    if mask is not None:
        valid &= np.asarray(mask) > 0
    return us_reg, valid, res
