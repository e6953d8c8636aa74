"""MR/US fusion (DESIGN.md sections 4-7): validate, build the problem, run PALM, report.

``psi(x, v) = 1/2 ||y_m - S C x||^2 + tau1 ||grad x||^2
            + tau2 sum m [exp(y_u - v) - gamma (y_u - v)] + tau3 ||grad v||^2
            + tau4 sum m (v - f(x, g(x)))^2``

Set-up lives in :mod:`mrusfusion.problem`, the iterations in :mod:`mrusfusion.palm`, the
single-modality baselines in :mod:`mrusfusion.baselines`.
"""
from __future__ import annotations

import contextvars
import time
from typing import Callable, Optional

import numpy as np

from . import _core
from ._config import get_num_threads
from ._validation import (as_image, as_mask, check_gamma, check_gradient, check_int,
                          check_scalar, check_spacing, check_weight, default_direction,
                          difference_weights, infer_ratios)
from .fourier import DEFAULT_PLANNER, PLANNERS
from .operators import as_psf
from .palm import DEFAULT_MAX_ITER, DEFAULT_TOL, PalmOptions, run_palm
from .link import MAX_DEGREE, Link, n_coeffs
from .problem import LINKS, build_problem
from .progress import ProgressBar
from .result import FusionResult, IterationState

__all__ = ["fuse", "FusionResult", "IterationState", "DEFAULT_MAX_ITER", "DEFAULT_TOL"]

# The kernel backend of the next fuse() in this context: the compiled core, or its NumPy twins
# for the benchmark (fuse_with_kernels). Not a parameter of the public fuse().
_KERNELS: contextvars.ContextVar = contextvars.ContextVar("mrusfusion_kernels", default=_core)


def _rescaled(img: np.ndarray, scale: float, name: str) -> np.ndarray:
    """Scale one of our own buffers back to input units, in place (no temporary image)."""
    with np.errstate(over="ignore", invalid="ignore"):
        img *= img.dtype.type(scale)
    if not np.isfinite(img).all():
        raise ValueError(f"the result is not finite when scaled back by the maximum of `{name}` "
                         f"({scale:.3g}); divide `{name}` by a constant and multiply the result "
                         "back")
    return img


def _register(mr, us, mask, ratio, register):
    """``fuse(register=...)``: the US registered to the MR, and the mask of its support."""
    transforms = ("translation", "rigid", "affine")
    if register is True:
        register = "rigid"
    if not isinstance(register, str) or register not in transforms:
        raise ValueError(f"`register` must be True, False or one of {transforms}, got "
                         f"{register!r}")
    from .registration.register import register_for_fusion

    return register_for_fusion(mr, us, mask=mask, ratio=ratio, transform=register)


def _degree_of(coeffs) -> int:
    """The degree whose link has as many coefficients as ``coeffs``."""
    n = np.size(coeffs)
    for d in range(MAX_DEGREE + 1):
        if n_coeffs(d) == n:
            return d
    raise ValueError(f"`coeffs` has {n} values, which is no degree's count ((d + 1)(d + 2) / 2 "
                     f"for d = 0..{MAX_DEGREE}); pass `degree` too")


def _common_dtype(*arrays) -> np.dtype:
    if all(a.dtype == np.float32 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def fuse(mr, us, psf=None, *, ratio=None, degree: Optional[int] = None,
         link="global", tau1: Optional[float] = None,
         tau2: Optional[float] = None, tau3: Optional[float] = None, tau4: Optional[float] = None,
         gamma: Optional[float] = None, gradient: str = "directional",
         scan_direction=None, eps: float = 1e-3, coeffs=None, mask=None, spacing=None,
         max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, vstep_tol: float = 1e-5,
         backtrack: float = 2.0, gamma2: float = 1.1, L0: Optional[float] = None,
         callback: Optional[Callable] = None, progress: bool = False,
         inertial: bool = True, refit_link: bool = False, threads: Optional[int] = None,
         planner_effort: str = DEFAULT_PLANNER, register=False) -> FusionResult:
    """Fuse an MR image with a registered US image (El Mansouri et al. 2020).

    Super-resolves the MR image and despeckles the US image at once by minimising

    ``psi(x, v) = 1/2||y_m - S C x||^2 + tau1||grad x||^2
    + tau2 sum[exp(y_u - v) - gamma (y_u - v)] + tau3||grad v||^2 + tau4||v - f(x, g(x))||^2``

    with proximal alternating linearised minimisation (PALM) and backtracking on the x-step.

    Parameters
    ----------
    mr : array_like, shape (m1, m2) or (m1, m2, m3)
        Observed MR image or volume (low resolution).
    us : array_like, shape (s1 m1, s2 m2) or (s1 m1, s2 m2, s3 m3)
        Observed B-mode (log-compressed) US image or volume, registered to ``mr``, of the same
        dimensionality.
    psf : array_like or (size, variance), optional
        MR point-spread function of the images' dimensionality; default a Gaussian of side 9
        and variance 4 on every axis (the paper's 9x9). ``(size, variance)``: a Gaussian, the
        variance a number or one per axis (fine-grid pixels). The only option that may be
        given positionally, so ``fuse(*mrusfusion.sample_pair())`` uses the sample pair's own
        blur.
    ratio : int or tuple of int, optional
        Decimation ratio ``s``, one for every axis or one per axis; inferred per axis from the
        shapes when omitted.
    degree : int or None
        Degree of the polynomial link (paper: 3 on simulations, 4 on real data; ``degree=4``
        reproduces the paper). ``None`` (default): the smallest degree within one standard error
        of the best blocked spatial cross-validation error (DESIGN 12.1); degree 1 when
        cross-validation cannot run (``res.link_choice`` says why).
    link : {"global", "local"} or Link
        ``"global"``: one polynomial for the whole image (the paper). ``"local"``: coefficients
        that vary smoothly over a grid of knots (El Mansouri et al., ICIP 2020; DESIGN 12.2),
        knot spacing and smoothness chosen by blocked cross-validation, which may choose the
        global link. A fitted link (:func:`mrusfusion.link.fit_local_link`,
        :func:`mrusfusion.fit_polynomial`) is used as given.
    tau1, tau2, tau3, tau4 : float, optional
        Weights of the objective, exactly as in the paper. ``None`` (default) derives each from
        the data (:mod:`mrusfusion.weights`): the MR term is read as a Gaussian likelihood whose
        noise variance ``sigma_m^2`` GCV measures; the US term as a log-Rayleigh likelihood whose
        scale is measured on a Haar band; the coupling from the link's fit residual. What each
        does: ``tau1`` smooths ``x`` (larger: blurrier, less MR noise); ``tau2`` ties ``v`` to the
        US data (larger: more speckle kept); ``tau3`` smooths ``v``; ``tau4`` couples the two
        (paper Fig. 8: a large ``tau4`` makes the result US-like, sharper interfaces with more
        speckle; a small one MR-like, higher contrast-to-noise with softer interfaces).
    gamma : float, optional
        Log-Rayleigh parameter; ``None``: ``E[exp(b log R)]`` from the measured noise scale.
    gradient : {"directional", "magnitude"}
        ``g`` of the link: derivative along ``scan_direction`` (the paper) or the gradient
        magnitude (the authors' code).
    scan_direction : tuple of float, optional
        One component per axis, in physical space: ``(u_v, u_h)`` for an image; default
        axial, down the first axis: ``(1, 0)`` (down the rows), ``(1, 0, 0)`` for a volume (as
        the command line's default).
    eps : float
        Smoothing of the gradient magnitude.
    coeffs : array_like, optional
        Link coefficients (scaled images); fitted on the bicubic MR when omitted. Without
        ``degree``, the degree is read from their number.
    mask : array_like of bool, optional
        Pixels (voxels) where US data exist, shape of ``us`` (a fan or cone for 3-D probes);
        outside it ``x`` takes the MR information only.
    spacing : float or tuple of float, optional
        The fine (US) grid's voxel size, one per axis (mm, or any unit): the differences of
        every term are weighted by ``h_ref / h_a`` with ``h_ref = min h`` (DESIGN.md 11), and
        the scan direction is a unit vector in physical space. None: isotropic.
    max_iter : int
        Iteration cap.
    tol : float
        Stop when the relative changes of both ``x`` and ``v`` fall below ``tol``.
    vstep_tol : float
        Relative accuracy of each v-step solve.
    backtrack : float
        Factor ``lambda`` > 1 of the backtracking on ``L``.
    gamma2 : float
        ``d_k = gamma2 * 2 tau4`` in the v-step (> 1).
    L0 : float, optional
        Initial ``L`` (default ``2 tau4``).
    refit_link : bool
        Treat the link coefficients as a third block (DESIGN 12.3): after each v-step they are
        refitted exactly to the current ``x`` and ``v``, so ``psi`` still never increases.
    inertial : bool
        Inertial (accelerated) PALM: each iteration starts from the extrapolated point
        ``x_k + beta_k (x_k - x_{k-1})`` (and likewise ``v``) with FISTA weights ``beta_k``
        (Pock and Sabach 2016). A monotone safeguard redoes any step that would raise ``psi`` as
        a plain PALM step and restarts the momentum, so ``psi`` still never increases.
        ``False`` gives the paper's plain PALM.
    callback : callable, optional
        ``callback(state)`` after each iteration with an :class:`IterationState`; raising
        ``StopIteration`` stops the solver cleanly.
    progress : bool
        Show a progress bar (tqdm if installed) on stderr.
    threads : int, optional
        Threads for OpenMP kernels and FFTs (default: ``MRUSFUSION_NUM_THREADS``, else all
        cores, one per 65536 pixels at most: small images run faster on fewer threads).
    planner_effort : str
        FFTW planner flag. The default ``"FFTW_ESTIMATE"`` plans in milliseconds and gives
        bit-reproducible results. ``"FFTW_MEASURE"`` times candidate algorithms first (about
        1 s at 600x600, 2-3 s at 1200x1200 and 7 s at 2400x2400 on a 2-core machine, once per
        size, dtype and thread count in a process, since FFTW keeps what it learnt); its plans
        were up to 20-30% faster from 1200x1200 up, which pays off over several fusions of one
        size. Its choice depends on timings, so results may differ in the last bits between runs.
    register : bool or {"translation", "rigid", "affine"}
        Register the US to the MR first (:func:`mrusfusion.register`, by the link's explained
        variance; ``True`` means ``"rigid"``), then fuse the registered US. The mask becomes
        ``mask`` times the pixels the moved US covers (never zero-filled), and
        ``res.registration`` holds the transform. A failed registration raises ``ValueError``.

    Returns
    -------
    FusionResult

    Raises
    ------
    ValueError, TypeError
        On invalid input (shapes, dtypes, non-finite values, parameters out of range).

    Notes
    -----
    float32 inputs (both) are computed in float32 end to end; anything else in float64. Inputs
    are divided by their maxima; ``x`` and ``v`` are returned in the input scales.

    x-step: ``G = grad_x H``; for ``L = L_k/lambda, L_k, lambda L_k, ...`` solve
    ``x+ = argmin l(x) + L/2||x - (x_k - G/L)||^2`` in closed form (Fourier/Woodbury) until
    ``H(x+) <= H(x_k) + <x+ - x_k, G> + L/2||x+ - x_k||^2`` (floor ``L >= max(1e-6, 1e3 eps)``,
    eps the machine epsilon of the working dtype).
    v-step: ``d_k = gamma2 2 tau4``, ``w = v_k - 2 tau4 (v_k - f(x_{k+1})) / d_k``,
    ``v+ = argmin G(v) + d_k/2||v - w||^2`` by Newton-PCG. ``psi`` never increases.

    References
    ----------
    .. [1] O. El Mansouri et al., "Fusion of Magnetic Resonance and Ultrasound Images for
       Endometriosis Detection", IEEE Trans. Image Process. 29 (2020) 5324-5335.
    .. [2] J. Bolte, S. Sabach, M. Teboulle, "Proximal alternating linearized minimization for
       nonconvex and nonsmooth problems", Math. Program. 146 (2014) 459-494.
    .. [4] T. Pock, S. Sabach, "Inertial proximal alternating linearized minimization (iPALM)
       for nonconvex and nonsmooth problems", SIAM J. Imaging Sci. 9 (2016) 1756-1787.
    .. [3] N. Zhao et al., "Fast single image super-resolution using a new analytical solution
       for l2-l2 problems", IEEE Trans. Image Process. 25 (2016) 3683-3697.

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion import fuse, simulate, phantom
    >>> sim = simulate(phantom((32, 32)), ratio=2, seed=0)
    >>> res = fuse(sim.mr, sim.us, max_iter=20)
    >>> res.x.shape, bool(np.all(np.diff(res.objective) <= 1e-9 * abs(res.objective[0])))
    ((32, 32), True)
    """
    t_start = time.perf_counter()
    registration = None
    if register is not False and register is not None:
        us, mask, registration = _register(mr, us, mask, ratio, register)
    y_m = as_image(mr, "mr", ndims=(2, 3))
    y_u = as_image(us, "us", ndims=(2, 3))
    if y_m.ndim != y_u.ndim:
        raise ValueError(f"`mr` must be a {y_u.ndim}-D array, got shape {y_m.shape}: `mr` and "
                         f"`us` (shape {y_u.shape}) must have the same dimensionality")
    dtype = _common_dtype(y_m, y_u)
    y_m, y_u = y_m.astype(dtype, copy=False), y_u.astype(dtype, copy=False)
    ratios = infer_ratios(y_m.shape, y_u.shape, ratio)
    s = ratios[0] if len(set(ratios)) == 1 else ratios
    scan_direction = default_direction(scan_direction, y_u.ndim)
    spacing = check_spacing(spacing, y_u.ndim)
    d = None if degree is None else check_int(degree, "degree", low=1, high=MAX_DEGREE)
    if isinstance(link, str):
        if link not in LINKS:
            raise ValueError(f"`link` must be one of {', '.join(map(repr, LINKS))} or a fitted "
                             f"link, got {link!r}")
    elif not isinstance(link, Link):
        raise TypeError(f"`link` must be a string or a fitted link (mrusfusion.link.Link), got "
                        f"{type(link).__name__}")
    if link == "local" and y_u.ndim == 3:
        raise ValueError("`link` = 'local' works on images only; use link='global' for volumes")
    if link == "local" and difference_weights(spacing) is not None:
        raise ValueError("`link` = 'local' works on isotropic grids only; use link='global' with "
                         "an anisotropic `spacing`")
    if coeffs is not None and d is None:
        d = _degree_of(coeffs)
    gradient = check_gradient(gradient)
    for name, val in (("tau1", tau1), ("tau3", tau3)):
        check_weight(val, name, allow_zero=True)
    for name, val in (("tau2", tau2), ("tau4", tau4)):
        check_weight(val, name)
    check_gamma(gamma)
    eps = check_scalar(eps, "eps", positive=True, high=1.0)
    options = PalmOptions(max_iter=max_iter, tol=tol, vstep_tol=vstep_tol, backtrack=backtrack,
                          gamma2=gamma2, L0=L0, inertial=inertial, refit_link=refit_link)
    if planner_effort not in PLANNERS:
        raise ValueError(f"`planner_effort` must be one of {', '.join(PLANNERS)}; "
                         f"got {planner_effort!r}")
    if callback is not None and not callable(callback):
        raise TypeError("`callback` must be callable")
    nt = get_num_threads(threads, pixels=y_u.size)
    m = as_mask(mask, "mask", y_u.shape, dtype)
    problem = build_problem(y_m, y_u, ratio=s, degree=d, psf=as_psf(psf, y_u.shape),
                            gradient=gradient, scan_direction=scan_direction, eps=eps,
                            spacing=spacing,
                            coeffs=coeffs, mask=m, threads=nt, planner_effort=planner_effort,
                            link=link,
                            tau1=tau1, tau2=tau2, tau3=tau3, tau4=tau4, gamma=gamma,
                            kernels=_KERNELS.get())
    t_setup = time.perf_counter() - t_start
    ms, us_ = problem.mr_scale, problem.us_scale
    bar = ProgressBar(options.max_iter) if progress else None

    def report(state):
        if bar is not None:
            bar(state)
        if callback is not None:
            callback(IterationState(state.iteration, state.x, state.v, state.objective,
                                    state.lipschitz, ms, us_))

    try:
        out = run_palm(problem, options, report if (bar or callback) else None)
    finally:
        if bar is not None:
            bar.close()
    timings = dict(out.timings, setup=t_setup, total=time.perf_counter() - t_start)
    link = out.link
    explained = link.explained_variance(out.x, out.v, problem.mask, threads=nt)
    return FusionResult(
        x=_rescaled(out.x, ms, "mr"), v=_rescaled(out.v, us_, "us"),
        coeffs=link.coeffs.copy(), link=link, objective=out.objective,
        lipschitz=out.lipschitz, n_iter=out.n_iter, converged=out.converged,
        stop_reason=out.stop_reason, mr_scale=ms, us_scale=us_, ratio=s,
        weights=problem.weights, x_init=_rescaled(problem.x0, ms, "mr"), timings=timings,
        vstep_newton=out.vstep_newton, vstep_cg=out.vstep_cg, trials=out.trials,
        restarts=out.restarts, explained=out.explained, link_choice=problem.link_choice,
        registration=registration,
        link_explained=explained)


def fuse_with_kernels(kernels, mr, us, **kwargs) -> FusionResult:
    """:func:`fuse` on another kernel backend, for the benchmark.

    ``kernels`` is ``mrusfusion._core`` or its NumPy twins ``mrusfusion._reference``: the same
    iterations, to compare their cost. Not part of the public API.
    """
    token = _KERNELS.set(kernels)
    try:
        return fuse(mr, us, **kwargs)
    finally:
        _KERNELS.reset(token)
