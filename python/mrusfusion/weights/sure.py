"""``rho`` of ``tau3 = tau2 gamma rho`` by Stein's unbiased risk estimate (DESIGN.md 10 and 13).

The quadratic surrogate of the v-step smooths ``y`` by the Fourier-diagonal
``a_rho(w) = 1 / (1 + 2 rho |D|^2(w))``. For noise of covariance ``Sigma``,
``E||A y - v||^2 = E||y - A y||^2 + 2 tr(A Sigma) - tr(Sigma)``; stationary noise of power
spectrum ``P`` (``sum_w P(w) = n sigma^2``) makes the traces Fourier sums, so with
unnormalised transforms

``SURE(rho) = (1/n) sum_w |1 - a_rho|^2 |Y|^2 + 2 sum_w a_rho P - sum_w P``.

White noise (``P = sigma^2``) gives section 10's rule. Correlated speckle puts its power at low
frequencies, where ``a_rho`` is near 1, so the same ``rho`` pays more and SURE picks more
smoothing.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .. import _core
from ..fourier import dtd_symbol

__all__ = ["sure_rho", "noise_power"]


def _parzen(u: np.ndarray) -> np.ndarray:
    u = np.abs(u)
    return np.where(u <= 0.5, 1.0 - 6.0 * u**2 + 6.0 * u**3,
                    np.where(u <= 1.0, 2.0 * (1.0 - u) ** 3, 0.0))


def noise_power(rho: np.ndarray, shape: Tuple[int, int], sigma2: float) -> np.ndarray:
    """Power spectrum ``P`` of stationary noise of variance ``sigma2`` and correlation ``rho``.

    Parameters
    ----------
    rho : ndarray, shape (2L + 1, 2L + 1)
        Normalised autocorrelation, lag 0 at the centre (see
        :func:`~mrusfusion.weights.speckle_correlation`).
    shape : (int, int)
        Image shape ``(n1, n2)``.
    sigma2 : float
        Noise variance.

    Returns
    -------
    ndarray, shape (n1, n2 // 2 + 1)
        ``P`` on the half spectrum of ``numpy.fft.rfft2``, non-negative, with
        ``sum_w P(w) = n1 n2 sigma2`` over the full spectrum.

    Notes
    -----
    A lag-window (Blackman-Tukey) estimate: ``rho`` times a Parzen window reaching zero at lag
    ``L + 1``, placed on the periodic grid (lags beyond half the image are dropped) and
    transformed. The Parzen window keeps the transform of a positive-definite ``rho``
    non-negative and smooths the spectrum over about ``1/L`` of the band.

    Examples
    --------
    >>> import numpy as np
    >>> white = np.zeros((5, 5)); white[2, 2] = 1.0
    >>> bool(np.allclose(noise_power(white, (8, 8), 0.01), 0.01))
    True
    """
    rho = np.asarray(rho, dtype=np.float64)
    n1, n2 = (int(n) for n in shape)
    L1, L2 = rho.shape[0] // 2, rho.shape[1] // 2
    l1, l2 = min(L1, (n1 - 1) // 2), min(L2, (n2 - 1) // 2)
    d1, d2 = np.arange(-l1, l1 + 1), np.arange(-l2, l2 + 1)
    lagged = rho[L1 + d1[:, None], L2 + d2[None, :]]
    lagged = lagged * _parzen(d1 / (L1 + 1.0))[:, None] * _parzen(d2 / (L2 + 1.0))[None, :]
    grid = np.zeros((n1, n2))
    grid[np.ix_(d1 % n1, d2 % n2)] = lagged
    p = np.maximum(np.fft.rfft2(grid).real, 0.0)
    col = np.full(p.shape[1], 2.0)
    col[0] = 1.0
    if n2 % 2 == 0:
        col[-1] = 1.0
    total = float(np.sum(p * col))
    return p * (n1 * n2 * float(sigma2) / total) if total > 0 else np.full(p.shape, float(sigma2))


def sure_rho(y_u: np.ndarray, sigma2: float, *, grid=None,
             noise_power: Optional[np.ndarray] = None,
             weights: Optional[Sequence[float]] = None) -> float:
    """``rho`` minimising Stein's unbiased risk estimate of ``v = y / (1 + 2 rho |D|^2)``.

    Parameters
    ----------
    y_u : ndarray, shape (n1, n2)
        US image (solver units).
    sigma2 : float
        Noise variance ``sigma_u^2`` (white noise).
    grid : array_like, optional
        Trial values (default: 71 points log-spaced on [1e-4, 1e3]).
    noise_power : ndarray, shape (n1, n2 // 2 + 1), optional
        Power spectrum of coloured noise on the ``rfft2`` half spectrum (see
        :func:`noise_power`); replaces the white ``sigma2``.
    weights : sequence of float, optional
        Difference weights ``h_ref / h_a`` (DESIGN.md 11) in ``|D|^2``; None: all 1.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``noise_power`` has the wrong shape.

    Notes
    -----
    See the module docstring for ``SURE(rho)``. One real FFT of ``y``; each trial then costs a
    few passes over a quarter of the spectrum (rows ``k`` and ``n1 - k`` share ``|D|^2`` and
    are summed, and each column but the first and the Nyquist one stands for its mirror).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(0.5, 0.1, (32, 32))  # white noise, flat image
    >>> sure_rho(y, 0.01) >= 10.0
    True
    """
    n1, n2 = y_u.shape[0], y_u.shape[-1]
    Y = np.fft.rfftn(np.asarray(y_u, dtype=np.float64))
    col = np.full(Y.shape[-1], 2.0)
    col[0] = 1.0
    if n2 % 2 == 0:
        col[-1] = 1.0
    rows = np.arange(n1 // 2 + 1)
    paired = (rows != 0) & (2 * rows != n1)  # rows with a distinct mirror row n1 - k
    mirror = (n1 - rows) % n1
    pw = paired.reshape((-1,) + (1,) * (Y.ndim - 1))

    # cw-weighted sums of q over the full spectrum, gathered on the quarter: |D|^2 is the same
    # at k_0 and n1 - k_0 (the other indices fixed), so those two rows are summed.
    def quarter(q):
        q = q * col
        return np.ascontiguousarray(q[rows] + pw * q[mirror])

    Y2 = quarter(Y.real**2 + Y.imag**2)
    cw = np.ascontiguousarray((1.0 + pw) * np.broadcast_to(col, Y2.shape))
    dtd2 = np.ascontiguousarray(2.0 * dtd_symbol(y_u.shape, real=True, weights=weights)[rows])
    n = y_u.size
    a = np.empty_like(dtd2)
    grid = np.logspace(-4, 3, 71) if grid is None else np.asarray(grid, float)
    if noise_power is None:
        P2, total = None, n * sigma2
    else:
        P = np.asarray(noise_power, dtype=np.float64)
        if P.shape != Y.shape:
            raise ValueError(f"`noise_power` must have shape {Y.shape} (the rfft2 half spectrum "
                             f"of `y_u`), got {P.shape}")
        P2 = quarter(P)
        total = float(np.sum(P2))

    def sure(rho):
        np.multiply(dtd2, rho, out=a)
        np.add(a, 1.0, out=a)
        np.reciprocal(a, out=a)
        trace = sigma2 * _core.dot(cw, a) if P2 is None else _core.dot(P2, a)
        np.subtract(1.0, a, out=a)
        return _core.dot(Y2, a * a) / n - total + 2.0 * trace

    vals = [sure(r) for r in grid]
    return float(grid[int(np.argmin(vals))])
