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
from ._validation import (as_image, check_direction, check_int, check_scalar, check_spacing,
                          difference_weights)

__all__ = [
    "gaussian_psf", "as_psf", "psf_spectrum", "Blur", "Decimation", "FiniteDifference",
    "DirectionalGradient", "GradientMagnitude", "make_gradient", "bicubic_upsample",
]


def gaussian_psf(size=9, variance=4.0, *, ndim: int = 2, dtype=np.float64) -> np.ndarray:
    """Normalised Gaussian point-spread function, separable, specified per axis.

    Parameters
    ----------
    size : int or sequence of int
        Side of the kernel (odd sizes centre exactly on a pixel), or one per axis.
    variance : float or sequence of float
        Variance of the Gaussian in pixels^2 (the paper: 9x9, variance 4), or one per axis.
    ndim : int
        2 (an image) or 3 (a volume); the length of ``size`` or ``variance`` when a sequence.

    Returns
    -------
    ndarray, shape ``size`` per axis
        Kernel summing to 1.

    Examples
    --------
    >>> h = gaussian_psf(9, 4.0)
    >>> h.shape, round(float(h.sum()), 12)
    ((9, 9), 1.0)
    >>> gaussian_psf((3, 5, 5), (1.0, 2.0, 2.0)).shape
    (3, 5, 5)
    """
    if np.ndim(size) == 1:
        ndim = len(size)
    elif np.ndim(variance) == 1:
        ndim = len(variance)
    sizes = [size] * ndim if np.ndim(size) == 0 else list(size)
    variances = [variance] * ndim if np.ndim(variance) == 0 else list(variance)
    if len(sizes) != ndim or len(variances) != ndim:
        raise ValueError(f"`psf_size` and `psf_variance` must have one value per axis ({ndim})")
    h = np.ones(())
    for k, v in zip(sizes, variances):
        k = check_int(k, "psf_size", low=1)
        v = check_scalar(v, "psf_variance", positive=True)
        r = np.arange(k) - (k - 1) / 2.0
        h = np.multiply.outer(h, np.exp(-0.5 * r**2 / v))
    return (h / h.sum()).astype(dtype)


def as_psf(psf, shape: Tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """Validate a PSF: ``None`` (paper default: Gaussian of side 9, variance 4 on each axis), a
    ``(size, variance)`` pair (each a number or one per axis), or a kernel of the image's
    dimensionality that sums to a positive value (normalised to sum 1) and fits the image."""
    ndim = len(shape)
    if psf is None:
        psf = gaussian_psf(9, 4.0, ndim=ndim)
    elif isinstance(psf, tuple) and len(psf) == 2 and np.ndim(psf[0]) == 0:
        psf = gaussian_psf(psf[0], psf[1], ndim=ndim)  # variance: a number or one per axis
    h = as_image(psf, "psf", min_size=1, dtype=np.float64, ndims=(ndim,))
    if any(k > n for k, n in zip(h.shape, shape)):
        raise ValueError(f"`psf` of shape {h.shape} is larger than the image {tuple(shape)}")
    total = float(h.sum())
    if not total > 0:
        raise ValueError(f"`psf` must sum to a positive value, got {total:g}")
    return (h / total).astype(dtype)


def psf_spectrum(psf: np.ndarray, shape: Tuple[int, ...], *, real: bool = False) -> np.ndarray:
    """Transfer function ``Lam`` of a PSF centred so that blurring does not shift the image.

    The kernel is zero-padded to ``shape`` and rolled so its centre (index ``size // 2`` on each
    axis) sits at the origin; ``Lam = fftn`` of that (``rfftn`` when ``real``).
    """
    h = np.zeros(shape, dtype=np.float64)
    h[tuple(slice(0, k) for k in psf.shape)] = psf
    h = np.roll(h, tuple(-(k // 2) for k in psf.shape), axis=tuple(range(psf.ndim)))
    return np.fft.rfftn(h) if real else np.fft.fftn(h)


class Blur:
    """Circular convolution ``C`` with a PSF: ``C x = ifftn(Lam * fftn(x))``.

    Parameters
    ----------
    psf : array_like or (size, variance) or None
        The kernel (see :func:`as_psf`).
    shape : tuple of int
        Image (or volume) shape on the fine grid.
    """

    def __init__(self, psf, shape: Tuple[int, ...]):
        self.shape = tuple(shape)
        self.psf = as_psf(psf, self.shape)
        self.spectrum = psf_spectrum(self.psf, self.shape)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.real(np.fft.ifftn(self.spectrum * np.fft.fftn(x))).astype(x.dtype, copy=False)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        out = np.real(np.fft.ifftn(np.conj(self.spectrum) * np.fft.fftn(y)))
        return out.astype(y.dtype, copy=False)


def _ratios(ratio, ndim: int) -> Tuple[int, ...]:
    if np.ndim(ratio) == 0:
        return (check_int(ratio, "ratio", low=1),) * ndim
    r = tuple(check_int(v, "ratio", low=1) for v in ratio)
    if len(r) != ndim:
        raise ValueError(f"`ratio` must have {ndim} components (one per axis), got {len(r)}")
    return r


@dataclass(frozen=True)
class Decimation:
    """Decimation ``S``: ``(S x)[i] = x[s_1 i_1, .., s_D i_D]``; adjoint: zero-filling
    upsampling. ``ratio`` is one int for every axis or one per axis."""

    ratio: Union[int, Tuple[int, ...]]

    def __post_init__(self):
        if np.ndim(self.ratio) == 0:
            check_int(self.ratio, "ratio", low=1)
        else:
            object.__setattr__(self, "ratio", tuple(check_int(v, "ratio", low=1)
                                                    for v in self.ratio))

    def apply(self, x: np.ndarray) -> np.ndarray:
        s = _ratios(self.ratio, x.ndim)
        if any(n % r for n, r in zip(x.shape, s)):
            raise ValueError(f"image shape {x.shape} is not a multiple of the ratio {self.ratio}")
        return np.ascontiguousarray(x[tuple(slice(None, None, r) for r in s)])

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        s = _ratios(self.ratio, y.ndim)
        out = np.zeros(tuple(n * r for n, r in zip(y.shape, s)), dtype=y.dtype)
        out[tuple(slice(None, None, r) for r in s)] = y
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
    """``g = Du x = sum_a u_a w_a D_a x`` along the scan direction ``u`` (unit, one component per
    axis: ``(u_v, u_h)`` for an image), with ``w_a = h_ref / h_a`` from the grid's ``spacing``
    (DESIGN.md section 11; all 1 without spacing).

    ``apply`` and ``adjoint`` run the C++ stencils.
    """

    mode = 0

    def __init__(self, scan_direction=(1.0, 0.0), *, spacing=None,
                 threads: Optional[int] = None):
        self.u = check_direction(scan_direction)
        self.weights = difference_weights(check_spacing(spacing, len(self.u)))
        self.eps = 0.0
        self.threads = threads

    @property
    def uv(self) -> float:
        """The component down the rows (second to last axis)."""
        return self.u[-2]

    @property
    def uh(self) -> float:
        """The component along a row (last axis)."""
        return self.u[-1]

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        _core.gradient(x, 0, self.u, 0.0, out, get_num_threads(self.threads),
                       weights=self.weights)
        return out

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        y = np.ascontiguousarray(y)
        out = np.empty_like(y)
        _core.gradient_adjoint(y, self.u, out, get_num_threads(self.threads),
                               weights=self.weights)
        return out

    def jacobian_transpose(self, x: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``(dg/dx)^T r``: the operator is linear, so this is ``adjoint(r)``."""
        return self.adjoint(r)


class GradientMagnitude:
    """``g = sqrt(sum_a (w_a D_a x)^2 + eps^2)`` (the variant of the authors' code), with
    ``w_a = h_ref / h_a`` from ``spacing`` (all 1 without).

    ``eps`` > 0 keeps ``g`` differentiable where the image is flat.
    """

    mode = 1
    u: Tuple[float, ...] = ()  # unused by the magnitude

    def __init__(self, eps: float = 1e-3, *, spacing=None, ndim: int = 2,
                 threads: Optional[int] = None):
        self.eps = check_scalar(eps, "eps", positive=True)
        self.weights = difference_weights(check_spacing(spacing, ndim))
        self.threads = threads

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        _core.gradient(x, 1, (), self.eps, out, get_num_threads(self.threads),
                       weights=self.weights)
        return out

    def jacobian_transpose(self, x: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``sum_a D_a^T(r w_a^2 D_a x / g)``."""
        w = self.weights or (1.0,) * x.ndim
        g = self.apply(x)
        return sum((FiniteDifference(a).adjoint(r * w[a] ** 2 * FiniteDifference(a).apply(x) / g)
                    for a in range(x.ndim)), np.zeros_like(x))


Gradient = Union[DirectionalGradient, GradientMagnitude]


def make_gradient(gradient: str = "directional", scan_direction=(1.0, 0.0), eps: float = 1e-3,
                  *, spacing=None, threads: Optional[int] = None) -> Gradient:
    """The gradient map ``g(x)`` of the polynomial link: ``"directional"`` (the paper's
    ``grad x^T u``) or ``"magnitude"`` (the authors' code). The number of axes is that of
    ``scan_direction``; ``spacing`` (one per axis) weights the differences (DESIGN.md 11)."""
    if gradient == "directional":
        return DirectionalGradient(scan_direction, spacing=spacing, threads=threads)
    if gradient == "magnitude":
        ndim = len(check_direction(scan_direction))
        return GradientMagnitude(eps, spacing=spacing, ndim=ndim, threads=threads)
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


def bicubic_upsample(y: np.ndarray, ratio) -> np.ndarray:
    """Cubic-spline interpolation of a coarse image or volume onto the fine grid, aligned like
    ``S``.

    Coarse sample ``i`` lands on fine pixel ``s * i`` (per axis, periodic boundaries), so
    ``S(bicubic_upsample(y, s)) == y``; a centre-aligned resizer would shift the image by
    ``(s - 1) / 2`` pixels (DESIGN.md section 5). Interpolating cubic B-spline (as
    ``scipy.ndimage.map_coordinates(order=3, mode="grid-wrap")``), evaluated separably by
    polyphase filtering along each axis, so no coordinate grids are allocated. ``ratio`` is one
    int or one per axis.
    """
    from scipy import ndimage

    s = _ratios(ratio, np.ndim(y))
    if all(r == 1 for r in s):
        return np.array(y, copy=True)
    c = np.asarray(y, dtype=np.float64)
    # Separable: prefilter and evaluate only along the axes that are upsampled (an axis with
    # ratio 1 keeps its samples as they are).
    for axis, r in enumerate(s):
        if r > 1:
            c = ndimage.spline_filter1d(c, order=3, axis=axis, mode="grid-wrap")
    for axis, r in enumerate(s):
        if r > 1:
            c = _upsample_axis(c, r, axis)
    return c.astype(y.dtype, copy=False)
