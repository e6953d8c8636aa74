"""The two single-modality baselines: MR-only super-resolution and US-only despeckling.

Each is one block of the fusion objective without the coupling (DESIGN.md sections 6 and 7).
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from ._config import get_num_threads
from ._validation import (as_image, check_gamma, check_grid_size, check_ratios, check_scalar,
                          check_spacing, check_tol, check_weight, difference_weights,
                          MAX_WEIGHT)
from .fourier import DEFAULT_PLANNER, FourierProblem
from .operators import as_psf
from .problem import scale_of
from .vstep import VStepSolver
from .weights import gcv_tau1, us_weights

__all__ = ["super_resolve", "despeckle"]

#: Ridge of the MR-only problem (DESIGN 6): 1e-6 leaves a normal-equation residual near 1e-12;
#: its bounds keep the zero-frequency division representable (1e-38 made float32 all NaN).
RIDGE_RANGE = (1e-10, 1.0)


def _finite_result(out: np.ndarray, name: str, scale: float) -> np.ndarray:
    if not np.isfinite(out).all():
        raise ValueError(f"the result is not finite when scaled back by the maximum of `{name}` "
                         f"({scale:.3g}); divide `{name}` by a constant and multiply the result "
                         "back")
    return out


def super_resolve(mr, ratio, *, tau: Optional[float] = None, psf=None,
                  threads: Optional[int] = None, ridge: float = 1e-6,
                  spacing=None) -> np.ndarray:
    """MR-only baseline: ``argmin_x 1/2||y_m - S C x||^2 + tau||grad x||^2`` in closed form.

    Parameters
    ----------
    mr : array_like, shape (m1, m2) or (m1, m2, m3)
        Observed MR image or volume.
    ratio : int or tuple of int
        Decimation ratio, one for every axis or one per axis; the result has shape
        ``(s1 m1, s2 m2, ..)``.
    tau : float, optional
        Weight of the squared-gradient penalty, in [1e-12, 1e12] or 0 (images are scaled to a
        maximum of 1); ``None``: chosen by generalised cross-validation.
    psf : array_like or (size, variance), optional
        Default Gaussian of side 9 and variance 4 on every axis.
    threads : int, optional
    ridge : float
        A small ``ridge/2 ||x||^2`` that makes the problem well posed at zero frequency, in
        [1e-10, 1].
    spacing : float or tuple of float, optional
        The fine grid's voxel size, one per axis: weights the differences by ``h_ref / h_a``
        (DESIGN.md 11). None: isotropic.

    Returns
    -------
    ndarray
        Super-resolved image, in the input's intensity scale and dtype policy.

    Raises
    ------
    ValueError, TypeError
        On invalid input, or when the result would overflow the dtype.

    Notes
    -----
    Zhao et al. (2016): with ``phi = 2 tau |D|^2 + ridge`` and ``R = fft2(C^T S^T y_m)``,
    ``X = R/phi - conj(Lam) tile(B(Lam R/phi) / (1 + B(|Lam|^2/phi))) / phi``.

    Examples
    --------
    >>> import numpy as np
    >>> super_resolve(np.ones((16, 16)), 2, tau=0.01).shape
    (32, 32)
    """
    y_m = as_image(mr, "mr", ndims=(2, 3))
    ratios = check_ratios(ratio, y_m.ndim)
    shape = tuple(m * r for m, r in zip(y_m.shape, ratios))
    check_grid_size(shape)
    weights = difference_weights(check_spacing(spacing, y_m.ndim))
    tau = check_weight(tau, "tau", allow_zero=True)
    ridge = check_scalar(ridge, "ridge", positive=True)
    if not RIDGE_RANGE[0] <= ridge <= RIDGE_RANGE[1]:
        raise ValueError(f"`ridge` must be between {RIDGE_RANGE[0]:g} and {RIDGE_RANGE[1]:g}, "
                         f"got {ridge:g}")
    nt = get_num_threads(threads, pixels=int(np.prod(shape)))
    scale = scale_of(y_m, "mr")
    ym = y_m / y_m.dtype.type(scale)
    fp = FourierProblem(shape, ratios, as_psf(psf, shape), y_m.dtype, nt, ym, DEFAULT_PLANNER,
                        weights=weights)
    if tau is None:
        tau, _ = gcv_tau1(ym, ratios, fp.abs_lam2, weights=weights)
    X = fp.solve(ridge, tau)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array(fp.inverse(X) * y_m.dtype.type(scale))
    return _finite_result(out, "mr", scale)


def despeckle(us, *, tau2: Optional[float] = None, tau3: Optional[float] = None,
              gamma: Optional[float] = None, noise_model: str = "correlated",
              tol: float = 1e-6, threads: Optional[int] = None, spacing=None) -> np.ndarray:
    """US-only baseline: ``argmin_v tau2 sum[exp(y_u - v) - gamma (y_u - v)] + tau3||grad v||^2``.

    Parameters
    ----------
    us : array_like
        Observed log-compressed US image or volume.
    tau2, tau3 : float, optional
        Weights in [1e-12, 1e12] (``tau3`` may be 0); only ``tau3 / tau2`` matters. ``None``:
        the rule :func:`mrusfusion.fuse` uses (:func:`mrusfusion.weights.us_weights`):
        ``tau2 = 1 / (gamma sigma_u^2 A_c)`` from the measured log-Rayleigh scale and speckle
        grain, ``tau3 = tau2 gamma rho`` with ``rho`` chosen by (coloured-noise) SURE.
    gamma : float, optional
        Log-Rayleigh parameter in [1e-3, 1e3] (default from the measured noise scale).
    noise_model : {"correlated", "iid"}
        How the automatic weights read the speckle, as in :func:`mrusfusion.fuse`.
    tol : float
        Relative accuracy of the solution, in (0, 1).
    threads : int, optional
    spacing : float or tuple of float, optional
        The grid's voxel size, one per axis: weights the differences (DESIGN.md 11).

    Returns
    -------
    ndarray
        Despeckled image in the input's intensity scale.

    Warns
    -----
    RuntimeWarning
        When Newton's method stops at its iteration cap before meeting ``tol`` (float64; in
        float32 the solve may stop at rounding level, which is not reported).

    Notes
    -----
    Solved by Newton-PCG from ``y_u`` (DESIGN.md section 7 with ``d_k = 0``); the minimiser of
    ``exp(z) - gamma z`` is ``z = log gamma``, so a flat region converges to ``y_u - log gamma``.

    Examples
    --------
    >>> import numpy as np
    >>> float(despeckle(np.full((16, 16), 0.5), tau2=1.0, tau3=1.0, gamma=1.0).round(6).max())
    0.5
    """
    y = as_image(us, "us", ndims=(2, 3))
    weights = difference_weights(check_spacing(spacing, y.ndim))
    tau2 = check_weight(tau2, "tau2")
    tau3 = check_weight(tau3, "tau3", allow_zero=True)
    gamma = check_gamma(gamma)
    tol = check_tol(tol, "tol")
    nt = get_num_threads(threads, pixels=y.size)
    scale = scale_of(y, "us")
    yu = y / y.dtype.type(scale)
    if tau2 is None or tau3 is None or gamma is None:
        noise = us_weights(yu, noise_model=noise_model, weights=weights)
        if gamma is None:
            gamma = noise.gamma
        if tau2 is None:
            tau2 = min(1.0 / (gamma * max(noise.sigma_u2 * noise.grain_area, 1e-12)), MAX_WEIGHT)
        if tau3 is None:
            tau3 = min(tau2 * gamma * noise.rho, MAX_WEIGHT)
    fp = FourierProblem(y.shape, 1, np.ones((1,) * y.ndim), y.dtype, nt, None, DEFAULT_PLANNER,
                        weights=weights)
    solver = VStepSolver(fp, yu, None, tau2, tau3, gamma, tol=tol, max_newton=100)
    v = fp.empty_real()
    np.copyto(v, yu)
    info = solver.solve(v)
    # In float32 an ill-conditioned solve (a strong tau3) can stall at rounding level above
    # the asked tolerance; that is float32's precision, not a failure worth a warning.
    if not info.converged and y.dtype == np.float64:
        warnings.warn(f"despeckle: Newton stopped after {info.newton_iter} iterations with a "
                      f"gradient norm of {info.grad_norm:.3g} (asked: {info.tolerance:.3g})",
                      RuntimeWarning, stacklevel=2)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array(v * y.dtype.type(scale))
    return _finite_result(out, "us", scale)
