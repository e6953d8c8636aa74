"""Tests of mrusfusion.metrics: hand-computed values, scikit-image agreement, error paths."""
import math

import numpy as np
import pytest
from scipy import ndimage

from mrusfusion import metrics
from mrusfusion.metrics import cnr, isnr, mssim, profile, profile_slope, psnr, rmse

skm = pytest.importorskip("skimage.metrics")

DTYPES = [np.float32, np.float64]

# 2x2 hand example: xh - x = +-0.5, so RMSE = 0.5; y - x = +-1, so ||y - x||^2 = 4, ||xh - x||^2 = 1
X = np.array([[1.0, 2.0], [3.0, 4.0]])
XH = np.array([[1.5, 1.5], [3.5, 3.5]])
Y = np.array([[2.0, 1.0], [4.0, 3.0]])


def test_all_lists_public_functions():
    assert sorted(metrics.__all__) == sorted(
        ["rmse", "psnr", "isnr", "mssim", "cnr", "profile", "profile_slope"]
    )
    assert all(callable(getattr(metrics, name)) for name in metrics.__all__)


# --------------------------------------------------------------------------- rmse / psnr / isnr
@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_computed_values(dtype):
    xh, x, y = XH.astype(dtype), X.astype(dtype), Y.astype(dtype)
    assert rmse(xh, x) == pytest.approx(0.5, abs=1e-12)
    # default peak max(max xh, max x) = 4: 20 log10(4 / 0.5)
    assert psnr(xh, x) == pytest.approx(20 * math.log10(8.0), abs=1e-12)
    assert psnr(xh, x, data_range=2.0) == pytest.approx(20 * math.log10(4.0), abs=1e-12)
    assert isnr(xh, x, y) == pytest.approx(10 * math.log10(4.0), abs=1e-12)
    assert isinstance(rmse(xh, x), float) and isinstance(psnr(xh, x), float)


def test_default_peak_uses_the_larger_maximum():
    x = np.zeros((2, 2))
    xh = np.full((2, 2), 0.25)
    xh[0, 0] = 2.25  # estimate has the larger max: peak 2.25, errors (2.25, .25, .25, .25)
    expected = 20 * math.log10(2.25 / math.sqrt((2.25**2 + 3 * 0.25**2) / 4))
    assert psnr(xh, x) == pytest.approx(expected, abs=1e-12)


def test_rmse_is_symmetric_and_accepts_integers():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, size=(7, 9))
    b = rng.integers(0, 255, size=(7, 9))
    assert rmse(a, b) == rmse(b, a)
    assert rmse(a, b) == pytest.approx(np.sqrt(np.mean((a - b) ** 2.0)), rel=1e-14)


def test_float32_and_float64_agree():
    rng = np.random.default_rng(2)
    x, xh, y = (rng.random((16, 12)).astype(np.float32) for _ in range(3))
    for f in (rmse, psnr):
        assert f(xh, x) == f(xh.astype(np.float64), x.astype(np.float64))
    assert isnr(xh, x, y) == isnr(*(a.astype(np.float64) for a in (xh, x, y)))


def test_exact_estimates_give_infinite_ratios():
    x = np.arange(6.0).reshape(2, 3)
    assert rmse(x, x) == 0.0
    assert psnr(x, x) == math.inf
    assert isnr(x, x, x + 1) == math.inf
    assert isnr(x + 1, x, x) == -math.inf
    assert isnr(x, x, x) == 0.0


def test_isnr_is_positive_when_the_estimate_improves():
    rng = np.random.default_rng(3)
    x = rng.random((20, 20))
    y = x + 0.1 * rng.standard_normal(x.shape)
    xh = x + 0.5 * (y - x)  # halves the error: 20 log10(2) dB
    assert isnr(xh, x, y) == pytest.approx(20 * math.log10(2.0), abs=1e-10)
    assert isnr(y, x, y) == pytest.approx(0.0, abs=1e-12)


def test_psnr_decreases_with_the_error():
    x = np.linspace(0, 1, 64).reshape(8, 8)
    assert psnr(x + 0.01, x) > psnr(x + 0.02, x) > psnr(x + 0.04, x)


# --------------------------------------------------------------------------- mssim
def _structured(shape, seed):
    """A piecewise-smooth test image: blurred blocks, a ramp and a disc."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[: shape[0], : shape[1]]
    img = 0.4 * (c / shape[1]) + 0.3 * ((r // 8 + c // 8) % 2)
    img += 0.3 * (np.hypot(r - shape[0] / 2, c - shape[1] / 3) < min(shape) / 4)
    img = ndimage.gaussian_filter(img, 1.0)
    return img, np.clip(img + 0.05 * rng.standard_normal(shape), 0, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 64), (37, 50), (11, 11), (12, 29)])
@pytest.mark.parametrize("kind", ["random", "structured"])
def test_mssim_matches_scikit_image(dtype, shape, kind):
    rng = np.random.default_rng(sum(shape))
    if kind == "random":
        a = rng.random(shape)
        b = np.clip(a + 0.2 * rng.standard_normal(shape), 0, 1)
    else:
        a, b = _structured(shape, seed=shape[0])
    a, b = a.astype(dtype), b.astype(dtype)
    expected = skm.structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert mssim(a, b) == pytest.approx(float(expected), abs=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mssim_of_an_image_with_itself_is_one(dtype):
    a, _ = _structured((40, 33), seed=4)
    assert mssim(a.astype(dtype), a.astype(dtype)) == pytest.approx(1.0, abs=1e-12)


def test_mssim_is_symmetric_bounded_and_drops_with_noise():
    a, _ = _structured((48, 48), seed=5)
    rng = np.random.default_rng(5)
    noisy = [a + s * rng.standard_normal(a.shape) for s in (0.02, 0.1, 0.3)]
    values = [mssim(n, a) for n in noisy]
    assert values[0] > values[1] > values[2]
    assert all(-1 <= v <= 1 for v in values)
    assert mssim(noisy[1], a) == pytest.approx(mssim(a, noisy[1]), abs=1e-14)


def test_mssim_is_invariant_to_a_common_rescaling_with_data_range():
    a, b = _structured((32, 40), seed=6)
    assert mssim(10 * a, 10 * b, data_range=10.0) == pytest.approx(mssim(a, b), abs=1e-12)


def test_mssim_honours_window_parameters_like_scikit_image():
    a, b = _structured((40, 40), seed=7)
    expected = skm.structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=0.8, win_size=7,
        use_sample_covariance=False,
    )
    # scikit-image sizes its kernel from sigma (radius int(3.5 sigma + 0.5)): 7x7 for sigma 0.8
    assert mssim(a, b, win_size=7, sigma=0.8) == pytest.approx(float(expected), abs=1e-12)
    assert mssim(a, b, win_size=7, sigma=0.8) != pytest.approx(mssim(a, b), abs=1e-3)


# --------------------------------------------------------------------------- cnr
# Left 2x2 block: 0, 2, 2, 0 (mean 1, variance 1). Right block: 5, 5, 7, 9 (mean 6.5, var 2.75).
CNR_IMAGE = np.array([[0.0, 2.0, 5.0, 5.0], [2.0, 0.0, 7.0, 9.0]])
LEFT, RIGHT = np.s_[:, :2], np.s_[:, 2:]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cnr_hand_computed(dtype):
    img = CNR_IMAGE.astype(dtype)
    assert cnr(img, LEFT, RIGHT) == pytest.approx(5.5 / math.sqrt(3.75), rel=1e-12)
    assert cnr(img, LEFT, RIGHT, variant="authors") == pytest.approx(5.5 / 3.75, rel=1e-12)


def test_cnr_is_symmetric_and_db_is_20_log10():
    rng = np.random.default_rng(8)
    img = rng.random((30, 30))
    img[10:20, 10:20] += 0.7
    a, b = np.s_[10:20, 10:20], np.s_[0:8, 0:30]
    for variant in ("standard", "authors"):
        linear = cnr(img, a, b, variant=variant)
        assert cnr(img, b, a, variant=variant) == linear
        assert cnr(img, a, b, db=True, variant=variant) == pytest.approx(
            20 * math.log10(linear), abs=1e-12
        )


def test_cnr_masks_and_slices_agree():
    mask = np.zeros(CNR_IMAGE.shape, dtype=bool)
    mask[LEFT] = True
    assert cnr(CNR_IMAGE, mask, ~mask) == cnr(CNR_IMAGE, LEFT, RIGHT)
    assert cnr(CNR_IMAGE, mask, RIGHT) == cnr(CNR_IMAGE, LEFT, RIGHT)


def test_standard_cnr_is_invariant_to_affine_intensity_changes_but_authors_is_not():
    rng = np.random.default_rng(9)
    img = rng.random((20, 20))
    img[:, 10:] += 0.5
    a, b = np.s_[:, :10], np.s_[:, 10:]
    assert cnr(-3 * img + 7, a, b) == pytest.approx(cnr(img, a, b), rel=1e-12)
    assert cnr(3 * img, a, b, variant="authors") == pytest.approx(
        cnr(img, a, b, variant="authors") / 3, rel=1e-12
    )


def test_cnr_limits():
    img = np.zeros((4, 4))
    img[:, 2:] = 1.0
    assert cnr(img, np.s_[:, :2], np.s_[:, 2:]) == math.inf  # constant regions, distinct means
    noisy = np.random.default_rng(10).random((4, 4))
    assert cnr(noisy, np.s_[:, :], np.s_[:, :], db=True) == -math.inf  # identical regions
    with pytest.raises(ValueError, match="undefined"):
        cnr(np.ones((4, 4)), np.s_[:, :2], np.s_[:, 2:])


# --------------------------------------------------------------------------- profiles
RAMP_A, RAMP_B, RAMP_C = 0.3, -0.7, 2.0  # intensity = a * row + b * col + c


def _ramp(shape=(32, 40), dtype=np.float64):
    r, c = np.mgrid[: shape[0], : shape[1]]
    return (RAMP_A * r + RAMP_B * c + RAMP_C).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "start, end, expected",
    [
        ((5, 2), (5, 30), RAMP_B),  # horizontal
        ((1, 9), (28, 9), RAMP_A),  # vertical
        ((2, 3), (20, 27), (18 * RAMP_A + 24 * RAMP_B) / 30),  # diagonal, length 30
        ((20.5, 27.25), (2.5, 3.25), -(18 * RAMP_A + 24 * RAMP_B) / 30),  # reversed, off-grid
    ],
)
def test_profile_slope_recovers_a_linear_ramp(dtype, start, end, expected):
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert profile_slope(_ramp(dtype=dtype), start, end) == pytest.approx(expected, abs=tol)
    assert profile_slope(_ramp(dtype=dtype), start, end, num=7) == pytest.approx(expected, abs=tol)


def test_profile_samples_and_distances():
    d, v = profile(_ramp(), (2, 3), (20, 27))
    assert d.shape == v.shape == (31,)  # default: length 30 + 1 samples
    np.testing.assert_allclose(d, np.arange(31.0), atol=1e-12)
    slope = (18 * RAMP_A + 24 * RAMP_B) / 30
    np.testing.assert_allclose(v, RAMP_C + 2 * RAMP_A + 3 * RAMP_B + slope * d, atol=1e-12)
    d, v = profile(_ramp(), (0, 0), (0, 1), num=5)
    np.testing.assert_allclose(d, [0, 0.25, 0.5, 0.75, 1.0])
    d, v = profile(_ramp(), (3, 3), (3.2, 3))  # shorter than a pixel: still two samples
    np.testing.assert_allclose(d, [0.0, 0.2], atol=1e-12)
    assert profile_slope(_ramp(), (3, 3), (3.2, 3)) == pytest.approx(RAMP_A, abs=1e-12)


def test_profile_slope_is_steeper_for_a_sharper_edge():
    step = np.zeros((21, 21))
    step[:, 11:] = 1.0
    blurred = ndimage.gaussian_filter(step, 3.0)
    sharp = profile_slope(step, (10, 7), (10, 14))
    assert sharp > profile_slope(blurred, (10, 7), (10, 14)) > 0


# --------------------------------------------------------------------------- errors
def test_shape_mismatch_names_the_argument():
    with pytest.raises(ValueError, match="`reference`"):
        rmse(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="`observation`"):
        isnr(np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((4, 3)))


@pytest.mark.parametrize("f", [rmse, psnr, mssim])
def test_non_2d_and_nan_and_complex_are_refused(f):
    good = np.zeros((16, 16))
    with pytest.raises(ValueError, match="`estimate` must be a 2-D array"):
        f(np.zeros((16, 16, 1)), good)
    bad = good.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="`reference`.*NaN"):
        f(good, bad)
    with pytest.raises(TypeError, match="`estimate`"):
        f(good.astype(complex), good)


def test_empty_images_are_refused():
    with pytest.raises(ValueError, match="`estimate`"):
        rmse(np.zeros((0, 3)), np.zeros((0, 3)))


def test_psnr_argument_errors():
    with pytest.raises(ValueError, match="data_range"):
        psnr(np.zeros((2, 2)), -np.ones((2, 2)))  # default peak is not positive
    with pytest.raises(ValueError, match="`data_range`"):
        psnr(np.ones((2, 2)), np.ones((2, 2)), data_range=-1.0)
    with pytest.raises(TypeError, match="`data_range`"):
        psnr(np.ones((2, 2)), np.ones((2, 2)), data_range="1")


def test_mssim_argument_errors():
    a = np.zeros((16, 16))
    with pytest.raises(ValueError, match="at least 11x11"):
        mssim(np.zeros((10, 16)), np.zeros((10, 16)))
    with pytest.raises(ValueError, match="`win_size` must be odd"):
        mssim(a, a, win_size=8)
    with pytest.raises(ValueError, match="`win_size`"):
        mssim(a, a, win_size=1)
    with pytest.raises(ValueError, match="`sigma`"):
        mssim(a, a, sigma=0.0)
    with pytest.raises(ValueError, match="`data_range`"):
        mssim(a, a, data_range=0.0)


def test_cnr_argument_errors():
    img = np.arange(16.0).reshape(4, 4)
    with pytest.raises(ValueError, match="`region_a` selects no pixel"):
        cnr(img, np.s_[2:2, :], np.s_[:, :])
    with pytest.raises(ValueError, match="`region_b` mask must have the image's shape"):
        cnr(img, np.s_[:2], np.ones((3, 3), dtype=bool))
    with pytest.raises(TypeError, match="`region_b`"):
        cnr(img, np.s_[:2], np.ones((4, 4)))  # a float array is not a mask
    with pytest.raises(TypeError, match="`region_a`"):
        cnr(img, (1, 2), np.s_[:2])
    with pytest.raises(ValueError, match="`variant`"):
        cnr(img, np.s_[:2], np.s_[2:], variant="paper")
    with pytest.raises(ValueError, match="`image` must be a 2-D array"):
        cnr(np.zeros(4), np.s_[:2], np.s_[2:])


def test_profile_argument_errors():
    img = _ramp()
    with pytest.raises(ValueError, match="`end` must lie inside the image"):
        profile(img, (0, 0), (32, 0))
    with pytest.raises(ValueError, match="`start` must lie inside the image"):
        profile(img, (-0.5, 0), (3, 0))
    with pytest.raises(ValueError, match="distinct"):
        profile_slope(img, (3, 3), (3, 3))
    with pytest.raises(TypeError, match="`start`"):
        profile(img, (1, 2, 3), (3, 3))
    with pytest.raises(ValueError, match="`num`"):
        profile(img, (0, 0), (5, 5), num=1)
    with pytest.raises(ValueError, match="`order`"):
        profile(img, (0, 0), (5, 5), order=6)
