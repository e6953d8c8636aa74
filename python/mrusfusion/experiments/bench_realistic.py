"""Benchmark rows from realistic cases (issue 17): where an iteration's time goes, in FFT pairs.

The suite's other rows fuse the paper's simulated phantom, whose automatic weights give an easy
solve. Here the pairs come from :func:`mrusfusion.simulate.simulate_bmode` (correlated speckle,
weights as real data gives them), with the strong coupling of the paper's real-data runs
(``tau = (0.03, 1, 1, 1)``) as a third case, and each row splits an iteration into the x-step
(its backtracking trials and J^T), the v-step (Newton and CG), the link evaluations, and the rest
(Python and the convergence test), in units of one planned real FFT pair of the same size.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import numpy as np

from .._config import get_num_threads
from ..data import phantom
from ..fusion import fuse
from ..simulate import simulate, simulate_bmode
from .timing import fft_pair_ms, iteration_times

__all__ = ["realistic_rows", "realistic_markdown", "STRONG"]

#: The strong coupling of the paper's real-data runs.
STRONG = {"tau1": 0.03, "tau2": 1.0, "tau3": 1.0, "tau4": 1.0}


def _cases(n: int, ratio: int):
    real = simulate_bmode(phantom((n, n)), ratio, mr_snr_db=35.0, seed=0)
    paper = simulate(phantom((n, n)), ratio, seed=0)
    return [("realistic, automatic weights", real.mr, real.us, {"psf": real.psf}),
            ("realistic, strong coupling", real.mr, real.us, {"psf": real.psf, **STRONG}),
            ("paper protocol, automatic weights", paper.mr, paper.us, {})]


def realistic_rows(n: int = 600, ratio: int = 4, *, iters: int = 10,
                   threads: Optional[int] = None, log=print) -> List[Dict[str, Any]]:
    """One row per case: ms and FFT pairs per iteration, their split, and the whole fusion.

    Parameters
    ----------
    n : int
        Side of the US grid (square).
    ratio : int
    iters : int
        Iterations timed (``tol = 0``; the median of their wall times).
    threads : int, optional
        Default: all cores.

    Returns
    -------
    list of dict
        ``case``, ``iter_ms`` (median), ``fft_pair_ms``, ``fft_pairs`` (median iteration);
        ``mean_fft_pairs`` (the mean iteration, early ones included) and its split, in FFT pairs:
        ``x_step`` (trials and J^T), ``v_step``, ``link`` (evaluations inside both) and
        ``other`` (Python, the convergence test); ``trials``, ``newton``, ``cg`` per
        iteration; and for ``fuse`` with its defaults to convergence, set-up included:
        ``iterations``, ``seconds``, ``setup_s``, ``total_fft_pairs``.
    """
    t = threads or get_num_threads()
    rows = []
    for name, mr, us, kw in _cases(n, ratio):
        fft_before = fft_pair_ms(n, np.float64, t)
        res, it_ms = iteration_times(mr, us, iters, t, ratio=ratio, **kw)
        fft = 0.5 * (fft_before + fft_pair_ms(n, np.float64, t))
        T, k = res.timings, max(res.n_iter, 1)
        x_ms, v_ms = T["x_step"] / k * 1e3, T["v_step"] / k * 1e3
        row: Dict[str, Any] = {
            "case": name, "size": n, "ratio": ratio, "threads": t, "iter_ms": it_ms,
            "fft_pair_ms": fft, "fft_pairs": it_ms / fft, "x_step": x_ms / fft,
            "v_step": v_ms / fft, "link": T["link"] / k * 1e3 / fft,
            "mean_fft_pairs": T["solve"] / k * 1e3 / fft,
            "other": max(T["solve"] / k * 1e3 - x_ms - v_ms, 0.0) / fft,
            "trials": float(np.mean(res.trials)), "newton": float(np.mean(res.vstep_newton)),
            "cg": float(np.mean(res.vstep_cg))}
        t0 = time.perf_counter()
        full = fuse(mr, us, ratio=ratio, threads=t, **kw)
        seconds = time.perf_counter() - t0
        row.update(iterations=int(full.n_iter), converged=bool(full.converged),
                   seconds=seconds, setup_s=full.timings["setup"],
                   total_fft_pairs=seconds * 1e3 / fft)
        rows.append(row)
        if log is not None:
            log(f"{name} {n}x{n} r{ratio}: {it_ms:.1f} ms/iter = {row['fft_pairs']:.1f} FFT "
                f"pairs (x {row['x_step']:.1f}, v {row['v_step']:.1f}, of which link "
                f"{row['link']:.1f}; other {row['other']:.1f}); fuse() {full.n_iter} it, "
                f"{seconds:.2f} s = {row['total_fft_pairs']:.0f} FFT pairs")
    return rows


def realistic_markdown(rows: List[Dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| case | ms/iter (median) | FFT pairs (median) | FFT pairs (mean) | x-step "
             "| v-step | of which link | other | L trials | Newton | CG | fuse(): iterations "
             "| seconds | FFT pairs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['iter_ms']:.1f} | {r['fft_pairs']:.1f} "
                     f"| {r['mean_fft_pairs']:.1f} | {r['x_step']:.1f} | {r['v_step']:.1f} "
                     f"| {r['link']:.1f} "
                     f"| {r['other']:.1f} | {r['trials']:.2f} | {r['newton']:.2f} "
                     f"| {r['cg']:.2f} | {r['iterations']} | {r['seconds']:.2f} "
                     f"| {r['total_fft_pairs']:.0f} |")
    return "\n".join(lines) + "\n"
