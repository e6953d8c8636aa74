"""Tests of mrusfusion.io.prepare_pair and the grid geometry it relies on."""
from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from mrusfusion.io import (
    Image,
    PreparedPair,
    crop_to_ratio,
    prepare_pair,
    ratio_from_spacing,
    resample_to_ratio,
)
from mrusfusion.io.geometry import resampled_affine


def _ramp(shape, dtype=np.float64):
    """Distinct values everywhere, so any shift, flip or transpose shows."""
    return np.arange(np.prod(shape), dtype=dtype).reshape(shape)


def _affine(spacing, origin=(10.0, -5.0, 3.0), angle=0.3):
    """A NIfTI-like affine: rotated in-plane axes scaled by the spacing, shifted origin."""
    c, s = np.cos(angle), np.sin(angle)
    a = np.eye(4)
    a[:3, 0] = np.array([c, s, 0.0]) * spacing[0]
    a[:3, 1] = np.array([-s, c, 0.0]) * spacing[1]
    a[:3, 3] = origin
    return a


def _world(affine, index):
    """World position of (fractional) pixel index ``(i, j)`` through ``affine``."""
    return (affine @ np.array([index[0], index[1], 0.0, 1.0]))[:3]


# --------------------------------------------------------------------------- the ratio


def test_ratio_from_spacings_keeps_the_images():
    mr, us = _ramp((8, 6)), _ramp((16, 12)) * 2
    pair = prepare_pair(Image(mr, (2.0, 2.0)), Image(us, (1.0, 1.0)))
    assert isinstance(pair, PreparedPair)
    assert pair.ratio == 2 and pair.ratio_source == "spacings"
    assert pair.ratio == ratio_from_spacing((2.0, 2.0), (1.0, 1.0))
    np.testing.assert_array_equal(pair.mr, mr)
    np.testing.assert_array_equal(pair.us, us)
    assert pair.mr_spacing == (2.0, 2.0) and pair.us_spacing == (1.0, 1.0)
    assert pair.us_affine is None and pair.notes == []
    assert pair.message == "MR 8x6, US 16x12, ratio 2 (from spacings)"
    # A ratio that agrees with the spacings is accepted and changes nothing.
    same = prepare_pair(Image(mr, (2.0, 2.0)), Image(us, (1.0, 1.0)), ratio=2)
    assert same.ratio == 2 and same.ratio_source == "spacings"


def test_ratio_contradicting_the_spacings_is_refused():
    mr, us = Image(_ramp((8, 8)), (2.0, 2.0)), Image(_ramp((16, 16)), (1.0, 1.0))
    with pytest.raises(ValueError, match=r"`ratio`=3 contradicts the ratio 2") as info:
        prepare_pair(mr, us, ratio=3)
    assert "--ratio" in str(info.value) and "--mr-spacing" in str(info.value)


def test_non_integer_spacing_ratio_points_to_resampling():
    mr, us = Image(_ramp((8, 8)), (1.0, 1.0)), Image(_ramp((27, 27)), (0.3, 0.3))
    with pytest.raises(ValueError, match="integer ratio 3") as info:
        prepare_pair(mr, us)
    assert "resample_us" in str(info.value) and "--resample-us" in str(info.value)


def test_ratio_argument_and_shapes_without_spacings():
    mr, us = _ramp((5, 7)), _ramp((15, 21))
    pair = prepare_pair(Image(mr), Image(us), ratio=3)
    assert pair.ratio == 3 and pair.ratio_source == "ratio argument"
    pair = prepare_pair(Image(mr), Image(us))
    assert pair.ratio == 3 and pair.ratio_source == "shapes"
    assert pair.mr_spacing is None and pair.us_spacing is None
    with pytest.raises(ValueError, match="integer") as info:
        prepare_pair(Image(mr), Image(us[:14]))
    assert "--crop" in str(info.value) and "--ratio" in str(info.value)
    with pytest.raises(ValueError, match=r"\(15, 21\)") as info:
        prepare_pair(Image(mr), Image(us), ratio=2)
    assert "--crop" in str(info.value)


@pytest.mark.parametrize("known", ["mr", "us"])
def test_missing_spacing_is_derived_from_the_other(known):
    mr_sp, us_sp = (2.0, 3.0), (0.5, 0.75)
    pair = prepare_pair(Image(_ramp((6, 5)), mr_sp if known == "mr" else None),
                        Image(_ramp((24, 20)), us_sp if known == "us" else None))
    assert pair.ratio == 4 and pair.ratio_source == "shapes"
    assert pair.mr_spacing == pytest.approx(mr_sp) and pair.us_spacing == pytest.approx(us_sp)
    # Derived or given, the two spacings are in the pair's ratio.
    assert ratio_from_spacing(pair.mr_spacing, pair.us_spacing, tol=1e-12) == pair.ratio


# --------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resampling_matches_resample_to_ratio_and_keeps_dtype(dtype):
    us = np.random.default_rng(3).random((31, 38)).astype(dtype)
    pair = prepare_pair(Image(_ramp((9, 12), dtype), (1.0, 1.0)), Image(us, (0.3, 0.32)),
                        resample_us=True)
    expected, spacing, ratio = resample_to_ratio(us, (0.3, 0.32), (1.0, 1.0))
    assert pair.ratio == ratio == 3 and pair.ratio_source == "spacings, US resampled"
    np.testing.assert_array_equal(pair.us, expected)
    assert pair.us.dtype == pair.mr.dtype == dtype
    assert pair.us_spacing == spacing and pair.mr_spacing == (1.0, 1.0)
    assert pair.notes == ["resampled US 31x38 (0.3, 0.32) mm -> 27x36 (0.3333, 0.3333) mm"]


def test_resampling_moves_the_affine_so_the_outer_corner_stays():
    old_sp, new_sp = (0.3, 0.32), (1 / 3, 1 / 3)
    old = _affine(old_sp)
    new = resampled_affine(old, old_sp, new_sp)
    # The outer corner of pixel (0, 0) lies half a pixel before its centre on both axes.
    np.testing.assert_allclose(_world(new, (-0.5, -0.5)), _world(old, (-0.5, -0.5)), atol=1e-12)
    # Axis directions are kept, their lengths become the new spacing.
    np.testing.assert_allclose(np.linalg.norm(new[:3, :2], axis=0), new_sp, rtol=1e-12)
    np.testing.assert_allclose(new[:3, :2] / new_sp, old[:3, :2] / old_sp, atol=1e-12)
    np.testing.assert_array_equal(new[:, 2:3], old[:, 2:3])
    with pytest.raises(ValueError, match="affine"):
        resampled_affine(np.eye(3), old_sp, new_sp)


def test_prepared_affine_places_resampled_pixels_where_their_values_say():
    # Each US pixel holds the world x coordinate of its centre; after resampling, the value
    # of a pixel must still be the x coordinate that the new affine gives its centre.
    old_sp = (0.3, 0.32)
    old = _affine(old_sp)
    i, j = np.meshgrid(np.arange(40.0), np.arange(36.0), indexing="ij")
    world_x = old[0, 0] * i + old[0, 1] * j + old[0, 3]
    us = Image(world_x, old_sp, {"affine": old})
    pair = prepare_pair(Image(np.zeros((12, 11)), (1.0, 1.0)), us, resample_us=True, crop=True)
    new = pair.us_affine
    assert new is not None and pair.ratio == 3
    assert us.meta["affine"] is old and np.array_equal(old, _affine(old_sp))  # input untouched
    rows, cols = np.meshgrid(np.arange(pair.us.shape[0]), np.arange(pair.us.shape[1]),
                             indexing="ij")
    expected = new[0, 0] * rows + new[0, 1] * cols + new[0, 3]
    # Away from the border, where the spline boundary condition bends the ramp, it is exact.
    np.testing.assert_allclose(pair.us[6:-6, 6:-6], expected[6:-6, 6:-6], atol=1e-4)


def test_resampling_needs_both_spacings():
    with pytest.raises(ValueError, match="the US image has none") as info:
        prepare_pair(Image(_ramp((4, 4)), (1.0, 1.0)), Image(_ramp((8, 8))), resample_us=True)
    assert "--resample-us" in str(info.value) and "--us-spacing" in str(info.value)
    with pytest.raises(ValueError, match="the MR and US images have none"):
        prepare_pair(Image(_ramp((4, 4))), Image(_ramp((8, 8))), resample_us=True)


# --------------------------------------------------------------------------- cropping


def test_crop_to_the_common_field_of_view():
    mr, us = _ramp((10, 9)), _ramp((32, 33))
    pair = prepare_pair(Image(mr), Image(us), ratio=4, crop=True)
    mr_c, us_c = crop_to_ratio(mr, us, 4)
    assert pair.mr.shape == (8, 8) and pair.us.shape == (32, 32)
    np.testing.assert_array_equal(pair.mr, mr_c)
    np.testing.assert_array_equal(pair.us, us_c)
    assert pair.mr.flags.c_contiguous and pair.us.flags.c_contiguous
    assert pair.notes == ["cropped MR (10, 9) -> (8, 8), US (32, 33) -> (32, 32)"]
    # Nothing to crop: no note.
    assert prepare_pair(Image(mr_c), Image(us_c), ratio=4, crop=True).notes == []


def test_crop_needs_a_ratio():
    with pytest.raises(ValueError, match="--crop") as info:
        prepare_pair(Image(_ramp((10, 9))), Image(_ramp((32, 33))), crop=True)
    assert "--ratio" in str(info.value) and "`ratio`" in str(info.value)
    # The spacings give the ratio.
    pair = prepare_pair(Image(_ramp((10, 9)), (2.0, 2.0)), Image(_ramp((32, 33)), (0.5, 0.5)),
                        crop=True)
    assert pair.ratio == 4 and pair.us.shape == (32, 32)


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_are_refused():
    mr, us = Image(_ramp((4, 4))), Image(_ramp((8, 8)))
    with pytest.raises(TypeError, match="`mr` must be a mrusfusion.io.Image"):
        prepare_pair(np.zeros((4, 4)), us)
    with pytest.raises(ValueError, match="`us.data` must be a non-empty 2-D array"):
        prepare_pair(mr, Image(np.zeros((2, 8, 8))))
    with pytest.raises(ValueError, match="ratio"):
        prepare_pair(mr, us, ratio=0)
    with pytest.raises(TypeError, match="ratio"):
        prepare_pair(mr, us, ratio=1.5)
    with pytest.raises(ValueError, match="complex"):
        prepare_pair(mr, Image(np.zeros((8, 8), complex)))
    with pytest.raises(ValueError, match="`us_spacing` must be two positive"):
        ratio_from_spacing((1.0, 1.0), None)


def test_integer_data_follow_the_dtype_policy():
    pair = prepare_pair(Image(np.ones((4, 4), np.int16)), Image(np.ones((8, 8), np.uint8)))
    assert pair.mr.dtype == pair.us.dtype == np.float64


@pytest.mark.parametrize("name", ["image", "readers", "writers", "atomic", "geometry", "pairs"])
def test_submodule_examples_run(name):
    module = importlib.import_module(f"mrusfusion.io.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
