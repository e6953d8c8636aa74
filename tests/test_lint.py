"""The linter and the type check of the public API, run as part of the suite (issue 13).

Both read their configuration from pyproject.toml (``[tool.ruff]``, ``[tool.mypy]``); the ``test``
extra installs them, so in CI (``pip install ".[test]" && python -m pytest tests``) neither test
can be skipped. Outside CI a missing tool skips its test.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install '.[test]')")
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not run from a source checkout")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                          text=True, check=False)


def test_ruff_is_clean():
    res = _run("ruff", "check", "--no-cache", "python", "tests", "bench")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_is_clean(tmp_path):
    # A fresh cache under pytest's tmp: no stale state, nothing written into the checkout.
    res = _run("mypy", "--cache-dir", str(tmp_path / "mypy_cache"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success" in res.stdout
