import os

import numpy as np
import pytest
from scipy import ndimage

# No test reads or writes the user's FFTW wisdom file; tests/test_wisdom.py points it elsewhere.
os.environ["MRUSFUSION_WISDOM"] = "0"


def smooth_image(shape, seed=0, sigma=2.0, dtype=np.float64):
    """A smooth random image in [0, 1] (well-posed for polynomial fits)."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random(shape), sigma, mode="wrap")
    x = (x - x.min()) / (x.max() - x.min())
    return x.astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


SHAPES = [(16, 16), (15, 21), (8, 7)]
DTYPES = [np.float32, np.float64]


def tol_for(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
