"""Robustness at the public boundary (issue 7): argument checks whose messages name the argument,
array layouts that are handled rather than rejected, and numerical safety on pathological input.
Thread safety, memory stability and Ctrl-C are in test_runtime.py."""
import sys

import numpy as np
import pytest

import mrusfusion as mf
from conftest import smooth_image

FAST = dict(planner_effort="FFTW_ESTIMATE", max_iter=5)


def _pair(m=(16, 16), s=2, seed=0, dtype=np.float64):
    """A small MR/US pair with contrast everywhere (a well-posed polynomial fit)."""
    mr = 0.1 + smooth_image(m, seed=seed, sigma=1.5)
    us = 0.2 + smooth_image((s * m[0], s * m[1]), seed=seed + 1, sigma=1.5)
    return mr.astype(dtype), us.astype(dtype)


MR, US = _pair()


def _fuse(**kw):
    args = dict(mr=MR, us=US)
    args.update(kw)
    return mf.fuse(args.pop("mr"), args.pop("us"), **{**FAST, **args})


def _with(a, index, value):
    a = np.array(a, dtype=np.result_type(a, value))
    a[index] = value
    return a


# ------------------------------------------------------------------------------ argument checks
FUSE_BAD = [
    # not an array / wrong dimension / wrong dtype
    (dict(mr="image.png"), TypeError, r"`mr` must be a 2-D array of real numbers, got str"),
    (dict(us=None), TypeError, r"`us` must be a 2-D array of real numbers, got NoneType"),
    (dict(mr=[[0.1, 0.2], [0.3]]), TypeError, r"`mr` must be a 2-D array"),
    (dict(mr=np.ones((2, 16, 16))),
     ValueError, r"`mr` must be a 2-D array, got shape \(2, 16, 16\)"),
    (dict(us=np.ones(1024)), ValueError, r"`us` must be a 2-D array, got shape \(1024,\)"),
    (dict(mr=MR.astype(np.complex128)),
     TypeError, r"`mr` must be real, got complex dtype complex128"),
    (dict(us=US.astype(np.complex64)),
     TypeError, r"`us` must be real, got complex dtype complex64"),
    (dict(mr=MR.astype(object)), TypeError, r"`mr` .*got dtype object"),
    (dict(us=np.full((32, 32), "a")), TypeError, r"`us` .*got dtype <U1"),
    # NaN or inf anywhere
    (dict(mr=_with(MR, (0, 0), np.nan)), ValueError, r"`mr` contains 1 NaN or infinite value"),
    (dict(mr=_with(MR, (-1, -1), -np.inf)), ValueError, r"`mr` contains 1 NaN or infinite value"),
    (dict(us=_with(US, (7, 31), np.inf)), ValueError, r"`us` contains 1 NaN or infinite value"),
    # empty and 1-pixel images
    (dict(mr=np.zeros((0, 0))),
     ValueError, r"`mr` must be at least 2x2 pixels, got shape \(0, 0\)"),
    (dict(mr=np.zeros((0, 16))), ValueError, r"`mr` must be at least 2x2 pixels"),
    (dict(mr=np.ones((1, 1)), us=np.ones((2, 2))),
     ValueError, r"`mr` must be at least 2x2 pixels, got shape \(1, 1\)"),
    (dict(mr=np.ones((1, 16)), us=np.ones((2, 32))), ValueError, r"`mr` must be at least 2x2"),
    (dict(us=np.ones((1, 1))), ValueError, r"`us` must be at least 2x2 pixels"),
    # shapes not an integer ratio apart, ratio < 1
    (dict(us=US[:30, :30]),
     ValueError, r"cannot infer an integer ratio from mr.shape=\(16, 16\) and us.shape=\(30, 30\)"),
    # (32, 48) for (16, 16) is now the per-axis ratio (2, 3) (issue 15); 2.5 is not an integer.
    (dict(us=np.ones((32, 40))), ValueError, r"cannot infer an integer ratio .*ratios 2 and 2.5"),
    (dict(mr=US, us=MR), ValueError, r"cannot infer an integer ratio .*ratios 0.5 and 0.5"),
    (dict(ratio=0), ValueError, r"`ratio` must be >= 1, got 0"),
    (dict(ratio=-2), ValueError, r"`ratio` must be >= 1, got -2"),
    (dict(ratio=1.5), TypeError, r"`ratio` must be an integer, got 1.5"),
    (dict(ratio=3), ValueError, r"`us` must have shape ratio \* mr.shape = \(48, 48\) for ratio=3"),
    # PSF
    (dict(psf=np.ones((33, 5))),
     ValueError, r"`psf` of shape \(33, 5\) is larger than the image \(32, 32\)"),
    (dict(psf=(40, 4.0)), ValueError, r"`psf` of shape \(40, 40\) is larger than the image"),
    (dict(psf=np.zeros((3, 3))), ValueError, r"`psf` must sum to a positive value, got 0"),
    (dict(psf=-np.ones((3, 3))), ValueError, r"`psf` must sum to a positive value, got -9"),
    (dict(psf=np.array([[1.0, -1.0]])), ValueError, r"`psf` must sum to a positive value"),
    (dict(psf=np.full((3, 3), np.nan)), ValueError, r"`psf` contains 9 NaN"),
    (dict(psf=np.ones(3)), ValueError, r"`psf` must be a 2-D array"),
    (dict(psf=np.ones((3, 3), complex)), TypeError, r"`psf` must be real"),
    (dict(psf=(9, -1.0)), ValueError, r"`psf_variance` must be > 0"),
    # weights
    (dict(tau1=-1e-3), ValueError, r"`tau1` must be >= 0, got -0.001"),
    (dict(tau2=-1.0), ValueError, r"`tau2` must be >= 0"),
    (dict(tau2=0.0), ValueError, r"`tau2` must be > 0"),
    (dict(tau3=-5), ValueError, r"`tau3` must be >= 0"),
    (dict(tau4=-1.0), ValueError, r"`tau4` must be >= 0"),
    (dict(tau4=0.0), ValueError, r"`tau4` must be > 0"),
    (dict(tau1=np.nan), ValueError, r"`tau1` must be finite, got nan"),
    (dict(tau2=np.inf), ValueError, r"`tau2` must be finite, got inf"),
    (dict(tau3=-np.inf), ValueError, r"`tau3` must be finite"),
    (dict(tau4=float("nan")), ValueError, r"`tau4` must be finite"),
    (dict(tau1="1"), TypeError, r"`tau1` must be a real number, got str"),
    (dict(tau3=[1.0]), TypeError, r"`tau3` must be a real number, got list"),
    (dict(gamma=0.0), ValueError, r"`gamma` must be > 0"),
    (dict(gamma=np.inf), ValueError, r"`gamma` must be finite"),
    # degree, scan direction, gradient
    (dict(degree=0), ValueError, r"`degree` must be between 1 and 10, got 0"),
    (dict(degree=11), ValueError, r"`degree` must be between 1 and 10, got 11"),
    (dict(degree=2.5), TypeError, r"`degree` must be an integer, got 2.5"),
    (dict(degree="3"), TypeError, r"`degree` must be an integer"),
    (dict(scan_direction=(0.0, 0.0)),
     ValueError, r"`scan_direction` must be a non-zero finite vector"),
    (dict(scan_direction=(0, -0.0)), ValueError, r"`scan_direction` must be a non-zero"),
    (dict(scan_direction=(np.nan, 1.0)), ValueError, r"`scan_direction` must be a non-zero finite"),
    (dict(scan_direction=(1.0, 0.0, 0.0)),
     TypeError, r"`scan_direction` must be a pair \(u_v, u_h\)"),
    (dict(scan_direction=1.0), TypeError, r"`scan_direction` must be a pair"),
    (dict(gradient="sobel"),
     ValueError, r"`gradient` must be 'directional' or 'magnitude', got 'sobel'"),
    # mask
    (dict(mask=np.ones((16, 16), bool)),
     ValueError, r"`mask` must have shape \(32, 32\) \(the US grid\), got \(16, 16\)"),
    (dict(mask=np.ones((32, 32, 1), bool)), ValueError, r"`mask` must have shape \(32, 32\)"),
    (dict(mask=np.zeros((32, 32), bool)), ValueError, r"`mask` selects no pixel"),
    (dict(mask=np.full((32, 32), 2.0)), ValueError, r"`mask` must hold values in \[0, 1\]"),
    (dict(mask=np.full((32, 32), np.nan)), ValueError, r"`mask` must hold values in \[0, 1\]"),
    (dict(mask=np.full((32, 32), "x")), TypeError, r"`mask` must be a boolean or real array"),
    # given coefficients
    (dict(coeffs=np.ones(3), degree=4), ValueError,
     r"`coeffs` must have 15 entries for degree 4, got 3"),
    (dict(coeffs=np.full(15, np.inf)), ValueError, r"`coeffs` must be finite"),
    # intensities and solver options
    (dict(mr=np.zeros((16, 16))), ValueError, r"`mr` must have a positive maximum"),
    (dict(us=-US), ValueError, r"`us` must have a positive maximum"),
    (dict(max_iter=-1), ValueError, r"`max_iter` must be >= 0"),
    (dict(tol=-1e-5), ValueError, r"`tol` must be >= 0"),
    (dict(threads=0), ValueError, r"`threads` must be a positive integer, got 0"),
    (dict(callback=42), TypeError, r"`callback` must be callable"),
]


@pytest.mark.parametrize("kw,exc,match", FUSE_BAD)
def test_fuse_rejects_bad_arguments_naming_them(kw, exc, match):
    with pytest.raises(exc, match=match):
        _fuse(**kw)


@pytest.mark.parametrize("mr", [np.ones((16, 16)), np.full((16, 16), 0.3),
                                np.full((16, 16), 7, np.uint8)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_mr_says_rank_deficient_and_suggests_lower_degree(mr, dtype):
    # Before the fix the spline round-off of a constant image (1e-16) was fitted, giving link
    # coefficients of 1e62 and a run that "converged" on garbage.
    with pytest.raises(ValueError, match=r"rank deficient.*constant.*lower degree"):
        _fuse(mr=mr.astype(dtype), us=US.astype(dtype))
    with pytest.raises(ValueError, match=r"rank deficient.*lower degree"):
        mf.fit_polynomial(mr.astype(dtype), US[:16, :16], 3)


def test_mr_without_gradient_along_the_scan_direction_is_rank_deficient():
    mr = np.tile(np.linspace(0.1, 1.0, 16), (16, 1))  # varies along rows only: Dv x = 0
    with pytest.raises(ValueError, match=r"rank deficient: the directional gradient .* is zero"):
        _fuse(mr=mr, scan_direction=(1.0, 0.0))
    res = _fuse(mr=mr, scan_direction=(0.0, 1.0))  # across the columns it varies: fine
    assert np.isfinite(res.x).all() and np.abs(res.coeffs).max() < 1e6


def test_narrow_intensity_range_at_high_degree_is_refused_not_garbage():
    x = smooth_image((32, 32), seed=3)
    y = x + 0.5
    # Intensities in [1, 1 + 1e-6]: the degree-6 monomials cancel to less than one digit.
    with pytest.raises(ValueError, match=r"lower degree"):
        mf.fit_polynomial(1.0 + 1e-6 * x, y, 6)
    fit = mf.fit_polynomial(1.0 + 1e-6 * x, y, 1)  # a line is still representable
    np.testing.assert_allclose(fit.evaluate(1.0 + 1e-6 * x), y, atol=1e-6)


def test_constant_us_is_accepted():
    res = _fuse(us=np.full(US.shape, 0.5))
    assert np.isfinite(res.x).all() and np.isfinite(res.v).all()


@pytest.mark.parametrize("call,exc,match", [
    (lambda: mf.super_resolve("x", 2), TypeError, r"`mr` must be a 2-D array"),
    (lambda: mf.super_resolve(MR[None], 2),
     ValueError, r"`mr` must be a 2-D array, got shape \(1, 16, 16\)"),
    (lambda: mf.super_resolve(MR.astype(complex), 2), TypeError, r"`mr` must be real"),
    (lambda: mf.super_resolve(_with(MR, (3, 3), np.nan), 2), ValueError, r"`mr` contains 1 NaN"),
    (lambda: mf.super_resolve(np.ones((1, 1)), 2), ValueError, r"`mr` must be at least 2x2"),
    (lambda: mf.super_resolve(MR, 0), ValueError, r"`ratio` must be >= 1, got 0"),
    (lambda: mf.super_resolve(MR, 2.5), TypeError, r"`ratio` must be an integer"),
    (lambda: mf.super_resolve(MR, 2, tau=-1.0), ValueError, r"`tau` must be >= 0"),
    (lambda: mf.super_resolve(MR, 2, tau=np.nan), ValueError, r"`tau` must be finite"),
    (lambda: mf.super_resolve(MR, 1, psf=np.ones((17, 3))),
     ValueError, r"`psf` of shape \(17, 3\) is larger than the image \(16, 16\)"),
    (lambda: mf.super_resolve(MR, 2, psf=np.zeros((3, 3))),
     ValueError, r"`psf` must sum to a positive value"),
    (lambda: mf.super_resolve(np.zeros((8, 8)), 2),
     ValueError, r"`mr` must have a positive maximum"),
    (lambda: mf.despeckle(None), TypeError, r"`us` must be a 2-D array"),
    (lambda: mf.despeckle(US.astype(np.complex64)), TypeError, r"`us` must be real"),
    (lambda: mf.despeckle(_with(US, (0, 5), np.inf)), ValueError, r"`us` contains 1 NaN"),
    (lambda: mf.despeckle(np.ones((32,))), ValueError, r"`us` must be a 2-D array"),
    (lambda: mf.despeckle(US, tau2=0.0), ValueError, r"`tau2` must be > 0"),
    (lambda: mf.despeckle(US, tau2=np.inf), ValueError, r"`tau2` must be finite"),
    (lambda: mf.despeckle(US, tau3=-1.0), ValueError, r"`tau3` must be >= 0"),
    (lambda: mf.despeckle(US, gamma=-1.0), ValueError, r"`gamma` must be > 0"),
    (lambda: mf.despeckle(np.zeros((8, 8))), ValueError, r"`us` must have a positive maximum"),
    (lambda: mf.fit_polynomial(US, US, 11),
     ValueError, r"`degree` must be between 0 and 10, got 11"),
    (lambda: mf.fit_polynomial(US, US, -1), ValueError, r"`degree` must be between 0 and 10"),
    (lambda: mf.fit_polynomial(US, US[:16], 2),
     ValueError, r"`us` must have the shape of `mr` \(32, 32\), got \(16, 32\)"),
    (lambda: mf.fit_polynomial(US, US, 2, scan_direction=(0, 0)),
     ValueError, r"`scan_direction` must be a non-zero"),
    (lambda: mf.fit_polynomial(US, US, 2, gradient="x"), ValueError, r"`gradient` must be"),
    (lambda: mf.fit_polynomial(US, US, 2, mask=np.zeros((32, 32), bool)),
     ValueError, r"`mask` selects no pixel"),
    (lambda: mf.fit_polynomial(US, US, 2, mask=np.ones((31, 32), bool)),
     ValueError, r"`mask` must have shape \(32, 32\)"),
    (lambda: mf.fit_polynomial(US, US, 4, mask=_with(np.zeros((32, 32), bool), (0, slice(5)), 1)),
     ValueError, r"the fit needs at least 15 pixels for degree 4, the mask gives 5"),
    (lambda: mf.simulate(US, 0), ValueError, r"`ratio` must be >= 1, got 0"),
    (lambda: mf.simulate(US[:3, :3], 4),
     ValueError, r"`mr_hr` of shape \(3, 3\) is smaller than the ratio 4"),
    (lambda: mf.simulate(np.zeros((16, 16)), 2), ValueError, r"zero.*`mr_hr` must not be all zero"),
    (lambda: mf.simulate(US, 2, mr_snr_db=-1e4),
     ValueError, r"`mr_snr_db` must be between -300 and 300"),
    (lambda: mf.simulate(US, 2, us_snr_db=np.nan), ValueError, r"`us_snr_db` must be finite"),
    (lambda: mf.simulate(1e200 * US, 2), ValueError, r"overflows: `mr_hr`"),
])
def test_other_entry_points_reject_bad_arguments_naming_them(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------------------ array layouts
def _layouts(a):
    """``a`` stored five other ways: strided view, Fortran order, read-only, big-endian, and all
    of these at once."""
    big = np.zeros((2 * a.shape[0], 3 * a.shape[1]), a.dtype)
    big[::2, ::3] = a
    strided = big[::2, ::3]
    fortran = np.asfortranarray(a)
    readonly = a.copy()
    readonly.flags.writeable = False
    swapped = a.astype(a.dtype.newbyteorder(">" if sys.byteorder == "little" else "<"))
    big_f = np.zeros((3 * a.shape[0], 2 * a.shape[1]), swapped.dtype, order="F")
    big_f[::3, ::2] = a
    combo = big_f[::3, ::2]
    combo.flags.writeable = False
    return {"strided": strided, "fortran": fortran, "readonly": readonly,
            "byteswapped": swapped, "combo": combo}


@pytest.mark.parametrize("layout", ["strided", "fortran", "readonly", "byteswapped", "combo"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layouts_give_the_native_result_and_leave_the_input_alone(layout, dtype):
    mr, us = _pair(dtype=dtype)
    mask = np.ones(us.shape, bool)
    mask[:3] = False
    ref = _fuse(mr=mr, us=us, mask=mask)
    mr2, us2, mask2 = (_layouts(a)[layout] for a in (mr, us, mask))
    assert not mr2.flags.c_contiguous or not mr2.flags.writeable or mr2.dtype.byteorder not in "=|"
    before = [a.copy() for a in (mr2, us2, mask2)]
    res = _fuse(mr=mr2, us=us2, mask=mask2)
    assert res.x.dtype == dtype and res.x.dtype.isnative and res.x.flags.c_contiguous
    np.testing.assert_array_equal(res.x, ref.x)
    np.testing.assert_array_equal(res.v, ref.v)
    np.testing.assert_array_equal(res.objective, ref.objective)
    for a, b in zip((mr2, us2, mask2), before):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype

    sr, sr2 = mf.super_resolve(mr, 2, tau=0.01), mf.super_resolve(mr2, 2, tau=0.01)
    np.testing.assert_array_equal(sr2, sr)
    assert sr2.dtype == dtype
    ds, ds2 = (mf.despeckle(u, tau2=1.0, tau3=0.5, gamma=1.0) for u in (us, us2))
    np.testing.assert_array_equal(ds2, ds)
    assert ds2.dtype == dtype
    x0 = mf.operators.bicubic_upsample(mr, 2)
    f1 = mf.fit_polynomial(x0, us, 3, mask=mask)
    f2 = mf.fit_polynomial(_layouts(x0)[layout], us2, 3, mask=mask2)
    np.testing.assert_array_equal(f2.coeffs, f1.coeffs)


def test_integer_inputs_follow_the_dtype_policy():
    mr8 = np.round(MR * 200).astype(np.uint8)
    us16 = np.round(US * 1000).astype(np.int16)
    res = _fuse(mr=mr8, us=us16)
    assert res.x.dtype == np.float64 and res.v.dtype == np.float64
    ref = _fuse(mr=mr8.astype(np.float64), us=us16.astype(np.float64))
    np.testing.assert_array_equal(res.x, ref.x)
    mixed = _fuse(mr=MR.astype(np.float32), us=US)  # one float64 input: float64 run
    assert mixed.x.dtype == np.float64


# ------------------------------------------------------------------------------ numerical safety
def _finite_or_value_error(call):
    """Run ``call``; a ValueError with a message is an acceptable answer, NaN images are not."""
    try:
        res = call()
    except ValueError as exc:
        assert str(exc)
        return None
    assert np.isfinite(res.x).all() and np.isfinite(res.v).all()
    assert np.isfinite(res.objective).all()
    return res


EXTREME = [dict(tau1=1e8), dict(tau2=1e8), dict(tau3=1e8), dict(tau4=1e8),
           dict(tau1=1e8, tau2=1e8, tau3=1e8, tau4=1e8),
           dict(tau1=1e-12, tau2=1e-12, tau3=0.0, tau4=1e-12),
           dict(tau2=1e8, tau3=1e-8), dict(gamma=1e8), dict(gamma=1e-8), dict(tau4=1e12)]


@pytest.mark.parametrize("taus", EXTREME)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_weights_give_finite_images(taus, dtype):
    mr, us = _pair(dtype=dtype)
    _finite_or_value_error(lambda: _fuse(mr=mr, us=us, max_iter=15, **taus))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["us_spike", "us_huge_spike", "us_negative_block", "us_scaled_up",
                                  "us_scaled_down", "mr_scaled_up", "mr_scaled_down", "mr_spike",
                                  "us_saturated"])
def test_huge_dynamic_range_gives_finite_images_or_a_clear_error(case, dtype):
    mr, us = _pair()
    big = 1e30 if dtype == np.float32 else 1e300
    if case == "us_spike":
        us[3, 4] = 1e6
    elif case == "us_huge_spike":
        us[3, 4] = big
    elif case == "us_negative_block":
        us[4:10, 4:10] = -1e3
    elif case == "us_scaled_up":
        us *= big / 10
    elif case == "us_scaled_down":
        us *= 1e-30
    elif case == "mr_scaled_up":
        mr *= big / 10
    elif case == "mr_scaled_down":
        mr *= 1e-30
    elif case == "mr_spike":
        mr[2, 2] = 1e10
    elif case == "us_saturated":
        us = np.minimum(us, np.quantile(us, 0.3))
    _finite_or_value_error(lambda: _fuse(mr=mr.astype(dtype), us=us.astype(dtype), max_iter=15))


@pytest.mark.parametrize("gradient", ["directional", "magnitude"])
def test_float32_on_the_sample_pair_stays_finite(gradient):
    mr, us, _ = mf.sample_pair()
    res = mf.fuse(mr.astype(np.float32), us.astype(np.float32), gradient=gradient, max_iter=40,
                  tol=0, planner_effort="FFTW_ESTIMATE")
    assert res.x.dtype == np.float32 and res.n_iter == 40
    assert np.isfinite(res.x).all() and np.isfinite(res.v).all()
    assert np.isfinite(res.objective).all() and "non-finite" not in res.stop_reason
    ref = mf.fuse(mr, us, gradient=gradient, max_iter=40, tol=0, planner_effort="FFTW_ESTIMATE")
    # float32 follows the float64 run closely, not just "finite".
    assert np.abs(res.x - ref.x).max() < 1e-2 * np.abs(ref.x).max()
    assert res.objective[-1] == pytest.approx(ref.objective[-1], rel=1e-4)


def test_float32_palm_is_monotone_and_reaches_the_float64_objective():
    mr = 0.4 + 0.2 * smooth_image((6, 8), seed=2, sigma=1.5)
    us = 0.4 + 0.2 * smooth_image((12, 16), seed=1002, sigma=1.5)
    kw = dict(degree=1, max_iter=8, tol=0, planner_effort="FFTW_ESTIMATE")
    r32 = mf.fuse(mr.astype(np.float32), us.astype(np.float32), **kw)
    r64 = mf.fuse(mr, us, **kw)
    assert np.all(np.diff(r32.objective) <= 1e-6 * np.abs(r32.objective[:-1]))
    assert r32.objective[-1] == pytest.approx(r64.objective[-1], rel=1e-3)


@pytest.mark.parametrize("inertial", [True, False])
def test_non_finite_objective_stops_with_the_last_finite_iterate(monkeypatch, inertial):
    # Inject a NaN into the v-step from its fourth call on: the solver must stop, say why, and
    # hand back the last finite iterate (never NaN images).
    from mrusfusion import vstep

    solve, calls = vstep.VStepSolver.solve, []

    def poisoned(self, v, *args, **kwargs):
        info = solve(self, v, *args, **kwargs)
        calls.append(1)
        if len(calls) >= 4:
            v[1, 1] = np.nan
        return info

    monkeypatch.setattr(vstep.VStepSolver, "solve", poisoned)
    res = _fuse(max_iter=20, tol=0, inertial=inertial)
    assert "non-finite" in res.stop_reason and "non-finite" in res.message
    assert res.n_iter == 3 and not res.converged
    assert np.isfinite(res.x).all() and np.isfinite(res.v).all()
    assert np.isfinite(res.objective).all() and len(res.objective) == 4


def test_baselines_stay_finite_on_pathological_input():
    us = US.copy()
    us[0, 0] = 1e12
    with pytest.raises(ValueError, match="`gamma` must be between"):
        mf.despeckle(us, tau2=1e8, tau3=1e-8, gamma=1e-8)  # log gamma = -18: a units mistake
    for out in (mf.despeckle(us), mf.despeckle(us, tau2=1e8, tau3=1e-8, gamma=1e-3),
                mf.super_resolve(MR, 4, tau=1e12), mf.super_resolve(MR, 4, tau=0.0),
                mf.super_resolve(MR.astype(np.float32) * 1e30, 2)):
        assert np.isfinite(out).all()


@pytest.mark.parametrize("dtype,tau", [(np.float64, 1e300), (np.float32, 1e19),
                                       (np.float32, 1e30)])
def test_weights_near_the_overflow_range_give_finite_images_or_a_clear_error(dtype, tau):
    # Before the v-step summed in double, float32 gradients of 1e23 overflowed np.linalg.norm
    # (at tau3 = 1e8 already) and PCG then divided by rz = 0.
    mr, us = _pair(dtype=dtype)
    for name in ("tau2", "tau3", "tau4"):
        _finite_or_value_error(lambda name=name: _fuse(mr=mr, us=us, **{name: tau}))


def test_float32_backtracking_tolerance_does_not_overflow():
    # A degree-10 link fitted in float64 (accepted there) and imposed on a float32 run: its
    # evaluation is inexact, backtracking drives L up until the tolerance term overflows.
    mr, us, _ = mf.sample_pair()
    mr, us = mr[:32, :32], us[:64, :64]
    coeffs = mf.fuse(mr, us, degree=10, max_iter=0, planner_effort="FFTW_ESTIMATE").coeffs
    _finite_or_value_error(lambda: mf.fuse(mr.astype(np.float32), us.astype(np.float32),
                                           degree=10, coeffs=coeffs, max_iter=20,
                                           planner_effort="FFTW_ESTIMATE"))
