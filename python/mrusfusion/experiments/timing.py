"""Timing helpers of the benchmark suite: medians of repeated calls, the planned FFT pair that is
the unit of cost, and the wall time of one PALM iteration."""
from __future__ import annotations

import time
from typing import List

import numpy as np

from .. import _core
from .. import _reference as ref
from ..fourier import FourierProblem
from ..fusion import fuse_with_kernels

__all__ = ["median_ms", "fft_pair_ms", "iteration_times"]


def median_ms(fn, reps: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in ms, over ``reps`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1e3)


def fft_pair_ms(n: int, dtype, threads: int) -> float:
    """Median time of one planned rfft2 + irfft2 of an n x n image (FFTW_MEASURE plans)."""
    fp = FourierProblem((n, n), 1, np.ones((1, 1)), dtype, threads, None, "FFTW_MEASURE")
    x = fp.empty_real()
    x[...] = np.random.default_rng(0).random((n, n))
    X = fp.empty_spec()
    return median_ms(lambda: (fp.forward(x, X), fp.inverse(X, x)), reps=11)


def iteration_times(mr, us, iters: int, threads: int, backend: str = "native", **kw):
    """Median wall time of one PALM iteration. The problem's FFTs are planned with
    FFTW_MEASURE, as is the reference FFT pair, so that both use the same quality of plan."""
    stamps: List[float] = []
    kw.setdefault("planner_effort", "FFTW_MEASURE")
    kernels = ref if backend == "numpy" else _core
    res = fuse_with_kernels(kernels, mr, us, max_iter=iters, tol=0, threads=threads,
                            callback=lambda s: stamps.append(time.perf_counter()), **kw)
    per_iter = np.diff(stamps)
    return res, float(np.median(per_iter) * 1e3) if per_iter.size else float("nan")
