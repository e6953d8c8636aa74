"""The simulators on 3-D volumes (issue 15): the paper's protocol and the B-mode simulation,
the 3-D phantom, and the 2-D outputs left as they were."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mrusfusion import phantom, phantom3d, simulate, simulate_bmode
from mrusfusion.link import PolynomialLink
from mrusfusion.operators import Blur, Decimation, gaussian_psf, make_gradient
from mrusfusion.simulate import AUTHORS_COEFFS
from mrusfusion.simulate._volume import (autocorrelation_area, blur, decimate, gaussian_psf_nd,
                                         link_features, link_values)

SHAPE = (24, 24, 16)


# --------------------------------------------------------------------------- phantom


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_phantom3d_is_ellipsoids_in_the_unit_range(dtype):
    x = phantom3d(SHAPE, dtype=dtype)
    assert x.shape == SHAPE and x.dtype == dtype
    assert 0 <= x.min() and x.max() <= 1
    # The bladder's centre is fluid, its fat rim bright, the lesion brightest (the 2-D values).
    big = phantom3d((64, 64, 48))
    centre = tuple(int(f * n) for f, n in zip((0.41, 0.31, 0.5), big.shape))
    assert big[centre] == pytest.approx(0.08, abs=0.02)
    assert big[tuple(int(f * n) for f, n in zip((0.80, 0.83, 0.45), big.shape))] > 0.9
    np.testing.assert_array_equal(phantom(SHAPE), phantom3d(SHAPE))
    a, b = phantom3d(SHAPE, seed=1), phantom3d(SHAPE, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, x.astype(np.float64))
    with pytest.raises(TypeError, match="shape"):
        phantom3d((4, 4))
    with pytest.raises(ValueError, match="positive"):
        phantom3d((4, 4, 0))


# --------------------------------------------------------------------------- the N-D pieces


def test_nd_pieces_match_the_engine_operators_in_2d():
    x = phantom((32, 24), seed=2)
    psf = gaussian_psf_nd(9, 4.0, 2)
    np.testing.assert_allclose(psf, gaussian_psf(9, 4.0), rtol=1e-12)
    np.testing.assert_allclose(blur(x, psf), Blur(psf, x.shape).apply(x), atol=1e-12)
    np.testing.assert_array_equal(decimate(x, (2, 2)), Decimation(2).apply(x))
    for mode, u in (("magnitude", (1.0, 0.0)), ("directional", (0.6, 0.8))):
        g = make_gradient(mode, u, 1e-3).apply(x)
        np.testing.assert_allclose(link_features(x, mode, u, 1e-3), g, atol=1e-12)
    link = PolynomialLink(AUTHORS_COEFFS, 3, "magnitude", (1.0, 0.0), 1e-3)
    mine = link_values(AUTHORS_COEFFS, 3, x, link_features(x, "magnitude", (1, 0), 1e-3))
    np.testing.assert_allclose(mine, link.evaluate(x), atol=1e-12)


def test_blur_is_a_periodic_convolution_in_3d():
    x = np.random.default_rng(0).random((10, 9, 8))
    psf = gaussian_psf_nd((5, 3, 3), (2.0, 1.0, 0.5), 3)
    assert psf.shape == (5, 3, 3) and psf.sum() == pytest.approx(1.0)
    expected = ndimage.convolve(x, psf[::-1, ::-1, ::-1], mode="wrap")
    np.testing.assert_allclose(blur(x, psf), expected, atol=1e-12)


# --------------------------------------------------------------------------- protocol


@pytest.mark.parametrize("ratio", [(2, 2, 4), 2])
def test_protocol_3d_shapes_and_snr(ratio):
    x = phantom3d(SHAPE)
    sim = simulate(x, ratio=ratio, seed=0, mr_snr_db=20.0, us_snr_db=14.0)
    r = ratio if isinstance(ratio, tuple) else (ratio,) * 3
    assert sim.ratio == r
    assert sim.us.shape == SHAPE and sim.mr.shape == tuple(n // s for n, s in zip(SHAPE, r))
    assert sim.psf.shape == (9, 9, 9)
    assert sim.mr_snr_db == pytest.approx(20.0, abs=1e-9)
    assert sim.us_snr_db == pytest.approx(14.0, abs=1e-9)
    # The US noise is b log R: removing the scale leaves log-Rayleigh (variance pi^2/24).
    log_r = (sim.us - sim.us_true) / sim.us_noise_scale
    assert np.var(log_r) == pytest.approx(np.pi**2 / 24, rel=0.05)


def test_protocol_3d_observation_and_link():
    x = phantom3d(SHAPE, seed=3)
    sim = simulate(x, ratio=(2, 2, 4), psf_size=(5, 5, 3), psf_variance=(2.0, 2.0, 1.0),
                   mr_snr_db=300.0, seed=1)
    # Noise-free MR: S C x, with C the periodic convolution.
    expected = ndimage.convolve(x, sim.psf[::-1, ::-1, ::-1], mode="wrap")[::2, ::2, ::4]
    np.testing.assert_allclose(sim.mr, expected, atol=1e-10)
    # x_u = x + |grad x| + ... with the three forward differences
    d = [np.roll(x, -1, axis=a) - x for a in range(3)]
    g = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2 + 1e-6)
    c = AUTHORS_COEFFS
    xu = (c[1] * x + c[2] * x**2 + c[3] * x**3 + c[4] * g + c[5] * x * g + c[6] * x**2 * g)
    np.testing.assert_allclose(sim.us_true, xu, atol=1e-12)
    # A directional link along a beam in the (0, 2) plane.
    sim = simulate(x, ratio=2, gradient="directional", scan_direction=(3.0, 0.0, 4.0), seed=0)
    np.testing.assert_allclose(sim.us_true - x, 0.6 * d[0] + 0.8 * d[2] + 1e-4 * x**2
                               - 1e-5 * x**3 + 1e-3 * x * (0.6 * d[0] + 0.8 * d[2])
                               + 1e-5 * x**2 * (0.6 * d[0] + 0.8 * d[2]), atol=1e-12)


def test_protocol_3d_bad_input():
    x = phantom3d((8, 8, 8))
    with pytest.raises(ValueError, match="ratio"):
        simulate(x, ratio=(2, 2))
    with pytest.raises(ValueError, match="ratio"):
        simulate(x, ratio=(2, 0, 2))
    with pytest.raises(ValueError, match="scan_direction"):
        simulate(x, ratio=2, scan_direction=(1.0, 0.0))
    with pytest.raises(ValueError, match="smaller than the ratio"):
        simulate(x, ratio=(2, 2, 16))
    with pytest.raises(ValueError, match="2-D"):
        simulate(np.zeros((4, 4, 4, 4)), ratio=2)
    with pytest.raises(ValueError, match="PSF"):  # a volume too small for the 9x9x9 PSF
        simulate(x, ratio=2)
    with pytest.raises(ValueError, match="psf_size"):
        simulate(phantom3d((16, 16, 16)), ratio=2, psf_size=(9, 9))


def test_protocol_2d_is_the_engine_composition():
    # The 2-D path still runs the engine's operators on the same random draws.
    x = phantom((40, 48), seed=4)
    sim = simulate(x, ratio=4, seed=9)
    rng = np.random.default_rng(9)
    clean = Decimation(4).apply(Blur(gaussian_psf(9, 4.0), x.shape).apply(x))
    n = rng.standard_normal(clean.shape)
    n *= np.sqrt(np.sum(clean**2) * 10 ** (-23.26 / 10) / np.sum(n**2))
    np.testing.assert_array_equal(sim.mr, clean + n)
    link = PolynomialLink(AUTHORS_COEFFS, 3, "magnitude", (1.0, 0.0), 1e-3)
    np.testing.assert_array_equal(sim.us_true, link.evaluate(x))
    assert sim.ratio == 4


# --------------------------------------------------------------------------- B-mode


def test_bmode_3d_shapes_dtype_and_mr_snr():
    x = phantom3d(SHAPE, dtype=np.float32)
    sim = simulate_bmode(x, ratio=(2, 2, 4), seed=0)
    assert sim.us.shape == sim.us_true.shape == sim.labels.shape == SHAPE
    assert sim.mr.shape == (12, 12, 4) and sim.ratio == (2, 2, 4)
    assert sim.us.dtype == sim.mr.dtype == np.float32
    assert 0 <= sim.us.min() and sim.us.max() <= 1
    assert sim.params["achieved_mr_snr_db"] == pytest.approx(35.0, abs=1e-9)
    assert "MR 12x12x4" in sim.message
    with pytest.raises(ValueError, match="scan_direction"):
        simulate_bmode(x, ratio=2, scan_direction=(1.0, 0.0))


def test_bmode_3d_speckle_is_log_rayleigh_with_a_3d_grain():
    x = phantom3d((32, 32, 24))
    narrow = simulate_bmode(x, ratio=2, seed=1)  # axial 1.2, lateral 1.8 px
    wide = simulate_bmode(x, ratio=2, seed=1, lateral_sigma=3.0)
    for sim in (narrow, wide):
        r = (sim.us - sim.us_true)[(sim.us > 0) & (sim.us < 1) & (sim.us_true > 0)]
        # us - us_true = alpha log R: the spread of log-Rayleigh, pi / sqrt(24)
        assert np.std(r) / sim.speckle_scale == pytest.approx(np.pi / np.sqrt(24), rel=0.1)
    # Neighbours share scatterers: a grain of many voxels, wider with a wider PSF.
    assert 1 < narrow.grain_area < wide.grain_area
    # ... and the grain extends along the third axis too (not a stack of 2-D speckle).
    res = wide.us - wide.us_true
    valid = (wide.us > 0) & (wide.us < 1)
    r = np.where(valid, res - res[valid].mean(), 0.0)
    lag = np.mean(r * np.roll(r, 1, axis=2)) / np.mean(r * r)
    assert lag > 0.3
    # The grain area of i.i.d. noise is one voxel.
    iid = np.random.default_rng(0).standard_normal((16, 16, 16))
    assert autocorrelation_area(iid, np.ones(iid.shape, bool)) == 1.0


def test_bmode_3d_thin_sheet_mask():
    x = phantom3d((32, 32, 24))
    sim = simulate_bmode(x, ratio=2, seed=2, thin_width=2)
    thin, lab = sim.thin_mask, sim.labels
    host, other = sim.params["thin_interface"]
    assert thin.any() and np.all(lab[thin] == host)
    # Thin along the beam (axis 0): runs of at most 2 thin_width voxels (a host layer thinner
    # than that between two pieces of the other class is covered from both sides).
    along_beam = np.zeros((3, 3, 3), bool)
    along_beam[:, 1, 1] = True
    sizes = np.bincount(ndimage.label(thin, structure=along_beam)[0].ravel())[1:]
    assert sizes.max() <= 4
    # Within thin_width of the other class along the beam.
    near = np.zeros_like(thin)
    for d in (1, 2):
        near |= np.roll(lab == other, d, axis=0) | np.roll(lab == other, -d, axis=0)
    assert np.all(near[thin])
    # A sheet: it spreads across the beam, over many lines.
    assert np.count_nonzero(thin.any(axis=0)) > 50
    assert np.all(sim.mr_true[thin] == sim.params["thin_value"])
    assert not simulate_bmode(x, ratio=2, seed=2, thin_layers=0).thin_mask.any()
