"""Run the benchmark suite: ``python bench/run.py [--sizes 256 600 ...] [--out DIR]``.

Same as ``mrusfusion bench``; see ``mrusfusion bench --help``.
"""
import sys

from mrusfusion.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
