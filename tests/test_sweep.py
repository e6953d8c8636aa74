"""mrusfusion.experiments.sweep: fusion over a grid of weights (issue 8)."""
import csv
import io as _io

import numpy as np
import pytest

import mrusfusion
from mrusfusion import cli
from mrusfusion.experiments.figures import sweep_figure
from mrusfusion.experiments.sweep import METRIC_COLUMNS, SweepResult, sweep

MAX_ITER = 5
TAU1 = (0.005, 0.05)
TAU4 = (0.1, 1.0)
REGION_A = np.s_[40:52, 44:56]  # the lesion of a 64x64 phantom is near (50.7, 52.6)
REGION_B = np.s_[30:40, 10:30]
PROFILE = ((24.0, 4.0), (24.0, 20.0))


def read_csv(path):
    return list(csv.DictReader(_io.StringIO(path.read_text())))


@pytest.fixture(scope="module")
def sim():
    return mrusfusion.simulate(mrusfusion.phantom((64, 64)), 2, seed=3)


@pytest.fixture(scope="module")
def grid(sim):
    """A 2x2 grid, run in parallel (two workers, one thread each)."""
    return sweep(sim.mr, sim.us, tau1=list(TAU1), tau4=np.array(TAU4), region_a=REGION_A,
                 region_b=REGION_B, profile=PROFILE, mr_true=sim.mr_true, us_true=sim.us_true,
                 max_workers=2, max_iter=MAX_ITER)


def test_grid_rows_and_taus(grid, sim):
    assert isinstance(grid, SweepResult)
    assert len(grid.table) == 4 and len(grid.images) == 4 and len(grid.seconds) == 4
    assert grid.axes == {"tau1": TAU1, "tau4": TAU4}
    # first swept tau varies slowest; the grid values are used as given
    assert [(r["tau1"], r["tau4"]) for r in grid.table] == [(a, b) for a in TAU1 for b in TAU4]
    assert [r["index"] for r in grid.table] == [0, 1, 2, 3]
    # the unswept weights are the automatic ones, the same at every point
    auto = mrusfusion.fuse(sim.mr, sim.us, max_iter=0, planner_effort="FFTW_ESTIMATE").weights
    for row in grid.table:
        assert row["tau2"] == pytest.approx(auto.tau2) and row["gamma"] == pytest.approx(auto.gamma)
        assert set(METRIC_COLUMNS) <= set(row)
        assert all(np.isfinite(row[c]) for c in METRIC_COLUMNS)
        assert 1 <= row["n_iter"] <= MAX_ITER and isinstance(row["converged"], bool)
    assert all(img.shape == sim.us.shape for img in grid.images)
    assert "4 fusion(s)" in grid.message


def test_parallel_and_serial_give_identical_numbers(grid, sim):
    serial = sweep(sim.mr, sim.us, tau1=list(TAU1), tau4=list(TAU4), region_a=REGION_A,
                   region_b=REGION_B, profile=PROFILE, mr_true=sim.mr_true, us_true=sim.us_true,
                   max_workers=1, max_iter=MAX_ITER)
    assert grid.max_workers == 2 and serial.max_workers == 1
    assert serial.table == grid.table
    for a, b in zip(serial.images, grid.images):
        np.testing.assert_array_equal(a, b)


def test_metrics_match_the_metrics_module(grid, sim):
    row = grid.table[3]
    res = mrusfusion.fuse(sim.mr, sim.us, tau1=TAU1[1], tau4=TAU4[1], max_iter=MAX_ITER,
                          planner_effort="FFTW_ESTIMATE", threads=1)
    from mrusfusion import metrics

    assert row["cnr_x_db"] == pytest.approx(metrics.cnr(res.x, REGION_A, REGION_B, db=True))
    assert row["slope_v"] == pytest.approx(metrics.profile_slope(res.v, *PROFILE))
    peak = sim.mr_true.max()
    assert row["psnr_x"] == pytest.approx(metrics.psnr(res.x / peak, sim.mr_true / peak,
                                                       data_range=1.0))


def test_best_picks_the_max_and_the_min(grid):
    values = [r["psnr_x"] for r in grid.table]
    assert grid.best("psnr_x")["psnr_x"] == max(values)
    assert grid.best("psnr_x", minimize=True)["psnr_x"] == min(values)
    best = grid.best("cnr_v_db")
    assert best == grid.table[int(np.argmax([r["cnr_v_db"] for r in grid.table]))]
    best["tau1"] = -1.0  # a copy
    assert grid.table[best["index"]]["tau1"] > 0
    with pytest.raises(KeyError, match="available"):
        grid.best("nonsense")


def test_to_csv_round_trips(grid, tmp_path):
    path = grid.to_csv(tmp_path / "sweep.csv")
    rows = read_csv(path)
    assert len(rows) == 4 and list(rows[0]) == grid.columns
    assert [float(r["tau4"]) for r in rows] == [r["tau4"] for r in grid.table]
    assert float(rows[2]["psnr_x"]) == grid.table[2]["psnr_x"]  # full precision by default
    assert grid.to_csv() == path.read_text()
    with pytest.raises(FileExistsError):
        grid.to_csv(path)
    short = list(csv.DictReader(_io.StringIO(grid.to_csv(digits=3))))
    assert short[0]["tau1"] == "0.005"


def test_figure(grid, tmp_path):
    pytest.importorskip("matplotlib")
    fig = sweep_figure(grid, tmp_path / "sweep.png", mark={"tau1": 0.01})
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert len(fig.axes) == 4 + 4  # CNR, slope, PSNR, MSSIM; a 2x2 grid of thumbnails


def test_one_axis_and_no_measurement(sim):
    res = sweep(sim.mr, sim.us, tau4=[0.5], max_iter=1)
    assert res.axes == {"tau4": (0.5,)} and res.columns == [
        "index", "tau1", "tau2", "tau3", "tau4", "gamma", "n_iter", "converged"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"tau1": [0.1, 1], "tau2": [1, 2], "tau4": [1, 2]}, ValueError, "at most two"),
    ({}, ValueError, "at least one"),
    ({"tau4": []}, ValueError, "empty"),
    ({"tau4": [1.0, 0.0]}, ValueError, "tau4"),
    ({"tau1": [-1.0]}, ValueError, "tau1"),
    ({"tau4": [1.0, float("nan")]}, ValueError, "finite"),
    ({"tau4": ["a"]}, TypeError, "tau4"),
    ({"tau4": [[1.0, 2.0]]}, ValueError, "1-D"),
    ({"tau4": [1.0], "region_a": REGION_A}, ValueError, "region_b"),
    ({"tau4": [1.0], "region_a": np.s_[100:120, 0:5], "region_b": REGION_B}, ValueError,
     "region_a"),
    ({"tau4": [1.0], "region_a": REGION_A, "region_b": np.ones((3, 3), bool)}, ValueError,
     "region_b"),
    ({"tau4": [1.0], "region_a": REGION_A, "region_b": [1, 2]}, TypeError, "region_b"),
    ({"tau4": [1.0], "profile": ((0, 0), (0, 200))}, ValueError, "end"),
    ({"tau4": [1.0], "mr_true": np.ones((32, 32))}, ValueError, "mr_true"),
    ({"tau4": [1.0], "max_workers": 0}, ValueError, "max_workers"),
    ({"tau4": [1.0], "progress": True, "callback": print}, TypeError, "callback"),
])
def test_refuses_bad_arguments_before_fusing(sim, kwargs, error, match, monkeypatch):
    def no_fusion(*args, **kw):  # noqa: ARG001
        raise AssertionError("fuse must not run")

    monkeypatch.setattr("mrusfusion.experiments.sweep.fuse", no_fusion)
    with pytest.raises(error, match=match):
        sweep(sim.mr, sim.us, **kwargs)


def test_a_failing_fusion_propagates(sim):
    with pytest.raises(ValueError, match="max_iter"):
        sweep(sim.mr, sim.us, tau4=[0.1, 1.0], max_workers=2, max_iter=-1)


def test_command(tmp_path, sim, capsys):
    from mrusfusion import io

    mr = io.save(tmp_path / "mr.npy", sim.mr)
    us = io.save(tmp_path / "us.npy", sim.us)
    truth = io.save(tmp_path / "mr_true.npy", sim.mr_true)
    out = tmp_path / "out"
    argv = ["sweep", str(mr), str(us), "--tau4", "0.1", "1", "--tau1", "0.01",
            "--region-a", "40", "52", "44", "56", "--region-b", "30", "40", "10", "30",
            "--profile", "24", "4", "24", "20", "--mr-true", str(truth), "--max-iter", "2",
            "--out", str(out)]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "best psnr_x" in captured.out and "sweep: 2/2" in captured.err
    rows = read_csv(out / "sweep.csv")
    assert [float(r["tau4"]) for r in rows] == [0.1, 1.0]
    assert {float(r["tau1"]) for r in rows} == {0.01}
    assert cli.main(argv) == 2  # existing outputs are refused
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["sweep", str(mr), str(us), "--out", str(out), "--overwrite"]) == 2
    assert "--tau1" in capsys.readouterr().err


def test_help(capsys):
    assert cli.main(["sweep", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: mrusfusion sweep" in out and "example:\n  mrusfusion " in out
