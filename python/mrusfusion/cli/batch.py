"""``mrusfusion batch``: fuse the pairs of a manifest, one task each, on Dask."""
from __future__ import annotations

import argparse

from ..batch import SUMMARY_CSV, SUMMARY_JSON, fuse_many
from ..batch.engine import DISTRIBUTED_HINT
from ..batch.manifest import COLUMNS, REQUIRED
from .common import command_parser, positive_int, say
from .options import add_model_options, fuse_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "batch", summary="fuse the pairs of a manifest on Dask",
        description=(
            "Fuse every MR/US pair listed in MANIFEST.csv, each pair as one task on "
            "dask.distributed: a local cluster of worker processes by default, or an existing "
            "scheduler with --scheduler. Workers x threads never exceed the cores.\n\n"
            f"The manifest has a header row with the columns {', '.join(REQUIRED)} (paths, in any "
            f"format `mrusfusion fuse` reads) and optionally "
            f"{', '.join(c for c in COLUMNS if c not in REQUIRED)}; relative paths are "
            "relative to the manifest.\n\n"
            "Each pair writes NAME_x and NAME_v into --out, in its US input's format, as soon as "
            f"it is done; {SUMMARY_CSV} and {SUMMARY_JSON} get one row per pair (status, "
            "outputs, iterations, seconds, weights, PSNR against the truths when given, the "
            "error of a failed pair). A failing pair does not stop the others. Rerunning the "
            "same command fuses only the pairs not yet done.\n\n"
            f"Needs dask and distributed ({DISTRIBUTED_HINT}), or --backend threads."),
        example=("mrusfusion batch cohort.csv --out fused --workers 2\n"
                 "mrusfusion batch cohort.csv --out fused --scheduler tcp://10.0.0.5:8786 "
                 "--degree 4"))
    p.add_argument("manifest", metavar="MANIFEST.csv", help="the pairs (CSV with a header)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    r = p.add_argument_group("where it runs")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler (default: a local cluster for this batch)")
    r.add_argument("--workers", type=positive_int, metavar="N",
                   help="worker processes of the local cluster (default: one per core)")
    r.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads of each fusion (default: cores / workers)")
    r.add_argument("--backend", choices=("dask", "threads"), default="dask",
                   help="dask (default) or a thread pool in this process (no Dask needed)")
    add_model_options(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    options = fuse_options(args)
    res = fuse_many(args.manifest, out_dir=args.out, client=args.scheduler,
                    workers=args.workers, threads=args.threads, backend=args.backend,
                    progress=not args.quiet, **options)
    say(args, f"{res.ran} pair(s) fused, {res.skipped} already done, {res.failed} failed, in "
              f"{res.seconds:.1f} s; summary in {res.out_dir / SUMMARY_CSV}")
    for row in res.rows:
        if row["status"] != "ok":
            say(args, f"  {row['name']}: {row['error']}")
    return 0 if res.ok else 1
