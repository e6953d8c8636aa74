"""``mrusfusion simulate``: a simulated MR/US pair and its ground truth (the paper's protocol)."""
from __future__ import annotations

import argparse

import numpy as np

from .. import io
from .._version import __version__
from ..data import pelvis_mr, phantom
from ..simulate import PAPER_SNR_DB, simulate
from .common import (command_parser, finite_float, out_dir, output_paths_ok, per_axis,
                     positive_int, ratio_value, say, write_json)

#: Outputs inside OUT_DIR.
SIMULATE_FILES = ("mr.npy", "us.npy", "mr_true.npy", "us_true.npy", "simulation.json")
# Ratios the paper did not simulate get the SNRs of its ratio 4.
_DEFAULT_SNR_RATIO = 4
#: Phantom size of --3d without --shape: small enough for a quick fusion on 2 cores.
VOLUME_SHAPE = (96, 96, 48)


def _snr_help(which: int) -> str:
    other = ", ".join(f"{snr[which]:.2f} at ratio {r}" for r, snr in PAPER_SNR_DB.items()
                      if r != _DEFAULT_SNR_RATIO)
    return f"(default: the paper's, {other}, else {PAPER_SNR_DB[_DEFAULT_SNR_RATIO][which]:.2f})"


def add_parser(subparsers) -> argparse.ArgumentParser:
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
            "without --overwrite.\n\n"
            "Volumes: --3d (the 3-D phantom of ellipsoids, 96x96x48) or --shape N1 N2 N3 "
            "simulate a volume pair with a 3-D Gaussian PSF (9x9x9, variance 4) and the link's "
            "gradient in 3-D; --ratio takes one value or one per axis (2,2,4). With --3d a "
            "--source file is read as a volume."),
        example=("mrusfusion simulate sim --ratio 4 --seed 1\n"
                 "mrusfusion simulate vol --shape 64 64 32 --ratio 2,2,4\n"
                 "mrusfusion fuse sim/mr.npy sim/us.npy -o sim/fused.npy --degree 3 "
                 "--gradient magnitude"))
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for the outputs")
    p.add_argument("--ratio", type=ratio_value, default=4, metavar="N|A,B,C",
                   help="decimation ratio, or one per axis of a volume (default: %(default)s)")
    p.add_argument("--source", default="phantom", metavar="phantom|pelvis|PATH",
                   help="ground-truth MR image (default: %(default)s)")
    p.add_argument("--shape", type=positive_int, nargs="+", metavar="N",
                   help="phantom size, 2 or 3 values (default: 256 256; with --3d: "
                        f"{' '.join(map(str, VOLUME_SHAPE))})")
    p.add_argument("--3d", dest="volume", action="store_true",
                   help="simulate a volume (the 3-D phantom, or a 3-D --source file)")
    p.add_argument("--mr-snr-db", type=finite_float, metavar="DB",
                   help="MR SNR in dB " + _snr_help(0))
    p.add_argument("--us-snr-db", type=finite_float, metavar="DB",
                   help="US SNR in dB " + _snr_help(1))
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary")
    p.set_defaults(func=run)
    return p


def _truth(args):
    """The ground-truth MR image and whether it was rescaled to [0, 1]."""
    source = args.source
    if source == "phantom":
        shape = per_axis(args.shape, "--shape")
        if shape is None:
            shape = VOLUME_SHAPE if args.volume else (256, 256)
        if args.volume and len(shape) != 3:
            raise ValueError(f"--3d needs three --shape values, got {len(shape)}")
        return phantom(shape), False
    if source == "pelvis":
        if args.volume:
            raise ValueError("--source pelvis is a 2-D image; --3d takes phantom or a volume file")
        return pelvis_mr(), False
    truth = io.load(source, volume=args.volume).data.astype(np.float64)
    if not np.all(np.isfinite(truth)):
        raise ValueError(f"--source {source} holds non-finite values")
    lo, hi = float(truth.min()), float(truth.max())
    if lo < 0 or hi > 1:  # the simulator's link expects intensities in [0, 1]
        if not hi > lo:
            raise ValueError(f"--source {source} is constant; nothing to simulate")
        return (truth - lo) / (hi - lo), True
    return truth, False


def run(args) -> int:
    out = out_dir(args.out_dir, "OUT_DIR")
    source = args.source
    if args.shape is not None and source != "phantom":
        raise ValueError("--shape applies to --source phantom only; crop other sources "
                         "beforehand")
    builtin = source in ("phantom", "pelvis")
    if out.is_dir():
        output_paths_ok([("", str(out / n)) for n in SIMULATE_FILES], [] if builtin else [source],
                        overwrite=args.overwrite)
    truth, normalised = _truth(args)
    mr_snr, us_snr = PAPER_SNR_DB.get(args.ratio, PAPER_SNR_DB[_DEFAULT_SNR_RATIO])
    mr_snr = args.mr_snr_db if args.mr_snr_db is not None else mr_snr
    us_snr = args.us_snr_db if args.us_snr_db is not None else us_snr
    sim = simulate(truth, args.ratio, mr_snr_db=mr_snr, us_snr_db=us_snr, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    written = [io.save(out / name, arr, overwrite=args.overwrite, volume=arr.ndim == 3)
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
    written.append(write_json(out / "simulation.json", info, overwrite=args.overwrite))
    mr_shape, us_shape = ("x".join(map(str, a.shape)) for a in (sim.mr, sim.us))
    ratio = sim.ratio if isinstance(sim.ratio, int) else ",".join(map(str, sim.ratio))
    say(args, f"simulated MR {mr_shape} ({sim.mr_snr_db:.2f} dB) and US {us_shape} "
              f"({sim.us_snr_db:.2f} dB), ratio {ratio}, seed {args.seed}",
        *(f"wrote {p}" for p in written))
    return 0
