"""The global polynomial link: evaluation, J^T r against finite differences, least-squares
recovery, extreme intensity scales (issue 19), and the c-step interface (DESIGN 12.3)."""
import numpy as np
import pytest

import mrusfusion as mf
from mrusfusion import _core
from mrusfusion import _reference as ref
from mrusfusion.link import (PolynomialLink, degree_residuals, exponents, fit_polynomial,
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
    np.testing.assert_allclose(polynomial_features(x, g, degree) @ link.coeffs, f.ravel(),
                               atol=1e-12)


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


# ------------------------------------------------------------------ extreme scales (issue 19)
def test_fit_maps_coefficients_back_exactly_at_extreme_scales(rng):
    x = smooth_image((32, 32), seed=2)
    y = 0.3 + x - 0.5 * x**2 + 0.01 * rng.standard_normal(x.shape)
    base = fit_polynomial(x, y, 2)
    for a, b in ((1e100, 1.0), (1e100, 1e-50), (1e-150, 1.0), (1e-150, 1e-100), (1.0, 1e300),
                 (1.0, 1e-300)):
        # Before issue 19 a us of 1e300 gave an infinite residual and NaN relative residual.
        fit = fit_polynomial(x * a, y * b, 2)
        want = base.coeffs * b / np.array([a ** (p + q) for p, q in exponents(2)])
        np.testing.assert_allclose(fit.coeffs, want, rtol=1e-8, atol=0)
        assert fit.relative_residual == pytest.approx(base.relative_residual, rel=1e-10)
        assert fit.residual_norm == pytest.approx(base.residual_norm * b, rel=1e-10)


def test_degree_one_fit_of_a_tiny_mr_image():
    x = smooth_image((24, 24), seed=5)
    fit = fit_polynomial(x * 1e-200, 2.0 + 3.0 * x, 1)
    np.testing.assert_allclose(fit.coeffs[:2], [2.0, 3e200], rtol=1e-9)
    np.testing.assert_allclose(fit.evaluate(x * 1e-200), 2.0 + 3.0 * x, atol=1e-9)


@pytest.mark.parametrize("a", [1e100, 1e-200])
def test_unrepresentable_link_names_the_images(a):
    x = smooth_image((24, 24), seed=6)
    # x^4 of 1e100 overflows float64, x^4 of 1e-200 underflows: no degree-4 link in these units.
    with pytest.raises(ValueError, match="not representable.*`mr`.*`us`"):
        fit_polynomial(x * a, 1 + x**4, 4)


def test_relative_residual_of_a_zero_us_is_zero():
    x = smooth_image((16, 16))
    fit = fit_polynomial(x, np.zeros_like(x), 3)
    assert fit.relative_residual == 0.0 and fit.residual_norm == 0.0
    np.testing.assert_array_equal(fit.coeffs, 0.0)


# ------------------------------------------------------------------ the link interface (12.3)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gradient,u", VARIANTS)
def test_coupling_matches_the_kernel_and_its_twin(dtype, gradient, u, rng):
    x = smooth_image((15, 12), dtype=dtype)
    v = rng.random(x.shape).astype(dtype)
    m = (rng.random(x.shape) > 0.3).astype(dtype)
    link = PolynomialLink(rng.uniform(-1, 1, n_coeffs(3)), 3, gradient, u, eps=1e-2)
    outs = {}
    for name, k in (("core", _core), ("ref", ref)):
        f, fx, fg = (np.empty_like(x) for _ in range(3))
        h = link.coupling(x, v, m, f, fx, fg, 1, kernels=k)
        outs[name] = (h, f, fx, fg)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert outs["core"][0] == pytest.approx(outs["ref"][0], rel=tol)
    for a, b in zip(outs["core"][1:], outs["ref"][1:]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert link.penalty() == 0.0


@pytest.mark.parametrize("gradient,u", VARIANTS)
def test_refit_is_the_exact_minimiser(gradient, u, rng):
    x = smooth_image((32, 28), seed=3)
    v = np.sin(2 * x) + 0.1 * rng.standard_normal(x.shape)
    m = rng.random(x.shape) > 0.25
    old = PolynomialLink(rng.uniform(-1, 1, n_coeffs(3)), 3, gradient, u)
    new = old.refit(x, v, m)
    h_old = old.coupling(x, v, m.astype(float), None, None, None)
    h_new = new.coupling(x, v, m.astype(float), None, None, None)
    assert h_new <= h_old
    # Gradient wrt c: A^T m (v - A c) = 0 (relative to A^T m v).
    a = polynomial_features(x, new.grad.apply(x), 3)
    res = (v - new.evaluate(x)).ravel() * m.ravel()
    assert np.abs(a.T @ res).max() < 1e-8 * np.abs(a.T @ (v.ravel() * m.ravel())).max()
    assert new.residual_norm == pytest.approx(np.sqrt(h_new), rel=1e-9)
    # Refitting from any start gives the same minimiser.
    again = PolynomialLink(np.zeros(n_coeffs(3)), 3, gradient, u).refit(x, v, m)
    np.testing.assert_allclose(again.evaluate(x), new.evaluate(x), atol=1e-10)


def test_refit_on_a_flat_image_keeps_a_minimiser():
    x = np.full((16, 16), 0.4)
    v = np.random.default_rng(1).random(x.shape)
    new = PolynomialLink(np.ones(n_coeffs(2)), 2).refit(x, v)
    assert np.isfinite(new.coeffs).all()
    assert np.allclose(new.evaluate(x), v.mean(), atol=1e-10)


def test_explained_variance():
    x = smooth_image((24, 24))
    v = 1 + 2 * x
    fit = fit_polynomial(x, v, 1)
    assert fit.explained_variance(x, v) == pytest.approx(1.0, abs=1e-12)
    flat = PolynomialLink([float(v.mean()), 0.0, 0.0], 1)  # the degenerate link: only the mean
    assert flat.explained_variance(x, v) == pytest.approx(0.0, abs=1e-12)
    half = PolynomialLink([1.0 + float(x.mean()), 1.0, 0.0], 1)  # explains 1/4 of the variance
    assert half.explained_variance(x, v) == pytest.approx(0.75, rel=1e-9)
    assert flat.explained_variance(x, np.full_like(x, 2.0)) == 0.0


def test_package_exports_stay_public():
    assert mf.fit_polynomial is fit_polynomial and mf.PolynomialLink is PolynomialLink
    assert mf.degree_residuals is degree_residuals


def test_fit_in_a_narrow_intensity_range_is_refused_or_no_worse_than_a_constant():
    # Issue 19 follow-up, the example hypothesis found: an MR that varies by 2e-7 around 0.1, its
    # two rows nearly equal (a derivative along the beam of about 1e-11). The degree-4 link had
    # terms of about 1e12, whose rounding swamped its variation: 2.8x the best constant's
    # residual. It must be refused (or fit no worse than a constant).
    x = np.array([
        [0.10000046919491318, 0.1000004736418131, 0.10000048498327416, 0.10000050397479893,
         0.10000053211799032, 0.10000058214647914, 0.10000063257555701, 0.10000063062832858,
         0.10000056890211624, 0.10000049919487762, 0.10000047042468181, 0.10000048471025863,
         0.1000005046197096, 0.10000049547196904, 0.10000046813325891, 0.10000045596743028,
         0.1000004621455396],
        [0.10000046919351868, 0.10000047363609282, 0.10000048497703873, 0.10000050397090281,
         0.10000053211747038, 0.10000058215002447, 0.10000063258329088, 0.10000063063856485,
         0.10000056891129015, 0.10000049919957417, 0.10000047042474164, 0.10000048470893587,
         0.10000050461933233, 0.1000004954723599, 0.1000004681349462, 0.10000045597116458,
         0.10000046214868277],
    ])
    y = np.array([
        [0.10000469194913168, 0.10000473641813085, 0.10000484983274148, 0.10000503974798916,
         0.10000532117990313, 0.10000582146479138, 0.10000632575557002, 0.10000630628328575,
         0.10000568902116234, 0.10000499194877609, 0.10000470424681808, 0.10000484710258627,
         0.10000504619709584, 0.1000049547196904, 0.10000468133258905, 0.10000455967430276,
         0.10000462145539596],
        [0.10000469193518681, 0.10000473636092812, 0.10000484977038725, 0.10000503970902803,
         0.10000532117470372, 0.10000582150024469, 0.10000632583290879, 0.10000630638564839,
         0.10000568911290143, 0.10000499199574157, 0.10000470424741638, 0.10000484708935864,
         0.10000504619332316, 0.10000495472359895, 0.100004681349462, 0.10000455971164582,
         0.10000462148682769],
    ])
    try:
        link = mf.fit_polynomial(x, y, 4, scan_direction=(1.0, 0.0), threads=1)
    except ValueError as exc:
        assert "use a lower degree" in str(exc)
        return
    assert link.residual_norm <= np.linalg.norm(y - y.mean()) * (1 + 1e-6)
