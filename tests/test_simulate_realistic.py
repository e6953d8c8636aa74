"""The B-mode simulation (DESIGN.md section 14): speckle statistics, correlation, thin
structures, MR SNR, the tissue model and argument checks."""
import dataclasses

import numpy as np
import pytest

from mrusfusion import RealisticSimulation, phantom, simulate, simulate_bmode
from mrusfusion.operators import Blur, Decimation, bicubic_upsample
from mrusfusion.simulate import snr_db, thin_contrast

LOG_R_MEAN = (np.log(2.0) - np.euler_gamma) / 2.0  # E[log R], R ~ Rayleigh(1)
LOG_R_STD = np.pi / np.sqrt(24.0)


def _homogeneous(seed, shape=(128, 128), **kw):
    # reference at the maximum: no pixel is clipped at the top, so the marginal is not truncated
    return simulate_bmode(np.full(shape, 0.5), 2, labels=np.zeros(shape, int), texture=0.0,
                          reference_percentile=100.0, seed=seed, **kw)


def _unclipped(sim):
    return (sim.us > 0) & (sim.us < 1) & (sim.us_true > 0) & (sim.us_true < 1)


def _neighbour_corr(r, axis):
    a = r - r.mean()
    return float(np.mean(a * np.roll(a, 1, axis=axis)) / np.mean(a * a))


def test_seed_reproducible_and_independent_streams():
    x = phantom((64, 64))
    a, b = simulate_bmode(x, 4, seed=3), simulate_bmode(x, 4, seed=3)
    for name in ("mr", "us", "mr_true", "us_true", "labels", "thin_mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.params == b.params
    c = simulate_bmode(x, 4, seed=4)
    assert not np.array_equal(a.us, c.us)
    # the MR noise has its own stream: another SNR leaves the US untouched
    d = simulate_bmode(x, 4, seed=3, mr_snr_db=25.0)
    np.testing.assert_array_equal(a.us, d.us)
    assert not np.array_equal(a.mr, d.mr)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_shapes_dtypes_and_ranges(dtype):
    x = phantom((70, 66))
    if dtype == np.uint8:
        x = (x > 0.5).astype(np.uint8)
    sim = simulate_bmode(x.astype(dtype), 4, seed=0)
    out = np.float32 if dtype == np.float32 else np.float64
    assert sim.us.shape == sim.us_true.shape == sim.mr_true.shape == (68, 64)
    assert sim.mr.shape == (17, 16) and sim.ratio == 4
    for img in (sim.mr, sim.us, sim.mr_true, sim.us_true):
        assert img.dtype == out
    assert sim.labels.dtype.kind == "i" and sim.labels.shape == (68, 64)
    assert sim.thin_mask.dtype == bool and sim.thin_mask.shape == (68, 64)
    assert 0 <= sim.us.min() and sim.us.max() <= 1 and 0 <= sim.us_true.min()
    assert sim.speckle_scale == pytest.approx(20.0 / (np.log(10.0) * 55.0))
    assert sim.params["dynamic_range"] == 55.0 and sim.params["ratio"] == 4
    assert isinstance(sim, RealisticSimulation) and "B-mode" in sim.message
    with pytest.raises(dataclasses.FrozenInstanceError):
        sim.ratio = 2


def test_speckle_is_log_rayleigh_with_scale_alpha():
    """``us = us_true + alpha log R`` before clipping: the true ``b`` is ``alpha``."""
    sims = [_homogeneous(seed) for seed in range(3)]
    d = np.concatenate([((s.us - s.us_true) / s.speckle_scale)[_unclipped(s)] for s in sims])
    assert d.size > 0.999 * 3 * 128 * 128
    assert d.mean() == pytest.approx(LOG_R_MEAN, abs=0.02)
    assert d.std() == pytest.approx(LOG_R_STD, rel=0.03)
    assert np.mean(np.exp(2.0 * d)) == pytest.approx(2.0, rel=0.05)  # E[R^2] = 2
    b = np.concatenate([(s.us - s.us_true)[_unclipped(s)] for s in sims]).std() / LOG_R_STD
    assert b == pytest.approx(sims[0].speckle_scale, rel=0.03)


def test_speckle_correlated_unlike_the_paper_protocol():
    sim = _homogeneous(1)
    r = sim.us - sim.us_true
    assert _neighbour_corr(r, 0) > 0.3 and _neighbour_corr(r, 1) > 0.3
    assert sim.grain_area > 1.5
    paper = simulate(phantom((128, 128)), 2, seed=1)
    r = paper.us - paper.us_true
    assert abs(_neighbour_corr(r, 0)) < 0.05 and abs(_neighbour_corr(r, 1)) < 0.05


def test_grain_grows_with_the_psf():
    small = _homogeneous(2, axial_sigma=1.0, lateral_sigma=1.0)
    large = _homogeneous(2, axial_sigma=2.0, lateral_sigma=3.0)
    assert small.grain_area < large.grain_area


@pytest.mark.parametrize("ratio", [2, 4])
def test_thin_structures_seen_by_us_lost_by_mr(ratio):
    sim = simulate_bmode(phantom((128, 128)), ratio, seed=5)
    m = sim.thin_mask
    assert m.any() and sim.params["thin_pixels"] == m.sum()
    np.testing.assert_array_equal(sim.mr_true[m], sim.params["thin_value"])
    np.testing.assert_array_equal(sim.mr_true[~m], phantom((128, 128))[~m])
    true_mr = thin_contrast(sim.mr_true, m)
    observed_mr = thin_contrast(bicubic_upsample(sim.mr, ratio), m)
    assert abs(true_mr) > 2.0 * abs(observed_mr)
    assert thin_contrast(sim.us_true, m) > 1.0  # echogenic: brighter than its surroundings


@pytest.mark.parametrize("snr", [35.0, 25.0])
def test_mr_snr_target(snr):
    sim = simulate_bmode(phantom((96, 96)), 4, mr_snr_db=snr, seed=2)
    clean = Decimation(4).apply(Blur(sim.psf, sim.mr_true.shape).apply(sim.mr_true))
    assert abs(snr_db(clean, sim.mr - clean) - snr) < 0.1
    assert sim.params["achieved_mr_snr_db"] == pytest.approx(snr, abs=0.1)


@pytest.mark.parametrize("seed", range(4))
def test_echogenicity_not_monotone_in_mr(seed):
    sim = simulate_bmode(phantom((96, 96)), 2, thin_layers=0, seed=seed)
    k = sim.labels.max() + 1
    assert k >= 3
    mr_means = [sim.mr_true[sim.labels == c].mean() for c in range(k)]
    us_means = np.array([sim.us_true[sim.labels == c].mean() for c in range(k)])
    order = np.diff(us_means[np.argsort(mr_means)])
    assert (order > 0).any() and (order < 0).any()


@pytest.mark.parametrize("beam,specular", [((1.0, 0.0), True), ((0.0, 1.0), False)])
def test_specular_echo_only_across_the_beam(beam, specular):
    """A horizontal interface reflects an axial beam and not a lateral one."""
    x = np.full((64, 64), 0.2)
    x[32:] = 0.8
    sim = simulate_bmode(x, 2, labels=(x > 0.5).astype(int), backscatter=[0.5, 0.5],
                         impedance=[1.4, 1.6], texture=0.0, thin_layers=0, scan_direction=beam,
                         seed=0)
    profile = sim.us_true.mean(axis=1)
    peak = profile[30:34].max() - np.median(profile[8:24])
    assert (peak > 0.05) if specular else (abs(peak) < 1e-6)


def test_labels_given_and_constant_image():
    lab = np.zeros((32, 32), int)
    lab[:, 16:] = 7  # any integers: mapped to 0..K-1
    sim = simulate_bmode(np.full((32, 32), 0.4), 2, labels=lab, seed=0)
    assert set(np.unique(sim.labels)) == {0, 1}
    flat = simulate_bmode(np.full((32, 32), 0.4), 2, seed=0)
    assert flat.labels.max() == 0 and not flat.thin_mask.any()
    assert flat.params["thin_value"] is None


def test_thin_contrast_known_value_and_errors():
    img = np.zeros((32, 32))
    img[::2] += 0.1
    img[16] = 1.0
    mask = np.zeros((32, 32), bool)
    mask[16] = True
    assert thin_contrast(img, mask, band=2) == pytest.approx(19.0)
    with pytest.raises(ValueError, match="mask"):
        thin_contrast(img, np.zeros((32, 32), bool))
    with pytest.raises(ValueError, match="mask"):
        thin_contrast(img, mask[:8])
    with pytest.raises(ValueError, match="band"):
        thin_contrast(img, mask, band=0)


@pytest.mark.parametrize("kwargs,name", [
    ({"ratio": 0}, "ratio"), ({"mr_snr_db": float("nan")}, "mr_snr_db"),
    ({"dynamic_range": -1.0}, "dynamic_range"), ({"axial_sigma": 0.0}, "axial_sigma"),
    ({"lateral_sigma": -2.0}, "lateral_sigma"), ({"wavelength": 0.0}, "wavelength"),
    ({"thin_width": -1}, "thin_width"), ({"thin_layers": -1}, "thin_layers"),
    ({"n_classes": 0}, "n_classes"), ({"reference_percentile": 150.0}, "reference_percentile"),
    ({"texture": -0.1}, "texture"), ({"specular_gain": -1.0}, "specular_gain"),
    ({"backscatter": [1.0, 2.0]}, "backscatter"),
    ({"impedance": [1.5] * 3 + [-1.0]}, "impedance"),
    ({"labels": np.zeros((8, 8), int)}, "labels"),
    ({"scan_direction": (0.0, 0.0)}, "scan_direction"), ({"ratio": 32}, "mr_hr"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    kw = {"ratio": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        simulate_bmode(phantom((32, 32)), seed=0, **kw)


def test_bad_image_and_types():
    with pytest.raises(ValueError, match="mr_hr"):
        simulate_bmode(2.0 * phantom((32, 32)), 2)
    with pytest.raises(ValueError, match="mr_hr"):
        simulate_bmode(np.zeros((32, 32, 3)), 2)
    with pytest.raises(TypeError, match="labels"):
        simulate_bmode(phantom((32, 32)), 2, labels=np.zeros((32, 32)))
    with pytest.raises(TypeError, match="seed"):
        simulate_bmode(phantom((32, 32)), 2, seed="one")
