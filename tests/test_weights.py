"""The weight rules' numerics: the half-spectrum GCV and SURE evaluations against the plain
full-spectrum formulas, and GCV's noise estimate on data of known noise."""
import numpy as np
import pytest

from mrusfusion import simulate, phantom
from mrusfusion.fourier import FourierProblem, dtd_symbol
from mrusfusion.operators import as_psf
from mrusfusion.weights import _HalfGCV, _gcv_terms, gcv_tau1, sure_rho


@pytest.mark.parametrize("shape,s", [((48, 36), 4), ((60, 42), 6), ((64, 64), 2), ((45, 63), 3)])
def test_half_spectrum_gcv_matches_the_full_one(shape, s, rng):
    fp = FourierProblem(shape, s, as_psf(None, shape), np.float64, 1, None, "FFTW_ESTIMATE")
    ym = rng.random((shape[0] // s, shape[1] // s))
    power = np.abs(np.fft.fft2(ym)) ** 2
    half = _HalfGCV(fp.abs_lam2, dtd_symbol(shape), power, s)
    for tau in (1e-5, 1e-3, 0.1, 10.0):
        np.testing.assert_allclose(half(tau), _gcv_terms(fp.abs_lam2, dtd_symbol(shape), power, s, tau),
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
