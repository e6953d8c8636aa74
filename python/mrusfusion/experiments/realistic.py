"""Fusion on realistic simulated pairs (issue 14; DESIGN.md sections 13 and 14).

:func:`evaluate_realistic` simulates a B-mode pair with
:func:`mrusfusion.simulate.simulate_bmode` from a ground truth (the authors' pelvic MR or the
analytic phantom) at a ratio and an MR SNR (:func:`realistic_cases`: 2 x 2 x 2 cases), fuses it
and measures x against ``mr_true`` and the best-tuned MR-only baseline (``super_resolve`` over
:data:`SR_TAUS`), v against ``us_true`` and the best-tuned US-only one (``despeckle`` over
:data:`DS_RATIOS` and automatic), tissue CNR, thin-layer contrast and the slope entering the thin
layers along the beam. The targets of issue 14 are stated in these measures. ``mrusfusion
reproduce --realistic`` and ``bench/realistic_eval.py`` run them.
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union, cast

import numpy as np

from .. import metrics
from ..batch.engine import Outcome, run_tasks
from .._validation import check_int, check_scalar
from .._version import __version__
from ..baselines import despeckle, super_resolve
from ..data import pelvis_mr
from ..data import phantom as phantom_image
from ..fusion import fuse
from ..simulate import RealisticSimulation, simulate_bmode, thin_contrast
from .measures import entry_slope, relative, scaled_psnr, tissue_regions
from .tables import csv_text, jsonable, markdown_table, write_text

__all__ = ["RealisticCase", "realistic_cases", "QUICK_CASES", "SR_TAUS", "DS_RATIOS",
           "ground_truth", "scaled_psnr", "tissue_regions", "entry_slope", "relative",
           "best_mr_only", "best_us_only", "evaluate_realistic", "run_realistic",
           "TABLE_COLUMNS", "CSV_COLUMNS", "realistic_table", "realistic_csv",
           "realistic_markdown", "write_realistic", "REALISTIC_MD", "REALISTIC_CSV"]

#: ``tau`` of the MR-only baseline and ``tau3 / tau2`` of the US-only one.
SR_TAUS = np.logspace(-4, 1, 13)
DS_RATIOS = np.logspace(-3, 2, 15)
TRUTHS = ("pelvis", "phantom")
REALISTIC_MD = "realistic.md"
REALISTIC_CSV = "realistic.csv"
_CSV_DIGITS = 6


@dataclass(frozen=True)
class RealisticCase:
    """One realistic experiment: a ground truth, a ratio, an MR SNR and optionally a size.

    ``size`` crops the pelvis (centre) or sets the phantom's side; ``None``: full size (pelvis
    300x400, phantom 256x256).
    """

    truth: str
    ratio: int
    mr_snr_db: float
    size: Optional[int] = None

    def __post_init__(self) -> None:
        if self.truth not in TRUTHS:
            raise ValueError(f"`truth` must be 'pelvis' or 'phantom', got {self.truth!r}")
        object.__setattr__(self, "ratio", check_int(self.ratio, "ratio", low=1))
        object.__setattr__(self, "mr_snr_db", check_scalar(self.mr_snr_db, "mr_snr_db"))
        if self.size is not None:
            object.__setattr__(self, "size", check_int(self.size, "size", low=16))

    @property
    def label(self) -> str:
        """``"phantom r2 25 dB"``: the row name of the tables."""
        return f"{self.truth} r{self.ratio} {self.mr_snr_db:g} dB"


def realistic_cases() -> List[RealisticCase]:
    """The 8 cases of issue 14: pelvis and phantom, ratios 2 and 4, MR SNR 35 and 25 dB.

    Examples
    --------
    >>> [c.label for c in realistic_cases()][:3]
    ['pelvis r2 35 dB', 'pelvis r2 25 dB', 'pelvis r4 35 dB']
    """
    return [RealisticCase(t, r, snr) for t in TRUTHS for r in (2, 4) for snr in (35.0, 25.0)]


#: The smoke run of ``bench/realistic_eval.py --quick``: one case per truth.
QUICK_CASES = (RealisticCase("pelvis", 4, 35.0), RealisticCase("phantom", 2, 25.0))


# --------------------------------------------------------------------------- truths, baselines


def ground_truth(name: str, size: Optional[int] = None) -> np.ndarray:
    """The high-resolution MR truth in [0, 1]: ``"pelvis"`` (:func:`mrusfusion.pelvis_mr`
    divided by its maximum) or ``"phantom"`` (:func:`mrusfusion.phantom`, 256x256); ``size``
    crops the pelvis (centre) or sets the phantom's side."""
    if name == "pelvis":
        x = pelvis_mr()
        x = np.clip(x / x.max(), 0.0, 1.0)
        if size is not None:
            r0, c0 = max((x.shape[0] - size) // 2, 0), max((x.shape[1] - size) // 2, 0)
            x = x[r0: r0 + size, c0: c0 + size]
        return np.ascontiguousarray(x)
    if name == "phantom":
        return phantom_image((size or 256, size or 256))
    raise ValueError(f"unknown ground truth {name!r}; use 'pelvis' or 'phantom'")


def best_mr_only(sim: RealisticSimulation, taus: Sequence[float] = tuple(SR_TAUS), *,
                 threads: Optional[int] = None) -> Tuple[float, float, List[float]]:
    """The best-tuned MR-only baseline: ``super_resolve`` at each ``tau``, PSNR vs ``mr_true``.

    Returns
    -------
    best, tau : float
        The largest PSNR (dB) and the ``tau`` that gives it.
    psnrs : list of float
        The PSNR at each ``tau``.
    """
    ratio = cast(int, sim.ratio)  # the realistic cases are 2-D
    psnrs = [scaled_psnr(super_resolve(sim.mr, ratio, tau=float(t), psf=sim.psf,
                                       threads=threads), sim.mr_true) for t in taus]
    k = int(np.argmax(psnrs))
    return psnrs[k], float(taus[k]), psnrs


def best_us_only(us, us_true, ratios: Sequence[float] = tuple(DS_RATIOS), *,
                 threads: Optional[int] = None) -> Tuple[float, Union[float, str], float,
                                                         List[float]]:
    """The best-tuned US-only baseline: ``despeckle`` with ``tau2 = 1``, ``tau3`` = each of
    ``ratios``, and with its automatic weights; PSNR vs ``us_true``.

    Returns
    -------
    best, ratio, auto : float, float or ``"auto"``, float
        The largest PSNR (dB, the automatic weights included), the ``tau3 / tau2`` that gives it
        (``"auto"`` if the automatic weights do), the PSNR of the automatic weights.
    psnrs : list of float
        The PSNR at each ratio.
    """
    psnrs = [scaled_psnr(despeckle(us, tau2=1.0, tau3=float(r), threads=threads), us_true)
             for r in ratios]
    auto = scaled_psnr(despeckle(us, threads=threads), us_true)
    k = int(np.argmax(psnrs))
    if auto >= psnrs[k]:
        return auto, "auto", auto, psnrs
    return psnrs[k], float(ratios[k]), auto, psnrs


def _as_case(case) -> RealisticCase:
    if isinstance(case, RealisticCase):
        return case
    if isinstance(case, tuple) and len(case) in (3, 4):
        return RealisticCase(*case)
    raise TypeError(f"`case` must be a RealisticCase or (truth, ratio, mr_snr_db), got {case!r}")


def evaluate_realistic(case, *, fuse_kwargs: Optional[dict] = None, seed: int = 0,
                       size: Optional[int] = None, threads: Optional[int] = None) -> dict:
    """Simulate one realistic case, fuse it, run the baseline grids and measure everything.

    Parameters
    ----------
    case : RealisticCase or (str, int, float)
        Ground truth, ratio and MR SNR (dB).
    fuse_kwargs : dict, optional
        Options of :func:`mrusfusion.fuse` (``ratio`` and ``psf`` come from the simulation).
    seed : int, default 0
        Seed of :func:`~mrusfusion.simulate.simulate_bmode`.
    size : int, optional
        Replaces ``case.size`` (crop of the pelvis, side of the phantom).
    threads : int, optional
        Threads of the baselines and, unless ``fuse_kwargs`` sets them, of the fusion.

    Returns
    -------
    dict
        ``case`` (label), ``truth``, ``ratio``, ``mr_snr_db``, ``shape``, ``seed``; ``x_psnr``,
        ``mr_only_best``, ``mr_only_tau``, ``x_gain``; ``v_psnr``, ``us_only_best``,
        ``us_only_ratio``, ``us_only_auto``, ``v_gain``; ``cnr_us`` and the CNR ratios
        ``cnr_v_ratio``, ``cnr_x_ratio``, ``cnr_us_true_ratio``, ``cnr_mr_true_ratio`` (over the
        observed US's); ``thin_pixels``, ``thin_x_ratio`` (over ``mr_true``'s), ``thin_v_ratio``,
        ``slope_v_ratio`` (over the observed US's), ``slope_x_ratio`` (over ``mr_true``'s);
        ``grain_area``, ``speckle_scale``, ``n_iter``, ``converged``, ``message``, ``seconds``,
        ``weights`` and ``simulation`` (plain dicts). Ratios are NaN without thin layers.

    Raises
    ------
    TypeError, ValueError
        On an invalid case, seed, size or option.

    Notes
    -----
    PSNR: :func:`~.measures.scaled_psnr`. CNR: :func:`mrusfusion.metrics.cnr` between the two
    largest tissue classes (:func:`~.measures.tissue_regions`). Thin contrast:
    :func:`mrusfusion.simulate.thin_contrast`. Entry slope: :func:`~.measures.entry_slope`. A
    gain is the fused PSNR minus the best baseline's (:func:`best_mr_only`,
    :func:`best_us_only`).
    """
    c = _as_case(case)
    if fuse_kwargs is not None and not isinstance(fuse_kwargs, dict):
        raise TypeError(f"`fuse_kwargs` must be a dict, got {type(fuse_kwargs).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"`seed` must be an integer, got {seed!r}")
    size = c.size if size is None else check_int(size, "size", low=16)
    sim = simulate_bmode(ground_truth(c.truth, size), c.ratio, mr_snr_db=c.mr_snr_db, seed=seed)
    kw = {"ratio": c.ratio, "psf": sim.psf, **(fuse_kwargs or {})}
    if threads is not None:
        kw.setdefault("threads", threads)
    t0 = time.perf_counter()
    res = fuse(sim.mr, sim.us, **kw)
    seconds = time.perf_counter() - t0
    x, v = np.asarray(res.x), np.asarray(res.v)
    mr_best, mr_tau, _ = best_mr_only(sim, threads=threads)
    us_best, us_ratio, us_auto, _ = best_us_only(sim.us, sim.us_true, threads=threads)

    region_a, region_b = tissue_regions(sim)
    cnr_us = metrics.cnr(sim.us, region_a, region_b)
    thin = sim.thin_mask
    nan = float("nan")

    def cnr_ratio(img) -> float:
        return relative(metrics.cnr(img, region_a, region_b), cnr_us)

    def thin_ratio(img, ref) -> float:
        return relative(thin_contrast(img, thin), thin_contrast(ref, thin)) if thin.any() else nan

    def slope_ratio(img, ref) -> float:
        return relative(entry_slope(img, thin), entry_slope(ref, thin)) if thin.any() else nan

    rec = dict(
        case=c.label, truth=c.truth, ratio=c.ratio, mr_snr_db=c.mr_snr_db,
        shape=list(sim.us.shape), seed=int(seed), grain_area=float(sim.grain_area),
        speckle_scale=float(sim.speckle_scale),
        x_psnr=scaled_psnr(x, sim.mr_true), mr_only_best=mr_best, mr_only_tau=mr_tau,
        v_psnr=scaled_psnr(v, sim.us_true), us_only_best=us_best, us_only_ratio=us_ratio,
        us_only_auto=us_auto, cnr_us=cnr_us, cnr_v_ratio=cnr_ratio(v), cnr_x_ratio=cnr_ratio(x),
        cnr_us_true_ratio=cnr_ratio(sim.us_true), cnr_mr_true_ratio=cnr_ratio(sim.mr_true),
        thin_pixels=int(thin.sum()), thin_x_ratio=thin_ratio(x, sim.mr_true),
        thin_v_ratio=thin_ratio(v, sim.us), slope_v_ratio=slope_ratio(v, sim.us),
        slope_x_ratio=slope_ratio(x, sim.mr_true),
        n_iter=int(res.n_iter), converged=bool(getattr(res, "converged", False)),
        message=str(getattr(res, "message", "")), seconds=seconds,
        weights=jsonable(getattr(res, "weights", None)), simulation=jsonable(sim.params))
    rec["x_gain"] = rec["x_psnr"] - rec["mr_only_best"]
    rec["v_gain"] = rec["v_psnr"] - rec["us_only_best"]
    return rec


def run_realistic(cases: Sequence, *, fuse_kwargs: Optional[dict] = None, seed: int = 0,
                  size: Optional[int] = None, threads: Optional[int] = None,
                  keep_going: bool = True,
                  log: Optional[Callable[[str], None]] = None) -> List[dict]:
    """:func:`evaluate_realistic` on each case; with ``keep_going`` a failing case becomes a
    record ``{"case": label, "error": "Type: message"}`` instead of an exception. ``log``
    receives one line per case."""
    cs = [_as_case(item) for item in cases]
    records: List[dict] = [{} for _ in cs]

    def one(c: RealisticCase) -> dict:
        return evaluate_realistic(c, fuse_kwargs=fuse_kwargs, seed=seed, size=size,
                                  threads=threads)

    def on_done(o: Outcome) -> None:
        c = cs[o.index]
        if o.ok:
            rec = o.value
        elif keep_going:  # keep the other cases; the caller reports it
            rec = {"case": c.label, "error": o.error}
        else:
            raise o.exception if o.exception is not None else RuntimeError(o.error)
        if log is not None:
            log(f"[{o.index + 1}/{len(cs)}] {rec['case']}: {o.seconds:.1f} s"
                + (f" ({rec['error']})" if "error" in rec else f", {rec['message']}"))
        records[o.index] = rec

    # One case at a time, each fusion with all its threads: the grid runs on the one engine.
    run_tasks(one, cs, backend="threads", workers=1, on_done=on_done)
    return records


# --------------------------------------------------------------------------- output


#: The table: header, record key and format of each column after ``case``.
_TABLE = (("x PSNR", "x_psnr", ".2f"), ("MR-only best", "mr_only_best", ".2f"),
          ("gain x", "x_gain", "+.2f"), ("v PSNR", "v_psnr", ".2f"),
          ("US-only best", "us_only_best", ".2f"), ("gain v", "v_gain", "+.2f"),
          ("thin x/true", "thin_x_ratio", ".2f"), ("CNR v/US", "cnr_v_ratio", ".2f"),
          ("CNR x/US", "cnr_x_ratio", ".2f"), ("CNR truth/US", "cnr_us_true_ratio", ".2f"),
          ("slope v/US", "slope_v_ratio", "+.2f"), ("iters", "n_iter", "d"))
TABLE_COLUMNS = ("case",) + tuple(h for h, _, _ in _TABLE)
#: The CSV's columns (keys of :func:`evaluate_realistic`'s records; ``shape`` as ``"n1xn2"``).
CSV_COLUMNS = ("case", "truth", "ratio", "mr_snr_db", "shape", "x_psnr", "mr_only_best",
               "mr_only_tau", "x_gain", "v_psnr", "us_only_best", "us_only_ratio",
               "us_only_auto", "v_gain", "thin_x_ratio", "thin_v_ratio", "cnr_us", "cnr_v_ratio",
               "cnr_x_ratio", "cnr_us_true_ratio", "cnr_mr_true_ratio", "slope_v_ratio",
               "slope_x_ratio", "thin_pixels", "speckle_scale", "grain_area", "n_iter",
               "converged")


def _cell(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def realistic_table(records: Sequence[dict]) -> str:
    """The Markdown table, one row per case (columns :data:`TABLE_COLUMNS`)."""
    rows = []
    for r in records:
        if "error" in r:
            rows.append([r["case"], f"error: {r['error']}"] + [""] * (len(TABLE_COLUMNS) - 2))
        else:
            rows.append([r["case"]] + [_cell(r[k], spec) for _, k, spec in _TABLE])
    return "\n".join(markdown_table(TABLE_COLUMNS, rows))


def realistic_csv(records: Sequence[dict]) -> str:
    """CSV of the records (columns :data:`CSV_COLUMNS`, 6 significant digits; a failed case
    has ``nan`` in every measure)."""
    rows = []
    for r in records:
        row: Dict[str, object] = {k: r.get(k, float("nan")) for k in CSV_COLUMNS}
        if isinstance(row["shape"], (list, tuple)):
            row["shape"] = "x".join(str(n) for n in row["shape"])
        rows.append(row)
    return csv_text(rows, digits=_CSV_DIGITS)


def realistic_markdown(records: Sequence[dict], *, command: str, seed: int,
                       fuse_kwargs: Optional[dict] = None, total: Optional[float] = None) -> str:
    """The document ``realistic.md``: how it was made, what is measured, the table, times."""
    shapes: Dict[str, str] = {}
    for r in records:
        if "shape" in r:
            shapes.setdefault(r["truth"], "x".join(str(n) for n in r["shape"]))
    sizes = ", ".join(f"{t} {shape}" for t, shape in shapes.items())
    L = ["# Fusion on realistic simulated pairs (issue 14)", "",
         f"Made by `{command}` with mrusfusion {__version__}: seed {seed}, fuse options "
         f"{fuse_kwargs or 'defaults'}, Python {platform.python_version()} on "
         f"{platform.machine()} ({os.cpu_count()} CPU(s)).", "",
         "Simulation (DESIGN.md section 14): `simulate_bmode` with its defaults on `pelvis` "
         "(`pelvis_mr()` divided by its maximum, centre crop if smaller) and `phantom` "
         f"(`phantom((n, n))`), US sizes {sizes or 'n/a'}: "
         "correlated speckle from a PSF acting on random scatterers, a non-polynomial "
         "echogenicity of tissue classes, specular interfaces along the beam and thin echogenic "
         "layers that the MR observation cannot see; MR = 9x9 Gaussian blur, decimation and "
         "noise at the stated SNR.", "",
         "Measures: PSNR (dB) of x against the true MR and of v against the speckle-free US, "
         "after dividing both by the truth's maximum; gain x = x PSNR minus the best "
         f"`super_resolve` over {len(SR_TAUS)} tau from {SR_TAUS[0]:g} to {SR_TAUS[-1]:g}; gain "
         f"v = v PSNR minus the best `despeckle` over {len(DS_RATIOS)} tau3/tau2 from "
         f"{DS_RATIOS[0]:g} to {DS_RATIOS[-1]:g} and its automatic weights; thin x/true = "
         "contrast of the thin layers in x over that in the true MR (mean inside minus mean of "
         "a 3-px band, over the band's standard deviation); CNR between the two largest tissue "
         "classes (eroded by 5 px, away from the thin layers) over the observed US's (CNR "
         "truth: the speckle-free US's); slope v/US = mean slope entering the thin layers along "
         "the beam over the observed US's (positive: same sign, 1: as steep).", "",
         "Targets (issue 14): gain x >= 1 dB, thin x/true >= 0.5, gain v >= 1.5 dB, CNR v/US "
         ">= 4.", "", "## Results", "", realistic_table(records), "", "## Run time", "",
         "Per case (fusion alone): " + "; ".join(
             f"{r['case']} {r['seconds']:.1f} s" for r in records if "seconds" in r) + "."]
    if total is not None:
        L[-1] += f" Total with the baselines: {total:.1f} s."
    return "\n".join(L) + "\n"


def write_realistic(out_dir, records: Sequence[dict], *, command: str, seed: int,
                    fuse_kwargs: Optional[dict] = None, total: Optional[float] = None,
                    overwrite: bool = False) -> Tuple[Path, Path]:
    """Write ``realistic.md`` and ``realistic.csv`` into ``out_dir`` atomically (an existing
    file is kept unless ``overwrite``); returns their paths."""
    out = Path(os.fspath(out_dir))
    md = write_text(out / REALISTIC_MD, realistic_markdown(
        records, command=command, seed=seed, fuse_kwargs=fuse_kwargs, total=total),
        overwrite=overwrite)
    csv = write_text(out / REALISTIC_CSV, realistic_csv(records), overwrite=overwrite)
    return md, csv
