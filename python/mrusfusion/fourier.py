"""Planned real FFTs and the closed-form x-step (DESIGN.md section 6).

One :class:`FourierProblem` per image size, ratio, PSF and dtype: it owns the pyFFTW plans, the
PSF transfer function ``Lam``, the Laplacian symbol ``|D|^2`` and the fixed right-hand side
``fft2(C^T S^T y_m)``, all on half spectra. Only ``L`` changes between x-steps, so each trial
costs one inverse FFT; the forward FFTs of ``x_k`` and of the coupling gradient are shared by
all backtracking trials. Plans above FFTW_ESTIMATE are measured once per machine and recalled
from the wisdom file afterwards (:mod:`mrusfusion.wisdom`).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import pyfftw

from . import _core
from .operators import psf_spectrum
from .wisdom import planning

__all__ = ["FourierProblem", "dtd_symbol", "fold", "as_ratios", "DEFAULT_PLANNER", "PLANNERS"]

#: FFTW planner flag of reproducible runs, and ``fuse``'s default. FFTW_ESTIMATE plans in ms with
#: FFTW's wisdom emptied (:func:`mrusfusion.wisdom.planning`), so every process on a machine
#: gets the same plans and the same bits. FFTW_MEASURE picks algorithms by timing them: its plans
#: persist in the wisdom file and are then recalled in ms, but results hold bit for bit only on
#: one machine while that file is kept; at 600x600 its FFT pairs were 1.05-1.5x faster, a fusion
#: 1.03-1.06x.
DEFAULT_PLANNER = "FFTW_ESTIMATE"
#: The planner efforts FFTW accepts, fastest planning first.
PLANNERS = ("FFTW_ESTIMATE", "FFTW_MEASURE", "FFTW_PATIENT", "FFTW_EXHAUSTIVE")


def dtd_symbol(shape: Tuple[int, ...], *, real: bool = False,
               weights: Optional[Sequence[float]] = None) -> np.ndarray:
    """``sum_a w_a^2 |D_a|^2 = sum_a w_a^2 4 sin^2(pi k_a / n_a)`` on the (half) spectrum
    (DESIGN.md section 11; ``w_a = 1`` without ``weights``)."""
    shape = tuple(int(n) for n in shape)
    w = (1.0,) * len(shape) if weights is None else tuple(weights)
    out = np.zeros(shape[:-1] + ((shape[-1] // 2 + 1) if real else shape[-1],))
    for a, n in enumerate(shape):
        k = np.arange(out.shape[a])
        view = [1] * len(shape)
        view[a] = out.shape[a]
        out = out + w[a] ** 2 * (4.0 * np.sin(np.pi * k / n) ** 2).reshape(view)
    return out


def fold(q: np.ndarray, s) -> np.ndarray:
    """``B(Q)``: the mean of the ``prod(s_a)`` tiles of shape ``n / s`` of a full spectrum
    (decimation in Fourier); ``s`` is one ratio or one per axis."""
    ratios = (int(s),) * q.ndim if np.ndim(s) == 0 else tuple(int(r) for r in s)
    shape = []
    for n, r in zip(q.shape, ratios):
        shape += [r, n // r]
    return q.reshape(shape).mean(axis=tuple(range(0, 2 * q.ndim, 2)))


def as_ratios(ratio, ndim: int) -> Tuple[int, ...]:
    """One ratio per axis from an int or a sequence."""
    if np.ndim(ratio) == 0:
        return (int(ratio),) * ndim
    return tuple(int(r) for r in ratio)


class FourierProblem:
    """FFT plans and spectra for one fusion problem.

    Parameters
    ----------
    shape : tuple of int
        Fine-grid shape, 2-D or 3-D; each axis a multiple of its ratio.
    ratio : int or tuple of int
        Decimation ratio ``s``, one for every axis or one per axis.
    psf : ndarray
        Normalised PSF (see :func:`mrusfusion.operators.as_psf`).
    dtype : float32 or float64
        Working precision (complex64/complex128 spectra).
    threads : int
        FFTW and OpenMP threads.
    y_m : ndarray, optional
        MR observation (coarse grid), for the x-step right-hand side and the data term.
    planner_effort : str
        FFTW planner flag, one of :data:`PLANNERS`. ``FFTW_MEASURE`` and above time candidate
        algorithms once per size, dtype and thread count on a machine; the choice is kept in
        the wisdom file (:mod:`mrusfusion.wisdom`) and recalled by later processes.
    kernels : module
        ``mrusfusion._core`` (default) or its NumPy twin ``mrusfusion._reference``.
    weights : sequence of float, optional
        Difference weights ``h_ref / h_a`` (DESIGN.md section 11); None: all 1.

    Raises
    ------
    ValueError
        If ``planner_effort`` is not one of :data:`PLANNERS`.

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion.fourier import FourierProblem
    >>> fp = FourierProblem((32, 32), 2, np.ones((1, 1)), planner_effort="FFTW_ESTIMATE")
    >>> x = np.random.default_rng(0).random((32, 32))
    >>> bool(np.allclose(fp.inverse(fp.forward(x)), x))
    True
    """

    def __init__(self, shape, ratio: Union[int, Tuple[int, ...]], psf: np.ndarray,
                 dtype=np.float64, threads: int = 1,
                 y_m: Optional[np.ndarray] = None, planner_effort: str = DEFAULT_PLANNER,
                 kernels=_core, weights: Optional[Sequence[float]] = None):
        self.kernels = kernels
        self.shape = tuple(int(n) for n in shape)
        self.ndim = len(self.shape)
        self.ratios = as_ratios(ratio, self.ndim)
        # The kernels take one int when every axis has the same ratio (as 2-D callers pass).
        self.ratio = self.ratios[0] if len(set(self.ratios)) == 1 else self.ratios
        self.coarse_shape = tuple(n // s for n, s in zip(self.shape, self.ratios))
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        self.dtype = np.dtype(dtype)
        self.cdtype = np.dtype(np.complex64 if self.dtype == np.float32 else np.complex128)
        self.threads = int(threads)
        self.hshape = self.shape[:-1] + (self.shape[-1] // 2 + 1,)
        self.cshape = self.coarse_shape[:-1] + (self.coarse_shape[-1] // 2 + 1,)
        self._real = pyfftw.empty_aligned(self.shape, dtype=self.dtype)
        self._spec = pyfftw.empty_aligned(self.hshape, dtype=self.cdtype)
        if planner_effort not in PLANNERS:
            raise ValueError(f"`planner_effort` must be one of {', '.join(PLANNERS)}; "
                             f"got {planner_effort!r}")
        flags = (planner_effort,)
        with planning(planner_effort):  # measured plans come from, and go to, the wisdom file
            axes = tuple(range(self.ndim))
            self._fwd = pyfftw.FFTW(self._real, self._spec, axes=axes, direction="FFTW_FORWARD",
                                    flags=flags, threads=self.threads)
            self._inv = pyfftw.FFTW(self._spec, self._real, axes=axes, direction="FFTW_BACKWARD",
                                    flags=flags + ("FFTW_DESTROY_INPUT",), threads=self.threads)
        self.lam = np.ascontiguousarray(psf_spectrum(psf, self.shape, real=True), dtype=self.cdtype)
        self.dtd = np.ascontiguousarray(dtd_symbol(self.shape, real=True, weights=self.weights),
                                        dtype=self.dtype)
        #: Largest value of the symbol, ``4 sum_a w_a^2``.
        self.dtd_max = 4.0 * sum(w * w for w in (self.weights or (1.0,) * self.ndim))
        self._twork = self.empty_coarse_spec()
        self.ym_spec: Optional[np.ndarray] = None
        self.rhs_mr: Optional[np.ndarray] = None
        if y_m is not None:
            self.set_observation(y_m)

    @property
    def abs_lam2(self) -> np.ndarray:
        """``|Lam|^2`` on the full spectrum (float64), for GCV; computed on demand."""
        n2 = self.shape[-1]
        half = np.abs(self.lam.astype(np.complex128)) ** 2
        full = np.empty(self.shape)
        h2 = half.shape[-1]
        full[..., :h2] = half
        neg = half  # |Lam|^2 at -k on the leading axes
        for a in range(self.ndim - 1):
            neg = np.roll(np.flip(neg, axis=a), 1, axis=a)
        cols = np.arange(h2, n2)
        full[..., h2:] = neg[..., n2 - cols]
        return full

    def empty_real(self) -> np.ndarray:
        """An aligned real image buffer (FFTW can use it without copying)."""
        return pyfftw.empty_aligned(self.shape, dtype=self.dtype)

    def real_view(self, spec: np.ndarray) -> np.ndarray:
        """A real image sharing the memory of a half-spectrum buffer (which holds
        prod(n) / n_last * (n_last/2 + 1) complex numbers, enough room), to lend idle spectra as
        work images."""
        flat = spec.view(self.dtype).reshape(-1)
        return flat[: int(np.prod(self.shape))].reshape(self.shape)

    def flat(self, spec: np.ndarray) -> np.ndarray:
        """A half spectrum seen as a real array with 2 (n_last/2 + 1) values on its last axis
        (same memory), for the real-valued vector kernels."""
        return spec.view(self.dtype)

    def empty_spec(self) -> np.ndarray:
        """An aligned half-spectrum buffer."""
        return pyfftw.empty_aligned(self.hshape, dtype=self.cdtype)

    def empty_coarse_spec(self) -> np.ndarray:
        """A coarse half-spectrum buffer, ``cshape``: the work array ``Twork`` of the
        ``xstep_solve`` kernel (for calling the kernel directly, as the benchmark does)."""
        return np.empty(self.cshape, dtype=self.cdtype)

    def set_observation(self, y_m: np.ndarray) -> None:
        """Precompute ``Ym = rfftn(y_m)`` and ``R_m = fftn(C^T S^T y_m) = conj(Lam) tile(Ym)``
        (on the half spectrum: index ``k_a`` of the tiling reads index ``k_a mod m_a`` of
        ``Ym``)."""
        ym_full = np.fft.fftn(np.asarray(y_m, dtype=np.float64))
        index = np.ix_(*(np.arange(h) % m for h, m in zip(self.hshape, self.coarse_shape)))
        self.rhs_mr = np.conj(self.lam) * ym_full[index].astype(self.cdtype)
        self.ym_spec = np.ascontiguousarray(ym_full[..., : self.cshape[-1]], dtype=self.cdtype)

    def forward(self, x: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``rfft2(x)`` into ``out`` (an aligned half-spectrum buffer) or a new array."""
        if out is None:
            out = self.empty_spec()
        self._fwd(input_array=x, output_array=out)
        return out

    def inverse(self, spec: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``irfft2(spec)``; ``spec`` is preserved (copied to the plan's scratch input first)."""
        if out is None:
            out = self.empty_real()
        np.copyto(self._spec, spec)
        self._inv(input_array=self._spec, output_array=out, normalise_idft=True)
        return out

    def solve(self, L: float, tau1: float, Xk=None, Gk=None, out: Optional[np.ndarray] = None,
              image: Optional[np.ndarray] = None) -> np.ndarray:
        """Spectrum of ``argmin_x 1/2||y_m - S C x||^2 + tau1||grad x||^2 + L/2||x - z||^2`` with
        ``fft2(z) = Xk - Gk / L`` (Woodbury closed form; ``Xk``, ``Gk`` may be None = 0).

        With ``image``, also writes the solution itself there: the kernel leaves a copy of the
        spectrum in the inverse plan's input, so no separate copy pass is needed."""
        if out is None:
            out = self.empty_spec()
        second = self._spec if image is not None else None
        self.kernels.xstep_solve(self.rhs_mr, Xk, Gk, self.lam, self.dtd, self.shape[-1],
                                 self.ratio, float(tau1), float(L), self._twork, out, second,
                                 self.threads)
        if image is not None:
            self._inv(input_array=self._spec, output_array=image, normalise_idft=True)
        return out

    def smooth(self, r: np.ndarray, out: np.ndarray, shift: float, scale: float) -> np.ndarray:
        """``out = irfft2(rfft2(r) / (shift + scale |D|^2))``: one forward and one inverse FFT,
        scaled in place in the plans' own buffer (the v-step preconditioner)."""
        self._fwd(input_array=r, output_array=self._spec)
        self.kernels.spectral_scale(self._spec, self.dtd, float(shift), float(scale), self.threads)
        self._inv(input_array=self._spec, output_array=out, normalise_idft=True)
        return out

    def mr_residual(self, X: np.ndarray) -> float:
        """``||y_m - S C x||^2`` from ``X = rfft2(x)``."""
        return self.kernels.mr_residual_energy(X, self.lam, self.ym_spec, self.shape[-1],
                                               self.ratio, self.threads)
