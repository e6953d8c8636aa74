"""``mrusfusion sweep``: fusion over a grid of one or two weights (the paper's Fig. 8)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import io, metrics
from ..experiments.figures import sweep_figure
from ..experiments.sweep import METRIC_COLUMNS, TAUS, sweep
from ..experiments.tables import csv_text
from ..fusion import DEFAULT_MAX_ITER
from .common import (PLOT_HINT, command_parser, have_matplotlib, nonnegative_float,
                     nonnegative_int, out_dir, output_paths_ok, positive_float, positive_int, say)

SWEEP_CSV = "sweep.csv"
SWEEP_FIGURE = "sweep.png"


def _region(values):
    if values is None:
        return None
    r0, r1, c0, c1 = (int(v) for v in values)
    return np.s_[r0:r1, c0:c1]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "sweep", summary="fuse over a grid of one or two weights (paper Fig. 8)",
        description=(
            "Fuse an MR image with a registered US image at every point of a grid of one or two "
            "of the weights tau1..tau4 (an option with several values is swept; one with a "
            "single value is fixed; the others are measured on the data), in parallel, and "
            "report for each point the contrast-to-noise ratio (dB) between two regions and "
            "the slope of an intensity profile across an interface (the paper's Fig. 8), and "
            "PSNR/MSSIM when ground truths are given. Writes to OUT_DIR (created if needed):\n\n"
            f"  {SWEEP_CSV}     one row per grid point: taus used, CNR, slope, PSNR, MSSIM,\n"
            "                iterations, convergence\n"
            f"  {SWEEP_FIGURE}     the curves and a thumbnail of the fused image x per point\n"
            f"                (needs matplotlib: {PLOT_HINT})\n\n"
            "Regions and profile points are in pixels of the US grid (the grid of the fused "
            "images); regions are half-open row and column ranges. tau4 small: x MR-like "
            "(higher CNR, softer interfaces); large: US-like (sharper, more speckle). Existing "
            "files are not replaced without --overwrite."),
        # the command itself first: the first line of every manual's example runs it
        example=("mrusfusion sweep mr.nii.gz us.nii.gz --tau1 0.01 0.1 --tau4 0.1 1 --out grid\n"
                 "mrusfusion simulate sim --ratio 4\n"
                 "mrusfusion sweep sim/mr.npy sim/us.npy --tau4 1e-3 1e-2 1e-1 1 \\\n"
                 "    --region-a 198 211 206 218 --region-b 160 180 225 250 \\\n"
                 "    --profile 204 232 204 218 --mr-true sim/mr_true.npy --out sweep-out"))
    p.add_argument("mr_path", metavar="MR_PATH", help="MR image (low resolution)")
    p.add_argument("us_path", metavar="US_PATH", help="US image registered to the MR image")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for the outputs")
    g = p.add_argument_group("grid (one or two options with several values)")
    for name, kind, what in (("tau1", nonnegative_float, "MR smoothness"),
                             ("tau2", positive_float, "US data fidelity"),
                             ("tau3", nonnegative_float, "US smoothness"),
                             ("tau4", positive_float, "MR/US coupling")):
        g.add_argument(f"--{name}", type=kind, nargs="+", metavar="T", help=what)
    m = p.add_argument_group("measurements (pixels of the US grid)")
    m.add_argument("--region-a", type=int, nargs=4, metavar=("R0", "R1", "C0", "C1"),
                   help="first CNR region: rows R0:R1, columns C0:C1")
    m.add_argument("--region-b", type=int, nargs=4, metavar=("R0", "R1", "C0", "C1"),
                   help="second CNR region")
    m.add_argument("--profile", type=float, nargs=4, metavar=("R0", "C0", "R1", "C1"),
                   help="segment from (R0, C0) to (R1, C1) crossing an interface")
    m.add_argument("--mr-true", metavar="PATH", help="true MR on the US grid (PSNR, MSSIM of x)")
    m.add_argument("--us-true", metavar="PATH", help="true US (PSNR, MSSIM of v)")
    s = p.add_argument_group("fusion")
    s.add_argument("--ratio", type=positive_int, metavar="N",
                   help="decimation ratio (default: from the shapes)")
    s.add_argument("--degree", type=positive_int, default=4, metavar="D",
                   help="degree of the polynomial link (default: %(default)s)")
    s.add_argument("--max-iter", type=nonnegative_int, default=DEFAULT_MAX_ITER, metavar="N",
                   help="iteration cap of each fusion (default: %(default)s)")
    s.add_argument("--workers", type=positive_int, metavar="N",
                   help="fusions run at once (default: one per core, at most the grid size)")
    s.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads of each fusion (default: 1; the workers run in parallel)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines, no summary")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    out = out_dir(args.out, "--out")
    plot = have_matplotlib()
    names = (SWEEP_CSV,) + ((SWEEP_FIGURE,) if plot else ())
    inputs = [p for p in (args.mr_path, args.us_path, args.mr_true, args.us_true) if p]
    if out.is_dir():
        output_paths_ok([("", str(out / n)) for n in names], inputs, overwrite=args.overwrite)
    given = {name: getattr(args, name) for name in TAUS if getattr(args, name) is not None}
    if not given:
        raise ValueError("give the values to sweep with at least one of --tau1 .. --tau4")
    if any(len(v) > 1 for v in given.values()):
        taus = {k: (v if len(v) > 1 else v[0]) for k, v in given.items()}
    else:  # a single value each: a one-point grid over those given
        taus = dict(given)
    profile = None
    if args.profile is not None:
        r0, c0, r1, c1 = args.profile
        profile = ((r0, c0), (r1, c1))
    mr = io.load(args.mr_path).data
    us = io.load(args.us_path).data
    probe = np.zeros(us.shape)
    for opt, values in (("--region-a", args.region_a), ("--region-b", args.region_b)):
        if values is not None:  # name the option, not the argument of sweep(), in errors
            metrics.region_values(probe, _region(values), opt)
    mr_true = io.load(args.mr_true).data if args.mr_true else None
    us_true = io.load(args.us_true).data if args.us_true else None
    fuse_kwargs = {"max_iter": args.max_iter, "degree": args.degree}
    if args.ratio is not None:
        fuse_kwargs["ratio"] = args.ratio
    if args.threads is not None:
        fuse_kwargs["threads"] = args.threads
    res = sweep(mr, us, **taus, region_a=_region(args.region_a), region_b=_region(args.region_b),
                profile=profile, mr_true=mr_true, us_true=us_true, max_workers=args.workers,
                progress=not args.quiet, **fuse_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    written = [res.to_csv(out / SWEEP_CSV, overwrite=args.overwrite)]
    if plot:
        sweep_figure(res, out / SWEEP_FIGURE, overwrite=args.overwrite,
                     title=f"{Path(args.mr_path).name} + {Path(args.us_path).name}: "
                           f"{res.message}")
        written.append(out / SWEEP_FIGURE)
    lines = [res.message, csv_text(res.table, digits=4).rstrip("\n")]
    for metric in METRIC_COLUMNS:
        if res.table and metric in res.table[0]:
            best = res.best(metric)
            at = ", ".join(f"{k} {best[k]:.3g}" for k in res.axes)
            lines.append(f"best {metric}: {best[metric]:.4g} at {at}")
    if not plot:
        lines.append(f"no figure: matplotlib is not installed ({PLOT_HINT} gives figures)")
    say(args, *lines, *(f"wrote {p}" for p in written))
    return 0
