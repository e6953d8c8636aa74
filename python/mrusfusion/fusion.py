"""MR/US fusion by PALM (DESIGN.md sections 4-7), and the two single-modality baselines.

``psi(x, v) = 1/2 ||y_m - S C x||^2 + tau1 ||grad x||^2
            + tau2 sum m [exp(y_u - v) - gamma (y_u - v)] + tau3 ||grad v||^2
            + tau4 sum m (v - f(x, g(x)))^2``
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import _core
from ._config import get_num_threads
from ._validation import (as_image, as_mask, check_gradient, check_int, check_scalar,
                          infer_ratio)
from .fourier import FourierProblem
from .operators import as_psf, bicubic_upsample, make_gradient
from .polynomial import MAX_DEGREE, PolynomialLink, fit_polynomial
from .vstep import VStepSolver
from .weights import Weights, estimate_weights, gcv_tau1, sure_rho, us_noise_scale, LOG_RAYLEIGH_STD

__all__ = ["fuse", "super_resolve", "despeckle", "FusionResult", "IterationState"]

_LIPSCHITZ_FLOOR = 1e-6
#: Largest weight (and gamma) accepted: the images are in solver units (maximum 1), and beyond
#: ~1e20 the float32 v-step overflows.
_MAX_WEIGHT = 1e12
#: Defaults of :func:`fuse`, shared with the command line. With inertial PALM, tol = 1e-4 stopped
#: simulated cases after 39-131 iterations within 0.06 dB PSNR of tol = 1e-5 (which took up to
#: 545 iterations); 500 leaves room for slower cases.
DEFAULT_MAX_ITER = 500
DEFAULT_TOL = 1e-4


@dataclass(frozen=True)
class FusionResult:
    """Outcome of :func:`fuse`.

    Attributes
    ----------
    x : ndarray
        Fused image on the US grid, in the MR intensity scale of the input.
    v : ndarray
        Its US-domain counterpart (despeckled US estimate carrying MR contrast), US scale.
    coeffs : ndarray
        Polynomial link coefficients (q-major order) between the scaled images
        ``x / mr_scale`` and ``v / us_scale``.
    link : PolynomialLink
        The link, with its fit residual.
    objective : ndarray
        ``psi(x_k, v_k)`` for k = 0..n_iter (solver units), non-increasing.
    lipschitz : ndarray
        Accepted step constant ``L`` of each x-step.
    n_iter : int
    converged : bool
        True when the relative-change rule was met.
    stop_reason : str
    message : str
    mr_scale, us_scale : float
        The inputs were divided by these (their maxima) before solving.
    ratio : int
    weights : Weights
        ``tau1``..``tau4`` and ``gamma`` used, how each was obtained, and the measured noise levels.
    x_init : ndarray
        Starting point (aligned bicubic interpolation of the MR image), MR scale.
    timings : dict
        Seconds spent in set-up, x-steps, v-steps, evaluations of the link and its Jacobian
        (``link``, part of both steps), rejected inertial steps, and in total.
    vstep_newton, vstep_cg : ndarray
        Newton and CG iterations of each v-step.
    trials : ndarray
        Number of x-step solves of each iteration (1 + the backtracking increases of ``L``).
    restarts : int
        Inertial steps rejected by the monotone safeguard (redone as plain PALM steps).
    """

    x: np.ndarray
    v: np.ndarray
    coeffs: np.ndarray
    link: PolynomialLink
    objective: np.ndarray
    lipschitz: np.ndarray
    n_iter: int
    converged: bool
    stop_reason: str
    mr_scale: float
    us_scale: float
    ratio: int
    weights: Weights
    x_init: np.ndarray
    timings: dict = field(default_factory=dict)
    vstep_newton: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    vstep_cg: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    trials: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    restarts: int = 0

    @property
    def message(self) -> str:
        return f"{self.stop_reason} after {self.n_iter} iteration(s)"

    @property
    def tau1(self) -> float:
        return self.weights.tau1

    @property
    def tau2(self) -> float:
        return self.weights.tau2

    @property
    def tau3(self) -> float:
        return self.weights.tau3

    @property
    def tau4(self) -> float:
        return self.weights.tau4

    @property
    def gamma(self) -> float:
        return self.weights.gamma


class IterationState:
    """What a ``callback`` of :func:`fuse` sees after each iteration (images in input units)."""

    def __init__(self, k, x, v, psi, L, mr_scale, us_scale):
        self.iteration, self.objective, self.lipschitz = k, psi, L
        self._x, self._v, self._ms, self._us = x, v, mr_scale, us_scale

    @property
    def x(self) -> np.ndarray:
        return self._x * self._ms

    @property
    def v(self) -> np.ndarray:
        return self._v * self._us


def _scale(img: np.ndarray, name: str) -> float:
    m = float(img.max())
    if not m > 0:
        raise ValueError(f"`{name}` must have a positive maximum (it is divided by its maximum), got {m:g}")
    return m


class _Progress:
    def __init__(self, enabled: bool, total: int):
        self.bar = None
        self.enabled = enabled
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc="fuse", unit="it", file=sys.stderr)
            except ImportError:
                pass

    def update(self, k: int, psi: float):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(psi=f"{psi:.6g}", refresh=False)
            self.bar.update(1)
        elif k % 10 == 0:
            print(f"fuse: iteration {k}, psi = {psi:.8g}", file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _rescaled(img: np.ndarray, scale: float) -> np.ndarray:
    """Scale one of our own buffers back to input units, in place (no temporary image)."""
    img *= img.dtype.type(scale)
    return img


def _common_dtype(*arrays) -> np.dtype:
    return np.dtype(np.float32) if all(a.dtype == np.float32 for a in arrays) else np.dtype(np.float64)


def fuse(mr, us, *, ratio: Optional[int] = None, degree: int = 4, tau1: Optional[float] = None,
         tau2: Optional[float] = None, tau3: Optional[float] = None, tau4: Optional[float] = None,
         gamma: Optional[float] = None, psf=None, gradient: str = "directional",
         scan_direction=(1.0, 0.0), eps: float = 1e-3, coeffs=None, mask=None,
         max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, vstep_tol: float = 1e-5,
         backtrack: float = 2.0, gamma2: float = 1.1, L0: Optional[float] = None,
         callback: Optional[Callable] = None, progress: bool = False,
         inertial: bool = True, threads: Optional[int] = None,
         planner_effort: str = "FFTW_ESTIMATE", _backend: str = "native") -> FusionResult:
    """Fuse an MR image with a registered US image (El Mansouri et al. 2020).

    Super-resolves the MR image and despeckles the US image at once by minimising

    ``psi(x, v) = 1/2||y_m - S C x||^2 + tau1||grad x||^2
    + tau2 sum[exp(y_u - v) - gamma (y_u - v)] + tau3||grad v||^2 + tau4||v - f(x, g(x))||^2``

    with proximal alternating linearised minimisation (PALM) and backtracking on the x-step.

    Parameters
    ----------
    mr : array_like, shape (m1, m2)
        Observed MR image (low resolution).
    us : array_like, shape (s m1, s m2)
        Observed B-mode (log-compressed) US image, registered to ``mr``.
    ratio : int, optional
        Decimation ratio ``s``; inferred from the shapes when omitted.
    degree : int
        Degree of the polynomial link (paper: 3 on simulations, 4 on real data).
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
    psf : array_like or (size, variance), optional
        MR point-spread function; default 9x9 Gaussian of variance 4 (the paper's).
    gradient : {"directional", "magnitude"}
        ``g`` of the link: derivative along ``scan_direction`` (the paper) or the gradient
        magnitude (the authors' code).
    scan_direction : (float, float)
        ``(u_v, u_h)``; default axial, down the rows.
    eps : float
        Smoothing of the gradient magnitude.
    coeffs : array_like, optional
        Link coefficients (scaled images); fitted on the bicubic MR when omitted.
    mask : array_like of bool, optional
        Pixels where US data exist; outside it ``x`` takes the MR information only.
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
    y_m = as_image(mr, "mr")
    y_u = as_image(us, "us")
    dtype = _common_dtype(y_m, y_u)
    y_m, y_u = y_m.astype(dtype, copy=False), y_u.astype(dtype, copy=False)
    s = infer_ratio(y_m.shape, y_u.shape, ratio)
    d = check_int(degree, "degree", low=1, high=MAX_DEGREE)
    gradient = check_gradient(gradient)
    for name, val in (("tau1", tau1), ("tau2", tau2), ("tau3", tau3), ("tau4", tau4)):
        check_scalar(val, name, nonnegative=True, allow_none=True, high=_MAX_WEIGHT)
    if tau4 is not None and tau4 <= 0:
        raise ValueError("`tau4` must be > 0 (the coupling; tau4 = 0 decouples the problems: use "
                         "super_resolve and despeckle)")
    if tau2 is not None and tau2 <= 0:
        raise ValueError("`tau2` must be > 0")
    check_scalar(gamma, "gamma", positive=True, allow_none=True, high=_MAX_WEIGHT)
    max_iter = check_int(max_iter, "max_iter", low=0)
    tol = check_scalar(tol, "tol", nonnegative=True)
    vstep_tol = check_scalar(vstep_tol, "vstep_tol", positive=True)
    lam = check_scalar(backtrack, "backtrack", positive=True)
    if lam <= 1:
        raise ValueError(f"`backtrack` must be > 1, got {lam}")
    gamma2 = check_scalar(gamma2, "gamma2", positive=True)
    if gamma2 <= 1:
        raise ValueError(f"`gamma2` must be > 1, got {gamma2}")
    check_scalar(L0, "L0", positive=True, allow_none=True)
    if planner_effort not in ("FFTW_ESTIMATE", "FFTW_MEASURE", "FFTW_PATIENT", "FFTW_EXHAUSTIVE"):
        raise ValueError("`planner_effort` must be one of FFTW_ESTIMATE, FFTW_MEASURE, "
                         f"FFTW_PATIENT, FFTW_EXHAUSTIVE; got {planner_effort!r}")
    if callback is not None and not callable(callback):
        raise TypeError("`callback` must be callable")
    nt = get_num_threads(threads, pixels=y_u.size)
    m = as_mask(mask, "mask", y_u.shape, dtype)
    psf_arr = as_psf(psf, y_u.shape)

    mr_scale, us_scale = _scale(y_m, "mr"), _scale(y_u, "us")
    ym = y_m / dtype.type(mr_scale)
    yu = y_u  # as_image made a private copy: scale it in place
    yu /= dtype.type(us_scale)
    if _backend not in ("native", "numpy"):
        raise ValueError(f"`_backend` must be 'native' or 'numpy', got {_backend!r}")
    K = _core
    if _backend == "numpy":
        from . import _reference as K
    fp = FourierProblem(y_u.shape, s, psf_arr, dtype, nt, ym, planner_effort, kernels=K)
    x0 = bicubic_upsample(ym, s)

    if coeffs is None:
        link = fit_polynomial(x0, yu, d, gradient=gradient, scan_direction=scan_direction,
                              eps=eps, mask=m, threads=nt)
    else:
        link = PolynomialLink(coeffs, d, gradient, scan_direction, eps)
    gm = make_gradient(gradient, scan_direction, eps)
    cf = link.coeffs.astype(dtype)
    poly = (cf, d, gm.mode, gm.uv, gm.uh, gm.eps)
    x0c = np.ascontiguousarray(x0, dtype=dtype)
    n_fit = float(m.sum()) if m is not None else float(yu.size)
    resvar = K.coupling_eval(x0c, *poly, yu, m, None, None, None, nt) / n_fit
    weights = estimate_weights(ym, yu, s, fp.abs_lam2, resvar, tau1=tau1, tau2=tau2, tau3=tau3,
                               tau4=tau4, gamma=gamma, mask=m)
    t1, t2, t3, t4, gam = weights.tau1, weights.tau2, weights.tau3, weights.tau4, weights.gamma

    # Buffers, allocated once (FFTW-aligned). Iterates: current, previous, extrapolated and trial
    # x; current, previous and trial v (the extrapolated v is built in the trial buffer). Link
    # values f, f_x, f_g at the base point (current or extrapolated x) and at the trial x.
    # Spectra of x: current, previous, extrapolated, trial, and of the coupling gradient. Images
    # idle during the v-step lend themselves to its solver. See the README's working set.
    R, S = fp.empty_real, fp.empty_spec
    x, x_prev, xe, xt = R(), R(), R(), R()
    v, v_prev, vt = R(), R(), R()
    np.copyto(x, x0c)
    np.copyto(v, yu)
    X, X_prev, Xe, Xt, Gs = fp.forward(x), S(), S(), S(), S()
    f, fx, fg = R(), R(), R()
    ft, fxt, fgt = R(), R(), R()
    G, w1 = R(), R()
    w2 = R() if gm.mode == 1 else None
    vsolver = VStepSolver(fp, yu, m, t2, t3, gam, tol=vstep_tol)
    del x0c

    def coupling(xx, vv, ff, ffx, ffg):
        """sum m (vv - f(xx))^2, writing f, f_x, f_g at xx."""
        return K.coupling_eval(xx, *poly, vv, m, ff, ffx, ffg, nt)

    def objective(xx, XX, Hsum, g_value):
        return 0.5 * fp.mr_residual(XX) + t1 * K.squared_gradient_norm(xx, nt) + g_value + t4 * Hsum

    Hsum = coupling(x, v, f, fx, fg)
    if m is not None:
        # Outside the US field of view v starts from the link's prediction f(x_0), so US values
        # there (often padding) have no influence at all.
        v -= (1 - m) * (v - f)
        Hsum = coupling(x, v, f, fx, fg)
    psi = objective(x, X, Hsum, vsolver.value(v))
    if not np.isfinite(psi):
        raise ValueError("the objective is not finite at the starting point; check the inputs "
                         "and the weights")
    objective_hist, lip_hist, newton_hist, cg_hist, trial_hist = [psi], [], [], [], []
    # The closed-form x-step divides by L at zero frequency: below ~1e3 eps its rounding error
    # outweighs the step (in float32 at L = 1e-6, PALM raised psi and stalled).
    floor = max(_LIPSCHITZ_FLOOR, 1e3 * float(np.finfo(dtype).eps))
    L = float(L0) if L0 is not None else max(2.0 * t4, floor)
    t_setup = time.perf_counter() - t_start
    t_x = t_v = t_link = t_rejected = 0.0
    converged, stop_reason = False, "maximum number of iterations reached"
    bar = _Progress(progress, max_iter)
    eps_round = float(4 * np.finfo(dtype).eps)  # a Python float: np.float32 would overflow
    t_mom, have_prev, n_restarts, base_is_current = 1.0, False, 0, True
    n_up = 0  # consecutive plain steps redone because rounding raised psi
    try:
        k = 0
        while k < max_iter:
            # Inertial extrapolation (iPALM, Pock and Sabach 2016) with FISTA weights; the
            # spectrum extrapolates linearly too, so it costs no FFT.
            beta, t_next = 0.0, 1.0
            if inertial and have_prev:
                t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t_mom * t_mom))
                beta = (t_mom - 1.0) / t_next
            tl = time.perf_counter()
            if beta > 0:
                # y = (1 + beta) y_k - beta y_{k-1}, one pass each (spectra as real views).
                K.axpby(x, x_prev, 1.0 + beta, -beta, xe, nt)
                K.axpby(fp.flat(X), fp.flat(X_prev), 1.0 + beta, -beta, fp.flat(Xe), nt)
                K.axpby(v, v_prev, 1.0 + beta, -beta, vt, nt)
                xb, Xb = xe, Xe
                Hb = coupling(xb, vt, f, fx, fg)  # the base set now holds the extrapolated point
                base_is_current = False
            else:
                xb, Xb = x, X
                np.copyto(vt, v)
                if not base_is_current:  # after a rejected inertial step
                    Hsum = coupling(x, v, f, fx, fg)
                    base_is_current = True
                Hb = Hsum
            vb = vt
            t_link += time.perf_counter() - tl
            # x-step with backtracking (DESIGN section 5.1) from the base point: the FFTs of
            # x_b and of the gradient are shared by all trials, each costing one inverse FFT.
            ta = time.perf_counter()
            K.jacobian_transpose(xb, vb, f, m, fx, fg, gm.mode, gm.uv, gm.uh, gm.eps,
                                 -2.0 * t4, w1, w2, G, nt)
            t_link += time.perf_counter() - ta
            fp.forward(G, Gs)
            H0 = t4 * Hb
            L = max(L / lam, floor)
            for n_trials in range(1, 201):
                fp.solve(L, t1, Xb, Gs, out=Xt, image=xt)
                tl = time.perf_counter()
                Ht = t4 * coupling(xt, vb, ft, fxt, fgt)
                t_link += time.perf_counter() - tl
                dxg, dxx, _ = K.diff_stats(xt, xb, G, None, nt)
                bound = H0 + dxg + 0.5 * L * dxx
                if Ht <= bound + eps_round * (abs(H0) + abs(dxg) + 0.5 * L * dxx):
                    break
                L *= lam
            else:
                stop_reason = "backtracking on L failed"
                break
            tb = time.perf_counter()
            t_x += tb - ta
            # v-step (DESIGN section 5.2) from the base point.
            dk = gamma2 * 2.0 * t4
            w = G  # the gradient is spent; its buffer holds the v-step target
            K.prox_target(vb, ft, m, 2.0 * t4 / dk, w, nt)
            idle = [w1, xe, x_prev, v_prev, f, fx, fg] + ([w2] if w2 is not None else [])
            idle += [fp.real_view(Xe), fp.real_view(X_prev), fp.real_view(Gs)]
            base_is_current = False  # the base set is lent to the v-step solver
            info = vsolver.solve(vt, w, dk, scratch=idle)
            _, Hsum_t, _ = K.diff_stats(vt, ft, None, m, nt)
            psi_new = objective(xt, Xt, Hsum_t, info.g_value)
            t_v += time.perf_counter() - tb
            if beta > 0 and not psi_new <= psi:
                # Monotone safeguard: the extrapolated step raised psi; restart the momentum and
                # redo the iteration as a plain PALM step (which cannot raise psi).
                t_mom, have_prev, n_restarts = 1.0, False, n_restarts + 1
                t_rejected += time.perf_counter() - ta
                continue
            if beta == 0 and psi_new > psi + eps_round * abs(psi) and n_up < 30:
                # Rounding in the x-step (float32 at small L) raised psi: redo the step with a
                # larger L (the next pass divides L by lam once), which shortens it.
                L *= lam * lam
                n_up += 1
                t_rejected += time.perf_counter() - ta
                continue
            n_up = 0
            if not np.isfinite(psi_new):
                stop_reason = "objective became non-finite"  # keep the last finite iterate
                break
            k += 1
            _, dxx, xx = K.diff_stats(xt, x, None, None, nt)
            _, dvv, vv = K.diff_stats(vt, v, None, None, nt)
            rel_x = np.sqrt(dxx / xx) if xx > 0 else np.sqrt(dxx)
            rel_v = np.sqrt(dvv / vv) if vv > 0 else np.sqrt(dvv)
            # Rotate buffers: current -> previous, trial -> current.
            x_prev, x, xt = x, xt, x_prev
            X_prev, X, Xt = X, Xt, X_prev
            v_prev, v, vt = v, vt, v_prev
            f, ft, fx, fxt, fg, fgt = ft, f, fxt, fx, fgt, fg
            base_is_current = True
            Hsum, psi = Hsum_t, psi_new
            if inertial and have_prev:
                t_mom = t_next
            have_prev = True
            newton_hist.append(info.newton_iter)
            cg_hist.append(info.cg_iter)
            trial_hist.append(n_trials)
            objective_hist.append(psi)
            lip_hist.append(L)
            bar.update(k, psi)
            if callback is not None:
                try:
                    callback(IterationState(k, x, v, psi, L, mr_scale, us_scale))
                except StopIteration:
                    stop_reason = "stopped by callback"
                    break
            if rel_x < tol and rel_v < tol:
                converged, stop_reason = True, f"relative change of x and v below tol={tol:g}"
                break
    finally:
        bar.close()
    n_iter = len(objective_hist) - 1
    timings = {"setup": t_setup, "x_step": t_x, "v_step": t_v, "link": t_link,
               "rejected": t_rejected, "total": time.perf_counter() - t_start}
    return FusionResult(
        x=_rescaled(x, mr_scale), v=_rescaled(v, us_scale),
        coeffs=link.coeffs.copy(), link=link, objective=np.asarray(objective_hist),
        lipschitz=np.asarray(lip_hist), n_iter=n_iter, converged=converged,
        stop_reason=stop_reason, mr_scale=mr_scale, us_scale=us_scale, ratio=s, weights=weights,
        x_init=_rescaled(x0.astype(dtype, copy=False), mr_scale), timings=timings,
        vstep_newton=np.asarray(newton_hist, int), vstep_cg=np.asarray(cg_hist, int),
        trials=np.asarray(trial_hist, int), restarts=n_restarts)


def super_resolve(mr, ratio: int, *, tau: Optional[float] = None, psf=None,
                  threads: Optional[int] = None, ridge: float = 1e-6) -> np.ndarray:
    """MR-only baseline: ``argmin_x 1/2||y_m - S C x||^2 + tau||grad x||^2`` in closed form.

    Parameters
    ----------
    mr : array_like, shape (m1, m2)
        Observed MR image.
    ratio : int
        Decimation ratio; the result has shape ``(ratio m1, ratio m2)``.
    tau : float, optional
        Weight of the squared-gradient penalty; ``None``: chosen by generalised cross-validation.
    psf : array_like or (size, variance), optional
        Default 9x9 Gaussian of variance 4.
    threads : int, optional
    ridge : float
        A small ``ridge/2 ||x||^2`` that makes the problem well posed at zero frequency.

    Returns
    -------
    ndarray
        Super-resolved image, in the input's intensity scale and dtype policy.

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
    y_m = as_image(mr, "mr")
    s = check_int(ratio, "ratio", low=1)
    check_scalar(tau, "tau", nonnegative=True, allow_none=True)
    ridge = check_scalar(ridge, "ridge", positive=True)
    shape = (y_m.shape[0] * s, y_m.shape[1] * s)
    nt = get_num_threads(threads, pixels=shape[0] * shape[1])
    scale = _scale(y_m, "mr")
    ym = y_m / y_m.dtype.type(scale)
    fp = FourierProblem(shape, s, as_psf(psf, shape), y_m.dtype, nt, ym, "FFTW_ESTIMATE")
    if tau is None:
        tau, _ = gcv_tau1(ym, s, fp.abs_lam2)
    X = fp.solve(ridge, tau)
    return np.array(fp.inverse(X) * y_m.dtype.type(scale))


def despeckle(us, *, tau2: Optional[float] = None, tau3: Optional[float] = None,
              gamma: Optional[float] = None, tol: float = 1e-6,
              threads: Optional[int] = None) -> np.ndarray:
    """US-only baseline: ``argmin_v tau2 sum[exp(y_u - v) - gamma (y_u - v)] + tau3||grad v||^2``.

    Parameters
    ----------
    us : array_like
        Observed log-compressed US image.
    tau2, tau3 : float, optional
        Weights; only ``tau3 / tau2`` matters. ``None``: ``tau2 = 1 / (gamma sigma_u^2)`` from
        the measured log-Rayleigh scale and ``tau3 = tau2 gamma rho`` with ``rho`` chosen by SURE.
    gamma : float, optional
        Log-Rayleigh parameter (default from the measured noise scale).
    tol : float
        Relative accuracy of the solution.
    threads : int, optional

    Returns
    -------
    ndarray
        Despeckled image in the input's intensity scale.

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
    y = as_image(us, "us")
    check_scalar(tau2, "tau2", positive=True, allow_none=True)
    check_scalar(tau3, "tau3", nonnegative=True, allow_none=True)
    check_scalar(gamma, "gamma", positive=True, allow_none=True)
    nt = get_num_threads(threads, pixels=y.size)
    scale = _scale(y, "us")
    yu = y / y.dtype.type(scale)
    b = us_noise_scale(yu)
    sigma_u2 = max(b * b * LOG_RAYLEIGH_STD**2, 1e-12)
    if gamma is None:
        from math import gamma as gamma_fn

        gamma = 2.0 ** (b / 2.0) * gamma_fn(1.0 + b / 2.0)
    if tau2 is None:
        tau2 = 1.0 / (gamma * sigma_u2)
    if tau3 is None:
        tau3 = tau2 * gamma * sure_rho(yu, sigma_u2)
    fp = FourierProblem(y.shape, 1, np.ones((1, 1)), y.dtype, nt, None, "FFTW_ESTIMATE")
    solver = VStepSolver(fp, yu, None, tau2, tau3, gamma, tol=tol, max_newton=100)
    v = fp.empty_real()
    np.copyto(v, yu)
    solver.solve(v)
    return np.array(v * y.dtype.type(scale))
