"""Persistent FFTW wisdom: measured once, recalled by later processes, never a source of errors.

Every test points the wisdom file at a temporary folder (conftest.py turns it off for the rest of
the suite), so the user's own cache is never read or written.
"""
import doctest
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pyfftw
import pytest

from mrusfusion import wisdom
from mrusfusion.fourier import FourierProblem
from mrusfusion.operators import gaussian_psf

# One process: plan MEASURE for each size given, transform a fixed image, report.
SCRIPT = r"""
import json, sys
import numpy as np
from mrusfusion import wisdom
from mrusfusion.fourier import FourierProblem
out = {}
for n1, n2 in json.loads(sys.argv[1]):
    fp = FourierProblem((n1, n2), 1, np.ones((1, 1)), np.float64, 1, None, "FFTW_MEASURE")
    x = np.random.default_rng(0).random((n1, n2))
    out[f"{n1}x{n2}"] = fp.forward(x).tobytes().hex()
s = wisdom.status()
print(json.dumps({"spectra": out, "path": None if s.path is None else str(s.path),
                  "loaded": s.loaded, "imported": s.imported, "imported_bytes": s.imported_bytes,
                  "learnt": s.learnt, "saved": s.saved, "message": s.message}))
"""


def _run(env, shapes=((24, 20),)):
    full = {k: v for k, v in os.environ.items() if k != wisdom.ENV_VAR}
    full.update(env)
    # Python's own warnings become errors, as under pytest: no process may warn here.
    proc = subprocess.run([sys.executable, "-W", "error", "-c", SCRIPT, json.dumps(shapes)],
                          env=full, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """This process's wisdom forgotten before and after, and the file in ``tmp_path``."""
    path = tmp_path / "wisdom.json"
    monkeypatch.setenv(wisdom.ENV_VAR, str(path))
    wisdom.forget()
    yield path
    wisdom.forget()


def _measure(shape=(24, 20), threads=1):
    fp = FourierProblem(shape, 1, np.ones((1, 1)), np.float64, threads, None, "FFTW_MEASURE")
    x = np.random.default_rng(1).random(shape)
    np.testing.assert_allclose(fp.inverse(fp.forward(x)), x, atol=1e-13)
    return fp


def test_second_process_recalls_the_measured_plan(tmp_path):
    env = {wisdom.ENV_VAR: str(tmp_path / "w.json")}
    first = _run(env)
    assert not first["loaded"] and first["learnt"] == 1 and first["saved"] == 1
    saved = (tmp_path / "w.json").read_bytes()
    doc = json.loads(saved)
    (entry,) = doc["machines"].values()
    second = _run(env)
    # The file's wisdom went in whole, and planning added none: the plan was recalled.
    assert second["loaded"] and second["imported"][:2] == [True, True]
    assert second["imported_bytes"] == sum(len(entry[p])
                                           for p in ("double", "single", "long double"))
    assert second["learnt"] == 0 and second["saved"] == 0
    assert (tmp_path / "w.json").read_bytes() == saved
    # Same algorithm, so the same bits.
    assert second["spectra"] == first["spectra"]


def test_processes_merge_what_the_others_saved(tmp_path):
    env = {wisdom.ENV_VAR: str(tmp_path / "w.json")}
    assert _run(env, [(24, 20)])["learnt"] == 1
    assert _run(env, [(18, 30)])["learnt"] == 1
    both = _run(env, [(24, 20), (18, 30)])
    assert both["loaded"] and both["learnt"] == 0


def test_concurrent_processes_leave_a_valid_file(tmp_path):
    path = tmp_path / "w.json"
    env = dict(os.environ, **{wisdom.ENV_VAR: str(path)})
    procs = [subprocess.Popen([sys.executable, "-W", "error", "-c", SCRIPT, json.dumps([shape])],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for shape in [(24, 20), (18, 30), (16, 16)]]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert not [f for f in tmp_path.iterdir() if f.name != "w.json"]  # no temporary file left
    later = _run({wisdom.ENV_VAR: str(path)}, [(24, 20), (18, 30), (16, 16)])
    # The file is whole: FFTW imports it (a lost race may only cost a plan measured again).
    assert later["loaded"] and later["imported"][:2] == [True, True]


def test_default_file_is_in_the_user_cache_folder(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("XDG_CACHE_HOME steers the cache folder on Linux only")
    out = _run({"XDG_CACHE_HOME": str(tmp_path)})
    assert out["path"] == str(tmp_path / "mrusfusion" / wisdom.FILE_NAME)
    assert out["saved"] == 1 and (tmp_path / "mrusfusion" / wisdom.FILE_NAME).is_file()


@pytest.mark.parametrize("value", ["0", "off", "FALSE", "no"])
def test_environment_variable_turns_persistence_off(tmp_path, value):
    path = tmp_path / "mrusfusion" / wisdom.FILE_NAME
    path.parent.mkdir()
    path.write_text("not wisdom")  # would warn if it were read
    out = _run({wisdom.ENV_VAR: value, "XDG_CACHE_HOME": str(tmp_path)})
    assert out["path"] is None and not out["loaded"] and out["saved"] == 0
    assert out["learnt"] == 1  # planned in memory all the same
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["fftw-wisdom.json", "mrusfusion"]
    assert path.read_text() == "not wisdom"


def test_without_platformdirs_the_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(wisdom.ENV_VAR)
    monkeypatch.setitem(sys.modules, "platformdirs", None)  # import fails
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert wisdom.wisdom_path() == tmp_path / "mrusfusion" / wisdom.FILE_NAME
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path))
    assert wisdom.wisdom_path() == tmp_path / ".cache" / "mrusfusion" / wisdom.FILE_NAME
    monkeypatch.setattr(sys, "platform", "darwin")
    assert wisdom.wisdom_path() is None


def test_with_platformdirs_the_folder_is_its_cache_folder(monkeypatch):
    platformdirs = pytest.importorskip("platformdirs")
    monkeypatch.delenv(wisdom.ENV_VAR)
    expected = platformdirs.user_cache_dir("mrusfusion", appauthor=False)
    assert wisdom.wisdom_path() == type(wisdom.wisdom_path())(expected) / wisdom.FILE_NAME


def _foreign_fftw_entry(path):
    """A well-formed file whose entry for this machine comes from another FFTW build."""
    key, about = wisdom._machine_key()
    text = [w.decode() for w in pyfftw.export_wisdom()]
    entry = {p: re.sub(r"fftw_wisdom #x[0-9a-f]+", "fftw_wisdom #x12345678", t, count=1)
             for p, t in zip(("double", "single", "long double"), text)}
    path.write_text(json.dumps({"format": wisdom._FORMAT,
                                "machines": {key: dict(entry, about=about)}}))


BAD_FILES = {
    "garbage": lambda p: p.write_bytes(b"\x00\xff garbage \x9c"),
    "truncated": lambda p: p.write_text('{"format": "mrusfusion FFTW wisdom 1", "machines": {"ab'),
    "plain FFTW wisdom": lambda p: p.write_bytes(pyfftw.export_wisdom()[0]),
    "other FFTW build": _foreign_fftw_entry,
    "malformed entry": lambda p: p.write_text(json.dumps(
        {"format": wisdom._FORMAT, "machines": {wisdom._machine_key()[0]: {"double": 3}}})),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_warns_and_is_replaced(fresh, kind):
    BAD_FILES[kind](fresh)
    with pytest.warns(RuntimeWarning, match="ignores the FFTW wisdom file .* replaced when"):
        _measure()
    s = wisdom.status()
    assert not s.loaded and s.learnt == 1 and s.saved == 1
    doc = json.loads(fresh.read_text())  # healed: a valid file FFTW accepts
    (entry,) = doc["machines"].values()
    pyfftw.forget_wisdom()
    imported = pyfftw.import_wisdom(tuple(entry[p].encode() for p in ("double", "single")) + (b"",))
    assert imported[:2] == (True, True)
    pyfftw.forget_wisdom()


def test_a_folder_that_cannot_be_created_warns_once(fresh, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(wisdom.ENV_VAR, str(blocker / "wisdom.json"))
    with pytest.warns(RuntimeWarning, match="could not save FFTW wisdom"):
        _measure((24, 20))
    _measure((18, 30))  # learnt again, but no second warning (filterwarnings=error)
    s = wisdom.status()
    assert s.learnt == 2 and s.saved == 0


def test_estimate_plans_ignore_measured_wisdom(fresh):
    shape = (96, 80)
    x = np.random.default_rng(2).random(shape)

    def estimate():
        fp = FourierProblem(shape, 1, np.ones((1, 1)), np.float64, 1, None, "FFTW_ESTIMATE")
        return fp.forward(x)

    before = estimate()
    _measure(shape)
    pyfftw.import_wisdom(wisdom._STORE.memory)  # even measured wisdom left in FFTW by a user
    np.testing.assert_array_equal(estimate(), before)
    pyfftw.forget_wisdom()


def test_global_wisdom_is_left_as_found(fresh):
    pyfftw.forget_wisdom()
    a = pyfftw.empty_aligned((12, 10))
    pyfftw.FFTW(a, pyfftw.empty_aligned((12, 6), dtype=np.complex128), axes=(0, 1),
                flags=("FFTW_MEASURE",))
    users = pyfftw.export_wisdom()
    _measure((24, 20))
    FourierProblem((16, 16), 2, gaussian_psf(3, 1.0), np.float32, 1, None, "FFTW_ESTIMATE")
    assert pyfftw.export_wisdom() == users
    pyfftw.forget_wisdom()


def test_same_process_recalls_its_own_plans(fresh):
    _measure((24, 20))
    _measure((24, 20))
    _measure((24, 20), threads=2)  # another thread count is another plan
    assert wisdom.status().learnt == 2 and wisdom.status().saved == 2


def test_threads_plan_concurrently(fresh):
    errors = []

    def work(shape):
        try:
            for _ in range(3):
                _measure(shape)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in [(24, 20), (18, 30)] * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert wisdom.status().learnt == 2  # each size measured once, then recalled


def test_disabled_measures_as_a_first_run_and_keeps_nothing(fresh):
    _measure((24, 20))
    saved = fresh.read_bytes()
    with wisdom.disabled():
        assert wisdom.wisdom_path() is None
        _measure((24, 20))
        assert wisdom.status().learnt == 1  # measured again, not recalled
        _measure((18, 30))
    assert os.environ[wisdom.ENV_VAR] == str(fresh)
    assert fresh.read_bytes() == saved and wisdom.status().learnt == 0
    _measure((24, 20))
    assert wisdom.status().loaded and wisdom.status().learnt == 0  # the file's plan recalled


def test_docstring_examples(monkeypatch):
    monkeypatch.setenv(wisdom.ENV_VAR, "0")
    result = doctest.testmod(wisdom, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
