"""One test per defect of the adversarial battery (issue 19), each failing before its fix."""
import numpy as np
import pytest

import mrusfusion as mf
from mrusfusion._config import max_threads


def _mr(dtype=np.float64, n=16):
    return np.random.default_rng(0).random((n, n)).astype(dtype) + 0.1


@pytest.mark.parametrize("kw", [{"tau": 1e39}, {"ridge": 1e-39}, {"tau": 3e38}])
def test_super_resolve_float32_extreme_weights_raise_not_nan(kw):
    # Item 1: tau >= 3e38 or ridge <= 1e-38 gave an all-NaN float32 image.
    with pytest.raises(ValueError, match="`tau`|`ridge`"):
        mf.super_resolve(_mr(np.float32), 2, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_at_the_bounds_give_finite_float32_and_float64(dtype):
    out = mf.super_resolve(_mr(dtype), 2, tau=1e12)
    assert out.dtype == dtype and np.isfinite(out).all()
    out = mf.super_resolve(_mr(dtype), 2, ridge=1e-10)
    assert np.isfinite(out).all()


def test_values_near_the_float_maximum_are_refused_not_inf():
    # Item 2: the normalised result overshoots 1 and scaling back overflowed to inf.
    m = np.zeros((16, 16))
    m[4:12, 4:12] = 1.7e308
    with pytest.raises(ValueError, match="`mr` has values up to"):
        mf.super_resolve(m, 2)
    us = np.ones((32, 32))
    with pytest.raises(ValueError, match="`mr` has values up to"):
        mf.fuse(m, us, max_iter=1)


def test_large_but_representable_values_scale_back_finite():
    m = np.zeros((16, 16))
    m[4:12, 4:12] = 1e300
    out = mf.super_resolve(m, 2)
    assert np.isfinite(out).all()
    # the method is scale-invariant: same result as on the unit-scale image, scaled
    ref = mf.super_resolve(m / 1e300, 2)
    np.testing.assert_allclose(out / 1e300, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kw,match", [
    ({"tau2": 1.0, "tau3": 1e300}, "`tau3` must be at most"),
    ({"gamma": 1e300}, "`gamma` must be between"),
    ({"gamma": 1e-300}, "`gamma` must be between"),
    ({"tau2": 1e-300}, "`tau2` must be at least"),
])
def test_despeckle_has_the_weight_bounds_of_fuse(kw, match):
    # Item 3: despeckle accepted any weight (tau3=1e300 returned u unchanged).
    u = _mr()
    with pytest.raises(ValueError, match=match):
        mf.despeckle(u, **kw)
    mr = _mr(n=8)
    with pytest.raises(ValueError, match=match.replace("`tau3` must be at most",
                                                       "`tau3` must be at most")):
        mf.fuse(mr, u, max_iter=1, **kw)


@pytest.mark.parametrize("tol,exc", [(-1, ValueError), (float("nan"), ValueError),
                                     (float("inf"), ValueError), (0.0, ValueError),
                                     (1.0, ValueError), ("abc", TypeError)])
def test_despeckle_validates_tol(tol, exc):
    # Item 4.
    with pytest.raises(exc, match="`tol`"):
        mf.despeckle(_mr(), tol=tol)


@pytest.mark.parametrize("threads", [10000, 2**31, max_threads() + 1])
def test_threads_above_the_cap_are_refused(threads):
    # Items 5 and 7: 10000 threads took 18 s per iteration; 2**31 gave pyFFTW's message.
    mr = _mr(n=16)
    us = np.kron(mr, np.ones((2, 2)))
    with pytest.raises(ValueError, match="`threads` must be at most"):
        mf.fuse(mr, us, threads=threads, max_iter=1)
    with pytest.raises(ValueError, match="`threads` must be at most"):
        mf.super_resolve(mr, 2, threads=threads)


def test_threads_at_the_cap_are_accepted():
    mr = _mr(n=8)
    assert np.isfinite(mf.super_resolve(mr, 2, threads=max_threads())).all()


def test_huge_ratio_is_refused_with_a_clear_message():
    # Item 7: "Python int too large to convert to C long".
    with pytest.raises(ValueError, match="`ratio`"):
        mf.super_resolve(np.ones((2, 2)), 2**62)
    with pytest.raises(ValueError, match="`ratio`"):
        mf.super_resolve(np.ones((2, 2)), 2**40)


def test_a_single_outlier_pixel_gets_a_clear_message():
    # Item 7: one 1e300 pixel gave "is the MR image constant or nearly so?".
    mr = _mr(n=16)
    mr[3, 3] = 1e300
    us = np.kron(_mr(n=16), np.ones((2, 2)))
    with pytest.raises(ValueError, match="outlier"):
        mf.fuse(mr, us, max_iter=1)
