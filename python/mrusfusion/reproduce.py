"""Reproduce the paper's simulated experiments (issue 5; DESIGN.md sections 8 and 9).

:func:`reproduce` simulates observations with the paper's protocol from two ground-truth MR images
(the authors' simulated pelvis ``IRM_GT`` and the package's analytic pelvic phantom) at ratios 4
and 2, runs bicubic interpolation, the MR-only baseline, the US-only baseline and the fusion, and
writes a table of RMSE, PSNR, ISNR and MSSIM (Markdown and CSV), a figure per case laid out like
the paper's Fig. 1, and the ``tau4`` sweep of the paper's Fig. 8. The ``reproduce`` subcommand of
``mrusfusion`` does the same.
"""
from __future__ import annotations

import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import metrics
from ._config import get_num_threads
from ._validation import as_image, check_int
from ._version import __version__
from .fusion import DEFAULT_MAX_ITER, despeckle, fuse, super_resolve
from .operators import bicubic_upsample
from .simulate import simulate
from .sweep import _csv_text, fidelity, sweep, sweep_figure

__all__ = ["reproduce", "Case", "paper_cases", "phantom_regions", "PAPER_SNR_DB",
           "TAU4_FACTORS", "add_parser", "run"]

#: The paper's SNRs in dB (section IV-A), ``ratio -> (MR, US)``.
PAPER_SNR_DB = {4: (23.26, 13.72), 2: (20.73, 13.80)}
#: The Fig. 8 sweep: ``tau4 = factor x`` the automatic value.
TAU4_FACTORS = tuple(10.0 ** k for k in range(-3, 3))
RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
SWEEP_CSV = "tau4_sweep.csv"
SWEEP_FIGURE = "fig8_tau4.png"
COLUMNS = ("dataset", "ratio", "method", "reference", "RMSE", "PSNR", "ISNR", "MSSIM")
# Fixed FFTW plans (no timing-based choice) make the numbers identical from run to run.
_PLANNER = "FFTW_ESTIMATE"
_PLOT_HINT = 'pip install "mrusfusion[plot]"'
_CSV_DIGITS = 6


# --------------------------------------------------------------------------- cases


def phantom_regions(shape: Tuple[int, int]):
    """Regions of :func:`mrusfusion.phantom` for the paper's Fig. 8 measurements.

    Parameters
    ----------
    shape : (int, int)
        Shape of the phantom (and of the fused images).

    Returns
    -------
    lesion : (rows, cols) bool ndarray
        Inside the endometrioma-like lesion, at least two edge widths from its boundary.
    surround : (rows, cols) bool ndarray
        A ring around the lesion (from two edge widths to two edge widths plus its mean
        semi-axis outside the boundary), restricted to the uniform soft-tissue background.
    profile : ((float, float), (float, float))
        A horizontal segment through the lesion's centre crossing its right boundary, from the
        background (half a semi-axis outside) into the lesion (half a semi-axis inside): its
        profile slope is positive, larger for a sharper interface.

    Raises
    ------
    ValueError
        If the phantom is too small for the lesion to have an interior or a surrounding.
    """
    from .data import _BACKGROUND, _LESION, phantom

    n1, n2 = (int(n) for n in shape)
    truth = phantom((n1, n2))
    rows, cols = np.meshgrid(np.arange(n1) + 0.5, np.arange(n2) + 0.5, indexing="ij",
                             sparse=True)
    d = _LESION.signed_distance(rows, cols, (n1, n2))
    width = 1.5 * max(1.0, min(n1, n2) / 256.0)  # the phantom's edge width
    semi_r, semi_c = _LESION.semi_axes[0] * n1, _LESION.semi_axes[1] * n2
    ring = 0.5 * (semi_r + semi_c)
    lesion = d >= 2 * width
    surround = (d <= -2 * width) & (d >= -2 * width - ring) & (np.abs(truth - _BACKGROUND) < 0.01)
    if not lesion.any() or not surround.any():
        raise ValueError(f"the phantom of shape {(n1, n2)} is too small for the lesion regions")
    r = _LESION.center[0] * n1 - 0.5  # pixel centres sit at index + 0.5
    c = _LESION.center[1] * n2 - 0.5
    start = (r, min(c + 1.5 * semi_c, n2 - 1.0))
    end = (r, c + 0.5 * semi_c)
    return lesion, surround, (start, end)


@dataclass(frozen=True, eq=False)
class Case:
    """One simulated experiment: a ground-truth MR image, a ratio and the two SNRs.

    Attributes
    ----------
    dataset : str
        Name in the tables and file names (``"pelvis"``, ``"phantom"``).
    truth : ndarray
        Ground-truth high-resolution MR image (cropped to a multiple of ``ratio``).
    ratio : int
    mr_snr_db, us_snr_db : float
        SNRs of the simulated observations.
    regions : tuple, optional
        ``(region_a, region_b, (start, end))`` for the CNR and profile slope of the ``tau4``
        sweep (see :func:`phantom_regions`).
    tau4_sweep : bool
        Run the paper's Fig. 8 ``tau4`` sweep on this case (needs ``regions``).
    """

    dataset: str
    truth: np.ndarray
    ratio: int
    mr_snr_db: float
    us_snr_db: float
    regions: Optional[tuple] = None
    tau4_sweep: bool = False

    @property
    def name(self) -> str:
        """``<dataset>_r<ratio>``, as in the figure file names."""
        return f"{self.dataset}_r{self.ratio}"

    @classmethod
    def pelvis(cls, ratio: int = 4) -> "Case":
        """The authors' simulated pelvic MR (:func:`mrusfusion.pelvis_mr`), cropped to a multiple
        of 4 and divided by its maximum, with the paper's SNRs for ``ratio``."""
        from .data import pelvis_mr

        truth = pelvis_mr()
        truth = truth[: truth.shape[0] // 4 * 4, : truth.shape[1] // 4 * 4]
        truth = np.ascontiguousarray(truth / truth.max())
        return cls("pelvis", truth, ratio, *_paper_snr(ratio))

    @classmethod
    def phantom(cls, ratio: int = 4, shape: Tuple[int, int] = (256, 256), *,
                tau4_sweep: bool = False) -> "Case":
        """The analytic pelvic phantom (:func:`mrusfusion.phantom`) with the paper's SNRs for
        ``ratio`` and the lesion regions of :func:`phantom_regions`."""
        from .data import phantom

        return cls("phantom", phantom(tuple(shape)), ratio, *_paper_snr(ratio),
                   regions=phantom_regions(shape), tau4_sweep=tau4_sweep)


def _paper_snr(ratio: int) -> Tuple[float, float]:
    if ratio not in PAPER_SNR_DB:
        raise ValueError(f"the paper's protocol has ratios 4 and 2, got {ratio}; build the Case "
                         "with your own SNRs")
    return PAPER_SNR_DB[ratio]


def paper_cases(phantom_shape: Tuple[int, int] = (256, 256)) -> List[Case]:
    """The default experiments: pelvis and phantom, ratios 4 and 2; the ``tau4`` sweep on the
    phantom at ratio 4."""
    return [Case.pelvis(4), Case.pelvis(2), Case.phantom(4, phantom_shape, tau4_sweep=True),
            Case.phantom(2, phantom_shape)]


# --------------------------------------------------------------------------- running


def _log(progress: bool, text: str) -> None:
    if progress:
        print(f"reproduce: {text}", file=sys.stderr, flush=True)


def _check_cases(cases) -> List[Case]:
    cases = list(cases)
    if not cases:
        raise ValueError("`cases` is empty; give at least one Case")
    names = set()
    for c in cases:
        if not isinstance(c, Case):
            raise TypeError(f"`cases` must hold mrusfusion.reproduce.Case objects, got "
                            f"{type(c).__name__}")
        if c.name in names:
            raise ValueError(f"two cases are named {c.name!r}; their files would collide")
        names.add(c.name)
        if c.tau4_sweep and c.regions is None:
            raise ValueError(f"case {c.name!r} asks for the tau4 sweep but has no regions")
    if sum(c.tau4_sweep for c in cases) > 1:
        raise ValueError("at most one case may run the tau4 sweep")
    return cases


def _score_rows(case: Case, domain: str, truth, observation, estimates) -> List[dict]:
    rows = []
    for method, est in estimates:
        rmse, psnr, mssim = fidelity(est, truth)
        rows.append({"dataset": case.dataset, "ratio": case.ratio, "method": method,
                     "reference": f"true {domain}", "RMSE": rmse, "PSNR": psnr,
                     "ISNR": metrics.isnr(est, truth, observation), "MSSIM": mssim})
    return rows


def _run_case(case: Case, *, seed: int, max_iter: int, threads: Optional[int],
              progress: bool, tag: str):
    t0 = time.perf_counter()
    truth = as_image(case.truth, "truth", dtype=np.float64)
    sim = simulate(truth, case.ratio, mr_snr_db=case.mr_snr_db, us_snr_db=case.us_snr_db,
                   seed=seed)
    _log(progress, f"{tag} simulated MR {sim.mr.shape[0]}x{sim.mr.shape[1]} "
                   f"({sim.mr_snr_db:.2f} dB), US {sim.us.shape[0]}x{sim.us.shape[1]} "
                   f"({sim.us_snr_db:.2f} dB)")
    times = {}
    t = time.perf_counter()
    bicubic = bicubic_upsample(sim.mr, case.ratio)
    times["bicubic"] = time.perf_counter() - t
    t = time.perf_counter()
    mr_only = super_resolve(sim.mr, case.ratio, threads=threads)
    times["MR-only"] = time.perf_counter() - t
    t = time.perf_counter()
    us_only = despeckle(sim.us, threads=threads)
    times["US-only"] = time.perf_counter() - t
    _log(progress, f"{tag} baselines done in {times['MR-only'] + times['US-only']:.1f} s; "
                   f"fusing (max_iter {max_iter})")
    t = time.perf_counter()
    res = fuse(sim.mr, sim.us, ratio=case.ratio, max_iter=max_iter, threads=threads,
               planner_effort=_PLANNER)
    times["fusion"] = time.perf_counter() - t
    _log(progress, f"{tag} {res.message} in {times['fusion']:.1f} s")
    rows = _score_rows(case, "MR", sim.mr_true, bicubic,
                       (("bicubic", bicubic), ("MR-only", mr_only), ("fused x", res.x)))
    rows += _score_rows(case, "US", sim.us_true, sim.us,
                        (("observed US", sim.us), ("US-only", us_only), ("fused v", res.v)))
    images = {"true MR": sim.mr_true, "true US": sim.us_true, "observed MR": sim.mr,
              "observed US": sim.us, "MR-only": mr_only, "US-only": us_only, "fused x": res.x,
              "fused v": res.v}
    times["total"] = time.perf_counter() - t0
    return sim, res, rows, images, times


# --------------------------------------------------------------------------- outputs

_FIG1_ORDER = ("true MR", "true US", "observed MR", "observed US", "MR-only", "US-only",
               "fused x", "fused v")
_US_PANELS = ("true US", "observed US", "US-only", "fused v")


def _fig1(case: Case, images: dict, rows: List[dict], path, *, overwrite: bool):
    """The paper's Fig. 1 layout: truths and observations on top, estimates below."""
    from .report import _matplotlib, _write_atomic

    Figure, FigureCanvasAgg = _matplotlib()
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
    _write_atomic(path, lambda h: fig.savefig(h, format="png", dpi=100), overwrite=overwrite)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> List[str]:
    """A Markdown table; the first ``left`` columns (text) align left, the numbers right."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _fmt(value: float, spec: str) -> str:
    return "inf" if math.isinf(value) else format(value, spec)


def _markdown(rows, infos, sweep_info, *, seed, max_iter, threads, total, command) -> str:
    described = {}
    for i in infos:
        if i["dataset"] == "pelvis":
            text = ("`pelvis` = `pelvis_mr()` (the authors' IRM_GT) cropped to a multiple of 4 "
                    "and divided by its maximum")
        elif i["dataset"] == "phantom":
            text = f"`phantom` = `phantom(({i['us_shape'].replace('x', ', ')}))`"
        else:
            text = f"`{i['dataset']}` ({i['us_shape']})"
        described.setdefault(i["dataset"], text)
    truths = "; ".join(described.values())
    L = ["# Reproduction of El Mansouri et al. (IEEE TIP 2020) on simulated data", "",
         f"Made by `{command}` with mrusfusion {__version__}: seed {seed}, max_iter {max_iter}, "
         f"{threads} thread(s), Python {platform.python_version()} on {platform.machine()} "
         f"({os.cpu_count()} CPU(s)).", "",
         "Protocol (DESIGN.md section 8): MR observation = 9x9 Gaussian blur (variance 4), "
         "decimation by the ratio and Gaussian noise; US observation = the authors' degree-3 "
         "polynomial of the true MR and its gradient magnitude plus log-Rayleigh noise; SNR = "
         "10 log10(||clean||^2 / ||noise||^2), met exactly. Ground truths: " + truths + ".", "",
         "Methods: bicubic = aligned cubic interpolation of the MR observation; MR-only = "
         "`super_resolve` (tau by GCV); US-only = `despeckle` (weights from the data); fused "
         "x, v = `fuse` (all weights from the data). Metrics (DESIGN.md section 9) against the "
         "true MR (x-domain) or the true US (v-domain), after dividing estimate and truth by the "
         "truth's maximum: RMSE in units of that maximum, PSNR and MSSIM with data range 1; ISNR "
         "against the bicubic MR (MR domain) or the observed US (US domain), so those rows "
         "read 0.", "", "## Results", ""]
    L += _md_table(["dataset", "ratio", "method", "reference", "RMSE", "PSNR (dB)", "ISNR (dB)",
                    "MSSIM"],
                   [[r["dataset"], str(r["ratio"]), r["method"], r["reference"],
                     _fmt(r["RMSE"], ".4f"), _fmt(r["PSNR"], ".2f"), _fmt(r["ISNR"], ".2f"),
                     _fmt(r["MSSIM"], ".4f")] for r in rows], left=4)
    L += ["", "## Cases", ""]
    L += _md_table(["case", "MR", "US", "SNR MR/US (dB)", "tau1", "tau2", "tau3", "tau4",
                    "gamma", "iterations", "converged", "fusion time (s)", "case time (s)"],
                   [[i["case"], i["mr_shape"], i["us_shape"], i["snr"], *(f"{w:.3g}" for w in
                     i["weights"]), str(i["n_iter"]), "yes" if i["converged"] else "no",
                     f"{i['times']['fusion']:.1f}", f"{i['times']['total']:.1f}"]
                    for i in infos])
    L += ["", "Weights: all automatic (DESIGN.md section 10). Fusion time: `fuse` alone; case "
          "time: simulation, the four methods and the metrics (figures excluded)."]
    if sweep_info is not None:
        res, auto, case_name = sweep_info
        L += ["", f"## tau4 sweep (paper Fig. 8), {case_name}", "",
              f"Automatic tau4 = {auto:.4g}; other weights automatic. CNR (dB, "
              "20 log10 |mu_a - mu_b| / sqrt(var_a + var_b)) between the lesion and the "
              "surrounding soft tissue; profile slope (intensity per pixel) along a segment from "
              "the background into the lesion; PSNR/MSSIM as above. Figure: "
              f"`{SWEEP_FIGURE}`, table: `{SWEEP_CSV}`.", ""]
        cols = [c for c in ("cnr_x_db", "cnr_v_db", "slope_x", "slope_v", "psnr_x", "psnr_v",
                            "mssim_x", "mssim_v") if c in res.table[0]]
        L += _md_table(["tau4", "tau4 / auto", *cols, "iterations", "converged"],
                       [[f"{r['tau4']:.4g}", f"{r['tau4'] / auto:.3g}",
                         *(_fmt(r[c], ".4f" if c.startswith(("slope", "mssim")) else ".2f")
                           for c in cols), str(r["n_iter"]), "yes" if r["converged"] else "no"]
                        for r in res.table])
        L += ["", f"Sweep time: {res.wall_time:.1f} s ({res.max_workers} fusion(s) at once)."]
    L += ["", "## Run time", "",
          f"Total: {total:.1f} s. Per case: " + "; ".join(
              f"{i['case']} {i['times']['total']:.1f} s" for i in infos) + "."]
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- reproduce


def reproduce(out_dir, *, max_iter: int = DEFAULT_MAX_ITER, seed: int = 0, threads: Optional[int] = None,
              overwrite: bool = False, cases: Optional[Sequence[Case]] = None,
              progress: bool = True, _command: Optional[str] = None) -> dict:
    """Run the paper's simulated experiments and write their tables and figures.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder for the outputs (created if needed).
    max_iter : int, default DEFAULT_MAX_ITER (500)
        Iteration cap of each fusion.
    seed : int, default 0
        Seed of the simulated noise (the same for every case). Same seed, same numbers.
    threads : int, optional
        Threads of each method (default: :func:`mrusfusion.get_num_threads`); the ``tau4``
        sweep runs that many fusions at once, one thread each.
    overwrite : bool, default False
        Replace existing outputs; without it any existing output is refused before computing.
    cases : sequence of Case, optional
        The experiments (default :func:`paper_cases`: pelvis and phantom at ratios 4 and 2, the
        ``tau4`` sweep on the phantom at ratio 4).
    progress : bool, default True
        Progress lines on stderr.

    Returns
    -------
    dict
        ``rows`` (the results table, one dict per dataset, ratio and method), ``cases`` (per
        case: shapes, SNRs, weights, stop message, times), ``sweep`` (the
        :class:`~mrusfusion.sweep.SweepResult` or ``None``), ``tau4_auto``, ``files`` (paths
        written), ``seconds`` (total wall time), ``figures`` (whether matplotlib drew them).

    Raises
    ------
    FileExistsError
        If an output exists and ``overwrite`` is false.
    NotADirectoryError
        If ``out_dir`` is an existing file.
    ValueError, TypeError
        On invalid arguments or cases.

    Notes
    -----
    Files: ``results.md`` (the table, the weights and times of each case, the sweep, the run
    time), ``results.csv`` (columns dataset, ratio, method, reference, RMSE, PSNR, ISNR, MSSIM;
    6 significant digits), ``fig1_<dataset>_r<ratio>.png`` (true MR, true US, observed MR,
    observed US, MR-only, US-only, fused x, fused v), ``tau4_sweep.csv`` and ``fig8_tau4.png``
    (``tau4`` = :data:`TAU4_FACTORS` times the automatic value). Figures need matplotlib
    (``pip install "mrusfusion[plot]"``); without it the tables are still written. Metrics:
    DESIGN.md section 9, after dividing estimate and truth by the truth's maximum (data range
    1). FFTW plans are made with ``FFTW_ESTIMATE`` and the kernels reduce in a fixed order, so
    the CSV files are identical from run to run with the same seed.

    References
    ----------
    .. [1] O. El Mansouri et al., "Fusion of Magnetic Resonance and Ultrasound Images for
       Endometriosis Detection", IEEE Trans. Image Process. 29 (2020) 5324-5335, section IV-A,
       Figs. 1 and 8, Table I.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = reproduce(folder, cases=[Case.phantom(2, (32, 32))], max_iter=2,
    ...                     progress=False)
    >>> [r["method"] for r in out["rows"]][:3]
    ['bicubic', 'MR-only', 'fused x']
    """
    from .report import _write_atomic

    t_start = time.perf_counter()
    max_iter = check_int(max_iter, "max_iter", low=0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"`seed` must be an integer, got {seed!r}")
    nt = get_num_threads(threads)
    if _command is None:
        _command = ("mrusfusion reproduce --out DIR"
                    + ("" if max_iter == DEFAULT_MAX_ITER else f" --max-iter {max_iter}")
                    + ("" if seed == 0 else f" --seed {seed}")) if cases is None else (
            "mrusfusion.reproduce.reproduce(..., cases=[...])")
    cases = _check_cases(paper_cases() if cases is None else cases)
    try:
        from .report import _matplotlib

        _matplotlib()
        plot = True
    except ImportError:
        plot = False

    out = Path(os.fspath(out_dir)).expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output folder {out} exists and is not a folder")
    sweep_case = next((c for c in cases if c.tau4_sweep), None)
    names = [RESULTS_MD, RESULTS_CSV]
    if plot:
        names += [f"fig1_{c.name}.png" for c in cases]
    if sweep_case is not None:
        names += [SWEEP_CSV] + ([SWEEP_FIGURE] if plot else [])
    if not overwrite:
        existing = [n for n in names if (out / n).exists()]
        if existing:
            raise FileExistsError(f"{out / existing[0]} already exists"
                                  + (f" (and {len(existing) - 1} more output(s))"
                                     if len(existing) > 1 else "")
                                  + "; pass overwrite=True (--overwrite) to replace them")
    out.mkdir(parents=True, exist_ok=True)
    if not plot:
        print(f"reproduce: matplotlib is not installed, writing the tables only; "
              f"{_PLOT_HINT} gives figures", file=sys.stderr, flush=True)

    rows, infos, files = [], [], []
    sweep_res, tau4_auto, sweep_info = None, None, None
    for k, case in enumerate(cases):
        tag = f"[{k + 1}/{len(cases)}] {case.dataset}, ratio {case.ratio}:"
        sim, res, case_rows, images, times = _run_case(case, seed=seed, max_iter=max_iter,
                                                       threads=nt, progress=progress, tag=tag)
        rows += case_rows
        w = res.weights
        infos.append({"case": case.name, "dataset": case.dataset, "ratio": case.ratio,
                      "mr_shape": f"{sim.mr.shape[0]}x{sim.mr.shape[1]}",
                      "us_shape": f"{sim.us.shape[0]}x{sim.us.shape[1]}",
                      "snr": f"{sim.mr_snr_db:.2f} / {sim.us_snr_db:.2f}",
                      "weights": (w.tau1, w.tau2, w.tau3, w.tau4, w.gamma),
                      "n_iter": res.n_iter, "converged": res.converged,
                      "message": res.message, "times": times})
        if plot:
            path = out / f"fig1_{case.name}.png"
            _fig1(case, images, case_rows, path, overwrite=overwrite)
            files.append(path)
        if case is sweep_case:
            tau4_auto = res.tau4
            grid = [tau4_auto * f for f in TAU4_FACTORS]
            region_a, region_b, prof = case.regions
            _log(progress, f"{tag} tau4 sweep over {len(grid)} values from {grid[0]:.3g} to "
                           f"{grid[-1]:.3g} (automatic {tau4_auto:.3g})")
            sweep_res = sweep(sim.mr, sim.us, tau4=grid, region_a=region_a, region_b=region_b,
                              profile=prof, mr_true=sim.mr_true, us_true=sim.us_true,
                              max_workers=nt, progress=progress, ratio=case.ratio,
                              max_iter=max_iter, planner_effort=_PLANNER)
            files.append(sweep_res.to_csv(out / SWEEP_CSV, digits=_CSV_DIGITS,
                                          overwrite=overwrite))
            if plot:
                sweep_figure(sweep_res, out / SWEEP_FIGURE, mark={"tau4": tau4_auto},
                             overwrite=overwrite,
                             title=f"tau4 sweep (paper Fig. 8), {case.dataset} ratio "
                                   f"{case.ratio}: lesion vs surroundings; dotted: automatic "
                                   f"tau4 {tau4_auto:.3g}")
                files.append(out / SWEEP_FIGURE)
            sweep_info = (sweep_res, tau4_auto, case.name)
            _log(progress, f"{tag} {sweep_res.message}")

    csv_rows = [{c: r[c] for c in COLUMNS} for r in rows]
    csv_path = _write_atomic(out / RESULTS_CSV,
                             lambda h: h.write(_csv_text(csv_rows, digits=_CSV_DIGITS)
                                               .encode("utf-8")), overwrite=overwrite)
    total = time.perf_counter() - t_start
    md = _markdown(rows, infos, sweep_info, seed=seed, max_iter=max_iter, threads=nt,
                   total=total, command=_command)
    md_path = _write_atomic(out / RESULTS_MD, lambda h: h.write(md.encode("utf-8")),
                            overwrite=overwrite)
    files = [md_path, csv_path] + files
    _log(progress, f"done in {total:.1f} s; wrote {len(files)} file(s) to {out}")
    return {"rows": rows, "cases": infos, "sweep": sweep_res, "tau4_auto": tau4_auto,
            "files": files, "seconds": total, "figures": plot, "markdown": md}


# --------------------------------------------------------------------------- command

_QUICK_SHAPE = (64, 64)
_QUICK_MAX_ITER = 20


def run(args) -> int:
    """Handler of ``mrusfusion reproduce``."""
    from .cli import _say

    quiet = getattr(args, "quiet", False)
    max_iter = args.max_iter
    if args.quick:
        cases = [Case.phantom(4, _QUICK_SHAPE, tau4_sweep=True), Case.phantom(2, _QUICK_SHAPE)]
        max_iter = _QUICK_MAX_ITER if max_iter is None else max_iter
    else:
        cases = None
        max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    command = " ".join(["mrusfusion reproduce --out DIR"]
                       + (["--quick"] if args.quick else [])
                       + ([f"--max-iter {args.max_iter}"] if args.max_iter is not None else [])
                       + ([f"--seed {args.seed}"] if args.seed != 0 else []))
    result = reproduce(args.out, max_iter=max_iter, seed=args.seed, threads=args.threads,
                       overwrite=args.overwrite, cases=cases, progress=not quiet,
                       _command=command)
    md = result["markdown"]
    table = md[md.index("## Results"):md.index("## Cases")].strip()
    _say(args, table, "", f"total run time {result['seconds']:.1f} s",
         *(f"wrote {p}" for p in result["files"]))
    return 0


def add_parser(subparsers):
    """Register ``mrusfusion reproduce`` (the hook of :data:`mrusfusion.cli.EXTERNAL_COMMANDS`)."""
    from .cli import _nonnegative_int, _positive_int, command_parser

    p = command_parser(
        subparsers, "reproduce", summary="reproduce the paper's simulated experiments",
        description=(
            "Reproduce the simulated experiments of El Mansouri et al. (IEEE TIP 2020): "
            "simulate MR/US pairs with the paper's protocol (ratio 4 at SNRs 23.26/13.72 dB, "
            "ratio 2 at 20.73/13.80 dB) from two ground-truth MR images (the authors' simulated "
            "pelvis and the package's analytic phantom), run bicubic interpolation, the MR-only "
            "and US-only baselines and the fusion, and write to OUT_DIR (created if needed):\n\n"
            f"  {RESULTS_MD}          the table, the weights and times of each case, run time\n"
            f"  {RESULTS_CSV}         dataset, ratio, method, reference, RMSE, PSNR, ISNR, "
            "MSSIM\n"
            "  fig1_<case>.png     per case, laid out like the paper's Fig. 1\n"
            f"  {SWEEP_CSV}      the tau4 sweep of the paper's Fig. 8 (phantom, ratio 4):\n"
            "                      lesion CNR and interface profile slope against tau4\n"
            f"  {SWEEP_FIGURE}       its curves and thumbnails\n\n"
            f"Figures need matplotlib ({_PLOT_HINT}); without it the tables are still written. "
            "Same seed, same numbers. The default run takes a few minutes on 2 cores; --quick "
            "runs a 64x64 phantom only, as a check. Existing files are not replaced without "
            "--overwrite."),
        example=("mrusfusion reproduce --out paper-results\n"
                 "mrusfusion reproduce --out check --quick --overwrite"))
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for the outputs")
    p.add_argument("--max-iter", type=_nonnegative_int, metavar="N",
                   help=f"iteration cap of each fusion (default: {DEFAULT_MAX_ITER}; {_QUICK_MAX_ITER} with "
                        "--quick)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="threads (default: MRUSFUSION_NUM_THREADS or all cores)")
    p.add_argument("--quick", action="store_true",
                   help="a 64x64 phantom at ratios 4 and 2 only (seconds; a smoke test)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines, no summary")
    p.set_defaults(func=run)
    return p
