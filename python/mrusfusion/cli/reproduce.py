"""``mrusfusion reproduce``: the paper's simulated experiments, tables and figures."""
from __future__ import annotations

import argparse

from ..experiments.cases import Case
from ..experiments.realistic import (REALISTIC_CSV, REALISTIC_MD, RealisticCase,
                                     realistic_table)
from ..experiments.reproduce import (RESULTS_CSV, RESULTS_MD, SWEEP_CSV, SWEEP_FIGURE,
                                     reproduce)
from ..fusion import DEFAULT_MAX_ITER
from ..simulate import PAPER_SNR_DB
from .common import PLOT_HINT, command_parser, nonnegative_int, positive_int, say

_QUICK_SHAPE = (64, 64)
_QUICK_MAX_ITER = 20
_QUICK_REALISTIC = RealisticCase("phantom", 2, 25.0, size=_QUICK_SHAPE[0])


def _snrs() -> str:
    """``ratio 4 at SNRs 23.26/13.72 dB, ratio 2 at 20.73/13.80 dB``."""
    return ", ".join(f"ratio {r} at {'SNRs ' if k == 0 else ''}{mr:.2f}/{us:.2f} dB"
                     for k, (r, (mr, us)) in enumerate(PAPER_SNR_DB.items()))


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "reproduce", summary="reproduce the paper's simulated experiments",
        description=(
            "Reproduce the simulated experiments of El Mansouri et al. (IEEE TIP 2020): "
            f"simulate MR/US pairs with the paper's protocol ({_snrs()}) "
            "from two ground-truth MR images (the authors' simulated "
            "pelvis and the package's analytic phantom), run bicubic interpolation, the MR-only "
            "and US-only baselines and the fusion, and write to OUT_DIR (created if needed):\n\n"
            f"  {RESULTS_MD}          the table, the weights and times of each case, run time\n"
            f"  {RESULTS_CSV}         dataset, ratio, method, reference, RMSE, PSNR, ISNR, "
            "MSSIM\n"
            "  fig1_<case>.png     per case, laid out like the paper's Fig. 1\n"
            f"  {SWEEP_CSV}      the tau4 sweep of the paper's Fig. 8 (phantom, ratio 4):\n"
            "                      lesion CNR and interface profile slope against tau4\n"
            f"  {SWEEP_FIGURE}       its curves and thumbnails\n\n"
            "With --realistic, also the realistic cases of issue 14 (DESIGN.md section 14): "
            "B-mode pairs from simulate_bmode (correlated speckle, non-polynomial echogenicity, "
            "thin layers the MR cannot see) for the pelvis and the phantom at ratios 2 and 4 "
            "and MR SNRs 35 and 25 dB, fused and compared with the best-tuned MR-only and "
            "US-only baselines over grids of their weights:\n\n"
            f"  {REALISTIC_MD}        the table (PSNR gains over the baselines, thin-layer\n"
            "                      contrast, tissue CNR and entry slope ratios), the measures\n"
            f"  {REALISTIC_CSV}       the same per case, one row each\n\n"
            f"Figures need matplotlib ({PLOT_HINT}); without it the tables are still written. "
            "Same seed, same numbers. The default run takes a few minutes on 2 cores; --quick "
            "runs a 64x64 phantom only, as a check (with --realistic, one 64x64 phantom at ratio 2 "
            "and 25 dB). Existing files are not replaced without --overwrite."),
        example=("mrusfusion reproduce --out paper-results\n"
                 "mrusfusion reproduce --out results --realistic\n"
                 "mrusfusion reproduce --out check --quick --overwrite"))
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for the outputs")
    p.add_argument("--max-iter", type=nonnegative_int, metavar="N",
                   help=f"iteration cap of each fusion (default: {DEFAULT_MAX_ITER}; "
                        f"{_QUICK_MAX_ITER} with --quick)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads (default: MRUSFUSION_NUM_THREADS or all cores)")
    p.add_argument("--quick", action="store_true",
                   help="a 64x64 phantom at ratios 4 and 2 only (seconds; a smoke test)")
    p.add_argument("--realistic", action="store_true",
                   help=f"also run the realistic cases and write {REALISTIC_MD} and "
                        f"{REALISTIC_CSV} (8 cases; under a minute on 2 cores)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines, no summary")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    quiet = getattr(args, "quiet", False)
    max_iter = args.max_iter
    realistic = getattr(args, "realistic", False)
    if args.quick:
        cases = [Case.phantom(4, _QUICK_SHAPE, tau4_sweep=True), Case.phantom(2, _QUICK_SHAPE)]
        realistic = [_QUICK_REALISTIC] if realistic else False
        max_iter = _QUICK_MAX_ITER if max_iter is None else max_iter
    else:
        cases = None
        max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    command = " ".join(["mrusfusion reproduce --out DIR"]
                       + (["--quick"] if args.quick else [])
                       + ([f"--max-iter {args.max_iter}"] if args.max_iter is not None else [])
                       + ([f"--seed {args.seed}"] if args.seed != 0 else [])
                       + (["--realistic"] if realistic else []))
    result = reproduce(args.out, max_iter=max_iter, seed=args.seed, threads=args.threads,
                       overwrite=args.overwrite, cases=cases, realistic=realistic,
                       progress=not quiet, command=command)
    md = result["markdown"]
    table = md[md.index("## Results"):md.index("## Cases")].strip()
    if result["realistic"]:
        table += "\n\nRealistic cases (issue 14):\n" + realistic_table(result["realistic"])
    say(args, table, "", f"total run time {result['seconds']:.1f} s",
        *(f"wrote {p}" for p in result["files"]))
    return 0
