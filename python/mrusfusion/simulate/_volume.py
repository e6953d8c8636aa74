"""NumPy/SciPy pieces of the simulators for 3-D volumes (DESIGN.md sections 8, 11 and 14).

The 2-D simulators use the engine's operators; for a volume the same operations are written
here with FFTs, for any number of axes: a separable Gaussian PSF, its periodic convolution,
decimation by one integer per axis, the periodic forward differences of the link's ``g(x)``
(``sqrt(sum_a (D_a x)^2 + eps^2)`` or ``sum_a u_a D_a x``) and the polynomial ``f(x, g)``.
When the engine takes volumes, these give the same numbers as its operators.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from .._validation import check_int, check_scalar, float_dtype
from ..link import exponents

__all__ = ["as_volume", "per_axis", "gaussian_psf_nd", "blur", "decimate", "link_features",
           "link_values", "unit_vector", "us_psf_nd", "autocorrelation_area"]


def as_volume(a, name: str, *, dtype=None, min_size: int = 2) -> np.ndarray:
    """A 3-D real finite array as a C-contiguous float copy (the package dtype policy)."""
    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"`{name}` must be a 3-D array of real numbers, got {type(a).__name__}")
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a 3-D array of real numbers, got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(f"`{name}` must be a 3-D array, got shape {arr.shape}")
    if min(arr.shape) < min_size:
        raise ValueError(f"`{name}` must have at least {min_size} voxels per axis, got shape "
                         f"{arr.shape}")
    out = np.array(arr, dtype=float_dtype(arr.dtype) if dtype is None else dtype, order="C")
    if not np.isfinite(out).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return out


def per_axis(value, name: str, ndim: int, *, integer: bool = True) -> tuple:
    """``value`` (one number or a sequence of ``ndim``) as a tuple of ``ndim`` positive
    numbers (integers when ``integer``)."""
    values = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else (value,) * ndim
    if len(values) != ndim:
        raise ValueError(f"`{name}` must be one number or {ndim} (one per axis), got "
                         f"{len(values)}: {tuple(values)!r}")
    if integer:
        return tuple(check_int(v, name, low=1) for v in values)
    return tuple(check_scalar(v, name, positive=True) for v in values)


def gaussian_psf_nd(size, variance, ndim: int) -> np.ndarray:
    """Normalised separable Gaussian kernel; ``size`` and ``variance`` (pixels^2) per axis or
    one for all. In 2-D with one size and variance it is :func:`~mrusfusion.operators.
    gaussian_psf`."""
    sizes = per_axis(size, "psf_size", ndim)
    variances = per_axis(variance, "psf_variance", ndim, integer=False)
    h = np.ones(())
    for n, var in zip(sizes, variances):
        r = np.arange(n) - (n - 1) / 2.0
        h = np.multiply.outer(h, np.exp(-0.5 * r**2 / var))
    return h / h.sum()


def blur(x: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Periodic convolution with ``psf`` centred at its middle voxel (``C x`` of DESIGN.md)."""
    if psf.ndim != x.ndim or any(k > n for k, n in zip(psf.shape, x.shape)):
        raise ValueError(f"the PSF of shape {psf.shape} does not fit the grid {x.shape}")
    kernel = np.zeros(x.shape)
    kernel[tuple(slice(k) for k in psf.shape)] = psf
    kernel = np.roll(kernel, [-(k // 2) for k in psf.shape], axis=tuple(range(x.ndim)))
    axes = tuple(range(x.ndim))
    return np.fft.irfftn(np.fft.rfftn(x) * np.fft.rfftn(kernel), s=x.shape, axes=axes)


def decimate(x: np.ndarray, ratios: Sequence[int]) -> np.ndarray:
    """``S x``: the samples ``(s_1 i_1, .., s_D i_D)``."""
    return np.ascontiguousarray(x[tuple(slice(None, None, s) for s in ratios)])


def unit_vector(direction, ndim: int) -> Tuple[float, ...]:
    """A beam direction with ``ndim`` components, normalised (``None``: down axis 0)."""
    if direction is None:
        return (1.0,) + (0.0,) * (ndim - 1)
    u = np.asarray(direction, dtype=np.float64).ravel()
    if u.size != ndim or not np.all(np.isfinite(u)) or not np.any(u):
        raise ValueError(f"`scan_direction` must be {ndim} finite numbers, not all zero, got "
                         f"{direction!r}")
    return tuple(float(v) for v in u / np.linalg.norm(u))


def link_features(x: np.ndarray, gradient: str, u: Sequence[float], eps: float) -> np.ndarray:
    """``g(x)`` with periodic forward differences ``D_a x = x[i + e_a] - x[i]``."""
    diffs = [np.roll(x, -1, axis=a) - x for a in range(x.ndim)]
    if gradient == "magnitude":
        return np.sqrt(sum(d * d for d in diffs) + eps * eps)
    if gradient == "directional":
        return sum(ua * d for ua, d in zip(u, diffs))
    raise ValueError(f"`gradient` must be 'directional' or 'magnitude', got {gradient!r}")


def link_values(coeffs: np.ndarray, degree: int, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``f(x, g) = sum_{p+q<=d} c_pq x^p g^q`` in the package's q-major order."""
    out = np.zeros_like(x)
    for c, (p, q) in zip(coeffs, exponents(degree)):
        if c != 0:
            out += c * x**p * g**q
    return out


def us_psf_nd(shape, u, wavelength: float, axial_sigma: float,
              lateral_sigma: float) -> np.ndarray:
    """Complex baseband US PSF on the periodic grid, centred at the origin, ``sum |h|^2 = 1``:
    Gaussian along the beam ``u`` times the carrier, Gaussian of ``lateral_sigma`` across it
    (in every transverse direction)."""
    d = np.meshgrid(*(np.fft.fftfreq(n) * n for n in shape), indexing="ij", sparse=True)
    axial = sum(ua * da for ua, da in zip(u, d))
    across2 = np.maximum(sum(da * da for da in d) - axial**2, 0.0)
    h = np.exp(-0.5 * (axial / axial_sigma) ** 2 - 0.5 * across2 / lateral_sigma**2
               + 2j * np.pi * axial / wavelength)
    return h / np.sqrt(np.sum(np.abs(h) ** 2))


def autocorrelation_area(residual: np.ndarray, valid: np.ndarray) -> float:
    """Voxels where the normalised periodic autocorrelation of the residual exceeds 1/2,
    counted on the connected lobe around zero lag (any number of axes)."""
    from scipy import ndimage

    r = np.where(valid, residual - residual[valid].mean(), 0.0)
    f = np.fft.rfftn(r)
    ac = np.fft.irfftn(f * np.conj(f), s=r.shape, axes=tuple(range(r.ndim)))
    ac = np.fft.fftshift(ac / ac.flat[0])
    lobes, _ = ndimage.label(ac > 0.5)
    return float(np.count_nonzero(lobes == lobes[tuple(n // 2 for n in r.shape)]))

