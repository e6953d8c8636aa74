"""mrusfusion.weights: the half-spectrum GCV and SURE evaluations against the plain full-spectrum
formulas, GCV's noise estimate on data of known noise, coloured-noise SURE against white SURE
and against the oracle smoothing, and the rule that turns the measurements into weights."""
from dataclasses import replace

import numpy as np
import pytest

from mrusfusion import simulate, phantom
from mrusfusion.fourier import FourierProblem, dtd_symbol
from mrusfusion.operators import as_psf
from mrusfusion.weights import (LOG_RAYLEIGH_STD, estimate_weights, gcv_tau1, noise_power,
                                speckle_correlation, sure_rho, us_weights)
from mrusfusion.weights.gcv import _HalfGCV, _gcv_terms
from test_weights_speckle import correlated_us, log_speckle_correlation


@pytest.mark.parametrize("shape,s", [((48, 36), 4), ((60, 42), 6), ((64, 64), 2), ((45, 63), 3)])
def test_half_spectrum_gcv_matches_the_full_one(shape, s, rng):
    fp = FourierProblem(shape, s, as_psf(None, shape), np.float64, 1, None, "FFTW_ESTIMATE")
    ym = rng.random((shape[0] // s, shape[1] // s))
    power = np.abs(np.fft.fft2(ym)) ** 2
    half = _HalfGCV(fp.abs_lam2, dtd_symbol(shape), power, s)
    for tau in (1e-5, 1e-3, 0.1, 10.0):
        np.testing.assert_allclose(half(tau),
                                   _gcv_terms(fp.abs_lam2, dtd_symbol(shape), power, s, tau),
                                   rtol=1e-10)


@pytest.mark.parametrize("shape", [(40, 30), (41, 33)])
def test_sure_rho_is_the_argmin_of_the_full_spectrum_formula(shape, rng):
    y = rng.random(shape)
    sigma2 = 0.01
    Y2 = np.abs(np.fft.fft2(y)) ** 2
    dtd, n = dtd_symbol(shape), y.size
    grid = np.logspace(-4, 3, 71)

    def sure(rho):
        a = 1.0 / (1.0 + 2.0 * rho * dtd)
        return np.sum(Y2 * (1.0 - a) ** 2) / n - n * sigma2 + 2.0 * sigma2 * np.sum(a)

    assert sure_rho(y, sigma2) == grid[int(np.argmin([sure(r) for r in grid]))]


def test_gcv_measures_the_mr_noise_variance():
    sim = simulate(phantom((128, 128)), 2, mr_snr_db=25.0, seed=3)
    scale = sim.mr.max()
    shape = sim.us.shape
    fp = FourierProblem(shape, 2, as_psf(None, shape), np.float64, 1, None, "FFTW_ESTIMATE")
    _, sigma_m2 = gcv_tau1(sim.mr / scale, 2, fp.abs_lam2)
    true = (sim.mr_noise_std / scale) ** 2
    assert 0.85 * true < sigma_m2 < 1.15 * true  # measured within 6% over 9 seeds and SNRs


# --------------------------------------------------------------------------- coloured SURE
GRID = np.logspace(-4, 3, 71)
STEP = 10.0 ** 0.1 * (1 + 1e-9)  # one step of SURE's grid


def test_noise_power_of_white_noise_is_flat_and_sums_to_the_variance():
    white = np.zeros((5, 5))
    white[2, 2] = 1.0
    np.testing.assert_allclose(noise_power(white, (30, 41), 0.02), 0.02, rtol=1e-12)
    p = noise_power(log_speckle_correlation(1.5), (30, 41), 0.02)
    col = np.full(p.shape[1], 2.0)
    col[0] = 1.0
    assert p.min() >= 0.0
    assert np.sum(p * col) == pytest.approx(30 * 41 * 0.02, rel=1e-12)
    assert p[0, 0] > 5 * 0.02 > p[15, 20]  # correlated: power at low frequencies


@pytest.mark.parametrize("shape", [(40, 30), (41, 33)])
def test_coloured_sure_with_a_flat_spectrum_is_white_sure(shape, rng):
    y = rng.random(shape)
    flat = np.full((shape[0], shape[1] // 2 + 1), 0.01)
    assert sure_rho(y, 0.01, noise_power=flat) == sure_rho(y, 0.01)


def test_coloured_sure_reduces_to_white_sure_on_iid_noise():
    sim = simulate(phantom((256, 256)), 2, seed=0)
    y = sim.us / sim.us.max()
    s2 = (sim.us_noise_scale / sim.us.max() * LOG_RAYLEIGH_STD) ** 2
    rho = speckle_correlation(y).rho
    coloured = sure_rho(y, s2, noise_power=noise_power(rho, y.shape, s2))
    assert 1 / STEP <= coloured / sure_rho(y, s2) <= STEP


def _smoothing_mse(y, v, rho):
    a = 1.0 / (1.0 + 2.0 * rho * dtd_symbol(y.shape))
    return float(np.mean((np.real(np.fft.ifft2(np.fft.fft2(y) * a)) - v) ** 2))


@pytest.mark.parametrize("width", [1.0, 2.0])
def test_coloured_sure_finds_the_oracle_smoothing_of_correlated_speckle(width):
    rng = np.random.default_rng(int(7 * width))
    y, b = correlated_us(width, rng)
    v = 0.3 + 0.5 * phantom(y.shape)
    v = v + (y - v).mean()  # the smoother keeps the mean, the noise's included
    s2 = (b * LOG_RAYLEIGH_STD) ** 2
    power = noise_power(speckle_correlation(y).rho, y.shape, s2)
    coloured, white = sure_rho(y, s2, noise_power=power), sure_rho(y, s2)
    oracle = GRID[int(np.argmin([_smoothing_mse(y, v, r) for r in GRID]))]
    assert coloured > 2 * white  # white SURE sees high-frequency noise that is not there
    assert 1 / STEP <= coloured / oracle <= STEP  # measured: the oracle's grid point
    assert _smoothing_mse(y, v, coloured) < 0.8 * _smoothing_mse(y, v, white)


# --------------------------------------------------------------------------- the rule


def _fourier(shape, s):
    return FourierProblem(shape, s, as_psf(None, shape), np.float64, 1, None, "FFTW_ESTIMATE")


@pytest.mark.parametrize("ratio", [2, 4])
def test_weights_stay_as_they_were_on_iid_noise(ratio):
    sim = simulate(phantom((128, 128)), ratio, seed=5)
    ym, yu = sim.mr / sim.mr.max(), sim.us / sim.us.max()
    lam2 = _fourier(yu.shape, ratio).abs_lam2
    new = estimate_weights(ym, yu, ratio, lam2, 0.01)
    old = estimate_weights(ym, yu, ratio, lam2, 0.01, noise_model="iid")
    for k in ("tau1", "tau2", "tau3", "tau4", "gamma", "b", "rho", "grain_area"):
        assert getattr(new, k) == getattr(old, k), k
    assert new.speckle_scale_method.startswith("haar (i.i.d.")


def test_grain_area_divides_tau2_and_tau4():
    rng = np.random.default_rng(2)
    yu = correlated_us(1.5, rng, n=128)[0]
    ym = rng.normal(0.5, 0.01, (64, 64))
    lam2 = _fourier(yu.shape, 2).abs_lam2
    us = us_weights(yu)
    assert us.grain_area > 3.0
    one = estimate_weights(ym, yu, 2, lam2, 0.05, us_noise=replace(us, grain_area=1.0))
    grain = estimate_weights(ym, yu, 2, lam2, 0.05, us_noise=us)
    assert grain.tau1 == one.tau1 and grain.grain_area == us.grain_area
    assert one.tau2 / grain.tau2 == pytest.approx(us.grain_area, rel=1e-12)
    assert one.tau4 / grain.tau4 == pytest.approx(us.grain_area, rel=1e-12)
    assert grain.tau3 / grain.tau2 == pytest.approx(one.tau3 / one.tau2, rel=1e-12)
    assert grain == estimate_weights(ym, yu, 2, lam2, 0.05)  # us_noise is what it measures


def test_user_weights_are_kept():
    rng = np.random.default_rng(4)
    yu = correlated_us(1.5, rng, n=64)[0]
    ym = rng.normal(0.5, 0.01, (32, 32))
    w = estimate_weights(ym, yu, 2, _fourier(yu.shape, 2).abs_lam2, 0.05, tau2=0.5, gamma=1.0)
    assert (w.tau2, w.gamma) == (0.5, 1.0)
    assert w.source == {"tau1": "auto", "tau2": "user", "tau3": "auto", "tau4": "auto",
                        "gamma": "user"}
    assert w.tau3 == pytest.approx(0.5 * 1.0 * w.rho)
    assert set(w.as_dict()) >= {"grain_area", "speckle_scale_method", "grain_area_method"}


@pytest.mark.parametrize("name", ["gcv", "correlation", "scale", "sure"])
def test_submodule_examples(name):
    import doctest
    import importlib

    module = importlib.import_module(f"mrusfusion.weights.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
