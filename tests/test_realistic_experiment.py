"""mrusfusion.experiments.realistic and .measures: the realistic cases of issue 14, their
measures on constructed inputs, and ``mrusfusion reproduce --realistic``."""
import csv
import doctest
import io
import math
from types import SimpleNamespace

import numpy as np
import pytest

from mrusfusion import cli, metrics, super_resolve
from mrusfusion.experiments import measures, realistic
from mrusfusion.experiments.realistic import (CSV_COLUMNS, TABLE_COLUMNS, RealisticCase,
                                              best_mr_only, best_us_only, entry_slope,
                                              evaluate_realistic, ground_truth,
                                              realistic_cases, realistic_csv, realistic_table,
                                              relative, scaled_psnr, tissue_regions)
from mrusfusion.experiments.reproduce import reproduce
from mrusfusion.simulate import simulate_bmode, thin_contrast

SIZE = 64
CASE = RealisticCase("phantom", 2, 25.0, size=SIZE)


@pytest.fixture(scope="module")
def sim():
    return simulate_bmode(ground_truth("phantom", SIZE), 2, mr_snr_db=25.0, seed=0)


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


# --------------------------------------------------------------------------- measures


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(32, 32), (33, 20)])
def test_entry_slope_of_a_ramp_and_its_negation(dtype, shape):
    rng = np.random.default_rng(1)
    ramp = (0.25 * np.arange(shape[0])[:, None] + rng.normal(size=(1, shape[1]))).astype(dtype)
    mask = np.zeros(shape, bool)
    mask[20:22, 3:15] = True
    mask[10, 5:9] = True
    # each column adds a constant, which the slope ignores; the ramp rises 0.25 per row
    assert entry_slope(ramp, mask) == pytest.approx(0.25, rel=1e-5)
    assert entry_slope(-ramp, mask) == pytest.approx(-entry_slope(ramp, mask), rel=1e-6)
    assert entry_slope(3 * ramp + 7, mask) == pytest.approx(0.75, rel=1e-5)
    # along the other axis a pure ramp is flat
    pure = np.broadcast_to(0.25 * np.arange(shape[0], dtype=dtype)[:, None], shape)
    assert entry_slope(pure, mask, beam=(0, 1)) == pytest.approx(0.0, abs=1e-6)


def test_entry_slope_refuses_bad_masks():
    img = np.zeros((16, 16))
    with pytest.raises(ValueError, match="`mask` must have the shape"):
        entry_slope(img, np.ones((8, 8), bool))
    with pytest.raises(ValueError, match="no entry pixel"):
        entry_slope(img, np.ones((16, 16), bool))  # periodic: every pixel has a predecessor


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scaled_psnr_ignores_a_common_scale(dtype):
    rng = np.random.default_rng(2)
    truth = rng.uniform(0.2, 1.0, (32, 32))
    est = truth + rng.normal(scale=0.05, size=truth.shape)
    ref = scaled_psnr(est, truth)
    assert scaled_psnr((5 * est).astype(dtype), (5 * truth).astype(dtype)) == pytest.approx(
        ref, abs=1e-3)
    assert scaled_psnr(truth, truth) == math.inf


def test_relative():
    assert relative(3.0, 2.0) == 1.5
    assert math.isnan(relative(1.0, 0.0)) and math.isnan(relative(1.0, math.nan))


def test_tissue_regions_are_disjoint_single_classes_away_from_the_layers(sim):
    a, b = tissue_regions(sim)
    assert a.any() and b.any() and not (a & b).any()
    assert not ((a | b) & sim.thin_mask).any()
    for region in (a, b):
        assert np.unique(sim.labels[region]).size == 1


# --------------------------------------------------------------------------- baselines


def test_best_mr_only_is_the_best_of_its_grid(sim):
    taus = (1e-3, 1e-1)
    best, tau, psnrs = best_mr_only(sim, taus)
    assert len(psnrs) == 2 and best == max(psnrs) and tau in taus
    for t in taus:  # the best is at least the PSNR at any single grid value
        single = scaled_psnr(super_resolve(sim.mr, 2, tau=t, psf=sim.psf), sim.mr_true)
        assert best >= single - 1e-12


def test_best_us_only_includes_the_automatic_weights(sim):
    best, ratio, auto, psnrs = best_us_only(sim.us, sim.us_true, (1e-2, 1.0))
    assert best >= auto and all(best >= p for p in psnrs)
    assert (ratio == "auto") == (auto >= max(psnrs))


# --------------------------------------------------------------------------- evaluation


def test_evaluation_measures_identities(sim, monkeypatch):
    # A fake fusion: x an affine image of the true MR, v the negated observed US. Contrasts and
    # CNRs are invariant to a positive affine map, slopes scale with it, and negation flips
    # their signs.
    def fake_fuse(mr, us, **kwargs):
        assert kwargs["ratio"] == 2 and kwargs["psf"] is not None and kwargs["max_iter"] == 3
        return SimpleNamespace(x=3.0 * sim.mr_true + 0.5, v=-np.asarray(us), n_iter=3,
                               converged=True, message="fake", weights=None)

    monkeypatch.setattr(realistic, "fuse", fake_fuse)
    rec = evaluate_realistic(CASE, fuse_kwargs={"max_iter": 3})
    assert rec["case"] == "phantom r2 25 dB" and rec["shape"] == [SIZE, SIZE]
    assert rec["thin_pixels"] == int(sim.thin_mask.sum()) > 0
    assert rec["thin_x_ratio"] == pytest.approx(1.0)
    assert rec["slope_x_ratio"] == pytest.approx(3.0)
    assert rec["cnr_x_ratio"] == pytest.approx(rec["cnr_mr_true_ratio"])
    assert rec["thin_v_ratio"] == pytest.approx(-1.0)
    assert rec["slope_v_ratio"] == pytest.approx(-1.0)
    assert rec["cnr_v_ratio"] == pytest.approx(1.0)
    a, b = tissue_regions(sim)
    assert rec["cnr_us"] == pytest.approx(metrics.cnr(sim.us, a, b))
    assert rec["x_gain"] == pytest.approx(rec["x_psnr"] - rec["mr_only_best"])
    assert rec["v_gain"] == pytest.approx(rec["v_psnr"] - rec["us_only_best"])
    assert rec["us_only_best"] >= rec["us_only_auto"]
    assert rec["thin_x_ratio"] == pytest.approx(relative(
        thin_contrast(3.0 * sim.mr_true, sim.thin_mask), thin_contrast(sim.mr_true,
                                                                        sim.thin_mask)))


def test_cases_and_their_checks():
    cases = realistic_cases()
    assert len(cases) == 8 and len(set(cases)) == 8
    assert {(c.truth, c.ratio, c.mr_snr_db) for c in cases} == {
        (t, r, s) for t in ("pelvis", "phantom") for r in (2, 4) for s in (35.0, 25.0)}
    assert ground_truth("pelvis", 64).shape == (64, 64)
    with pytest.raises(ValueError, match="`truth`"):
        RealisticCase("brain", 2, 25.0)
    with pytest.raises(TypeError, match="`mr_snr_db`"):
        RealisticCase("phantom", 2, "25")
    with pytest.raises(ValueError, match="`size`"):
        RealisticCase("phantom", 2, 25.0, size=4)
    with pytest.raises(TypeError, match="`case`"):
        evaluate_realistic("phantom")
    with pytest.raises(TypeError, match="`fuse_kwargs`"):
        evaluate_realistic(CASE, fuse_kwargs=[("max_iter", 1)])


def test_tables_of_records_and_errors():
    rec = {c: 1.0 for c in CSV_COLUMNS}
    rec.update(case="phantom r2 25 dB", truth="phantom", shape=[64, 64], n_iter=4,
               converged=False, thin_x_ratio=math.nan)
    bad = {"case": "pelvis r4 35 dB", "error": "ValueError: boom"}
    rows = read_csv(realistic_csv([rec, bad]))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert rows[0]["shape"] == "64x64" and rows[0]["thin_x_ratio"] == "nan"
    assert rows[1]["case"] == "pelvis r4 35 dB" and rows[1]["x_psnr"] == "nan"
    lines = realistic_table([rec, bad]).splitlines()
    assert lines[0] == "| " + " | ".join(TABLE_COLUMNS) + " |" and len(lines) == 4
    assert "| n/a |" in lines[2] and "error: ValueError: boom" in lines[3]
    assert all(line.count("|") == len(TABLE_COLUMNS) + 1 for line in lines)


# --------------------------------------------------------------------------- reproduce


def test_reproduce_realistic_quick(tmp_path, capsys):
    out = tmp_path / "quick"
    args = ["reproduce", "--out", str(out), "--quick", "--realistic", "--max-iter", "2"]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "Realistic cases (issue 14):" in captured.out and "| phantom r2 25 dB |" in captured.out
    rows = read_csv((out / "realistic.csv").read_text())
    assert len(rows) == 1 and list(rows[0]) == list(CSV_COLUMNS)
    row = rows[0]
    assert (row["case"], row["ratio"], row["shape"], row["n_iter"]) == (
        "phantom r2 25 dB", "2", "64x64", "2")
    for c in ("x_psnr", "mr_only_best", "v_psnr", "us_only_best", "cnr_v_ratio",
              "thin_x_ratio", "slope_v_ratio"):
        assert math.isfinite(float(row[c]))
    md = (out / "realistic.md").read_text()
    assert "`mrusfusion reproduce --out DIR --quick --max-iter 2 --realistic`" in md
    assert "| phantom r2 25 dB |" in md and "phantom 64x64" in md
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli.main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_reproduce_refuses_an_existing_realistic_file(tmp_path, monkeypatch):
    (tmp_path / "realistic.csv").write_text("mine\n")
    monkeypatch.setattr("mrusfusion.experiments.reproduce.simulate", None)  # never reached
    with pytest.raises(FileExistsError, match="realistic.csv"):
        reproduce(tmp_path, realistic=True, progress=False)
    assert (tmp_path / "realistic.csv").read_text() == "mine\n"
    with pytest.raises(TypeError, match="`realistic`"):
        reproduce(tmp_path, realistic=["phantom"], progress=False)


@pytest.mark.parametrize("module", [realistic, measures])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
