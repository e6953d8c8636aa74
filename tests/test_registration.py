"""Registration by the link's similarity (python/mrusfusion/registration, issue 16)."""
import doctest
import importlib
import math

import numpy as np
import pytest
from scipy import ndimage

import mrusfusion as mf
from mrusfusion.operators import bicubic_upsample
from mrusfusion.registration import (LinkSimilarity, RegistrationResult, jacobian, matrix,
                                     register, register_for_fusion, target_registration_error,
                                     world_matrix)
from mrusfusion.registration.similarity import _spline, warp


def moved_pair(theta, transform, size=64, ratio=2, seed=0):
    """(mr, moving us, true matrix): the US simulated from the phantom moved by the inverse
    of the true transform, so that ``affine_transform(moving, true)`` is aligned with the MR."""
    pad = ratio * math.ceil(0.25 * size / ratio)
    big = mf.phantom((size + 2 * pad,) * 2, seed=seed)
    centre = np.full(2, (size - 1) / 2)
    true = matrix(transform, np.asarray(theta, dtype=float), centre)
    shift = np.eye(3)
    shift[:2, 2] = pad
    g = shift @ np.linalg.inv(true) @ np.linalg.inv(shift)
    moved = np.clip(ndimage.affine_transform(big, g, order=3, mode="nearest"), 0, 1)
    crop = (slice(pad, pad + size),) * 2
    fixed = mf.simulate(big[crop], ratio, seed=seed)
    return fixed.mr, mf.simulate(moved[crop], ratio, seed=seed).us, true


@pytest.mark.parametrize("name", ["registration.transforms", "registration.register"])
def test_docstring_examples(name):
    module = importlib.import_module(f"mrusfusion.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


# ----------------------------------------------------------------- convention and transforms


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(24, 24), (23, 26)])
def test_apply_matches_scipy_affine_transform(dtype, shape):
    rng = np.random.default_rng(1)
    us = ndimage.gaussian_filter(rng.random(shape), 1.5).astype(dtype)
    centre = (np.array(shape) - 1) / 2
    mat = matrix("affine", np.array([0.05, -0.08, 0.03, -0.04, 1.3, -0.7]), centre)
    res = RegistrationResult(mat, "affine", np.zeros(6), 0.0, 0.0)
    out, valid = res.apply(us, order=1)
    ref = ndimage.affine_transform(us.astype(np.float64), mat, order=1, mode="mirror")
    assert out.dtype == dtype
    assert 0 < valid.sum() < valid.size
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out[valid], ref[valid], atol=tol)
    assert np.all(out[~valid] == 0)
    # the output point o is sampled at matrix @ [o, 1] of the input
    o = np.array([shape[0] // 2, shape[1] // 2 + 1, 1.0])
    p = mat @ o
    assert out[int(o[0]), int(o[1])] == pytest.approx(
        ndimage.map_coordinates(us.astype(np.float64), p[:2, None], order=1)[0], abs=tol)


def test_spline_warp_interpolates_and_matches_scipy():
    rng = np.random.default_rng(2)
    img = rng.random((15, 18))
    coef = _spline(img)
    grid = np.indices(img.shape, dtype=float).reshape(2, -1)
    val, _ = warp(coef, grid, derivatives=False)
    np.testing.assert_allclose(val, img.ravel(), atol=1e-12)
    pts = rng.uniform(2, 12, (2, 40))
    val, _ = warp(coef, pts, derivatives=False)
    ref = ndimage.map_coordinates(img, pts, order=3, mode="mirror")
    np.testing.assert_allclose(val, ref, atol=1e-10)


def test_spline_derivative_matches_finite_differences():
    rng = np.random.default_rng(3)
    coef = _spline(rng.random((16, 16)))
    pts = rng.uniform(0, 15, (2, 30))
    _, der = warp(coef, pts)
    h = 1e-6
    for a in range(2):
        e = np.zeros((2, 1))
        e[a] = h
        num = (warp(coef, pts + e, derivatives=False)[0]
               - warp(coef, pts - e, derivatives=False)[0]) / (2 * h)
        np.testing.assert_allclose(der[a], num, atol=1e-7)


@pytest.mark.parametrize("transform", ["translation", "rigid", "affine"])
def test_transform_jacobian_matches_finite_differences(transform):
    rng = np.random.default_rng(4)
    centre = np.array([10.0, 12.5])
    theta = rng.normal(0, 0.1, {"translation": 2, "rigid": 3, "affine": 6}[transform])
    a, da = jacobian(transform, theta, centre)
    h = 1e-7
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        num = (jacobian(transform, theta + e, centre)[0]
               - jacobian(transform, theta - e, centre)[0]) / (2 * h)
        np.testing.assert_allclose(da[k], num, atol=1e-7)
    # parameters act about the centre: with no translation the centre stays put
    theta[-2:] = 0
    np.testing.assert_allclose(matrix(transform, theta, centre) @ [*centre, 1], [*centre, 1],
                               atol=1e-12)


def test_target_registration_error_and_world_matrix():
    t = np.eye(3)
    t[:2, 2] = [3.0, 4.0]
    assert target_registration_error(t, np.eye(3), (5, 7)) == pytest.approx(5.0)
    assert target_registration_error(t, np.eye(3), (5, 7), scale=(3.0, 4.0)) == pytest.approx(
        math.sqrt(2))
    # a rotation about the centre moves the grid points by |2 sin(phi/2)| r on average
    c = np.array([4.0, 4.0])
    rot = matrix("rigid", np.array([0.1, 0, 0]), c)
    grid = np.indices((9, 9)).reshape(2, -1) - c[:, None]
    expected = np.mean(2 * math.sin(0.05) * np.hypot(*grid))
    assert target_registration_error(rot, np.eye(3), (9, 9)) == pytest.approx(expected)
    # in mm: a shift of (3, 4) pixels at spacing (0.5, 2) mm, origin 10 mm
    w = np.diag([0.5, 2.0, 1.0, 1.0])
    w[:3, 3] = 10.0
    wm = world_matrix(t, w)
    np.testing.assert_allclose(wm[:3, 3], [1.5, 8.0, 0.0])
    np.testing.assert_allclose(wm[:3, :3], np.eye(3))


# ----------------------------------------------------------------- the similarity


def _level(seed=0, size=48, ratio=2):
    sim = mf.simulate(mf.phantom((size, size), seed=seed), ratio, seed=seed)
    x0 = bicubic_upsample(sim.mr, ratio)
    mask = np.zeros(x0.shape)
    mask[8:-8, 8:-8] = 1
    return x0, ndimage.gaussian_filter(sim.us, 1.0), mask


@pytest.mark.parametrize("gradient", ["magnitude", "directional"])
def test_similarity_is_the_fitted_links_explained_variance(gradient):
    x0, us, mask = _level()
    sim = LinkSimilarity(x0, us, mask, degree=3, gradient=gradient)
    a = np.array([[1.01, 0.02, 0.6], [-0.03, 0.98, -0.3]])
    ev = sim(a)
    warped = ndimage.affine_transform(us, np.vstack([a, [0, 0, 1]]), order=3, mode="mirror")
    link = mf.fit_polynomial(x0, warped, 3, gradient=gradient, mask=mask)
    assert ev.value == pytest.approx(link.explained_variance(x0, warped, mask), abs=1e-6)
    assert ev.overlap == mask.sum()


@pytest.mark.parametrize("whole,coverage,fan", [(False, 0.0, False), (True, 0.0, False),
                                                (True, 1.0, False), (True, 0.0, True)])
def test_similarity_gradient_matches_finite_differences(whole, coverage, fan):
    # whole: the overlap's edge crosses the mask, so the taper's term is exercised; fan: the
    # moving US's own field of view (a disc) moves with it
    x0, us, mask = _level(seed=1)
    us_mask = None
    if fan:
        yy, xx = np.indices(us.shape)
        us_mask = np.hypot(yy - 30, xx - 22) < 20
    sim = LinkSimilarity(x0, us, None if whole else mask, degree=3, coverage=coverage,
                         us_mask=us_mask)
    a = np.array([[1.02, 0.03, 0.7 + 3.3 * whole], [-0.02, 0.99, -0.4 - 2.1 * whole]])
    ev = sim(a)
    num = np.zeros_like(a)
    h = 1e-6
    for idx in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[idx] = h
        num[idx] = (sim(a + e).value - sim(a - e).value) / (2 * h)
    np.testing.assert_allclose(ev.grad, num, rtol=1e-6, atol=1e-6 * np.abs(num).max())


def test_similarity_is_highest_at_the_alignment():
    x0, us, mask = _level(seed=2)
    sim = LinkSimilarity(x0, us, mask, degree=3)
    s0 = sim(np.eye(2, 3)).value
    for shift in ([2, 0], [0, -2], [1.5, 1.5]):
        a = np.eye(2, 3)
        a[:, 2] = shift
        assert sim(a).value < s0


def test_similarity_without_overlap_is_nan():
    x0, us, mask = _level()
    sim = LinkSimilarity(x0, us, mask)
    a = np.eye(2, 3)
    a[0, 2] = 200.0
    ev = sim(a)
    assert math.isnan(ev.value) and ev.overlap == 0 and not ev.grad.any()


# ----------------------------------------------------------------- register()


@pytest.mark.parametrize("transform,theta", [
    ("translation", [3.4, -2.2]),
    ("rigid", [math.radians(6.0), -2.5, 1.8]),
])
def test_register_recovers_a_known_transform(transform, theta):
    mr, us, true = moved_pair(theta, transform)
    res = register(mr, us, transform=transform)
    assert res.success, res.message
    assert res.similarity > res.initial_similarity
    assert len(res.history) == res.iterations > 0
    # stated tolerance: a quarter of an MR pixel (ratio 2)
    assert target_registration_error(res.matrix, true, us.shape, scale=2) < 0.25


def test_register_affine_recovers_a_scaling_and_shear():
    theta = [0.06, -0.04, 0.03, -0.05, 2.0, -1.5]
    mr, us, true = moved_pair(theta, "affine")
    res = register(mr, us, transform="affine")
    # six parameters from a 64x64 image: half an MR pixel (the bench measures 128x128)
    assert target_registration_error(res.matrix, true, us.shape, scale=2) < 0.5


def test_register_for_fusion_masks_what_the_moved_us_does_not_cover():
    mr, us, _ = moved_pair([4.0, -3.0], "translation", seed=1)
    user = np.ones(us.shape, bool)
    user[:, :5] = False
    us_reg, valid, res = register_for_fusion(mr, us, transform="translation", mask=user)
    assert not valid[:, :5].any()
    assert (~valid).sum() > (~user).sum()  # the shifted border is masked too
    assert np.all(us_reg[~valid & user] == 0)
    out = mf.fuse(mr, us_reg, ratio=2, mask=valid, degree=3, max_iter=5)
    assert np.isfinite(out.x).all()


def test_register_returns_the_identity_when_nothing_improves():
    # a US that is exactly a polynomial of the MR features: S = 1 at the identity already
    sim = mf.simulate(mf.phantom((64, 64), seed=3), 2, seed=3)
    x0 = bicubic_upsample(sim.mr, 2)
    us = 0.2 + 0.5 * x0 - 0.3 * x0**2
    res = register(sim.mr, us, transform="rigid", smooth=0.0, gradient="directional",
                   degree=2)
    assert res.initial_similarity == pytest.approx(1.0, abs=1e-9)
    if not res.success:
        np.testing.assert_array_equal(res.matrix, np.eye(3))
        assert "could not be improved" in res.message
    assert target_registration_error(res.matrix, np.eye(3), us.shape) < 0.05


def test_register_with_the_moving_fov_masks_it_after_the_move():
    mr, us, true = moved_pair([2.0, -3.0], "translation", seed=2)
    yy, xx = np.indices(us.shape)
    fan = (yy > 6) & (np.abs(xx - 32) < 10 + 0.6 * yy)  # a fan on the moving grid
    us_reg, valid, res = register_for_fusion(mr, us, transform="translation", us_mask=fan)
    assert target_registration_error(res.matrix, true, us.shape, scale=2) < 0.25
    moved_fan = ndimage.affine_transform(fan.astype(float), res.matrix, order=0) > 0.5
    assert not (valid & ~moved_fan).any() and valid.sum() > 0.5 * moved_fan.sum()


def test_register_flags_a_transform_that_leaves_the_field():
    mr, us, _ = moved_pair([0.0, 0.0], "translation")
    res = register(mr, us, transform="translation", min_overlap=1.0)
    assert not res.success or res.overlap == 1.0
    start = np.eye(3)
    start[:2, 2] = [30.0, 30.0]
    res = register(mr, us, transform="translation", initial=start, min_overlap=0.9)
    assert not res.success and "min_overlap" in res.message


def test_register_recovers_a_translation_in_3d():
    x = mf.phantom3d((24, 24, 20))
    true = matrix("translation", np.array([1.5, -2.0, 1.0]), (np.array(x.shape) - 1) / 2)
    us = 0.3 + 0.8 * x - 0.5 * x**2
    rng = np.random.default_rng(5)
    moving = (ndimage.affine_transform(us, np.linalg.inv(true), order=3, mode="nearest")
              + 0.02 * rng.standard_normal(x.shape))
    res = register(x, moving, transform="translation")
    assert res.matrix.shape == (4, 4) and res.success, res.message
    assert target_registration_error(res.matrix, true, x.shape) < 0.25
    out, valid = res.apply(moving)
    assert out.shape == x.shape and 0 < valid.sum() < valid.size
    with pytest.raises(ValueError, match="2-D only"):
        register(x, moving, transform="rigid")
    with pytest.raises(ValueError, match="same number of axes"):
        register(x[:, :, 0], moving)


def test_register_bad_input():
    mr, us, _ = moved_pair([0.0, 0.0], "translation", size=32)
    bad = us.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        register(mr, bad)
    with pytest.raises(ValueError, match="NaN"):
        register(np.where(np.arange(mr.size).reshape(mr.shape) == 5, np.nan, mr), us)
    with pytest.raises(ValueError, match="`transform`"):
        register(mr, us, transform="elastic")
    with pytest.raises(ValueError, match="ratio"):
        register(mr, us[:-1])
    with pytest.raises(TypeError, match="`us`"):
        register(mr, "us.png")
    far = np.eye(3)
    far[:2, 2] = 500.0
    with pytest.raises(ValueError, match="do not overlap"):
        register(mr, us, transform="translation", initial=far)
    with pytest.raises(ValueError, match="not a rigid transform"):
        register(mr, us, initial=np.diag([1.1, 1.0, 1.0]))
    with pytest.raises(ValueError, match="`mask`"):
        register(mr, us, mask=np.zeros(us.shape, bool))
    with pytest.raises(ValueError, match="`degree`"):
        register(mr, us, degree=0)
