"""Observation operators on the fine (US) grid, all periodic (DESIGN.md section 2).

Each linear operator has ``apply`` and ``adjoint``; the gradient magnitude, being non-linear, has
``apply`` and ``jacobian_transpose``. These are the reference operators: the solver uses the same
mathematics through planned FFTs (:mod:`mrusfusion.fourier`) and the C++ stencils.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from . import _core
from ._config import get_num_threads
from ._validation import as_image, check_direction, check_int, check_scalar

__all__ = [
    "gaussian_psf", "as_psf", "psf_spectrum", "Blur", "Decimation", "FiniteDifference",
    "DirectionalGradient", "GradientMagnitude", "make_gradient", "bicubic_upsample",
]


def gaussian_psf(size: int = 9, variance: float = 4.0, *, dtype=np.float64) -> np.ndarray:
    """Normalised isotropic Gaussian point-spread function.

    Parameters
    ----------
    size : int
        Side of the square kernel (odd sizes centre exactly on a pixel).
    variance : float
        Variance of the Gaussian in pixels^2 (the paper: 9x9, variance 4).

    Returns
    -------
    ndarray, shape (size, size)
        Kernel summing to 1.

    Examples
    --------
    >>> h = gaussian_psf(9, 4.0)
    >>> h.shape, round(float(h.sum()), 12)
    ((9, 9), 1.0)
    """
    size = check_int(size, "psf_size", low=1)
    variance = check_scalar(variance, "psf_variance", positive=True)
    r = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-0.5 * r**2 / variance)
    h = np.outer(g, g)
    return (h / h.sum()).astype(dtype)


def as_psf(psf, shape: Tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """Validate a PSF: ``None`` (paper default 9x9 Gaussian, variance 4), a ``(size, variance)``
    pair, or a 2-D kernel that sums to a positive value (normalised to sum 1) and fits the image."""
    if psf is None:
        psf = gaussian_psf(9, 4.0)
    elif isinstance(psf, tuple) and len(psf) == 2 and np.ndim(psf[0]) == 0:
        psf = gaussian_psf(psf[0], psf[1])
    h = as_image(psf, "psf", min_size=1, dtype=np.float64)
    if h.shape[0] > shape[0] or h.shape[1] > shape[1]:
        raise ValueError(f"`psf` of shape {h.shape} is larger than the image {tuple(shape)}")
    total = float(h.sum())
    if not total > 0:
        raise ValueError(f"`psf` must sum to a positive value, got {total:g}")
    return (h / total).astype(dtype)


def psf_spectrum(psf: np.ndarray, shape: Tuple[int, ...], *, real: bool = False) -> np.ndarray:
    """Transfer function ``Lam`` of a PSF centred so that blurring does not shift the image.

    The kernel is zero-padded to ``shape`` and rolled so its centre (index ``size // 2`` on each
    axis) sits at [0, 0]; ``Lam = fft2`` of that (``rfft2`` when ``real``).
    """
    h = np.zeros(shape, dtype=np.float64)
    k1, k2 = psf.shape
    h[:k1, :k2] = psf
    h = np.roll(h, (-(k1 // 2), -(k2 // 2)), axis=(0, 1))
    return np.fft.rfft2(h) if real else np.fft.fft2(h)


class Blur:
    """Circular convolution ``C`` with a PSF: ``C x = ifft2(Lam * fft2(x))``.

    Parameters
    ----------
    psf : array_like or (size, variance) or None
        The kernel (see :func:`as_psf`).
    shape : (int, int)
        Image shape on the fine grid.
    """

    def __init__(self, psf, shape: Tuple[int, int]):
        self.shape = tuple(shape)
        self.psf = as_psf(psf, self.shape)
        self.spectrum = psf_spectrum(self.psf, self.shape)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.real(np.fft.ifft2(self.spectrum * np.fft.fft2(x))).astype(x.dtype, copy=False)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        out = np.real(np.fft.ifft2(np.conj(self.spectrum) * np.fft.fft2(y)))
        return out.astype(y.dtype, copy=False)


@dataclass(frozen=True)
class Decimation:
    """Decimation ``S``: ``(S x)[i, j] = x[s i, s j]``; adjoint: zero-filling upsampling."""

    ratio: int

    def __post_init__(self):
        check_int(self.ratio, "ratio", low=1)

    def apply(self, x: np.ndarray) -> np.ndarray:
        s = self.ratio
        if x.shape[0] % s or x.shape[1] % s:
            raise ValueError(f"image shape {x.shape} is not a multiple of the ratio {s}")
        return np.ascontiguousarray(x[::s, ::s])

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        s = self.ratio
        out = np.zeros((y.shape[0] * s, y.shape[1] * s), dtype=y.dtype)
        out[::s, ::s] = y
        return out


@dataclass(frozen=True)
class FiniteDifference:
    """Periodic forward difference along ``axis`` (1: ``Dh``, along a row; 0: ``Dv``, down a
    column).

    ``(Dh x)[i, j] = x[i, j+1] - x[i, j]``; adjoint ``(Dh^T y)[i, j] = y[i, j-1] - y[i, j]``.
    """

    axis: int

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.roll(x, -1, axis=self.axis) - x

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return np.roll(y, 1, axis=self.axis) - y


class DirectionalGradient:
    """``g = Du x = u_v Dv x + u_h Dh x`` along the scan direction ``u = (u_v, u_h)`` (unit).

    ``apply`` and ``adjoint`` run the C++ stencils.
    """

    mode = 0

    def __init__(self, scan_direction=(1.0, 0.0), *, threads: Optional[int] = None):
        self.uv, self.uh = check_direction(scan_direction)
        self.eps = 0.0
        self.threads = threads

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        _core.gradient(x, 0, self.uv, self.uh, 0.0, out, get_num_threads(self.threads))
        return out

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        y = np.ascontiguousarray(y)
        out = np.empty_like(y)
        _core.gradient_adjoint(y, self.uv, self.uh, out, get_num_threads(self.threads))
        return out

    def jacobian_transpose(self, x: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``(dg/dx)^T r``: the operator is linear, so this is ``adjoint(r)``."""
        return self.adjoint(r)


class GradientMagnitude:
    """``g = sqrt((Dh x)^2 + (Dv x)^2 + eps^2)`` (the variant of the authors' code).

    ``eps`` > 0 keeps ``g`` differentiable where the image is flat.
    """

    mode = 1
    uv = 1.0
    uh = 0.0

    def __init__(self, eps: float = 1e-3, *, threads: Optional[int] = None):
        self.eps = check_scalar(eps, "eps", positive=True)
        self.threads = threads

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        _core.gradient(x, 1, 1.0, 0.0, self.eps, out, get_num_threads(self.threads))
        return out

    def jacobian_transpose(self, x: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``Dh^T(r Dh x / g) + Dv^T(r Dv x / g)``."""
        dh, dv = FiniteDifference(1), FiniteDifference(0)
        g = self.apply(x)
        return dh.adjoint(r * dh.apply(x) / g) + dv.adjoint(r * dv.apply(x) / g)


Gradient = Union[DirectionalGradient, GradientMagnitude]


def make_gradient(gradient: str = "directional", scan_direction=(1.0, 0.0), eps: float = 1e-3,
                  *, threads: Optional[int] = None) -> Gradient:
    """The gradient map ``g(x)`` of the polynomial link: ``"directional"`` (the paper's
    ``grad x^T u``) or ``"magnitude"`` (the authors' code)."""
    if gradient == "directional":
        return DirectionalGradient(scan_direction, threads=threads)
    if gradient == "magnitude":
        return GradientMagnitude(eps, threads=threads)
    raise ValueError(f"`gradient` must be 'directional' or 'magnitude', got {gradient!r}")


def _bspline3_weights(u: float):
    """Cubic B-spline weights of the taps -1, 0, 1, 2 at fractional offset ``u`` in [0, 1)."""
    return ((1 - u) ** 3 / 6.0, (3 * u**3 - 6 * u**2 + 4) / 6.0,
            (-3 * u**3 + 3 * u**2 + 3 * u + 1) / 6.0, u**3 / 6.0)


def _upsample_axis(c: np.ndarray, s: int, axis: int) -> np.ndarray:
    """Evaluate a periodic cubic B-spline with coefficients ``c`` at ``i / s`` along ``axis``."""
    shape = list(c.shape)
    shape[axis] *= s
    out = np.empty(shape, dtype=np.float64)
    taps = [np.roll(c, -k, axis=axis) for k in (-1, 0, 1, 2)]
    for r in range(s):
        w = _bspline3_weights(r / s)
        idx = [slice(None)] * c.ndim
        idx[axis] = slice(r, None, s)
        out[tuple(idx)] = w[0] * taps[0] + w[1] * taps[1] + w[2] * taps[2] + w[3] * taps[3]
    return out


def bicubic_upsample(y: np.ndarray, ratio: int) -> np.ndarray:
    """Cubic-spline interpolation of a coarse image onto the fine grid, aligned like ``S``.

    Coarse sample ``(i, j)`` lands on fine pixel ``(s i, s j)`` (periodic boundaries), so
    ``S(bicubic_upsample(y, s)) == y``; a centre-aligned resizer would shift the image by
    ``(s - 1) / 2`` pixels (DESIGN.md section 5). Interpolating cubic B-spline (as
    ``scipy.ndimage.map_coordinates(order=3, mode="grid-wrap")``), evaluated separably by
    polyphase filtering, so no coordinate grids are allocated.
    """
    from scipy import ndimage

    s = check_int(ratio, "ratio", low=1)
    if s == 1:
        return np.array(y, copy=True)
    c = ndimage.spline_filter(np.asarray(y, dtype=np.float64), order=3, mode="grid-wrap")
    out = _upsample_axis(_upsample_axis(c, s, 0), s, 1)
    return out.astype(y.dtype, copy=False)
