"""mrusfusion.experiments.reproduce: the paper's simulated experiments on a tiny configuration
(issue 5)."""
import csv
import math
import sys

import numpy as np
import pytest

from mrusfusion import cli
from mrusfusion.experiments.reproduce import (COLUMNS, TAU4_FACTORS, Case, paper_cases,
                                              phantom_regions, reproduce)

MAX_ITER = 5
SHAPE = (64, 64)
METHODS = ["bicubic", "MR-only", "fused x", "observed US", "US-only", "fused v"]


def tiny_cases():
    return [Case.phantom(4, SHAPE, tau4_sweep=True), Case.phantom(2, SHAPE)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    return out, reproduce(out, cases=tiny_cases(), max_iter=MAX_ITER, progress=False)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_results_table(run):
    out, result = run
    rows = read_csv(out / "results.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["dataset"], r["ratio"], r["method"]) for r in rows] == [
        ("phantom", str(ratio), m) for ratio in (4, 2) for m in METHODS]
    assert [r["reference"] for r in rows[:6]] == ["true MR"] * 3 + ["true US"] * 3
    for r in rows:
        assert all(math.isfinite(float(r[c])) for c in ("RMSE", "PSNR", "ISNR", "MSSIM"))
    fused = [r for r in rows if r["method"] == "fused x"]
    assert len(fused) == 2 and all(15 < float(r["PSNR"]) < 60 for r in fused)
    # ISNR is measured against the observation itself on the observation's rows
    assert {float(r["ISNR"]) for r in rows if r["method"] in ("bicubic", "observed US")} == {0.0}
    assert len(result["rows"]) == 12 and len(result["cases"]) == 2


def test_markdown(run):
    out, result = run
    md = (out / "results.md").read_text()
    assert md == result["markdown"]
    for text in ("## Results", "| phantom | 4 | fused x | true MR |", "## Cases",
                 "## tau4 sweep", "## Run time", "Total: "):
        assert text in md
    table = md[md.index("## Results"):md.index("## Cases")]
    assert sum(line.startswith("| phantom |") for line in table.splitlines()) == 12


def test_tau4_sweep(run):
    out, result = run
    rows = read_csv(out / "tau4_sweep.csv")
    auto = result["tau4_auto"]
    assert len(rows) == len(TAU4_FACTORS)
    np.testing.assert_allclose([float(r["tau4"]) for r in rows],
                               [auto * f for f in TAU4_FACTORS], rtol=1e-5)
    for r in rows:
        for c in ("cnr_x_db", "cnr_v_db", "slope_x", "slope_v", "psnr_x", "mssim_v"):
            assert math.isfinite(float(r[c]))


def test_figures(run):
    pytest.importorskip("matplotlib")
    out, result = run
    assert result["figures"]
    for name in ("fig1_phantom_r4.png", "fig1_phantom_r2.png", "fig8_tau4.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
        assert out / name in result["files"]


def test_same_seed_same_numbers(run, tmp_path):
    out, _ = run
    again = reproduce(tmp_path, cases=tiny_cases(), max_iter=MAX_ITER, progress=False)
    for name in ("results.csv", "tau4_sweep.csv"):
        assert (tmp_path / name).read_text() == (out / name).read_text()
    other = reproduce(tmp_path / "seed1", cases=tiny_cases()[1:], max_iter=MAX_ITER, seed=1,
                      progress=False)
    assert other["rows"][0]["RMSE"] != again["rows"][6]["RMSE"]


def test_refuses_existing_outputs_before_computing(run, monkeypatch):
    out, _ = run
    monkeypatch.setattr("mrusfusion.experiments.reproduce.simulate", None)  # would fail if reached
    with pytest.raises(FileExistsError, match="overwrite"):
        reproduce(out, cases=tiny_cases(), max_iter=MAX_ITER, progress=False)


def test_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = reproduce(tmp_path, cases=[Case.phantom(2, (32, 32))], max_iter=1)
    assert not result["figures"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.md"]
    err = capsys.readouterr().err
    assert 'pip install "mrusfusion[plot]"' in err and "reproduce: done" in err


@pytest.mark.parametrize("cases, error, match", [
    ([], ValueError, "empty"),
    (["phantom"], TypeError, "Case"),
    ([Case.phantom(2, (32, 32)), Case.phantom(2, (32, 32))], ValueError, "phantom_r2"),
    ([Case.phantom(4, (32, 32), tau4_sweep=True), Case.phantom(2, (32, 32), tau4_sweep=True)],
     ValueError, "at most one"),
])
def test_refuses_bad_cases(tmp_path, cases, error, match):
    with pytest.raises(error, match=match):
        reproduce(tmp_path, cases=cases, progress=False)


def test_cases_follow_the_paper():
    cases = paper_cases()
    assert [(c.dataset, c.ratio, c.mr_snr_db, c.us_snr_db) for c in cases] == [
        ("pelvis", 4, 23.26, 13.72), ("pelvis", 2, 20.73, 13.80),
        ("phantom", 4, 23.26, 13.72), ("phantom", 2, 20.73, 13.80)]
    assert [c.tau4_sweep for c in cases] == [False, False, True, False]
    pelvis = cases[0].truth
    assert pelvis.shape == (300, 400) and pelvis.max() == 1.0
    with pytest.raises(ValueError, match="ratios 4 and 2"):
        Case.phantom(3)


def test_phantom_regions():
    from mrusfusion import phantom

    truth = phantom((256, 256))
    lesion, surround, (start, end) = phantom_regions((256, 256))
    assert lesion.sum() > 100 and surround.sum() > 500 and not (lesion & surround).any()
    assert truth[lesion].min() > 0.9 and np.ptp(truth[surround]) < 0.02
    # the profile goes from the background into the lesion
    from mrusfusion.metrics import profile_slope

    assert profile_slope(truth, start, end) > 0.02


def test_command_quick(tmp_path, capsys):
    out = tmp_path / "quick"
    assert cli.main(["reproduce", "--out", str(out), "--quick", "--max-iter", "2"]) == 0
    captured = capsys.readouterr()
    assert "| phantom | 4 | fused x |" in captured.out and "total run time" in captured.out
    assert "reproduce: [1/2] phantom, ratio 4" in captured.err
    assert len(read_csv(out / "results.csv")) == 12
    assert "`mrusfusion reproduce --out DIR --quick --max-iter 2`" in (
        out / "results.md").read_text()
    assert cli.main(["reproduce", "--out", str(out), "--quick"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_help(capsys):
    assert cli.main(["reproduce", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: mrusfusion reproduce" in out and "example:\n  mrusfusion reproduce" in out
