"""The misfit area of the link (weights.misfit): autocovariance, lobe area, speckle removed."""
import numpy as np
import pytest
from scipy import ndimage

import mrusfusion as mf
from mrusfusion.weights import misfit_area
from mrusfusion.weights.misfit import autocovariance


def _field(shape, s, seed):
    """Zero-mean unit-variance Gaussian field with autocorrelation exp(-d^2 / (4 s^2))."""
    z = np.random.default_rng(seed).normal(size=shape)
    f = ndimage.gaussian_filter(z, s, mode="wrap")
    return (f - f.mean()) / f.std()


def _gauss_rho(s, half):
    d = np.arange(-half, half + 1)
    return np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (4.0 * s * s))


def test_autocovariance_matches_the_pair_sums_inside_the_mask():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(20, 24))
    mask = rng.random(r.shape) > 0.3
    c = autocovariance(r, mask, max_lag=3)
    rr = np.where(mask, r - r[mask].mean(), 0.0)
    for d1 in range(-3, 4):
        for d2 in range(-3, 4):
            a = rr[max(d1, 0): r.shape[0] + min(d1, 0), max(d2, 0): r.shape[1] + min(d2, 0)]
            b = rr[max(-d1, 0): r.shape[0] + min(-d1, 0), max(-d2, 0): r.shape[1] + min(-d2, 0)]
            ma = mask[max(d1, 0): r.shape[0] + min(d1, 0), max(d2, 0): r.shape[1] + min(d2, 0)]
            mb = mask[max(-d1, 0): r.shape[0] + min(-d1, 0), max(-d2, 0): r.shape[1] + min(-d2, 0)]
            expected = (a * b).sum() / (ma & mb).sum()
            assert c[3 + d1, 3 + d2] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_white_residual_has_unit_area():
    r = np.random.default_rng(1).normal(size=(128, 128))
    assert misfit_area(r, 1.0, 0.0, np.ones((1, 1))) == 1.0


@pytest.mark.parametrize("s", [2.0, 3.5])
def test_area_of_a_smooth_misfit_is_recovered(s):
    # rho = exp(-d^2 / (4 s^2)) > 1/2 inside a disc of radius^2 = 4 s^2 log 2.
    expected = np.pi * 4.0 * s * s * np.log(2.0)
    r = _field((256, 256), s, seed=2)
    assert misfit_area(r, 1.0, 0.0, np.ones((1, 1))) == pytest.approx(expected, rel=0.25)


def test_the_speckle_part_of_the_residual_is_not_counted():
    speckle = _field((256, 256), 1.0, seed=3)
    rho = _gauss_rho(1.0, 6)
    # Speckle alone, misfit at the 5 % floor: no misfit lobe.
    assert misfit_area(speckle, 0.05, 1.0, rho) == 1.0
    # Speckle plus a wide misfit: the misfit's lobe, not the speckle's nor their mixture's.
    misfit = np.sqrt(0.5) * _field((256, 256), 4.0, seed=4)
    area = misfit_area(speckle + misfit, 0.5, 1.0, rho)
    assert area == pytest.approx(np.pi * 64.0 * np.log(2.0), rel=0.3)


def test_fuse_reports_the_misfit_area_and_keeps_the_tau4_rule():
    sim = mf.simulate(mf.phantom((32, 32)), ratio=2, seed=0)
    res = mf.fuse(sim.mr, sim.us, max_iter=2)
    w = res.weights
    assert np.isfinite(w.misfit_area) and w.misfit_area >= 1.0
    assert w.tau4 == pytest.approx(w.sigma_m2 / (2.0 * w.sigma_f2 * w.grain_area), rel=1e-12)
    assert "misfit_area" in w.as_dict()
