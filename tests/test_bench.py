"""The benchmark suite runs end to end and writes a complete record (no timing is asserted:
speed is measured in bench/, never by a test)."""
import json

from mrusfusion.experiments import bench


def test_benchmark_record_is_complete(tmp_path):
    rec = bench.run_benchmark((48,), iters=2, dtypes=("float64",), converge_max_size=48,
                              numpy_max_size=48, out_dir=str(tmp_path), log=lambda *_: None)
    on_disk = json.loads((tmp_path / "bench.json").read_text())
    assert on_disk["rows"] and on_disk["convergence"] and on_disk["kernels"]
    for row in rec["rows"]:
        assert row["iter_ms"] > 0 and row["fft_pairs"] > 0
    row1 = [r for r in rec["rows"] if r["threads"] == 1][0]
    # The NumPy twins ran the same iterations: same answer to 1e-8.
    assert row1["max_abs_diff_vs_numpy"] < 1e-8
    conv = rec["convergence"][0]
    assert conv["objective_rel_diff"] <= 1e-6 and conv["default"]["converged"]
    assert set(rec["kernels"]) >= {"vstep_eval (value, gradient)", "axpby (with norm)"}
    md = (tmp_path / "bench.md").read_text()
    assert "| size |" in md and "fuse() with its defaults" in md
    ll = rec["local_link"]
    assert ll["local_over_global"] == ll["local_ms"] / ll["global_ms"] > 0
    assert "local link" in md
    cases = [r["case"] for r in rec["realistic"]]
    assert len(cases) == 3 and all(r["fft_pairs"] > 0 and r["iterations"] >= 1
                                   for r in rec["realistic"])
    assert "Realistic cases" in md


def test_interleaved_measurement_returns_each_case():
    from mrusfusion import simulate, phantom

    sim = simulate(phantom((32, 32)), 2, seed=0)
    out = bench.interleaved_iteration_ms({"a": (sim.mr, sim.us), "b": (sim.mr, sim.us)}, 3, 1,
                                         rounds=2)
    assert set(out) == {"a", "b"} and all(v > 0 for v in out.values())
