"""Tests of mrusfusion.io: round trips per format, safe writes and spacing (the grid helpers of
io.geometry are in test_io_geometry.py)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from mrusfusion import io as mio
from mrusfusion.io import Image, load, save

from conftest import write_dicom


@pytest.fixture
def image():
    """A small non-square, non-symmetric image (catches transposes and flips)."""
    rng = np.random.default_rng(42)
    return rng.random((6, 9)) * 100.0 - 20.0


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_npy_round_trip_keeps_data_and_dtype(tmp_path, image, dtype):
    x = image.astype(dtype)
    path = save(tmp_path / "a.npy", x, spacing=(1.0, 2.0))
    out = load(path)
    assert out.data.dtype == dtype
    np.testing.assert_array_equal(out.data, x)
    assert out.spacing is None  # .npy keeps no spacing
    assert load(path, spacing=(0.5, 0.25)).spacing == (0.5, 0.25)
    assert out.meta["format"] == "npy"


def test_integer_data_become_float64(tmp_path):
    x = np.arange(12, dtype=np.int16).reshape(3, 4)
    np.save(tmp_path / "i.npy", x)
    out = load(tmp_path / "i.npy")
    assert out.data.dtype == np.float64
    np.testing.assert_array_equal(out.data, x)


def test_npz_round_trip_keeps_spacing(tmp_path, image):
    path = save(tmp_path / "a.npz", image, spacing=(0.3, 0.4))
    out = load(path)
    np.testing.assert_array_equal(out.data, image)
    assert out.spacing == (0.3, 0.4)
    assert out.meta["variable"] == "data"


def test_npz_without_spacing_and_variable_choice(tmp_path, image):
    np.savez(tmp_path / "two.npz", mr=image, us=image * 2, spacing=np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="variable"):
        load(tmp_path / "two.npz")
    out = load(tmp_path / "two.npz", variable="us")
    np.testing.assert_array_equal(out.data, image * 2)
    assert out.spacing == (1.0, 1.0)
    with pytest.raises(ValueError, match="mr, us"):
        load(tmp_path / "two.npz", variable="nope")
    np.savez(tmp_path / "one.npz", img=image)
    assert load(tmp_path / "one.npz").spacing is None


def test_image_object_brings_its_spacing(tmp_path, image):
    path = save(tmp_path / "a.npz", Image(image, (0.7, 0.7)))
    assert load(path).spacing == (0.7, 0.7)
    path = save(tmp_path / "b.npz", Image(image, (0.7, 0.7)), spacing=(0.1, 0.2))
    assert load(path).spacing == (0.1, 0.2)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nifti_round_trip(tmp_path, image, ext, dtype):
    pytest.importorskip("nibabel")
    x = image.astype(dtype)
    path = save(tmp_path / f"a{ext}", x, spacing=(0.5, 0.75))
    out = load(path)
    assert out.data.dtype == dtype
    np.testing.assert_array_equal(out.data, x)
    assert out.spacing == pytest.approx((0.5, 0.75))
    np.testing.assert_allclose(np.diag(out.meta["affine"])[:2], [0.5, 0.75])


def test_nifti_given_affine_sets_spacing(tmp_path, image):
    pytest.importorskip("nibabel")
    affine = np.diag([1.5, 2.5, 3.0, 1.0])
    affine[:3, 3] = [10, 20, 30]
    path = save(tmp_path / "a.nii.gz", image, spacing=(9.0, 9.0), affine=affine)
    out = load(path)
    assert out.spacing == pytest.approx((1.5, 2.5))
    np.testing.assert_allclose(out.meta["affine"], affine)


def test_nifti_volume_needs_slice(tmp_path):
    nib = pytest.importorskip("nibabel")
    vol = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    img = nib.Nifti1Image(vol, np.diag([0.8, 0.9, 4.0, 1.0]))
    path = tmp_path / "vol.nii.gz"
    nib.save(img, str(path))
    with pytest.raises(ValueError, match=r"\(4, 5, 3\)"):
        load(path)
    out = load(path, slice=2)
    np.testing.assert_array_equal(out.data, vol[:, :, 2])
    assert out.spacing == pytest.approx((0.8, 0.9))
    assert out.meta["slice"] == 2
    with pytest.raises(ValueError, match="slice"):
        load(path, slice=3)
    # A singleton third axis is a 2-D image.
    nib.save(nib.Nifti1Image(vol[:, :, :1], np.eye(4)), str(tmp_path / "one.nii"))
    np.testing.assert_array_equal(load(tmp_path / "one.nii").data, vol[:, :, 0])


def test_nifti_spacing_in_microns_is_converted(tmp_path, image):
    nib = pytest.importorskip("nibabel")
    img = nib.Nifti1Image(image, np.diag([200.0, 100.0, 1.0, 1.0]))
    img.header.set_xyzt_units("micron")
    nib.save(img, str(tmp_path / "um.nii"))
    assert load(tmp_path / "um.nii").spacing == pytest.approx((0.2, 0.1))


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_png_round_trip_is_monotonic(tmp_path, image, bit_depth):
    pytest.importorskip("imageio")
    path = save(tmp_path / "a.png", image, spacing=(1.0, 1.0), bit_depth=bit_depth)
    out = load(path)
    assert out.data.shape == image.shape
    assert out.spacing is None
    assert out.data.min() == 0 and out.data.max() == 2**bit_depth - 1
    order = np.argsort(image, axis=None)
    assert np.all(np.diff(out.data.ravel()[order]) >= 0)  # the mapping keeps the ordering
    expected = np.rint((image - image.min()) / np.ptp(image) * (2**bit_depth - 1))
    np.testing.assert_array_equal(out.data, expected)
    assert load(path, spacing=(0.2, 0.2)).spacing == (0.2, 0.2)


def test_png_refuses_nan_and_bad_bit_depth(tmp_path, image):
    pytest.importorskip("imageio")
    bad = image.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        save(tmp_path / "a.png", bad)
    with pytest.raises(ValueError, match="bit_depth"):
        save(tmp_path / "a.png", image, bit_depth=12)
    assert _listing(tmp_path) == []


def test_rgb_png_becomes_grey_by_luminance(tmp_path):
    iio = pytest.importorskip("imageio.v3")
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    rgb[1, :, 1] = 100
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 255, np.uint8)], axis=-1)
    for name, arr in (("rgb.png", rgb), ("rgba.png", rgba)):
        iio.imwrite(tmp_path / name, arr)
        out = load(tmp_path / name)
        assert out.data.shape == (4, 5)
        expected = 0.2989 * rgb[..., 0] + 0.5870 * rgb[..., 1] + 0.1140 * rgb[..., 2]
        np.testing.assert_allclose(out.data, expected)
        assert out.meta["grey_from_colour"]


@pytest.mark.parametrize("ext", [".tif", ".tiff"])
def test_tiff_round_trip_float32(tmp_path, image, ext):
    pytest.importorskip("tifffile")
    path = save(tmp_path / f"a{ext}", image)
    out = load(path, spacing=0.4)
    assert out.data.dtype == np.float32
    np.testing.assert_array_equal(out.data, image.astype(np.float32))
    assert out.spacing == (0.4, 0.4)


def test_tiff_stack_needs_slice(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    stack = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        load(tmp_path / "s.tif")
    np.testing.assert_array_equal(load(tmp_path / "s.tif", slice=1).data, stack[1])


def test_rgb_tiff_becomes_grey(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    rgb = np.zeros((5, 6, 3), dtype=np.uint8)
    rgb[..., 1] = 100
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    out = load(tmp_path / "c.tif")
    assert out.data.shape == (5, 6)
    np.testing.assert_allclose(out.data, 58.7)


def test_mat_v5_round_trip(tmp_path, image):
    scipy_io = pytest.importorskip("scipy.io")
    path = save(tmp_path / "a.mat", image, spacing=(0.25, 0.5))
    out = load(path)
    np.testing.assert_array_equal(out.data, image)
    assert out.spacing == (0.25, 0.5)
    assert out.meta["variable"] == "image"
    assert set(k for k in scipy_io.loadmat(path) if not k.startswith("__")) == {"image", "spacing"}
    path = save(tmp_path / "b.mat", image, variable="y1")
    assert load(path).meta["variable"] == "y1"
    assert load(path).spacing is None
    with pytest.raises(ValueError, match="variable"):
        save(tmp_path / "c.mat", image, variable="1bad")


def test_mat_v5_several_variables_and_volume(tmp_path, image):
    from scipy.io import savemat

    vol = np.arange(3 * 4 * 2, dtype=float).reshape(3, 4, 2)
    savemat(tmp_path / "m.mat", {"a": image, "vol": vol})
    with pytest.raises(ValueError, match="a, vol"):
        load(tmp_path / "m.mat")
    np.testing.assert_array_equal(load(tmp_path / "m.mat", variable="a").data, image)
    with pytest.raises(ValueError, match="slice"):
        load(tmp_path / "m.mat", variable="vol")
    np.testing.assert_array_equal(
        load(tmp_path / "m.mat", variable="vol", slice=1).data, vol[:, :, 1]
    )


def test_bundled_matlab_sample_loads():
    from importlib import resources

    path = resources.files("mrusfusion") / "data" / "y1.mat"
    out = load(str(path))
    assert out.data.shape == (128, 128)
    assert out.meta["variable"] == "y1"


def _write_mat73(path, arrays):
    """A minimal MATLAB v7.3 file: 512-byte header block then HDF5, arrays stored transposed."""
    h5py = pytest.importorskip("h5py")
    header = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, "
              b"Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")
    header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in arrays.items():
            ds = f.create_dataset(name, data=np.asarray(arr).T)
            ds.attrs["MATLAB_class"] = np.bytes_(b"double")
    with open(path, "r+b") as fh:
        fh.write(header)


def test_mat_v73_via_h5py(tmp_path, image):
    pytest.importorskip("h5py")
    path = tmp_path / "v73.mat"
    _write_mat73(path, {"img": image, "spacing": np.array([[0.2, 0.3]])})
    out = load(path)
    np.testing.assert_array_equal(out.data, image)  # transposed back to MATLAB's layout
    assert out.spacing == (0.2, 0.3)
    assert out.meta["mat_version"] == "7.3"


def test_mat_v73_without_h5py_names_the_extra(tmp_path, image, monkeypatch):
    pytest.importorskip("h5py")
    path = tmp_path / "v73.mat"
    _write_mat73(path, {"img": image})
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(ImportError, match=r'pip install "mrusfusion\[io\]"'):
        load(path)


# --------------------------------------------------------------------------- DICOM


def test_dicom_mr_pixel_spacing_and_rescale(tmp_path):
    pytest.importorskip("pydicom")
    pixels = np.arange(6 * 9, dtype=np.uint16).reshape(6, 9)
    path = write_dicom(tmp_path / "mr.dcm", pixels, Modality="MR", PixelSpacing=[0.9, 1.1],
                  RescaleSlope=2.0, RescaleIntercept=-10.0)
    out = load(path)
    np.testing.assert_allclose(out.data, pixels * 2.0 - 10.0)
    assert out.data.dtype == np.float64
    assert out.spacing == pytest.approx((0.9, 1.1))
    assert out.meta["modality"] == "MR"
    assert load(path, spacing=(3.0, 3.0)).spacing == (3.0, 3.0)


def test_dicom_us_region_spacing_is_cm(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    region = Dataset()
    region.RegionSpatialFormat = 1
    region.PhysicalUnitsXDirection = 3  # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = 0.02  # cm per column = 0.2 mm
    region.PhysicalDeltaY = 0.015  # cm per row = 0.15 mm
    pixels = np.arange(6 * 9, dtype=np.uint16).reshape(6, 9)
    path = write_dicom(tmp_path / "us.dcm", pixels, Modality="US",
                  SequenceOfUltrasoundRegions=Sequence([region]))
    out = load(path)
    assert out.spacing == pytest.approx((0.15, 0.2))
    assert out.meta["spacing_source"] == "ultrasound region"
    np.testing.assert_array_equal(out.data, pixels)
    assert pydicom.dcmread(path).Modality == "US"


def test_dicom_multiframe_needs_slice(tmp_path):
    pytest.importorskip("pydicom")
    frames = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    path = write_dicom(tmp_path / "mf.dcm", frames, Modality="US", PixelSpacing=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"\(3, 4, 5\)"):
        load(path)
    out = load(path, slice=2)
    np.testing.assert_array_equal(out.data, frames[2])
    assert out.meta["slice"] == 2


# --------------------------------------------------------------------------- errors and safe writes


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npy")
    (tmp_path / "a.xyz").write_bytes(b"0")
    with pytest.raises(ValueError, match=r"\.nii\.gz.*\.mat"):
        load(tmp_path / "a.xyz")
    with pytest.raises(ValueError, match="supported"):
        save(tmp_path / "a.jpg", np.zeros((2, 2)))


def test_missing_optional_library_message(monkeypatch):
    def fail(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr("importlib.import_module", fail)
    with pytest.raises(ImportError, match=r'pip install "mrusfusion\[io\]"'):
        mio.image.require("nibabel", "reading NIfTI files")


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        save(tmp_path / "a.npy", np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="complex"):
        save(tmp_path / "a.npy", np.zeros((2, 2), complex))
    with pytest.raises(ValueError, match="spacing"):
        save(tmp_path / "a.npz", np.zeros((2, 2)), spacing=(0.0, 1.0))
    np.save(tmp_path / "b.npy", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="slice"):
        load(tmp_path / "b.npy", slice=0)
    with pytest.raises(ValueError, match="variable"):
        load(tmp_path / "b.npy", variable="x")
    assert _listing(tmp_path) == ["b.npy"]


def test_overwrite_refusal_leaves_file_untouched(tmp_path, image):
    path = tmp_path / "a.npy"
    path.write_bytes(b"precious bytes")
    with pytest.raises(FileExistsError, match="overwrite"):
        save(path, image)
    assert path.read_bytes() == b"precious bytes"
    assert _listing(tmp_path) == ["a.npy"]
    save(path, image, overwrite=True)
    np.testing.assert_array_equal(load(path).data, image)
    assert _listing(tmp_path) == ["a.npy"]


def test_failed_write_leaves_no_temp_file(tmp_path, image, monkeypatch):
    old = tmp_path / "a.npy"
    old.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path / "new.npy", image)
    with pytest.raises(OSError, match="disk full"):
        save(old, image, overwrite=True)
    assert _listing(tmp_path) == ["a.npy"]
    assert old.read_bytes() == b"old"


def test_saved_file_has_normal_permissions(tmp_path, image):
    path = save(tmp_path / "a.npy", image)
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_returns_path_and_missing_folder(tmp_path, image):
    path = save(str(tmp_path / "a.npz"), image)
    assert path == tmp_path / "a.npz"
    with pytest.raises(FileNotFoundError):
        save(tmp_path / "no" / "a.npz", image)
