"""Every C++ kernel against its plain NumPy twin (mrusfusion._reference), float32 and float64,
odd and even shapes, with and without optional inputs."""
import numpy as np
import pytest

from mrusfusion import _core
from mrusfusion import _reference as ref
from mrusfusion.link import n_coeffs

from conftest import DTYPES, SHAPES, smooth_image, tol_for

GRADS = [(0, (1.0, 0.0), 0.0), (0, (0.6, 0.8), 0.0), (1, (1.0, 0.0), 1e-3)]


def _close(a, b, dtype, scale=1.0):
    np.testing.assert_allclose(a, b, rtol=tol_for(dtype), atol=tol_for(dtype) * scale)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grad", GRADS)
def test_gradient_and_adjoint(shape, dtype, grad, rng):
    x = rng.random(shape).astype(dtype)
    a, b = np.empty_like(x), np.empty_like(x)
    _core.gradient(x, *grad, a, 2)
    ref.gradient(x, *grad, b)
    _close(a, b, dtype)
    _core.gradient_adjoint(x, grad[1], a, 2)
    ref.gradient_adjoint(x, grad[1], b)
    _close(a, b, dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_diag", [False, True])
def test_dtd_apply(shape, dtype, with_diag, rng):
    p = rng.standard_normal(shape).astype(dtype)
    c = rng.random(shape).astype(dtype) if with_diag else None
    a, b = np.empty_like(p), np.empty_like(p)
    s1 = _core.dtd_apply(p, c, 0.3, 1.7, a, 2)
    s2 = ref.dtd_apply(p, c, 0.3, 1.7, b)
    _close(a, b, dtype, 10)
    assert s1 == pytest.approx(s2, rel=tol_for(dtype) * 10)
    assert _core.squared_gradient_norm(p, 2) == pytest.approx(ref.squared_gradient_norm(p),
                                                              rel=1e-12)


@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("grad", GRADS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_coupling_eval(degree, grad, dtype, rng):
    x = smooth_image((15, 22), dtype=dtype)
    v = rng.random(x.shape).astype(dtype)
    mask = (rng.random(x.shape) > 0.3).astype(dtype)
    c = rng.standard_normal(n_coeffs(degree)).astype(dtype)
    outs = [[np.empty_like(x) for _ in range(3)] for _ in range(2)]
    h1 = _core.coupling_eval(x, c, degree, *grad, v, mask, *outs[0], 2)
    h2 = ref.coupling_eval(x, c, degree, *grad, v, mask, *outs[1])
    for a, b in zip(*outs):
        _close(a, b, dtype, 10)
    assert h1 == pytest.approx(h2, rel=tol_for(dtype) * 100)
    # Optional outputs may be omitted; the value is then 0 without v.
    assert _core.coupling_eval(x, c, degree, *grad, None, None, None, None, None, 1) == 0.0


@pytest.mark.parametrize("grad", GRADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_jacobian_transpose(grad, dtype, shape, rng):
    x = smooth_image(shape, dtype=dtype)
    a, b_, fx, fg = (rng.standard_normal(shape).astype(dtype) for _ in range(4))
    mask = (rng.random(shape) > 0.5).astype(dtype)
    w1, w2, o1, o2 = (np.empty_like(x) for _ in range(4))
    _core.jacobian_transpose(x, a, b_, mask, fx, fg, *grad, -0.7, w1, w2, o1, 2)
    ref.jacobian_transpose(x, a, b_, mask, fx, fg, *grad, -0.7, None, None, o2)
    _close(o1, o2, dtype, 10)


@pytest.mark.parametrize("degree", [1, 3, 6])
def test_normal_equations(degree, rng):
    x, g, y = (rng.random((11, 13)) for _ in range(3))
    mask = (rng.random(x.shape) > 0.2).astype(float)
    G1, b1, yy1 = _core.poly_normal_equations(x, g, y, mask, degree, 0.4, 0.7, 1.3, 2)
    G2, b2, yy2 = ref.poly_normal_equations(x, g, y, mask, degree, 0.4, 0.7, 1.3)
    np.testing.assert_allclose(G1, G2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b1, b2, rtol=1e-12, atol=1e-12)
    assert yy1 == pytest.approx(yy2, rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_vstep_eval(dtype, shape, rng):
    v, y, w = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    mask = (rng.random(shape) > 0.4).astype(dtype)
    g1, c1, g2, c2 = (np.empty_like(v) for _ in range(4))
    r1 = _core.vstep_eval(v, y, w, mask, 0.9, 1.02, 0.3, 0.22, g1, c1, 2)
    r2 = ref.vstep_eval(v, y, w, mask, 0.9, 1.02, 0.3, 0.22, g2, c2)
    np.testing.assert_allclose(r1, r2, rtol=tol_for(dtype) * 10)
    assert r1[4] == pytest.approx(np.sum(g1.astype(float) ** 2), rel=1e-12)  # ||grad||^2
    _close(g1, g2, dtype, 10)
    _close(c1, c2, dtype, 10)


def test_vstep_gradient_is_the_derivative_of_the_value(rng):
    shape = (10, 12)
    v, y, w, d = (rng.standard_normal(shape) for _ in range(4))
    g = np.empty_like(v)
    _core.vstep_eval(v, y, w, None, 0.9, 1.02, 0.3, 0.22, g, None, 1)
    h = 1e-6
    fd = (_core.vstep_eval(v + h * d, y, w, None, 0.9, 1.02, 0.3, 0.22, None, None, 1)[0]
          - _core.vstep_eval(v - h * d, y, w, None, 0.9, 1.02, 0.3, 0.22, None, None, 1)[0]
          ) / (2 * h)
    assert fd == pytest.approx(np.vdot(g, d), rel=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,s", [((12, 18), 3), ((16, 16), 4), ((10, 14), 1), ((24, 12), 6),
                                     ((9, 15), 3)])
def test_xstep_and_mr_residual_match_twin(dtype, shape, s, rng):
    from mrusfusion.fourier import FourierProblem
    from mrusfusion.operators import gaussian_psf

    ym = rng.random((shape[0] // s, shape[1] // s)).astype(dtype)
    fp = FourierProblem(shape, s, gaussian_psf(5, 2.0), dtype, 2, ym, "FFTW_ESTIMATE")
    Xk = fp.forward(rng.random(shape).astype(dtype))
    Gk = fp.forward(rng.standard_normal(shape).astype(dtype))
    X1, X2 = fp.empty_spec(), fp.empty_spec()
    fp.solve(0.37, 0.05, Xk, Gk, out=X1)
    ref.xstep_solve(fp.rhs_mr, Xk, Gk, fp.lam, fp.dtd, shape[1], s, 0.05, 0.37, None, X2)
    scale = np.abs(X2).max()
    np.testing.assert_allclose(X1, X2, rtol=0, atol=tol_for(dtype) * scale * 10)
    # The variant that also returns the image: its spectrum copy feeds the inverse FFT directly.
    img, X3 = fp.empty_real(), fp.empty_spec()
    fp.solve(0.37, 0.05, Xk, Gk, out=X3, image=img)
    np.testing.assert_array_equal(X3, X1)
    np.testing.assert_allclose(img, np.fft.irfft2(X1, s=shape), rtol=0,
                               atol=tol_for(dtype) * np.abs(img).max() * 10)
    e1 = fp.mr_residual(X1)
    e2 = ref.mr_residual_energy(X1, fp.lam, fp.ym_spec, shape[1], s)
    assert e1 == pytest.approx(e2, rel=tol_for(dtype) * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_reductions_and_prox_target(dtype, shape, rng):
    a, b, c = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    mask = (rng.random(shape) > 0.5).astype(dtype)
    assert _core.dot(a, b, 2) == pytest.approx(ref.dot(a, b), rel=1e-12, abs=1e-12)
    for cc, mm in ((c, mask), (None, None)):
        np.testing.assert_allclose(_core.diff_stats(a, b, cc, mm, 2), ref.diff_stats(a, b, cc, mm),
                                   rtol=1e-12, atol=1e-12)
    o1, o2 = np.empty_like(a), np.empty_like(a)
    _core.prox_target(a, b, mask, 0.7, o1, 2)
    ref.prox_target(a, b, mask, 0.7, o2)
    _close(o1, o2, dtype)
    n1 = _core.axpby(a, b, 1.3, -0.4, o1, 2)
    n2 = ref.axpby(a, b, 1.3, -0.4, o2)
    _close(o1, o2, dtype)
    assert n1 == pytest.approx(n2, rel=tol_for(dtype))
    assert n1 == pytest.approx(np.sum(o1.astype(float) ** 2), rel=1e-12)
    # In place, over either input (the solvers update p += alpha s and s = z + beta s so).
    for keep_first in (True, False):
        o = a.copy() if keep_first else b.copy()
        args = (o, b) if keep_first else (a, o)
        _core.axpby(*args, 1.3, -0.4, o, 2)
        _close(o, o2, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_spectral_scale(dtype, rng):
    cd = np.complex64 if dtype == np.float32 else np.complex128
    Z = (rng.standard_normal((7, 5)) + 1j * rng.standard_normal((7, 5))).astype(cd)
    d = rng.random((7, 5)).astype(dtype)
    Z1, Z2 = Z.copy(), Z.copy()
    _core.spectral_scale(Z1, d, 0.3, 2.0, 2)
    ref.spectral_scale(Z2, d, 0.3, 2.0)
    np.testing.assert_allclose(Z1, Z2, rtol=tol_for(dtype))
    np.testing.assert_allclose(Z1 * (0.3 + 2.0 * d), Z, rtol=tol_for(dtype) * 10)
    with pytest.raises(TypeError, match="Z"):
        _core.spectral_scale(Z.real.copy(), d, 0.3, 2.0, 1)


@pytest.mark.skipif(not _core.build_info()["avx2_compiled"], reason="no AVX2 build of the kernels")
def test_avx2_and_baseline_builds_agree(rng):
    # The AVX2/FMA build is chosen at run time; both must compute the same thing (FMA changes
    # rounding, so agreement is to 1e-12, not bitwise).
    before = _core.simd()
    x = smooth_image((21, 34))
    v, y, w = (rng.random(x.shape) for _ in range(3))
    c = rng.standard_normal(15)
    out = {}
    try:
        for mode in ("baseline", "avx2"):
            try:
                _core.set_simd(mode)
            except ValueError:
                pytest.skip("this CPU has no AVX2/FMA")
            f, fx, fg, g, cu = (np.empty_like(x) for _ in range(5))
            h = _core.coupling_eval(x, c, 4, 1, (1.0, 0.0), 1e-3, v, None, f, fx, fg, 2)
            val = _core.vstep_eval(v, y, w, None, 0.9, 1.01, 0.3, 0.2, g, cu, 2)
            out[mode] = (h, f, fx, fg, val, g, cu)
    finally:
        _core.set_simd("avx2" if before.startswith("avx2") else "baseline")
    for a, b in zip(out["baseline"], out["avx2"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="baseline"):
        _core.set_simd("sse9")
