"""Figures of the experiments (matplotlib, optional: ``pip install "mrusfusion[plot]"``).

:func:`sweep_figure` draws a :func:`~mrusfusion.experiments.sweep.sweep` (the paper's Fig. 8);
:func:`case_figure` lays out one simulated case of
:func:`~mrusfusion.experiments.reproduce.reproduce` like the paper's Fig. 1. As in
:mod:`mrusfusion.report`, figures get their own Agg canvas (no pyplot, no global state) and files
are written atomically.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, List, Optional

import numpy as np

from ..io import write_atomic
from ..report import figure_format, require_matplotlib

if TYPE_CHECKING:  # only for the annotations: the figures draw what the experiments return
    from .cases import Case
    from .sweep import SweepResult

__all__ = ["sweep_figure", "case_figure"]


def _save(fig, path, fmt: str, dpi: int, *, overwrite: bool) -> None:
    # an explicit format: the temporary file's name does not decide it
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi), overwrite=overwrite)


# --------------------------------------------------------------------------- sweep

_CURVES = (  # (panel title, [(column, label, style)])
    ("CNR between the regions (dB)", (("cnr_x_db", "x", "-"), ("cnr_v_db", "v", "--"))),
    ("profile slope (per pixel)", (("slope_x", "x", "-"), ("slope_v", "v", "--"))),
    ("PSNR (dB)", (("psnr_x", "x vs true MR", "-"), ("psnr_v", "v vs true US", "--"))),
    ("MSSIM", (("mssim_x", "x vs true MR", "-"), ("mssim_v", "v vs true US", "--"))),
)
_MAX_THUMBS = 8


def _evenly(n: int, k: int) -> List[int]:
    """At most ``k`` indices of ``range(n)``, evenly spread, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, k)})


def sweep_figure(result: SweepResult, path=None, *, title: Optional[str] = None,
                 mark: Optional[Dict[str, float]] = None, overwrite: bool = False):
    """The curves of a sweep against the swept tau and a thumbnail of ``x`` at each point.

    Parameters
    ----------
    result : SweepResult
        What :func:`mrusfusion.experiments.sweep.sweep` returned.
    path : str or os.PathLike, optional
        Also write the figure there (the extension picks the format).
    title : str, optional
        Figure title (default: :attr:`SweepResult.message`).
    mark : dict, optional
        ``{"tau4": value}``: a vertical line at that value of the horizontal axis (e.g. the
        automatic value).
    overwrite : bool, default False
        Replace an existing file at ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per measured quantity (CNR, profile slope, PSNR, MSSIM; ``x`` solid, ``v``
        dashed) against the first swept tau (log axis when all values are positive; with two
        swept taus, one curve per value of the second), then a grid of thumbnails of ``x``
        (at most 8 per row and per column, evenly chosen) on one grey scale.

    Raises
    ------
    ImportError
        If matplotlib is not installed (the message says ``pip install "mrusfusion[plot]"``).
    FileExistsError, FileNotFoundError, ValueError
        As :func:`mrusfusion.report.fusion_figure` for ``path``.

    Examples
    --------
    >>> from mrusfusion import phantom, simulate
    >>> from mrusfusion.experiments.sweep import sweep
    >>> sim = simulate(phantom((32, 32)), ratio=2, seed=0)
    >>> res = sweep(sim.mr, sim.us, tau4=[0.1, 1.0], mr_true=sim.mr_true, max_iter=2)
    >>> len(sweep_figure(res).axes)  # PSNR and MSSIM panels, two thumbnails
    4
    """
    Figure, FigureCanvasAgg = require_matplotlib()
    names = list(result.axes)
    first = names[0]
    second = names[1] if len(names) > 1 else None
    xs = np.array(result.axes[first])
    ys = np.array(result.axes[second]) if second else np.array([np.nan])
    table = result.table
    panels = [(t, [c for c in curves if c[0] in (table[0] if table else {})])
              for t, curves in _CURVES]
    panels = [(t, c) for t, c in panels if c]

    def row_of(i, j):
        # first varies slowest in the grid
        return table[i * len(ys) + j] if second else table[i]

    ti = _evenly(len(xs), _MAX_THUMBS)
    tj = _evenly(len(ys), _MAX_THUMBS) if second else [0]
    n_thumb_cols = len(ti)
    n_curve_rows = math.ceil(len(panels) / 2) if panels else 0
    n_rows = n_curve_rows + len(tj)
    fig = Figure(figsize=(max(9.0, 1.6 * n_thumb_cols), 3.0 * n_curve_rows + 1.8 * len(tj) + 0.8),
                 layout="constrained")
    FigureCanvasAgg(fig)
    heights = [3.0] * n_curve_rows + [1.8] * len(tj)
    outer = fig.add_gridspec(n_rows, 1, height_ratios=heights)
    log = bool(np.all(xs > 0))
    colours = [f"C{j % 10}" for j in range(len(ys))]
    for p, (ptitle, curves) in enumerate(panels):
        r, c = divmod(p, 2)
        sub = outer[r].subgridspec(1, 2)
        ax = fig.add_subplot(sub[c])
        for j, yv in enumerate(ys):
            for col, label, style in curves:
                vals = [float(row_of(i, j)[col]) for i in range(len(xs))]
                lab = label if not second else f"{label}, {second} {yv:.3g}"
                # 1-D: x and v in two colours; 2-D: one colour per value of the second tau
                colour = colours[j] if second else ("C0" if style == "-" else "C1")
                ax.plot(xs, vals, style, marker="o", ms=3, color=colour, label=lab)
        if log:
            ax.set_xscale("log")
        if mark and first in mark:
            ax.axvline(mark[first], color="0.5", lw=1, ls=":", label=f"{first} {mark[first]:.3g}")
        ax.set_xlabel(first)
        ax.set_title(ptitle, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    imgs = [row_of(i, j) for j in tj for i in ti]
    lo = min(float(np.min(result.images[r["index"]])) for r in imgs)
    hi = max(float(np.max(result.images[r["index"]])) for r in imgs)
    for a, j in enumerate(tj):
        sub = outer[n_curve_rows + a].subgridspec(1, n_thumb_cols)
        for b, i in enumerate(ti):
            row = row_of(i, j)
            ax = fig.add_subplot(sub[b])
            ax.imshow(result.images[row["index"]], cmap="gray", vmin=lo, vmax=hi,
                      interpolation="nearest")
            label = f"{first} {xs[i]:.3g}" + (f"\n{second} {ys[j]:.3g}" if second else "")
            if not row["converged"]:
                label += "\n(not converged)"
            ax.set_title(label, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title if title is not None else result.message, fontsize=10)
    if path is not None:
        _save(fig, path, figure_format(path), 110, overwrite=overwrite)
    return fig


# --------------------------------------------------------------------------- cases

_FIG1_ORDER = ("true MR", "true US", "observed MR", "observed US", "MR-only", "US-only",
               "fused x", "fused v")
_US_PANELS = ("true US", "observed US", "US-only", "fused v")


def case_figure(case: Case, images: Dict[str, np.ndarray], rows: List[dict], path=None, *,
                overwrite: bool = False):
    """One simulated case laid out like the paper's Fig. 1: truths and observations on top,
    the MR-only and US-only baselines and the fused ``x``, ``v`` below.

    Parameters
    ----------
    case : Case
        The experiment (its name, ratio and SNRs make the title).
    images : dict
        ``"true MR"``, ``"true US"``, ``"observed MR"``, ``"observed US"``, ``"MR-only"``,
        ``"US-only"``, ``"fused x"``, ``"fused v"`` -> image.
    rows : list of dict
        Scores of the case (``"method"``, ``"PSNR"``): the PSNR goes under each estimate.
    path : str or os.PathLike, optional
        Also write the figure there as PNG.
    overwrite : bool, default False
        Replace an existing file at ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        2x4 panels; the MR-domain ones on the grey scale ``[0, max(true MR)]``, the US-domain
        ones on the range of the true US.

    Raises
    ------
    ImportError
        If matplotlib is not installed (the message says ``pip install "mrusfusion[plot]"``).

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion.experiments.cases import Case
    >>> case = Case.phantom(2, (32, 32))
    >>> images = {k: case.truth for k in ("true MR", "true US", "MR-only", "US-only",
    ...                                   "fused x", "fused v", "observed US")}
    >>> images["observed MR"] = case.truth[::2, ::2]
    >>> len(case_figure(case, images, [{"method": "fused x", "PSNR": 30.0}]).axes)
    8
    """
    Figure, FigureCanvasAgg = require_matplotlib()
    psnr = {r["method"]: r["PSNR"] for r in rows}
    mr_hi = float(np.max(images["true MR"]))
    us_lo = float(np.min(images["true US"]))
    us_hi = float(np.max(images["true US"]))
    n1, n2 = images["true MR"].shape
    fig = Figure(figsize=(13.0, 2 * 3.2 * n1 / n2 + 1.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 4)
    for ax, key in zip(axes.ravel(), _FIG1_ORDER):
        img = images[key]
        vmin, vmax = (us_lo, us_hi) if key in _US_PANELS else (0.0, mr_hi)
        ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        title = f"{key} ({img.shape[0]}x{img.shape[1]})"
        if key in psnr:
            title += f"\nPSNR {psnr[key]:.2f} dB"
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{case.dataset}, ratio {case.ratio}: MR SNR {case.mr_snr_db:g} dB, US SNR "
                 f"{case.us_snr_db:g} dB (El Mansouri et al. 2020, Fig. 1 layout)")
    if path is not None:
        _save(fig, path, "png", 100, overwrite=overwrite)
    return fig
