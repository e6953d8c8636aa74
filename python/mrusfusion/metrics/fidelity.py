"""Fidelity to a reference: RMSE, PSNR with the paper's peak, and ISNR over the observation
(El Mansouri et al. 2020, eq. 19; DESIGN.md section 9)."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .._validation import check_scalar
from ._checks import as_images, rescaled

__all__ = ["rmse", "psnr", "isnr"]


def rmse(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Root-mean-square error between an estimate and its reference.

    Parameters
    ----------
    estimate : (M, N) array_like
        Estimated image ``xh``.
    reference : (M, N) array_like
        Ground-truth image ``x``, same shape.

    Returns
    -------
    float
        The RMSE, in the intensity units of the images.

    Raises
    ------
    TypeError
        If an input is not a real numeric array.
    ValueError
        If an input is not 2-D or 3-D, is empty, contains NaN/inf, or the shapes differ.

    Notes
    -----
    .. math:: \\mathrm{RMSE} = \\sqrt{\\tfrac{1}{MN} \\sum_{i} (\\hat{x}_i - x_i)^2}

    References
    ----------
    .. [1] O. El Mansouri et al., "Fusion of magnetic resonance and ultrasound images for
       endometriosis detection", IEEE Trans. Image Process. 29, 5324-5335 (2020), eq. 19.

    Examples
    --------
    >>> import numpy as np
    >>> rmse(np.full((32, 32), 0.5), np.zeros((32, 32)))
    0.5
    """
    xh, x = as_images((2, 3), estimate=estimate, reference=reference)
    return _rmse(xh, x)


def _rmse(xh: np.ndarray, x: np.ndarray) -> float:
    scale, (xh, x) = rescaled(xh, x)
    return scale * float(np.sqrt(np.mean((xh - x) ** 2)))


def psnr(
    estimate: np.ndarray, reference: np.ndarray, data_range: Optional[float] = None
) -> float:
    """Peak signal-to-noise ratio in dB, with the paper's choice of peak.

    Parameters
    ----------
    estimate : (M, N) array_like
        Estimated image ``xh``.
    reference : (M, N) array_like
        Ground-truth image ``x``, same shape.
    data_range : float, optional
        The peak value. By default ``max(max(xh), max(x))`` as in the paper.

    Returns
    -------
    float
        PSNR in dB; ``inf`` when the estimate equals the reference.

    Raises
    ------
    TypeError
        If an input is not a real numeric array, or ``data_range`` is not a number.
    ValueError
        If an input is not 2-D or 3-D, is empty, contains NaN/inf, the shapes differ, or the peak is
        not positive (an all-nonpositive pair needs an explicit ``data_range``).

    Notes
    -----
    .. math:: \\mathrm{PSNR} = 20 \\log_{10} \\frac{\\max(\\max \\hat{x}, \\max x)}{\\mathrm{RMSE}}

    The peak differs from scikit-image's ``peak_signal_noise_ratio``, whose default is the
    range of the dtype; pass ``data_range`` to choose it.

    References
    ----------
    .. [1] O. El Mansouri et al., IEEE Trans. Image Process. 29, 5324-5335 (2020), eq. 19.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((32, 32))
    >>> round(psnr(x + 0.1, x), 4)  # peak 1.1, RMSE 0.1
    20.8279
    """
    xh, x = as_images((2, 3), estimate=estimate, reference=reference)
    if data_range is None:
        peak = float(max(xh.max(), x.max()))
        if peak <= 0:
            raise ValueError(
                f"the default peak max(max(estimate), max(reference)) = {peak} is not positive; "
                "pass `data_range`"
            )
    else:
        peak = check_scalar(data_range, "data_range", positive=True)
    error = _rmse(xh, x)
    if error == 0.0:
        return math.inf
    return 20.0 * math.log10(peak / error)


def isnr(estimate: np.ndarray, reference: np.ndarray, observation: np.ndarray) -> float:
    """Improvement in signal-to-noise ratio (dB) of an estimate over the observation.

    Parameters
    ----------
    estimate : (M, N) array_like
        Estimated image ``xh``.
    reference : (M, N) array_like
        Ground-truth image ``x``.
    observation : (M, N) array_like
        The observation ``y`` on the grid of ``x``: the bicubic-interpolated MR observation for
        MR estimates, the US observation for US estimates.

    Returns
    -------
    float
        ISNR in dB, positive when the estimate is closer to ``x`` than ``y`` is. ``inf`` when
        the estimate equals the reference (``0.0`` if the observation does too), ``-inf`` when
        only the observation equals it.

    Raises
    ------
    TypeError
        If an input is not a real numeric array.
    ValueError
        If an input is not 2-D or 3-D, is empty, contains NaN/inf, or the shapes differ.

    Notes
    -----
    .. math:: \\mathrm{ISNR} = 10 \\log_{10} \\frac{\\|y - x\\|^2}{\\|\\hat{x} - x\\|^2}

    References
    ----------
    .. [1] O. El Mansouri et al., IEEE Trans. Image Process. 29, 5324-5335 (2020), eq. 19.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((32, 32))
    >>> round(isnr(x + 0.1, x, x + 1.0), 6)  # error divided by 10: 20 dB
    20.0
    """
    xh, x, y = as_images((2, 3), estimate=estimate, reference=reference,
                          observation=observation)
    _, (xh, x, y) = rescaled(xh, x, y)
    num = float(np.sum((y - x) ** 2))
    den = float(np.sum((xh - x) ** 2))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    if num == 0.0:
        return -math.inf
    return 10.0 * math.log10(num / den)
