"""Speckle correlation and grain area (DESIGN.md section 13).

Real speckle is correlated over a grain of a few pixels. :func:`speckle_correlation` measures its
normalised autocorrelation ``rho`` from the spectra of small tapered patches, averaged over the
patches by a low quantile so that edges and texture weigh little; :func:`grain_area` reads the
grain area ``A_c`` from it. Both work in solver units and know nothing of the weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import log
from typing import Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

__all__ = ["SpeckleCorrelation", "speckle_correlation", "grain_area", "MIN_PATCHES"]

#: Fewest patches for a quantile worth taking (16x16 patches; 32x32 need 16).
MIN_PATCHES = 9
#: At most this many patches enter the spectral estimate (evenly spread over the image).
MAX_PATCHES = 1024
# Quantile of the patch periodograms: each ordinate is S(w) times an Exp(1) variable, so any
# quantile scales every frequency alike; a low one ignores the patches that hold structure.
_Q = 0.2
_EXP_Q = -log(1.0 - _Q)
_CHI2_1_Q = 0.06418475466730  # the same quantile of chi^2_1, for the real (Nyquist) ordinates
_LOW_RADIUS = 1.5  # patch frequencies (in bins) replaced by the ring just outside them
_AREA_SAMPLES = 8  # bilinear samples per lag for the area of the lobe


@dataclass(frozen=True, eq=False)
class SpeckleCorrelation:
    """Normalised autocorrelation of the speckle and the grain area read from it.

    Attributes
    ----------
    rho : ndarray, shape (2L + 1, 2L + 1)
        ``rho[L + d1, L + d2]``: correlation at lag ``(d1, d2)``; ``rho[L, L] = 1``, symmetric.
    grain_area : float
        ``A_c`` (pixels, at least 1): see :func:`grain_area`.
    patch : int
        Side of the patches measured (0: not measured).
    n_patches : int
    method : str
        ``"patch spectra"``, or why i.i.d. noise was assumed.
    """

    rho: np.ndarray = field(repr=False)
    grain_area: float
    patch: int
    n_patches: int
    method: str

    @classmethod
    def white(cls, method: str) -> "SpeckleCorrelation":
        rho = np.zeros((3, 3))
        rho[1, 1] = 1.0
        return cls(rho, 1.0, 0, 0, method)


def _inside(mask: Optional[np.ndarray], shape) -> Optional[np.ndarray]:
    if mask is None:
        return None
    inside = np.asarray(mask) > 0
    if inside.shape != tuple(shape):
        raise ValueError(f"`mask` must have shape {tuple(shape)} (the US grid), got {inside.shape}")
    if not inside.any():
        raise ValueError("`mask` selects no pixel")
    return inside


def _full_blocks(inside: Optional[np.ndarray], shape, k: int, step: int) -> np.ndarray:
    """Boolean grid of the ``k x k`` blocks at multiples of ``step`` that lie inside the mask."""
    n1, n2 = shape
    c1, c2 = (n1 - k) // step + 1, (n2 - k) // step + 1
    if inside is None:
        return np.ones((max(c1, 0), max(c2, 0)), dtype=bool)
    ii = np.pad(np.cumsum(np.cumsum(inside, axis=0, dtype=np.int64), axis=1), ((1, 0), (1, 0)))
    r = np.arange(c1)[:, None] * step
    c = np.arange(c2)[None, :] * step
    count = ii[r + k, c + k] - ii[r, c + k] - ii[r + k, c] + ii[r, c]
    return count == k * k


def grain_area(rho: np.ndarray) -> float:
    """Grain area ``A_c``: pixels of the lobe around zero lag where ``rho`` exceeds 1/2.

    Parameters
    ----------
    rho : ndarray, shape (2L + 1, 2L + 1)
        Normalised autocorrelation, lag ``(0, 0)`` at the centre.

    Returns
    -------
    float
        The area, at least 1.

    Notes
    -----
    ``rho`` is interpolated bilinearly between the lags and the area of the connected set
    ``{rho > 1/2}`` around zero lag is measured on a grid of 8 x 8 samples per lag, so it
    varies continuously with the grain. For grains of a few pixels it agrees with the count of
    lags above 1/2 (the ``grain_area`` of :func:`mrusfusion.simulate.simulate_bmode`); i.i.d.
    noise gives ``2 (1 - log 2) = 0.61`` px, less than the pixel that is the smallest grain,
    hence the clamp to 1 (DESIGN.md section 13).

    Examples
    --------
    >>> import numpy as np
    >>> white = np.zeros((5, 5)); white[2, 2] = 1.0
    >>> grain_area(white)
    1.0
    >>> d = np.arange(-4, 5)
    >>> round(grain_area(np.exp(-(d[:, None]**2 + d[None, :]**2) / 4.0)), 1)  # 4 pi log 2 = 8.7
    8.3
    """
    rho = np.asarray(rho, dtype=np.float64)
    if rho.ndim != 2 or rho.shape[0] % 2 == 0 or rho.shape[1] % 2 == 0:
        raise ValueError(f"`rho` must be a 2-D array of odd sides (lag 0 at the centre), "
                         f"got shape {rho.shape}")
    q = _AREA_SAMPLES
    axes = [(np.arange(n * q - q + 1) + 0.5 - 0.5 * q) / q for n in rho.shape]  # sample centres
    coords = np.meshgrid(*axes, indexing="ij")
    above = ndimage.map_coordinates(rho, coords, order=1) > 0.5
    lobes, _ = ndimage.label(above)
    centre = lobes[tuple(((n - 1) // 2) * q for n in rho.shape)]
    area = float(np.count_nonzero(lobes == centre)) / (q * q) if centre else 0.0
    return max(area, 1.0)


def _hann(n: int) -> np.ndarray:
    t = 0.5 * (1.0 - np.cos(2.0 * np.pi * (np.arange(n) + 0.5) / n))
    return np.outer(t, t)


def speckle_correlation(y_u: np.ndarray, mask: Optional[np.ndarray] = None, *,
                        patch: Optional[int] = None) -> SpeckleCorrelation:
    """Normalised autocorrelation of the speckle of a US image, and its grain area.

    Parameters
    ----------
    y_u : ndarray, shape (n1, n2)
        Log-compressed US image (solver units).
    mask : ndarray, optional
        Field of view; only patches entirely inside it are used.
    patch : int, optional
        Patch side (even, >= 8). Default: 32 if at least 16 such patches fit, else 16 if at
        least 9 fit; otherwise i.i.d. noise is assumed and ``method`` says why.

    Returns
    -------
    SpeckleCorrelation

    Raises
    ------
    ValueError
        If ``mask`` selects no pixel or ``patch`` is not an even integer >= 8.

    Notes
    -----
    The speckle residual is taken patch by patch: each ``P x P`` patch (half-overlapping)
    loses its weighted least-squares quadratic trend, the local mean of the image, and is
    tapered by a Hann window ``w``. Its periodogram ``|F(w r)|^2 / sum w^2`` has the
    expectation ``S(f)`` (the noise spectrum smoothed by the taper), each ordinate ``S(f)``
    times an ``Exp(1)`` variable, so the 0.2-quantile over the patches, divided by
    ``-log(0.8)``, estimates ``S`` while the patches that hold edges or texture, whose power is
    higher, fall above it. The frequencies within 1.5 bins of zero, where the trends of the
    structure remain, take the mean of the ring just outside (a short-range correlation has a
    flat spectrum there). The inverse transform divided by the taper's own autocorrelation
    (``E[periodogram]`` is the autocovariance times it) and by its value at zero lag is
    ``rho``. A plain high-pass residual ``y - local mean`` would instead bias ``rho`` down by
    the filtered-out low frequencies of the speckle, and up by every edge of the image.

    Examples
    --------
    >>> import numpy as np
    >>> y = 0.5 + 0.1 * np.log(np.random.default_rng(0).rayleigh(size=(64, 64)))
    >>> c = speckle_correlation(y)
    >>> c.grain_area, c.patch, c.n_patches, c.method
    (1.0, 16, 49, 'patch spectra')
    """
    y = np.asarray(y_u, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"`y_u` must be a 2-D array, got shape {y.shape}")
    inside = _inside(mask, y.shape)
    if patch is not None:
        if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) \
                or patch < 8 or patch % 2:
            raise ValueError(f"`patch` must be an even integer >= 8, got {patch!r}")
        sizes = [(int(patch), 1)]
    else:
        sizes = [(32, 16), (16, MIN_PATCHES)]
    for n, needed in sizes:
        if min(y.shape) < n:
            continue
        blocks = _full_blocks(inside, y.shape, n, n // 2)
        if np.count_nonzero(blocks) >= needed:
            break
    else:
        return SpeckleCorrelation.white(f"i.i.d. assumed: fewer than {MIN_PATCHES} patches "
                                        f"of 16x16 inside the image or mask")
    rows, cols = np.nonzero(blocks)
    if rows.size > MAX_PATCHES:
        keep = np.linspace(0, rows.size - 1, MAX_PATCHES).round().astype(int)
        rows, cols = rows[keep], cols[keep]
    h = n // 2
    p = sliding_window_view(y, (n, n))[rows * h, cols * h].reshape(rows.size, n * n)

    w = _hann(n).ravel()
    t = (np.arange(n) - 0.5 * (n - 1)) / n
    t1, t2 = (a.ravel() for a in np.meshgrid(t, t, indexing="ij"))
    basis = np.stack([np.ones_like(t1), t1, t2, t1 * t1, t1 * t2, t2 * t2], axis=1)
    proj = np.linalg.solve(basis.T @ (basis * w[:, None]), (basis * w[:, None]).T)
    r = (p - (p @ proj.T) @ basis.T) * w
    f = np.fft.rfft2(r.reshape(-1, n, n))
    power = (f.real**2 + f.imag**2) / float(np.sum(w * w))
    s = np.quantile(power, _Q, axis=0) / _EXP_Q
    for i in (0, h):  # the real ordinates are chi^2_1, not Exp(1)
        for j in (0, h):
            s[i, j] *= _EXP_Q / _CHI2_1_Q
    k1 = np.fft.fftfreq(n)[:, None] * n
    k2 = np.arange(h + 1)[None, :]
    radius = np.hypot(k1, k2)
    ring = (radius > _LOW_RADIUS) & (radius <= _LOW_RADIUS + 1.0)
    s[radius <= _LOW_RADIUS] = s[ring].mean()

    cov = np.fft.irfft2(s, s=(n, n))
    taper = np.fft.irfft2(np.abs(np.fft.rfft2(w.reshape(n, n))) ** 2, s=(n, n))
    rho = np.fft.fftshift(cov / taper)
    rho = rho[1:, 1:] / rho[h, h]  # lags -(h - 1) .. h - 1
    rho = 0.5 * (rho + rho[::-1, ::-1])
    return SpeckleCorrelation(rho, grain_area(rho), n, int(rows.size), "patch spectra")
