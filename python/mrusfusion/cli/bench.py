"""``mrusfusion bench``: the benchmark suite (also ``python bench/run.py``)."""
from __future__ import annotations

import argparse

from ..experiments.bench import run_benchmark
from .common import command_parser


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "bench", summary="measure speed against the FFT floor and the NumPy twins",
        description=("Time PALM iterations at several sizes (ratio 4, and 6 where it divides), "
                     "float64 and float32, 1 thread and all threads; report each iteration in "
                     "FFT-pair equivalents measured in the same run, the native/NumPy speed "
                     "ratio per kernel and per iteration, peak memory, and plain vs inertial "
                     "PALM time to convergence. Writes bench.json and bench.md to --out."),
        example="mrusfusion bench --out bench/results\nmrusfusion bench --sizes 256 600 --iters 5")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 600, 1200, 2400])
    p.add_argument("--iters", type=int, default=10, help="iterations timed per configuration")
    p.add_argument("--out", default="bench/results", help="output folder (default bench/results)")
    p.add_argument("--converge-max-size", type=int, default=600)
    p.add_argument("--numpy-max-size", type=int, default=600)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    run_benchmark(args.sizes, iters=args.iters, out_dir=args.out,
                  converge_max_size=args.converge_max_size, numpy_max_size=args.numpy_max_size)
    return 0
