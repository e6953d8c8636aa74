"""Evidence for the data-driven weights (issue 8): on data simulated with the paper's protocol
from two ground-truth MR images, ratios 2 and 4, and two US noise levels, compare the fusion with
automatic weights against (a) the best fusion found on a grid of weights around them, (b) the
best-tuned MR-only baseline and (c) the best-tuned US-only baseline. Prints a Markdown table.

    python bench/weights_eval.py [--size 128] [--max-iter 300]
"""
import argparse
import itertools
import time

import numpy as np

import mrusfusion as mf
from mrusfusion.metrics import psnr


def cases(size):
    gt = mf.pelvis_mr()
    pelvis = gt[: size, 100: 100 + size] / gt.max()
    yield "pelvis", pelvis
    yield "phantom", mf.phantom((size, size))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--max-iter", type=int, default=300)
    a = ap.parse_args()
    factors = [0.25, 1.0, 4.0]
    sr_grid = np.logspace(-4, 0, 17)
    ds_grid = np.logspace(-3, 2, 21)
    print("| image | ratio | US SNR | x auto | x best grid | MR-only best | v auto | v best grid "
          "| US-only best | iters | converged |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    t0 = time.time()
    for (name, gt), ratio, us_snr in itertools.product(cases(a.size), (2, 4), (13.72, 10.0)):
        mr_snr = 23.26 if ratio == 4 else 20.73
        sim = mf.simulate(gt, ratio, mr_snr_db=mr_snr, us_snr_db=us_snr, seed=0)
        auto = mf.fuse(sim.mr, sim.us, max_iter=a.max_iter)
        px, pv = psnr(auto.x, sim.mr_true), psnr(auto.v, sim.us_true)
        w = auto.weights
        best_x, best_v = px, pv
        for f1, f4 in itertools.product(factors, factors):
            if f1 == 1.0 and f4 == 1.0:
                continue
            r = mf.fuse(sim.mr, sim.us, tau1=w.tau1 * f1, tau2=w.tau2, tau3=w.tau3,
                        tau4=w.tau4 * f4, gamma=w.gamma, max_iter=a.max_iter)
            best_x = max(best_x, psnr(r.x, sim.mr_true))
            best_v = max(best_v, psnr(r.v, sim.us_true))
        sr_best = max(psnr(mf.super_resolve(sim.mr, ratio, tau=t), sim.mr_true) for t in sr_grid)
        ds_best = max(psnr(mf.despeckle(sim.us, tau2=1.0, tau3=t), sim.us_true) for t in ds_grid)
        print(f"| {name} | {ratio} | {us_snr} | {px:.2f} | {best_x:.2f} | {sr_best:.2f} "
              f"| {pv:.2f} | "
              f"{best_v:.2f} | {ds_best:.2f} | {auto.n_iter} | {auto.converged} |", flush=True)
    print(f"\n{time.time() - t0:.0f} s; PSNR in dB against the true MR (x) and the true US (v).")


if __name__ == "__main__":
    main()
