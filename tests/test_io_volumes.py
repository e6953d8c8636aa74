"""Volumes in files (issue 15): NIfTI and DICOM series with spacing and affine, per-axis
ratios from the spacings, resampling, cropping and the field-of-view mask in 3-D."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mrusfusion.io import (Image, crop_to_ratio, field_of_view, load, prepare_pair,
                           ratios_from_spacing, resample_to_ratio, save)
from mrusfusion.io.geometry import resampled_affine

from conftest import write_dicom

RESECT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "resect-case2"


def _volume(shape=(8, 6, 4), dtype=np.float32):
    return np.random.default_rng(0).random(shape).astype(dtype)


def _oblique_affine(spacing):
    """A rotation about z by 30 degrees, the given voxel sizes and an offset."""
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    a = np.eye(4)
    a[:3, :3] = rot * np.asarray(spacing)
    a[:3, 3] = (-12.5, 3.0, 40.0)
    return a


# --------------------------------------------------------------------------- NIfTI


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nifti_volume_round_trip_keeps_spacing_and_affine(tmp_path, dtype):
    pytest.importorskip("nibabel")
    vol = _volume(dtype=dtype)
    affine = _oblique_affine((0.5, 0.75, 2.0))
    path = save(tmp_path / "v.nii.gz", vol, affine=affine, volume=True)
    out = load(path, volume=True)
    assert out.ndim == 3 and out.data.dtype == dtype
    np.testing.assert_array_equal(out.data, vol)
    assert out.spacing == pytest.approx((0.5, 0.75, 2.0))
    np.testing.assert_allclose(out.meta["affine"], affine, atol=1e-6)
    # The spacing alone gives a diagonal affine, and a second round trip changes nothing.
    again = load(save(tmp_path / "w.nii", out, volume=True), volume=True)
    assert again.spacing == pytest.approx(out.spacing)
    np.testing.assert_allclose(np.diag(again.meta["affine"])[:3], out.spacing)


def test_a_volume_is_refused_without_volume_true(tmp_path):
    pytest.importorskip("nibabel")
    path = save(tmp_path / "v.nii", _volume(), spacing=(1.0, 1.0, 2.0), volume=True)
    with pytest.raises(ValueError, match="volume=True"):
        load(path)
    with pytest.raises(ValueError, match="volume=True"):
        save(tmp_path / "x.npy", _volume())
    with pytest.raises(ValueError, match="exclude|whole"):
        load(path, volume=True, slice=1)
    with pytest.raises(ValueError, match="spacing"):
        load(path, volume=True, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="PNG"):
        save(tmp_path / "x.png", _volume(), volume=True)


def test_npz_mat_and_tiff_volumes(tmp_path):
    vol = _volume(dtype=np.float64)
    for name in ("v.npz", "v.mat"):
        out = load(save(tmp_path / name, vol, spacing=(0.5, 0.5, 3.0), volume=True), volume=True)
        np.testing.assert_array_equal(out.data, vol)
        assert out.spacing == pytest.approx((0.5, 0.5, 3.0))
    pytest.importorskip("tifffile")
    pages = load(save(tmp_path / "v.tif", vol, volume=True), volume=True)
    np.testing.assert_array_equal(pages.data, vol.astype(np.float32))  # TIFF stores float32
    # A 2-D file read with volume=True is still its image.
    assert load(save(tmp_path / "i.npy", vol[0]), volume=True).ndim == 2


# --------------------------------------------------------------------------- DICOM series


def test_multiframe_dicom_volume_takes_the_slice_step(tmp_path):
    pytest.importorskip("pydicom")
    from pydicom.uid import generate_uid

    frames = np.random.default_rng(4).integers(0, 1000, (3, 5, 6))
    path = tmp_path / "mf.dcm"
    _dicom_slice(path, frames, (0, 0, 0), (1, 0, 0, 0, 1, 0), (0.7, 0.8), generate_uid(),
                 NumberOfFrames=3, SpacingBetweenSlices=2.0)
    out = load(path, volume=True)
    np.testing.assert_array_equal(out.data, frames)
    assert out.spacing == pytest.approx((2.0, 0.7, 0.8))
    np.testing.assert_array_equal(load(path, slice=1).data, frames[1])


def _dicom_slice(path, pixels, position, orientation, spacing, uid, **extra):
    return write_dicom(path, pixels, SeriesInstanceUID=uid, Modality="MR",
                       ImagePositionPatient=[float(x) for x in position],
                       ImageOrientationPatient=[float(x) for x in orientation],
                       PixelSpacing=[float(x) for x in spacing], **extra)


def _write_series(folder, vol, *, step=2.5, spacing=(0.5, 0.8), shuffle=True):
    """Slices of ``vol`` ([slice, row, col]) along an oblique normal, written in a shuffled
    file order with misleading names; returns the RAS affine they encode."""
    from pydicom.uid import generate_uid

    folder.mkdir()
    c, s = np.cos(0.3), np.sin(0.3)
    row_dir = np.array([c, s, 0.0])  # along a row (columns increase)
    col_dir = np.array([-s * 0.6, c * 0.6, 0.8])  # down a column (rows increase)
    normal = np.cross(row_dir, col_dir)
    origin = np.array([10.0, -20.0, 5.0])
    uid = generate_uid()
    order = np.random.default_rng(1).permutation(len(vol)) if shuffle else range(len(vol))
    for n, k in enumerate(order):
        _dicom_slice(folder / f"IM{n:03d}", vol[k], origin + k * step * normal,
                     np.concatenate([row_dir, col_dir]), spacing, uid, InstanceNumber=n + 1)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = step * normal, spacing[0] * col_dir, spacing[1] * row_dir
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def test_dicom_series_is_ordered_along_the_normal_with_spacing_and_affine(tmp_path):
    pytest.importorskip("pydicom")
    vol = np.random.default_rng(2).integers(0, 4000, (5, 6, 7))
    affine = _write_series(tmp_path / "series", vol)
    (tmp_path / "series" / "notes.txt").write_text("not DICOM")
    out = load(tmp_path / "series", volume=True)
    np.testing.assert_array_equal(out.data, vol)
    assert out.spacing == pytest.approx((2.5, 0.5, 0.8))
    np.testing.assert_allclose(out.meta["affine"], affine, atol=1e-9)
    # The affine's column norms are the spacings: a NIfTI written from it says the same.
    pytest.importorskip("nibabel")
    path = save(tmp_path / "s.nii.gz", out, affine=out.meta["affine"], volume=True)
    assert load(path, volume=True).spacing == pytest.approx(out.spacing)


def test_dicom_series_refusals(tmp_path):
    pytest.importorskip("pydicom")
    from pydicom.uid import generate_uid

    vol = np.ones((3, 4, 4))
    _write_series(tmp_path / "s", vol)
    with pytest.raises(IsADirectoryError, match="volume=True"):
        load(tmp_path / "s")
    # Uneven steps
    folder = tmp_path / "uneven"
    folder.mkdir()
    uid = generate_uid()
    for n, z in enumerate((0.0, 1.0, 3.0)):
        _dicom_slice(folder / f"{n}.dcm", vol[n], (0, 0, z), (1, 0, 0, 0, 1, 0), (1, 1), uid)
    with pytest.raises(ValueError, match="evenly spaced"):
        load(folder, volume=True)
    # Two series in one folder
    _dicom_slice(folder / "other.dcm", vol[0], (0, 0, 9), (1, 0, 0, 0, 1, 0), (1, 1),
                 generate_uid())
    with pytest.raises(ValueError, match="2 DICOM series"):
        load(folder, volume=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no DICOM"):
        load(tmp_path / "empty", volume=True)


# --------------------------------------------------------------------------- ratios


def test_ratio_per_axis_from_the_spacings():
    assert ratios_from_spacing((1.0, 1.0, 4.0), (0.5, 0.5, 1.0)) == (2, 2, 4)
    assert ratios_from_spacing((1.02, 1.0, 4.0), (0.5, 0.5, 1.0)) == (2, 2, 4)  # within tol
    with pytest.raises(ValueError, match=r"\(1, 1, 2\.5\) mm.*\(0\.5, 0\.5, 1\) mm.*axis 2"):
        ratios_from_spacing((1.0, 1.0, 2.5), (0.5, 0.5, 1.0))
    with pytest.raises(ValueError, match="us_spacing"):
        ratios_from_spacing((1.0, 1.0, 4.0), (0.5, 0.5))


def test_prepare_pair_infers_per_axis_ratios_and_refuses_2_5():
    mr = Image(np.zeros((4, 4, 2)), (1.0, 1.0, 4.0), {})
    us = Image(np.zeros((8, 8, 8)), (0.5, 0.5, 1.0), {"affine": np.diag([0.5, 0.5, 1.0, 1.0])})
    pair = prepare_pair(mr, us)
    assert pair.ratio == (2, 2, 4) and pair.ratio_source == "spacings"
    assert pair.message == "MR 4x4x2, US 8x8x8, ratio 2,2,4 (from spacings)"
    np.testing.assert_array_equal(pair.us_affine, us.meta["affine"])
    bad = Image(np.zeros((4, 4, 3)), (1.0, 1.0, 2.5))
    with pytest.raises(ValueError, match=r"\(1, 1, 2\.5\).*resample_us=True"):
        prepare_pair(bad, us)
    # From the shapes, and a ratio given as one int or a tuple
    assert prepare_pair(Image(np.zeros((4, 4, 2))), Image(np.zeros((8, 8, 8)))).ratio == (2, 2, 4)
    assert prepare_pair(Image(np.zeros((4, 4, 4))), Image(np.zeros((8, 8, 8))),
                        ratio=2).ratio == (2, 2, 2)
    with pytest.raises(ValueError, match="3 entries"):
        prepare_pair(mr, us, ratio=(2, 2))
    with pytest.raises(ValueError, match="contradicts"):
        prepare_pair(mr, us, ratio=(2, 2, 2))
    with pytest.raises(ValueError, match="`us.data` must be a non-empty 3-D volume"):
        prepare_pair(mr, Image(np.zeros((8, 8))))


def test_prepare_pair_resamples_a_volume_and_moves_mask_and_affine():
    rng = np.random.default_rng(3)
    mr = Image(rng.random((5, 5, 3)), (1.0, 1.0, 2.5))
    us_sp = (0.45, 0.5, 1.0)  # ratios 2.22, 2, 2.5: none of them fixable without resampling
    affine = np.diag(list(us_sp) + [1.0])
    fan = np.zeros((12, 11, 9), bool)
    fan[2:10, 3:9, 1:8] = True
    us = Image(rng.random((12, 11, 9)), us_sp, {"affine": affine})
    pair = prepare_pair(mr, us, resample_us=True, crop=True, mask=fan)
    r = pair.ratio
    assert isinstance(r, tuple) and len(r) == 3
    assert pair.us.shape == tuple(a * b for a, b in zip(r, pair.mr.shape))
    assert pair.us_spacing == pytest.approx(tuple(h / s for h, s in zip(mr.spacing, r)))
    assert pair.mask is not None and pair.mask.shape == pair.us.shape
    assert pair.mask.dtype == bool and 0 < pair.mask.mean() < 1
    # The affine follows the new spacing and keeps the outer corner of voxel 0.
    a = pair.us_affine
    np.testing.assert_allclose(np.diag(a)[:3], pair.us_spacing)
    np.testing.assert_allclose(a[:3, 3] - 0.5 * np.diag(a)[:3], -0.5 * np.array(us_sp))


def test_resampling_a_volume_keeps_a_linear_ramp():
    # A cubic B-spline reproduces linear functions, so the ramp survives with the new spacing.
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in (26, 24, 22)), indexing="ij")
    sp = np.array([0.45, 0.5, 1.1])
    ramp = 0.3 * i * sp[0] + 0.2 * j * sp[1] - 0.1 * k * sp[2]
    out, new_sp, ratio = resample_to_ratio(ramp, tuple(sp), (1.0, 1.0, 2.0))
    assert ratio == (2, 2, 2) and new_sp == pytest.approx((0.5, 0.5, 1.0))
    c = [(np.arange(n) + 0.5) * h - 0.5 * s for n, h, s in zip(out.shape, new_sp, sp)]
    ci, cj, ck = np.meshgrid(*c, indexing="ij")
    inner = tuple(slice(6, n - 6) for n in out.shape)  # away from the clamped borders
    np.testing.assert_allclose(out[inner], (0.3 * ci + 0.2 * cj - 0.1 * ck)[inner], atol=1e-4)


def test_crop_and_affine_in_3d():
    mr_c, us_c = crop_to_ratio(np.zeros((5, 5, 3)), np.zeros((9, 11, 13)), (2, 2, 4))
    assert mr_c.shape == (4, 5, 3) and us_c.shape == (8, 10, 12)
    with pytest.raises(ValueError, match="same number of dimensions"):
        crop_to_ratio(np.zeros((5, 5)), np.zeros((9, 11, 13)), 2)
    with pytest.raises(ValueError, match="tuple of 3"):
        crop_to_ratio(np.zeros((5, 5, 3)), np.zeros((9, 11, 13)), (2, 2))
    a = resampled_affine(np.diag([0.5, 0.5, 1.0, 1.0]), (0.5, 0.5, 1.0), (1.0, 1.0, 1.0))
    np.testing.assert_allclose(a[:3, 3], [0.25, 0.25, 0.0])


def test_field_of_view_fills_holes_in_3d():
    us = np.full((10, 10, 10), 1e-10)
    us[2:8, 2:8, 2:8] = 0.5
    us[4, 4, 4] = 0.0  # dark speckle inside the cone
    fov = field_of_view(us)
    assert fov.sum() == 216 and fov[4, 4, 4]
    with pytest.raises(ValueError, match="threshold"):
        field_of_view(np.zeros((4, 4, 4)))


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(not RESECT.is_dir(), reason="../shared/data/resect-case2 not present")
def test_resect_volumes_read_with_spacing_and_a_fan_mask():
    pytest.importorskip("nibabel")
    mr = load(RESECT / "mr_t1.nii.gz", volume=True)
    us = load(RESECT / "us.nii.gz", volume=True)
    assert mr.ndim == us.ndim == 3 and mr.shape == us.shape
    assert mr.spacing == pytest.approx((1.0, 1.0, 1.0))
    fov = field_of_view(us)  # the README: outside the fan the value is 1e-10
    assert 0.05 < fov.mean() < 0.8
    # The MR decimated by (2, 2, 3) gives a pair with per-axis ratios from the spacings.
    n = [s // r * r for s, r in zip(us.shape, (2, 2, 3))]
    coarse = Image(mr.data[: n[0]:2, : n[1]:2, : n[2]:3], (2.0, 2.0, 3.0))
    pair = prepare_pair(coarse, us, crop=True, mask=fov)
    assert pair.ratio == (2, 2, 3) and pair.us.shape == tuple(n)
    assert pair.mask is not None and pair.mask.shape == pair.us.shape
    np.testing.assert_array_equal(pair.us_affine, us.meta["affine"])
