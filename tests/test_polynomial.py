"""The polynomial link: evaluation, J^T r against finite differences, least-squares recovery."""
import numpy as np
import pytest

from mrusfusion import _reference as ref
from mrusfusion.polynomial import (PolynomialLink, degree_residuals, exponents, fit_polynomial,
                                   n_coeffs, polynomial_features)

from conftest import smooth_image

VARIANTS = [("directional", (1.0, 0.0)), ("directional", (0.6, -0.8)), ("magnitude", (1.0, 0.0))]


def test_coefficient_order_matches_design():
    assert exponents(4) == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (0, 1), (1, 1), (2, 1), (3, 1),
                            (0, 2), (1, 2), (2, 2), (0, 3), (1, 3), (0, 4)]
    assert n_coeffs(6) == 28


@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("gradient,u", VARIANTS)
def test_evaluate_matches_numpy_twin(degree, gradient, u, rng):
    x = smooth_image((14, 17))
    link = PolynomialLink(rng.standard_normal(n_coeffs(degree)), degree, gradient, u)
    f, fx, fg = link.evaluate(x, derivatives=True)
    g = link.grad.apply(x)
    f2, fx2, fg2 = ref.poly_eval(link.coeffs, degree, x, g)
    for a, b in ((f, f2), (fx, fx2), (fg, fg2)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # Features times coefficients give the same values.
    np.testing.assert_allclose(polynomial_features(x, g, degree) @ link.coeffs, f.ravel(), atol=1e-12)


@pytest.mark.parametrize("degree", [1, 3, 4])
@pytest.mark.parametrize("gradient,u", VARIANTS)
def test_jacobian_transpose_matches_central_differences(degree, gradient, u, rng):
    x = smooth_image((12, 13), seed=4)
    link = PolynomialLink(rng.standard_normal(n_coeffs(degree)), degree, gradient, u, eps=1e-2)
    r = rng.standard_normal(x.shape)
    d = rng.standard_normal(x.shape)
    h = 1e-6
    fd = np.vdot(r, link.evaluate(x + h * d) - link.evaluate(x - h * d)) / (2 * h)
    jt = link.jacobian_transpose(x, r)
    assert np.vdot(jt, d) == pytest.approx(fd, rel=1e-6)
    # Without the gradient term (the authors' code) the identity fails: the term matters.
    _, fx, _ = link.evaluate(x, derivatives=True)
    assert abs(np.vdot(fx * r, d) - fd) > 1e-3 * abs(fd)


@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("gradient", ["directional", "magnitude"])
def test_fit_recovers_known_coefficients(degree, gradient, rng):
    x = smooth_image((64, 48), seed=degree)
    true = PolynomialLink(rng.uniform(-1, 1, n_coeffs(degree)), degree, gradient)
    y = true.evaluate(x)
    fit = fit_polynomial(x, y, degree, gradient=gradient)
    assert fit.relative_residual < 1e-9
    np.testing.assert_allclose(fit.evaluate(x), y, atol=1e-9 * np.abs(y).max())
    if degree <= 4:
        np.testing.assert_allclose(fit.coeffs, true.coeffs, atol=1e-6)


def test_fit_normal_equation_residual_is_orthogonal_to_features(rng):
    x = smooth_image((40, 40))
    y = x + 0.3 * rng.standard_normal(x.shape)
    fit = fit_polynomial(x, y, 3)
    a = polynomial_features(x, fit.grad.apply(x), 3)
    res = y.ravel() - a @ fit.coeffs
    # A^T (y - A c) = 0 at the least-squares solution (relative to the scale of A^T y).
    assert np.abs(a.T @ res).max() < 1e-9 * np.abs(a.T @ y.ravel()).max()
    assert fit.residual_norm == pytest.approx(np.linalg.norm(res), rel=1e-9)


def test_mask_restricts_the_fit(rng):
    x = smooth_image((32, 32))
    y = 2 * x + 1
    mask = np.zeros(x.shape, bool)
    mask[:16] = True
    y_bad = y.copy()
    y_bad[~mask] = rng.standard_normal(int((~mask).sum()))
    fit = fit_polynomial(x, y_bad, 2, mask=mask)
    np.testing.assert_allclose(fit.coeffs[:2], [1.0, 2.0], atol=1e-9)
    assert fit.n_pixels == mask.sum()


def test_rank_deficiency_is_reported():
    with pytest.raises(ValueError, match="rank deficient.*lower degree"):
        fit_polynomial(np.full((16, 16), 0.5), np.random.default_rng(0).random((16, 16)), 3)


def test_degree_residuals_decrease():
    x = smooth_image((48, 48))
    y = np.sin(3 * x) + 0.1 * np.cos(5 * x)
    res = degree_residuals(x, y, 5)
    vals = [res[d] for d in range(1, 6)]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(vals, vals[1:]))


def test_bad_arguments():
    x = smooth_image((16, 16))
    with pytest.raises(ValueError, match="degree"):
        fit_polynomial(x, x, 11)
    with pytest.raises(ValueError, match="shape"):
        fit_polynomial(x, x[:8], 2)
    with pytest.raises(ValueError, match="coeffs"):
        PolynomialLink(np.ones(5), 2)
