"""The v-step sub-problem is solved to its stated gradient-norm tolerance."""
import numpy as np
import pytest

from mrusfusion import _core
from mrusfusion.fourier import FourierProblem
from mrusfusion.vstep import VStepSolver


def _problem(shape, dtype, rng, mask=None, tol=1e-6):
    fp = FourierProblem(shape, 1, np.ones((1, 1)), dtype, 2, None, "FFTW_ESTIMATE")
    y = (0.5 + 0.1 * np.log(rng.rayleigh(size=shape))).astype(dtype)
    return fp, y, VStepSolver(fp, y, mask, 2.0, 0.5, 1.01, tol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dk", [0.0, 0.3, 5.0])
def test_gradient_below_tolerance(dtype, dk, rng):
    shape = (24, 31)
    fp, y, solver = _problem(shape, dtype, rng, tol=1e-6 if dtype == np.float64 else 1e-4)
    w = (y + 0.05 * rng.standard_normal(shape)).astype(dtype)
    v = fp.empty_real()
    np.copyto(v, y)
    before = solver.value(v, w, dk)
    info = solver.solve(v, w, dk)
    assert info.converged and info.grad_norm <= info.tolerance
    g = np.empty_like(v)
    _core.vstep_eval(v, y, w, None, 2.0, 1.01, 0.5, dk, g, None, 1)
    assert np.linalg.norm(g.astype(np.float64)) <= info.tolerance * 1.0001
    assert solver.value(v, w, dk) <= before


def test_solution_is_the_minimiser(rng):
    # Strong convexity: any perturbation increases G_k.
    fp, y, solver = _problem((16, 16), np.float64, rng, tol=1e-10)
    w = y.copy()
    v = fp.empty_real()
    np.copyto(v, y)
    solver.solve(v, w, 0.4)
    base = solver.value(v, w, 0.4)
    for _ in range(5):
        d = 1e-3 * rng.standard_normal(v.shape)
        assert solver.value(v + d, w, 0.4) > base


def test_flat_region_converges_to_log_gamma_shift():
    # exp(z) - gamma z is minimal at z = log gamma, so v = y - log gamma on a constant image.
    shape = (8, 8)
    fp = FourierProblem(shape, 1, np.ones((1, 1)), np.float64, 1, None, "FFTW_ESTIMATE")
    y = np.full(shape, 0.7)
    solver = VStepSolver(fp, y, None, 1.0, 0.3, 1.2, tol=1e-12)
    v = fp.empty_real()
    np.copyto(v, y)
    solver.solve(v)
    np.testing.assert_allclose(v, 0.7 - np.log(1.2), atol=1e-10)
