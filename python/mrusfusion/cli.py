"""The ``mrusfusion`` command (also ``python -m mrusfusion``).

Subcommands: ``info``, ``demo``, ``fuse`` and ``simulate`` live here; further ones (``reproduce``,
``sweep``, ``bench``) plug in from their own modules through :data:`EXTERNAL_COMMANDS`.

Adding a subcommand
-------------------
A built-in one: write ``_setup_<name>(subparsers)`` that calls ``subparsers.add_parser(...)``
(use :func:`command_parser` for the house formatting), sets ``func=`` to a handler
``handler(args) -> int`` and returns the parser; then add it to :data:`COMMANDS`.

One in its own module: give the module ``add_parser(subparsers)`` doing the same, and name the
module in :data:`EXTERNAL_COMMANDS`. A module that is not installed yet (or that has no
``add_parser``) is skipped, so the command works while the module is still being written; an
error raised while importing an existing module is not hidden.

Handlers raise ``ValueError``, ``TypeError``, ``OSError`` (``FileNotFoundError``,
``FileExistsError``, ...) or ``ImportError`` for the user's mistakes; :func:`main` prints them as
one line ``mrusfusion: error: ...`` on stderr and returns 2 (``--traceback`` shows the traceback).
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from ._version import __version__
from .fusion import DEFAULT_MAX_ITER, DEFAULT_TOL

__all__ = ["main", "build_parser", "COMMANDS", "EXTERNAL_COMMANDS", "command_parser",
           "output_paths_ok", "fusion_summary"]

PROG = "mrusfusion"
_PLOT_HINT = 'pip install "mrusfusion[plot]"'
#: Errors that are the user's to fix: one line on stderr, exit status 2, no traceback.
USER_ERRORS = (ValueError, TypeError, OSError, ImportError)
#: Outputs of ``demo`` and ``simulate`` inside OUT_DIR.
DEMO_FILES = ("fused_x.npy", "fused_v.npy", "fusion.json")
DEMO_FIGURE = "demo.png"
SIMULATE_FILES = ("mr.npy", "us.npy", "mr_true.npy", "us_true.npy", "simulation.json")
# The paper's SNRs (section IV-A): (MR, US) in dB per decimation ratio.
_PAPER_SNR_DB = {4: (23.26, 13.72), 2: (20.73, 13.80)}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs (the examples) as written."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=32)


def _fill(text: str, width: int = 79) -> str:
    """Wrap each paragraph of ``text``; paragraphs with indented lines (lists) stay as written."""
    blocks = []
    for block in text.strip().split("\n\n"):
        if any(line.startswith(" ") for line in block.splitlines()):
            blocks.append(block)
        else:
            blocks.append(textwrap.fill(" ".join(block.split()), width))
    return "\n\n".join(blocks)


def command_parser(subparsers, name: str, *, summary: str, description: str,
                   example: str) -> argparse.ArgumentParser:
    """Add a subcommand parser with the house layout: one-line ``summary`` in the command list,
    ``description`` (paragraphs, wrapped) at the top of its ``--help`` and ``example`` (shell
    lines, kept as written) at the bottom."""
    return subparsers.add_parser(
        name, help=summary, description=_fill(description),
        epilog="example:\n" + "\n".join("  " + line for line in example.strip().splitlines()),
        formatter_class=_HelpFormatter)


# --------------------------------------------------------------------------- argument types


def _int_at_least(low: int, what: str):
    """An argparse type: an integer >= ``low`` (``what`` names it in the error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_nonnegative_int = _int_at_least(0, "an integer >= 0")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _nonnegative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


# --------------------------------------------------------------------------- shared helpers


def _show_progress(args) -> bool:
    """A progress bar only for a person watching: stderr is a terminal and no ``--quiet``."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        tty = False
    return tty and not getattr(args, "quiet", False)


def _say(args, *lines: str) -> None:
    if not getattr(args, "quiet", False):
        print("\n".join(lines), flush=True)


def _resolved(path) -> Path:
    return Path(os.fspath(path)).expanduser().resolve()


def output_paths_ok(outputs, inputs: Iterable[str], *, overwrite: bool) -> List[Path]:
    """Refuse, before any computation, outputs that would lose data or cannot be written.

    Parameters
    ----------
    outputs : iterable of (str, str or None)
        ``(label, path)`` pairs; the label names the option in messages (``"-o"``, or ``""``
        when the path says enough); a ``None`` path (output not requested) is skipped.
    inputs : iterable of str
        Input paths; no output may name one of them, even with ``overwrite``.
    overwrite : bool
        Whether existing outputs may be replaced.

    Returns
    -------
    list of pathlib.Path
        The resolved paths of the outputs requested.

    Raises
    ------
    ValueError
        If an output names an input file or two outputs name the same file.
    FileExistsError
        If an output exists and ``overwrite`` is false.
    IsADirectoryError, FileNotFoundError
        If an output is a folder or its folder does not exist.
    """
    ins = {_resolved(p): p for p in inputs}
    seen: Dict[Path, str] = {}
    result = []
    for label, path in outputs:
        if path is None:
            continue
        what = f"output {label} {path}" if label else f"output {path}"
        r = _resolved(path)
        same_input = ins.get(r)
        if same_input is None and r.exists():  # hard links, bind mounts
            same_input = next((p for q, p in ins.items() if q.exists() and os.path.samefile(q, r)),
                              None)
        if same_input is not None:
            raise ValueError(f"{what} is the input file {same_input}; refusing to write over an "
                             "input, choose another output path")
        if r in seen:
            raise ValueError(f"{what} is also output {seen[r]}; give each output its own path")
        seen[r] = label or str(path)
        if r.is_dir():
            raise IsADirectoryError(f"{what} is a folder; give a file name")
        if r.exists() and not overwrite:
            raise FileExistsError(f"{what} already exists; pass --overwrite to replace it")
        if not r.parent.is_dir():
            raise FileNotFoundError(f"the folder of {what} does not exist")
        result.append(r)
    return result


def _check_image_output(path: Optional[str], opt: str) -> None:
    if path is None:
        return
    from . import io

    name = Path(path).name.lower()
    if not any(name.endswith(ext) for ext in io.WRITE_FORMATS):
        raise ValueError(f"cannot write {opt} {path}: unsupported extension; supported: "
                         f"{', '.join(io.WRITE_FORMATS)}")


def _jsonable(obj):
    """Plain JSON types; NaN and infinities become ``null`` (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _write_json(path, content: dict, *, overwrite: bool) -> Path:
    from .report import _write_atomic

    text = json.dumps(_jsonable(content), indent=2, allow_nan=False) + "\n"
    return _write_atomic(path, lambda handle: handle.write(text.encode("utf-8")),
                         overwrite=overwrite)


def fusion_summary(result, **context) -> dict:
    """What ``--json`` and ``demo`` record about a :class:`~mrusfusion.FusionResult`.

    ``context`` (inputs, options) comes first; then the link (degree, gradient, coefficients with
    their exponents ``(p, q)`` of ``x^p g^q``), the weights and how each was obtained, the
    measured noise levels behind the automatic weights, the iterations, the stop reason, the
    objective and step-constant histories and the timings.
    """
    from .polynomial import exponents

    w = result.weights.as_dict()
    source = w.pop("source")
    return {
        "mrusfusion": __version__,
        **context,
        "ratio": result.ratio,
        "degree": result.link.degree,
        "gradient": result.link.gradient,
        "scan_direction": list(result.link.scan_direction),
        "coefficients": result.coeffs,
        "coefficient_exponents": [list(pq) for pq in exponents(result.link.degree)],
        "link_relative_residual": result.link.relative_residual,
        "weights": {k: w[k] for k in ("tau1", "tau2", "tau3", "tau4", "gamma")},
        "weights_source": source,
        "noise": {k: w[k] for k in ("sigma_m2", "sigma_u2", "sigma_f2", "b", "rho")},
        "mr_scale": result.mr_scale,
        "us_scale": result.us_scale,
        "dtype": str(result.x.dtype),
        "iterations": result.n_iter,
        "converged": result.converged,
        "stop_reason": result.stop_reason,
        "message": result.message,
        "objective": result.objective,
        "lipschitz": result.lipschitz,
        "timings": dict(result.timings),
    }


def _have_matplotlib() -> bool:
    from .report import figure_format

    try:
        figure_format("x.png")
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- info


def _run_info(args) -> int:
    from ._config import config, show_config

    if args.json:
        print(json.dumps(_jsonable(config()), indent=2))
    else:
        show_config()
    return 0


def _setup_info(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "info", summary="print the version, build and thread configuration",
        description="Print the package version, the compiler and flags the C++ core was built "
                    "with, whether OpenMP is on and its thread count, the FFT backend (pyFFTW "
                    "version, threads), and the NumPy and SciPy versions.\n\n"
                    "Threads: the --threads option of a command, else the environment variable "
                    "MRUSFUSION_NUM_THREADS, else all cores available.",
        example="mrusfusion info\nMRUSFUSION_NUM_THREADS=2 mrusfusion info --json")
    p.add_argument("--json", action="store_true", help="print the configuration as JSON")
    p.set_defaults(func=_run_info)
    return p


# --------------------------------------------------------------------------- demo


def _run_demo(args) -> int:
    from . import io
    from .data import SAMPLE_PSF, sample_pair
    from .fusion import fuse

    out = Path(args.out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"OUT_DIR {args.out_dir} exists and is not a folder")
    plot = _have_matplotlib()
    names = DEMO_FILES + ((DEMO_FIGURE,) if plot else ())
    if out.is_dir():
        output_paths_ok([("", str(out / n)) for n in names], [], overwrite=args.overwrite)
    else:
        out.mkdir(parents=True)

    mr, us = sample_pair()
    _say(args, f"fusing the bundled sample pair: MR {mr.shape[0]}x{mr.shape[1]}, "
               f"US {us.shape[0]}x{us.shape[1]} (El Mansouri et al. 2020, simulated pelvis)")
    res = fuse(mr, us, psf=SAMPLE_PSF, max_iter=args.max_iter, threads=args.threads,
               progress=_show_progress(args))
    written = [io.save(out / "fused_x.npy", res.x, overwrite=args.overwrite),
               io.save(out / "fused_v.npy", res.v, overwrite=args.overwrite)]
    summary = fusion_summary(res, data="mrusfusion.data.sample_pair() (y1.mat, y2.mat)",
                             mr_shape=mr.shape, us_shape=us.shape, max_iter=args.max_iter)
    written.append(_write_json(out / "fusion.json", summary, overwrite=args.overwrite))
    if plot:
        from .report import fusion_figure

        fusion_figure(mr, us, res, out / DEMO_FIGURE, overwrite=args.overwrite,
                      title=f"mrusfusion demo: {res.message}")
        written.append(out / DEMO_FIGURE)
    _say(args, f"{res.message} in {res.timings['total']:.2f} s "
               f"(tau4 = {res.tau4:.3g}, degree {res.link.degree})",
         *(f"wrote {p}" for p in written))
    if not plot:
        _say(args, f"no figure: matplotlib is not installed ({_PLOT_HINT} for figures)")
    return 0


def _setup_demo(subparsers) -> argparse.ArgumentParser:
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
                    f"{_PLOT_HINT})\n\n"
                    "Existing files are not replaced without --overwrite.",
        example="mrusfusion demo demo-out\nmrusfusion demo demo-out --max-iter 50 --overwrite")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for the outputs")
    p.add_argument("--max-iter", type=_nonnegative_int, default=DEFAULT_MAX_ITER, metavar="N",
                   help="iteration cap (default: %(default)s)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="threads for the kernels and FFTs (default: MRUSFUSION_NUM_THREADS or "
                        "all cores, at most one per 65536 pixels)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_run_demo)
    return p


# --------------------------------------------------------------------------- fuse


def _shape_ratio(mr_shape, us_shape) -> int:
    r0, r1 = us_shape[0] / mr_shape[0], us_shape[1] / mr_shape[1]
    if r0 != r1 or not float(r0).is_integer() or r0 < 1:
        raise ValueError(
            f"the US shape {tuple(us_shape)} is not an integer multiple of the MR shape "
            f"{tuple(mr_shape)} (ratios {r0:.4g} and {r1:.4g}); pass --ratio N --crop to crop "
            "both to their common field of view, or give the pixel spacings "
            "(--mr-spacing/--us-spacing)")
    return int(r0)


def _resampled_affine(affine: np.ndarray, old_spacing, new_spacing) -> np.ndarray:
    """The NIfTI affine after :func:`mrusfusion.io.resample_to_ratio` (same outer corner)."""
    a = np.array(affine, dtype=np.float64)
    scale = np.array(new_spacing, float) / np.array(old_spacing, float)
    # New pixel 0 is centred at old index (scale - 1) / 2 (edges aligned).
    a[:3, 3] = a[:3, 3] + a[:3, 0] * (scale[0] - 1) / 2 + a[:3, 1] * (scale[1] - 1) / 2
    a[:3, 0] *= scale[0]
    a[:3, 1] *= scale[1]
    return a


def _run_fuse(args) -> int:
    from . import io
    from .fusion import fuse

    # Everything that can be refused is refused before loading and computing.
    output_paths_ok([("-o", args.output), ("--us-domain", args.us_domain),
                     ("--report", args.report), ("--json", args.json)],
                    [args.mr_path, args.us_path], overwrite=args.overwrite)
    _check_image_output(args.output, "-o")
    _check_image_output(args.us_domain, "--us-domain")
    if args.report is not None:
        from .report import figure_format

        figure_format(args.report)
    psf = None
    if args.psf is not None:
        size, variance = args.psf
        if not float(size).is_integer() or size < 1:
            raise ValueError(f"--psf SIZE must be a positive integer, got {size:g}")
        psf = (int(size), float(variance))

    mr_img = io.load(args.mr_path, spacing=args.mr_spacing, slice=args.mr_slice,
                     variable=args.mr_variable)
    us_img = io.load(args.us_path, spacing=args.us_spacing, slice=args.us_slice,
                     variable=args.us_variable)
    mr, us = mr_img.data, us_img.data
    mr_sp, us_sp = mr_img.spacing, us_img.spacing
    us_affine = us_img.meta.get("affine")
    notes = []
    if mr_sp is not None and us_sp is not None:
        if args.resample_us:
            old_shape, old_sp = us.shape, us_sp
            us, us_sp, ratio = io.resample_to_ratio(us, us_sp, mr_sp)
            if us_affine is not None:
                us_affine = _resampled_affine(us_affine, old_sp, us_sp)
            ratio_source = "spacings, US resampled"
            notes.append(f"resampled US {old_shape[0]}x{old_shape[1]} ({old_sp[0]:.4g}, "
                         f"{old_sp[1]:.4g}) mm -> {us.shape[0]}x{us.shape[1]} ({us_sp[0]:.4g}, "
                         f"{us_sp[1]:.4g}) mm")
        else:
            try:
                ratio = io.ratio_from_spacing(mr_sp, us_sp)
            except ValueError as exc:
                raise ValueError(f"{exc}; on the command line: --resample-us") from None
            ratio_source = "spacings"
        if args.ratio is not None and args.ratio != ratio:
            raise ValueError(
                f"--ratio {args.ratio} contradicts the ratio {ratio} of the pixel spacings (MR "
                f"{mr_sp} mm, US {us_sp} mm); drop --ratio or correct --mr-spacing/--us-spacing")
    else:
        if args.resample_us:
            missing = [n for n, sp in (("MR", mr_sp), ("US", us_sp)) if sp is None]
            which = ("the MR and US files give" if len(missing) == 2
                     else f"the {missing[0]} file gives")
            raise ValueError(f"--resample-us needs the pixel spacing of both images, but {which} "
                             "none; pass --mr-spacing/--us-spacing")
        if args.ratio is not None:
            ratio, ratio_source = args.ratio, "--ratio"
        elif args.crop:
            raise ValueError("--crop needs the ratio: pass --ratio N or the pixel spacings "
                             "(--mr-spacing/--us-spacing)")
        else:
            ratio, ratio_source = _shape_ratio(mr.shape, us.shape), "shapes"
    if args.crop:
        old = (mr.shape, us.shape)
        mr, us = io.crop_to_ratio(mr, us, ratio)
        mr, us = np.ascontiguousarray(mr), np.ascontiguousarray(us)
        if (mr.shape, us.shape) != old:
            notes.append(f"cropped MR {old[0]} -> {mr.shape}, US {old[1]} -> {us.shape}")
    if us.shape != (ratio * mr.shape[0], ratio * mr.shape[1]):
        raise ValueError(
            f"with ratio {ratio} the US image must have shape ratio * MR shape = "
            f"{(ratio * mr.shape[0], ratio * mr.shape[1])}, got US {us.shape} and MR {mr.shape}; "
            "pass --crop to crop both to their common field of view")
    if us_sp is None and mr_sp is not None:
        us_sp = (mr_sp[0] / ratio, mr_sp[1] / ratio)
    if mr_sp is None and us_sp is not None:
        mr_sp = (us_sp[0] * ratio, us_sp[1] * ratio)

    _say(args, f"MR {mr.shape[0]}x{mr.shape[1]}, US {us.shape[0]}x{us.shape[1]}, ratio {ratio} "
               f"(from {ratio_source})", *notes)
    res = fuse(mr, us, ratio=ratio, degree=args.degree, tau1=args.tau1, tau2=args.tau2,
               tau3=args.tau3, tau4=args.tau4, gamma=args.gamma, psf=psf, gradient=args.gradient,
               scan_direction=tuple(args.scan_direction), max_iter=args.max_iter, tol=args.tol,
               threads=args.threads, progress=_show_progress(args))

    written = []
    nifti = (".nii", ".nii.gz")

    def save(path, data):
        affine = us_affine if str(path).lower().endswith(nifti) else None
        written.append(io.save(path, data, spacing=us_sp, affine=affine,
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
            "grid_changes": notes,
            "output_spacing_mm": us_sp,
            "outputs": {"x": str(args.output), "v": args.us_domain, "report": args.report},
            "options": {"max_iter": args.max_iter, "tol": args.tol, "psf": psf,
                        "threads": args.threads},
        }
        written.append(_write_json(args.json, fusion_summary(res, **context),
                                   overwrite=args.overwrite))
    if args.report is not None:
        from .report import fusion_figure

        fusion_figure(mr, us, res, args.report, overwrite=args.overwrite,
                      title=f"{Path(args.mr_path).name} + {Path(args.us_path).name}: {res.message}")
        written.append(Path(args.report))
    w = res.weights
    _say(args, f"{res.message} in {res.timings['total']:.2f} s; tau1 {w.tau1:.3g}, tau2 "
               f"{w.tau2:.3g}, tau3 {w.tau3:.3g}, tau4 {w.tau4:.3g}, gamma {w.gamma:.3g}",
         *(f"wrote {p}" for p in written))
    return 0


def _setup_fuse(subparsers) -> argparse.ArgumentParser:
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
            "--mr-spacing/--us-spacing), which must give one integer ratio (or use --resample-us); "
            "else --ratio; else the shapes (US shape = ratio x MR shape). --crop crops both "
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
    g.add_argument("--ratio", type=_positive_int, metavar="N",
                   help="decimation ratio: one MR pixel covers NxN US pixels")
    g.add_argument("--mr-spacing", type=_positive_float, nargs=2, metavar=("R", "C"),
                   help="MR pixel spacing (rows, columns) in mm; overrides the file's")
    g.add_argument("--us-spacing", type=_positive_float, nargs=2, metavar=("R", "C"),
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
    m = p.add_argument_group("model (defaults: the paper's, weights from the data)")
    m.add_argument("--degree", type=_positive_int, default=4, metavar="D",
                   help="degree of the polynomial link (default: %(default)s; paper: 3 on "
                        "simulations, 4 on real data)")
    m.add_argument("--tau1", type=_nonnegative_float, metavar="T",
                   help="MR smoothness (larger: smoother x)")
    m.add_argument("--tau2", type=_positive_float, metavar="T",
                   help="US data fidelity (larger: more speckle kept in v)")
    m.add_argument("--tau3", type=_nonnegative_float, metavar="T",
                   help="US smoothness (larger: smoother v)")
    m.add_argument("--tau4", type=_positive_float, metavar="T",
                   help="MR/US coupling (larger: x more US-like, sharper interfaces; smaller: "
                        "more MR-like)")
    m.add_argument("--gamma", type=_positive_float, metavar="G",
                   help="log-Rayleigh parameter of the US noise")
    m.add_argument("--gradient", choices=("directional", "magnitude"), default="directional",
                   help="g(x) of the link: derivative along the scan direction (the paper) or "
                        "gradient magnitude (the authors' code) (default: %(default)s)")
    m.add_argument("--scan-direction", type=_finite_float, nargs=2, default=(1.0, 0.0),
                   metavar=("UV", "UH"),
                   help="US beam direction (rows, columns) for --gradient directional "
                        "(default: 1 0, down the rows)")
    m.add_argument("--psf", type=_positive_float, nargs=2, metavar=("SIZE", "VARIANCE"),
                   help="Gaussian MR point-spread function (default: 9 4, the paper's)")
    s = p.add_argument_group("solver")
    s.add_argument("--max-iter", type=_nonnegative_int, default=DEFAULT_MAX_ITER, metavar="N",
                   help="iteration cap (default: %(default)s)")
    s.add_argument("--tol", type=_nonnegative_float, default=DEFAULT_TOL, metavar="T",
                   help="stop when the relative changes of x and v fall below T "
                        "(default: %(default)s)")
    s.add_argument("--threads", type=_positive_int, metavar="N",
                   help="threads for the kernels and FFTs (default: MRUSFUSION_NUM_THREADS or "
                        "all cores, at most one per 65536 pixels)")
    o = p.add_argument_group("outputs")
    o.add_argument("--us-domain", metavar="PATH", help="also write the US-domain estimate v")
    o.add_argument("--report", metavar="PATH",
                   help="also write a figure: MR, US, fused x, v, bicubic start, objective "
                        f"(.png, .pdf, .svg; needs matplotlib: {_PLOT_HINT})")
    o.add_argument("--json", metavar="PATH",
                   help="also write coefficients, weights and their source, noise levels, "
                        "iterations, stop reason, objective history and timings as JSON")
    o.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_run_fuse)
    return p


# --------------------------------------------------------------------------- simulate


def _run_simulate(args) -> int:
    from . import io
    from .data import pelvis_mr, phantom
    from .simulate import simulate

    out = Path(args.out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"OUT_DIR {args.out_dir} exists and is not a folder")
    source = args.source
    if args.shape is not None and source != "phantom":
        raise ValueError("--shape applies to --source phantom only; crop other sources "
                         "beforehand")
    builtin = source in ("phantom", "pelvis")
    if out.is_dir():
        output_paths_ok([("", str(out / n)) for n in SIMULATE_FILES], [] if builtin else [source],
                        overwrite=args.overwrite)
    normalised = False
    if source == "phantom":
        shape = tuple(args.shape) if args.shape is not None else (256, 256)
        truth = phantom(shape)
    elif source == "pelvis":
        truth = pelvis_mr()
    else:
        truth = io.load(source).data.astype(np.float64)
        if not np.all(np.isfinite(truth)):
            raise ValueError(f"--source {source} holds non-finite values")
        lo, hi = float(truth.min()), float(truth.max())
        if lo < 0 or hi > 1:  # the simulator's link expects intensities in [0, 1]
            if not hi > lo:
                raise ValueError(f"--source {source} is constant; nothing to simulate")
            truth = (truth - lo) / (hi - lo)
            normalised = True
    mr_snr, us_snr = _PAPER_SNR_DB.get(args.ratio, _PAPER_SNR_DB[4])
    mr_snr = args.mr_snr_db if args.mr_snr_db is not None else mr_snr
    us_snr = args.us_snr_db if args.us_snr_db is not None else us_snr
    sim = simulate(truth, args.ratio, mr_snr_db=mr_snr, us_snr_db=us_snr, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    written = [io.save(out / name, arr, overwrite=args.overwrite)
               for name, arr in (("mr.npy", sim.mr), ("us.npy", sim.us),
                                 ("mr_true.npy", sim.mr_true), ("us_true.npy", sim.us_true))]
    info = {
        "mrusfusion": __version__,
        "source": source,
        "source_normalised_to_0_1": normalised,
        "seed": args.seed,
        "ratio": sim.ratio,
        "mr_shape": sim.mr.shape,
        "us_shape": sim.us.shape,
        "degree": sim.degree,
        "gradient": sim.gradient,
        "coefficients": sim.coeffs,
        "psf_shape": sim.psf.shape,
        "target_mr_snr_db": mr_snr,
        "target_us_snr_db": us_snr,
        "mr_snr_db": sim.mr_snr_db,
        "us_snr_db": sim.us_snr_db,
        "mr_noise_std": sim.mr_noise_std,
        "us_noise_scale": sim.us_noise_scale,
        "files": {"mr.npy": "observed MR (blurred, decimated, Gaussian noise)",
                  "us.npy": "observed US (log-Rayleigh noise)",
                  "mr_true.npy": "true high-resolution MR",
                  "us_true.npy": "true noise-free US"},
    }
    written.append(_write_json(out / "simulation.json", info, overwrite=args.overwrite))
    _say(args, f"simulated MR {sim.mr.shape[0]}x{sim.mr.shape[1]} ({sim.mr_snr_db:.2f} dB) and "
               f"US {sim.us.shape[0]}x{sim.us.shape[1]} ({sim.us_snr_db:.2f} dB), ratio "
               f"{sim.ratio}, seed {args.seed}", *(f"wrote {p}" for p in written))
    return 0


def _setup_simulate(subparsers) -> argparse.ArgumentParser:
    p = command_parser(
        subparsers, "simulate", summary="write a simulated MR/US pair and its ground truth",
        description=(
            "Simulate an observed MR/US pair from a high-resolution MR image with the paper's "
            "protocol (section IV-A): MR = decimated Gaussian blur (9x9, variance 4) + Gaussian "
            "noise; US = the authors' degree-3 polynomial of the MR intensity and gradient "
            "magnitude + log-Rayleigh noise; SNRs met exactly. Writes to OUT_DIR (created if "
            "needed):\n\n"
            "  mr.npy, us.npy             the observations (fuse them with `mrusfusion fuse`)\n"
            "  mr_true.npy, us_true.npy   the ground truth\n"
            "  simulation.json            ratio, link, SNRs, noise levels, seed\n\n"
            "--source: 'phantom' (the package's analytic pelvic phantom, any --shape), 'pelvis' "
            "(the authors' 300x400 simulated pelvic MR) or the path of an image file (rescaled to "
            "[0, 1] if outside it; write ./phantom for a file of that name). Images are cropped "
            "to a multiple of the ratio. Same seed, same files. Existing files are not replaced "
            "without --overwrite."),
        example=("mrusfusion simulate sim --ratio 4 --seed 1\n"
                 "mrusfusion fuse sim/mr.npy sim/us.npy -o sim/fused.npy --degree 3 "
                 "--gradient magnitude"))
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for the outputs")
    p.add_argument("--ratio", type=_positive_int, default=4, metavar="N",
                   help="decimation ratio (default: %(default)s)")
    p.add_argument("--source", default="phantom", metavar="phantom|pelvis|PATH",
                   help="ground-truth MR image (default: %(default)s)")
    p.add_argument("--shape", type=_positive_int, nargs=2, metavar=("H", "W"),
                   help="phantom size (default: 256 256)")
    p.add_argument("--mr-snr-db", type=_finite_float, metavar="DB",
                   help="MR SNR in dB (default: the paper's, 20.73 at ratio 2, else 23.26)")
    p.add_argument("--us-snr-db", type=_finite_float, metavar="DB",
                   help="US SNR in dB (default: the paper's, 13.80 at ratio 2, else 13.72)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary")
    p.set_defaults(func=_run_simulate)
    return p


# --------------------------------------------------------------------------- registry

#: Built-in subcommands: name -> setup function ``setup(subparsers) -> parser``.
COMMANDS: Dict[str, Callable[[argparse._SubParsersAction], argparse.ArgumentParser]] = {
    "info": _setup_info,
    "demo": _setup_demo,
    "fuse": _setup_fuse,
    "simulate": _setup_simulate,
}

#: Subcommands living in their own modules: name -> module exposing ``add_parser(subparsers)``
#: (which adds the subcommand with ``set_defaults(func=handler)``, ``handler(args) -> int``).
#: HOOK for issue 5 (``reproduce``), issue 8 (``sweep``) and issue 9 (``bench``): a module that is
#: missing, or has no ``add_parser`` yet, is skipped.
EXTERNAL_COMMANDS: Dict[str, str] = {
    "reproduce": "mrusfusion.reproduce",
    "sweep": "mrusfusion.sweep",
    "bench": "mrusfusion.bench",
}


def _external_setup(module_name: str):
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the module itself (or its package) being absent means "not there yet"; a missing
        # dependency inside an existing module is a bug and must surface.
        if exc.name is not None and (module_name == exc.name
                                     or module_name.startswith(exc.name + ".")):
            return None
        raise
    return getattr(module, "add_parser", None)


def build_parser() -> argparse.ArgumentParser:
    """The ``mrusfusion`` argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_HelpFormatter,
        description=_fill("Fuse an MR image with a registered ultrasound image (El Mansouri et "
                          "al., IEEE TIP 2020): joint MR super-resolution and US despeckling."
                          "\n\nRun `mrusfusion COMMAND --help` for the manual of a command."),
        epilog="examples:\n"
               "  mrusfusion demo demo-out\n"
               "  mrusfusion fuse mr.nii.gz us.nii.gz -o fused.nii.gz --report fused.png\n"
               "  mrusfusion simulate sim --ratio 4")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error instead of one line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for setup in COMMANDS.values():
        setup(subparsers)
    for module_name in EXTERNAL_COMMANDS.values():
        setup = _external_setup(module_name)
        if setup is not None:
            setup(subparsers)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror and exc.filename and exc.args[1:]:
        text = f"{exc.strerror}: {exc.filename}"  # "[Errno 2] ..." reads poorly
    return text


def main(argv: Optional[list] = None) -> int:
    """Run the ``mrusfusion`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 on a usage error or an error the user can fix (printed as
        one line ``mrusfusion: error: ...`` on stderr), 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        status = func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted after {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if args.traceback:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0 if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
