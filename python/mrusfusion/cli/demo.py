"""``mrusfusion demo``: fuse the bundled sample pair and write the results."""
from __future__ import annotations

import argparse

from .. import io
from ..data import sample_pair
from ..fusion import DEFAULT_MAX_ITER, fuse
from ..report import fusion_figure
from .common import (PLOT_HINT, command_parser, fusion_summary, have_matplotlib,
                     nonnegative_int, out_dir, output_paths_ok, positive_int, say, show_progress,
                     write_json)

#: Outputs inside OUT_DIR; the figure only with matplotlib.
DEMO_FILES = ("fused_x.npy", "fused_v.npy", "fusion.json")
DEMO_FIGURE = "demo.png"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "demo", summary="fuse the bundled sample pair and write the results",
        description="Fuse the MR/US sample pair bundled with the package (the authors' simulated "
                    "pelvis: MR 128x128, US 256x256, ratio 2) with the default, data-driven "
                    "weights, and write to OUT_DIR (created if needed):\n\n"
                    "  fused_x.npy   the fused image x (MR domain, on the US grid)\n"
                    "  fused_v.npy   its US-domain counterpart v (despeckled US)\n"
                    "  fusion.json   link coefficients, weights, iterations, stop reason,\n"
                    "                objective history and timings\n"
                    "  demo.png      the report figure (needs matplotlib: "
                    f"{PLOT_HINT})\n\n"
                    "Existing files are not replaced without --overwrite.",
        example="mrusfusion demo demo-out\nmrusfusion demo demo-out --max-iter 50 --overwrite")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for the outputs")
    p.add_argument("--max-iter", type=nonnegative_int, default=DEFAULT_MAX_ITER, metavar="N",
                   help="iteration cap (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads for the kernels and FFTs (default: MRUSFUSION_NUM_THREADS or "
                        "all cores, at most one per 65536 pixels)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    out = out_dir(args.out_dir, "OUT_DIR")
    plot = have_matplotlib()
    names = DEMO_FILES + ((DEMO_FIGURE,) if plot else ())
    if out.is_dir():
        output_paths_ok([("", str(out / n)) for n in names], [], overwrite=args.overwrite)
    else:
        out.mkdir(parents=True)

    mr, us, psf = sample_pair()  # the pair carries the blur it was simulated with
    say(args, f"fusing the bundled sample pair: MR {mr.shape[0]}x{mr.shape[1]}, "
              f"US {us.shape[0]}x{us.shape[1]} (El Mansouri et al. 2020, simulated pelvis)")
    res = fuse(mr, us, psf, max_iter=args.max_iter, threads=args.threads,
               progress=show_progress(args))
    written = [io.save(out / "fused_x.npy", res.x, overwrite=args.overwrite),
               io.save(out / "fused_v.npy", res.v, overwrite=args.overwrite)]
    summary = fusion_summary(res, data="mrusfusion.data.sample_pair() (y1.mat, y2.mat)",
                             mr_shape=mr.shape, us_shape=us.shape, max_iter=args.max_iter)
    written.append(write_json(out / "fusion.json", summary, overwrite=args.overwrite))
    if plot:
        fusion_figure(mr, us, res, out / DEMO_FIGURE, overwrite=args.overwrite,
                      title=f"mrusfusion demo: {res.message}")
        written.append(out / DEMO_FIGURE)
    say(args, f"{res.message} in {res.timings['total']:.2f} s "
              f"(tau4 = {res.tau4:.3g}, degree {res.link.degree})",
        *(f"wrote {p}" for p in written))
    if not plot:
        say(args, f"no figure: matplotlib is not installed ({PLOT_HINT} for figures)")
    return 0
