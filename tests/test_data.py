"""Tests of mrusfusion.data: bundled files and the analytic phantom."""
import numpy as np
import pytest

from mrusfusion import data
from mrusfusion.data import SAMPLE_PSF, pelvis_mr, phantom, sample_pair

DTYPES = [np.float32, np.float64]


# --------------------------------------------------------------------------- bundled files
@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_pair_shapes_and_dtypes(dtype):
    mr, us, psf = sample_pair(dtype=dtype)
    assert psf == SAMPLE_PSF
    assert mr.shape == (128, 128) and us.shape == (256, 256)
    assert mr.dtype == dtype and us.dtype == dtype
    assert mr.flags.c_contiguous and us.flags.c_contiguous
    assert np.isfinite(mr).all() and np.isfinite(us).all()
    # real images, not constants; the US is on the 2x finer grid of the same anatomy
    assert mr.std() > 0.05 and us.std() > 0.05


def test_sample_pair_values_match_the_files_in_float64():
    mr32, us32, _ = sample_pair(dtype=np.float32)
    mr, us, _ = sample_pair()
    np.testing.assert_array_equal(mr32, mr.astype(np.float32))
    np.testing.assert_array_equal(us32, us.astype(np.float32))


def test_sample_pair_returns_fresh_arrays():
    mr, _, _ = sample_pair()
    mr[:] = -1.0
    assert sample_pair()[0].max() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_pelvis_mr_shape_and_range(dtype):
    x = pelvis_mr(dtype=dtype)
    assert x.shape == (300, 400) and x.dtype == dtype
    assert np.isfinite(x).all()
    assert -0.01 < x.min() < 0.01 and 0.5 < x.max() <= 1.0  # documented range about [0, 0.64]


@pytest.mark.parametrize("loader", [sample_pair, pelvis_mr])
def test_loaders_refuse_non_float_dtypes(loader):
    with pytest.raises(TypeError, match="`dtype`"):
        loader(dtype=np.int32)


def test_credit_notice_ships_with_the_data():
    from importlib import resources

    notice = resources.files("mrusfusion.data").joinpath("README.md").read_text(encoding="utf-8")
    assert "El Mansouri" in notice and "Permission to use, copy, modify" in notice


# --------------------------------------------------------------------------- phantom
@pytest.mark.parametrize("dtype", DTYPES)
def test_phantom_default_shape_dtype_and_range(dtype):
    x = phantom(dtype=dtype)
    assert x.shape == (256, 256) and x.dtype == dtype
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x.max() - x.min() > 0.8  # dark bladder and bright lesion/fat both present


@pytest.mark.parametrize("shape", [(100, 300), (301, 77), (64, 64), (17, 23)])
def test_phantom_any_shape_stays_in_unit_range(shape):
    x = phantom(shape)
    assert x.shape == shape
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0


def test_phantom_is_deterministic_and_seed_adds_reproducible_texture():
    np.testing.assert_array_equal(phantom((64, 80)), phantom((64, 80)))
    a, b, c = (phantom((64, 80), seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0
    texture = a - phantom((64, 80))
    assert 0.005 < texture.std() < 0.05  # documented std 0.02 before clipping


def test_phantom_geometry_is_resolution_independent():
    coarse = phantom((128, 128))
    fine = phantom((256, 256)).reshape(128, 2, 128, 2).mean(axis=(1, 3))
    diff = np.abs(coarse - fine)
    assert abs(coarse.mean() - fine.mean()) < 2e-3
    # same anatomy: no structure moves (that would leave differences of 0.2-0.7, the contrasts)
    # and the edge-width differences touch few pixels
    assert diff.max() < 0.2 and (diff > 0.05).mean() < 0.12


def _lesion_masks(shape):
    rows, cols = np.meshgrid(
        np.arange(shape[0]) + 0.5, np.arange(shape[1]) + 0.5, indexing="ij"
    )
    dist = data._LESION.signed_distance(rows, cols, shape)  # pixels, positive inside
    return dist > 6.0, (dist < -6.0) & (dist > -12.0)


@pytest.mark.parametrize("shape", [(256, 256), (200, 320)])
def test_lesion_stands_out_from_its_surroundings(shape):
    x = phantom(shape)
    inside, ring = _lesion_masks(shape)
    assert inside.sum() > 20 and ring.sum() > 50
    assert x[inside].mean() - x[ring].mean() > 0.3
    assert x[inside].mean() == pytest.approx(data._LESION.value, abs=1e-3)


@pytest.mark.parametrize("shape", [(256, 256), (200, 320)])
def test_phantom_lesion_locates_the_lesion_of_the_phantom(shape):
    lesion = data.phantom_lesion(shape)
    x = phantom(shape)
    d, w = lesion.distance, lesion.edge_width
    assert d.shape == shape
    # the interior has the lesion's intensity, the boundary is where the ellipse is
    assert np.abs(x[d > 4 * w] - lesion.value).max() < 1e-3
    assert np.count_nonzero(d > 0) == pytest.approx(np.pi * np.prod(lesion.semi_axes), rel=0.05)
    # the centre is inside, and the pixel farthest inside lies next to it
    r, c = lesion.center
    assert d[int(round(r)), int(round(c))] > 0
    far = np.unravel_index(np.argmax(np.where(np.isfinite(d), d, -np.inf)), shape)
    assert abs(far[0] - r) <= 1.5 and abs(far[1] - c) <= 1.5
    # soft tissue, the background, covers most of the image
    assert lesion.background == pytest.approx(np.median(x), abs=1e-4)


def test_phantom_argument_errors():
    with pytest.raises(TypeError, match="`shape`"):
        phantom((64,))
    with pytest.raises(TypeError, match="`shape`"):
        phantom((64.0, 64))
    with pytest.raises(ValueError, match="`shape`"):
        phantom((0, 64))
    with pytest.raises(TypeError, match="`dtype`"):
        phantom(dtype=np.complex128)
    with pytest.raises(TypeError, match="`seed`"):
        phantom(seed=1.5)


def test_fusing_the_unpacked_sample_pair_uses_its_own_psf():
    import mrusfusion as mf

    pair = sample_pair()
    mr, us = pair.mr[:32, :32], pair.us[:64, :64]
    obvious = mf.fuse(mr, us, pair.psf, max_iter=2)
    explicit = mf.fuse(mr, us, psf=SAMPLE_PSF, max_iter=2)
    paper = mf.fuse(mr, us, max_iter=2)
    np.testing.assert_array_equal(obvious.x, explicit.x)
    assert not np.allclose(obvious.x, paper.x)
