"""Fusion on realistic simulated pairs (issue 14; DESIGN.md sections 13 and 14).

A command line over :mod:`mrusfusion.experiments.realistic`, which holds the cases and the
measures: for two ground truths (the authors' pelvic MR and the analytic phantom), ratios 2 and 4
and MR SNR 35 and 25 dB, simulates a B-mode pair with :func:`mrusfusion.simulate_bmode` (fixed
seed) and measures the fusion against the truths and against the best-tuned single-modality
baselines:

- x: PSNR against ``mr_true`` (both divided by the truth's maximum), the best PSNR of
  ``super_resolve`` over a grid of ``tau``, the contrast of the thin layers relative to
  ``mr_true``'s, tissue CNR relative to the observed US's;
- v: PSNR against ``us_true``, the best of ``despeckle`` over a grid of ``tau3 / tau2`` and its
  automatic setting, tissue CNR and thin-layer contrast relative to the observed US's, and the
  mean slope entering the thin layers along the beam relative to the observed US's (positive:
  same sign; 1: as steep);
- the weights, iterations and seconds of ``fuse``.

Options it does not know are passed to ``fuse``::

    python bench/realistic_eval.py [--quick] [--out results.json] [--degree 1] [--tau4 1e-3]

Values are read as Python literals (``--degree None``), else kept as strings.
``mrusfusion reproduce --realistic`` writes the same table into ``realistic.md``.
"""
from __future__ import annotations

import argparse
import ast
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

import mrusfusion as mf
from mrusfusion.experiments.realistic import (DS_RATIOS, QUICK_CASES, SR_TAUS,
                                              realistic_cases, realistic_table, run_realistic)
from mrusfusion.experiments.tables import jsonable

SEED = 0


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def fuse_options(extra: Sequence[str]) -> Dict[str, object]:
    """``["--degree", "1", "--tau4=1e-3"]`` -> ``{"degree": 1, "tau4": 0.001}``."""
    out, items = {}, list(extra)
    while items:
        key = items.pop(0)
        if not key.startswith("--") or len(key) < 3:
            raise SystemExit(f"realistic_eval: expected --name value, got {key!r}")
        if "=" in key:
            key, value = key.split("=", 1)
        elif items and not items[0].startswith("--"):
            value = items.pop(0)
        else:
            value = "True"  # a bare flag
        out[key[2:].replace("-", "_")] = _literal(value)
    return out


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Unknown --options are passed to mrusfusion.fuse.")
    ap.add_argument("--quick", action="store_true", help="two cases only (a smoke run)")
    ap.add_argument("--size", type=int, default=None,
                    help="crop the pelvis / size the phantom to this side (default: full)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=None, help="write the records as JSON here")
    args, extra = ap.parse_known_args(argv)
    kwargs = fuse_options(extra)
    t0 = time.perf_counter()
    records = run_realistic(QUICK_CASES if args.quick else realistic_cases(), fuse_kwargs=kwargs,
                            size=args.size, seed=args.seed,
                            log=lambda s: print(s, file=sys.stderr, flush=True))
    table = realistic_table(records)
    print(table)
    print(f"\nfuse options: {kwargs or 'defaults'}; seed {args.seed}; commit {_commit()}; "
          f"{time.perf_counter() - t0:.0f} s. PSNR in dB against mr_true (x) and us_true (v); "
          "gains against the best-tuned baselines; ratios: fused over the reference (thin x: "
          "over mr_true; CNR and slope: over the observed US; CNR truth: us_true's).")
    if args.out is not None:
        doc = {"commit": _commit(), "argv": list(sys.argv if argv is None else argv),
               "fuse_kwargs": jsonable(kwargs), "seed": args.seed, "size": args.size,
               "python": platform.python_version(), "numpy": np.__version__,
               "mrusfusion": mf.__version__, "sr_taus": SR_TAUS.tolist(),
               "ds_ratios": DS_RATIOS.tolist(), "records": jsonable(records),
               "table": table}
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
