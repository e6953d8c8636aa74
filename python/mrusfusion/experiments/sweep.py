"""Fusion over a grid of one or two weights (the paper's Fig. 8).

:func:`sweep` runs :func:`mrusfusion.fuse` at every point of a grid of ``tau1``..``tau4`` values
(at most two of them varying), in parallel over the grid points, and reports for each the
quantities of the paper's Fig. 8 (the contrast-to-noise ratio between two regions and the slope
of an intensity profile across an interface) and, when a ground truth is known, PSNR and MSSIM.
:func:`mrusfusion.experiments.figures.sweep_figure` draws the curves and a thumbnail of the
fused image at each point; ``mrusfusion sweep`` is the command.
"""
from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, cast

import numpy as np

from .. import metrics
from ..batch.engine import Outcome, run_tasks
from .._config import get_num_threads
from .._validation import as_image, check_weight
from ..fourier import DEFAULT_PLANNER
from ..fusion import fuse
from .tables import csv_text, write_text

__all__ = ["sweep", "SweepResult", "fidelity", "TAUS", "METRIC_COLUMNS"]

TAUS = ("tau1", "tau2", "tau3", "tau4")
#: Metric columns of :attr:`SweepResult.table`, present when their inputs were given.
METRIC_COLUMNS = ("cnr_x_db", "cnr_v_db", "slope_x", "slope_v", "psnr_x", "mssim_x", "psnr_v",
                  "mssim_v")


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Outcome of :func:`sweep`.

    Attributes
    ----------
    table : list of dict
        One row per grid point, in grid order (the first swept tau varies slowest). Keys:
        ``index``; ``tau1``..``tau4`` and ``gamma`` as used (grid values, the scalars given, or
        the automatic values); ``n_iter``, ``converged``; and, when their inputs were given,
        ``cnr_x_db``, ``cnr_v_db`` (CNR in dB between ``region_a`` and ``region_b`` in ``x``
        and ``v``), ``slope_x``, ``slope_v`` (profile slope, intensity per pixel),
        ``psnr_x``, ``mssim_x`` (``x`` against ``mr_true``), ``psnr_v``, ``mssim_v`` (``v``
        against ``us_true``).
    axes : dict
        The swept taus and their grid values, ``{"tau4": (1e-3, 1e-2, ...)}``, in grid order.
    images : tuple of ndarray
        The fused image ``x`` of each grid point (for thumbnails), in table order.
    seconds : tuple of float
        Wall time of each fusion, in table order (not in :attr:`table`, so that two runs give
        identical tables).
    wall_time : float
        Wall time of the whole sweep, in seconds.
    max_workers : int
        Number of fusions run at once.
    """

    table: List[dict]
    axes: Dict[str, Tuple[float, ...]]
    images: Tuple[np.ndarray, ...] = field(repr=False)
    seconds: Tuple[float, ...] = ()
    wall_time: float = float("nan")
    max_workers: int = 1

    @property
    def columns(self) -> List[str]:
        """Column names of :attr:`table`, in order."""
        return list(self.table[0]) if self.table else []

    @property
    def message(self) -> str:
        n = len(self.table)
        conv = sum(bool(r["converged"]) for r in self.table)
        grid = " x ".join(f"{len(v)} {k}" for k, v in self.axes.items())
        return (f"{n} fusion(s) over {grid} in {self.wall_time:.1f} s with {self.max_workers} "
                f"worker(s); {conv} of {n} converged")

    def best(self, metric: str, *, minimize: bool = False) -> dict:
        """The row with the largest (or, with ``minimize``, smallest) value of ``metric``.

        Parameters
        ----------
        metric : str
            A column of :attr:`table`, e.g. ``"psnr_x"`` or ``"cnr_v_db"``.
        minimize : bool, default False
            Pick the smallest value instead.

        Returns
        -------
        dict
            A copy of the row; ties go to the first in grid order. NaN values are ignored.

        Raises
        ------
        KeyError
            If ``metric`` is not a numeric column of the table.
        ValueError
            If every value of ``metric`` is NaN.
        """
        numeric = [c for c in self.columns if c in METRIC_COLUMNS or c in TAUS
                   or c in ("gamma", "n_iter")]
        if metric not in numeric:
            raise KeyError(f"no column {metric!r} to rank by; available: {', '.join(numeric)}")
        values = np.array([float(r[metric]) for r in self.table])
        if np.all(np.isnan(values)):
            raise ValueError(f"every value of {metric!r} is NaN")
        k = int(np.nanargmin(values) if minimize else np.nanargmax(values))
        return dict(self.table[k])

    def to_csv(self, path=None, *, digits: Optional[int] = None, overwrite: bool = False):
        """Write the table as CSV (a header line, then one line per grid point).

        Parameters
        ----------
        path : str or os.PathLike, optional
            Where to write; ``None`` returns the text instead.
        digits : int, optional
            Significant digits of the numbers; default: all (``repr``), which round-trips.
        overwrite : bool, default False
            Replace an existing file.

        Returns
        -------
        pathlib.Path or str
            The path written, or the CSV text when ``path`` is ``None``.
        """
        text = csv_text(self.table, digits=digits)
        if path is None:
            return text
        return write_text(path, text, overwrite=overwrite)


# --------------------------------------------------------------------------- validation


def _is_sequence(value) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim >= 1
    return isinstance(value, (list, tuple, range))


def _check_tau(value, name: str) -> float:
    # fuse's own bounds (tau1 = tau3 = 0 is no smoothing; tau2, tau4 > 0), checked here so
    # that a bad grid value is refused before any fusion runs
    return cast(float, check_weight(value, name, allow_none=False,
                                    allow_zero=name in ("tau1", "tau3")))


def _grid(taus: Dict[str, object]):
    """``(axes, fixed)``: the swept taus with their values, and the scalar (or None) ones."""
    axes: Dict[str, Tuple[float, ...]] = {}
    fixed: Dict[str, Optional[float]] = {}
    for name in TAUS:
        value = taus[name]
        if _is_sequence(value):
            arr = np.asarray(value, dtype=object)
            if arr.ndim != 1:
                raise ValueError(f"`{name}` must be a scalar or a 1-D sequence of values, got "
                                 f"shape {arr.shape}")
            if arr.size == 0:
                raise ValueError(f"`{name}` is an empty sequence; give at least one value")
            axes[name] = tuple(_check_tau(v, name) for v in arr)
        else:
            fixed[name] = None if value is None else _check_tau(value, name)
    if len(axes) > 2:
        raise ValueError(f"at most two taus may be sequences (a 1-D or 2-D grid), got "
                         f"{len(axes)}: {', '.join(axes)}; fix the others to a number or None")
    if not axes:
        raise ValueError("give at least one of tau1..tau4 as a sequence of values to sweep, "
                         "e.g. tau4=[1e-3, 1e-2, 1e-1]")
    return axes, fixed


def _check_regions(region_a, region_b, shape) -> bool:
    if (region_a is None) != (region_b is None):
        missing = "region_b" if region_b is None else "region_a"
        raise ValueError(f"the CNR needs two regions: `{missing}` is missing")
    if region_a is None:
        return False
    probe = np.zeros(shape)
    # the same checks cnr() will make, before any fusion runs
    metrics.region_values(probe, region_a, "region_a")
    metrics.region_values(probe, region_b, "region_b")
    return True


def _check_profile(profile, shape):
    if profile is None:
        return None
    try:
        start, end = profile
    except (TypeError, ValueError):
        raise TypeError("`profile` must be a pair of points ((r0, c0), (r1, c1)), got "
                        f"{profile!r}") from None
    metrics.profile(np.zeros(shape), start, end)  # raises on points outside or equal
    return (tuple(float(c) for c in start), tuple(float(c) for c in end))


def _check_truth(truth, name: str, shape):
    if truth is None:
        return None
    t = as_image(truth, name, dtype=np.float64)
    if t.shape != tuple(shape):
        raise ValueError(f"`{name}` must have the shape of the US image {tuple(shape)} (the grid "
                         f"of the fused images), got {t.shape}")
    if not float(t.max()) > 0:
        raise ValueError(f"`{name}` must have a positive maximum (its peak for PSNR and MSSIM)")
    return t


def fidelity(estimate: np.ndarray, truth: np.ndarray) -> Tuple[float, float, float]:
    """``(RMSE, PSNR, MSSIM)`` of ``estimate`` against ``truth`` after dividing both by
    ``max(truth)``: PSNR and MSSIM with data range 1, RMSE in units of that peak."""
    peak = float(np.max(truth))
    e = np.asarray(estimate, dtype=np.float64) / peak
    t = np.asarray(truth, dtype=np.float64) / peak
    return (metrics.rmse(e, t), metrics.psnr(e, t, data_range=1.0),
            metrics.mssim(e, t, data_range=1.0))


# --------------------------------------------------------------------------- sweep


def sweep(mr, us, *, tau1=None, tau2=None, tau3=None, tau4=None, region_a=None, region_b=None,
          profile=None, mr_true=None, us_true=None, max_workers: Optional[int] = None,
          progress: bool = False, **fuse_kwargs) -> SweepResult:
    """Fuse over a grid of one or two of ``tau1``..``tau4`` and measure each result.

    Parameters
    ----------
    mr, us : array_like
        Observed MR and US images, as for :func:`mrusfusion.fuse`.
    tau1, tau2, tau3, tau4 : float, sequence of float or None
        One or two of them are sequences: the grid (their Cartesian product, the first in
        ``tau1..tau4`` order varying slowest). The others are numbers (used as is) or ``None``
        (derived from the data by :func:`mrusfusion.fuse`).
    region_a, region_b : tuple of slice or bool array, optional
        Two regions of the US grid (e.g. ``np.s_[40:60, 80:100]`` or masks of the US shape);
        give both to report the CNR (dB) of ``x`` and ``v`` between them.
    profile : ((float, float), (float, float)), optional
        ``(start, end)`` points ``(row, col)`` on the US grid of a short segment crossing an
        interface; reports the slope of the least-squares line through the profile of ``x``
        and ``v``.
    mr_true, us_true : array_like, optional
        Ground truths on the US grid (simulations); report PSNR and MSSIM of ``x`` against
        ``mr_true`` and of ``v`` against ``us_true``.
    max_workers : int, optional
        Fusions run at once in a thread pool (the compiled kernels and FFTs release the GIL).
        Default: the number of grid points, at most the thread count of
        :func:`mrusfusion.get_num_threads`.
    progress : bool, default False
        Print a line on stderr as each grid point finishes.
    **fuse_kwargs
        Passed to :func:`mrusfusion.fuse` (``max_iter``, ``degree``, ``ratio``, ``psf``, ...).
        Each fusion runs with ``threads=1`` unless ``threads`` is given (the parallelism is
        over the grid points). ``planner_effort`` defaults to
        :data:`mrusfusion.fourier.DEFAULT_PLANNER` (``"FFTW_ESTIMATE"``) so that
        results do not depend on FFTW's timing-based plan choice: serial and parallel sweeps
        then agree exactly. (FFTW reuses plans measured earlier in the process for the same
        size and thread count, which can change the last bits.)

    Returns
    -------
    SweepResult
        ``.table`` (one dict per grid point), ``.to_csv(path)``, ``.best(metric)``.

    Raises
    ------
    ValueError
        If no tau or more than two taus are sequences, a value is out of range (``tau2``,
        ``tau4`` > 0; ``tau1``, ``tau3`` >= 0), only one region is given, a region is empty or
        has the wrong shape, a profile point lies outside the image, or a ground truth does not
        have the US shape.
    TypeError
        If a value is not a number, a region is neither slices nor a boolean mask, or a keyword
        is not an option of :func:`mrusfusion.fuse`.

    Notes
    -----
    CNR (dB) is ``20 log10(|mu_a - mu_b| / sqrt(sigma_a^2 + sigma_b^2))`` (DESIGN.md section 9).
    PSNR and MSSIM are computed after dividing the estimate and its truth by the maximum of the
    truth, with data range 1. The paper's Fig. 8: a small ``tau4`` gives an MR-like ``x`` (high
    CNR, soft interfaces), a large one a US-like ``x`` (sharper interfaces, more speckle).

    References
    ----------
    .. [1] O. El Mansouri et al., "Fusion of Magnetic Resonance and Ultrasound Images for
       Endometriosis Detection", IEEE Trans. Image Process. 29 (2020) 5324-5335, Fig. 8.

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion import phantom, simulate
    >>> sim = simulate(phantom((32, 32)), ratio=2, seed=0)
    >>> res = sweep(sim.mr, sim.us, tau4=[0.1, 1.0], mr_true=sim.mr_true, max_iter=3)
    >>> [row["tau4"] for row in res.table]
    [0.1, 1.0]
    >>> res.best("psnr_x")["tau4"] in (0.1, 1.0)
    True
    """
    axes, fixed = _grid({"tau1": tau1, "tau2": tau2, "tau3": tau3, "tau4": tau4})
    us_shape = np.shape(us)
    if len(us_shape) != 2:
        raise ValueError(f"`us` must be a 2-D array, got shape {us_shape}")
    has_cnr = _check_regions(region_a, region_b, us_shape)
    prof = _check_profile(profile, us_shape)
    mr_t = _check_truth(mr_true, "mr_true", us_shape)
    us_t = _check_truth(us_true, "us_true", us_shape)
    for key in ("progress", "callback"):
        if key in fuse_kwargs:
            raise TypeError(f"sweep() does not pass `{key}` to fuse (fusions run in parallel); "
                            "use progress=True for a line per grid point")
    points = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    n = len(points)
    if max_workers is None:
        workers = min(n, get_num_threads())
    else:
        if isinstance(max_workers, bool) or not isinstance(max_workers, (int, np.integer)):
            raise TypeError(f"`max_workers` must be a positive integer, got {max_workers!r}")
        if max_workers < 1:
            raise ValueError(f"`max_workers` must be a positive integer, got {max_workers}")
        workers = min(int(max_workers), n)
    kwargs = dict(fuse_kwargs)
    kwargs.setdefault("planner_effort", DEFAULT_PLANNER)
    # Parallelism is over grid points. One thread per fusion whatever the number of workers, so
    # that the numbers do not depend on max_workers (FFTW plans may depend on the thread count).
    kwargs.setdefault("threads", 1)

    def one(k: int):
        t0 = time.perf_counter()
        res = fuse(mr, us, **{**fixed, **points[k]}, **kwargs)
        w = res.weights
        row = {"index": k, "tau1": w.tau1, "tau2": w.tau2, "tau3": w.tau3, "tau4": w.tau4,
               "gamma": w.gamma, "n_iter": int(res.n_iter), "converged": bool(res.converged)}
        if has_cnr:
            row["cnr_x_db"] = metrics.cnr(res.x, region_a, region_b, db=True)
            row["cnr_v_db"] = metrics.cnr(res.v, region_a, region_b, db=True)
        if prof is not None:
            row["slope_x"] = metrics.profile_slope(res.x, *prof)
            row["slope_v"] = metrics.profile_slope(res.v, *prof)
        if mr_t is not None:
            _, row["psnr_x"], row["mssim_x"] = fidelity(res.x, mr_t)
        if us_t is not None:
            _, row["psnr_v"], row["mssim_v"] = fidelity(res.v, us_t)
        return row, res.x, time.perf_counter() - t0

    def report(k, row, seconds, done):
        if progress:
            at = ", ".join(f"{name} {points[k][name]:.3g}" for name in axes)
            print(f"sweep: {done}/{n} ({at}): {row['n_iter']} iteration(s), "
                  f"{'converged' if row['converged'] else 'not converged'}, {seconds:.1f} s",
                  file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    outcomes: Dict[int, Tuple[dict, np.ndarray, float]] = {}  # grid index -> result
    done_count = 0

    def on_done(o: Outcome) -> None:
        nonlocal done_count
        if not o.ok:  # stop at the first failure, as a loop would, with the fusion's own error
            raise o.exception if o.exception is not None else RuntimeError(o.error)
        outcomes[o.index] = o.value
        done_count += 1
        report(o.index, o.value[0], o.value[2], done_count)

    run_tasks(one, range(n), backend="threads", workers=workers, on_done=on_done)
    ordered = [outcomes[k] for k in range(n)]
    return SweepResult(table=[o[0] for o in ordered], axes=axes,
                       images=tuple(o[1] for o in ordered),
                       seconds=tuple(o[2] for o in ordered),
                       wall_time=time.perf_counter() - t_start, max_workers=workers)
