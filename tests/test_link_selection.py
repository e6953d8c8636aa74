"""Link selection by blocked cross-validation (DESIGN 12.1, 12.2): the folds, the CV error
against a brute-force refit per fold, recovery of known degrees, the local link where the link
drifts, and the fallbacks."""
import numpy as np
import pytest

from mrusfusion.link import PolynomialLink, fit_polynomial, n_coeffs
from mrusfusion.link.selection import (FALLBACK_DEGREE, block_folds, select_degree,
                                       select_local_link)

from conftest import smooth_image


def test_blocks_are_dealt_to_folds_deterministically():
    lab = block_folds((64, 48), blocks=8, folds=5)
    assert set(np.unique(lab)) == set(range(5))
    np.testing.assert_array_equal(lab, block_folds((64, 48), blocks=8, folds=5))
    blocks = lab[::8, ::6]  # one pixel per block
    assert (blocks[:, 1:] != blocks[:, :-1]).all() and (blocks[1:] != blocks[:-1]).all()
    sizes = np.bincount(lab.ravel())
    assert sizes.max() - sizes.min() <= 0.1 * sizes.mean()


def _link_data(degree, noise, seed, shape=(64, 64)):
    x = smooth_image(shape, seed=seed)
    rng = np.random.default_rng(seed)
    coeffs = rng.uniform(-1, 1, n_coeffs(degree))
    y = PolynomialLink(coeffs, degree).evaluate(x)
    return x, y + noise * np.std(y) * rng.standard_normal(shape)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_degree_one_link_with_iid_noise_gives_one(seed):
    x, y = _link_data(1, 0.3, seed)
    sel = select_degree(x, y)
    assert (sel.degree, sel.fallback) == (1, False)
    assert sel.degrees == (1, 2, 3, 4, 5, 6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_degree_three_link_with_little_noise_gives_three(seed):
    x, y = _link_data(3, 1e-3, seed)
    sel = select_degree(x, y)
    assert (sel.degree, sel.fallback) == (3, False)
    assert sel.cv_error[2] < 0.1 * sel.cv_error[1]


def test_cv_error_equals_refits_on_the_held_in_folds(rng):
    x = smooth_image((48, 40), seed=7)
    y = np.sin(3 * x) + 0.05 * rng.standard_normal(x.shape)
    mask = rng.random(x.shape) > 0.1
    sel = select_degree(x, y, mask=mask, max_degree=3, blocks=6, folds=4)
    lab = block_folds(x.shape, 6, 4)
    yn = y / np.abs(y).max()
    var = np.var(yn[mask])
    for d in (1, 2, 3):
        errs = []
        for k in range(4):
            fit = fit_polynomial(x, yn, d, mask=mask & (lab != k))
            held = mask & (lab == k)
            errs.append(np.mean((fit.evaluate(x) - yn)[held] ** 2))
        assert sel.cv_error[d - 1] == pytest.approx(np.mean(errs) / var, rel=1e-7)
        assert sel.cv_se[d - 1] == pytest.approx(np.std(errs, ddof=1) / 2 / var, rel=1e-5)


def test_scale_of_the_images_does_not_matter():
    x, y = _link_data(3, 1e-2, 4)
    a = select_degree(x, y)
    b = select_degree(x * 1e150, y * 1e-200)
    assert a.degree == b.degree
    np.testing.assert_allclose(a.cv_error, b.cv_error, rtol=1e-6)


def test_too_small_an_image_falls_back():
    x, y = _link_data(3, 1e-3, 0, shape=(24, 40))
    sel = select_degree(x, y)
    assert sel.fallback and sel.degree == FALLBACK_DEGREE == 1
    assert "too small" in sel.message and np.isnan(sel.cv_error).all()
    assert not select_degree(x, y, blocks=4).fallback


def test_too_small_a_mask_falls_back():
    x, y = _link_data(2, 1e-3, 0)
    mask = np.zeros(x.shape, bool)
    mask[10:16, 10:16] = True
    sel = select_degree(x, y, mask=mask)
    assert sel.fallback and "fold" in sel.message


def test_rank_deficient_fits_fall_back():
    x = np.full((64, 64), 0.5)
    sel = select_degree(x, np.random.default_rng(0).random(x.shape))
    assert sel.fallback and "rank deficient" in sel.message


def _drifting(shape=(96, 96), noise=0.01, drift=1.0, seed=0):
    x = smooth_image(shape, seed=seed, sigma=3.0)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / shape[0]
    y = 0.2 + (0.5 + drift * yy) * x + 0.3 * drift * xx * x**2
    return x, y + noise * np.random.default_rng(seed).standard_normal(shape)


def test_local_link_chosen_where_the_link_drifts():
    x, y = _drifting()
    sel = select_local_link(x, y, 2, spacings=(16, 32, None), mus=(0.1, 1.0))
    assert not sel.fallback and sel.knot_spacing in (16.0, 32.0)
    assert sel.candidates[0] == (None, None)
    glob = sel.candidates.index((None, None))
    assert np.nanmin(sel.cv_error) < 0.2 * sel.cv_error[glob]


def test_global_link_chosen_where_it_holds():
    x, y = _drifting(drift=0.0, noise=0.05, seed=1)
    sel = select_local_link(x, y, 2, spacings=(16, 32, None), mus=(0.1, 1.0))
    assert (sel.knot_spacing, sel.mu, sel.fallback) == (None, None, False)


def test_local_selection_falls_back_on_the_global_link():
    x, y = _drifting(shape=(24, 24))
    sel = select_local_link(x, y, 2)
    assert sel.fallback and sel.knot_spacing is None and "too small" in sel.message


def test_bad_arguments():
    x = smooth_image((32, 32))
    with pytest.raises(ValueError, match="max_degree"):
        select_degree(x, x, max_degree=0)
    with pytest.raises(ValueError, match="folds"):
        select_degree(x, x, folds=1)
    with pytest.raises(ValueError, match="spacings"):
        select_local_link(x, x, 1, spacings=(1, None))
    with pytest.raises(ValueError, match="shape"):
        select_degree(x, x[:16])
