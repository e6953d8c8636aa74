"""What every command shares: the house layout of a command's manual, argument types, output
checks, messages and the JSON records.

Handlers raise ``ValueError``, ``TypeError``, ``OSError`` or ``ImportError`` for the user's
mistakes (:data:`USER_ERRORS`); :func:`mrusfusion.cli.main` prints them as one line.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from .._version import __version__
from ..io import WRITE_FORMATS, write_atomic
from ..link import exponents
from ..report import PLOT_HINT, require_matplotlib

__all__ = ["PROG", "USER_ERRORS", "PLOT_HINT", "HelpFormatter", "fill", "command_parser",
           "int_at_least", "positive_int", "nonnegative_int", "finite_float", "positive_float",
           "ratio_value", "per_axis",
           "nonnegative_float", "show_progress", "say", "output_paths_ok", "check_image_output",
           "out_dir", "jsonable", "write_json", "fusion_summary", "have_matplotlib"]

PROG = "mrusfusion"
#: Errors that are the user's to fix: one line on stderr, exit status 2, no traceback.
USER_ERRORS = (ValueError, TypeError, OSError, ImportError)


# --------------------------------------------------------------------------- manual layout


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs (the examples) as written."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=32)


def fill(text: str, width: int = 79) -> str:
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
        name, help=summary, description=fill(description),
        epilog="example:\n" + "\n".join("  " + line for line in example.strip().splitlines()),
        formatter_class=HelpFormatter)


# --------------------------------------------------------------------------- argument types


def int_at_least(low: int, what: str):
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


positive_int = int_at_least(1, "a positive integer")
nonnegative_int = int_at_least(0, "an integer >= 0")


def finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def ratio_value(text: str):
    """An argparse type: a decimation ratio, ``N`` (every axis) or ``A,B[,C]`` (per axis)."""
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or one per axis like 2,2,4, got {text!r}") from None
    if len(values) > 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or one per axis like 2,2,4, got {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def per_axis(values, option: str, counts=(2, 3)) -> Optional[tuple]:
    """The values of an ``nargs="+"`` option with one value per axis (2 or 3), or None."""
    if values is None:
        return None
    if len(values) not in counts:
        raise ValueError(f"{option} takes {' or '.join(map(str, counts))} values (one per "
                         f"axis), got {len(values)}")
    return tuple(values)


def nonnegative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


# --------------------------------------------------------------------------- messages


def show_progress(args) -> bool:
    """A progress bar only for a person watching: stderr is a terminal and no ``--quiet``."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        tty = False
    return tty and not getattr(args, "quiet", False)


def say(args, *lines: str) -> None:
    """Print ``lines`` on stdout unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print("\n".join(lines), flush=True)


def have_matplotlib() -> bool:
    """Whether figures can be drawn (commands then write them; else they say how to)."""
    try:
        require_matplotlib()
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- outputs


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


def out_dir(path: str, option: str) -> Path:
    """The output folder of a command (expanded); refuses an existing file, not a missing
    folder (the command creates it once everything else is checked)."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{option} {path} exists and is not a folder")
    return out


def check_image_output(path: Optional[str], opt: str) -> None:
    """Refuse an image output whose extension no writer of :mod:`mrusfusion.io` knows."""
    if path is None:
        return
    name = Path(path).name.lower()
    if not any(name.endswith(ext) for ext in WRITE_FORMATS):
        raise ValueError(f"cannot write {opt} {path}: unsupported extension; supported: "
                         f"{', '.join(WRITE_FORMATS)}")


def jsonable(obj):
    """Plain JSON types; NaN and infinities become ``null`` (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
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


def write_json(path, content: dict, *, overwrite: bool) -> Path:
    """Write ``content`` as indented JSON (see :func:`jsonable`), atomically."""
    data = (json.dumps(jsonable(content), indent=2, allow_nan=False) + "\n").encode("utf-8")
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)


#: What each output carries, as ``--json`` and the report figure say it (README, "Which image is
#: the fused one").
IMAGE_ROLES = {
    "x": "MR domain: the MR super-resolved onto the US grid, with MR tissue contrast; US detail "
         "enters it only through the link",
    "v": "US domain: the despeckled US, with the US's own detail (thin layers, interfaces); MR "
         "contrast enters it through the link, in the share coupling_share",
}


def fusion_summary(result, **context) -> dict:
    """What ``--json`` and ``demo`` record about a :class:`~mrusfusion.FusionResult`.

    ``context`` (inputs, options) comes first; then the link (degree, gradient, coefficients with
    their exponents ``(p, q)`` of ``x^p g^q``), the weights and how each was obtained, the
    measured noise levels behind the automatic weights, what each image carries (``images``,
    ``coupling_share``, ``link_explained``), the iterations, the stop reason, the
    objective and step-constant histories and the timings.
    """
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
        "noise": {k: w[k] for k in ("sigma_m2", "sigma_u2", "sigma_f2", "b", "rho",
                                    "grain_area", "misfit_area")},
        "images": IMAGE_ROLES,
        "coupling_share": result.coupling_share,
        "link_explained": result.link_explained,
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
        "registration": _registration(result),
    }


def _registration(result) -> Optional[dict]:
    reg = getattr(result, "registration", None)
    if reg is None:
        return None
    return {"transform": reg.transform, "matrix": np.asarray(reg.matrix).tolist(),
            "convention": "scipy.ndimage.affine_transform: output point o of the registered US "
                          "is sampled at matrix @ [o, 1] of the given US (US index coordinates)",
            "similarity": reg.similarity, "success": reg.success, "message": reg.message}
