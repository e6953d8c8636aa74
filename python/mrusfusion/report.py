"""Figures of a fusion result (matplotlib, an optional extra: ``pip install "mrusfusion[plot]"``).

The figures are drawn on a :class:`matplotlib.figure.Figure` with its own Agg canvas: nothing
here touches pyplot, the global backend or rcParams, so this is safe in scripts, servers and
threads, and the figures are never shown, only returned or written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np


__all__ = ["fusion_figure", "figure_format", "require_matplotlib", "PLOT_HINT"]

#: How to get the figures; every message about a missing matplotlib quotes it.
PLOT_HINT = 'pip install "mrusfusion[plot]"'


def require_matplotlib():
    """The two matplotlib classes the figures use, imported on first use.

    Returns
    -------
    (type, type)
        ``(matplotlib.figure.Figure, matplotlib.backends.backend_agg.FigureCanvasAgg)``: a
        figure drawn on its own Agg canvas never touches pyplot or the global backend.

    Raises
    ------
    ImportError
        If matplotlib is not installed; the message quotes :data:`PLOT_HINT`.

    Examples
    --------
    >>> Figure, FigureCanvasAgg = require_matplotlib()  # doctest: +SKIP
    >>> FigureCanvasAgg(Figure()).get_default_filetype()  # doctest: +SKIP
    'png'
    """
    try:
        import matplotlib  # noqa: F401 - first, so a missing package fails here
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"figures need matplotlib, which is not installed: {PLOT_HINT}") from exc
    return Figure, FigureCanvasAgg


def _image_panel(ax, img, title, vmin, vmax, aspect: float = 1.0):
    ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest", aspect=aspect)
    ax.set_title(f"{title}\n{img.shape[0]}x{img.shape[1]}, [{np.min(img):.3g}, {np.max(img):.3g}]",
                 fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _centre_index(shape: Sequence[int], index: Optional[Sequence[int]]) -> Tuple[int, ...]:
    """The fine-grid voxel the three orthogonal slices go through (default: the centre)."""
    if index is None:
        return tuple(n // 2 for n in shape)
    if len(index) != len(shape) or any(
            isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in index):
        raise ValueError(f"`slice_index` must be {len(shape)} integers, got {index!r}")
    out = tuple(int(i) for i in index)
    if any(not 0 <= i < n for i, n in zip(out, shape)):
        raise ValueError(f"`slice_index` {out} lies outside the US grid {tuple(shape)}")
    return out


def _orthogonal(vol: np.ndarray, index: Sequence[int]) -> List[np.ndarray]:
    """The slices of ``vol`` through ``index`` across axes 0, 1 and 2."""
    return [np.take(vol, index[a], axis=a) for a in range(3)]


def _volume_panels(fig, images, ranges, objective, index, coarse_index, ratios):
    """Three rows (slices across axes 0, 1, 2) of the image panels, and the objective. The
    coarse (MR) slices are stretched by the ratios so that they cover what the US slices do."""
    axes = fig.subplots(3, len(images) + 1)
    for col, ((img, name, coarse), rng) in enumerate(zip(images, ranges)):
        at = coarse_index if coarse else index
        for row, piece in enumerate(_orthogonal(img, at)):
            shown = [a for a in range(3) if a != row]
            aspect = ratios[shown[0]] / ratios[shown[1]] if coarse else 1.0
            _image_panel(axes[row, col], piece, f"{name}, axis {row} = {at[row]}", *rng,
                         aspect=aspect)
    _objective_panel(axes[0, -1], objective)
    for row in (1, 2):
        axes[row, -1].axis("off")
    return axes


def _objective_panel(ax, objective):
    psi = np.asarray(objective, dtype=np.float64)
    k = np.arange(psi.size)
    gap = psi - psi.min()
    positive = gap > 0
    if np.count_nonzero(positive) >= 2:
        # The last iterate is the minimum (psi never increases), so its gap is 0: drop the zeros
        # rather than add an arbitrary floor that would dominate the log axis.
        ax.semilogy(k[positive], gap[positive], ".-", ms=3, lw=1)
        ax.set_ylabel(r"$\psi_k - \min_j \psi_j$")
    else:
        ax.plot(k, psi, ".-", ms=3, lw=1)
        ax.set_ylabel(r"$\psi_k$")
    ax.set_xlabel("iteration k")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"objective, solver units ({psi.size - 1} iteration(s))\n"
                 f"psi: {psi[0]:.6g} -> {psi[-1]:.6g}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)


def _write_atomic(path, write, *, overwrite: bool) -> Path:
    """Write a file through ``write(binary_handle)`` atomically (see
    :func:`mrusfusion.io.write_atomic`)."""
    from .io import write_atomic

    def fill(tmp):
        with open(tmp, "wb") as handle:
            write(handle)

    return write_atomic(path, fill, overwrite=overwrite)


def figure_format(path) -> str:
    """The matplotlib format named by the extension of ``path`` (``"png"``, ``"pdf"``, ...).

    Raises
    ------
    ImportError
        If matplotlib is not installed (the message says ``pip install "mrusfusion[plot]"``).
    ValueError
        If matplotlib cannot write that extension; the message lists those it can.
    """
    _, FigureCanvasAgg = require_matplotlib()
    suffix = Path(os.fspath(path)).suffix
    fmt = suffix.lower().lstrip(".")
    supported = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"cannot write a figure to {Path(os.fspath(path)).name!r}: unsupported "
                         f"extension {suffix or '(none)'!r}; supported: "
                         f"{', '.join('.' + k for k in sorted(supported))}")
    return fmt


def coupling_text(result) -> str:
    """One line on what each image of a fusion carries of the other modality.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> coupling_text(SimpleNamespace(coupling_share=0.25, link_explained=0.6))
    'v leans 25% on the link f(x), which explains 60% of its variance'
    """
    return (f"v leans {100 * result.coupling_share:.0f}% on the link f(x), which explains "
            f"{100 * result.link_explained:.0f}% of its variance")


def fusion_figure(mr, us, result, path=None, *, title: Optional[str] = None,
                  overwrite: bool = False, slice_index: Optional[Sequence[int]] = None):
    """One figure summarising a fusion: the inputs, the two outputs, the start and the objective.

    Parameters
    ----------
    mr : array_like, shape (m1, m2) or (m1, m2, m3)
        Observed MR image (or volume) given to :func:`mrusfusion.fuse`.
    us : array_like, shape (s m1, s m2) or (s1 m1, s2 m2, s3 m3)
        Observed US image (or volume) given to :func:`mrusfusion.fuse`.
    result : FusionResult
        What :func:`mrusfusion.fuse` returned for ``mr`` and ``us``.
    path : str or os.PathLike, optional
        Also write the figure there; the extension picks the format (``.png``, ``.pdf``,
        ``.svg``, ...).
    title : str, optional
        Figure title; default: the solver's message, the ratio, the degree, ``tau4`` and
        :func:`coupling_text`.
    overwrite : bool, default False
        Replace an existing file at ``path``. Without it an existing file is left untouched.
    slice_index : (int, int, int), optional
        Volumes only: the US-grid voxel the three orthogonal slices go through (default: the
        centre); the MR slices go through the MR voxel that holds it.

    Returns
    -------
    matplotlib.figure.Figure
        A 2x3 grid: observed MR, observed US, ``x`` (MR domain); ``v`` (US domain), the
        bicubic start ``x_0`` and the objective curve. For volumes, a 3x6 grid: one column per
        image (MR, US, ``x``, ``v``, ``x_0``), one row per orthogonal slice (across axes 0, 1
        and 2), and the objective top right. The title says how far ``v`` leans on
        the link (``result.coupling_share``) and how much of it the link explains
        (``result.link_explained``).

    Raises
    ------
    ImportError
        If matplotlib is not installed; the message says ``pip install "mrusfusion[plot]"``.
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        If the folder of ``path`` does not exist.
    ValueError
        If the extension of ``path`` is not a format matplotlib writes, the images are neither
        all 2-D nor all 3-D, or ``slice_index`` is not a voxel of the US grid.

    Notes
    -----
    The MR-scale panels (MR, ``x``, ``x_0``) share one grey scale and the US-scale panels (US,
    ``v``) another, so contrasts compare by eye. The objective ``psi_k`` (solver units, never
    increasing) is drawn as ``psi_k - min psi`` on a log axis, or as is when there are fewer than
    two positive gaps. The file is written to a temporary file in the target folder and renamed
    into place (:func:`os.replace`, or a hard link when ``overwrite`` is false), so a failure never
    leaves a partial figure. Only :class:`matplotlib.figure.Figure` with an Agg canvas is used:
    pyplot, the global backend and rcParams are untouched.

    References
    ----------
    .. [1] O. El Mansouri et al., "Fusion of Magnetic Resonance and Ultrasound Images for
       Endometriosis Detection", IEEE Trans. Image Process. 29 (2020) 5324-5335 (Fig. 1 shows
       the same panels).

    Examples
    --------
    >>> from mrusfusion import fuse, simulate, phantom
    >>> from mrusfusion.report import fusion_figure
    >>> sim = simulate(phantom((32, 32)), ratio=2, seed=0)
    >>> res = fuse(sim.mr, sim.us, max_iter=5)
    >>> len(fusion_figure(sim.mr, sim.us, res).axes)
    6
    """
    Figure, FigureCanvasAgg = require_matplotlib()
    mr = np.asarray(mr, dtype=np.float64)
    us = np.asarray(us, dtype=np.float64)
    x = np.asarray(result.x, dtype=np.float64)
    v = np.asarray(result.v, dtype=np.float64)
    x0 = np.asarray(result.x_init, dtype=np.float64)
    dims = {a.ndim for a in (mr, us, x, v, x0)}
    if dims not in ({2}, {3}):
        raise ValueError(f"`mr`, `us` and the result's x, v, x_init must be all 2-D or all "
                         f"3-D, got shapes {[a.shape for a in (mr, us, x, v, x0)]}")
    mr_range = (min(mr.min(), x.min(), x0.min()), max(mr.max(), x.max(), x0.max()))
    us_range = (min(us.min(), v.min()), max(us.max(), v.max()))

    if dims == {3}:
        index = _centre_index(us.shape, slice_index)
        coarse = tuple(min(i * m // n, m - 1) for i, m, n in zip(index, mr.shape, us.shape))
        fig = Figure(figsize=(19.0, 10.0), layout="constrained")
        FigureCanvasAgg(fig)
        images = [(mr, "MR $y_m$", True), (us, "US $y_u$", False), (x, "$x$ (MR domain)", False),
                  (v, "$v$ (US domain)", False), (x0, "start $x_0$", False)]
        ratios = [n / m for n, m in zip(us.shape, mr.shape)]
        _volume_panels(fig, images, [mr_range, us_range, mr_range, us_range, mr_range],
                       result.objective, index, coarse, ratios)
    else:
        fig = Figure(figsize=(13.0, 8.5), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, 3)
        _image_panel(axes[0, 0], mr, "observed MR $y_m$", *mr_range)
        _image_panel(axes[0, 1], us, "observed US $y_u$", *us_range)
        _image_panel(axes[0, 2], x, "$x$, MR domain: MR contrast, US grid", *mr_range)
        _image_panel(axes[1, 0], v, "$v$, US domain: US detail, despeckled", *us_range)
        _image_panel(axes[1, 1], x0, "bicubic start $x_0$", *mr_range)
        _objective_panel(axes[1, 2], result.objective)
    if title is None:
        w = result.weights
        title = (f"{result.message}; ratio {result.ratio}, degree {result.link.degree}, "
                 f"tau4 = {w.tau4:.3g}\n{coupling_text(result)}")
    fig.suptitle(title)
    if path is not None:
        fmt = figure_format(path)
        _write_atomic(path, lambda handle: fig.savefig(handle, format=fmt, dpi=110),
                      overwrite=overwrite)
    return fig
