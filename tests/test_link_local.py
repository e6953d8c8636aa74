"""The local link (DESIGN 12.2): its kernels against their NumPy twins, J^T against finite
differences, the global link as the limit of large ``mu``, recovery of a smoothly varying link,
a constant patch, and the exact c-step (DESIGN 12.3)."""
from dataclasses import replace

import numpy as np
import pytest

from mrusfusion import _core
from mrusfusion import _reference as ref
from mrusfusion.link import (FeatureScaling, LocalPolynomialLink, fit_local_link, fit_polynomial,
                             knot_shape, n_coeffs)
from mrusfusion.link.local_link import _system, forward_offsets

from conftest import DTYPES, smooth_image

VARIANTS = [("directional", (1.0, 0.0)), ("directional", (0.6, -0.8)), ("magnitude", (1.0, 0.0))]
SHAPES = [(16, 16), (15, 21), (8, 7)]


def _random_link(rng, shape, degree, spacing, gradient="directional", u=(1.0, 0.0)):
    nd = n_coeffs(degree)
    ks = knot_shape(shape, spacing)
    return LocalPolynomialLink(rng.uniform(-1, 1, ks + (nd,)), degree, shape,
                               FeatureScaling(0.45, 0.6, 0.3), np.ones(nd), np.zeros(nd), 1.0,
                               0.01, spacing, gradient, u, 1e-2)


def test_knot_grid_and_storage_order():
    assert knot_shape((256, 100), 64) == (5, 3)
    assert knot_shape((1, 9), 4) == (2, 3)  # at least two knots per axis
    # The stored offsets are the centre and the half of {-1,0,1}^D after it (3-D: 14 of 27).
    assert forward_offsets(2) == [(0, 0), (0, 1), (1, -1), (1, 0), (1, 1)]
    assert len(forward_offsets(3)) == 14 and forward_offsets(3)[0] == (0, 0, 0)


@pytest.mark.parametrize("shape", SHAPES)
def test_hat_weights_sum_to_one_and_reproduce_linear_functions(shape):
    ks = knot_shape(shape, 5)
    c = np.zeros(ks + (1,))
    c[..., 0] = 3.0
    link = LocalPolynomialLink(c, 0, shape, FeatureScaling(0, 1, 1), [1.0], [0.0], 1.0, 0.1, 5)
    x = smooth_image(shape)
    np.testing.assert_allclose(link.evaluate(x), 3.0, rtol=1e-14)  # partition of unity
    # Knot values equal to the knot index reproduce the pixel's position in knot units.
    c[..., 0] = np.arange(ks[0])[:, None]
    link = replace(link, coeffs=c)
    u = np.arange(shape[0]) * (ks[0] - 1) / (shape[0] - 1)
    np.testing.assert_allclose(link.evaluate(x), np.broadcast_to(u[:, None], shape), atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("degree", [0, 1, 3, 4])
@pytest.mark.parametrize("gradient,u", VARIANTS)
def test_evaluation_kernel_matches_twin(dtype, shape, degree, gradient, u, rng):
    x = smooth_image(shape, dtype=dtype)
    v = rng.random(shape).astype(dtype)
    m = (rng.random(shape) > 0.3).astype(dtype)
    link = _random_link(rng, shape, degree, 6, gradient, u)
    got = {}
    for name, k in (("core", _core), ("ref", ref)):
        f, fx, fg = (np.empty_like(x) for _ in range(3))
        got[name] = (link.coupling(x, v, m, f, fx, fg, 2, kernels=k), f, fx, fg)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert got["core"][0] == pytest.approx(got["ref"][0], rel=tol)
    for a, b in zip(got["core"][1:], got["ref"][1:]):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
    # Without v the kernel only evaluates.
    assert link.coupling(x, None, None, np.empty_like(x), None, None, 1) == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("degree", [0, 1, 2, 4])
@pytest.mark.parametrize("with_mask", [False, True])
def test_normal_equation_kernel_matches_twin(dtype, shape, degree, with_mask, rng):
    x = smooth_image(shape, dtype=dtype)
    g = rng.standard_normal(shape).astype(dtype)
    y = rng.random(shape).astype(dtype)
    m = rng.random(shape).astype(dtype) * (rng.random(shape) > 0.3) if with_mask else None
    ks = knot_shape(shape, 4)
    b1, r1, y1 = _core.local_normal_equations(x, g, y, m, degree, ks, 0.4, 0.7, 1.5, 2)
    b2, r2, y2 = ref.local_normal_equations(x, g, y, m, degree, ks, 0.4, 0.7, 1.5)
    assert b1.shape == (int(np.prod(ks)), 5, n_coeffs(degree), n_coeffs(degree))
    np.testing.assert_allclose(b1, b2, rtol=1e-10, atol=1e-10 * np.abs(b2).max())
    np.testing.assert_allclose(r1, r2, rtol=1e-10, atol=1e-10 * np.abs(r2).max())
    assert y1 == pytest.approx(y2, rel=1e-12)
    # Thread count does not change a bit of the result.
    b3, r3, _ = _core.local_normal_equations(x, g, y, m, degree, ks, 0.4, 0.7, 1.5, 1)
    np.testing.assert_array_equal(b1, b3)
    np.testing.assert_array_equal(r1, r3)


@pytest.mark.parametrize("degree", [1, 3])
@pytest.mark.parametrize("gradient,u", VARIANTS)
def test_jacobian_transpose_matches_central_differences(degree, gradient, u, rng):
    x = smooth_image((14, 13), seed=4)
    link = _random_link(rng, x.shape, degree, 5, gradient, u)
    r = rng.standard_normal(x.shape)
    d = rng.standard_normal(x.shape)
    h = 1e-6
    fd = np.vdot(r, link.evaluate(x + h * d) - link.evaluate(x - h * d)) / (2 * h)
    assert np.vdot(link.jacobian_transpose(x, r), d) == pytest.approx(fd, rel=1e-6)


def _varying(shape, seed=0, noise=0.0):
    """US made by a link whose coefficients drift smoothly across the image."""
    x = smooth_image(shape, seed=seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
    y_true = 0.2 + (0.5 + 0.8 * yy) * x + 0.4 * xx * x**2
    rng = np.random.default_rng(seed)
    return x, y_true, y_true + noise * rng.standard_normal(shape)


def test_large_mu_gives_the_global_link():
    x, _, y = _varying((40, 36), noise=0.02)
    glob = fit_polynomial(x, y, 2)
    loc = fit_local_link(x, y, 2, knot_spacing=12, mu=1e6)
    assert loc.knots == (5, 4)
    np.testing.assert_allclose(loc.evaluate(x), glob.evaluate(x), atol=1e-5)
    # All knots carry (nearly) the global coefficients, so the ridge costs (almost) nothing.
    assert loc.penalty() < 1e-4 * loc.residual_norm**2


def test_smoothly_varying_link_beats_the_global_link():
    x, y_true, y = _varying((48, 48), seed=1, noise=0.01)
    glob = fit_polynomial(x, y, 2)
    loc = fit_local_link(x, y, 2, knot_spacing=12, mu=0.1)
    err_glob = np.linalg.norm(glob.evaluate(x) - y_true)
    err_loc = np.linalg.norm(loc.evaluate(x) - y_true)
    assert err_loc < 0.3 * err_glob
    assert loc.relative_residual < glob.relative_residual


@pytest.mark.parametrize("whole", [False, True])
def test_constant_patch_gives_a_definite_system(whole, rng):
    x, _, y = _varying((40, 40), seed=2, noise=0.01)
    if whole:
        x = np.full_like(x, 0.3)
    else:
        x[:20, :20] = 0.5  # flat over more than a knot cell: no data for the non-constant terms
    loc = fit_local_link(x, y, 3, knot_spacing=8, mu=0.1)
    assert np.isfinite(loc.coeffs).all() and np.isfinite(loc.residual_norm)
    blocks, rhs, _ = _core.local_normal_equations(x, loc.grad.apply(x), y, None, 3, loc.knots,
                                                  loc.scaling.x_c, loc.scaling.x_s,
                                                  loc.scaling.g_s, 1)
    a, _ = _system(blocks, rhs, loc.knots, loc.gam, loc.c_glob, loc.mu, loc.nu)
    assert np.linalg.eigvalsh(a.toarray()).min() > 0
    if not whole:
        # Inside the flat patch the link predicts (about) the mean of y there.
        f = loc.evaluate(x)
        assert abs(f[5:15, 5:15].mean() - y[5:15, 5:15].mean()) < 0.05


def _objective(link, x, v, m):
    return link.coupling(x, v, m, None, None, None, 1) + link.penalty()


def test_refit_is_the_exact_minimiser(rng):
    x, _, y = _varying((36, 30), seed=3, noise=0.02)
    loc = fit_local_link(x, y, 2, knot_spacing=10, mu=0.5)
    x2 = x + 0.02 * rng.standard_normal(x.shape)
    v = y + 0.05 * rng.standard_normal(x.shape)
    m = (rng.random(x.shape) > 0.2).astype(float)
    new = loc.refit(x2, v, m)
    assert _objective(new, x2, v, m) <= _objective(loc, x2, v, m)
    # Its normal equations hold (the twin builds them independently of the kernel).
    sc = new.scaling
    blocks, rhs, _ = ref.local_normal_equations(x2, new.grad.apply(x2), v, m, 2, new.knots,
                                                sc.x_c, sc.x_s, sc.g_s)
    a, b = _system(blocks, rhs, new.knots, new.gam, new.c_glob, new.mu, new.nu)
    assert np.linalg.norm(a @ new.coeffs.ravel() - b) < 1e-8 * np.linalg.norm(b)
    # And no direction lowers the objective: derivative ~0, curvature > 0.
    dc = rng.standard_normal(new.coeffs.shape)
    h = 1e-3
    fp = _objective(replace(new, coeffs=new.coeffs + h * dc), x2, v, m)
    fm = _objective(replace(new, coeffs=new.coeffs - h * dc), x2, v, m)
    f0 = _objective(new, x2, v, m)
    assert abs(fp - fm) / (2 * h) < 1e-6 * (fp + fm - 2 * f0) / h**2
    assert 0.0 < new.explained_variance(x2, v, m) <= 1.0


def test_penalty_is_the_ridge_of_the_design(rng):
    link = _random_link(rng, (20, 17), 2, 6)
    c, g2 = link.coeffs, link.gam**2
    want = 0.0
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < c.shape[0] and j + dj < c.shape[1]:
                    want += link.mu * np.sum(g2 * (c[i, j] - c[i + di, j + dj]) ** 2)
            want += link.nu * np.sum(g2 * (c[i, j] - link.c_glob) ** 2)
    assert link.penalty() == pytest.approx(want, rel=1e-12)


def test_bad_arguments():
    x = smooth_image((16, 16))
    with pytest.raises(ValueError, match="knot_spacing"):
        fit_local_link(x, x, 1, knot_spacing=1)
    with pytest.raises(ValueError, match="`nu`"):
        fit_local_link(x, x, 1, knot_spacing=8, nu=0)
    with pytest.raises(ValueError, match="`mu`"):
        fit_local_link(x, x, 1, knot_spacing=8, mu=-1)
    with pytest.raises(ValueError, match="shape"):
        fit_local_link(x, x[:8], 1, knot_spacing=8)
    link = fit_local_link(x, x, 1, knot_spacing=8)
    with pytest.raises(ValueError, match="shape"):
        link.evaluate(x[:8])
    with pytest.raises(ValueError, match="coeffs"):
        replace(link, coeffs=link.coeffs[:1])


def test_general_sparse_solve_when_cholesky_refuses(monkeypatch):
    x, _, y = _varying((32, 32), seed=5, noise=0.01)
    banded = fit_local_link(x, y, 2, knot_spacing=10, mu=0.3)

    def refuse(*args, **kwargs):
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr("mrusfusion.link.local_link.sla.solveh_banded", refuse)
    lu = fit_local_link(x, y, 2, knot_spacing=10, mu=0.3)
    np.testing.assert_allclose(lu.coeffs, banded.coeffs, rtol=1e-9, atol=1e-10)
