"""Fuse many pairs, one task each, keeping every finished result (:func:`fuse_many`)."""
from __future__ import annotations

import csv
import io as _stdio
import json
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from .. import io
from ..metrics import psnr
from .engine import Outcome, plan_workers, run_tasks
from .manifest import Pair, as_pairs

__all__ = ["fuse_many", "BatchSummary", "SUMMARY_CSV", "SUMMARY_JSON", "RECORDS",
           "SUMMARY_COLUMNS"]

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
#: Folder (inside the output folder) of the per-pair records that make a batch resumable.
RECORDS = ".mrusfusion-batch"
SUMMARY_COLUMNS = ("name", "status", "x", "v", "iterations", "seconds", "tau1", "tau2", "tau3",
                   "tau4", "gamma", "psnr_x", "psnr_v", "error")
#: Output extension for each input format that has no writer.
_FALLBACK_EXT = ".nii.gz"


@dataclass
class BatchSummary:
    """What a batch did: one row per pair, in input order (see ``SUMMARY_COLUMNS``).

    Attributes
    ----------
    rows : list of dict
    out_dir : Path
    seconds : float
        Wall time of this run.
    ran, skipped, failed : int
        Pairs fused now, pairs already done by an earlier run, pairs that failed now.
    """

    rows: List[Dict[str, Any]]
    out_dir: Path
    seconds: float
    ran: int = 0
    skipped: int = 0
    failed: int = 0
    outcomes: List[Outcome] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """True when every pair has a result."""
        return all(r["status"] == "ok" for r in self.rows)


def _ext(source) -> str:
    if isinstance(source, np.ndarray):
        return ".npy"
    name = str(source).lower()
    for ext in io.WRITE_FORMATS:
        if name.endswith(ext):
            return ".nii.gz" if ext == ".nii" else ext
    return _FALLBACK_EXT


def _outputs(pair: Pair, out_dir: Path):
    ext = _ext(pair.us)
    return out_dir / f"{pair.name}_x{ext}", out_dir / f"{pair.name}_v{ext}"


def _record_path(out_dir: Path, name: str) -> Path:
    return out_dir / RECORDS / f"{name}.json"


def _image(source, what: str) -> io.Image:
    if isinstance(source, np.ndarray):
        return io.Image(np.asarray(source), None, {})
    return io.load(source)


def _write_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=2, allow_nan=True)
    io.write_atomic(path, lambda tmp: Path(tmp).write_text(text), overwrite=True)


def fuse_pair(job: Dict[str, Any]) -> Dict[str, Any]:
    """One task: read the pair, fuse it, write ``x``, ``v`` and the pair's record.

    Runs where the task is scheduled (a worker process); returns the summary row.
    """
    from ..fusion import fuse  # imported in the worker

    pair: Pair = job["pair"]
    out_dir = Path(job["out_dir"])
    x_path, v_path = _outputs(pair, out_dir)
    t0 = time.perf_counter()
    mr, us = _image(pair.mr, "mr"), _image(pair.us, "us")
    prepared = io.prepare_pair(mr, us, ratio=pair.ratio)
    kwargs = dict(job["fuse_kwargs"])
    if pair.mask is not None:
        kwargs["mask"] = _image(pair.mask, "mask").data > 0
    res = fuse(prepared.mr, prepared.us, ratio=prepared.ratio, spacing=prepared.us_spacing,
               threads=job["threads"], **kwargs)
    affine = prepared.us_affine
    for path, img in ((x_path, res.x), (v_path, res.v)):
        image = io.Image(img, prepared.us_spacing, {})
        io.save(path, image, overwrite=True,
                affine=affine if ".nii" in path.name else None)
    w = res.weights
    row: Dict[str, Any] = {
        "name": pair.name, "status": "ok", "x": str(x_path), "v": str(v_path),
        "iterations": int(res.n_iter), "seconds": time.perf_counter() - t0,
        "tau1": w.tau1, "tau2": w.tau2, "tau3": w.tau3, "tau4": w.tau4, "gamma": w.gamma,
        "psnr_x": float("nan"), "psnr_v": float("nan"), "error": ""}
    for key, truth, est in (("psnr_x", pair.mr_truth, res.x), ("psnr_v", pair.us_truth, res.v)):
        if truth is not None:
            t = _image(truth, key).data.astype(np.float64)
            peak = float(np.max(t)) or 1.0
            row[key] = psnr(np.asarray(est, np.float64) / peak, t / peak, data_range=1.0)
    _write_json(_record_path(out_dir, pair.name), row)  # last: the pair is done
    return row


def _done_row(pair: Pair, out_dir: Path) -> Optional[Dict[str, Any]]:
    rec = _record_path(out_dir, pair.name)
    x_path, v_path = _outputs(pair, out_dir)
    if not (rec.is_file() and x_path.is_file() and v_path.is_file()):
        return None
    try:
        row = json.loads(rec.read_text())
    except (OSError, ValueError):
        return None
    return row if row.get("status") == "ok" else None


def _csv_text(rows) -> str:
    buf = _stdio.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v)
                         for k, v in r.items()})
    return buf.getvalue()


def _write_summary(out_dir: Path, rows) -> None:
    io.write_atomic(out_dir / SUMMARY_CSV,
                    lambda tmp: Path(tmp).write_text(_csv_text(rows)), overwrite=True)
    _write_json(out_dir / SUMMARY_JSON, rows)


def fuse_many(pairs, *, out_dir: Union[str, Path], client=None, workers: Optional[int] = None,
              threads: Optional[int] = None, backend: str = "dask", progress: bool = False,
              **fuse_kwargs) -> BatchSummary:
    """Fuse many MR/US pairs, one task each, writing each result as soon as it is done.

    Parameters
    ----------
    pairs : path, or sequence of Pair, dict or (mr, us)
        A manifest CSV (:func:`~mrusfusion.batch.read_manifest`) or the pairs themselves.
    out_dir : str or Path
        Output folder (created). Each pair writes ``<name>_x<ext>`` and ``<name>_v<ext>`` in its
        US input's format (``.npy`` for arrays, NIfTI for formats without a writer), and the
        batch writes ``summary.csv`` and ``summary.json`` (rewritten as pairs finish).
    client : distributed.Client or str, optional
        Run on this Dask client or scheduler address; default: a local cluster of worker
        processes for this batch.
    workers : int, optional
        Workers of the local cluster (default: one per core, at most one per pair).
    threads : int, optional
        Threads of each fusion (default: cores // workers, so that they never oversubscribe).
    backend : {"dask", "threads"}
        ``"threads"`` runs the pairs in a thread pool of this process (no Dask needed).
    progress : bool
        A progress bar over the pairs (tqdm when installed).
    **fuse_kwargs
        Passed to :func:`mrusfusion.fuse` for every pair.

    Returns
    -------
    BatchSummary

    Raises
    ------
    ImportError
        If ``backend="dask"`` and dask/distributed are missing (``pip install
        "mrusfusion[distributed]"``).

    Notes
    -----
    A pair is done once its record (``.mrusfusion-batch/<name>.json``) and both images exist:
    they are written by the task itself, atomically, so a worker or client that dies loses no
    finished pair, and a rerun skips done pairs (it fuses nothing when all are done). A failing
    pair gets ``status = "failed"`` and its error text, and does not stop the others.
    """
    from ..progress import ProgressBar

    plist = as_pairs(pairs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / RECORDS).mkdir(exist_ok=True)
    bad = {"threads", "progress", "callback", "ratio", "mask"} & set(fuse_kwargs)
    if bad:
        raise TypeError(f"fuse_many() sets {', '.join(sorted(bad))} itself (per pair: `ratio` and "
                        "`mask` go in the manifest; `threads` is an argument of fuse_many)")
    t0 = time.perf_counter()
    rows: List[Optional[Dict[str, Any]]] = [_done_row(p, out) for p in plist]
    skipped = sum(r is not None for r in rows)
    todo = [k for k, r in enumerate(rows) if r is None]
    w, t = plan_workers(len(todo), workers)
    jobs = [{"pair": plist[k], "out_dir": str(out), "fuse_kwargs": fuse_kwargs,
             "threads": threads or t} for k in todo]
    bar = ProgressBar(len(plist), desc="batch", unit="pair") if progress else None
    failed = 0

    def current() -> List[Dict[str, Any]]:
        return [r if r is not None else {"name": p.name, "status": "pending", "error": ""}
                for p, r in zip(plist, rows)]

    def on_done(o: Outcome) -> None:
        nonlocal failed
        k = todo[o.index]
        if o.ok:
            rows[k] = o.value
        else:
            failed += 1
            rows[k] = {"name": plist[k].name, "status": "failed", "x": "", "v": "",
                       "seconds": o.seconds, "error": o.error}
        _write_summary(out, current())
        if bar is not None:
            bar.advance(plist[k].name)

    outcomes: List[Outcome] = []
    if jobs:
        outcomes = run_tasks(partial(fuse_pair), jobs, backend=backend, client=client,
                             workers=w, threads=threads or t, on_done=on_done)
    _write_summary(out, current())
    if bar is not None:
        bar.close()
    final = current()
    return BatchSummary(final, out, time.perf_counter() - t0, ran=len(jobs), skipped=skipped,
                        failed=failed, outcomes=outcomes)
