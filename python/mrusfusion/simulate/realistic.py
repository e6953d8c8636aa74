"""A B-mode ultrasound simulation from scatterers and a PSF (DESIGN.md section 14).

The paper's protocol (:mod:`.protocol`) makes the US with the model's own polynomial and i.i.d.
noise, an inverse crime. Here the US comes from physics instead, in the spirit of the
convolution models of speckle (Bamber and Dickinson 1980; Wagner et al. 1983):

``B = alpha log|h * (e . z)| + beta``, clipped to a dynamic range and mapped to [0, 1],

with ``z`` i.i.d. circular complex Gaussian scatterers, ``e`` an echogenicity map made from
tissue classes of the MR truth, and ``h`` a complex baseband PSF. The envelope at each pixel is
complex Gaussian, so ``|env| = sigma R`` with ``R`` Rayleigh(1) and
``sigma^2 = E|env|^2 / 2 = (|h|^2 * e^2) / 2``: the speckle-free truth is the same compression of
``sigma``, and ``us - us_true = alpha log R`` exactly (before clipping), the model's
``y_u = v + b log R`` with ``b = alpha``. Neighbouring pixels share scatterers through ``h``, so
the speckle is correlated over a grain, unlike the paper's protocol.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple, Union, cast

import numpy as np
from scipy import ndimage

from .._validation import as_image, check_direction, check_int, check_scalar
from ..operators import Blur, Decimation, gaussian_psf
from ._tissue import (backscatter_levels, beam_derivative, class_values, thin_layer,
                      tissue_classes)
from ._volume import (as_volume, autocorrelation_area, blur, decimate, gaussian_psf_nd,
                      per_axis, unit_vector, us_psf_nd)
from .protocol import snr_db

__all__ = ["simulate_bmode", "RealisticSimulation", "thin_contrast"]


@dataclass(frozen=True)
class RealisticSimulation:
    """A realistic MR/US pair and its ground truth (:func:`simulate_bmode`).

    Attributes
    ----------
    mr : ndarray, shape (n1/ratio, n2/ratio)
        Observed MR ``y_m = S C mr_true + n``, Gaussian noise (every shape here has three
        entries for a volume).
    us : ndarray, shape (n1, n2)
        Observed B-mode in [0, 1].
    mr_true : ndarray, shape (n1, n2)
        High-resolution MR truth: the input with the thin structures painted in.
    us_true : ndarray, shape (n1, n2)
        Speckle-free B-mode: the same compression of ``sqrt(E|env|^2 / 2)``.
    labels : ndarray of int, shape (n1, n2)
        Tissue classes 0..K-1 (ordered by mean MR intensity when computed here).
    thin_mask : ndarray of bool, shape (n1, n2)
        The thin echogenic structures (all False when there are none).
    ratio : int or (int, int, int)
    psf : ndarray
        MR point-spread function.
    speckle_scale : float
        ``alpha = 20 / (ln 10 DR)``, the true ``b`` of ``us = us_true + b log R``.
    grain_area : float
        Pixels where the normalised autocorrelation of ``us - us_true`` exceeds 1/2 (1 for
        i.i.d. noise), measured on this simulation.
    params : dict
        Every setting, the drawn per-class values and the measured MR SNR.
    message : str
    """

    mr: np.ndarray
    us: np.ndarray
    mr_true: np.ndarray
    us_true: np.ndarray
    labels: np.ndarray
    thin_mask: np.ndarray
    ratio: Union[int, Tuple[int, ...]]
    psf: np.ndarray
    speckle_scale: float
    grain_area: float
    params: dict = field(default_factory=dict)
    message: str = ""


# --------------------------------------------------------------------------- helpers


def _us_psf(shape, u, wavelength: float, axial_sigma: float, lateral_sigma: float) -> np.ndarray:
    """Complex baseband PSF on the periodic grid, centred at [0, 0], with ``sum |h|^2 = 1``."""
    di = np.fft.fftfreq(shape[0]) * shape[0]
    dj = np.fft.fftfreq(shape[1]) * shape[1]
    di, dj = np.meshgrid(di, dj, indexing="ij", sparse=True)
    axial = u[0] * di + u[1] * dj
    lateral = -u[1] * di + u[0] * dj
    h = np.exp(-0.5 * (axial / axial_sigma) ** 2 - 0.5 * (lateral / lateral_sigma) ** 2
               + 2j * np.pi * axial / wavelength)
    return h / np.sqrt(np.sum(np.abs(h) ** 2))


def _seeds(seed, n: int):
    if isinstance(seed, np.random.Generator):
        return seed.spawn(n)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"`seed` must be an integer, a numpy Generator or None, got {seed!r}")
    entropy = None if seed is None else int(seed)
    return [np.random.default_rng(s) for s in np.random.SeedSequence(entropy).spawn(n)]


# --------------------------------------------------------------------------- simulator


def simulate_bmode(mr_hr, ratio: Union[int, Tuple[int, ...]] = 4, *, mr_snr_db: float = 35.0,
                   labels=None, n_classes: int = 4, backscatter: Optional[Sequence[float]] = None,
                   backscatter_range_db: float = 30.0,
                   impedance: Optional[Sequence[float]] = None, specular_gain: float = 1.0,
                   texture: float = 0.12, texture_scale: float = 8.0, thin_layers: int = 2,
                   thin_width: int = 2,
                   thin_value: Optional[float] = None, thin_echo: float = 3.0,
                   wavelength: float = 4.0, axial_sigma: float = 1.2, lateral_sigma: float = 1.8,
                   dynamic_range: float = 55.0, reference_percentile: float = 99.0,
                   scan_direction=None, psf_size: int = 9, psf_variance: float = 4.0,
                   seed=None) -> RealisticSimulation:
    """Simulate an MR/US pair from a high-resolution MR image with a B-mode speckle model.

    Parameters
    ----------
    mr_hr : array_like, shape (n1, n2) or (n1, n2, n3)
        High-resolution MR ``x_m`` (an image or a volume, e.g. :func:`mrusfusion.phantom3d`),
        intensities in [0, 1]; cropped to a multiple of ``ratio`` per axis.
    ratio : int or (int, int, int)
        Decimation ratio of the MR observation; one per axis for a volume.
    mr_snr_db : float
        MR SNR ``10 log10(||S C x_m||^2 / ||n||^2)`` (DESIGN.md section 8), met exactly.
    labels : array_like of int, shape (n1, n2), optional
        Tissue classes; default: k-means of the MR intensities into ``n_classes`` classes.
    n_classes : int
        Number of classes when ``labels`` is not given (3-5 make sense).
    backscatter : sequence of float, optional
        Echogenicity amplitude of each class; default: drawn from ``seed`` (see Notes).
    backscatter_range_db : float
        Spread of the drawn per-class levels, in dB.
    impedance : sequence of float, optional
        Acoustic impedance of each class; default: drawn uniformly in [1.3, 1.7].
    specular_gain : float
        Amplitude of the specular echo of the strongest impedance step (brightest tissue: 1).
    texture, texture_scale : float
        Standard deviation (log-amplitude) and correlation length (px) of the tissue texture.
    thin_layers : int
        Number of thin layers (the longest pieces of the chosen interface); 0: none.
    thin_width : int
        Thickness (px) of the thin layers along the beam.
    thin_value : float, optional
        MR intensity of the thin layer; default 1 or 0, whichever is farther from its two tissues.
    thin_echo : float
        Echogenicity amplitude of the thin layer.
    wavelength, axial_sigma, lateral_sigma : float
        US PSF: carrier wavelength and Gaussian envelope widths (standard deviations), in px.
    dynamic_range : float
        Displayed dynamic range in dB.
    reference_percentile : float
        Percentile of the envelope that maps to 0 dB (the top of the display).
    scan_direction : sequence of float, optional
        Beam direction ``(u_v, u_h)`` (three components for a volume); default down the first
        axis (the rows).
    psf_size, psf_variance : int, float
        MR PSF (the paper's 9x9 Gaussian of variance 4).
    seed : int or numpy Generator, optional
        Makes the tissue draws, texture, scatterers and MR noise reproducible (independent
        streams: changing ``mr_snr_db`` leaves the US unchanged).

    Returns
    -------
    RealisticSimulation
        Images in float32 for float32 input, float64 otherwise (computed in float64).

    Raises
    ------
    ValueError
        If an argument is out of range (the message names it).
    TypeError
        If an argument has the wrong type.

    Notes
    -----
    Tissue: ``e = G_0.7 * a[labels] . exp(t n) + s |dZ/du| / (Z_max - Z_min) + e_thin 1_thin``,
    with ``a`` the per-class amplitudes (evenly spaced dB levels dealt to the classes in a
    random, never monotone order, so the MR-to-US map is neither polynomial nor monotone), ``n``
    a unit Gaussian field of correlation ``texture_scale``, ``Z = z[labels]`` the impedance and
    ``u`` the beam. Thin layers: the ``thin_layers`` longest pieces of a band ``thin_width`` px
    deep (along the beam) on the side of the larger class of the interface met most often
    along the beam, like the glue between two tissue blocks; set to ``thin_value`` in
    ``mr_true`` and to ``thin_echo`` in ``e``. The MR blur and decimation wash them out.

    US: ``env = h * (e . z)``, ``h(a, l) = exp(-a^2/2s_a^2 - l^2/2s_l^2 + 2 pi i a/lambda)``
    (``a`` axial, ``l`` lateral offsets, ``sum|h|^2 = 1``), ``z`` circular complex Gaussian with
    ``E|z|^2 = 1``; ``us = clip(alpha ln(|env| / ref) + 1, 0, 1)``,
    ``alpha = 20 / (ln 10 DR)``, ``ref`` the ``reference_percentile`` of ``|env|``;
    ``us_true`` the same with ``sigma = sqrt((|h|^2 * e^2) / 2)`` in place of ``|env|``.

    MR: ``y_m = S C mr_true + n``, ``n`` white Gaussian rescaled to the exact SNR.

    Volumes: the same model in 3-D. The thin layers become thin curved sheets on the
    interface (ellipsoids of :func:`mrusfusion.phantom3d`), the US PSF is Gaussian across the
    beam in both transverse directions (``lateral_sigma``), the MR PSF a separable 3-D
    Gaussian, the MR is decimated by one integer per axis and ``grain_area`` counts voxels.

    What it leaves out: attenuation and time-gain compensation, depth-dependent focusing (one
    shift-invariant PSF), beam steering and compounding, refraction, phase aberration,
    shadowing, reverberation and multiple scattering, electronic noise, non-Rayleigh
    statistics (few scatterers per cell, coherent components), MR Rician noise and bias fields,
    misregistration; every convolution is periodic (FFT), so structures wrap at the borders.

    References
    ----------
    .. [1] J. C. Bamber, R. J. Dickinson, "Ultrasonic B-scanning: a computer simulation", Phys.
       Med. Biol. 25(3), 463-479 (1980).
    .. [2] R. F. Wagner, S. W. Smith, J. M. Sandrik, H. Lopez, "Statistics of speckle in
       ultrasound B-scans", IEEE Trans. Sonics Ultrason. 30(3), 156-163 (1983).

    Examples
    --------
    >>> from mrusfusion import phantom
    >>> sim = simulate_bmode(phantom((32, 32)), ratio=2, seed=0)
    >>> sim.mr.shape, sim.us.shape, round(sim.speckle_scale, 4)
    ((16, 16), (32, 32), 0.1579)
    """
    volume = np.ndim(mr_hr) == 3
    x = as_volume(mr_hr, "mr_hr", min_size=4) if volume else as_image(mr_hr, "mr_hr", min_size=4)
    dt = x.dtype  # the images come back in it; the physics runs in float64
    x = x.astype(np.float64)
    s = per_axis(ratio, "ratio", 3) if volume else check_int(ratio, "ratio", low=1)
    ratios = s if isinstance(s, tuple) else (s, s)
    keep = tuple((n // r) * r for n, r in zip(x.shape, ratios))
    if min(k // r for k, r in zip(keep, ratios)) < 2:
        raise ValueError(f"`mr_hr` of shape {x.shape} gives an MR observation smaller than 2 "
                         f"pixels per axis at ratio {s}")
    if x.min() < -0.1 or x.max() > 1.1:
        raise ValueError(f"`mr_hr` must hold intensities in [0, 1], got [{x.min():.3g}, "
                         f"{x.max():.3g}]; divide it by its maximum")
    snr = check_scalar(mr_snr_db, "mr_snr_db")
    if abs(snr) > 300.0:
        raise ValueError(f"`mr_snr_db` must be between -300 and 300 dB, got {snr:g}")
    u = unit_vector(scan_direction, 3) if volume else check_direction(
        (1.0, 0.0) if scan_direction is None else scan_direction)
    pos = {name: check_scalar(val, name, positive=True) for name, val in (
        ("wavelength", wavelength), ("axial_sigma", axial_sigma),
        ("lateral_sigma", lateral_sigma), ("dynamic_range", dynamic_range),
        ("texture_scale", texture_scale), ("thin_echo", thin_echo))}
    for name, val in (("texture", texture), ("specular_gain", specular_gain),
                      ("backscatter_range_db", backscatter_range_db)):
        check_scalar(val, name, nonnegative=True)
    pct = check_scalar(reference_percentile, "reference_percentile", positive=True, high=100.0)
    width = check_int(thin_width, "thin_width", low=0, high=16)
    if thin_value is not None:
        thin_value = check_scalar(thin_value, "thin_value")
    n_layers = check_int(thin_layers, "thin_layers", low=0)
    psf = gaussian_psf_nd(psf_size, psf_variance, 3) if volume else gaussian_psf(psf_size,
                                                                                 psf_variance)
    rng_tissue, rng_texture, rng_scatter, rng_noise = _seeds(seed, 4)
    x = np.ascontiguousarray(x[tuple(slice(n) for n in keep)])
    if labels is None:
        lab = tissue_classes(x, check_int(n_classes, "n_classes", low=1, high=16))
    else:
        given = np.asarray(labels)
        if given.dtype.kind not in "biu":
            raise TypeError(f"`labels` must be an integer array, got dtype {given.dtype}")
        if given.shape != tuple(np.shape(mr_hr)):
            raise ValueError(f"`labels` must have the shape of `mr_hr` {np.shape(mr_hr)}, "
                             f"got {given.shape}")
        lab = np.unique(given[tuple(slice(n) for n in keep)],
                        return_inverse=True)[1].reshape(keep)
    k = int(lab.max()) + 1

    amp = class_values(backscatter, "backscatter", k,
                        lambda: backscatter_levels(rng_tissue, k, backscatter_range_db))
    z_cls = class_values(impedance, "impedance", k, lambda: rng_tissue.uniform(1.3, 1.7, k))
    thin, pair = (thin_layer(lab, width, u, n_layers) if width > 0 and n_layers > 0 and k > 1
                  else (np.zeros(lab.shape, bool), None))
    mr_true = x.copy()
    if thin.any() and pair is not None:
        if thin_value is None:
            mid = 0.5 * (x[lab == pair[0]].mean() + x[lab == pair[1]].mean())
            thin_value = 1.0 if mid < 0.5 else 0.0
        mr_true[thin] = thin_value

    noise = ndimage.gaussian_filter(rng_texture.standard_normal(lab.shape), texture_scale,
                                    mode="wrap")
    noise /= max(float(noise.std()), 1e-300)
    e = ndimage.gaussian_filter(amp[lab], 0.7, mode="wrap") * np.exp(texture * noise)
    z_step = float(np.ptp(z_cls))
    if z_step > 0:
        e += specular_gain * np.abs(beam_derivative(z_cls[lab], u)) / z_step
    e[thin] = pos["thin_echo"]

    h = (us_psf_nd if volume else _us_psf)(lab.shape, u, pos["wavelength"], pos["axial_sigma"],
                                           pos["lateral_sigma"])
    h_hat = np.fft.fftn(h)  # fftn is fft2 on an image: the same numbers
    scat = (rng_scatter.standard_normal(lab.shape)
            + 1j * rng_scatter.standard_normal(lab.shape)) * math.sqrt(0.5)
    env = np.abs(np.fft.ifftn(h_hat * np.fft.fftn(e * scat)))
    mean_power = np.fft.ifftn(np.fft.fftn(np.abs(h) ** 2) * np.fft.fftn(e * e)).real
    tiny = 1e-300
    # |env| = sigma R with R ~ Rayleigh(1), E R^2 = 2: so us - us_true = alpha log R exactly
    sigma = np.sqrt(np.maximum(mean_power, tiny) / 2.0)
    ref = max(float(np.percentile(env, pct)), tiny)
    alpha = 20.0 / (math.log(10.0) * pos["dynamic_range"])
    us_raw = alpha * np.log(np.maximum(env, tiny) / ref) + 1.0
    true_raw = alpha * np.log(sigma / ref) + 1.0
    valid = (us_raw > 0) & (us_raw < 1) & (true_raw > 0) & (true_raw < 1)
    grain = autocorrelation_area(us_raw - true_raw, valid) if valid.any() else float("nan")

    clean = (decimate(blur(mr_true, psf), ratios) if volume
             else Decimation(cast(int, s)).apply(Blur(psf, lab.shape).apply(mr_true)))
    e_m = float(np.sum(clean**2))
    if not e_m > 0:
        raise ValueError("the blurred MR image is zero, so no noise level gives the requested "
                         "SNR; `mr_hr` must not be all zero")
    n = rng_noise.standard_normal(clean.shape)
    n *= math.sqrt(e_m * 10.0 ** (-snr / 10.0) / np.sum(n**2))
    achieved = snr_db(clean, n)

    params = dict(
        ratio=s, mr_snr_db=snr, achieved_mr_snr_db=achieved, mr_noise_std=float(np.std(n)),
        n_classes=k, backscatter=amp.tolist(), backscatter_range_db=float(backscatter_range_db),
        impedance=z_cls.tolist(), specular_gain=float(specular_gain), texture=float(texture),
        texture_scale=pos["texture_scale"], thin_layers=n_layers, thin_width=width,
        thin_value=thin_value, thin_echo=pos["thin_echo"], thin_pixels=int(thin.sum()),
        thin_interface=None if pair is None else [int(pair[0]), int(pair[1])],
        wavelength=pos["wavelength"], axial_sigma=pos["axial_sigma"],
        lateral_sigma=pos["lateral_sigma"], dynamic_range=pos["dynamic_range"],
        reference_percentile=pct, reference_level=ref, scan_direction=list(u),
        psf_size=int(psf.shape[0]), psf_variance=float(psf_variance),
        clipped_fraction=float(1.0 - valid.mean()),
        seed=seed if seed is None or isinstance(seed, numbers.Integral) else "Generator")
    n_thin = ndimage.label(thin, structure=np.ones((3,) * thin.ndim))[1]
    layer = (f"{n_thin} thin layer(s) of {int(thin.sum())} px in all, {width} px thick, between "
             f"classes {pair[0]} and {pair[1]}" if thin.any() and pair is not None
             else "no thin layer")
    message = (f"B-mode simulation: {k} tissue class(es), {layer}; speckle scale "
               f"{alpha:.4f}, grain {grain:.1f} px; MR {'x'.join(map(str, clean.shape))} at "
               f"{achieved:.2f} dB")
    return RealisticSimulation(
        mr=(clean + n).astype(dt), us=np.clip(us_raw, 0.0, 1.0).astype(dt),
        mr_true=mr_true.astype(dt), us_true=np.clip(true_raw, 0.0, 1.0).astype(dt),
        labels=lab, thin_mask=thin, ratio=s, psf=psf,
        speckle_scale=alpha, grain_area=grain, params=params, message=message)


def thin_contrast(image, mask, *, band: int = 3) -> float:
    """Contrast of a structure against a band around it, in units of the band's spread.

    Parameters
    ----------
    image : array_like, shape (n1, n2)
        The image.
    mask : array_like of bool, shape (n1, n2)
        The structure (e.g. :attr:`RealisticSimulation.thin_mask`).
    band : int
        Width (px, city-block) of the surrounding band.

    Returns
    -------
    float
        ``(mean(image[mask]) - mean(image[ring])) / std(image[ring])``, ``ring`` the pixels
        within ``band`` px of the mask and outside it.

    Raises
    ------
    ValueError
        If the mask is empty, has the wrong shape, or the band is constant.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((32, 32)); img[::2] += 0.1; img[16] = 1.0
    >>> mask = np.zeros((32, 32), bool); mask[16] = True
    >>> round(thin_contrast(img, mask, band=2), 3)  # ring rows 14, 15, 17, 18: mean 0.05, std 0.05
    19.0
    """
    img = as_image(image, "image", dtype=np.float64, min_size=1)
    m = np.asarray(mask, dtype=bool)
    if m.shape != img.shape:
        raise ValueError(f"`mask` must have the shape of `image` {img.shape}, got {m.shape}")
    if not m.any():
        raise ValueError("`mask` selects no pixel")
    width = check_int(band, "band", low=1)
    ring = ndimage.binary_dilation(m, iterations=width) & ~m
    spread = float(img[ring].std()) if ring.any() else 0.0
    if spread == 0.0:
        raise ValueError("the band around `mask` is constant (or empty): the contrast is undefined")
    return float((img[m].mean() - img[ring].mean()) / spread)
