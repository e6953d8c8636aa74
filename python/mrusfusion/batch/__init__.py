"""Many fusions at once: a cohort on Dask, and the one engine behind every grid of work.

- :func:`fuse_many`: fuse each pair of a manifest (or a list) as one task on
  ``dask.distributed`` (a local cluster of worker processes, or yours), each result written as
  soon as it is done, a summary table, resumable reruns (:mod:`.runner`).
- :func:`read_manifest` and :class:`Pair`: the pairs of a batch (:mod:`.manifest`).
- :func:`run_tasks`: the engine (:mod:`.engine`), on Dask or on a thread pool; ``sweep`` and
  ``reproduce`` run their grids on it.

Dask is optional: ``pip install "mrusfusion[distributed]"``; without it the thread back end
still runs.
"""
from __future__ import annotations

from .engine import Outcome, plan_workers, run_tasks
from .manifest import Pair, as_pairs, read_manifest
from .runner import SUMMARY_COLUMNS, SUMMARY_CSV, SUMMARY_JSON, BatchSummary, fuse_many

__all__ = ["fuse_many", "BatchSummary", "Pair", "read_manifest", "as_pairs", "run_tasks",
           "Outcome", "plan_workers", "SUMMARY_CSV", "SUMMARY_JSON", "SUMMARY_COLUMNS"]
