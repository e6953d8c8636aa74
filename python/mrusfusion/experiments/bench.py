"""The benchmark suite (run by ``mrusfusion bench`` and ``python bench/run.py``).

Everything is measured side by side in one process, because the machines are shared and noisy:
the cost of a PALM iteration is reported in units of one planned real FFT pair (forward and
inverse) of the same size measured in the same run, and the native kernels are compared with
their plain NumPy twins (:mod:`mrusfusion._reference`) on the same data. Medians throughout.
Nothing here is asserted; the numbers go to a JSON record and a Markdown table.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Dict, Hashable, List, Optional, Sequence

import numpy as np

from .. import _core, wisdom
from .. import _reference as ref
from .._config import get_num_threads
from ..data import phantom
from ..fourier import FourierProblem
from ..fusion import fuse
from ..link import fit_local_link, fit_polynomial
from ..operators import bicubic_upsample, gaussian_psf
from ..simulate import simulate
from .timing import fft_pair_ms, iteration_times, median_ms

__all__ = ["run_benchmark", "fft_pair_ms", "kernel_ratios", "interleaved_iteration_ms",
           "markdown"]


def _case(n: int, ratio: int, dtype):
    sim = simulate(phantom((n, n)), ratio, seed=0)
    return sim.mr.astype(dtype), sim.us.astype(dtype), sim


def interleaved_iteration_ms(cases: Dict[Hashable, tuple], iters: int, threads: int,
                             rounds: int = 3) -> Dict[Hashable, float]:
    """Median ms per iteration of each case, the cases run in turn ``rounds`` times.

    A ratio of two configurations (float32 against float64, 2400 against 600) measured minutes
    apart on a shared machine mostly measured the change of load in between; alternating them
    exposes both to the same load. ``cases`` maps a name to ``(mr, us)`` or ``(mr, us, kw)``
    with ``kw`` options of :func:`~mrusfusion.fuse`.
    """
    runs: Dict[Hashable, List[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            mr, us = case[0], case[1]
            kw = case[2] if len(case) > 2 else {}
            runs[name].append(iteration_times(mr, us, iters, threads, **kw)[1])
    return {k: float(np.median(v)) for k, v in runs.items()}


def local_link_cost(n: int = 600, *, degree: int = 4, knot_spacing: float = 64.0,
                    iters: int = 10, threads: int = 1, rounds: int = 3) -> Dict[str, float]:
    """Cost of an iteration with the local link against the global link (issue 14's target:
    at most 1.5x), and with the c-step of ``refit_link`` on top, measured interleaved.

    Both links are fitted beforehand on the bicubic start and passed to ``fuse``, so only the
    iterations are timed; the case is the phantom at ratio 4.
    """
    mr, us, _ = _case(n, 4, np.float64)
    x0 = bicubic_upsample(mr / mr.max(), 4)
    yu = us / us.max()
    glob = fit_polynomial(x0, yu, degree)
    loc = fit_local_link(x0, yu, degree, knot_spacing=knot_spacing, mu=1.0)
    ms = interleaved_iteration_ms({"global": (mr, us, {"link": glob}),
                                   "local": (mr, us, {"link": loc}),
                                   "local_refit": (mr, us, {"link": loc, "refit_link": True})},
                                  iters, threads, rounds)
    return {"size": float(n), "global_ms": ms["global"], "local_ms": ms["local"],
            "local_refit_ms": ms["local_refit"], "local_over_global": ms["local"] / ms["global"],
            "local_refit_over_global": ms["local_refit"] / ms["global"]}


def _peak_memory_images(mr, us, threads: int) -> float:
    """Peak traced allocation of a short fusion, in float64 images of the fine grid, above
    inputs."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fuse(mr, us, max_iter=3, tol=0, threads=threads)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / (us.size * 8.0)


def kernel_ratios(n: int = 600, dtype=np.float64, threads: Sequence[int] = (1, 2)) -> Dict:
    """Native vs NumPy-twin time of each kernel at n x n, and the native 2-thread scaling."""
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    x, v, y, w, a = (rng.random((n, n)).astype(dt) for _ in range(5))
    c = rng.standard_normal(15).astype(dt)
    outs = [np.empty((n, n), dt) for _ in range(6)]
    y_m = rng.random((n // 4, n // 4)).astype(dt)
    fp = FourierProblem((n, n), 4, gaussian_psf(9, 4.0), dt, max(threads), y_m, "FFTW_ESTIMATE")
    Xk, Gk, Xo, Tw = fp.forward(x), fp.forward(v), fp.empty_spec(), fp.empty_coarse_spec()
    o = outs
    calls = {
        "coupling_eval (f, f_x, f_g, H)": lambda K, t: K.coupling_eval(
            x, c, 4, 0, (1.0, 0.0), 0.0, v, None, o[0], o[1], o[2], t),
        "jacobian_transpose": lambda K, t: K.jacobian_transpose(
            x, v, y, None, o[1], o[2], 0, (1.0, 0.0), 0.0, -1.0, o[3], None, o[4], t),
        "vstep_eval (value, gradient)": lambda K, t: K.vstep_eval(
            v, y, w, None, 1.0, 1.01, 0.5, 0.2, o[3], o[4], t),
        "dtd_apply (Hessian product)": lambda K, t: K.dtd_apply(x, y, 0.1, 0.5, o[5], t),
        "xstep_solve (Woodbury)": lambda K, t: K.xstep_solve(
            fp.rhs_mr, Xk, Gk, fp.lam, fp.dtd, n, 4, 0.1, 0.5, Tw, Xo, None, t),
        "diff_stats": lambda K, t: K.diff_stats(x, v, y, None, t),
        "axpby (with norm)": lambda K, t: K.axpby(x, v, 1.3, -0.3, o[5], t),
        "spectral_scale": lambda K, t: K.spectral_scale(Xo, fp.dtd, 1.0, 0.5, t),
    }
    out = {}
    for name, call in calls.items():
        native = {t: median_ms(lambda call=call, t=t: call(_core, t)) for t in threads}
        numpy_ms = median_ms(lambda call=call: call(ref, 1), reps=3)
        t1, tm = native[min(threads)], native[max(threads)]
        out[name] = {"native_ms": native, "numpy_ms": numpy_ms, "speedup_1thread": numpy_ms / t1,
                     "thread_scaling": t1 / tm}
    return out


def _git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here,
                              capture_output=True, text=True,
                              timeout=5).stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_benchmark(sizes: Sequence[int] = (256, 600, 1200, 2400), *, iters: int = 10,
                  dtypes=("float64", "float32"), converge_max_size: int = 600,
                  numpy_max_size: int = 600, out_dir: Optional[str] = None,
                  log=print) -> dict:
    """Run the suite and return the record (also written to ``out_dir`` when given).

    Parameters
    ----------
    sizes : sequence of int
        Fine-grid sizes (square); ratio 4 always, ratio 6 where it divides the size.
    iters : int
        Iterations timed per configuration (median per iteration).
    converge_max_size : int
        Largest size for the time-to-convergence runs (plain vs inertial PALM).
    numpy_max_size : int
        Largest size for the NumPy-twin iteration runs.
    """
    all_threads = get_num_threads()
    thread_set = sorted({1, all_threads})
    rec: Dict[str, Any] = {
        "commit": _git_commit(), "cpu": _cpu_model(), "cores": os.cpu_count(),
        "threads": thread_set, "python": sys.version.split()[0], "numpy": np.__version__,
        "build": dict(_core.build_info()), "iterations_timed": iters, "rows": [],
        "convergence": [], "kernels": {}}
    for n in sizes:
        for ratio in [r for r in (4, 6) if n % r == 0]:
            for dname in dtypes:
                dt = np.dtype(dname)
                mr, us, _ = _case(n, ratio, dt)
                for t in thread_set:
                    # The FFT pair is timed before and after the iterations and the two medians
                    # averaged: on a shared machine the load drifts within a run.
                    fft_before = fft_pair_ms(n, dt, t)
                    res, it_ms = iteration_times(mr, us, iters, t)
                    fft = 0.5 * (fft_before + fft_pair_ms(n, dt, t))
                    T = res.timings
                    k = max(res.n_iter, 1)
                    row = {"size": n, "ratio": ratio, "dtype": dname, "threads": t,
                           "iter_ms": it_ms, "fft_pair_ms": fft, "fft_pairs": it_ms / fft,
                           "x_step_ms": T["x_step"] / k * 1e3, "v_step_ms": T["v_step"] / k * 1e3,
                           "link_ms": T["link"] / k * 1e3,
                           "trials_per_iter": float(np.mean(res.trials)),
                           "newton_per_iter": float(np.mean(res.vstep_newton)),
                           "cg_per_iter": float(np.mean(res.vstep_cg)), "setup_s": T["setup"]}
                    if t == all_threads:
                        row["peak_mem_images"] = _peak_memory_images(mr, us, t)
                    if n <= numpy_max_size and t == 1:
                        res_np, np_ms = iteration_times(mr, us, min(iters, 5), t,
                                                         backend="numpy")
                        res_nat, _ = iteration_times(mr, us, min(iters, 5), t)
                        row["numpy_iter_ms"] = np_ms
                        row["native_vs_numpy"] = np_ms / it_ms
                        dx = np.abs(res_np.x - res_nat.x).max() / res_nat.mr_scale
                        dv = np.abs(res_np.v - res_nat.v).max() / res_nat.us_scale
                        row["max_abs_diff_vs_numpy"] = float(max(dx, dv))
                    rec["rows"].append(row)
                    log(_row_line(row))
    for n in [s for s in sizes if s <= converge_max_size]:
        # Plain PALM to tol = 1e-5, then inertial PALM until it reaches the same objective
        # (within 1e-6 relative): time to the same answer.
        mr, us, sim = _case(n, 4, np.float64)
        t0 = time.perf_counter()
        plain = fuse(mr, us, max_iter=5000, tol=1e-5, inertial=False)
        t_plain = time.perf_counter() - t0
        target = float(plain.objective[-1]) * (1 + 1e-6)

        def stop_at_target(state, target=target):
            if state.objective <= target:
                raise StopIteration

        t0 = time.perf_counter()
        fast = fuse(mr, us, max_iter=5000, tol=0, inertial=True, callback=stop_at_target)
        t_fast = time.perf_counter() - t0
        entry: Dict[str, Any] = {
            "size": n, "ratio": 4,
            "plain": {"seconds": t_plain, "iterations": plain.n_iter,
                      "objective": float(plain.objective[-1]), "converged": plain.converged},
            "inertial": {"seconds": t_fast, "iterations": fast.n_iter,
                         "objective": float(fast.objective[-1]), "restarts": fast.restarts,
                         "reached": fast.stop_reason == "stopped by callback"}}
        # What a user gets: fuse() with every default (FFTW_ESTIMATE, tol 1e-4), set-up included,
        # and the same with FFTW_MEASURE plans (planning included).
        options: Dict[str, Dict[str, Any]] = {"default": {},
                                              "measure": {"planner_effort": "FFTW_MEASURE"}}
        for key, kw in options.items():
            with wisdom.disabled():  # time the planning as a machine's first fusion would
                t0 = time.perf_counter()
                res = fuse(mr, us, **kw)
                seconds = time.perf_counter() - t0
            T = res.timings
            entry[key] = {"seconds": seconds, "iterations": res.n_iter,
                          "setup_seconds": T["setup"], "converged": res.converged,
                          "iter_ms": (T["total"] - T["setup"]) / max(res.n_iter, 1) * 1e3}
        p, q = entry["plain"], entry["inertial"]
        entry["speedup"] = t_plain / t_fast
        entry["objective_rel_diff"] = (q["objective"] - p["objective"]) / abs(p["objective"])
        rec["convergence"].append(entry)
        log(f"convergence {n}x{n}: plain {p['iterations']} it {p['seconds']:.2f} s, inertial "
            f"{q['iterations']} it {q['seconds']:.2f} s to the same objective, speed-up "
            f"{entry['speedup']:.2f}, objective rel. diff {entry['objective_rel_diff']:.1e}")
        d, mm = entry["default"], entry["measure"]
        log(f"fuse() to convergence {n}x{n}: {d['iterations']} it, {d['seconds']:.2f} s "
            f"(set-up {d['setup_seconds']:.2f} s); with FFTW_MEASURE {mm['seconds']:.2f} s "
            f"(set-up and planning {mm['setup_seconds']:.2f} s)")
    rec["kernel_size"] = 600 if 600 in sizes else min(sizes)
    rec["kernels"] = kernel_ratios(rec["kernel_size"], threads=thread_set)
    for name, kr in rec["kernels"].items():
        log(f"kernel {name}: {kr['speedup_1thread']:.1f}x NumPy (1 thread), "
            f"{kr['thread_scaling']:.2f}x from 1 to {max(thread_set)} threads")
    _scaling(rec, sizes, iters, max(thread_set), log)
    kn = rec["kernel_size"]
    from .bench_realistic import realistic_rows

    rec["realistic"] = realistic_rows(kn, 4, iters=iters, threads=max(thread_set), log=log)
    rec["local_link"] = local_link_cost(kn, iters=iters, threads=max(thread_set))
    ll = rec["local_link"]
    log(f"local link {kn}x{kn}: {ll['local_ms']:.1f} ms/iter against {ll['global_ms']:.1f} "
        f"global ({ll['local_over_global']:.2f}x); with refit_link "
        f"{ll['local_refit_over_global']:.2f}x")
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench.json").write_text(json.dumps(rec, indent=2))
        (out / "bench.md").write_text(markdown(rec))
        log(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return rec


def _scaling(rec: dict, sizes, iters: int, threads: int, log=print) -> None:
    """float32 against float64 at 1200x1200 and 2400x2400 against 600x600 (float64), each pair
    measured interleaved (:func:`interleaved_iteration_ms`) on all threads."""
    s: Dict[str, float] = {}
    if 1200 in sizes:
        by_dtype: Dict[Hashable, tuple] = {d: _case(1200, 4, np.dtype(d))[:2]
                                           for d in ("float64", "float32")}
        m = interleaved_iteration_ms(by_dtype, iters, threads)
        s["float32_speedup_1200"] = m["float64"] / m["float32"]
        log("float32 against float64 at 1200x1200, interleaved: "
            f"{s['float32_speedup_1200']:.2f}x "
            f"({m['float64']:.1f} against {m['float32']:.1f} ms/iter)")
    if 600 in sizes and 2400 in sizes:
        by_size: Dict[Hashable, tuple] = {n: _case(n, 4, np.dtype("float64"))[:2]
                                          for n in (600, 2400)}
        m = interleaved_iteration_ms(by_size, iters, threads)
        s["iter_2400_over_600"] = m[2400] / m[600]
        log("2400x2400 against 600x600 per iteration, interleaved: "
            f"{s['iter_2400_over_600']:.2f}x "
            f"({m[2400]:.1f} against {m[600]:.1f} ms/iter)")
    rec["scaling"] = s


def _row_line(r: dict) -> str:
    extra = f", {r['native_vs_numpy']:.1f}x NumPy" if "native_vs_numpy" in r else ""
    mem = f", peak {r['peak_mem_images']:.1f} images" if "peak_mem_images" in r else ""
    return (f"{r['size']}x{r['size']} r{r['ratio']} {r['dtype']} {r['threads']}t: "
            f"{r['iter_ms']:.1f} ms/iter = {r['fft_pairs']:.1f} FFT pairs "
            f"(x {r['x_step_ms']:.1f}, v {r['v_step_ms']:.1f}, link {r['link_ms']:.1f} ms)"
            f"{extra}{mem}")


def markdown(rec: dict) -> str:
    """The record as Markdown tables."""
    lines = [f"Commit {rec['commit']}, {rec['cpu']}, threads {rec['threads']}, "
             f"median of {rec['iterations_timed']} iterations.", "",
             "| size | ratio | dtype | threads | ms/iter | FFT pairs/iter | x-step ms | v-step ms "
             "| link ms | L trials | Newton | CG | vs NumPy | peak mem (images) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        npy = f"{r['native_vs_numpy']:.1f}x" if "native_vs_numpy" in r else ""
        mem = f"{r['peak_mem_images']:.1f}" if "peak_mem_images" in r else ""
        lines.append(f"| {r['size']} | {r['ratio']} | {r['dtype']} | {r['threads']} "
                     f"| {r['iter_ms']:.1f} | {r['fft_pairs']:.1f} | {r['x_step_ms']:.1f} "
                     f"| {r['v_step_ms']:.1f} | {r['link_ms']:.1f} | {r['trials_per_iter']:.2f} "
                     f"| {r['newton_per_iter']:.2f} | {r['cg_per_iter']:.2f} | {npy} | {mem} |")
    if rec["convergence"]:
        lines += ["", "Time to the same objective: plain PALM to tol 1e-5, inertial PALM until its "
                  "objective is within 1e-6 (relative) of plain PALM's final one.", "",
                  "| size | plain PALM | inertial PALM | speed-up | objective rel. diff |",
                  "|---|---|---|---|---|"]
        for c in rec["convergence"]:
            p, q = c["plain"], c["inertial"]
            lines.append(f"| {c['size']} | {p['iterations']} it, {p['seconds']:.2f} s "
                         f"| {q['iterations']} it, {q['seconds']:.2f} s | {c['speedup']:.2f}x "
                         f"| {c['objective_rel_diff']:.1e} |")
        lines += ["", "fuse() with its defaults (FFTW_ESTIMATE plans, tol 1e-4, inertial PALM) to "
                  "convergence, set-up included; and the same with FFTW_MEASURE, planning included "
                  "(no wisdom file: a machine's first run).", "",
                  "| size | iterations | seconds | set-up s | ms/iter | FFTW_MEASURE seconds "
                  "| its set-up and planning s |",
                  "|---|---|---|---|---|---|---|"]
        for c in rec["convergence"]:
            if "default" not in c:
                continue
            d, mm = c["default"], c["measure"]
            lines.append(f"| {c['size']} | {d['iterations']} | {d['seconds']:.2f} "
                         f"| {d['setup_seconds']:.2f} | {d['iter_ms']:.1f} | {mm['seconds']:.2f} "
                         f"| {mm['setup_seconds']:.2f} |")
    if rec["kernels"]:
        kn = rec.get("kernel_size", 600)
        lines += ["", f"| kernel ({kn}x{kn} float64) | native 1 thread ms | NumPy ms | speed-up "
                  "| 1 -> 2 threads |",
                  "|---|---|---|---|---|"]
        for name, k in rec["kernels"].items():
            native_1 = k["native_ms"][min(k["native_ms"])]
            lines.append(f"| {name} | {native_1:.2f} | {k['numpy_ms']:.2f} | "
                         f"{k['speedup_1thread']:.1f}x | {k['thread_scaling']:.2f}x |")
    labels = {"float32_speedup_1200": "float32 against float64 per iteration at 1200x1200",
              "iter_2400_over_600": "iteration at 2400x2400 against 600x600 (16x the pixels)"}
    if rec.get("scaling"):
        lines += ["", f"Measured interleaved (the two configurations in turn, 3 rounds, medians), "
                  f"{max(rec['threads'])} threads:", ""]
        lines += [f"- {labels.get(k, k)}: {v:.2f}x" for k, v in rec["scaling"].items()]
    if rec.get("realistic"):
        from .bench_realistic import realistic_markdown

        lines += ["", "Realistic cases (issue 17): per iteration in FFT pairs of the same size, "
                  "and fuse() with its defaults to convergence, set-up included.", "",
                  realistic_markdown(rec["realistic"]).rstrip()]
    if rec.get("local_link"):
        ll = rec["local_link"]
        lines += [f"- iteration with the local link (knots 64 px apart, degree 4) against the "
                  f"global link at {int(ll['size'])}x{int(ll['size'])}: "
                  f"{ll['local_over_global']:.2f}x ({ll['local_ms']:.1f} against "
                  f"{ll['global_ms']:.1f} ms); with refit_link: "
                  f"{ll['local_refit_over_global']:.2f}x"]
    return "\n".join(lines) + "\n"
