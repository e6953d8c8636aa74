"""``mrusfusion fuse``: fuse an MR image with a registered US image, from files to files."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import io
from ..fusion import fuse
from ..report import figure_format, fusion_figure
from .common import (PLOT_HINT, check_image_output, command_parser, finite_float, fusion_summary,
                     output_paths_ok, per_axis, positive_float, positive_int, ratio_value, say,
                     show_progress, write_json)
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
            "Volumes: a 3-D file (NIfTI volume, a folder holding a DICOM series, a 3-D .npy/"
            ".npz/.mat array) is read whole unless a slice is picked; two volumes are fused on "
            "the US grid with one ratio per axis, and a NIfTI output carries the US volume's "
            "affine. The US voxel size, when known, weights the differences along each axis "
            "(an anisotropic grid is fused in physical units).\n\n"
            "Decimation ratio: from the pixel spacings when both are known (from the files or "
            "--mr-spacing/--us-spacing), which must give one integer ratio per axis (or use "
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
                 "0.26 --resample-us --crop\n"
                 "mrusfusion fuse mr_t1.nii.gz us_volume.nii.gz -o fused.nii.gz  # ratio per "
                 "axis from the voxel sizes\n"
                 "mrusfusion fuse mr.npy us.npy -o fused.nii.gz --ratio 2,2,4 --us-spacing 0.5 "
                 "0.5 1"))
    p.add_argument("mr_path", metavar="MR_PATH", help="MR image (low resolution)")
    p.add_argument("us_path", metavar="US_PATH", help="US image (B-mode, log-compressed), "
                                                      "registered to the MR image")
    p.add_argument("-o", "--output", required=True, metavar="OUT_PATH",
                   help="where to write the fused image x (.npy, .npz, .nii, .nii.gz, .png, "
                        ".tif, .mat)")
    g = p.add_argument_group("grids and spacing")
    g.add_argument("--ratio", type=ratio_value, metavar="N|A,B,C",
                   help="decimation ratio: one MR pixel covers NxN US pixels; for volumes N "
                        "or one per axis, e.g. 2,2,4")
    g.add_argument("--mr-spacing", type=positive_float, nargs="+", metavar="MM",
                   help="MR pixel spacing (rows, columns; three values for a volume) in mm; "
                        "overrides the file's")
    g.add_argument("--us-spacing", type=positive_float, nargs="+", metavar="MM",
                   help="US pixel spacing (rows, columns; three values for a volume) in mm; "
                        "overrides the file's")
    g.add_argument("--resample-us", action="store_true",
                   help="resample the US image (cubic) so its spacing divides the MR spacing "
                        "by the nearest integer ratio; needs both spacings")
    g.add_argument("--crop", action="store_true",
                   help="crop both images (bottom rows, right columns) to their common field of "
                        "view with US shape = ratio x MR shape")
    g.add_argument("--fov-threshold", type=finite_float, metavar="T",
                   help="fuse only within the US field of view: the pixels above T, holes "
                        "filled (a fan or cone padded with zeros or tiny values; e.g. 1e-6)")
    g.add_argument("--register", nargs="?", const="rigid", default=False,
                   choices=("translation", "rigid", "affine"),
                   help="register the US to the MR first (by the link's explained variance; "
                        "default transform: rigid), then fuse; pixels the moved US does not "
                        "cover are masked, and --json records the transform")
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


def _load(path, spacing, slice_, variable, option: str) -> io.Image:
    """A file holding a volume is read whole unless a slice is picked (a 2-D file stays 2-D);
    a spacing of the wrong length is reported under its option's name."""
    try:
        return io.load(path, spacing=spacing, slice=slice_, variable=variable,
                       volume=slice_ is None)
    except ValueError as exc:
        if str(exc).startswith("`spacing`"):
            raise ValueError(f"{option}: {exc}") from None
        raise


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

    mr_spacing = per_axis(args.mr_spacing, "--mr-spacing")
    us_spacing = per_axis(args.us_spacing, "--us-spacing")
    mr_img = _load(args.mr_path, mr_spacing, args.mr_slice, args.mr_variable, "--mr-spacing")
    us_img = _load(args.us_path, us_spacing, args.us_slice, args.us_variable, "--us-spacing")
    fov = (None if args.fov_threshold is None
           else io.field_of_view(us_img, threshold=args.fov_threshold))
    pair = io.prepare_pair(mr_img, us_img, ratio=args.ratio, resample_us=args.resample_us,
                           crop=args.crop, mask=fov)
    mr, us, ratio = pair.mr, pair.us, pair.ratio
    ratio_source = _RATIO_SOURCES.get(pair.ratio_source, pair.ratio_source)
    volume = mr.ndim == 3
    if volume:
        for option, path in (("-o", args.output), ("--us-domain", args.us_domain)):
            if path is not None and str(path).lower().endswith(".png"):
                raise ValueError(f"{option} {path}: a volume cannot be written to PNG; use "
                                 ".nii.gz (keeps the US affine), .npz or .npy")
        if args.scan_direction is None:
            options["scan_direction"] = (1.0, 0.0, 0.0)

    notes = list(pair.notes)
    if pair.mask is not None:
        notes.append(f"field of view: {100 * pair.mask.mean():.1f}% of the US grid")
    say(args, pair.message.replace("ratio argument", "--ratio"), *notes)
    try:
        res = fuse(mr, us, ratio=ratio, threads=args.threads, spacing=pair.us_spacing,
                   progress=show_progress(args), mask=pair.mask, register=args.register,
                   **options)
    except (ValueError, TypeError) as exc:
        if not volume:
            raise
        raise ValueError(f"fuse refused the volumes ({pair.message}): {exc}") from None

    written = []
    nifti = (".nii", ".nii.gz")

    def save(path, data):
        affine = pair.us_affine if str(path).lower().endswith(nifti) else None
        written.append(io.save(path, data, spacing=pair.us_spacing, affine=affine,
                               overwrite=args.overwrite, volume=volume))

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
            "field_of_view_fraction": None if pair.mask is None else float(pair.mask.mean()),
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
