"""Mean structural similarity with a Gaussian window (Wang et al. 2004; DESIGN.md section 9)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .._validation import check_int, check_scalar
from ._checks import as_images, rescaled

__all__ = ["mssim"]


def mssim(
    estimate: np.ndarray,
    reference: np.ndarray,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
    K1: float = 0.01,
    K2: float = 0.03,
) -> float:
    """Mean structural similarity index (Wang et al. 2004) with a Gaussian window.

    Parameters
    ----------
    estimate : (M, N) array_like
        Estimated image.
    reference : (M, N) array_like
        Reference image, same shape; each side at least ``win_size``.
    data_range : float, optional
        Dynamic range ``L`` of the images (1 for images in [0, 1]).
    win_size : int, optional
        Side of the Gaussian window, an odd integer >= 3 (11 in the paper).
    sigma : float, optional
        Standard deviation of the Gaussian window in pixels (1.5 in the paper).
    K1, K2 : float, optional
        Stabilising constants (0.01 and 0.03 in the paper).

    Returns
    -------
    float
        The mean SSIM over the valid interior, in [-1, 1]; 1 for identical images.

    Raises
    ------
    TypeError
        If an input is not a real numeric array or a parameter has the wrong type.
    ValueError
        If an input is not 2-D, contains NaN/inf, the shapes differ, the images are smaller than
        the window, or a parameter is out of range.

    Notes
    -----
    With local means :math:`\\mu`, variances :math:`\\sigma^2` and covariance
    :math:`\\sigma_{xy}` taken under a normalised ``win_size`` x ``win_size`` Gaussian window,

    .. math:: \\mathrm{SSIM} = \\frac{(2\\mu_x\\mu_y + C_1)(2\\sigma_{xy} + C_2)}
              {(\\mu_x^2 + \\mu_y^2 + C_1)(\\sigma_x^2 + \\sigma_y^2 + C_2)},
              \\quad C_1 = (K_1 L)^2,\\ C_2 = (K_2 L)^2 .

    The moments are Gaussian-weighted without a sample-size correction and borders are
    reflected; MSSIM is the mean over the pixels at least ``(win_size - 1) // 2`` from every
    border. This equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=sigma, use_sample_covariance=False)``. Computed in float64 whatever the input dtype.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from
       error visibility to structural similarity", IEEE Trans. Image Process. 13(4), 600-612
       (2004).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    >>> mssim(x, x)
    1.0
    >>> mssim(x, 1 - x) < 0
    True
    """
    xh, x = as_images(estimate=estimate, reference=reference)
    L = check_scalar(data_range, "data_range", positive=True)
    sigma = check_scalar(sigma, "sigma", positive=True)
    K1 = check_scalar(K1, "K1", positive=True)
    K2 = check_scalar(K2, "K2", positive=True)
    win_size = check_int(win_size, "win_size", low=3)
    if win_size % 2 == 0:
        raise ValueError(f"`win_size` must be odd, got {win_size}")
    if min(x.shape) < win_size:
        raise ValueError(
            f"`estimate` and `reference` must be at least {win_size}x{win_size} for "
            f"win_size={win_size}, got shape {x.shape}"
        )

    radius = win_size // 2
    # SSIM is invariant to scaling x, xh and L together; its map multiplies four values.
    scale, (xh, x) = rescaled(xh, x, extra=L, bound=1e75)
    L /= scale

    # truncate so that ndimage's kernel radius int(truncate * sigma + 0.5) equals win_size // 2
    def smooth(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma=sigma, truncate=radius / sigma, mode="reflect")

    mu_x, mu_y = smooth(xh), smooth(x)
    var_x = smooth(xh * xh) - mu_x * mu_x
    var_y = smooth(x * x) - mu_y * mu_y
    cov_xy = smooth(xh * x) - mu_x * mu_y
    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    interior = ssim_map[radius:-radius, radius:-radius]
    return float(interior.mean())
