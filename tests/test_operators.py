"""Adjoint identities <A x, y> = <x, A^T y> and the properties of each operator."""
import numpy as np
import pytest

from mrusfusion.operators import (Blur, Decimation, DirectionalGradient, FiniteDifference,
                                  GradientMagnitude, as_psf, bicubic_upsample, gaussian_psf)

RATIOS = [1, 2, 3, 4, 6]


def _adjoint_gap(op, shape_in, shape_out, rng):
    x = rng.standard_normal(shape_in)
    y = rng.standard_normal(shape_out)
    lhs, rhs = np.vdot(op.apply(x), y), np.vdot(x, op.adjoint(y))
    return abs(lhs - rhs) / max(abs(lhs), 1e-300)


@pytest.mark.parametrize("s", RATIOS)
def test_adjoints(s, rng):
    shape = (12 * s, 6 * s) if s > 1 else (13, 7)
    assert _adjoint_gap(Decimation(s), shape, (shape[0] // s, shape[1] // s), rng) < 1e-12
    blur = Blur(gaussian_psf(9, 4.0) if min(shape) >= 9 else (3, 1.0), shape)
    assert _adjoint_gap(blur, shape, shape, rng) < 1e-12
    for axis in (0, 1):
        assert _adjoint_gap(FiniteDifference(axis), shape, shape, rng) < 1e-12
    for u in [(1, 0), (0, 1), (0.3, -0.7)]:
        assert _adjoint_gap(DirectionalGradient(u), shape, shape, rng) < 1e-12


def test_blur_preserves_mean_and_does_not_shift(rng):
    shape = (32, 40)
    x = np.zeros(shape)
    x[10, 20] = 1.0
    y = Blur(gaussian_psf(9, 4.0), shape).apply(x)
    assert y.sum() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(y), shape) == (10, 20)
    rows, cols = np.indices(shape)
    assert (rows * y).sum() == pytest.approx(10.0) and (cols * y).sum() == pytest.approx(20.0)


def test_directional_gradient_is_the_combination_of_differences(rng):
    x = rng.random((9, 11))
    u = (0.6, 0.8)
    g = DirectionalGradient(u).apply(x)
    np.testing.assert_allclose(g, 0.6 * FiniteDifference(0).apply(x)
                               + 0.8 * FiniteDifference(1).apply(x))


def test_gradient_magnitude_jacobian_matches_finite_differences(rng):
    x = rng.random((8, 9))
    r = rng.standard_normal(x.shape)
    gm = GradientMagnitude(1e-2)
    d = rng.standard_normal(x.shape)
    h = 1e-6
    fd = np.vdot(r, gm.apply(x + h * d) - gm.apply(x - h * d)) / (2 * h)
    assert np.vdot(gm.jacobian_transpose(x, r), d) == pytest.approx(fd, rel=1e-7)


@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_bicubic_upsample_is_aligned_with_decimation(s, rng):
    y = rng.random((10, 12))
    up = bicubic_upsample(y, s)
    np.testing.assert_allclose(Decimation(s).apply(up), y, atol=1e-12)


def test_psf_validation():
    with pytest.raises(ValueError, match="larger than the image"):
        as_psf(np.ones((9, 9)), (8, 8))
    with pytest.raises(ValueError, match="positive"):
        as_psf(np.zeros((3, 3)), (8, 8))
    h = as_psf(np.ones((3, 3)), (8, 8))
    assert h.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="scan_direction"):
        DirectionalGradient((0, 0))
