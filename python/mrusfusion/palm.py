"""The PALM engine: minimise ``psi(x, v)`` over a built :class:`~mrusfusion.problem.FusionProblem`.

DESIGN.md section 5, with inertia (Pock and Sabach 2016) and a monotone safeguard:

- x-step: ``G = grad_x H``; for ``L = L_k/lambda, L_k, lambda L_k, ...`` solve
  ``x+ = argmin l(x) + L/2||x - (x_k - G/L)||^2`` in closed form (section 6) until
  ``H(x+) <= H(x_k) + <x+ - x_k, G> + L/2||x+ - x_k||^2``;
- v-step: ``d_k = gamma2 2 tau4``, ``w = v_k - 2 tau4 (v_k - f(x_{k+1})) / d_k``,
  ``v+ = argmin G(v) + d_k/2||v - w||^2`` (section 7);
- ``psi`` never increases.

The engine knows nothing of input validation, scaling or progress display: it reports each
iteration to ``callback`` and returns raw iterates in solver units.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

import numpy as np

from ._validation import check_int, check_scalar
from .vstep import VStepSolver

__all__ = ["PalmOptions", "PalmOutput", "run_palm", "DEFAULT_MAX_ITER", "DEFAULT_TOL"]

#: With inertial PALM, tol = 1e-4 stopped simulated cases after 39-131 iterations within
#: 0.06 dB PSNR of tol = 1e-5 (which took up to 545 iterations); 500 leaves room for slower cases.
DEFAULT_MAX_ITER = 500
DEFAULT_TOL = 1e-4
#: Floor of the step constant L for images scaled to (0, 1] (DESIGN 5.1).
LIPSCHITZ_FLOOR = 1e-6


@dataclass(frozen=True)
class PalmOptions:
    """Solver options of :func:`run_palm` (validated on construction).

    Attributes
    ----------
    max_iter : int
        Iteration cap.
    tol : float
        Stop when the relative changes of both ``x`` and ``v`` fall below ``tol``.
    vstep_tol : float
        Relative accuracy of each v-step solve.
    backtrack : float
        Factor ``lambda > 1`` of the backtracking on ``L``.
    gamma2 : float
        ``d_k = gamma2 2 tau4`` in the v-step (> 1).
    L0 : float, optional
        Initial ``L`` (default ``2 tau4``).
    inertial : bool
        Inertial PALM with FISTA weights and a monotone safeguard; ``False``: plain PALM.
    refit_link : bool
        The link as a third block (DESIGN 12.3): after each v-step, the exact minimisation of
        ``H + tau4 penalty`` over the link coefficients (``link.refit``).
    """

    max_iter: int = DEFAULT_MAX_ITER
    tol: float = DEFAULT_TOL
    vstep_tol: float = 1e-5
    backtrack: float = 2.0
    gamma2: float = 1.1
    L0: Optional[float] = None
    inertial: bool = True
    refit_link: bool = False

    def __post_init__(self):
        object.__setattr__(self, "max_iter", check_int(self.max_iter, "max_iter", low=0))
        object.__setattr__(self, "tol", check_scalar(self.tol, "tol", nonnegative=True))
        object.__setattr__(self, "vstep_tol",
                           check_scalar(self.vstep_tol, "vstep_tol", positive=True, high=1.0))
        lam = check_scalar(self.backtrack, "backtrack", positive=True, high=1e6)
        if lam <= 1:
            raise ValueError(f"`backtrack` must be > 1, got {lam}")
        g2 = check_scalar(self.gamma2, "gamma2", positive=True, high=1e6)
        if g2 <= 1:
            raise ValueError(f"`gamma2` must be > 1, got {g2}")
        object.__setattr__(self, "backtrack", lam)
        object.__setattr__(self, "gamma2", g2)
        object.__setattr__(self, "L0", check_scalar(self.L0, "L0", positive=True,
                                                    allow_none=True, high=1e12))
        for name in ("inertial", "refit_link"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"`{name}` must be True or False, got {getattr(self, name)!r}")


@dataclass
class PalmOutput:
    """Raw outcome of :func:`run_palm`, in solver units (images divided by their maxima)."""

    x: np.ndarray
    v: np.ndarray
    objective: np.ndarray
    lipschitz: np.ndarray
    n_iter: int
    converged: bool
    stop_reason: str
    timings: dict = field(default_factory=dict)
    vstep_newton: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    vstep_cg: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    trials: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    restarts: int = 0
    link: Any = None
    explained: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class PalmState:
    """One iteration as the engine reports it to ``callback`` (solver units)."""

    iteration: int
    x: np.ndarray
    v: np.ndarray
    objective: float
    lipschitz: float


def run_palm(problem, options: PalmOptions = PalmOptions(),
             callback: Optional[Callable[[PalmState], None]] = None) -> PalmOutput:
    """Run PALM on a built problem.

    Parameters
    ----------
    problem : FusionProblem
        Scaled observations, operators, link, weights and kernel backend
        (:func:`mrusfusion.problem.build_problem`).
    options : PalmOptions
    callback : callable, optional
        ``callback(state)`` after each accepted iteration with a :class:`PalmState` whose images
        are the engine's own buffers (copy them to keep them); raising ``StopIteration`` stops
        the solver cleanly.

    Returns
    -------
    PalmOutput
    """
    t_start = time.perf_counter()
    K, nt, fp, m = problem.kernels, problem.threads, problem.fourier, problem.mask
    w_ = problem.weights
    t1, t2, t3, t4, gam = w_.tau1, w_.tau2, w_.tau3, w_.tau4, w_.gamma
    link = problem.link
    gm = link.grad
    yu, dtype = problem.yu, problem.dtype
    lam, gamma2, tol, inertial = options.backtrack, options.gamma2, options.tol, options.inertial

    # Buffers, allocated once (FFTW-aligned). Iterates: current, previous, extrapolated and trial
    # x; current, previous and trial v (the extrapolated v is built in the trial buffer). Link
    # values f, f_x, f_g at the base point (current or extrapolated x) and at the trial x.
    # Spectra of x: current, previous, extrapolated, trial, and of the coupling gradient. Images
    # idle during the v-step lend themselves to its solver. See the README's working set.
    R, S = fp.empty_real, fp.empty_spec
    x, x_prev, xe, xt = R(), R(), R(), R()
    v, v_prev, vt = R(), R(), R()
    np.copyto(x, problem.x0)
    np.copyto(v, yu)
    X, X_prev, Xe, Xt, Gs = fp.forward(x), S(), S(), S(), S()
    f, fx, fg = R(), R(), R()
    ft, fxt, fgt = R(), R(), R()
    G, w1 = R(), R()
    w2 = R() if gm.mode == 1 else None
    w3 = R() if gm.mode == 1 and fp.ndim == 3 else None
    vsolver = VStepSolver(fp, yu, m, t2, t3, gam, tol=options.vstep_tol)

    def coupling(xx, vv, ff, ffx, ffg):
        """sum m (vv - f(xx))^2, writing f, f_x, f_g at xx."""
        return link.coupling(xx, vv, m, ff, ffx, ffg, nt, kernels=K)

    def objective(xx, XX, Hsum, g_value):
        # The link's ridge terms (local link, DESIGN 12.2) count in H, so that the c-step is an
        # exact block minimisation of psi.
        return (0.5 * fp.mr_residual(XX) + t1 * K.squared_gradient_norm(xx, nt, fp.weights)
                + g_value + t4 * (Hsum + link.penalty()))

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
    objective_hist: List[float] = [psi]
    lip_hist: List[float] = []
    newton_hist: List[int] = []
    cg_hist: List[int] = []
    trial_hist: List[int] = []
    # The closed-form x-step divides by L at zero frequency: below ~1e3 eps its rounding error
    # outweighs the step (in float32 at L = 1e-6, PALM raised psi and stalled).
    floor = max(LIPSCHITZ_FLOOR, 1e3 * float(np.finfo(dtype).eps))
    L = float(options.L0) if options.L0 is not None else max(2.0 * t4, floor)
    t_x = t_v = t_link = t_rejected = 0.0
    converged, stop_reason = False, "maximum number of iterations reached"
    eps_round = float(4 * np.finfo(dtype).eps)  # a Python float: np.float32 would overflow
    t_mom, have_prev, n_restarts, base_is_current = 1.0, False, 0, True
    n_up = 0  # consecutive plain steps redone because rounding raised psi
    n_trials = 0
    explained: List[float] = []
    k = 0
    while k < options.max_iter:
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
        # x-step with backtracking (DESIGN section 5.1) from the base point: the FFTs of x_b and
        # of the gradient are shared by all trials, each costing one inverse FFT.
        ta = time.perf_counter()
        K.jacobian_transpose(xb, vb, f, m, fx, fg, gm.mode, gm.u, gm.eps,
                             -2.0 * t4, w1, w2, G, nt, gm.weights, w3)
        t_link += time.perf_counter() - ta
        fp.forward(G, Gs)
        H0 = t4 * Hb
        L = max(L / lam, floor)
        for n_trials in range(1, 201):  # noqa: B007 (read after the loop)
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
        idle = [w1, xe, x_prev, v_prev, f, fx, fg] + [w for w in (w2, w3) if w is not None]
        idle += [fp.real_view(Xe), fp.real_view(X_prev), fp.real_view(Gs)]
        base_is_current = False  # the base set is lent to the v-step solver
        info = vsolver.solve(vt, w, dk, scratch=idle)
        _, Hsum_t, _ = K.diff_stats(vt, ft, None, m, nt)
        psi_new = objective(xt, Xt, Hsum_t, info.g_value)
        t_v += time.perf_counter() - tb
        if beta > 0 and not psi_new <= psi:
            # Monotone safeguard: the extrapolated step raised psi; restart the momentum and redo
            # the iteration as a plain PALM step (which cannot raise psi).
            t_mom, have_prev, n_restarts = 1.0, False, n_restarts + 1
            t_rejected += time.perf_counter() - ta
            continue
        if beta == 0 and psi_new > psi + eps_round * abs(psi) and n_up < 30:
            # Rounding in the x-step (float32 at small L) raised psi: redo the step with a larger
            # L (the next pass divides L by lam once), which shortens it.
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
        if options.refit_link:
            # c-step (DESIGN 12.3): exact minimisation over the coefficients, so psi cannot
            # rise; the base set (f, f_x, f_g at x) is re-evaluated with the new link. The
            # momentum restarts: an extrapolation would mix iterates of two links.
            new_link = link.refit(x, v, m, nt)
            H_new = new_link.coupling(x, v, m, f, fx, fg, nt, kernels=K)
            psi_c = psi - t4 * (Hsum + link.penalty()) + t4 * (H_new + new_link.penalty())
            if psi_c <= psi:
                link, Hsum, psi = new_link, H_new, psi_c
                have_prev, t_mom = False, 1.0
            else:  # lower only by rounding: keep the old link and restore its values
                Hsum = coupling(x, v, f, fx, fg)
            explained.append(1.0 - Hsum / max(_variance_sum(v, m), 1e-300))
        newton_hist.append(info.newton_iter)
        cg_hist.append(info.cg_iter)
        trial_hist.append(n_trials)
        objective_hist.append(psi)
        lip_hist.append(L)
        if callback is not None:
            try:
                callback(PalmState(k, x, v, psi, L))
            except StopIteration:
                stop_reason = "stopped by callback"
                break
        if rel_x < tol and rel_v < tol:
            converged, stop_reason = True, f"relative change of x and v below tol={tol:g}"
            break
    timings = {"x_step": t_x, "v_step": t_v, "link": t_link, "rejected": t_rejected,
               "solve": time.perf_counter() - t_start}
    return PalmOutput(
        x=x, v=v, objective=np.asarray(objective_hist), lipschitz=np.asarray(lip_hist),
        n_iter=len(objective_hist) - 1, converged=converged, stop_reason=stop_reason,
        timings=timings, vstep_newton=np.asarray(newton_hist, int),
        vstep_cg=np.asarray(cg_hist, int), trials=np.asarray(trial_hist, int),
        restarts=n_restarts, link=link, explained=np.asarray(explained))


def _variance_sum(v: np.ndarray, m: Optional[np.ndarray]) -> float:
    """``sum m (v - mean_m v)^2``."""
    if m is None:
        return float(np.var(v, dtype=np.float64) * v.size)
    w = float(m.sum())
    mean = float(np.sum(m * v, dtype=np.float64)) / w
    return float(np.sum(m * (v - mean) ** 2, dtype=np.float64))
