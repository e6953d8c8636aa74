"""Smoke test of an installed wheel (cibuildwheel's test command, and tools/wheel.sh):
the compiled core loads and reports its build, and a short fusion of the bundled pair runs
with a non-increasing objective."""
import os

import numpy as np

os.environ.setdefault("MRUSFUSION_WISDOM", "0")
import mrusfusion as mf  # noqa: E402

mf.show_config()
res = mf.fuse(*mf.sample_pair(), max_iter=20)
assert np.isfinite(res.x).all() and np.isfinite(res.v).all()
assert np.all(np.diff(res.objective) <= 1e-9 * abs(res.objective[0])), res.objective
print(f"wheel smoke test: {res.message}; x {res.x.shape} from {mf.__file__}")
