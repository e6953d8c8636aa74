"""Planned real FFTs and the closed-form x-step (DESIGN.md section 6).

One :class:`FourierProblem` per image size, ratio, PSF and dtype: it owns the pyFFTW plans, the
PSF transfer function ``Lam``, the Laplacian symbol ``|D|^2`` and the fixed right-hand side
``fft2(C^T S^T y_m)``, all on half spectra. Only ``L`` changes between x-steps, so each trial
costs one inverse FFT; the forward FFTs of ``x_k`` and of the coupling gradient are shared by
all backtracking trials. Plans above FFTW_ESTIMATE are measured once per machine and recalled
from the wisdom file afterwards (:mod:`mrusfusion.wisdom`).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import pyfftw

from . import _core
from .operators import psf_spectrum
from .wisdom import planning

__all__ = ["FourierProblem", "dtd_symbol", "fold", "DEFAULT_PLANNER", "PLANNERS"]

#: FFTW planner flag of reproducible runs, and ``fuse``'s default. FFTW_ESTIMATE plans in ms with
#: FFTW's wisdom emptied (:func:`mrusfusion.wisdom.planning`), so every process on a machine
#: gets the same plans and the same bits. FFTW_MEASURE picks algorithms by timing them: its plans
#: persist in the wisdom file and are then recalled in ms, but results hold bit for bit only on
#: one machine while that file is kept; at 600x600 its FFT pairs were 1.05-1.5x faster, a fusion
#: 1.03-1.06x.
DEFAULT_PLANNER = "FFTW_ESTIMATE"
#: The planner efforts FFTW accepts, fastest planning first.
PLANNERS = ("FFTW_ESTIMATE", "FFTW_MEASURE", "FFTW_PATIENT", "FFTW_EXHAUSTIVE")


def dtd_symbol(shape: Tuple[int, ...], *, real: bool = False) -> np.ndarray:
    """``|Dh|^2 + |Dv|^2 = 4 sin^2(pi l / n2) + 4 sin^2(pi k / n1)`` on the (half) spectrum."""
    n1, n2 = shape
    k = np.arange(n1)[:, None]
    l = np.arange(n2 // 2 + 1 if real else n2)[None, :]
    return 4.0 * np.sin(np.pi * l / n2) ** 2 + 4.0 * np.sin(np.pi * k / n1) ** 2


def fold(q: np.ndarray, s: int) -> np.ndarray:
    """``B(Q)``: the mean of the ``s x s`` tiles of a full (n1, n2) spectrum (decimation in
    Fourier)."""
    n1, n2 = q.shape
    return q.reshape(s, n1 // s, s, n2 // s).mean(axis=(0, 2))


class FourierProblem:
    """FFT plans and spectra for one fusion problem.

    Parameters
    ----------
    shape : (int, int)
        Fine-grid shape ``(n1, n2)``; each a multiple of ``ratio``.
    ratio : int
        Decimation ratio ``s``.
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

    def __init__(self, shape, ratio: int, psf: np.ndarray, dtype=np.float64, threads: int = 1,
                 y_m: Optional[np.ndarray] = None, planner_effort: str = DEFAULT_PLANNER,
                 kernels=_core):
        self.kernels = kernels
        self.shape = n1, n2 = tuple(int(n) for n in shape)
        self.ratio = s = int(ratio)
        self.dtype = np.dtype(dtype)
        self.cdtype = np.dtype(np.complex64 if self.dtype == np.float32 else np.complex128)
        self.threads = int(threads)
        self.hshape = (n1, n2 // 2 + 1)
        self.cshape = (n1 // s, (n2 // s) // 2 + 1)
        self._real = pyfftw.empty_aligned(self.shape, dtype=self.dtype)
        self._spec = pyfftw.empty_aligned(self.hshape, dtype=self.cdtype)
        if planner_effort not in PLANNERS:
            raise ValueError(f"`planner_effort` must be one of {', '.join(PLANNERS)}; "
                             f"got {planner_effort!r}")
        flags = (planner_effort,)
        with planning(planner_effort):  # measured plans come from, and go to, the wisdom file
            self._fwd = pyfftw.FFTW(self._real, self._spec, axes=(0, 1), direction="FFTW_FORWARD",
                                    flags=flags, threads=self.threads)
            self._inv = pyfftw.FFTW(self._spec, self._real, axes=(0, 1), direction="FFTW_BACKWARD",
                                    flags=flags + ("FFTW_DESTROY_INPUT",), threads=self.threads)
        self.lam = np.ascontiguousarray(psf_spectrum(psf, self.shape, real=True), dtype=self.cdtype)
        self.dtd = np.ascontiguousarray(dtd_symbol(self.shape, real=True), dtype=self.dtype)
        self._twork = self.empty_coarse_spec()
        self.ym_spec: Optional[np.ndarray] = None
        self.rhs_mr: Optional[np.ndarray] = None
        if y_m is not None:
            self.set_observation(y_m)

    @property
    def abs_lam2(self) -> np.ndarray:
        """``|Lam|^2`` on the full spectrum (float64), for GCV; computed on demand."""
        n1, n2 = self.shape
        half = np.abs(self.lam.astype(np.complex128)) ** 2
        full = np.empty(self.shape)
        full[:, : half.shape[1]] = half
        cols = np.arange(half.shape[1], n2)
        full[:, cols] = half[(-np.arange(n1)[:, None]) % n1, n2 - cols[None, :]]
        return full

    def empty_real(self) -> np.ndarray:
        """An aligned real image buffer (FFTW can use it without copying)."""
        return pyfftw.empty_aligned(self.shape, dtype=self.dtype)

    def real_view(self, spec: np.ndarray) -> np.ndarray:
        """An (n1, n2) real image sharing the memory of a half-spectrum buffer (which holds
        n1 * (n2/2 + 1) complex numbers, enough room), to lend idle spectra as work images."""
        flat = spec.view(self.dtype).reshape(-1)
        return flat[: self.shape[0] * self.shape[1]].reshape(self.shape)

    def flat(self, spec: np.ndarray) -> np.ndarray:
        """A half spectrum seen as an (n1, 2 (n2/2 + 1)) real array (same memory), for the
        real-valued vector kernels."""
        return spec.view(self.dtype)

    def empty_spec(self) -> np.ndarray:
        """An aligned half-spectrum buffer."""
        return pyfftw.empty_aligned(self.hshape, dtype=self.cdtype)

    def empty_coarse_spec(self) -> np.ndarray:
        """A coarse half-spectrum buffer, ``cshape``: the work array ``Twork`` of the
        ``xstep_solve`` kernel (for calling the kernel directly, as the benchmark does)."""
        return np.empty(self.cshape, dtype=self.cdtype)

    def set_observation(self, y_m: np.ndarray) -> None:
        """Precompute ``Ym = rfft2(y_m)`` and ``R_m = fft2(C^T S^T y_m) = conj(Lam) tile(Ym)``
        (on the half spectrum: column ``l`` of the tiling reads column ``l mod m2`` of ``Ym``)."""
        n1, n2 = self.shape
        m1, m2 = n1 // self.ratio, n2 // self.ratio
        ym_full = np.fft.fft2(np.asarray(y_m, dtype=np.float64))
        rows = np.arange(n1) % m1
        cols = np.arange(self.hshape[1]) % m2
        self.rhs_mr = np.conj(self.lam) * ym_full[rows[:, None], cols[None, :]].astype(self.cdtype)
        self.ym_spec = np.ascontiguousarray(ym_full[:, : self.cshape[1]], dtype=self.cdtype)

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
        self.kernels.xstep_solve(self.rhs_mr, Xk, Gk, self.lam, self.dtd, self.shape[1], self.ratio,
                                 float(tau1), float(L), self._twork, out, second, self.threads)
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
        return self.kernels.mr_residual_energy(X, self.lam, self.ym_spec, self.shape[1], self.ratio,
                                        self.threads)
