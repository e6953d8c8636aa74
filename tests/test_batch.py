"""Batch fusion (issue 18): the engine, manifests, fuse_many on a local Dask cluster."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import mrusfusion as mf
from mrusfusion.batch import (SUMMARY_COLUMNS, Pair, as_pairs, fuse_many, plan_workers,
                              read_manifest, run_tasks)
from mrusfusion.batch.runner import RECORDS

distributed = pytest.importorskip("distributed")

FUSE = {"max_iter": 15, "tol": 0.0}


def _pairs_on_disk(tmp_path, n=6, size=32, nan_pair=False):
    rows = ["name,mr,us"]
    for k in range(n):
        sim = mf.simulate(mf.phantom((size, size)), 2, seed=k)
        np.save(tmp_path / f"mr{k}.npy", sim.mr)
        np.save(tmp_path / f"us{k}.npy", sim.us)
        rows.append(f"case{k},mr{k}.npy,us{k}.npy")
    if nan_pair:
        bad = np.full((size // 2, size // 2), np.nan)
        np.save(tmp_path / "mr_bad.npy", bad)
        rows.append("broken,mr_bad.npy,us0.npy")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def _direct(tmp_path, k, **kw):
    return mf.fuse(np.load(tmp_path / f"mr{k}.npy"), np.load(tmp_path / f"us{k}.npy"),
                   threads=1, **{**FUSE, **kw})


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    cl = distributed.Client(cluster)
    yield cl
    cl.close()
    cluster.close()


# --------------------------------------------------------------------------- engine


def test_engine_records_failures_and_keeps_going():
    outs = run_tasks(lambda k: 1.0 / k, [2, 0, 4], workers=2)
    by_index = {o.index: o for o in outs}
    assert by_index[0].value == 0.5 and by_index[2].value == 0.25
    assert not by_index[1].ok and by_index[1].error.startswith("ZeroDivisionError")
    assert isinstance(by_index[1].exception, ZeroDivisionError)


@pytest.mark.parametrize("n,workers,cores", [(10, None, 8), (3, None, 8), (10, 3, 8),
                                             (1, 5, 2), (7, 2, 1)])
def test_workers_times_threads_never_exceed_the_cores(n, workers, cores):
    w, t = plan_workers(n, workers, cores)
    assert 1 <= w <= max(n, 1) and w * t <= max(cores, w) and t >= 1


def test_engine_refuses_bad_arguments():
    with pytest.raises(ValueError, match="`backend`"):
        run_tasks(abs, [1], backend="mpi")
    with pytest.raises(ValueError, match="`workers`"):
        run_tasks(abs, [1], workers=0)


# --------------------------------------------------------------------------- manifests


def test_manifest_paths_are_relative_to_it_and_names_default_to_the_us_file(tmp_path):
    (tmp_path / "sub").mkdir()
    m = tmp_path / "sub" / "m.csv"
    m.write_text("mr,us,ratio,mask\nimg/a_mr.nii.gz,img/a_us.nii.gz,4,\n")
    (p,) = read_manifest(m)
    assert p.name == "a_us" and p.ratio == 4 and p.mask is None
    assert p.mr == tmp_path / "sub" / "img" / "a_mr.nii.gz"


@pytest.mark.parametrize("text,match", [
    ("mr,name\na.npy,x\n", "lacks the column"),
    ("mr,us\na.npy,\n", "must both be given"),
    ("mr,us,ratio\na.npy,b.npy,two\n", "`ratio` must be a positive integer"),
    ("mr,us,name\na.npy,b.npy,x\nc.npy,d.npy,x\n", "two pairs are named"),
    ("mr,us,name\na.npy,b.npy,../evil\n", "not usable as a file name"),
])
def test_bad_manifests_are_refused_with_the_reason(tmp_path, text, match):
    m = tmp_path / "m.csv"
    m.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_manifest(m)


def test_pairs_in_python():
    a = np.zeros((4, 4))
    ps = as_pairs([(a, a), {"mr": a, "us": a, "name": "named"}, Pair("p", a, a)])
    assert [p.name for p in ps] == ["pair000", "named", "p"]
    with pytest.raises(TypeError, match="pair 0"):
        as_pairs([a])


# --------------------------------------------------------------------------- fuse_many


def test_batch_on_dask_equals_fuse_and_a_bad_pair_fails_alone(tmp_path, client):
    manifest = _pairs_on_disk(tmp_path, nan_pair=True)
    out = tmp_path / "out"
    res = fuse_many(manifest, out_dir=out, client=client, threads=1, **FUSE)
    status = {r["name"]: r["status"] for r in res.rows}
    assert status.pop("broken") == "failed" and set(status.values()) == {"ok"}
    assert res.failed == 1 and res.ran == 7
    for k in range(6):
        ref = _direct(tmp_path, k)
        np.testing.assert_allclose(np.load(out / f"case{k}_x.npy"), ref.x, rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.load(out / f"case{k}_v.npy"), ref.v, rtol=0, atol=1e-12)
    rows = json.loads((out / "summary.json").read_text())
    assert [r["name"] for r in rows] == [f"case{k}" for k in range(6)] + ["broken"]
    assert "NaN" in rows[-1]["error"]
    header = (out / "summary.csv").read_text().splitlines()[0]
    assert header.split(",") == list(SUMMARY_COLUMNS)


def test_a_rerun_does_nothing(tmp_path, client):
    manifest = _pairs_on_disk(tmp_path, n=3)
    out = tmp_path / "out"
    first = fuse_many(manifest, out_dir=out, client=client, **FUSE)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    again = fuse_many(manifest, out_dir=out, client=client, **FUSE)
    assert first.ran == 3 and again.ran == 0 and again.skipped == 3 and again.ok
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.npy")} == stamps


def test_thread_backend_needs_no_dask_and_gives_the_same_results(tmp_path):
    manifest = _pairs_on_disk(tmp_path, n=2)
    res = fuse_many(manifest, out_dir=tmp_path / "out", backend="threads", workers=2,
                    threads=1, **FUSE)
    assert res.ok
    np.testing.assert_allclose(np.load(tmp_path / "out" / "case1_x.npy"),
                               _direct(tmp_path, 1).x, rtol=0, atol=1e-12)


def test_fuse_many_refuses_options_it_sets_per_pair(tmp_path):
    with pytest.raises(TypeError, match="`ratio`"):
        fuse_many([(np.ones((4, 4)), np.ones((8, 8)))], out_dir=tmp_path, ratio=2)


def test_a_worker_killed_mid_batch_loses_nothing(tmp_path):
    manifest = _pairs_on_disk(tmp_path, n=6, size=48)
    out = tmp_path / "out"
    slow = {"max_iter": 150, "tol": 0.0}
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    cl = distributed.Client(cluster)
    try:
        result = {}
        runner = threading.Thread(target=lambda: result.update(
            res=fuse_many(manifest, out_dir=out, client=cl, threads=1, **slow)))
        runner.start()
        records = out / RECORDS
        deadline = time.monotonic() + 120
        while not (records.is_dir() and any(records.iterdir())):
            assert time.monotonic() < deadline, "no pair finished"
            time.sleep(0.05)
        first = sorted(records.iterdir())[0]
        finished = {p.name: p.read_bytes() for p in out.glob("*.npy")}
        assert len(list(records.iterdir())) < 6  # mid-batch: pairs are still to do
        pids = cl.run(os.getpid)
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # the nanny restarts it
        runner.join(300)
        assert not runner.is_alive()
        res = result["res"]
        assert res.ok and res.failed == 0
        assert first.is_file()
        for name, data in finished.items():  # what was done before the kill is untouched
            if (out / name).is_file():
                assert (out / name).read_bytes() == data
        for k in range(6):
            ref = _direct(tmp_path, k, **slow)
            np.testing.assert_allclose(np.load(out / f"case{k}_x.npy"), ref.x, rtol=0,
                                       atol=1e-12)
    finally:
        cl.close()
        cluster.close()


def test_outputs_follow_the_input_format(tmp_path, client):
    pytest.importorskip("nibabel")
    sim = mf.simulate(mf.phantom((32, 32)), 2, seed=0)
    mr_p = mf.io.save(tmp_path / "mr.nii.gz", sim.mr, spacing=(2.0, 2.0))
    us_p = mf.io.save(tmp_path / "us.nii.gz", sim.us, spacing=(1.0, 1.0))
    res = fuse_many([Pair("nifti", Path(mr_p), Path(us_p))], out_dir=tmp_path / "o",
                    client=client, threads=1, **FUSE)
    assert res.ok and res.rows[0]["x"].endswith("nifti_x.nii.gz")
    img = mf.io.load(res.rows[0]["x"])
    assert img.spacing == (1.0, 1.0)
    np.testing.assert_allclose(img.data, mf.fuse(sim.mr, sim.us, threads=1, **FUSE).x,
                               rtol=0, atol=1e-12)


def test_command_line_batch(tmp_path, capsys):
    from mrusfusion.cli import main

    manifest = _pairs_on_disk(tmp_path, n=2, nan_pair=True)
    code = main(["batch", str(manifest), "--out", str(tmp_path / "o"), "--backend", "threads",
                 "--workers", "2", "--threads", "1", "--max-iter", "15", "--tol", "0",
                 "--degree", "2"])
    assert code == 1  # one pair failed; the others are done
    out = capsys.readouterr().out
    assert "2 pair(s) fused" not in out and "broken:" in out
    np.testing.assert_allclose(np.load(tmp_path / "o" / "case1_v.npy"),
                               _direct(tmp_path, 1, degree=2).v, rtol=0, atol=1e-12)


def test_without_dask_the_error_says_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"mrusfusion\[distributed\]"):
        fuse_many([(np.ones((4, 4)), np.ones((8, 8)))], out_dir=tmp_path)
