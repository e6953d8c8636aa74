"""The fusion options shared by ``mrusfusion fuse`` and ``mrusfusion batch``: the model's
(link, weights, PSF, gradient) and the solver's stopping rule."""
from __future__ import annotations

import argparse
from typing import Any, Dict, Optional

from ..fusion import DEFAULT_MAX_ITER, DEFAULT_TOL
from .common import (finite_float, nonnegative_float, nonnegative_int, per_axis, positive_float,
                     positive_int)

__all__ = ["add_model_options", "fuse_options"]


def _degree(text: str) -> Optional[int]:
    """``--degree``: a positive integer, or ``auto`` (cross-validation)."""
    if text.strip().lower() == "auto":
        return None
    return positive_int(text)


def add_model_options(p: argparse.ArgumentParser):
    """Add the model group and a solver group (``--max-iter``, ``--tol``) to ``p``; returns the
    solver group, for the command's own solver options."""
    m = p.add_argument_group("model (defaults: the paper's, weights from the data)")
    m.add_argument("--degree", type=_degree, default=None, metavar="D",
                   help="degree of the polynomial link, or 'auto' (default): the smallest "
                        "degree within one standard error of the best blocked cross-validation "
                        "error (the paper: 3 on simulations, 4 on real data)")
    m.add_argument("--link", choices=("global", "local"), default="global",
                   help="one polynomial for the image (default, the paper) or coefficients "
                        "that vary smoothly over a grid of knots chosen by cross-validation")
    m.add_argument("--refit-link", action="store_true",
                   help="refit the link to the current x and v after each iteration (an exact "
                        "third block of PALM)")
    m.add_argument("--tau1", type=nonnegative_float, metavar="T",
                   help="MR smoothness (larger: smoother x)")
    m.add_argument("--tau2", type=positive_float, metavar="T",
                   help="US data fidelity (larger: more speckle kept in v)")
    m.add_argument("--tau3", type=nonnegative_float, metavar="T",
                   help="US smoothness (larger: smoother v)")
    m.add_argument("--tau4", type=positive_float, metavar="T",
                   help="MR/US coupling (larger: x more US-like, sharper interfaces; smaller: "
                        "more MR-like)")
    m.add_argument("--gamma", type=positive_float, metavar="G",
                   help="log-Rayleigh parameter of the US noise")
    m.add_argument("--gradient", choices=("directional", "magnitude"), default="directional",
                   help="g(x) of the link: derivative along the scan direction (the paper) or "
                        "gradient magnitude (the authors' code) (default: %(default)s)")
    m.add_argument("--scan-direction", type=finite_float, nargs="+", metavar="U",
                   help="US beam direction (rows, columns; three components for a volume) "
                        "for --gradient directional (default: down the rows, 1 0 or 1 0 0)")
    m.add_argument("--psf", type=positive_float, nargs=2, metavar=("SIZE", "VARIANCE"),
                   help="Gaussian MR point-spread function (default: 9 4, the paper's)")
    s = p.add_argument_group("solver")
    s.add_argument("--max-iter", type=nonnegative_int, default=DEFAULT_MAX_ITER, metavar="N",
                   help="iteration cap (default: %(default)s)")
    s.add_argument("--tol", type=nonnegative_float, default=DEFAULT_TOL, metavar="T",
                   help="stop when the relative changes of x and v fall below T "
                        "(default: %(default)s)")
    return s


def fuse_options(args) -> Dict[str, Any]:
    """The :func:`mrusfusion.fuse` keywords the options of :func:`add_model_options` give.

    Raises
    ------
    ValueError
        If ``--psf SIZE`` is not a positive integer, or ``--scan-direction`` has not 2 or 3
        components.
    """
    psf = None
    if args.psf is not None:
        size, variance = args.psf
        if not float(size).is_integer() or size < 1:
            raise ValueError(f"--psf SIZE must be a positive integer, got {size:g}")
        psf = (int(size), float(variance))
    return dict(degree=args.degree, link=args.link, refit_link=args.refit_link, tau1=args.tau1,
                tau2=args.tau2, tau3=args.tau3, tau4=args.tau4, gamma=args.gamma, psf=psf,
                gradient=args.gradient,
                scan_direction=per_axis(args.scan_direction, "--scan-direction") or (1.0, 0.0),
                max_iter=args.max_iter, tol=args.tol)
