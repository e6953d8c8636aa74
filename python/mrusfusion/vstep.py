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
from typing import Optional

import numpy as np

from . import _core

__all__ = ["VStepSolver", "VStepInfo"]


@dataclass(frozen=True)
class VStepInfo:
    """Diagnostics of one v-step solve."""

    newton_iter: int
    cg_iter: int
    grad_norm: float
    tolerance: float  # the gradient-norm threshold that was asked for
    converged: bool
    value: float


class VStepSolver:
    """Newton-PCG solver of the v-step, with buffers allocated once per problem.

    Parameters
    ----------
    fourier : FourierProblem
        Provides the FFT plans and ``|D|^2`` (the preconditioner).
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
        self.y, self.mask = y, mask
        self.tau2, self.tau3, self.gamma = float(tau2), float(tau3), float(gamma)
        self.tol, self.max_newton, self.max_cg = float(tol), int(max_newton), int(max_cg)
        self.threads = fourier.threads
        e = fourier.empty_real
        self.g, self.c, self.p, self.r, self.s, self.hs, self.z, self.trial = (e() for _ in range(8))
        self.zspec = fourier.empty_spec()
        self.cg_total = 0

    def value(self, v, w=None, dk: float = 0.0) -> float:
        """``G_k(v)`` (with ``w=None`` and ``dk=0``: ``G(v)`` of the objective)."""
        val, _, _ = _core.vstep_eval(v, self.y, w, self.mask, self.tau2, self.gamma, self.tau3,
                                     dk, None, None, self.threads)
        return val

    def _precondition(self, r, out, shift: float) -> None:
        fp = self.fp
        fp.forward(r, self.zspec)
        self.zspec /= (shift + 2.0 * self.tau3 * fp.dtd)
        fp.inverse(self.zspec, out)

    def solve(self, v, w=None, dk: float = 0.0) -> VStepInfo:
        """Minimise ``G_k`` in place, starting from ``v``."""
        nt = self.threads
        g, c, p, r, s, hs, z = self.g, self.c, self.p, self.r, self.s, self.hs, self.z
        cg_it = 0
        vnorm = float(np.linalg.norm(v)) or 1.0
        g0 = None
        for it in range(self.max_newton + 1):
            val, cmin, cmean = _core.vstep_eval(v, self.y, w, self.mask, self.tau2, self.gamma,
                                                self.tau3, dk, g, c, nt)
            gnorm = float(np.linalg.norm(g))
            mu = dk + cmin
            if mu <= 0:  # masked pixels without coupling: fall back to the mean curvature
                mu = dk + cmean
            thresh = self.tol * mu * vnorm
            if not np.isfinite(val) or gnorm <= thresh or it == self.max_newton:
                return VStepInfo(it, cg_it, gnorm, thresh, gnorm <= thresh, val)
            g0 = gnorm if g0 is None else g0
            eta = min(0.5, np.sqrt(gnorm / g0)) * 0.5
            # PCG on H p = -g.
            p.fill(0.0)
            np.negative(g, out=r)
            shift = cmean + dk
            self._precondition(r, z, shift)
            np.copyto(s, z)
            rz = float(np.vdot(r, z))
            for _ in range(self.max_cg):
                cg_it += 1
                shs = _core.dtd_apply(s, c, dk, 2.0 * self.tau3, hs, nt)
                if shs <= 0:
                    break
                alpha = rz / shs
                p += alpha * s
                r -= alpha * hs
                if np.linalg.norm(r) <= eta * gnorm:
                    break
                self._precondition(r, z, shift)
                rz_new = float(np.vdot(r, z))
                s *= rz_new / rz
                s += z
                rz = rz_new
            # Armijo backtracking on G_k (the full Newton step is nearly always taken).
            slope = float(np.vdot(g, p))
            if slope >= 0:  # not a descent direction (inexact CG): use steepest descent
                np.negative(g, out=p)
                slope = -gnorm**2 / max(cmean + dk + 8 * self.tau3, 1e-300) 
                p /= max(cmean + dk + 8 * self.tau3, 1e-300)
            t = 1.0
            for _ in range(60):
                np.multiply(p, t, out=self.trial)
                self.trial += v
                if self.value(self.trial, w, dk) <= val + 1e-4 * t * slope:
                    break
                t *= 0.5
            else:
                return VStepInfo(it, cg_it, gnorm, thresh, False, val)
            np.copyto(v, self.trial)
        return VStepInfo(self.max_newton, cg_it, gnorm, thresh, False, val)  # pragma: no cover
