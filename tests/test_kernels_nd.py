"""The kernels on volumes and anisotropic grids (DESIGN.md section 11): each against its NumPy
twin in 2-D and 3-D with per-axis difference weights, the adjoint identity of every axis, J^T by
finite differences with anisotropic spacing, and the x-step's normal equations with per-axis
ratios."""
import numpy as np
import pytest

from mrusfusion import _core
from mrusfusion import _reference as ref
from mrusfusion.fourier import FourierProblem
from mrusfusion.link import n_coeffs
from mrusfusion.operators import Blur, Decimation, gaussian_psf

from conftest import DTYPES, smooth_image, tol_for

SHAPES_ND = [(6, 5, 7), (4, 8, 6), (9, 10)]
WEIGHTS = {2: (1.0, 0.25), 3: (0.25, 1.0, 0.5)}
DIRS = {2: (0.6, 0.8), 3: (0.48, 0.6, 0.64)}


def _close(a, b, dtype, scale=1.0):
    np.testing.assert_allclose(a, b, rtol=tol_for(dtype), atol=tol_for(dtype) * scale)


def _grads(nd):
    return [(0, DIRS[nd], 0.0), (1, DIRS[nd], 1e-3)]


@pytest.mark.parametrize("shape", SHAPES_ND)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_stencils_match_twins(shape, dtype, weighted, rng):
    nd = len(shape)
    w = WEIGHTS[nd] if weighted else None
    x = rng.random(shape).astype(dtype)
    c = rng.random(shape).astype(dtype)
    a, b = np.empty_like(x), np.empty_like(x)
    for mode, u, eps in _grads(nd):
        _core.gradient(x, mode, u, eps, a, 2, weights=w)
        ref.gradient(x, mode, u, eps, b, weights=w)
        _close(a, b, dtype)
    _core.gradient_adjoint(x, DIRS[nd], a, 2, weights=w)
    ref.gradient_adjoint(x, DIRS[nd], b, weights=w)
    _close(a, b, dtype)
    s1 = _core.dtd_apply(x, c, 0.3, 1.7, a, 2, weights=w)
    s2 = ref.dtd_apply(x, c, 0.3, 1.7, b, weights=w)
    _close(a, b, dtype, 10)
    assert s1 == pytest.approx(s2, rel=tol_for(dtype) * 10)
    assert _core.squared_gradient_norm(x, 2, w) == pytest.approx(
        ref.squared_gradient_norm(x, weights=w), rel=1e-12)


@pytest.mark.parametrize("shape", SHAPES_ND)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("degree", [1, 3])
def test_link_kernels_match_twins(shape, dtype, degree, rng):
    nd = len(shape)
    w = WEIGHTS[nd]
    x = smooth_image(shape, dtype=dtype)
    v, a, b_ = (rng.random(shape).astype(dtype) for _ in range(3))
    mask = (rng.random(shape) > 0.3).astype(dtype)
    c = rng.standard_normal(n_coeffs(degree)).astype(dtype)
    for mode, u, eps in _grads(nd):
        outs = [[np.empty_like(x) for _ in range(3)] for _ in range(2)]
        h1 = _core.coupling_eval(x, c, degree, mode, u, eps, v, mask, *outs[0], 2, w)
        h2 = ref.coupling_eval(x, c, degree, mode, u, eps, v, mask, *outs[1], weights=w)
        for p, q in zip(*outs):
            _close(p, q, dtype, 10)
        assert h1 == pytest.approx(h2, rel=tol_for(dtype) * 100)
        fx, fg = outs[0][1], outs[0][2]
        w1, w2, w3, o1, o2 = (np.empty_like(x) for _ in range(5))
        _core.jacobian_transpose(x, a, b_, mask, fx, fg, mode, u, eps, -0.7, w1, w2, o1, 2, w, w3)
        ref.jacobian_transpose(x, a, b_, mask, fx, fg, mode, u, eps, -0.7, None, None, o2,
                               weights=w)
        _close(o1, o2, dtype, 10)


@pytest.mark.parametrize("shape", SHAPES_ND)
@pytest.mark.parametrize("dtype", DTYPES)
def test_vector_kernels_match_twins(shape, dtype, rng):
    w = WEIGHTS[len(shape)]
    v, y, t = (rng.random(shape).astype(dtype) for _ in range(3))
    mask = (rng.random(shape) > 0.3).astype(dtype)
    g1, g2, c1, c2 = (np.empty_like(v) for _ in range(4))
    r1 = _core.vstep_eval(v, y, t, mask, 0.9, 1.02, 0.3, 0.22, g1, c1, 2, w)
    r2 = ref.vstep_eval(v, y, t, mask, 0.9, 1.02, 0.3, 0.22, g2, c2, weights=w)
    np.testing.assert_allclose(r1, r2, rtol=1e-10)
    _close(g1, g2, dtype, 10)
    _close(c1, c2, dtype)
    np.testing.assert_allclose(_core.diff_stats(v, y, t, mask, 2), ref.diff_stats(v, y, t, mask),
                               rtol=1e-10)
    assert _core.dot(v, y, 2) == pytest.approx(ref.dot(v, y), rel=1e-12)
    o1, o2 = np.empty_like(v), np.empty_like(v)
    assert _core.axpby(v, y, 1.3, -0.4, o1, 2) == pytest.approx(
        ref.axpby(v, y, 1.3, -0.4, o2), rel=tol_for(dtype))
    _close(o1, o2, dtype)


@pytest.mark.parametrize("shape", [(6, 5, 7), (5, 8)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adjoint_identity_per_axis(shape, dtype, rng):
    """<D_a x, y> = <x, D_a^T y> for every axis a, with the direction e_a and weights."""
    nd = len(shape)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    x, y = x.astype(dtype), y.astype(dtype)
    for a in range(nd):
        u = tuple(1.0 if k == a else 0.0 for k in range(nd))
        dx, dty = np.empty_like(x), np.empty_like(y)
        _core.gradient(x, 0, u, 0.0, dx, 2, weights=WEIGHTS[nd])
        _core.gradient_adjoint(y, u, dty, 2, weights=WEIGHTS[nd])
        lhs = float(np.sum(dx.astype(np.float64) * y))
        rhs = float(np.sum(x.astype(np.float64) * dty))
        assert lhs == pytest.approx(rhs, rel=50 * tol_for(dtype), abs=50 * tol_for(dtype))
        # and it is the plain periodic difference along that axis, weighted
        np.testing.assert_allclose(dx, WEIGHTS[nd][a] * (np.roll(x, -1, axis=a) - x),
                                   rtol=tol_for(dtype), atol=tol_for(dtype) * 10)


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("shape", [(5, 6, 7), (9, 8)])
def test_jacobian_transpose_by_finite_differences(mode, shape, rng):
    """<J^T r, d> against the central difference of <r, f(x + h d)> on an anisotropic grid."""
    nd = len(shape)
    w = WEIGHTS[nd]
    u = DIRS[nd]
    x = smooth_image(shape) + 0.1 * rng.random(shape)
    r, d = rng.standard_normal(shape), rng.standard_normal(shape)
    c = rng.standard_normal(n_coeffs(3))
    f, fx, fg = (np.empty_like(x) for _ in range(3))
    _core.coupling_eval(x, c, 3, mode, u, 1e-2, None, None, f, fx, fg, 1, w)
    w1, w2, w3, out = (np.empty_like(x) for _ in range(4))
    _core.jacobian_transpose(x, r, None, None, fx, fg, mode, u, 1e-2, 1.0, w1, w2, out, 1, w, w3)

    def link(z):
        fz = np.empty_like(z)
        _core.coupling_eval(z, c, 3, mode, u, 1e-2, None, None, fz, None, None, 1, w)
        return float(np.sum(r * fz))

    h = 1e-6
    fd = (link(x + h * d) - link(x - h * d)) / (2 * h)
    assert float(np.sum(out * d)) == pytest.approx(fd, rel=1e-6)


def _normal_equation_residual(shape, ratio, dtype=np.float64, weights=None):
    rng = np.random.default_rng(3)
    nd = len(shape)
    psf = gaussian_psf(3, 1.0, ndim=nd)
    s = (ratio,) * nd if np.ndim(ratio) == 0 else tuple(ratio)
    ym = rng.random(tuple(n // r for n, r in zip(shape, s)))
    fp = FourierProblem(shape, ratio, psf, dtype, 1, ym, weights=weights)
    z, gk = rng.random(shape), rng.standard_normal(shape)
    tau1, L = 0.05, 0.37
    X = fp.solve(L, tau1, fp.forward(z.astype(dtype)), fp.forward(gk.astype(dtype)))
    x = fp.inverse(X).astype(np.float64)
    C, S = Blur(psf, shape), Decimation(s)
    lhs = C.adjoint(S.adjoint(S.apply(C.apply(x)))) + 2 * tau1 * ref._neg_laplacian(x, weights)
    lhs += L * x
    rhs = C.adjoint(S.adjoint(ym)) + L * z - gk
    return float(np.linalg.norm(lhs - rhs) / np.linalg.norm(rhs))


@pytest.mark.parametrize("shape, ratio", [((8, 9, 8), (2, 3, 4)), ((12, 6), (4, 1)),
                                          ((6, 6, 4), 2), ((10, 9, 12), (1, 3, 4))])
def test_xstep_normal_equations_per_axis_ratios(shape, ratio):
    weights = (0.5, 1.0, 0.25)[-len(shape):]
    assert _normal_equation_residual(shape, ratio) < 1e-10
    assert _normal_equation_residual(shape, ratio, weights=weights) < 1e-10


@pytest.mark.parametrize("shape, ratio", [((8, 9, 8), (2, 3, 4)), ((12, 6), (4, 1))])
@pytest.mark.parametrize("dtype", DTYPES)
def test_spectral_kernels_match_twins(shape, ratio, dtype, rng):
    nd = len(shape)
    ym = rng.random(tuple(n // r for n, r in zip(shape, ratio))).astype(dtype)
    fp = FourierProblem(shape, ratio, gaussian_psf(3, 1.0, ndim=nd), dtype, 1, ym)
    Xk = fp.forward(rng.random(shape).astype(dtype))
    Gk = fp.forward(rng.random(shape).astype(dtype))
    X1, X2 = fp.empty_spec(), fp.empty_spec()
    _core.xstep_solve(fp.rhs_mr, Xk, Gk, fp.lam, fp.dtd, shape[-1], ratio, 0.05, 0.37,
                      fp.empty_coarse_spec(), X1, None, 2)
    ref.xstep_solve(fp.rhs_mr, Xk, Gk, fp.lam, fp.dtd, shape[-1], ratio, 0.05, 0.37, None, X2)
    scale = float(np.abs(X2).max())
    np.testing.assert_allclose(X1, X2, rtol=tol_for(dtype) * 10, atol=tol_for(dtype) * scale * 10)
    e1 = _core.mr_residual_energy(X1, fp.lam, fp.ym_spec, shape[-1], ratio, 2)
    e2 = ref.mr_residual_energy(X1, fp.lam, fp.ym_spec, shape[-1], ratio)
    assert e1 == pytest.approx(e2, rel=tol_for(dtype) * 100)
    # and the energy is ||y_m - S C x||^2 of the image itself
    x = fp.inverse(X1).astype(np.float64)
    direct = Decimation(ratio).apply(Blur(fp_psf(nd), shape).apply(x)) - ym
    assert e1 == pytest.approx(float(np.sum(direct**2)), rel=tol_for(dtype) * 1000)


def fp_psf(nd):
    return gaussian_psf(3, 1.0, ndim=nd)


def test_bad_arguments_name_themselves():
    x = np.zeros((4, 5, 6))
    out = np.empty_like(x)
    with pytest.raises(ValueError, match="`u` must have 3 components"):
        _core.gradient(x, 0, (1.0, 0.0), 0.0, out, 1)
    with pytest.raises(ValueError, match="`weights` must have 3"):
        _core.gradient(x, 0, (1.0, 0.0, 0.0), 0.0, out, 1, weights=(1.0, 1.0))
    with pytest.raises(ValueError, match="`weights` must be positive"):
        _core.dtd_apply(x, None, 1.0, 1.0, out, 1, weights=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="`w3` is required"):
        _core.jacobian_transpose(x, x, None, None, x, x, 1, (), 1e-3, 1.0, out.copy(),
                                 out.copy(), out, 1)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        _core.gradient(np.zeros((2, 3, 4, 5)), 0, (1.0,) * 4, 0.0, np.zeros((2, 3, 4, 5)), 1)
    with pytest.raises(ValueError, match="local link is 2-D only"):
        _core.local_coupling_eval(x, np.zeros((2, 2, 3)), 1, 0.0, 1.0, 1.0, 0, (1.0, 0.0, 0.0),
                                  0.0)
    spec = np.zeros((4, 5, 4), np.complex128)
    with pytest.raises(ValueError, match="`s` must be an int or have 3"):
        _core.mr_residual_energy(spec, spec, spec, 6, (2, 2), 1)
