"""The v-step: minimise the log-Rayleigh sub-problem (DESIGN.md section 7).

``G_k(v) = tau2 sum m [exp(y - v) - gamma (y - v)] + tau3 ||grad v||^2 + d/2 ||v - w||^2``

is strictly convex with Hessian ``diag(tau2 m exp(y - v)) + 2 tau3 D^T D + d I``. It is solved by
Newton's method with an Armijo line search; each Newton system is solved by conjugate gradients
preconditioned by the Fourier-diagonal part ``(c_mean + d + 2 tau3 |D|^2)^-1``. The stopping rule
bounds the relative error of ``v``: ``||grad|| <= tol * mu * ||v||`` with ``mu = d + min curvature``
a strong-convexity constant, so ``||v - v*|| / ||v|| <= tol``. Newton from the previous iterate
never increases ``G_k``, which keeps PALM monotone.
"""
from __future__ import annotations

from dataclasses import dataclass


import numpy as np


__all__ = ["VStepSolver", "VStepInfo"]


@dataclass(frozen=True)
class VStepInfo:
    """Diagnostics of one v-step solve."""

    newton_iter: int
    cg_iter: int
    grad_norm: float
    tolerance: float  # the gradient-norm threshold that was asked for
    converged: bool
    value: float  # G_k(v) at the returned v
    g_value: float  # G(v): the same without the proximal term


class VStepSolver:
    """Newton-PCG solver of the v-step, with buffers allocated once per problem.

    Parameters
    ----------
    fourier : FourierProblem
        Provides the FFT plans, ``|D|^2`` (the preconditioner) and the kernel backend.
    y : ndarray
        Observed US image (solver units).
    mask : ndarray or None
        Per-pixel weight of the data term.
    tau2, tau3, gamma : float
        Weights of the objective.
    tol : float
        Relative accuracy of ``v`` (see module docstring).
    max_newton, max_cg : int
        Iteration caps.
    """

    def __init__(self, fourier, y, mask, tau2: float, tau3: float, gamma: float, *,
                 tol: float = 1e-6, max_newton: int = 30, max_cg: int = 50):
        self.fp = fourier
        self._k = fourier.kernels
        self.y, self.mask = y, mask
        self.tau2, self.tau3, self.gamma = float(tau2), float(tau3), float(gamma)
        self.tol, self.max_newton, self.max_cg = float(tol), int(max_newton), int(max_cg)
        self.threads = fourier.threads
        self._own: list = []  # scratch images allocated on demand, kept between calls

    def value(self, v, w=None, dk: float = 0.0) -> float:
        """``G_k(v)`` (with ``w=None`` and ``dk=0``: ``G(v)`` of the objective)."""
        val = self._k.vstep_eval(v, self.y, w, self.mask, self.tau2, self.gamma, self.tau3, dk,
                                 None, None, self.threads, self.fp.weights)[0]
        return val

    def _buffers(self, scratch):
        """Nine work images: the caller's free ``scratch`` first, then our own (made once)."""
        scratch = list(scratch or [])[:9]
        while len(self._own) < 9 - len(scratch):
            self._own.append(self.fp.empty_real())
        return scratch + self._own[: 9 - len(scratch)]

    def solve(self, v, w=None, dk: float = 0.0, scratch=None) -> VStepInfo:
        """Minimise ``G_k`` in place, starting from ``v``; never increases ``G_k``.

        ``scratch``: images the caller does not need during this call, used as work space.
        """
        K, nt, fp = self._k, self.threads, self.fp
        g, c, gt, ct, p, r, s, hs, cur = self._buffers(scratch)
        z = hs  # the preconditioned residual and the Hessian product are never live together
        args = (self.y, w, self.mask, self.tau2, self.gamma, self.tau3, dk)
        wts = fp.weights
        val, cmin, cmean, gval, gg = K.vstep_eval(v, *args, g, c, nt, wts)
        # Inner products and vector updates through the core (one pass each, deterministic, our
        # threads): a BLAS dot with its own thread pool took 11 ms at 256x256 on a busy 2-core
        # machine, 700x the single-thread time.
        vnorm = float(np.sqrt(K.dot(v, v, nt))) or 1.0
        x, trial = v, cur  # the iterate lives in v or in our buffer; v gets it back at the end
        cg_it, g0, it = 0, None, 0
        tau3x2 = 2.0 * self.tau3
        try:
            for it in range(self.max_newton + 1):
                gnorm = float(np.sqrt(gg))
                mu = dk + cmin
                if mu <= 0:  # masked pixels without coupling: fall back to the mean curvature
                    mu = dk + cmean
                thresh = self.tol * mu * vnorm
                if not np.isfinite(val) or gnorm <= thresh or it == self.max_newton:
                    return VStepInfo(it, cg_it, gnorm, thresh, gnorm <= thresh, val, gval)
                g0 = gnorm if g0 is None else g0
                eta = 0.5 * min(0.5, np.sqrt(gnorm / g0))
                # PCG on H p = -g from p = 0, preconditioned by (c_mean + d + 2 tau3 |D|^2)^-1.
                np.negative(g, out=r)
                shift = cmean + dk
                fp.smooth(r, s, shift, tau3x2)  # the first direction is the preconditioned residual
                rz = K.dot(r, s, nt)
                first = True
                for _ in range(self.max_cg):
                    cg_it += 1
                    shs = K.dtd_apply(s, c, dk, tau3x2, hs, nt, wts)
                    if not shs > 0:
                        if first:
                            p.fill(0.0)
                        break
                    alpha = rz / shs
                    if first:
                        K.axpby(s, s, alpha, 0.0, p, nt)
                        first = False
                    else:
                        K.axpby(p, s, 1.0, alpha, p, nt)
                    rr = K.axpby(r, hs, 1.0, -alpha, r, nt)
                    if np.sqrt(rr) <= eta * gnorm:
                        break
                    fp.smooth(r, z, shift, tau3x2)
                    rz_new = K.dot(r, z, nt)
                    if not 0.0 < rz_new < np.inf:
                        break
                    K.axpby(z, s, 1.0, rz_new / rz, s, nt)
                    rz = rz_new
                slope = K.dot(g, p, nt)
                if not slope < 0:  # inexact CG gave no descent direction: a scaled gradient step
                    scale = 1.0 / max(cmean + dk + fp.dtd_max * self.tau3, 1e-300)
                    K.axpby(g, g, -scale, 0.0, p, nt)
                    slope = -scale * gnorm**2
                # Armijo backtracking; the trial's gradient is the next Newton step's.
                t = 1.0
                for _ in range(60):
                    K.axpby(x, p, 1.0, t, trial, nt)
                    tv = K.vstep_eval(trial, *args, gt, ct, nt, wts)
                    if tv[0] <= val + 1e-4 * t * slope:
                        break
                    t *= 0.5
                else:
                    return VStepInfo(it, cg_it, gnorm, thresh, False, val, gval)
                x, trial = trial, x
                val, cmin, cmean, gval, gg = tv
                g, gt, c, ct = gt, g, ct, c
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            if x is not v:
                np.copyto(v, x)
