"""Weights from the data (DESIGN.md sections 10 and 13).

The objective is read as a negative log-posterior whose MR term is ``1/(2 sigma_m^2)||.||^2``,
multiplied through by ``sigma_m^2``; every quantity is measured on the inputs in solver units
(each image divided by its maximum):

- ``tau1``: generalised cross-validation (GCV) of the MR-only problem, exact and FFT-free in
  Fourier; ``sigma_m^2 = RSS(tau1) / tr(I - A(tau1))`` (:mod:`.gcv`).
- the US noise (:func:`us_weights`): the speckle correlation and its grain area ``A_c``
  (:mod:`.correlation`); ``b``, the log-Rayleigh scale of ``y_u = v + b log R``, from the finest
  Haar band when neighbours are independent and from the median of 7x7 window standard
  deviations when they are not (:mod:`.scale`); ``sigma_u^2 = b^2 pi^2 / 24``;
  ``gamma = E[exp(b log R)] = 2^(b/2) Gamma(1 + b/2)``; ``rho`` minimising SURE of the smoother
  ``y_u / (1 + 2 rho |D|^2)`` under the measured noise spectrum (:mod:`.sure`).
- ``tau2 = sigma_m^2 / (gamma sigma_u^2 A_c)``; ``tau3 = tau2 gamma rho``;
  ``tau4 = sigma_m^2 / (2 sigma_f^2 A_c)`` with ``sigma_f^2 = max(resvar - sigma_u^2,
  0.05 resvar)`` from the link's fit residual. The i.i.d. likelihood counts each speckle grain
  ``A_c`` times; the link's residual carries the same speckle.

On i.i.d. noise this is section 10's rule (Haar ``b``, ``A_c = 1``, white-noise SURE);
``noise_model="iid"`` forces it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import gamma as gamma_fn
from typing import Optional, Sequence

import numpy as np

from .correlation import SpeckleCorrelation, _inside, grain_area, speckle_correlation
from .gcv import gcv_tau1
from .misfit import misfit_area
from .scale import (HAAR_MAD_LOG_RAYLEIGH, LOG_RAYLEIGH_STD, WINDOW, NoiseScale, _haar_scale,
                    measured_correlation,
                    noise_scale, us_noise_scale, window_std_median_factor)
from .sure import noise_power, sure_rho

__all__ = ["Weights", "USNoise", "us_weights", "estimate_weights", "gcv_tau1", "us_noise_scale",
           "noise_scale", "NoiseScale", "sure_rho", "noise_power", "speckle_correlation",
           "SpeckleCorrelation", "grain_area", "window_std_median_factor", "LOG_RAYLEIGH_STD",
           "HAAR_MAD_LOG_RAYLEIGH", "NOISE_MODELS", "misfit_area"]

#: ``"correlated"`` (DESIGN.md section 13, the default) or ``"iid"`` (section 10).
NOISE_MODELS = ("correlated", "iid")
_TINY = 1e-12


@dataclass(frozen=True)
class Weights:
    """The weights of the objective and how they were obtained.

    ``source`` maps each of ``tau1``..``tau4`` and ``gamma`` to ``"user"`` or ``"auto"``;
    ``sigma_m2``, ``sigma_u2``, ``sigma_f2``, ``b``, ``rho`` and ``grain_area`` (``A_c``) are the
    measured quantities behind the automatic values (NaN where not measured);
    ``speckle_scale_method`` and ``grain_area_method`` say how ``b`` and ``A_c`` were obtained;
    ``misfit_area`` (``A_f``) is the correlation area of the link's misfit
    (:func:`.misfit_area`), a diagnostic: ``A_f`` far above ``A_c`` means the link errs over
    whole regions, and ``v`` then takes MR contrast that the US does not show.
    """

    tau1: float
    tau2: float
    tau3: float
    tau4: float
    gamma: float
    sigma_m2: float = float("nan")
    sigma_u2: float = float("nan")
    sigma_f2: float = float("nan")
    b: float = float("nan")
    rho: float = float("nan")
    source: dict = field(default_factory=dict)
    grain_area: float = float("nan")
    speckle_scale_method: str = ""
    grain_area_method: str = ""
    misfit_area: float = float("nan")

    def as_dict(self) -> dict:
        keys = ("tau1", "tau2", "tau3", "tau4", "gamma", "sigma_m2", "sigma_u2", "sigma_f2", "b",
                "rho", "grain_area", "misfit_area", "speckle_scale_method", "grain_area_method")
        return {k: getattr(self, k) for k in keys} | {"source": dict(self.source)}


@dataclass(frozen=True)
class USNoise:
    """What a US image says about its noise: the automatic weights of ``fuse`` and
    ``despeckle`` follow from it (:func:`us_weights`).

    Attributes
    ----------
    b : float
        Log-Rayleigh scale of ``y_u = v + b log R``.
    gamma : float
        ``2^(b/2) Gamma(1 + b/2)``.
    sigma_u2 : float
        ``b^2 pi^2 / 24``.
    grain_area : float
        ``A_c`` (pixels, >= 1) that divides ``tau2`` and ``tau4``.
    rho : float
        SURE's ``rho`` (``tau3 = tau2 gamma rho``).
    speckle_scale_method, grain_area_method : str
        How ``b`` and ``A_c`` were obtained.
    correlated : float
        0 (neighbours independent: section 10) to 1 (correlated speckle: section 13).
    b_haar, b_window : float
        The two noise-scale estimates behind ``b`` (see :func:`noise_scale`).
    message : str
    """

    b: float
    gamma: float
    sigma_u2: float
    grain_area: float
    rho: float
    speckle_scale_method: str
    grain_area_method: str
    correlated: float = 0.0
    b_haar: float = float("nan")
    b_window: float = float("nan")
    message: str = ""
    speckle_rho: Optional[np.ndarray] = field(default=None, repr=False, compare=False)


def us_weights(y_u: np.ndarray, mask: Optional[np.ndarray] = None, *,
               noise_model: str = "correlated", window: int = WINDOW,
               weights: Optional[Sequence[float]] = None) -> USNoise:
    """Noise scale, ``gamma``, ``sigma_u^2``, grain area and SURE's ``rho`` of a US image.

    Parameters
    ----------
    y_u : ndarray, shape (n1, n2)
        Log-compressed US image in solver units (divided by its maximum).
    mask : ndarray, optional
        Field of view: the noise is measured inside it, and SURE runs on ``y_u`` with the
        outside filled by the mean inside.
    noise_model : {"correlated", "iid"}
        ``"correlated"`` (default): measure the correlation and use it (DESIGN.md section 13;
        on i.i.d. noise this is section 10). ``"iid"``: section 10 whatever the data (Haar
        ``b``, ``A_c = 1``, white-noise SURE).
    window : int
        Side of the windows of the window estimate of ``b``.
    weights : sequence of float, optional
        Difference weights ``h_ref / h_a`` of the grid (DESIGN.md 11) for SURE; None: all 1.

    Returns
    -------
    USNoise

    Raises
    ------
    ValueError
        If ``y_u`` is not 2-D, ``noise_model`` is unknown, or ``mask`` selects no pixel or no
        2x2 block.

    Notes
    -----
    :func:`noise_scale` weighs the correlated reading by ``w`` in [0, 1] from the ratio of the
    Haar and window estimates of ``b``; the same ``w`` blends ``A_c = 1 + w (A_meas - 1)`` and
    the noise spectrum of SURE, ``P = sigma_u^2 ((1 - w) + w P_rho)`` with ``P_rho`` the
    spectrum of the measured correlation (:func:`noise_power`), so every weight moves
    continuously from section 10 (``w = 0``) to section 13 (``w = 1``). Fallbacks, in the
    methods and the message: fewer than 16 windows inside the image or mask give the Haar
    ``b`` and ``w = 0``; fewer than 9 16x16 patches, a white correlation (``A_c = 1``).
    For ``despeckle`` take ``sigma_m^2 = 1`` in ``tau2 = sigma_m^2 / (gamma sigma_u^2 A_c)``;
    ``tau3 = tau2 gamma rho`` (only ``tau3 / tau2`` matters there).

    Examples
    --------
    >>> import numpy as np
    >>> y = 0.5 + 0.1 * np.log(np.random.default_rng(0).rayleigh(size=(32, 32)))
    >>> u = us_weights(y)
    >>> round(u.b, 2), u.grain_area, u.correlated
    (0.1, 1.0, 0.0)
    """
    y = np.asarray(y_u, dtype=np.float64)
    if y.ndim not in (2, 3):
        raise ValueError(f"`y_u` must be a 2-D or 3-D array, got shape {y.shape}")
    if noise_model not in NOISE_MODELS:
        raise ValueError(f"`noise_model` must be one of {NOISE_MODELS}, got {noise_model!r}")
    inside = _inside(mask, y.shape)
    if noise_model == "iid":
        corr = SpeckleCorrelation.white("i.i.d. (noise_model='iid')")
        b = _haar_scale(y, inside)
        scale = NoiseScale(b, 0.0, b, float("nan"), "haar (noise_model='iid')")
    else:
        corr = measured_correlation(y, mask)
        scale = noise_scale(y, mask, window=window, correlation=corr)
    b, w = scale.b, scale.correlated
    sigma_u2 = b * b * LOG_RAYLEIGH_STD**2
    gamma = 2.0 ** (b / 2.0) * gamma_fn(1.0 + b / 2.0)
    a_c = 1.0 + w * (corr.grain_area - 1.0)
    if inside is not None:
        y = np.where(inside, y, y[inside].mean())
    power = None
    if w > 0.0 and corr.patch:
        power = max(sigma_u2, _TINY) * ((1.0 - w) + w * noise_power(corr.rho, y.shape, 1.0))
    rho = sure_rho(y, sigma_u2, noise_power=power, weights=weights)
    if corr.patch == 0:
        a_method = corr.method
    else:
        a_method = (f"{corr.grain_area:.3g} px measured on {corr.n_patches} "
                    f"{corr.patch}x{corr.patch} patch spectra, weight {w:.2f}")
    message = (f"b = {b:.4g} by {scale.method}; A_c = {a_c:.3g} ({a_method}); "
               f"{'coloured' if power is not None else 'white'}-noise SURE rho = {rho:.3g}")
    return USNoise(float(b), float(gamma), float(sigma_u2), float(a_c), float(rho),
                   scale.method, a_method, float(w), float(scale.b_haar),
                   float(scale.b_window), message, _blend(corr.rho, w))


def _blend(rho: np.ndarray, w: float) -> np.ndarray:
    """``(1 - w) delta + w rho``: the speckle correlation the weights assume."""
    out = w * np.asarray(rho, dtype=np.float64)
    out[tuple((n - 1) // 2 for n in out.shape)] += 1.0 - w
    return out


def estimate_weights(y_m: np.ndarray, y_u: np.ndarray, ratio: int, abs_lam2: np.ndarray,
                     fit_resvar: float, *, tau1=None, tau2=None, tau3=None, tau4=None,
                     gamma=None, mask: Optional[np.ndarray] = None,
                     noise_model: str = "correlated",
                     us_noise: Optional[USNoise] = None,
                     fit_residual: Optional[np.ndarray] = None,
                     weights: Optional[Sequence[float]] = None) -> Weights:
    """Data-driven weights; any value given is used as is (see module docstring).

    Parameters
    ----------
    y_m, y_u : ndarray
        Observations in solver units.
    ratio : int
    abs_lam2 : ndarray
        ``|Lam|^2`` on the full fine-grid spectrum.
    fit_resvar : float
        Per-pixel residual variance of the polynomial fit.
    tau1, tau2, tau3, tau4, gamma : float, optional
        Given values, used as they are.
    mask : ndarray, optional
        US field of view (see :func:`us_weights`).
    noise_model : {"correlated", "iid"}
        Passed to :func:`us_weights`.
    us_noise : USNoise, optional
        A measurement already made by :func:`us_weights` on the same ``y_u`` and ``mask``.
    fit_residual : ndarray, optional
        ``y_u - f(x0, g(x0))``, the link's fit residual: its correlation beyond the speckle's
        gives the misfit area ``A_f`` (:func:`.misfit_area`); ``None`` or a volume: ``A_f = 1``.
    weights : sequence of float, optional
        Difference weights ``h_ref / h_a`` of the grid (DESIGN.md 11); None: all 1.

    Returns
    -------
    Weights

    Notes
    -----
    ``tau2 = sigma_m^2 / (gamma sigma_u^2 A_c)``, ``tau3 = tau2 gamma rho``,
    ``tau4 = sigma_m^2 / (2 sigma_f^2 A_c)``, ``sigma_f^2 = max(resvar - sigma_u^2,
    0.05 resvar)`` (DESIGN.md sections 10 and 13). ``A_f``, the misfit's correlation area, is
    measured and reported but does not enter ``tau4`` (see :mod:`.misfit`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> yu = 0.5 + 0.1 * np.log(rng.rayleigh(size=(32, 32)))
    >>> ym = rng.normal(0.5, 0.01, (16, 16))
    >>> w = estimate_weights(ym, yu, 2, np.ones((32, 32)), 0.02)
    >>> w.grain_area, w.source["tau2"], bool(w.tau3 > 0)
    (1.0, 'auto', True)
    """
    src = {}
    auto_t1, sigma_m2 = gcv_tau1(y_m, ratio, abs_lam2, weights=weights)
    if tau1 is None:
        tau1, src["tau1"] = auto_t1, "auto"
    else:
        src["tau1"] = "user"
    us = us_noise if us_noise is not None else us_weights(y_u, mask, noise_model=noise_model,
                                                          weights=weights)
    sigma_u2, a_c = us.sigma_u2, us.grain_area
    if gamma is None:
        gamma, src["gamma"] = us.gamma, "auto"
    else:
        src["gamma"] = "user"
    if tau2 is None:
        tau2, src["tau2"] = sigma_m2 / (gamma * max(sigma_u2, _TINY) * a_c), "auto"
    else:
        src["tau2"] = "user"
    if tau3 is None:
        tau3, src["tau3"] = tau2 * gamma * us.rho, "auto"
    else:
        src["tau3"] = "user"
    sigma_f2 = max(fit_resvar - sigma_u2, 0.05 * fit_resvar)
    a_f = 1.0
    if fit_residual is not None and us.speckle_rho is not None and y_u.ndim == 2:
        a_f = misfit_area(fit_residual, sigma_f2, sigma_u2, us.speckle_rho,
                          _inside(mask, y_u.shape))
    if tau4 is None:
        tau4, src["tau4"] = sigma_m2 / (2.0 * max(sigma_f2, _TINY) * a_c), "auto"
    else:
        src["tau4"] = "user"
    return Weights(float(tau1), float(tau2), float(tau3), float(tau4), float(gamma),
                   float(sigma_m2), float(sigma_u2), float(sigma_f2), float(us.b), float(us.rho),
                   src, float(a_c), us.speckle_scale_method, us.grain_area_method, float(a_f))
