"""``mrusfusion fuse``: fuse an MR image with a registered US image, from files to files."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import io
from ..fusion import fuse
from ..report import figure_format, fusion_figure
from .common import (PLOT_HINT, check_image_output, command_parser, fusion_summary,
                     output_paths_ok, positive_float, positive_int, say, show_progress,
                     write_json)
from .options import add_model_options, fuse_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "fuse", summary="fuse an MR image with a registered US image",
        description=(
            "Fuse an MR image with a registered ultrasound (US) image (El Mansouri et al., IEEE "
            "TIP 2020): super-resolve the MR image onto the US grid and despeckle the US image at "
            "once. Writes the fused image x (MR contrast, US resolution) to OUT_PATH, in the "
            "intensity scale of the MR input, with the US pixel spacing.\n\n"
            "Inputs: NIfTI (.nii, .nii.gz), DICOM (.dcm), PNG/JPEG/TIFF, NumPy (.npy, .npz) and "
            "MATLAB (.mat) files holding one 2-D image (or pick one with --mr-slice/--us-slice, "
            "--mr-variable/--us-variable). The two images must be registered and start at the "
            "same top-left corner.\n\n"
            "Decimation ratio: from the pixel spacings when both are known (from the files or "
            "--mr-spacing/--us-spacing), which must give one integer ratio (or use "
            "--resample-us); else --ratio; else the shapes (US shape = ratio x MR shape). --crop "
            "crops both "
            "images to their common field of view.\n\n"
            "Weights: tau1..tau4 and gamma are measured on the data when not given; --json "
            "records the values used, where each came from, and the noise levels measured.\n\n"
            "Safety: outputs are written to a temporary file and renamed into place; an existing "
            "output is not replaced without --overwrite; an output naming an input is refused. "
            "All of this is checked before computing.\n\n"
            "A progress bar is shown on stderr when it is a terminal (not with --quiet). Errors "
            "print one line and exit with status 2."),
        example=("mrusfusion fuse mr.nii.gz us.dcm -o fused.nii.gz --report fused.png "
                 "--json fused.json\n"
                 "mrusfusion fuse mr.npy us.npy -o fused.npy --ratio 2 --max-iter 100 --tau4 0.5\n"
                 "mrusfusion fuse mr.png us.png -o fused.npz --mr-spacing 1 1 --us-spacing 0.26 "
                 "0.26 --resample-us --crop"))
    p.add_argument("mr_path", metavar="MR_PATH", help="MR image (low resolution)")
    p.add_argument("us_path", metavar="US_PATH", help="US image (B-mode, log-compressed), "
                                                      "registered to the MR image")
    p.add_argument("-o", "--output", required=True, metavar="OUT_PATH",
                   help="where to write the fused image x (.npy, .npz, .nii, .nii.gz, .png, "
                        ".tif, .mat)")
    g = p.add_argument_group("grids and spacing")
    g.add_argument("--ratio", type=positive_int, metavar="N",
                   help="decimation ratio: one MR pixel covers NxN US pixels")
    g.add_argument("--mr-spacing", type=positive_float, nargs=2, metavar=("R", "C"),
                   help="MR pixel spacing (rows, columns) in mm; overrides the file's")
    g.add_argument("--us-spacing", type=positive_float, nargs=2, metavar=("R", "C"),
                   help="US pixel spacing (rows, columns) in mm; overrides the file's")
    g.add_argument("--resample-us", action="store_true",
                   help="resample the US image (cubic) so its spacing divides the MR spacing "
                        "by the nearest integer ratio; needs both spacings")
    g.add_argument("--crop", action="store_true",
                   help="crop both images (bottom rows, right columns) to their common field of "
                        "view with US shape = ratio x MR shape")
    g.add_argument("--mr-slice", type=int, metavar="K", help="image K of an MR stack/volume")
    g.add_argument("--us-slice", type=int, metavar="K", help="image K of a US stack/volume")
    g.add_argument("--mr-variable", metavar="NAME", help="array NAME of an MR .npz/.mat file")
    g.add_argument("--us-variable", metavar="NAME", help="array NAME of a US .npz/.mat file")
    s = add_model_options(p)
    s.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads for the kernels and FFTs (default: MRUSFUSION_NUM_THREADS or "
                        "all cores, at most one per 65536 pixels)")
    o = p.add_argument_group("outputs")
    o.add_argument("--us-domain", metavar="PATH", help="also write the US-domain estimate v")
    o.add_argument("--report", metavar="PATH",
                   help="also write a figure: MR, US, fused x, v, bicubic start, objective "
                        f"(.png, .pdf, .svg; needs matplotlib: {PLOT_HINT})")
    o.add_argument("--json", metavar="PATH",
                   help="also write coefficients, weights and their source, noise levels, "
                        "iterations, stop reason, objective history and timings as JSON")
    o.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=run)
    return p


# prepare_pair names the source of the ratio in library terms; the command names its option.
_RATIO_SOURCES = {"ratio argument": "--ratio"}


def run(args) -> int:
    # Everything that can be refused is refused before loading and computing.
    output_paths_ok([("-o", args.output), ("--us-domain", args.us_domain),
                     ("--report", args.report), ("--json", args.json)],
                    [args.mr_path, args.us_path], overwrite=args.overwrite)
    check_image_output(args.output, "-o")
    check_image_output(args.us_domain, "--us-domain")
    if args.report is not None:
        figure_format(args.report)
    options = fuse_options(args)  # refuses a bad --psf before loading anything

    mr_img = io.load(args.mr_path, spacing=args.mr_spacing, slice=args.mr_slice,
                     variable=args.mr_variable)
    us_img = io.load(args.us_path, spacing=args.us_spacing, slice=args.us_slice,
                     variable=args.us_variable)
    pair = io.prepare_pair(mr_img, us_img, ratio=args.ratio, resample_us=args.resample_us,
                           crop=args.crop)
    mr, us, ratio = pair.mr, pair.us, pair.ratio
    ratio_source = _RATIO_SOURCES.get(pair.ratio_source, pair.ratio_source)

    say(args, f"MR {mr.shape[0]}x{mr.shape[1]}, US {us.shape[0]}x{us.shape[1]}, ratio {ratio} "
              f"(from {ratio_source})", *pair.notes)
    res = fuse(mr, us, ratio=ratio, threads=args.threads, progress=show_progress(args),
               **options)

    written = []
    nifti = (".nii", ".nii.gz")

    def save(path, data):
        affine = pair.us_affine if str(path).lower().endswith(nifti) else None
        written.append(io.save(path, data, spacing=pair.us_spacing, affine=affine,
                               overwrite=args.overwrite))

    save(args.output, res.x)
    if args.us_domain is not None:
        save(args.us_domain, res.v)
    if args.json is not None:
        context = {
            "inputs": {"mr": {"path": str(args.mr_path), "shape": mr_img.shape,
                              "spacing_mm": mr_img.spacing,
                              "spacing_source": mr_img.meta.get("spacing_source")},
                       "us": {"path": str(args.us_path), "shape": us_img.shape,
                              "spacing_mm": us_img.spacing,
                              "spacing_source": us_img.meta.get("spacing_source")}},
            "fused_shapes": {"mr": mr.shape, "us": us.shape},
            "ratio_source": ratio_source,
            "grid_changes": pair.notes,
            "output_spacing_mm": pair.us_spacing,
            "outputs": {"x": str(args.output), "v": args.us_domain, "report": args.report},
            "options": {"max_iter": args.max_iter, "tol": args.tol, "psf": options["psf"],
                        "threads": args.threads},
        }
        written.append(write_json(args.json, fusion_summary(res, **context),
                                  overwrite=args.overwrite))
    if args.report is not None:
        names = f"{Path(args.mr_path).name} + {Path(args.us_path).name}"
        fusion_figure(mr, us, res, args.report, overwrite=args.overwrite,
                      title=f"{names}: {res.message}")
        written.append(Path(args.report))
    w = res.weights
    say(args, f"{res.message} in {res.timings['total']:.2f} s; tau1 {w.tau1:.3g}, tau2 "
              f"{w.tau2:.3g}, tau3 {w.tau3:.3g}, tau4 {w.tau4:.3g}, gamma {w.gamma:.3g}",
        *(f"wrote {p}" for p in written))
    return 0
