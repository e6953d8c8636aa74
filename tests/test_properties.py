"""Property-based tests (issue 7): over random small shapes, ratios, dtypes, degrees, weights and
gradient variants, every public function either returns finite arrays of the right shape and
dtype or raises ValueError / TypeError. Nothing else escapes: with ``filterwarnings = error`` a
RuntimeWarning (overflow, invalid value) fails the test as well."""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from scipy import ndimage

import mrusfusion as mf
from mrusfusion import metrics
from mrusfusion.operators import Blur, Decimation, bicubic_upsample, gaussian_psf, make_gradient
from mrusfusion.link import exponents, n_coeffs

PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ACCEPTED = (ValueError, TypeError)

DTYPES = st.sampled_from([np.float32, np.float64])
# Positive weights over twelve decades; None lets the library choose.
POSITIVE = st.builds(lambda m, e: m * 10.0**e, st.floats(1.0, 9.99), st.integers(-6, 6))
WEIGHT = st.one_of(st.none(), POSITIVE)
WEIGHT0 = st.one_of(st.none(), st.just(0.0), POSITIVE)
KINDS = ["smooth", "noise", "constant", "binary", "ramp", "spiky", "speckle", "integers"]


@st.composite
def images(draw, shape, dtype=None, kinds=KINDS):
    """A random image: a kind of content at a scale of 1e-6..1e6, optionally offset."""
    dtype = draw(DTYPES) if dtype is None else dtype
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "smooth":
        a = ndimage.gaussian_filter(rng.random(shape), 1.5, mode="wrap")
    elif kind == "noise":
        a = rng.random(shape)
    elif kind == "constant":
        a = np.full(shape, rng.random())
    elif kind == "binary":
        a = (rng.random(shape) > 0.5).astype(float)
    elif kind == "ramp":
        a = np.add.outer(np.arange(shape[0]) * rng.random(), np.arange(shape[1]) * rng.random())
    elif kind == "spiky":
        a = rng.random(shape) * 1e-3
        a.flat[rng.integers(0, a.size)] = 1.0
    elif kind == "speckle":  # log-compressed Rayleigh speckle, as in B-mode images
        a = 1.0 + 0.2 * np.log(rng.rayleigh(1.0, shape))
    else:
        a = rng.integers(0, 256, shape).astype(float)
    a = a * 10.0 ** draw(st.integers(-6, 6)) + draw(st.sampled_from([0.0, 0.0, 0.1, -0.5]))
    return a.astype(dtype)


@st.composite
def fusion_problems(draw):
    """MR and US images a ratio apart, US sides 4..24."""
    ratio = draw(st.integers(1, 4))
    lo, hi = max(2, -(-4 // ratio)), 24 // ratio
    m = (draw(st.integers(lo, hi)), draw(st.integers(lo, hi)))
    mr = draw(images(m))
    us = draw(images((ratio * m[0], ratio * m[1])))
    return mr, us, ratio


def psfs(shape):
    small = min(shape)
    return st.one_of(
        st.none(),  # the paper's 9x9: too large for the smaller images
        st.tuples(st.integers(1, max(1, small)), st.floats(0.25, 8.0)),
        st.builds(lambda r, c, seed: np.random.default_rng(seed).random((r, c)) + 0.01,
                  st.integers(1, max(1, small)), st.integers(1, max(1, small)), st.integers(0, 99)),
    )


GRADIENTS = st.one_of(
    st.tuples(st.just("magnitude"), st.just((1.0, 0.0))),
    st.tuples(st.just("directional"),
              st.floats(0.0, 2 * np.pi).map(lambda t: (float(np.cos(t)), float(np.sin(t))))),
)


def _refused(exc):
    """An accepted refusal: it must say what is wrong (the statistics show which checks fire)."""
    assert str(exc)
    event(f"{type(exc).__name__}: {str(exc)[:40]}")


def _working_dtype(*arrays):
    return np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64


def _check_image(out, shape, dtype):
    assert isinstance(out, np.ndarray)
    assert out.shape == shape
    assert out.dtype == dtype
    assert np.isfinite(out).all()


# ------------------------------------------------------------------------------ fuse
@PROPERTY
@given(problem=fusion_problems(), data=st.data(), degree=st.integers(1, 5),
       gradient=GRADIENTS, tau1=WEIGHT0, tau2=WEIGHT, tau3=WEIGHT0, tau4=WEIGHT, gamma=WEIGHT,
       max_iter=st.integers(0, 6), inertial=st.booleans(), with_mask=st.booleans(),
       give_ratio=st.booleans())
def test_fuse_returns_finite_images_or_raises_value_or_type_error(
        problem, data, degree, gradient, tau1, tau2, tau3, tau4, gamma, max_iter, inertial,
        with_mask, give_ratio):
    mr, us, ratio = problem
    psf = data.draw(psfs(us.shape), label="psf")
    mask = None
    if with_mask:
        seed = data.draw(st.integers(0, 99), label="mask seed")
        mask = np.random.default_rng(seed).random(us.shape) > 0.3
    try:
        res = mf.fuse(mr, us, ratio=ratio if give_ratio else None, degree=degree,
                      tau1=tau1, tau2=tau2, tau3=tau3, tau4=tau4, gamma=gamma, psf=psf,
                      gradient=gradient[0], scan_direction=gradient[1], mask=mask,
                      max_iter=max_iter, tol=1e-5, inertial=inertial, threads=1,
                      planner_effort="FFTW_ESTIMATE")
    except ACCEPTED as exc:
        _refused(exc)
        return
    dtype = _working_dtype(mr, us)
    _check_image(res.x, us.shape, dtype)
    _check_image(res.v, us.shape, dtype)
    _check_image(res.x_init, us.shape, dtype)
    assert np.isfinite(res.objective).all() and len(res.objective) == res.n_iter + 1
    assert res.n_iter <= max_iter and np.isfinite(res.coeffs).all()
    if dtype == np.float64:  # float32: see test_robustness.py::test_float32_palm_is_monotone
        # The monotone safeguard makes PALM a descent method whatever the data.
        assert np.all(np.diff(res.objective) <= 1e-9 * np.abs(res.objective[:-1]) + 1e-300)


@PROPERTY
@given(data=st.data(), ratio=st.integers(1, 4), m1=st.integers(4, 10), m2=st.integers(4, 10),
       degree=st.integers(1, 3), gradient=GRADIENTS, dtype=DTYPES)
def test_fuse_succeeds_on_well_posed_problems(data, ratio, m1, m2, degree, gradient, dtype):
    # Smooth images with contrast and a PSF that fits: no validation error may fire.
    shape = (ratio * m1, ratio * m2)
    assume(shape[0] * shape[1] >= 4 * n_coeffs(degree))
    hr = data.draw(images(shape, dtype=np.float64, kinds=["smooth"]), label="hr")
    hr = (hr - hr.min()) / (np.ptp(hr) or 1.0) + 0.1
    assume(np.ptp(hr) > 0.5)
    sim = mf.simulate(hr, ratio, psf_size=3, psf_variance=1.0, gradient=gradient[0],
                      scan_direction=gradient[1], seed=data.draw(st.integers(0, 99)))
    res = mf.fuse(sim.mr.astype(dtype), sim.us.astype(dtype), degree=degree, psf=(3, 1.0),
                  gradient=gradient[0], scan_direction=gradient[1], max_iter=5,
                  planner_effort="FFTW_ESTIMATE")
    _check_image(res.x, shape, dtype)
    _check_image(res.v, shape, dtype)


@PROPERTY
@given(mr=st.integers(1, 30).flatmap(lambda a: st.integers(1, 30).map(lambda b: (a, b))),
       us=st.integers(1, 30).flatmap(lambda a: st.integers(1, 30).map(lambda b: (a, b))),
       ratio=st.one_of(st.none(), st.integers(-1, 5)))
def test_fuse_with_arbitrary_shapes_either_works_or_says_why(mr, us, ratio):
    rng = np.random.default_rng(0)
    try:
        res = mf.fuse(rng.random(mr) + 0.1, rng.random(us) + 0.1, ratio=ratio, psf=(1, 1.0),
                      degree=1, max_iter=2, planner_effort="FFTW_ESTIMATE")
    except ACCEPTED as exc:
        _refused(exc)
        return
    # The ratio is inferred per axis (issue 15); a given int applies to both axes.
    s = (us[0] // mr[0], us[1] // mr[1])
    assert us == (s[0] * mr[0], s[1] * mr[1])
    assert (ratio is None and res.ratio in (s, s[0])) or (ratio == s[0] == s[1] == res.ratio)
    _check_image(res.x, us, np.float64)


# ------------------------------------------------------------------------------ baselines
@PROPERTY
@given(data=st.data(), ratio=st.integers(1, 4), m1=st.integers(2, 12), m2=st.integers(2, 12),
       tau=WEIGHT0)
def test_super_resolve_returns_finite_images_or_raises(data, ratio, m1, m2, tau):
    mr = data.draw(images((m1, m2)), label="mr")
    psf = data.draw(psfs((ratio * m1, ratio * m2)), label="psf")
    try:
        out = mf.super_resolve(mr, ratio, tau=tau, psf=psf, threads=1)
    except ACCEPTED as exc:
        _refused(exc)
        return
    _check_image(out, (ratio * m1, ratio * m2), mr.dtype)


@PROPERTY
@given(data=st.data(), n1=st.integers(2, 24), n2=st.integers(2, 24), tau2=WEIGHT, tau3=WEIGHT0,
       gamma=WEIGHT)
def test_despeckle_returns_finite_images_or_raises(data, n1, n2, tau2, tau3, gamma):
    us = data.draw(images((n1, n2)), label="us")
    try:
        # At extreme weight ratios Newton may stop at its cap: it must say so, and the image it
        # returns must still be finite.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            out = mf.despeckle(us, tau2=tau2, tau3=tau3, gamma=gamma, threads=1)
    except ACCEPTED as exc:
        _refused(exc)
        return
    for w in caught:
        assert issubclass(w.category, RuntimeWarning) and "Newton stopped" in str(w.message)
    _check_image(out, us.shape, us.dtype)


# ------------------------------------------------------------------------------ link and simulator
@PROPERTY
@given(data=st.data(), n1=st.integers(2, 24), n2=st.integers(2, 24), degree=st.integers(0, 5),
       gradient=GRADIENTS, with_mask=st.booleans())
def test_fit_polynomial_gives_finite_links_or_raises(data, n1, n2, degree, gradient, with_mask):
    x = data.draw(images((n1, n2)), label="mr")
    y = data.draw(images((n1, n2)), label="us")
    mask = None
    if with_mask:
        mask = np.random.default_rng(data.draw(st.integers(0, 99))).random((n1, n2)) > 0.5
    try:
        link = mf.fit_polynomial(x, y, degree, gradient=gradient[0], scan_direction=gradient[1],
                                 mask=mask, threads=1)
    except ACCEPTED as exc:
        _refused(exc)
        return
    assert link.coeffs.shape == (n_coeffs(degree),) and np.isfinite(link.coeffs).all()
    assert np.isfinite(link.residual_norm)
    f = link.evaluate(x.astype(np.float64))
    _check_image(f, (n1, n2), np.float64)
    # The fit is least squares: no worse than the best constant (up to the solve's rounding,
    # which the accepted condition numbers of up to 1e13 amplify).
    sel = mask if mask is not None else np.ones((n1, n2), bool)
    yy = y.astype(np.float64)[sel]
    assert link.residual_norm <= np.linalg.norm(yy - yy.mean()) + 1e-6 * np.linalg.norm(yy)


@PROPERTY
@given(data=st.data(), degree=st.integers(0, 4), gradient=GRADIENTS,
       mr_exp=st.integers(-300, 300) | st.integers(-40, 40),
       us_exp=st.integers(-300, 300) | st.integers(-40, 40))
def test_fit_polynomial_at_extreme_scales_is_scale_covariant_or_says_why(data, degree, gradient,
                                                                        mr_exp, us_exp):
    """Issue 19 item 6: a fit at any finite scale returns the scaled link or names `mr`/`us`."""
    x = data.draw(images((12, 10), np.float64, ["smooth", "noise", "ramp", "speckle"]), label="mr")
    y = data.draw(images((12, 10), np.float64), label="us")
    kw = dict(gradient=gradient[0], scan_direction=gradient[1], threads=1)
    try:
        base = mf.fit_polynomial(x, y, degree, **kw)
    except ACCEPTED as exc:
        _refused(exc)
        return
    # Scaled so that the largest magnitudes are 10^mr_exp and 10^us_exp (all finite).
    a = 10.0**mr_exp / (float(np.abs(x).max()) or 1.0)
    b = 10.0**us_exp / (float(np.abs(y).max()) or 1.0)
    try:
        # The magnitude gradient's eps is in the units of mr: it scales with them.
        link = mf.fit_polynomial(x * a, y * b, degree, eps=1e-3 * a, **kw)
    except ACCEPTED as exc:
        assert "`mr`" in str(exc) and "`us`" in str(exc)
        _refused(exc)
        return
    assert np.isfinite(link.coeffs).all() and np.isfinite(link.relative_residual)
    # Both fits round differently: the accepted condition numbers (up to 1e13) amplify that, and
    # so does the evaluation in monomials when its terms dwarf its values (x = 0.5 + 1e-4 noise).
    g = np.abs(base.grad.apply(x)).max()
    terms = sum(abs(c) * np.abs(x).max() ** p * g**q
                for c, (p, q) in zip(base.coeffs, exponents(degree)))
    cond = max(base.condition, link.condition)
    rounding = 1e3 * np.finfo(float).eps * terms / (np.abs(y).max() or 1.0)
    rel = 1e-6 + 1e-12 * cond + rounding
    # A link that fits to rounding level (y an exact polynomial of x) has residuals at the
    # evaluation's rounding floor, which differ between the two scales by up to that floor.
    assert link.relative_residual == pytest.approx(base.relative_residual, rel=rel,
                                                   abs=1e-9 + rounding)
    f = link.evaluate(x * a) / b
    np.testing.assert_allclose(f, base.evaluate(x), atol=rel * (np.abs(y).max() or 1.0))


@PROPERTY
@given(data=st.data(), n1=st.integers(2, 24), n2=st.integers(2, 24), ratio=st.integers(1, 4),
       gradient=GRADIENTS, mr_snr=st.floats(-20, 60), us_snr=st.floats(-20, 60),
       psf_size=st.integers(1, 9))
def test_simulate_returns_consistent_finite_pairs_or_raises(data, n1, n2, ratio, gradient,
                                                            mr_snr, us_snr, psf_size):
    hr = data.draw(images((n1, n2)), label="mr_hr")
    try:
        sim = mf.simulate(hr, ratio, psf_size=psf_size, mr_snr_db=mr_snr, us_snr_db=us_snr,
                          gradient=gradient[0], scan_direction=gradient[1],
                          seed=data.draw(st.integers(0, 99)))
    except ACCEPTED as exc:
        _refused(exc)
        return
    c1, c2 = n1 // ratio, n2 // ratio
    _check_image(sim.mr, (c1, c2), np.float64)
    _check_image(sim.us, (c1 * ratio, c2 * ratio), np.float64)
    assert sim.mr_snr_db == pytest.approx(mr_snr, abs=1e-6)
    assert sim.us_snr_db == pytest.approx(us_snr, abs=1e-6)


# ------------------------------------------------------------------------------ operators, metrics
@PROPERTY
@given(data=st.data(), n1=st.integers(1, 24), n2=st.integers(1, 24), ratio=st.integers(1, 4))
def test_operators_keep_shapes_and_finiteness(data, n1, n2, ratio):
    x = data.draw(images((n1, n2)), label="x")
    psf = data.draw(psfs((n1, n2)), label="psf")
    try:
        blur = Blur(psf, (n1, n2))
    except ACCEPTED as exc:
        _refused(exc)
        return
    for out in (blur.apply(x), blur.adjoint(x)):
        _check_image(out, (n1, n2), x.dtype)
    up = bicubic_upsample(x, ratio)
    _check_image(up, (ratio * n1, ratio * n2), x.dtype)
    np.testing.assert_allclose(Decimation(ratio).apply(up), x,
                               rtol=1e-4 if x.dtype == np.float32 else 1e-9,
                               atol=1e-6 * float(np.abs(x).max()))
    for name in ("directional", "magnitude"):
        g = make_gradient(name, (0.6, 0.8)).apply(x)
        _check_image(g, (n1, n2), x.dtype)
    h = gaussian_psf(data.draw(st.integers(1, 11)), data.draw(st.floats(0.1, 100.0)))
    assert np.isfinite(h).all() and h.sum() == pytest.approx(1.0)


@PROPERTY
@given(data=st.data(), n1=st.integers(1, 24), n2=st.integers(1, 24),
       scale=st.integers(-300, 300).map(lambda e: 10.0**e))
def test_metrics_return_floats_at_any_scale_or_raise(data, n1, n2, scale):
    a = data.draw(images((n1, n2), dtype=np.float64), label="a") * scale
    b = data.draw(images((n1, n2), dtype=np.float64), label="b") * scale
    values = []
    for call in (lambda: metrics.rmse(a, b), lambda: metrics.psnr(a, b),
                 lambda: metrics.psnr(a, b, data_range=scale),
                 lambda: metrics.isnr(a, b, 0.5 * (a + b)),
                 lambda: metrics.mssim(a, b, data_range=scale, win_size=3),
                 lambda: metrics.cnr(a, np.s_[: max(1, n1 // 2)], np.s_[max(1, n1 // 2):])):
        try:
            values.append(call())
        except ACCEPTED as exc:
            _refused(exc)
            continue
        assert isinstance(values[-1], float) and not np.isnan(values[-1])
    if np.isfinite(a).all() and np.isfinite(b).all() and 1e-280 < scale < 1e280:
        # The RMSE is homogeneous in the scale: rmse / scale does not depend on it (before the
        # fix it underflowed to 0 below 1e-154 and overflowed above 1e154).
        ref = metrics.rmse(a / scale, b / scale)
        assert metrics.rmse(a, b) / scale == pytest.approx(ref, rel=1e-9)
