"""Batch throughput on this machine (issue 18): fuse_many on a local Dask cluster against a
serial loop of fuse, the overhead per task, and the peak memory per worker.

    python bench/batch_eval.py [--pairs 12] [--size 256] [--workers 2]

Serial: one fuse() after another, each with every core. Batch: fuse_many with ``--workers``
processes, cores / workers threads each. Overhead: a batch of trivial tasks through the same
engine (cluster start-up apart). Pairs per minute are wall-clock figures of one run each; the
machine is shared, so quote them as measured, side by side.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np

import mrusfusion as mf
from mrusfusion.batch import fuse_many, run_tasks


def _noop(k):
    return k


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--size", type=int, default=256, help="US side (ratio 2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-iter", type=int, default=100)
    args = ap.parse_args()
    import distributed

    os.environ.setdefault("MRUSFUSION_WISDOM", "0")
    tmp = tempfile.mkdtemp(prefix="mrusfusion-batch-")
    pairs = []
    for k in range(args.pairs):
        sim = mf.simulate(mf.phantom((args.size, args.size)), 2, seed=k)
        np.save(f"{tmp}/mr{k}.npy", sim.mr)
        np.save(f"{tmp}/us{k}.npy", sim.us)
        pairs.append(mf.batch.Pair(f"p{k}", f"{tmp}/mr{k}.npy", f"{tmp}/us{k}.npy"))
    kw = {"max_iter": args.max_iter, "tol": 0.0}
    cores = os.cpu_count() or 1

    t0 = time.perf_counter()
    for p in pairs:
        mf.fuse(np.load(p.mr), np.load(p.us), threads=cores, **kw)
    serial = time.perf_counter() - t0

    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                       processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    try:
        t0 = time.perf_counter()
        res = fuse_many(pairs, out_dir=f"{tmp}/out", client=client,
                        threads=max(1, cores // args.workers), **kw)
        batch = time.perf_counter() - t0
        assert res.ok, res.rows
        n_noop = 200
        t0 = time.perf_counter()
        run_tasks(_noop, range(n_noop), client=client)
        overhead = (time.perf_counter() - t0) / n_noop
        peaks = client.run(_peak_rss_mb)
    finally:
        client.close()
        cluster.close()
    n = args.pairs
    print(f"{n} pairs, US {args.size}x{args.size}, ratio 2, {args.max_iter} iterations each, "
          f"{cores} cores")
    print(f"serial fuse (all cores each): {serial:.1f} s, {60 * n / serial:.1f} pairs/min")
    print(f"fuse_many, {args.workers} workers x {max(1, cores // args.workers)} thread(s): "
          f"{batch:.1f} s, {60 * n / batch:.1f} pairs/min ({serial / batch:.2f}x)")
    print(f"overhead per task (trivial tasks on the same cluster): {1e3 * overhead:.1f} ms")
    print("peak memory per worker: " + ", ".join(f"{v:.0f} MB" for v in peaks.values()))


if __name__ == "__main__":
    main()
