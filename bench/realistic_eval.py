"""Fusion on realistic simulated pairs (issue 14; DESIGN.md sections 13 and 14).

For two ground truths (the authors' pelvic MR and the analytic phantom), ratios 2 and 4 and MR
SNR 35 and 25 dB, simulates a B-mode pair with :func:`mrusfusion.simulate_bmode` (fixed seed)
and measures the fusion against the truths and against the best-tuned single-modality
baselines:

- x: PSNR against ``mr_true`` (both divided by the truth's maximum), the best PSNR of
  ``super_resolve`` over a grid of ``tau``, the contrast of the thin layers relative to
  ``mr_true``'s, tissue CNR relative to the observed US's;
- v: PSNR against ``us_true``, the best of ``despeckle`` over a grid of ``tau3 / tau2`` and its
  automatic setting, tissue CNR and thin-layer contrast relative to the observed US's, and the
  mean slope entering the thin layers along the beam relative to the observed US's (positive:
  same sign; 1: as steep);
- the weights, iterations and seconds of ``fuse``.

Only the public API is used (``fuse``, ``super_resolve``, ``despeckle``, ``metrics``,
``simulate``), so the script follows the library as it changes. Options it does not know are
passed to ``fuse``::

    python bench/realistic_eval.py [--quick] [--out results.json] [--degree 1] [--tau4 1e-3]

Values are read as Python literals (``--degree None``), else kept as strings.
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

import mrusfusion as mf
from mrusfusion import metrics
from mrusfusion.simulate import simulate_bmode, thin_contrast

#: ``tau`` of the MR-only baseline and ``tau3 / tau2`` of the US-only one.
SR_TAUS = np.logspace(-4, 1, 13)
DS_RATIOS = np.logspace(-3, 2, 15)
SEED = 0
#: name, ratio, MR SNR (dB); the quick run keeps one case per truth.
CASES = [(t, r, snr) for t in ("pelvis", "phantom") for r in (2, 4) for snr in (35.0, 25.0)]
QUICK_CASES = [("pelvis", 4, 35.0), ("phantom", 2, 25.0)]


# --------------------------------------------------------------------------- measures


def ground_truth(name: str, size: Optional[int] = None) -> np.ndarray:
    """The high-resolution MR truth in [0, 1]: ``"pelvis"`` (:func:`mrusfusion.pelvis_mr`
    divided by its maximum) or ``"phantom"`` (:func:`mrusfusion.phantom`, 256x256); ``size``
    crops the pelvis (centre) or sets the phantom's side."""
    if name == "pelvis":
        x = mf.pelvis_mr()
        x = np.clip(x / x.max(), 0.0, 1.0)
        if size is not None:
            r0, c0 = (x.shape[0] - size) // 2, (x.shape[1] - size) // 2
            x = x[max(r0, 0): max(r0, 0) + size, max(c0, 0): max(c0, 0) + size]
        return np.ascontiguousarray(x)
    if name == "phantom":
        return mf.phantom((size or 256, size or 256))
    raise ValueError(f"unknown ground truth {name!r}; use 'pelvis' or 'phantom'")


def scaled_psnr(estimate: np.ndarray, truth: np.ndarray) -> float:
    """PSNR after dividing both images by the truth's maximum (as ``reproduce`` does)."""
    peak = float(np.max(truth))
    return metrics.psnr(np.asarray(estimate) / peak, truth / peak, data_range=1.0)


def tissue_regions(sim, erode: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """The two largest tissue classes, eroded by ``erode`` px and kept away from the thin
    layers, so that a CNR measures tissue contrast rather than edges."""
    away = ~ndimage.binary_dilation(sim.thin_mask, iterations=erode)
    masks = [ndimage.binary_erosion(sim.labels == c, iterations=erode) & away
             for c in range(int(sim.labels.max()) + 1)]
    a, b = sorted(masks, key=lambda m: -int(m.sum()))[:2]
    return a, b


def entry_slope(image: np.ndarray, mask: np.ndarray, depth: int = 3,
                beam: Tuple[int, int] = (1, 0)) -> float:
    """Least-squares slope (per px) of the mean profile entering the thin layers along the
    beam, from ``depth`` px before each entry pixel to the entry pixel itself (the slope of
    :func:`mrusfusion.metrics.profile_slope`, on the profile averaged over the entries)."""
    before = np.roll(mask, beam, axis=(0, 1))
    entry = mask & ~before
    rows, cols = np.nonzero(entry)
    offsets = np.arange(-depth, 1)
    r = (rows[:, None] + offsets[None, :] * beam[0]) % mask.shape[0]
    c = (cols[:, None] + offsets[None, :] * beam[1]) % mask.shape[1]
    profile = np.asarray(image, dtype=np.float64)[r, c].mean(axis=0)
    d = offsets - offsets.mean()
    return float(np.dot(d, profile - profile.mean()) / np.dot(d, d))


def _ratio(a: float, b: float) -> float:
    return a / b if b != 0 and math.isfinite(b) else float("nan")


def evaluate_case(truth_name: str, ratio: int, mr_snr_db: float, *,
                  fuse_kwargs: Optional[dict] = None, size: Optional[int] = None,
                  seed: int = SEED) -> dict:
    """Simulate one case, fuse it, run the baseline grids and measure everything."""
    sim = simulate_bmode(ground_truth(truth_name, size), ratio, mr_snr_db=mr_snr_db, seed=seed)
    kw = {"ratio": ratio, "psf": sim.psf, **(fuse_kwargs or {})}
    t0 = time.perf_counter()
    res = mf.fuse(sim.mr, sim.us, **kw)
    seconds = time.perf_counter() - t0
    x, v = np.asarray(res.x), np.asarray(res.v)

    sr = [scaled_psnr(mf.super_resolve(sim.mr, ratio, tau=float(t), psf=sim.psf), sim.mr_true)
          for t in SR_TAUS]
    ds = [scaled_psnr(mf.despeckle(sim.us, tau2=1.0, tau3=float(r)), sim.us_true)
          for r in DS_RATIOS]
    ds_auto = scaled_psnr(mf.despeckle(sim.us), sim.us_true)

    region_a, region_b = tissue_regions(sim)
    cnr_us = metrics.cnr(sim.us, region_a, region_b)
    thin = sim.thin_mask
    has_thin = bool(thin.any())
    rec = dict(
        case=f"{truth_name} r{ratio} {mr_snr_db:g} dB", truth=truth_name, ratio=ratio,
        mr_snr_db=mr_snr_db, shape=list(sim.us.shape), seed=seed,
        grain_area=sim.grain_area, speckle_scale=sim.speckle_scale,
        x_psnr=scaled_psnr(x, sim.mr_true), mr_only_best=max(sr),
        mr_only_tau=float(SR_TAUS[int(np.argmax(sr))]),
        v_psnr=scaled_psnr(v, sim.us_true), us_only_best=max(max(ds), ds_auto),
        us_only_ratio=("auto" if ds_auto >= max(ds) else float(DS_RATIOS[int(np.argmax(ds))])),
        us_only_auto=ds_auto,
        cnr_us=cnr_us, cnr_v_ratio=_ratio(metrics.cnr(v, region_a, region_b), cnr_us),
        cnr_x_ratio=_ratio(metrics.cnr(x, region_a, region_b), cnr_us),
        cnr_us_true_ratio=_ratio(metrics.cnr(sim.us_true, region_a, region_b), cnr_us),
        cnr_mr_true_ratio=_ratio(metrics.cnr(sim.mr_true, region_a, region_b), cnr_us),
        thin_pixels=int(thin.sum()),
        thin_x_ratio=(_ratio(thin_contrast(x, thin), thin_contrast(sim.mr_true, thin))
                      if has_thin else float("nan")),
        thin_v_ratio=(_ratio(thin_contrast(v, thin), thin_contrast(sim.us, thin))
                      if has_thin else float("nan")),
        slope_v_ratio=(_ratio(entry_slope(v, thin), entry_slope(sim.us, thin))
                       if has_thin else float("nan")),
        slope_x_ratio=(_ratio(entry_slope(x, thin), entry_slope(sim.mr_true, thin))
                       if has_thin else float("nan")),
        n_iter=int(res.n_iter), converged=bool(getattr(res, "converged", False)),
        message=str(getattr(res, "message", "")), seconds=seconds,
        weights=_jsonable(getattr(res, "weights", None)),
        simulation=_jsonable(sim.params))
    rec["x_gain"] = rec["x_psnr"] - rec["mr_only_best"]
    rec["v_gain"] = rec["v_psnr"] - rec["us_only_best"]
    return rec


# --------------------------------------------------------------------------- output


def _jsonable(obj):
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else str(float(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "as_dict"):
        return _jsonable(obj.as_dict())
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    return repr(obj)


COLUMNS = ("case", "x PSNR", "MR-only best", "gain x", "v PSNR", "US-only best", "gain v",
           "thin x/true", "CNR v/US", "CNR x/US", "CNR truth/US", "slope v/US", "iters")


def markdown(records: Sequence[dict]) -> str:
    """One row per case (PSNR in dB; ratios are fused over reference, see the module notes)."""
    def f(value, spec):
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
            else format(value, spec)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['case']} | error: {r['error']} |" + " |" * (len(COLUMNS) - 2))
            continue
        lines.append("| " + " | ".join([
            r["case"], f(r["x_psnr"], ".2f"), f(r["mr_only_best"], ".2f"), f(r["x_gain"], "+.2f"),
            f(r["v_psnr"], ".2f"), f(r["us_only_best"], ".2f"), f(r["v_gain"], "+.2f"),
            f(r["thin_x_ratio"], ".2f"), f(r["cnr_v_ratio"], ".2f"), f(r["cnr_x_ratio"], ".2f"),
            f(r["cnr_us_true_ratio"], ".2f"), f(r["slope_v_ratio"], "+.2f"),
            f"{r['n_iter']}"]) + " |")
    return "\n".join(lines)


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def fuse_options(extra: Sequence[str]) -> Dict[str, object]:
    """``["--degree", "1", "--tau4=1e-3"]`` -> ``{"degree": 1, "tau4": 0.001}``."""
    out, items = {}, list(extra)
    while items:
        key = items.pop(0)
        if not key.startswith("--") or len(key) < 3:
            raise SystemExit(f"realistic_eval: expected --name value, got {key!r}")
        if "=" in key:
            key, value = key.split("=", 1)
        elif items and not items[0].startswith("--"):
            value = items.pop(0)
        else:
            value = "True"  # a bare flag
        out[key[2:].replace("-", "_")] = _literal(value)
    return out


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(cases, *, fuse_kwargs: dict, size: Optional[int] = None, seed: int = SEED,
        log=print) -> List[dict]:
    """Evaluate ``cases`` (name, ratio, MR SNR); a failing case is recorded, not raised."""
    records = []
    for name, ratio, snr in cases:
        t = time.perf_counter()
        try:
            rec = evaluate_case(name, ratio, snr, fuse_kwargs=fuse_kwargs, size=size, seed=seed)
        except Exception as exc:  # keep the other cases; the exit status reports it
            rec = {"case": f"{name} r{ratio} {snr:g} dB", "error": f"{type(exc).__name__}: {exc}"}
        log(f"{rec['case']}: {time.perf_counter() - t:.1f} s"
            + (f" ({rec['error']})" if "error" in rec else f", {rec['message']}"))
        records.append(rec)
    return records


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Unknown --options are passed to mrusfusion.fuse.")
    ap.add_argument("--quick", action="store_true", help="two cases only (a smoke run)")
    ap.add_argument("--size", type=int, default=None,
                    help="crop the pelvis / size the phantom to this side (default: full)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=None, help="write the records as JSON here")
    args, extra = ap.parse_known_args(argv)
    kwargs = fuse_options(extra)
    t0 = time.perf_counter()
    records = run(QUICK_CASES if args.quick else CASES, fuse_kwargs=kwargs, size=args.size,
                  seed=args.seed, log=lambda s: print(s, file=sys.stderr, flush=True))
    table = markdown(records)
    print(table)
    print(f"\nfuse options: {kwargs or 'defaults'}; seed {args.seed}; commit {_commit()}; "
          f"{time.perf_counter() - t0:.0f} s. PSNR in dB against mr_true (x) and us_true (v); "
          "gains against the best-tuned baselines; ratios: fused over the reference (thin x: "
          "over mr_true; CNR and slope: over the observed US; CNR truth: us_true's).")
    if args.out is not None:
        doc = {"commit": _commit(), "argv": list(sys.argv if argv is None else argv),
               "fuse_kwargs": _jsonable(kwargs), "seed": args.seed, "size": args.size,
               "python": platform.python_version(), "numpy": np.__version__,
               "mrusfusion": mf.__version__, "sr_taus": SR_TAUS.tolist(),
               "ds_ratios": DS_RATIOS.tolist(), "records": _jsonable(records),
               "table": table}
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
