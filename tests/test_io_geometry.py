"""Tests of mrusfusion.io.geometry: the ratio from the spacings, resampling and cropping to an
integer ratio."""
from __future__ import annotations

import numpy as np
import pytest

from mrusfusion.io import crop_to_ratio, ratio_from_spacing, resample_to_ratio


def test_ratio_from_spacing_accepts_integer_ratio():
    assert ratio_from_spacing((2.0, 2.0), (0.5, 0.5)) == 4
    assert ratio_from_spacing((1.0, 1.0), (0.49, 0.51)) == 2
    assert ratio_from_spacing(1.0, 1.0) == 1


@pytest.mark.parametrize(
    "mr, us, target",
    [((1.0, 1.0), (0.3, 0.3), 3), ((2.0, 2.0), (0.5, 0.7), 3), ((2.0, 1.0), (0.5, 0.5), 3)],
)
def test_ratio_from_spacing_rejects_and_suggests_resampling(mr, us, target):
    with pytest.raises(ValueError, match=rf"resampl.*integer ratio {target}") as info:
        ratio_from_spacing(mr, us)
    assert "rows" in str(info.value) and "resample_to_ratio" in str(info.value)


def test_ratio_from_spacing_validates():
    with pytest.raises(ValueError, match="mr_spacing"):
        ratio_from_spacing((1.0, -1.0), (0.5, 0.5))
    with pytest.raises(ValueError, match="tol"):
        ratio_from_spacing((1.0, 1.0), (0.5, 0.5), tol=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resample_to_ratio_gives_integer_ratio(dtype):
    rng = np.random.default_rng(1)
    us = rng.random((31, 40)).astype(dtype)
    out, spacing, ratio = resample_to_ratio(us, (0.3, 0.32), (1.0, 1.0))
    assert ratio == 3
    assert spacing == pytest.approx((1 / 3, 1 / 3))
    assert ratio_from_spacing((1.0, 1.0), spacing, tol=1e-12) == 3
    assert out.dtype == dtype
    # The field of view does not grow.
    assert out.shape[0] * spacing[0] <= 31 * 0.3 + 1e-9
    assert out.shape[1] * spacing[1] <= 40 * 0.32 + 1e-9
    assert out.shape == (27, 38)


def test_resample_to_ratio_is_identity_on_matching_grid():
    us = np.random.default_rng(2).random((16, 12))
    out, spacing, ratio = resample_to_ratio(us, (0.25, 0.25), (1.0, 1.0))
    assert ratio == 4 and spacing == (0.25, 0.25)
    np.testing.assert_allclose(out, us, atol=1e-12)


def test_resample_preserves_a_linear_ramp():
    rows = np.arange(40.0)[:, None] * np.ones((1, 40))
    out, spacing, _ = resample_to_ratio(rows * 0.3, (0.3, 0.3), (1.0, 1.0))
    # Pixel centre k of the new grid sits at (k + 1/2) * spacing mm from the outer edge.
    centres = (np.arange(out.shape[0]) + 0.5) * spacing[0] - 0.15
    # Away from the border (where the spline boundary condition bends the ramp) it is exact.
    np.testing.assert_allclose(out[6:-6, 5], centres[6:-6], atol=1e-4)


@pytest.mark.parametrize(
    "mr_shape, us_shape, ratio, expected",
    [((8, 8), (32, 32), 4, (8, 8)), ((10, 9), (32, 33), 4, (8, 8)),
     ((5, 7), (40, 40), 2, (5, 7)), ((3, 3), (7, 8), 2, (3, 3))],
)
def test_crop_to_ratio_shapes(mr_shape, us_shape, ratio, expected):
    mr = np.arange(np.prod(mr_shape), dtype=float).reshape(mr_shape)
    us = np.arange(np.prod(us_shape), dtype=float).reshape(us_shape)
    mr_c, us_c = crop_to_ratio(mr, us, ratio)
    assert mr_c.shape == expected
    assert us_c.shape == (ratio * mr_c.shape[0], ratio * mr_c.shape[1])
    # Cropping keeps the top-left corner.
    assert mr_c[0, 0] == mr[0, 0] and us_c[0, 0] == us[0, 0]
    np.testing.assert_array_equal(us_c, us[: us_c.shape[0], : us_c.shape[1]])


def test_crop_to_ratio_errors():
    with pytest.raises(ValueError, match="field of view"):
        crop_to_ratio(np.zeros((4, 4)), np.zeros((3, 16)), 4)
    with pytest.raises(ValueError, match="ratio"):
        crop_to_ratio(np.zeros((4, 4)), np.zeros((16, 16)), 0)
    with pytest.raises(ValueError, match="`mr` must be a 2-D"):
        crop_to_ratio(np.zeros(4), np.zeros((16, 16)), 4)
