"""``mrusfusion info``: the version, the build of the C++ core and the thread configuration."""
from __future__ import annotations

import argparse
import json

from .._config import config, show_config
from .common import command_parser, jsonable


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "info", summary="print the version, build and thread configuration",
        description="Print the package version, the compiler and flags the C++ core was built "
                    "with, whether OpenMP is on and its thread count, the FFT backend (pyFFTW "
                    "version, threads), and the NumPy and SciPy versions.\n\n"
                    "Threads: the --threads option of a command, else the environment variable "
                    "MRUSFUSION_NUM_THREADS, else all cores available.",
        example="mrusfusion info\nMRUSFUSION_NUM_THREADS=2 mrusfusion info --json")
    p.add_argument("--json", action="store_true", help="print the configuration as JSON")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    if args.json:
        print(json.dumps(jsonable(config()), indent=2))
    else:
        show_config()
    return 0
