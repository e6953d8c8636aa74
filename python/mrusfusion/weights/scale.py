"""The log-Rayleigh scale ``b`` of the US noise (DESIGN.md sections 10 and 13).

Model ``y_u = v + b log R``, ``R`` Rayleigh, marginally. Two estimators that fail in opposite
ways, and a rule that uses each where it holds:

- the finest Haar diagonal band (section 10): exact and blind to smooth structure for i.i.d.
  noise, but it assumes independent neighbours and reads correlated speckle far too low (a
  fifth of ``b`` for grains of a few pixels);
- the median of the standard deviations in non-overlapping 7x7 windows (section 13), corrected
  for the window's small sample and for the measured correlation: right for correlated speckle,
  but it reads the structure inside the windows as noise (3-10 % high on the paper's images).

On i.i.d. noise the two agree to within that structure bias; correlated speckle drives the
Haar band far below the window estimate. Their ratio is the test (:func:`noise_scale`).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import pi, sqrt
from typing import Optional, Tuple

import numpy as np
from scipy.special import zeta

from .correlation import SpeckleCorrelation, _inside, speckle_correlation

__all__ = ["LOG_RAYLEIGH_STD", "HAAR_MAD_LOG_RAYLEIGH", "HAAR_MAD_LOG_RAYLEIGH_3D", "WINDOW",
           "NoiseScale", "noise_scale", "us_noise_scale", "window_std_median_factor",
           "measured_correlation"]

LOG_RAYLEIGH_STD = float(pi / sqrt(24.0))
#: Median absolute deviation of the finest Haar diagonal band of unit-variance log-Rayleigh
#: noise (0.6745 for Gaussian noise); measured on 4e6 samples: 0.6363.
HAAR_MAD_LOG_RAYLEIGH = 0.636
#: The same for the finest all-high band of a volume (8 corners over sqrt(8), closer to a
#: Gaussian); measured on 2e6 samples: 0.6542.
HAAR_MAD_LOG_RAYLEIGH_3D = 0.654
#: Side of the windows of the window estimate: a few grains wide (DESIGN.md section 13).
WINDOW = 7
#: Fewest windows for a median worth taking.
MIN_WINDOWS = 16
#: Haar-to-window ratios between which the rule passes from the Haar band (neighbours
#: independent) to the window estimate (correlated). Measured: 0.90-1.00 on i.i.d. noise over
#: the phantom and the pelvis of the paper's protocol; 0.90-0.95 for a 0.5 px Gaussian PSF
#: (Haar 5 % low), 0.79-0.83 for 0.6 px (Haar 17 % low), 0.67-0.72 for 0.7 px.
RATIO_WHITE, RATIO_CORRELATED = 0.85, 0.75

# Standardised cumulants of log R (log R = (log 2 + log E) / 2, E ~ Exp(1), whose log has the
# cumulants kappa_r = (-1)^r (r - 1)! zeta(r) for r >= 2): skewness, excess kurtosis, 6th.
_L3 = float(-2.0 * zeta(3) / zeta(2) ** 1.5)
_L4 = 2.4
_L6 = 192.0 / 7.0


def window_std_median_factor(n: int) -> float:
    """``median(s) / sigma`` for the standard deviation ``s`` of ``n`` i.i.d. log-Rayleigh values.

    Parameters
    ----------
    n : int
        Pixels per window (at least 4).

    Returns
    -------
    float

    Notes
    -----
    With ``s^2`` the unbiased sample variance, ``median(s) = sqrt(median(s^2))``. Fisher's
    k-statistic cumulants give, in units of ``sigma``, ``V = var(s^2) = l4 / n + 2 / (n - 1)``
    and ``k3(s^2) = l6 / n^2 + 12 l4 / (n (n - 1)) + 4 (n - 2) l3^2 / (n (n - 1)^2) +
    8 / (n - 1)^2``, with the standardised cumulants of ``log R``: ``l3 = -2 zeta(3) /
    zeta(2)^1.5 = -1.14``, ``l4 = 12/5``, ``l6 = 192/7``. The Cornish-Fisher expansion puts the
    median at ``mean - k3 / (6 V)``. Monte Carlo: 0.9776 for 7x7 windows (this formula
    0.9727), 0.9855 for 9x9 (0.9836).

    Examples
    --------
    >>> round(window_std_median_factor(49), 4)
    0.9727
    """
    if n < 4:
        raise ValueError(f"`n` must be at least 4, got {n}")
    var = _L4 / n + 2.0 / (n - 1)
    k3 = (_L6 / n**2 + 12.0 * _L4 / (n * (n - 1)) + 4.0 * (n - 2) * _L3**2 / (n * (n - 1) ** 2)
          + 8.0 / (n - 1) ** 2)
    return sqrt(1.0 - k3 / (6.0 * var))


def _window_variance_ratio(rho: np.ndarray, k: int) -> float:
    """``E[s^2] / sigma^2`` in a ``k x k`` window of noise of correlation ``rho``:
    ``(n - S / n) / (n - 1)`` with ``S = sum_ij rho(i - j)`` over the window's pixel pairs (the
    window mean absorbs part of a correlated noise)."""
    L = rho.shape[0] // 2
    d = np.arange(-(k - 1), k)
    if L < k - 1:
        d = d[np.abs(d) <= L]
    pairs = (k - np.abs(d))[:, None] * (k - np.abs(d))[None, :]
    n = k * k
    s = float(np.sum(pairs * rho[L + d[:, None], L + d[None, :]]))
    return max((n - s / n) / (n - 1), 1.0 / n)


def _haar_scale(y: np.ndarray, inside: Optional[np.ndarray]) -> float:
    """MAD of the finest all-high Haar band: ``(a - b - c + d) / 2`` of each 2x2 block of an
    image, the signed sum of the 8 corners of each 2x2x2 block over ``sqrt(8)`` of a volume."""
    even = tuple((n // 2) * 2 for n in y.shape)
    if min(even) == 0:
        side = "x".join("2" * y.ndim)
        raise ValueError(f"`y_u` must be at least {side} pixels, got shape {y.shape}")
    trim = tuple(slice(0, n) for n in even)
    y = y[trim]
    band: np.ndarray = np.zeros(tuple(n // 2 for n in even))
    full: np.ndarray = np.ones(band.shape, dtype=bool)
    for corner in itertools.product((0, 1), repeat=y.ndim):
        sl = tuple(slice(c, None, 2) for c in corner)
        band = band - y[sl] if sum(corner) % 2 else band + y[sl]
        if inside is not None:
            full = full & inside[trim][sl]
    band = band / 2.0 ** (y.ndim / 2.0)
    if inside is not None:
        if not full.any():
            side = "x".join("2" * y.ndim)
            raise ValueError(f"`mask` must hold at least one {side} block of pixels for the "
                             "noise scale")
        band = band[full]
    mad = float(np.median(np.abs(band - np.median(band))))
    const = HAAR_MAD_LOG_RAYLEIGH if y.ndim == 2 else HAAR_MAD_LOG_RAYLEIGH_3D
    return mad / const / LOG_RAYLEIGH_STD


def _full_windows(inside: Optional[np.ndarray], shape, k: int) -> np.ndarray:
    """Boolean grid of the non-overlapping windows of side ``k`` (every axis) inside the mask."""
    counts = tuple(n // k for n in shape)
    if inside is None:
        return np.ones(counts, dtype=bool)
    blocks = inside[tuple(slice(0, c * k) for c in counts)]
    split = [d for c in counts for d in (c, k)]
    return np.asarray(blocks.reshape(split).all(axis=tuple(range(1, 2 * len(counts), 2))))


def measured_correlation(y: np.ndarray, mask: Optional[np.ndarray]) -> SpeckleCorrelation:
    """The speckle correlation of an image (:func:`speckle_correlation`); a volume's is taken
    as white (the correlation is measured on images only, so the i.i.d. rule of section 10
    applies to volumes, with the window estimate still guarding the Haar band)."""
    if np.ndim(y) == 3:
        return SpeckleCorrelation.white("white (volume: correlation measured on images only)")
    return speckle_correlation(y, mask)


def _window_scale(y: np.ndarray, inside: Optional[np.ndarray], k: int,
                  rho: Optional[np.ndarray]) -> Tuple[Optional[float], int]:
    """``b`` from the median window standard deviation, or None if too few windows fit."""
    full = _full_windows(inside, y.shape, k)
    count = int(np.count_nonzero(full))
    if count < MIN_WINDOWS:
        return None, count
    blocks = y[tuple(slice(0, c * k) for c in full.shape)]
    blocks = blocks.reshape([d for c in full.shape for d in (c, k)])
    s = blocks.std(axis=tuple(range(1, 2 * y.ndim, 2)), ddof=1)[full]
    factor = window_std_median_factor(k**y.ndim)
    if rho is not None and y.ndim == 2:  # the speckle correlation is measured on images only
        factor *= sqrt(_window_variance_ratio(rho, k))
    return float(np.median(s)) / factor / LOG_RAYLEIGH_STD, count


@dataclass(frozen=True)
class NoiseScale:
    """The noise scale ``b`` chosen by :func:`noise_scale`, and the evidence.

    Attributes
    ----------
    b : float
    correlated : float
        Weight of the correlated-speckle reading, 0 (i.i.d.: Haar band) to 1 (window
        estimate); ``b = b_haar^(1 - w) b_window^w``.
    b_haar, b_window : float
        The two estimates (``b_window`` NaN when too few windows fit).
    method : str
    """

    b: float
    correlated: float
    b_haar: float
    b_window: float
    method: str


def noise_scale(y_u: np.ndarray, mask: Optional[np.ndarray] = None, *, window: int = WINDOW,
                correlation: Optional[SpeckleCorrelation] = None) -> NoiseScale:
    """``b`` by the rule of the module docstring: Haar band or window median, as the data say.

    Parameters
    ----------
    y_u : ndarray, shape (n1, n2)
        Log-compressed US image (solver units).
    mask : ndarray, optional
        Field of view: only windows (or 2x2 blocks) entirely inside it count.
    window : int
        Window side, at least 2.
    correlation : SpeckleCorrelation, optional
        Speckle correlation for the window estimate's correction; default: measured by
        :func:`~mrusfusion.weights.speckle_correlation`.

    Returns
    -------
    NoiseScale

    Raises
    ------
    ValueError
        For a ``window`` below 2, an empty ``mask`` or one without a 2x2 block.

    Notes
    -----
    With ``t = b_haar / b_window``: ``t >= 0.85`` gives the Haar band (section 10 unchanged on
    i.i.d. noise), ``t <= 0.75`` the window estimate, and in between
    ``w = (0.85 - t) / 0.1`` blends them geometrically. With fewer than 16 windows inside the
    image or mask, the Haar band is used and ``method`` says so.

    Examples
    --------
    >>> import numpy as np
    >>> y = 0.5 + 0.1 * np.log(np.random.default_rng(0).rayleigh(size=(64, 64)))
    >>> s = noise_scale(y)
    >>> round(s.b, 2), s.correlated, s.method
    (0.1, 0.0, 'haar (i.i.d.: Haar/window 1.01)')
    """
    y, inside, window = _check(y_u, mask, window)
    if correlation is None:
        correlation = measured_correlation(y, mask)
    b_haar = _haar_scale(y, inside)
    b_win, count = _window_scale(y, inside, window, correlation.rho)
    if b_win is None:
        side = "x".join([str(window)] * y.ndim)
        return NoiseScale(b_haar, 0.0, b_haar, float("nan"),
                          f"haar (fallback: {count} {side} windows inside the image "
                          f"or mask, fewer than {MIN_WINDOWS})")
    t = b_haar / b_win if b_win > 0 else 1.0
    w = min(max((RATIO_WHITE - t) / (RATIO_WHITE - RATIO_CORRELATED), 0.0), 1.0)
    if w == 0.0:
        b, method = b_haar, f"haar (i.i.d.: Haar/window {t:.2f})"
    elif w == 1.0:
        b, method = b_win, f"window (correlated: Haar/window {t:.2f})"
    else:
        b = b_haar ** (1.0 - w) * b_win**w
        method = f"haar-window blend {w:.2f} (Haar/window {t:.2f})"
    return NoiseScale(float(b), float(w), float(b_haar), float(b_win), method)


def _check(y_u, mask, window) -> Tuple[np.ndarray, Optional[np.ndarray], int]:
    y = np.asarray(y_u, dtype=np.float64)
    if y.ndim not in (2, 3):
        raise ValueError(f"`y_u` must be a 2-D or 3-D array, got shape {y.shape}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"`window` must be an integer >= 2, got {window!r}")
    return y, _inside(mask, y.shape), int(window)


def us_noise_scale(y_u: np.ndarray, mask: Optional[np.ndarray] = None, *, method: str = "auto",
                   window: int = WINDOW, correlation: Optional[SpeckleCorrelation] = None) -> float:
    """Log-Rayleigh scale ``b`` of the US noise (model ``y_u = v + b log R``).

    Parameters
    ----------
    y_u : ndarray, shape (n1, n2)
        Log-compressed US image (solver units).
    mask : ndarray, optional
        Field of view: only windows (or 2x2 blocks) entirely inside it count.
    method : {"auto", "window", "haar"}
        ``"auto"`` (default): the rule of :func:`noise_scale`. ``"window"``: median of the
        standard deviations in non-overlapping ``window x window`` windows (falls back on
        ``"haar"`` when fewer than 16 fit). ``"haar"``: robust standard deviation of the finest
        Haar diagonal band.
    window : int
        Window side, at least 2.
    correlation : SpeckleCorrelation, optional
        Speckle correlation for the window estimate; default: measured.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For an unknown ``method``, a ``window`` below 2, an empty ``mask`` or one without a
        2x2 block.

    Notes
    -----
    Window estimate (DESIGN.md section 13): ``b = median(s_w) / (c_n sqrt(q_rho) pi/sqrt(24))``,
    ``s_w`` the window standard deviations, ``c_n`` the small-sample median factor of
    :func:`window_std_median_factor`, ``q_rho = (n - S/n) / (n - 1)`` the share of a
    correlated noise's variance left around the window mean (``S`` the sum of ``rho`` over the
    window's pixel pairs; 1 for i.i.d. noise). Haar estimate (section 10): MAD of
    ``(a - b - c + d) / 2`` over 0.636, divided by ``pi / sqrt(24)``.

    Examples
    --------
    >>> import numpy as np
    >>> y = 0.5 + 0.1 * np.log(np.random.default_rng(0).rayleigh(size=(64, 64)))
    >>> [round(us_noise_scale(y, method=m), 2) for m in ("auto", "window", "haar")]
    [0.1, 0.1, 0.1]
    """
    if method not in ("auto", "window", "haar"):
        raise ValueError(f"`method` must be 'auto', 'window' or 'haar', got {method!r}")
    y, inside, window = _check(y_u, mask, window)
    if method == "haar":
        return _haar_scale(y, inside)
    if method == "auto":
        return noise_scale(y, mask, window=window, correlation=correlation).b
    rho = (correlation if correlation is not None else measured_correlation(y, mask)).rho
    b, _ = _window_scale(y, inside, window, rho)
    return b if b is not None else _haar_scale(y, inside)
