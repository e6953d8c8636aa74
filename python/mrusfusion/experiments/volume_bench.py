"""Benchmark rows for volumes (issue 15): the cost of a PALM iteration of a 3-D fusion in units
of one planned real 3-D FFT pair (forward and inverse) of the US grid, measured in the same run,
and the time and iteration count of a fusion to convergence with the defaults.

Run ``python -m mrusfusion.experiments.volume_bench [--shape 128 128 64] [--ratio 2 2 4]
[--threads 2] [--iters 6] [--json out.json]``. Nothing here is asserted.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Dict, Sequence

import numpy as np

from ..data import phantom3d
from ..fourier import FourierProblem
from ..fusion import fuse
from ..simulate import simulate
from .timing import iteration_times, median_ms

__all__ = ["fft_pair_3d_ms", "volume_row"]


def fft_pair_3d_ms(shape: Sequence[int], dtype, threads: int) -> float:
    """Median time of one planned rfftn + irfftn over a volume of ``shape`` (FFTW_MEASURE)."""
    fp = FourierProblem(tuple(shape), 1, np.ones((1, 1, 1)), dtype, threads, None,
                        "FFTW_MEASURE")
    x = fp.empty_real()
    x[...] = np.random.default_rng(0).random(tuple(shape))
    X = fp.empty_spec()
    return median_ms(lambda: (fp.forward(x, X), fp.inverse(X, x)), reps=7)


def volume_row(shape: Sequence[int] = (128, 128, 64), ratio: Sequence[int] = (2, 2, 4), *,
               iters: int = 6, threads: int = 2, dtype=np.float64,
               converge: bool = True) -> Dict[str, object]:
    """One benchmark row: ms per iteration and in FFT pairs, set-up time, and (``converge``) a
    fusion with the defaults to convergence, on the 3-D phantom simulated with ``ratio``.

    The FFT pair is timed before and after the iterations and the two medians averaged, as the
    2-D rows do (the machine is shared)."""
    shape, ratio = tuple(int(n) for n in shape), tuple(int(r) for r in ratio)
    sim = simulate(phantom3d(shape), ratio, seed=0)
    mr, us = sim.mr.astype(dtype), sim.us.astype(dtype)
    fft_before = fft_pair_3d_ms(shape, dtype, threads)
    res, it_ms = iteration_times(mr, us, iters, threads)
    fft = 0.5 * (fft_before + fft_pair_3d_ms(shape, dtype, threads))
    row: Dict[str, object] = {
        "shape": list(shape), "ratio": list(ratio), "dtype": np.dtype(dtype).name,
        "threads": threads, "iter_ms": it_ms, "fft_pair_ms": fft, "fft_pairs": it_ms / fft,
        "setup_s": float(res.timings.get("setup", float("nan"))),
    }
    if converge:
        t = time.perf_counter()
        full = fuse(mr, us, threads=threads)
        row.update(converge_s=time.perf_counter() - t, converge_iter=int(full.n_iter),
                   converged=bool(full.converged))
    return row


def main(argv=None) -> Dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=int, nargs=3, default=(128, 128, 64))
    p.add_argument("--ratio", type=int, nargs=3, default=(2, 2, 4))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=6)
    p.add_argument("--no-converge", action="store_true")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    row = volume_row(a.shape, a.ratio, iters=a.iters, threads=a.threads,
                     converge=not a.no_converge)
    print(json.dumps(row, indent=1))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(row, fh, indent=1)
    return row


if __name__ == "__main__":  # pragma: no cover
    main()
