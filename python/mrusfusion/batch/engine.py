"""One engine for every grid of work: fusions of a cohort, a weight sweep, a reproduction.

:func:`run_tasks` runs a function over items and hands each outcome to a callback in the
calling process as soon as it is known, in completion order. Two back ends:

- ``"dask"``: one task per item on ``dask.distributed``, on the given client or scheduler
  address, or on a :class:`~distributed.LocalCluster` of worker processes started for the run
  (and closed after it). A worker that dies has its tasks rescheduled by the scheduler.
- ``"threads"``: a thread pool in this process (the compiled kernels and the FFTs release the
  GIL), or a plain loop for one worker. No extra dependency.

Every item's outcome is an :class:`Outcome`: a failing item is recorded with its error text and
never stops the others.
"""
from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Optional, Sequence

__all__ = ["Outcome", "run_tasks", "plan_workers", "require_distributed", "BACKENDS",
           "DISTRIBUTED_HINT"]

BACKENDS = ("threads", "dask")
DISTRIBUTED_HINT = 'pip install "mrusfusion[distributed]"'


@dataclass(frozen=True)
class Outcome:
    """What one item gave.

    Attributes
    ----------
    index : int
        Position of the item in the input.
    ok : bool
    value : object
        The function's return value (``None`` after a failure).
    error : str
        ``"TypeName: message"`` after a failure, else ``""``.
    seconds : float
        Time the function took where it ran.
    exception : BaseException or None
        The exception itself, on the thread back end (for callers that re-raise it).
    """

    index: int
    ok: bool
    value: Any
    error: str
    seconds: float
    exception: Optional[BaseException] = field(default=None, repr=False, compare=False)


def _guarded(fn: Callable[[Any], Any], index: int, item: Any, keep: bool = True) -> Outcome:
    t0 = time.perf_counter()
    try:
        value = fn(item)
    except Exception as exc:  # recorded, not raised: one bad item must not stop a batch
        text = f"{type(exc).__name__}: {exc}"
        if os.environ.get("MRUSFUSION_BATCH_TRACEBACK"):
            text += "\n" + traceback.format_exc()
        return Outcome(index, False, None, text, time.perf_counter() - t0, exc if keep else None)
    return Outcome(index, True, value, "", time.perf_counter() - t0)


def require_distributed():
    """Import ``distributed``, or raise an ImportError that says what to install."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"running on Dask needs dask and distributed: {DISTRIBUTED_HINT}"
                          ) from exc
    return distributed


def plan_workers(n_items: int, workers: Optional[int] = None,
                 cores: Optional[int] = None) -> tuple:
    """``(workers, threads_per_worker)`` so that their product never exceeds the cores.

    Parameters
    ----------
    n_items : int
        Items to run (no more workers than items).
    workers : int, optional
        Wanted workers; default: one per core.
    cores : int, optional
        Cores to share; default ``os.cpu_count()``.

    Examples
    --------
    >>> plan_workers(10, cores=8)
    (8, 1)
    >>> plan_workers(2, cores=8)
    (2, 4)
    >>> plan_workers(10, workers=3, cores=8)
    (3, 2)
    """
    cores = max(1, int(cores or os.cpu_count() or 1))
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"`workers` must be a positive integer, got {workers!r}")
    w = max(1, min(workers or cores, cores, max(n_items, 1)))
    return w, max(1, cores // w)


def _run_threads(fn, items: Sequence, workers: int, on_done) -> List[Outcome]:
    out: List[Outcome] = []
    if workers <= 1:
        for i, item in enumerate(items):
            o = _guarded(fn, i, item)
            out.append(o)
            if on_done is not None:
                on_done(o)
        return out
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mrusfusion") as ex:
        futures = [ex.submit(_guarded, fn, i, item) for i, item in enumerate(items)]
        try:
            for fut in as_completed(futures):
                o = fut.result()
                out.append(o)
                if on_done is not None:
                    on_done(o)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return out


def _client(client, workers: int, threads: int):
    """``(client, cluster to close or None)``."""
    distributed = require_distributed()
    if client is None:
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, dashboard_address=":0",
                                           env={"OMP_NUM_THREADS": str(threads),
                                                "OPENBLAS_NUM_THREADS": "1",
                                                "MKL_NUM_THREADS": "1",
                                                "MRUSFUSION_NUM_THREADS": str(threads)})
        return distributed.Client(cluster), cluster
    if isinstance(client, str):
        return distributed.Client(client), None
    return client, None


def _run_dask(fn, items: Sequence, client, workers: int, threads: int, on_done) -> List[Outcome]:
    distributed = require_distributed()
    cl, cluster = _client(client, workers, threads)
    own_client = cl is not client
    out: List[Outcome] = []
    try:
        futures = [cl.submit(_guarded, fn, i, item, False, pure=False)
                   for i, item in enumerate(items)]
        for fut in distributed.as_completed(futures):
            try:
                o = fut.result()
            except Exception as exc:  # the task itself was lost (e.g. killed too often)
                o = Outcome(futures.index(fut), False, None, f"{type(exc).__name__}: {exc}", 0.0)
            out.append(o)
            if on_done is not None:
                on_done(o)
    finally:
        if own_client:
            cl.close()
        if cluster is not None:
            cluster.close()
    return out


def run_tasks(fn: Callable[[Any], Any], items: Iterable, *, backend: str = "threads",
              client=None, workers: Optional[int] = None, threads: Optional[int] = None,
              on_done: Optional[Callable[[Outcome], None]] = None) -> List[Outcome]:
    """Run ``fn`` on every item; report each :class:`Outcome` as it completes.

    Parameters
    ----------
    fn : callable
        Takes one item. On ``"dask"`` it must be importable by the workers (a module-level
        function or a ``functools.partial`` of one) and its items picklable.
    items : iterable
    backend : {"threads", "dask"}
        Where the work runs (see the module notes). A ``client`` implies ``"dask"``.
    client : distributed.Client or str, optional
        An existing client, or a scheduler address; default: a local cluster of
        ``workers`` processes for this run.
    workers : int, optional
        Workers of a local cluster or thread pool; default one per core, at most one per item.
    threads : int, optional
        Threads each task may use (OpenMP, FFTW, BLAS in the local cluster's workers);
        default ``cores // workers``.
    on_done : callable, optional
        Called in this process with each :class:`Outcome` as it completes.

    Returns
    -------
    list of Outcome
        In completion order (``Outcome.index`` gives the item).

    Raises
    ------
    ValueError
        If ``backend`` is unknown or ``workers`` is not a positive integer.
    ImportError
        If ``"dask"`` is asked and dask/distributed are not installed.

    Examples
    --------
    >>> outs = run_tasks(lambda k: 10 // k, [1, 0, 5], workers=1)
    >>> [(o.index, o.ok, o.value) for o in outs]
    [(0, True, 10), (1, False, None), (2, True, 2)]
    >>> outs[1].error
    'ZeroDivisionError: integer division or modulo by zero'
    """
    items = list(items)
    if client is not None:
        backend = "dask"
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}, got {backend!r}")
    w, t = plan_workers(len(items), workers)
    if threads is not None:
        t = threads
    if not items:
        return []
    if backend == "threads":
        return _run_threads(fn, items, w, on_done)
    return _run_dask(fn, items, client, w, t, on_done)
