"""fuse, super_resolve and despeckle on volumes and anisotropic grids (issue 15, DESIGN.md 11):
the objective decreases in 3-D in float32 and float64 with a cone-shaped mask and per-axis
ratios, the cubic start and the decimation per axis, GCV and the noise scale in 3-D, and bad
input named in the message."""
import numpy as np
import pytest
from scipy import ndimage

import mrusfusion as mf
from mrusfusion.operators import Blur, Decimation, bicubic_upsample, gaussian_psf
from mrusfusion.fourier import FourierProblem
from mrusfusion.weights import gcv_tau1, us_noise_scale

SHAPE = (16, 16, 8)


def _volume(shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random(shape), 2.0, mode="wrap")
    return (x - x.min()) / (x.max() - x.min())


def _pair(ratio=(2, 2, 2), seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = _volume(seed=seed)
    psf = gaussian_psf(5, 1.0, ndim=3)
    ym = Decimation(ratio).apply(Blur(psf, SHAPE).apply(x))
    ym = ym + 0.01 * rng.standard_normal(ym.shape)
    us = 0.2 + x + np.abs(np.gradient(x, axis=1)) + 0.05 * np.log(rng.rayleigh(size=SHAPE))
    return ym.astype(dtype), us.astype(dtype), psf


def _cone(shape=SHAPE):
    """A fan-shaped field of view: a cone opening down axis 1 from the top of the volume."""
    i0, i1, i2 = np.indices(shape)
    c0, c2 = (shape[0] - 1) / 2, (shape[2] - 1) / 2
    return np.hypot((i0 - c0) / shape[0], (i2 - c2) / shape[2]) <= 0.15 + 0.4 * i1 / shape[1]


def _monotone(obj, rel):
    return bool(np.all(np.diff(obj) <= rel * abs(obj[0])))


@pytest.mark.parametrize("dtype, rel", [(np.float64, 1e-9), (np.float32, 1e-5)])
def test_fuse_volume_psi_monotone_with_cone_mask(dtype, rel):
    ym, us, psf = _pair(dtype=dtype)
    mask = _cone()
    res = mf.fuse(ym, us, psf, max_iter=15, mask=mask, spacing=(1.0, 1.0, 2.0))
    assert res.x.shape == SHAPE and res.v.shape == SHAPE
    assert res.x.dtype == dtype and res.v.dtype == dtype
    assert np.isfinite(res.x).all() and np.isfinite(res.v).all()
    assert res.n_iter >= 2
    assert _monotone(res.objective, rel)
    assert res.ratio == 2


def test_fuse_volume_per_axis_ratio_inferred_and_magnitude():
    rng = np.random.default_rng(1)
    x = _volume(seed=1)
    psf = gaussian_psf(3, 1.0, ndim=3)
    ym = Decimation((2, 4, 1)).apply(Blur(psf, SHAPE).apply(x)) + 0.01 * rng.random((8, 4, 8))
    us = 0.2 + x + 0.05 * np.log(rng.rayleigh(size=SHAPE))
    res = mf.fuse(ym, us, psf, gradient="magnitude", max_iter=10)
    assert res.ratio == (2, 4, 1)
    assert _monotone(res.objective, 1e-9)
    # The MR data term: x reproduces the observation through S C about as well as the start.
    fit = Decimation((2, 4, 1)).apply(Blur(psf, SHAPE).apply(res.x))
    start = Decimation((2, 4, 1)).apply(Blur(psf, SHAPE).apply(res.x_init))
    assert np.linalg.norm(fit - ym) <= 1.5 * np.linalg.norm(start - ym) + 1e-12


def test_fuse_2d_per_axis_ratio():
    rng = np.random.default_rng(2)
    x = _volume((32, 16), seed=2)
    psf = gaussian_psf(5, 1.0)
    ym = Decimation((4, 1)).apply(Blur(psf, x.shape).apply(x)) + 0.01 * rng.random((8, 16))
    us = 0.2 + x + 0.05 * np.log(rng.rayleigh(size=x.shape))
    res = mf.fuse(ym, us, psf, max_iter=10, spacing=(0.5, 1.0))
    assert res.ratio == (4, 1) and res.x.shape == x.shape
    assert _monotone(res.objective, 1e-9)


def test_isotropic_spacing_changes_nothing():
    ym, us, psf = _pair()
    a = mf.fuse(ym, us, psf, max_iter=5)
    b = mf.fuse(ym, us, psf, max_iter=5, spacing=0.7)
    np.testing.assert_array_equal(a.x, b.x)


def test_baselines_on_volumes():
    ym, us, psf = _pair(ratio=(2, 2, 1))
    sr = mf.super_resolve(ym, (2, 2, 1), psf=psf, spacing=(1.0, 1.0, 3.0))
    assert sr.shape == SHAPE and np.isfinite(sr).all()
    # the closed form reproduces the observation through S C up to the smoothing
    assert np.linalg.norm(Decimation((2, 2, 1)).apply(Blur(psf, SHAPE).apply(sr)) - ym) < \
        np.linalg.norm(ym)
    v = mf.despeckle(us)
    assert v.shape == SHAPE and np.isfinite(v).all()
    assert np.std(np.diff(v, axis=2)) < np.std(np.diff(us, axis=2))


@pytest.mark.parametrize("ratio", [(2, 2, 2), (2, 4, 1)])
def test_cubic_start_interpolates_per_axis(ratio):
    y = np.random.default_rng(0).random(tuple(n // r for n, r in zip(SHAPE, ratio)))
    up = bicubic_upsample(y, ratio)
    assert up.shape == SHAPE
    np.testing.assert_allclose(Decimation(ratio).apply(up), y, atol=1e-12)


def test_decimation_adjoint_per_axis():
    rng = np.random.default_rng(0)
    S = Decimation((2, 4, 1))
    x, y = rng.random(SHAPE), rng.random((8, 4, 8))
    assert float(np.sum(S.apply(x) * y)) == pytest.approx(float(np.sum(x * S.adjoint(y))))


def test_gcv_in_3d_recovers_the_noise_level():
    rng = np.random.default_rng(5)
    shape, ratio, sigma = (32, 32, 16), (2, 2, 2), 0.05
    x = _volume(shape, seed=5)
    psf = gaussian_psf(5, 1.5, ndim=3)
    ym = Decimation(ratio).apply(Blur(psf, shape).apply(x))
    ym = ym + sigma * rng.standard_normal(ym.shape)
    fp = FourierProblem(shape, ratio, psf)
    tau1, sigma_m2 = gcv_tau1(ym, ratio, fp.abs_lam2)
    assert tau1 > 0
    assert sigma_m2 == pytest.approx(sigma**2, rel=0.2)


def test_haar_noise_scale_in_3d():
    rng = np.random.default_rng(6)
    y = 0.5 + 0.1 * np.log(rng.rayleigh(size=(32, 32, 16)))
    assert us_noise_scale(y, method="haar") == pytest.approx(0.1, rel=0.05)
    assert us_noise_scale(y, method="window", window=4) == pytest.approx(0.1, rel=0.05)


BAD = [
    (dict(mr=np.ones((4, 4, 4, 4))), ValueError, "`mr` must be a 2-D array.*or a 3-D array"),
    (dict(us=np.ones(16)), ValueError, "`us` must be a 2-D array.*or a 3-D array"),
    (dict(mr=np.ones((8, 8))), ValueError, "same dimensionality"),
    (dict(ratio=(2, 2)), ValueError, "`ratio` must have 3 components"),
    (dict(ratio=(2, 0, 2)), ValueError, "`ratio` must be"),
    (dict(ratio=-2), ValueError, "`ratio` must be"),
    (dict(spacing=(1.0, -1.0, 1.0)), ValueError, "`spacing` must be positive"),
    (dict(spacing=(1.0, 1.0)), ValueError, "`spacing` must have 3 components"),
    (dict(scan_direction=(1.0, 0.0)), TypeError, "`scan_direction` must be 3 numbers"),
    (dict(scan_direction=(0.0, 0.0, 0.0)), ValueError, "`scan_direction` must be a non-zero"),
    (dict(mask=np.ones((16, 16), bool)), ValueError, "`mask` must have shape"),
    (dict(psf=np.ones((3, 3))), ValueError, "`psf` must be a 3-D array"),
    (dict(psf=np.ones((3, 3, 9))), ValueError, "`psf` of shape .* is larger than the image"),
    (dict(link="local"), ValueError, "`link` = 'local' works on images only"),
]


@pytest.mark.parametrize("kw, exc, msg", BAD)
def test_fuse_volume_bad_input_names_the_argument(kw, exc, msg):
    ym, us, psf = _pair()
    args = dict(mr=ym, us=us, psf=psf, max_iter=2)
    args.update(kw)
    with pytest.raises(exc, match=msg):
        mf.fuse(args.pop("mr"), args.pop("us"), args.pop("psf"), **args)


def test_local_link_refuses_anisotropic_spacing_in_2d():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="isotropic"):
        mf.fuse(rng.random((8, 8)) + 0.1, rng.random((16, 16)) + 0.1, link="local",
                spacing=(1.0, 2.0), max_iter=2)
