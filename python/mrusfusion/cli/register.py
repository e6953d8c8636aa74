"""``mrusfusion register``: align a US image to an MR image by the link's similarity."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import io
from .._version import __version__
from ..registration import TRANSFORMS, register, world_matrix
from .common import (check_image_output, command_parser, nonnegative_float, output_paths_ok,
                     positive_int, say, write_json)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "register", summary="register a US image to an MR image",
        description=(
            "Register an ultrasound (US) image to an MR image by the share of the US variance "
            "that the polynomial link of the MR intensity and gradient explains (Roche et al., "
            "IEEE TMI 2001; DESIGN.md section 15), coarse to fine. Writes the US resampled onto "
            "the MR-aligned grid to OUT_PATH (pixels the moved US does not cover are 0; "
            "--valid-mask writes them as a mask) and the transform as JSON (--json, default "
            "OUT_PATH with the extension replaced by .transform.json).\n\n"
            "The transform maps a pixel o of the registered US to the point matrix @ [o, 1] of "
            "the input US, in US pixel indices (row, column), as scipy.ndimage.affine_transform. "
            "For NIfTI inputs the JSON also gives it in world millimetres (through the US "
            "affine); with a known pixel spacing only, in millimetres from the first pixel.\n\n"
            "Grids: the US grid must be an integer multiple of the MR grid, from the spacings, "
            "--ratio or the shapes, as for `mrusfusion fuse`. Volumes (a 3-D file is read whole "
            "unless a slice is picked) take --transform translation or affine."),
        example=("mrusfusion register mr.nii.gz us.nii.gz -o us_registered.nii.gz\n"
                 "mrusfusion fuse mr.nii.gz us_registered.nii.gz -o fused.nii.gz"))
    p.add_argument("mr_path", metavar="MR", help="MR image file (fixed)")
    p.add_argument("us_path", metavar="US", help="US image file (moving)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_PATH",
                   help="registered US image")
    p.add_argument("--json", metavar="PATH", help="transform record (default: see above)")
    p.add_argument("--valid-mask", metavar="PATH", help="also write the mask of valid pixels")
    p.add_argument("--transform", choices=TRANSFORMS, default="rigid",
                   help="transform model (default: %(default)s)")
    p.add_argument("--ratio", type=positive_int, metavar="N",
                   help="decimation ratio (the same on every axis)")
    p.add_argument("--degree", type=positive_int, default=3, metavar="D",
                   help="degree of the link (default: %(default)s)")
    p.add_argument("--levels", type=positive_int, metavar="N",
                   help="pyramid levels (default: up to 3)")
    p.add_argument("--smooth", type=nonnegative_float, default=1.0, metavar="PX",
                   help="US smoothing at the finest level, in US pixels (default: %(default)s)")
    p.add_argument("--max-iter", type=positive_int, default=100, metavar="N",
                   help="iterations per level (default: %(default)s)")
    p.add_argument("--us-mask", metavar="PATH",
                   help="the US's own field of view (nonzero inside), on the US grid; it moves "
                        "with the US")
    p.add_argument("--mr-slice", type=int, metavar="K", help="slice of a 3-D MR volume")
    p.add_argument("--us-slice", type=int, metavar="K", help="slice of a 3-D US volume")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary")
    p.set_defaults(func=run)
    return p


def _default_json(output: str) -> str:
    path = Path(output)
    name = path.name
    for ext in (".nii.gz", path.suffix):
        if ext and name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return str(path.with_name(name + ".transform.json"))


def run(args) -> int:
    json_path = args.json if args.json is not None else _default_json(args.output)
    output_paths_ok([("-o", args.output), ("--json", json_path),
                     ("--valid-mask", args.valid_mask)],
                    [args.mr_path, args.us_path], overwrite=args.overwrite)
    check_image_output(args.output, "-o")
    check_image_output(args.valid_mask, "--valid-mask")
    # a file holding a volume is read whole unless a slice is picked
    mr_img = io.load(args.mr_path, slice=args.mr_slice, volume=args.mr_slice is None)
    us_img = io.load(args.us_path, slice=args.us_slice, volume=args.us_slice is None)
    pair = io.prepare_pair(mr_img, us_img, ratio=args.ratio)
    ratio = pair.ratio
    fov = None
    if args.us_mask is not None:
        fov = io.load(args.us_mask, slice=args.us_slice,
                      volume=args.us_slice is None).data != 0
        if fov.shape != pair.us.shape:
            raise ValueError(f"--us-mask must have the shape of the US {pair.us.shape}, got "
                             f"{fov.shape}")
    res = register(pair.mr, pair.us, ratio=ratio, transform=args.transform,
                   degree=args.degree, levels=args.levels, smooth=args.smooth,
                   max_iter=args.max_iter, us_mask=fov)
    if not res.success and res.overlap < 0.25:
        raise ValueError(f"registration failed: {res.message}")
    us_reg, valid = res.apply(pair.us, us_mask=fov)
    nifti = (".nii", ".nii.gz")
    written = []
    for path, data in ((args.output, us_reg), (args.valid_mask, valid.astype(np.float32))):
        if path is None:
            continue
        affine = pair.us_affine if str(path).lower().endswith(nifti) else None
        written.append(io.save(path, data, spacing=pair.us_spacing, affine=affine,
                               overwrite=args.overwrite, volume=data.ndim == 3))
    record = {
        "mrusfusion": __version__,
        "mr": args.mr_path, "us": args.us_path, "us_mask": args.us_mask, "ratio": ratio,
        "transform": res.transform,
        "convention": "registered_us[o] = us[matrix @ [o, 1]], indices (row, col) of the US grid",
        "matrix": res.matrix, "params": res.params,
        "similarity": res.similarity, "initial_similarity": res.initial_similarity,
        "iterations": res.iterations, "levels": res.levels, "overlap": res.overlap,
        "success": res.success, "message": res.message, "seconds": res.seconds,
    }
    if pair.us_affine is not None:
        record["matrix_world_mm"] = world_matrix(res.matrix, pair.us_affine)
        record["world_convention"] = ("registered point X (world mm, RAS of the US NIfTI) is "
                                      "sampled at matrix_world_mm @ [X, 1] of the input US")
    elif pair.us_spacing is not None:
        record["matrix_mm"] = world_matrix(res.matrix, np.diag([*pair.us_spacing, 1.0]))
        record["world_convention"] = "the same in millimetres (row, col) from the first pixel"
    written.append(write_json(json_path, record, overwrite=args.overwrite))
    say(args, pair.message, *pair.notes, res.message,
        f"{res.iterations} iterations, {res.seconds:.1f} s, overlap {100 * res.overlap:.0f}%",
        *(f"wrote {p}" for p in written))
    return 0
