"""The compiled extension: build report, array round trip, argument checks, thread setting."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mrusfusion
from mrusfusion import _core
from mrusfusion._config import get_num_threads, set_num_threads


def test_build_info_reports_compiler_and_openmp():
    info = _core.build_info()
    assert info["version"] == mrusfusion.__version__
    assert info["compiler"] and isinstance(info["openmp"], bool)
    cfg = mrusfusion._config.config()
    for key in ("mrusfusion", "compiler", "cxx_flags", "openmp", "threads", "fft_backend",
                "fft_version", "numpy", "scipy"):
        assert key in cfg


def test_show_config_prints(capsys):
    mrusfusion.show_config()
    out = capsys.readouterr().out
    assert "OpenMP" in out and "pyFFTW" in out and mrusfusion.__version__ in out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["c", "f", "strided"])
def test_roundtrip(dtype, layout, rng):
    base = rng.random((13, 22)).astype(dtype)
    x = {"c": base, "f": np.asfortranarray(base), "strided": base[::2, ::3]}[layout]
    y = _core.roundtrip(x, 2)
    assert y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_array_equal(y, x)


def test_roundtrip_rejects_wrong_dtype_and_shape():
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.roundtrip(np.zeros((3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        _core.roundtrip(np.zeros((3, 3, 3, 3)))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        _core.roundtrip(np.zeros(3))
    with pytest.raises(TypeError, match="NumPy array"):
        _core.roundtrip([[1.0, 2.0]])


def test_output_checks():
    x = np.zeros((4, 5))
    with pytest.raises(ValueError, match="shape"):
        _core.gradient(x, 0, (1.0, 0.0), 0.0, np.zeros((5, 4)), 1)
    with pytest.raises(TypeError, match="float64"):
        _core.gradient(x, 0, (1.0, 0.0), 0.0, np.zeros((4, 5), np.float32), 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.gradient(x, 0, (1.0, 0.0), 0.0, np.zeros((5, 4)).T, 1)
    ro = np.zeros((4, 5))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.gradient(x, 0, (1.0, 0.0), 0.0, ro, 1)


def test_arguments_are_checked_once_per_call():
    x, out = np.zeros((4, 5)), np.zeros((4, 5))
    with pytest.raises(ValueError, match="`b` is required"):
        _core.dot(x, None)
    with pytest.raises(TypeError, match="`a_px` must be a NumPy array or None, got list"):
        _core.dtd_apply(x, [[0.0]], 1.0, 1.0, out)
    with pytest.raises(TypeError, match="`b` must have dtype float64"):
        _core.dot(x, x.astype(np.float32))
    with pytest.raises(TypeError,
                       match="`Rm` must have dtype complex64 or complex128, got float64"):
        _core.xstep_solve(x, None, None, x, x, 8, 1, 0.0, 1.0, x, out)
    with pytest.raises(ValueError, match="`coeffs` must have shape \\(6,\\) for degree 2"):
        _core.coupling_eval(x, np.zeros(3), 2, 0, (1.0, 0.0), 0.0)
    with pytest.raises(ValueError, match="`w2` is required"):
        _core.jacobian_transpose(x, x, None, None, x, x, 1, (1.0, 0.0), 1e-3, 1.0, out.copy(), None,
                                 out)


def test_outputs_must_not_overlap_inputs():
    x = np.arange(20.0).reshape(4, 5)
    big = np.zeros((8, 5))
    # A stencil kernel reads neighbours that it would already have overwritten.
    with pytest.raises(ValueError, match="`out` must not overlap `x`"):
        _core.gradient(x, 0, (1.0, 0.0), 0.0, x, 1)
    with pytest.raises(ValueError, match="`fx` must not overlap `f`"):
        _core.coupling_eval(x, np.ones(3), 1, 0, (1.0, 0.0), 0.0, None, None, big[:4], big[:4],
                            None)
    # Elementwise kernels may write over an input, but not over a shifted copy of one.
    y = x.copy()
    assert _core.axpby(y, x, 2.0, -1.0, y) == pytest.approx(np.sum(x * x))
    np.testing.assert_array_equal(y, x)
    big[:4] = x
    with pytest.raises(ValueError, match="`out` may be `a` itself but must not partly overlap it"):
        _core.axpby(big[:4], x, 1.0, 0.0, big[2:6])
    # An input that was not contiguous is read from a private copy, so it cannot overlap.
    f = np.zeros((5, 4)).T
    _core.prox_target(f, x, None, 0.5, np.zeros((4, 5)))


def _runtime_parameters(fn):
    """Names of a pybind11 function's parameters, and which have defaults, from its signature."""
    head = fn.__doc__.splitlines()[0]  # "name(a: type, b: type = 1) -> type"
    params = re.split(r", (?=\w+: )", head[head.index("(") + 1: head.rindex(") ->")])
    return [(p.split(":")[0], " = " in p) for p in params if p]


def test_stub_names_exactly_what_core_exports():
    stub = Path(mrusfusion.__file__).with_name("_core.pyi")
    tree = ast.parse(stub.read_text())
    stubbed = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    exported = {n for n in dir(_core) if not n.startswith("_")}
    assert set(stubbed) == exported
    for name, node in stubbed.items():
        args = node.args.args
        first_default = len(args) - len(node.args.defaults)
        assert [(a.arg, k >= first_default) for k, a in enumerate(args)] == \
            _runtime_parameters(getattr(_core, name)), name


def test_thread_setting(monkeypatch):
    monkeypatch.setenv("MRUSFUSION_NUM_THREADS", "3")
    assert get_num_threads() == 3
    assert get_num_threads(1) == 1
    set_num_threads(2)
    try:
        assert get_num_threads() == 2
    finally:
        set_num_threads(None)
    monkeypatch.setenv("MRUSFUSION_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="MRUSFUSION_NUM_THREADS"):
        get_num_threads()
    with pytest.raises(ValueError, match="threads"):
        get_num_threads(0)


def test_automatic_threads_follow_the_problem_size(monkeypatch):
    from mrusfusion import _config

    monkeypatch.delenv("MRUSFUSION_NUM_THREADS", raising=False)
    monkeypatch.setattr(_config, "_available_cores", lambda: 8)
    per = _config.PIXELS_PER_THREAD
    assert get_num_threads() == 8
    assert get_num_threads(pixels=64 * 64) == 1
    assert get_num_threads(pixels=3 * per) == 3
    assert get_num_threads(pixels=100 * per) == 8
    # An explicit request, set_num_threads and the environment are obeyed whatever the size.
    assert get_num_threads(4, pixels=16) == 4
    monkeypatch.setenv("MRUSFUSION_NUM_THREADS", "2")
    assert get_num_threads(pixels=16) == 2


def test_env_threads_reach_show_config():
    env = dict(os.environ, MRUSFUSION_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", "import mrusfusion; mrusfusion.show_config()"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert "1 thread(s) [MRUSFUSION_NUM_THREADS]" in out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_thread_count(dtype):
    sim = mrusfusion.simulate(mrusfusion.phantom((48, 64)), 2, seed=3)
    mr, us = sim.mr.astype(dtype), sim.us.astype(dtype)
    r1 = mrusfusion.fuse(mr, us, max_iter=8, threads=1, planner_effort="FFTW_ESTIMATE")
    r2 = mrusfusion.fuse(mr, us, max_iter=8, threads=2, planner_effort="FFTW_ESTIMATE")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(r1.x, r2.x, rtol=0, atol=tol * np.abs(r1.x).max())
    np.testing.assert_allclose(r1.v, r2.v, rtol=0, atol=tol * np.abs(r1.v).max())
    np.testing.assert_allclose(r1.objective, r2.objective, rtol=tol)
