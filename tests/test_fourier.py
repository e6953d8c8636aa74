"""The closed-form x-step solves its normal equations (DESIGN.md section 6)."""
import numpy as np
import pytest

from mrusfusion.fourier import FourierProblem, dtd_symbol
from mrusfusion.operators import Blur, Decimation, FiniteDifference, gaussian_psf


def _normal_residual(shape, s, dtype, L, tau1, rng, use_g=True, effort="FFTW_ESTIMATE"):
    psf = gaussian_psf(5, 2.0)
    ym = rng.random((shape[0] // s, shape[1] // s))
    fp = FourierProblem(shape, s, psf, dtype, 2, ym.astype(dtype), effort)
    xk = rng.random(shape)
    G = rng.standard_normal(shape)
    X = fp.solve(L, tau1, fp.forward(xk.astype(dtype)),
                 fp.forward(G.astype(dtype)) if use_g else None)
    x = fp.inverse(X).astype(np.float64)
    z = xk - (G / L if use_g else 0)
    C, S = Blur(psf, shape), Decimation(s)
    D = [FiniteDifference(0), FiniteDifference(1)]
    lhs = (C.adjoint(S.adjoint(S.apply(C.apply(x))))
           + 2 * tau1 * sum(d.adjoint(d.apply(x)) for d in D) + L * x)
    rhs = C.adjoint(S.adjoint(ym)) + L * z
    return np.linalg.norm(lhs - rhs) / np.linalg.norm(rhs)


@pytest.mark.parametrize("s", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("shape_mult", [(8, 8), (5, 9)])
def test_normal_equations_float64(s, shape_mult, rng):
    shape = (shape_mult[0] * s, shape_mult[1] * s)
    for L, tau1 in [(0.5, 0.03), (1e-6, 0.1), (10.0, 0.0)]:
        assert _normal_residual(shape, s, np.float64, L, tau1, rng) < 1e-10


@pytest.mark.parametrize("s", [2, 3])
def test_normal_equations_float32(s, rng):
    assert _normal_residual((12 * s, 7 * s), s, np.float32, 0.5, 0.03, rng) < 1e-5


def test_dtd_symbol_is_the_laplacian_spectrum(rng):
    x = rng.random((10, 7))
    lap = sum(d.adjoint(d.apply(x)) for d in (FiniteDifference(0), FiniteDifference(1)))
    np.testing.assert_allclose(np.fft.ifft2(dtd_symbol(x.shape) * np.fft.fft2(x)).real, lap,
                               atol=1e-12)


def test_forward_inverse_roundtrip_preserves_spectrum(rng):
    fp = FourierProblem((16, 10), 2, gaussian_psf(3, 1.0), np.float64, 1, None, "FFTW_ESTIMATE")
    x = rng.random((16, 10))
    X = fp.forward(x)
    X_copy = X.copy()
    np.testing.assert_allclose(fp.inverse(X), x, atol=1e-13)
    np.testing.assert_array_equal(X, X_copy)


@pytest.mark.parametrize("effort", ["FFTW_MEASURE", "FFTW_PATIENT"])
def test_measured_plans_solve_the_normal_equations(effort, rng):
    # conftest.py keeps the wisdom file out of this: the plans are measured in this process.
    assert _normal_residual((18, 14), 2, np.float64, 0.5, 0.03, rng, effort=effort) < 1e-10


def test_planner_effort_is_checked():
    with pytest.raises(ValueError,
                       match="`planner_effort` must be one of FFTW_ESTIMATE, .*'FFTW_FAST'"):
        FourierProblem((8, 8), 2, gaussian_psf(3, 1.0), planner_effort="FFTW_FAST")
