"""The paper's synthetic protocol (section IV-A; DESIGN.md section 8), for images and volumes.

A 2-D truth goes through the engine's operators; a 3-D truth through their FFT counterparts in
:mod:`._volume` (a 3-D Gaussian PSF, decimation by one integer per axis, the link's ``g`` with
differences along the three axes, DESIGN.md section 11). The noise is the same in both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple, Union, cast

import numpy as np

from .._validation import as_image, check_int, check_scalar
from ..operators import Blur, Decimation, gaussian_psf
from ..link import PolynomialLink, n_coeffs
from ._volume import (as_volume, blur, decimate, gaussian_psf_nd, link_features, link_values,
                      per_axis, unit_vector)

__all__ = ["simulate", "SimulationResult", "AUTHORS_COEFFS", "snr_db", "PAPER_SNR_DB"]

#: The paper's SNRs in dB (section IV-A), ``ratio -> (MR, US)``.
PAPER_SNR_DB = {4: (23.26, 13.72), 2: (20.73, 13.80)}

#: Degree-3 link of the authors' simulation script (gradient magnitude), q-major order:
#: c00 = 0, c10 = 1, c20 = 1e-4, c30 = -1e-5, c01 = 1, c11 = 1e-3, c21 = 1e-5, others 0.
AUTHORS_COEFFS = np.array([0.0, 1.0, 1e-4, -1e-5, 1.0, 1e-3, 1e-5, 0.0, 0.0, 0.0])


def snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    """``10 log10(||clean||^2 / ||noise||^2)``, the SNR convention of the simulator."""
    return float(10.0 * np.log10(np.sum(np.square(clean, dtype=np.float64))
                                 / np.sum(np.square(noise, dtype=np.float64))))


@dataclass(frozen=True)
class SimulationResult:
    """A simulated MR/US pair and its ground truth.

    Attributes
    ----------
    mr : ndarray, shape (n1/ratio, n2/ratio)
        Observed MR: ``S C x_m + n`` (Gaussian noise); for a volume
        ``(n1/s1, n2/s2, n3/s3)``.
    us : ndarray, shape (n1, n2)
        Observed US: ``x_u + b log R`` (log-Rayleigh noise); ``(n1, n2, n3)`` for a volume.
    mr_true : ndarray
        High-resolution MR ``x_m`` (the input).
    us_true : ndarray
        Noise-free US ``x_u = f(x_m, g(x_m))``.
    coeffs : ndarray
        Link coefficients used.
    ratio : int or (int, int, int)
        The decimation ratio; per axis (a tuple) for a volume.
    degree : int
    gradient : str
    psf : ndarray
    mr_noise_std : float
        Standard deviation of the MR noise.
    us_noise_scale : float
        ``b`` of the log-Rayleigh noise.
    mr_snr_db, us_snr_db : float
        Achieved SNRs, ``10 log10(||clean||^2 / ||noise||^2)`` with clean = ``S C x_m`` and ``x_u``.
    """

    mr: np.ndarray
    us: np.ndarray
    mr_true: np.ndarray
    us_true: np.ndarray
    coeffs: np.ndarray
    ratio: Union[int, Tuple[int, ...]]
    degree: int
    gradient: str
    psf: np.ndarray
    mr_noise_std: float
    us_noise_scale: float
    mr_snr_db: float
    us_snr_db: float


def simulate(mr_hr, ratio: Union[int, Tuple[int, ...]] = 4, *, psf_size: int = 9,
             psf_variance: float = 4.0, mr_snr_db: float = 23.26, us_snr_db: float = 13.72,
             degree: int = 3, coeffs=None, gradient: str = "magnitude", scan_direction=None,
             eps: float = 1e-3, seed=None) -> SimulationResult:
    """Simulate an observed MR/US pair from a high-resolution MR image (paper section IV-A).

    Parameters
    ----------
    mr_hr : array_like, shape (n1, n2) or (n1, n2, n3)
        Ground-truth MR image or volume, intensities in [0, 1]; cropped to a multiple of
        ``ratio`` per axis.
    ratio : int or (int, int, int)
        Decimation ratio (paper: 4 and 2); for a volume one int or one per axis.
    psf_size, psf_variance : int, float
        Gaussian MR PSF (paper: 9x9, variance 4); for a volume a separable 9x9x9 Gaussian, or
        one size and one variance per axis.
    mr_snr_db, us_snr_db : float
        Target SNRs (paper: 23.26 / 13.72 dB at ratio 4, 20.73 / 13.80 dB at ratio 2), met
        exactly: each noise draw is rescaled to the target energy.
    degree : int
        Degree of the link when ``coeffs`` is given; the default link is the authors' degree 3.
    coeffs : array_like, optional
        Link coefficients (q-major); default :data:`AUTHORS_COEFFS`.
    gradient : {"magnitude", "directional"}
        Gradient variant of the link (the authors' script: magnitude).
    scan_direction : sequence of float, optional
        Beam direction for ``gradient="directional"``, one component per axis; default down
        the first axis.
    seed : int or numpy Generator, optional
        Makes the noise reproducible.

    Returns
    -------
    SimulationResult

    Notes
    -----
    ``y_m = S C x_m + n``, ``n`` Gaussian; ``x_u = f(x_m, g(x_m))``; ``y_u = x_u + b log R``,
    ``R`` Rayleigh(1) i.i.d. SNR convention: ``10 log10(||clean||^2 / ||noise||^2)``. In 3-D
    ``S`` keeps the voxels ``(s_1 i, s_2 j, s_3 k)``, ``C`` is the periodic convolution with
    the separable Gaussian and ``g(x) = sqrt(sum_a (D_a x)^2 + eps^2)`` (or ``sum_a u_a D_a x``)
    with periodic forward differences along the three axes.

    Examples
    --------
    >>> import numpy as np
    >>> sim = simulate(np.random.default_rng(0).random((32, 32)), ratio=2, seed=1)
    >>> sim.mr.shape, sim.us.shape, round(sim.us_snr_db, 2)
    ((16, 16), (32, 32), 13.72)
    >>> from mrusfusion import phantom3d
    >>> sim = simulate(phantom3d((16, 16, 16)), ratio=(2, 2, 4), psf_size=5, seed=1)
    >>> sim.mr.shape, sim.ratio, round(sim.mr_snr_db, 2)
    ((8, 8, 4), (2, 2, 4), 23.26)
    """
    volume = np.ndim(mr_hr) == 3
    s: Union[int, Tuple[int, ...]]
    if volume:
        x = as_volume(mr_hr, "mr_hr", dtype=np.float64, min_size=1)
        s = per_axis(ratio, "ratio", 3)
        keep = [(n // r) * r for n, r in zip(x.shape, s)]
    else:
        x = as_image(mr_hr, "mr_hr", dtype=np.float64)
        s = check_int(ratio, "ratio", low=1)
        keep = [(x.shape[0] // s) * s, (x.shape[1] // s) * s]
    if min(keep) == 0:
        raise ValueError(f"`mr_hr` of shape {x.shape} is smaller than the ratio {s}")
    x = np.ascontiguousarray(x[tuple(slice(n) for n in keep)])
    mr_snr = check_scalar(mr_snr_db, "mr_snr_db")
    us_snr = check_scalar(us_snr_db, "us_snr_db")
    for name, snr in (("mr_snr_db", mr_snr), ("us_snr_db", us_snr)):
        if abs(snr) > 300.0:  # 10^(snr/10) must stay a finite double
            raise ValueError(f"`{name}` must be between -300 and 300 dB, got {snr:g}")
    if coeffs is None:
        coeffs, degree = AUTHORS_COEFFS.copy(), 3
    else:
        degree = check_int(degree, "degree", low=0)
        coeffs = np.asarray(coeffs, dtype=np.float64)
        if coeffs.size != n_coeffs(degree):
            raise ValueError(f"`coeffs` must have {n_coeffs(degree)} entries for degree {degree}")
    if volume:
        u = unit_vector(scan_direction, 3)
        eps = check_scalar(eps, "eps", positive=True)
        if gradient not in ("magnitude", "directional"):
            raise ValueError(f"`gradient` must be 'directional' or 'magnitude', got {gradient!r}")
        psf = gaussian_psf_nd(psf_size, psf_variance, 3)
    else:
        link = PolynomialLink(coeffs, degree, gradient,
                              (1.0, 0.0) if scan_direction is None else scan_direction, eps)
        gradient = link.gradient
        psf = gaussian_psf(psf_size, psf_variance)
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore", invalid="ignore"):
        if volume:
            clean_m = decimate(blur(x, psf), cast(Tuple[int, ...], s))
            x_u = link_values(coeffs, degree, x, link_features(x, gradient, u, eps))
        else:
            clean_m = Decimation(cast(int, s)).apply(Blur(psf, x.shape).apply(x))
            x_u = link.evaluate(x)
        e_m, e_u = float(np.sum(clean_m**2)), float(np.sum(x_u**2))
    for name, e in (("the blurred MR image", e_m), ("the noise-free US image", e_u)):
        if not np.isfinite(e):
            raise ValueError(f"{name} overflows: `mr_hr` (max |value| {np.max(np.abs(x)):.3g}) "
                             "should hold intensities in [0, 1]")
        if not e > 0:
            raise ValueError(f"{name} is zero, so no noise level gives the requested SNR; "
                             "`mr_hr` must not be all zero")
    n = rng.standard_normal(clean_m.shape)
    n *= np.sqrt(e_m * 10.0 ** (-mr_snr / 10.0) / np.sum(n**2))
    log_r = np.log(rng.rayleigh(1.0, size=x.shape))
    b = float(np.sqrt(e_u * 10.0 ** (-us_snr / 10.0) / np.sum(log_r**2)))
    nu = b * log_r
    return SimulationResult(
        mr=clean_m + n, us=x_u + nu, mr_true=x, us_true=x_u, coeffs=coeffs, ratio=s,
        degree=degree, gradient=gradient, psf=psf, mr_noise_std=float(np.std(n)),
        us_noise_scale=b, mr_snr_db=snr_db(clean_m, n), us_snr_db=snr_db(x_u, nu))
