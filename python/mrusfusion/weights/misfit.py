"""Correlation area of the link's misfit (DESIGN.md section 13, extended to the link).

``tau4`` weighs ``||v - f(x, g(x))||^2``, whose error is the part of the speckle-free US that the
link cannot explain: the misfit, of variance ``sigma_f^2``. Like the speckle, the misfit is not
independent from pixel to pixel. Where the link is right up to speckle it is white, but where the
link is wrong it is wrong over whole regions (a tissue whose echogenicity the polynomial does not
follow, an interface it does not see). An i.i.d. Gaussian term then counts each such region as
many independent errors, and pulls ``v`` towards a biased ``f`` as hard as towards its data.

:func:`misfit_area` measures the correlation area ``A_f`` of the misfit from the autocovariance
of the link's fit residual ``r = y_u - f(x0, g(x0))``, minus the autocovariance of the speckle
that it also carries (variance ``sigma_u^2``, correlation ``rho_s`` measured by
:func:`.speckle_correlation`): ``C_f(d) = C_r(d) - sigma_u^2 rho_s(d)``, and ``A_f`` is the area
of the lobe around zero lag where ``C_f > sigma_f^2 / 2``, read as :func:`.grain_area` reads the
speckle grain. It is reported (``res.weights.misfit_area``), not used in ``tau4``.
Dividing ``tau4`` by ``max(A_c, A_f)`` was measured (README, "Fusion on realistic
simulations"): on realistic pairs it brought ``v`` from 0.5-2.5 dB below to within 0.3 dB of
the best US-only despeckling, but only by turning the coupling off (``x`` the MR-only result,
``v`` without MR contrast), and on the paper's protocol it cost up to 0.4 dB. ``A_f`` far
above ``A_c`` tells a user that ``v`` carries MR contrast the US does not show; a smaller
``tau4`` then gives a ``v`` closer to the US.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .correlation import grain_area

__all__ = ["misfit_area", "autocovariance", "MAX_LAG"]

#: Largest lag (pixels, per axis) at which the misfit's autocovariance is read.
MAX_LAG = 32


def autocovariance(r: np.ndarray, mask: Optional[np.ndarray] = None,
                   max_lag: int = MAX_LAG) -> np.ndarray:
    """Autocovariance of an image over lags ``-L..L`` per axis, from the pixels inside ``mask``.

    Parameters
    ----------
    r : ndarray, shape (n1, n2)
        The image; its mean inside the mask is removed first.
    mask : ndarray of bool, optional
        Pixels that count; a lag's value is the mean over the pairs both inside.
    max_lag : int
        ``L``; clipped to a quarter of each side.

    Returns
    -------
    ndarray, shape (2 L1 + 1, 2 L2 + 1)
        ``C[L1 + d1, L2 + d2] = mean(r(i) r(i + d))``, zero lag at the centre (non-periodic:
        the image is zero-padded, and each lag is divided by its count of pairs).

    Examples
    --------
    >>> import numpy as np
    >>> c = autocovariance(np.random.default_rng(0).normal(size=(64, 64)), max_lag=2)
    >>> c.shape, round(float(c[2, 2]), 1), bool(abs(c[2, 3]) < 0.1)
    ((5, 5), 1.0, True)
    """
    r = np.asarray(r, dtype=np.float64)
    inside = np.ones(r.shape, dtype=bool) if mask is None else np.asarray(mask) > 0
    m = inside.astype(np.float64)
    rr = np.where(inside, r - r[inside].mean(), 0.0)
    shape = [n + min(max_lag, n // 4) + 1 for n in r.shape]
    lags = [min(max_lag, n // 4) for n in r.shape]
    fr, fm = np.fft.rfft2(rr, shape), np.fft.rfft2(m, shape)
    num = np.fft.irfft2(fr * np.conj(fr), shape)
    den = np.fft.irfft2(fm * np.conj(fm), shape)
    idx = [np.r_[np.arange(-L, 0) % s, np.arange(L + 1)] for L, s in zip(lags, shape)]
    num, den = num[np.ix_(*idx)], den[np.ix_(*idx)]
    return num / np.maximum(den, 1.0)


def misfit_area(residual: np.ndarray, sigma_f2: float, sigma_u2: float, speckle_rho: np.ndarray,
                mask: Optional[np.ndarray] = None, *, max_lag: int = MAX_LAG) -> float:
    """Correlation area ``A_f`` (pixels, >= 1) of the link's misfit.

    Parameters
    ----------
    residual : ndarray, shape (n1, n2)
        ``y_u - f(x0, g(x0))`` in solver units.
    sigma_f2, sigma_u2 : float
        Variances of the misfit and of the speckle (``resvar = sigma_u^2 + sigma_f^2``).
    speckle_rho : ndarray, shape (2 K + 1, 2 K + 1)
        Normalised autocorrelation of the speckle (lag 0 at the centre), as in
        :class:`.SpeckleCorrelation`.
    mask : ndarray of bool, optional
        Field of view.
    max_lag : int
        Largest lag per axis.

    Returns
    -------
    float
        Area of the lobe around zero lag where the misfit's autocovariance exceeds half its
        variance; 1 when the misfit is white or nil.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> white = np.zeros((3, 3)); white[1, 1] = 1.0
    >>> misfit_area(rng.normal(size=(128, 128)), 0.05, 0.95, white)
    1.0
    """
    if not (np.isfinite(sigma_f2) and sigma_f2 > 0.0):
        return 1.0
    c = autocovariance(residual, mask, max_lag)
    rho = np.asarray(speckle_rho, dtype=np.float64)
    c1, c2 = (c.shape[0] - 1) // 2, (c.shape[1] - 1) // 2
    k1, k2 = min((rho.shape[0] - 1) // 2, c1), min((rho.shape[1] - 1) // 2, c2)
    r1, r2 = (rho.shape[0] - 1) // 2, (rho.shape[1] - 1) // 2
    c[c1 - k1: c1 + k1 + 1, c2 - k2: c2 + k2 + 1] -= (
        sigma_u2 * rho[r1 - k1: r1 + k1 + 1, r2 - k2: r2 + k2 + 1])
    return grain_area(c / sigma_f2)
