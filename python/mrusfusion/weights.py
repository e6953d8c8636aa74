"""Weights from the data (DESIGN.md section 10).

The objective is read as a negative log-posterior whose MR term is ``1/(2 sigma_m^2)||.||^2``,
multiplied through by ``sigma_m^2``; every quantity is measured on the inputs in solver units
(each image divided by its maximum):

- ``tau1``: generalised cross-validation (GCV) of the MR-only problem, exact and FFT-free in
  Fourier; ``sigma_m^2 = RSS(tau1) / tr(I - A(tau1))``.
- ``b`` (log-Rayleigh scale of the US noise ``y_u = v + b log R``): robust standard deviation of the
  finest Haar diagonal band of ``y_u`` divided by ``std(log R) = pi / sqrt(24)``;
  ``sigma_u^2 = b^2 pi^2 / 24`` and ``gamma = E[exp(b log R)] = 2^(b/2) Gamma(1 + b/2)``.
- ``tau2 = sigma_m^2 / (gamma sigma_u^2)``; ``tau3 = tau2 gamma rho`` with ``rho`` minimising SURE
  of the smoother ``y_u / (1 + 2 rho |D|^2)``; ``tau4 = sigma_m^2 / (2 sigma_f^2)`` with
  ``sigma_f^2 = max(resvar - sigma_u^2, 0.05 resvar)`` from the link's fit residual.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import gamma as gamma_fn
from typing import Optional

import numpy as np

from . import _core
from .fourier import dtd_symbol, fold

__all__ = ["Weights", "gcv_tau1", "us_noise_scale", "sure_rho", "estimate_weights",
           "LOG_RAYLEIGH_STD", "HAAR_MAD_LOG_RAYLEIGH"]

LOG_RAYLEIGH_STD = float(np.pi / np.sqrt(24.0))
#: Median absolute deviation of the finest Haar diagonal band of unit-variance log-Rayleigh
#: noise (0.6745 for Gaussian noise); measured on 4e6 samples: 0.6363.
HAAR_MAD_LOG_RAYLEIGH = 0.636
_RIDGE = 1e-6


@dataclass(frozen=True)
class Weights:
    """The weights of the objective and how they were obtained.

    ``source`` maps each of ``tau1``..``tau4`` and ``gamma`` to ``"user"`` or ``"auto"``;
    ``sigma_m2``, ``sigma_u2``, ``sigma_f2``, ``b`` and ``rho`` are the measured quantities behind
    the automatic values (NaN where not measured).
    """

    tau1: float
    tau2: float
    tau3: float
    tau4: float
    gamma: float
    sigma_m2: float = float("nan")
    sigma_u2: float = float("nan")
    sigma_f2: float = float("nan")
    b: float = float("nan")
    rho: float = float("nan")
    source: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("tau1", "tau2", "tau3", "tau4", "gamma", "sigma_m2",
                                                "sigma_u2", "sigma_f2", "b", "rho")} | {"source": dict(self.source)}


def _gcv_terms(abs_lam2: np.ndarray, dtd: np.ndarray, ym_pow: np.ndarray, s: int, tau: float):
    W = fold(abs_lam2 / (2.0 * tau * dtd + _RIDGE), s)
    inv = 1.0 / (1.0 + W)
    m = ym_pow.size
    rss = float(np.sum(ym_pow * inv**2)) / m
    tr = float(np.sum(inv))
    return rss, tr


class _HalfGCV:
    """``_gcv_terms`` on half of the coarse spectrum. ``|Lam|^2``, ``|D|^2`` and the power of a
    real image are even, so the folded ``W`` is too, and the coarse columns ``0..m2/2`` hold
    everything: each other column stands for its mirror as well (weight 2). The fine-grid
    entries those columns fold are gathered once, in tile order, which halves each evaluation."""

    def __init__(self, abs_lam2: np.ndarray, dtd: np.ndarray, ym_pow: np.ndarray, s: int):
        n1, n2 = abs_lam2.shape
        m1, m2 = n1 // s, n2 // s
        h = m2 // 2 + 1
        tiles = lambda q: np.ascontiguousarray(q.reshape(s, m1, s, m2)[..., :h])
        self.lam2, self.dtd2 = tiles(abs_lam2), 2.0 * tiles(dtd)
        wcol = np.full(h, 2.0)
        wcol[0] = 1.0
        if m2 % 2 == 0:
            wcol[-1] = 1.0
        self.wcol = wcol
        self.ym_pow = ym_pow[:, :h] * wcol
        self.m, self.s2 = ym_pow.size, s * s
        self._buf = np.empty_like(self.lam2)

    def __call__(self, tau: float):
        b = self._buf
        np.multiply(self.dtd2, tau, out=b)
        np.add(b, _RIDGE, out=b)
        np.divide(self.lam2, b, out=b)
        W = b.sum(axis=(0, 2)) / self.s2
        inv = 1.0 / (1.0 + W)
        rss = float(np.sum(self.ym_pow * inv**2)) / self.m
        tr = float(np.sum(self.wcol * inv))
        return rss, tr


def gcv_tau1(y_m: np.ndarray, ratio: int, abs_lam2: np.ndarray, *, grid=None) -> tuple:
    """``tau1`` minimising GCV of the MR-only problem, and ``sigma_m^2``.

    Parameters
    ----------
    y_m : ndarray
        MR observation (coarse grid, solver units).
    ratio : int
    abs_lam2 : ndarray
        ``|Lam|^2`` on the full fine-grid spectrum.
    grid : array_like, optional
        Trial values (default: 61 points log-spaced on [1e-5, 10]).

    Returns
    -------
    (tau1, sigma_m2) : (float, float)
    """
    n1, n2 = abs_lam2.shape
    dtd = dtd_symbol((n1, n2))
    ym_pow = np.abs(np.fft.fft2(y_m)) ** 2
    m = ym_pow.size
    grid = np.logspace(-5, 1, 61) if grid is None else np.asarray(grid, float)

    terms = _HalfGCV(abs_lam2, dtd, ym_pow, ratio)

    def gcv(lt):
        rss, tr = terms(10.0**lt)
        return m * rss / tr**2

    lg = np.log10(grid)
    vals = np.array([gcv(t) for t in lg])
    k = int(np.argmin(vals))
    best = lg[k]
    if 0 < k < len(lg) - 1:  # parabolic refinement through the three points around the minimum
        a, b, c = vals[k - 1], vals[k], vals[k + 1]
        h = lg[k] - lg[k - 1]
        den = a - 2 * b + c
        if den > 0:
            cand = lg[k] + 0.5 * h * (a - c) / den
            if gcv(cand) < b:
                best = cand
    tau1 = float(10.0**best)
    rss, tr = _gcv_terms(abs_lam2, dtd, ym_pow, ratio, tau1)
    return tau1, rss / tr


def us_noise_scale(y_u: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """Log-Rayleigh scale ``b`` of the US noise (model ``y_u = v + b log R``).

    Robust standard deviation of the finest Haar diagonal band ``(a - b - c + d) / 2`` (MAD over
    0.636, the band's MAD for unit-variance log-Rayleigh noise) divided by ``pi / sqrt(24)``.
    Spatially correlated speckle makes this an underestimate. With a ``mask``, only 2x2 blocks
    entirely inside it count.
    """
    n1, n2 = (y_u.shape[0] // 2) * 2, (y_u.shape[1] // 2) * 2
    y = y_u[:n1, :n2]
    band = (y[0::2, 0::2] - y[0::2, 1::2] - y[1::2, 0::2] + y[1::2, 1::2]) / 2.0
    if mask is not None:
        mk = mask[:n1, :n2] > 0
        inside = mk[0::2, 0::2] & mk[0::2, 1::2] & mk[1::2, 0::2] & mk[1::2, 1::2]
        if inside.any():
            band = band[inside]
    mad = float(np.median(np.abs(band - np.median(band))))
    return mad / HAAR_MAD_LOG_RAYLEIGH / LOG_RAYLEIGH_STD


def sure_rho(y_u: np.ndarray, sigma2: float, *, grid=None) -> float:
    """``rho`` minimising Stein's unbiased risk estimate of ``v = y / (1 + 2 rho |D|^2)``."""
    # On a quarter of the spectrum: |D|^2 is even in each frequency, so rows k and n1 - k of the
    # half spectrum of a real FFT share it and are added together, and each column but the first
    # (and the Nyquist one) also stands for its mirror. cw counts the frequencies each entry
    # stands for. Sums go through the core's dot, in place.
    n1, n2 = y_u.shape
    Y = np.fft.rfft2(np.asarray(y_u, dtype=np.float64))
    col = np.full(Y.shape[1], 2.0)
    col[0] = 1.0
    if n2 % 2 == 0:
        col[-1] = 1.0
    P = (Y.real**2 + Y.imag**2) * col
    rows = np.arange(n1 // 2 + 1)
    paired = (rows != 0) & (2 * rows != n1)  # rows with a distinct mirror row n1 - k
    mirror = (n1 - rows) % n1
    Y2 = np.ascontiguousarray(P[rows] + paired[:, None] * P[mirror])
    cw = np.ascontiguousarray((1.0 + paired)[:, None] * col[None, :])
    dtd2 = np.ascontiguousarray(2.0 * dtd_symbol((n1, n2), real=True)[rows])
    n = y_u.size
    a = np.empty_like(dtd2)
    grid = np.logspace(-4, 3, 71) if grid is None else np.asarray(grid, float)

    def sure(rho):
        np.multiply(dtd2, rho, out=a)
        np.add(a, 1.0, out=a)
        np.reciprocal(a, out=a)
        sum_a = _core.dot(cw, a)
        np.subtract(1.0, a, out=a)
        return _core.dot(Y2, a * a) / n - n * sigma2 + 2.0 * sigma2 * sum_a

    vals = [sure(r) for r in grid]
    return float(grid[int(np.argmin(vals))])


def estimate_weights(y_m: np.ndarray, y_u: np.ndarray, ratio: int, abs_lam2: np.ndarray,
                     fit_resvar: float, *, tau1=None, tau2=None, tau3=None, tau4=None,
                     gamma=None, mask: Optional[np.ndarray] = None) -> Weights:
    """Data-driven weights; any value given is used as is (see module docstring).

    Parameters
    ----------
    y_m, y_u : ndarray
        Observations in solver units.
    ratio : int
    abs_lam2 : ndarray
        ``|Lam|^2`` on the full fine-grid spectrum.
    fit_resvar : float
        Per-pixel residual variance of the polynomial fit.
    mask : ndarray, optional
        US field of view: the noise scale is measured inside it, and SURE runs on ``y_u`` with
        the outside filled by the mean inside.
    """
    src = {}
    auto_t1, sigma_m2 = gcv_tau1(y_m, ratio, abs_lam2)
    if tau1 is None:
        tau1, src["tau1"] = auto_t1, "auto"
    else:
        src["tau1"] = "user"
    b = us_noise_scale(y_u, mask)
    if mask is not None:
        inside = mask > 0
        y_u = np.where(inside, y_u, y_u[inside].mean())
    sigma_u2 = b * b * LOG_RAYLEIGH_STD**2
    if gamma is None:
        gamma, src["gamma"] = 2.0 ** (b / 2.0) * gamma_fn(1.0 + b / 2.0), "auto"
    else:
        src["gamma"] = "user"
    tiny = 1e-12
    if tau2 is None:
        tau2, src["tau2"] = sigma_m2 / (gamma * max(sigma_u2, tiny)), "auto"
    else:
        src["tau2"] = "user"
    rho = sure_rho(y_u, sigma_u2)
    if tau3 is None:
        tau3, src["tau3"] = tau2 * gamma * rho, "auto"
    else:
        src["tau3"] = "user"
    sigma_f2 = max(fit_resvar - sigma_u2, 0.05 * fit_resvar)
    if tau4 is None:
        tau4, src["tau4"] = sigma_m2 / (2.0 * max(sigma_f2, tiny)), "auto"
    else:
        src["tau4"] = "user"
    return Weights(float(tau1), float(tau2), float(tau3), float(tau4), float(gamma), float(sigma_m2),
                   float(sigma_u2), float(sigma_f2), float(b), float(rho), src)
