"""The ``mrusfusion`` command, run end to end through ``python -m mrusfusion``."""
import json
import subprocess
import sys
import types

import numpy as np
import pytest

import mrusfusion
from mrusfusion import cli, io

MAX_ITER = 6
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FUSION_KEYS = {"coefficients", "weights", "weights_source", "noise", "iterations", "converged",
               "stop_reason", "message", "objective", "lipschitz", "timings", "ratio", "degree"}


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mrusfusion", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def run_without_matplotlib(*args):
    code = ("import sys; sys.modules['matplotlib'] = None; from mrusfusion.cli import main; "
            "raise SystemExit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def assert_same(actual, expected):
    """Same result as the Python API: FFTW plans measured in another process may differ in the
    last bits, so near-zero pixels get an absolute tolerance relative to the image scale."""
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())


def assert_refused(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mrusfusion: error: ")
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def pair():
    return mrusfusion.sample_pair()[:2]  # the CLI is given the two images, not the PSF


@pytest.fixture(scope="module")
def api_result(pair):
    return mrusfusion.fuse(*pair, max_iter=MAX_ITER)


@pytest.fixture(scope="module")
def demo_result(pair):
    # The demo fuses the sample pair with the blur it was simulated with.
    return mrusfusion.fuse(*pair, psf=mrusfusion.data.SAMPLE_PSF, max_iter=MAX_ITER)


@pytest.fixture
def npy_pair(tmp_path, pair):
    return io.save(tmp_path / "mr.npy", pair[0]), io.save(tmp_path / "us.npy", pair[1])


# --------------------------------------------------------------------------- version, info, help


def test_version():
    proc = run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"mrusfusion {mrusfusion.__version__}"


def test_info():
    proc = run("info")
    assert proc.returncode == 0, proc.stderr
    for word in (mrusfusion.__version__, "OpenMP", "FFT", "NumPy", "SciPy"):
        assert word in proc.stdout
    proc = run("info", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mrusfusion"] == mrusfusion.__version__


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_help_is_a_manual(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"usage: mrusfusion {command}" in out
    assert f"example:\n  mrusfusion {command}" in out
    assert len(out.splitlines()) > 10


def test_no_command_prints_usage(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_usage_error_exits_2(capsys):
    assert cli.main(["fuse", "a.npy", "b.npy", "-o", "c.npy", "--max-iter", "-1"]) == 2
    assert "--max-iter" in capsys.readouterr().err


# --------------------------------------------------------------------------- demo


def test_demo(tmp_path, demo_result):
    api_result = demo_result
    out = tmp_path / "new" / "demo"
    proc = run("demo", out, "--max-iter", MAX_ITER)
    assert proc.returncode == 0, proc.stderr
    x, v = np.load(out / "fused_x.npy"), np.load(out / "fused_v.npy")
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(v))
    assert_same(x, api_result.x)
    assert_same(v, api_result.v)
    info = json.loads((out / "fusion.json").read_text())
    assert FUSION_KEYS <= set(info)
    assert info["iterations"] == api_result.n_iter
    np.testing.assert_allclose(info["coefficients"], api_result.coeffs, rtol=1e-10)
    assert (out / "demo.png").read_bytes()[:8] == PNG_SIGNATURE

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert_refused(run("demo", out, "--max-iter", 1), "already exists", "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    proc = run("demo", out, "--max-iter", 1, "--overwrite", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert json.loads((out / "fusion.json").read_text())["iterations"] == 1


def test_demo_without_matplotlib_says_how_to_get_figures(tmp_path):
    proc = run_without_matplotlib("demo", tmp_path, "--max-iter", 1)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "mrusfusion[plot]"' in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fused_v.npy", "fused_x.npy",
                                                         "fusion.json"]


# --------------------------------------------------------------------------- fuse


def test_fuse_matches_python_api(tmp_path, npy_pair, api_result):
    mr_p, us_p = npy_pair
    proc = run("fuse", mr_p, us_p, "-o", tmp_path / "x.npy", "--us-domain", tmp_path / "v.npy",
               "--json", tmp_path / "info.json", "--report", tmp_path / "report.png",
               "--max-iter", MAX_ITER, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # --quiet, and no bar: stderr is a pipe
    x, v = np.load(tmp_path / "x.npy"), np.load(tmp_path / "v.npy")
    assert x.shape == v.shape == (256, 256)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(v))
    assert_same(x, api_result.x)
    assert_same(v, api_result.v)

    info = json.loads((tmp_path / "info.json").read_text())
    assert FUSION_KEYS <= set(info)
    assert set(info["weights"]) == {"tau1", "tau2", "tau3", "tau4", "gamma"}
    assert set(info["weights_source"].values()) == {"auto"}
    assert {"sigma_m2", "sigma_u2", "b"} <= set(info["noise"])
    assert info["ratio"] == 2 and info["ratio_source"] == "shapes"
    assert info["iterations"] == api_result.n_iter == len(info["objective"]) - 1
    np.testing.assert_allclose(info["objective"], api_result.objective, rtol=1e-10)
    np.testing.assert_allclose(info["weights"]["tau4"], api_result.tau4, rtol=1e-10)
    assert {"setup", "x_step", "v_step", "total"} <= set(info["timings"])
    assert set(info["images"]) == {"x", "v"}  # what each output carries
    assert info["coupling_share"] == pytest.approx(api_result.coupling_share, rel=1e-10)
    assert info["link_explained"] == pytest.approx(api_result.link_explained, rel=1e-10)
    assert info["degree"] == api_result.link.degree  # chosen by cross-validation
    assert (tmp_path / "report.png").read_bytes()[:8] == PNG_SIGNATURE


def test_fuse_mat_inputs_with_spacing_and_options(tmp_path, pair):
    mr, us = pair
    mr_p = io.save(tmp_path / "mr.mat", mr, spacing=(2.0, 2.0))
    us_p = io.save(tmp_path / "us.mat", us, spacing=(1.0, 1.0))
    out = tmp_path / "x.npz"
    proc = run("fuse", mr_p, us_p, "-o", out, "--json", tmp_path / "info.json", "--degree", 3,
               "--tau4", 0.05, "--gradient", "magnitude", "--max-iter", 4)
    assert proc.returncode == 0, proc.stderr
    assert "ratio 2 (from spacings)" in proc.stdout
    expected = mrusfusion.fuse(mr, us, degree=3, tau4=0.05, gradient="magnitude", max_iter=4)
    fused = io.load(out)
    assert fused.spacing == (1.0, 1.0)  # written on the US grid
    assert_same(fused.data, expected.x)
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["ratio_source"] == "spacings"
    assert info["weights_source"]["tau4"] == "user" and info["weights"]["tau4"] == 0.05
    assert info["weights_source"]["tau1"] == "auto"
    assert info["degree"] == 3 and len(info["coefficients"]) == 10


def test_fuse_crop_to_common_field_of_view(tmp_path, pair):
    mr, us = pair
    mr_p = io.save(tmp_path / "mr.npy", mr[:60, :50])
    us_p = io.save(tmp_path / "us.npy", us[:125, :131])
    out = tmp_path / "x.npy"
    proc = run("fuse", mr_p, us_p, "-o", out, "--ratio", 2, "--crop", "--max-iter", 2, "-q")
    assert proc.returncode == 0, proc.stderr
    expected = mrusfusion.fuse(mr[:60, :50], us[:120, :100], max_iter=2)
    assert_same(np.load(out), expected.x)


# --------------------------------------------------------------------------- refusals


def test_refuses_existing_output_without_overwrite(tmp_path, npy_pair):
    mr_p, us_p = npy_pair
    out = tmp_path / "x.npy"
    out.write_bytes(b"precious")
    proc = run("fuse", mr_p, us_p, "-o", out, "--max-iter", 1)
    assert_refused(proc, "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"


def test_refuses_existing_side_output_before_computing(tmp_path, npy_pair):
    mr_p, us_p = npy_pair
    report = tmp_path / "report.png"
    report.write_bytes(b"old figure")
    proc = run("fuse", mr_p, us_p, "-o", tmp_path / "x.npy", "--report", report, "--max-iter", 1)
    assert_refused(proc, "--report", "already exists")
    assert report.read_bytes() == b"old figure"
    assert not (tmp_path / "x.npy").exists()  # nothing was written: refused before computing


@pytest.mark.parametrize("spelling", ["us.npy", "sub/../us.npy"])
def test_refuses_output_equal_to_input_even_with_overwrite(tmp_path, npy_pair, spelling):
    mr_p, us_p = npy_pair
    (tmp_path / "sub").mkdir()
    before = us_p.read_bytes()
    proc = run("fuse", "mr.npy", "us.npy", "-o", spelling, "--overwrite", "--max-iter", 1,
               cwd=tmp_path)
    assert_refused(proc, "input")
    assert us_p.read_bytes() == before


def test_refuses_non_integer_shape_ratio(tmp_path, pair):
    mr, us = pair
    mr_p = io.save(tmp_path / "mr.npy", mr)
    us_p = io.save(tmp_path / "us.npy", us[:200, :200])
    out = tmp_path / "x.npy"
    proc = run("fuse", mr_p, us_p, "-o", out, "--max-iter", 1)
    assert_refused(proc, "integer", "--crop")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mr.npy", "us.npy"]  # no temp files


def test_refuses_non_integer_spacing_ratio(tmp_path, npy_pair):
    mr_p, us_p = npy_pair
    proc = run("fuse", mr_p, us_p, "-o", tmp_path / "x.npy", "--mr-spacing", 1, 1,
               "--us-spacing", 0.3, 0.3)
    assert_refused(proc, "--resample-us")


def test_missing_input_is_one_line(tmp_path, npy_pair):
    mr_p, _ = npy_pair
    proc = run("fuse", mr_p, tmp_path / "nope.npy", "-o", tmp_path / "x.npy")
    assert_refused(proc, "nope.npy")


# --------------------------------------------------------------------------- simulate


def test_simulate(tmp_path):
    out = tmp_path / "sim"
    proc = run("simulate", out, "--shape", 64, 48, "--ratio", 2, "--seed", 3)
    assert proc.returncode == 0, proc.stderr
    sim = mrusfusion.simulate(mrusfusion.phantom((64, 48)), 2, mr_snr_db=20.73, us_snr_db=13.80,
                              seed=3)
    for name in ("mr", "us", "mr_true", "us_true"):
        np.testing.assert_array_equal(np.load(out / f"{name}.npy"), getattr(sim, name))
    info = json.loads((out / "simulation.json").read_text())
    assert info["ratio"] == 2 and info["seed"] == 3 and info["mr_shape"] == [32, 24]
    np.testing.assert_allclose(info["us_snr_db"], 13.80, atol=1e-9)

    before = (out / "mr.npy").read_bytes()
    assert_refused(run("simulate", out, "--shape", 64, 48, "--seed", 4), "already exists")
    assert (out / "mr.npy").read_bytes() == before


# --------------------------------------------------------------------------- extension hooks


def test_external_command_hook(monkeypatch, capsys):
    module = types.ModuleType("mrusfusion_fake_ext")

    def add_parser(subparsers):
        p = subparsers.add_parser("hello", help="say hello")
        p.add_argument("--name", default="world")
        p.set_defaults(func=lambda args: print(f"hello {args.name}") or 7)
        return p

    module.add_parser = add_parser
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(cli.registry, "EXTERNAL_COMMANDS",
                        {"hello": module.__name__, "absent": "mrusfusion_no_such_module_xyz"})
    assert cli.main(["hello", "--name", "PALM"]) == 7
    assert capsys.readouterr().out == "hello PALM\n"
    assert cli.main(["absent"]) == 2  # a missing module is skipped: no such command


def test_external_command_broken_import_is_not_hidden(monkeypatch, tmp_path):
    (tmp_path / "mrusfusion_broken_ext.py").write_text("import mrusfusion_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli.registry, "EXTERNAL_COMMANDS", {"broken": "mrusfusion_broken_ext"})
    with pytest.raises(ModuleNotFoundError, match="mrusfusion_missing_dependency_xyz"):
        cli.main(["info"])


def test_user_errors_are_one_line_in_process(tmp_path, capsys):
    assert cli.main(["fuse", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"),
                     "-o", str(tmp_path / "c.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mrusfusion: error: no such file") and err.count("\n") == 1


def test_the_library_never_imports_the_command_line():
    # The command line is the top floor: the experiments and every other module stand without it.
    code = ("import pkgutil, sys, mrusfusion, mrusfusion.experiments\n"
            "for pkg in (mrusfusion, mrusfusion.experiments):\n"
            "    for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + '.'):\n"
            "        if m.name not in ('mrusfusion.cli', 'mrusfusion.__main__'):\n"
            "            __import__(m.name)\n"
            "print(sorted(n for n in sys.modules if n.startswith('mrusfusion.cli')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert {"info", "demo", "fuse", "register", "simulate", "reproduce", "sweep", "batch",
            "bench"} == set(cli.COMMANDS)
    for module in cli.COMMANDS.values():
        assert callable(module.add_parser) and callable(module.run)


def test_fuse_register_records_the_transform(tmp_path):
    from scipy import ndimage

    sim = mrusfusion.simulate(mrusfusion.phantom((64, 64)), 2, seed=0)
    moved = ndimage.shift(sim.us, (3.0, -2.0), order=3, mode="nearest")
    np.save(tmp_path / "mr.npy", sim.mr)
    np.save(tmp_path / "us.npy", moved)
    proc = run("fuse", tmp_path / "mr.npy", tmp_path / "us.npy", "-o", tmp_path / "x.npy",
               "--register", "translation", "--max-iter", 5, "--json", tmp_path / "f.json", "-q")
    assert proc.returncode == 0, proc.stderr
    reg = json.loads((tmp_path / "f.json").read_text())["registration"]
    assert reg["transform"] == "translation"
    np.testing.assert_allclose(np.array(reg["matrix"])[:2, 2], [3.0, -2.0], atol=0.5)
    expected = mrusfusion.fuse(sim.mr, moved, register="translation", max_iter=5)
    assert_same(np.load(tmp_path / "x.npy"), expected.x)
