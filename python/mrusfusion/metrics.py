"""Image quality metrics of the paper (DESIGN.md section 9; El Mansouri et al. 2020, eq. 19).

Every metric returns a Python ``float``. Inputs may be any real array (float32, float64,
integers); they are checked by :mod:`._validation` and converted to float64 before any reduction,
so the reported value does not depend on the storage precision of the image. Complex input is
refused, as are NaN and infinite values.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage

from ._validation import as_image, check_int, check_scalar

__all__ = ["rmse", "psnr", "isnr", "mssim", "cnr", "profile", "profile_slope"]

Region = Union[np.ndarray, Tuple[slice, ...], slice]


# --------------------------------------------------------------------------- validation
def _as_images(**images) -> Tuple[np.ndarray, ...]:
    """Validate images (finite, 2-D, real) that must share one shape, as float64 copies."""
    arrays = tuple(
        as_image(value, name, dtype=np.float64, min_size=1) for name, value in images.items()
    )
    names = tuple(images)
    for name, arr in zip(names[1:], arrays[1:]):
        if arr.shape != arrays[0].shape:
            raise ValueError(
                f"`{name}` must have the shape of `{names[0]}` {arrays[0].shape}, got {arr.shape}"
            )
    return arrays


def _rescaled(*arrays: np.ndarray, extra: float = 0.0,
              bound: float = 1e150) -> Tuple[float, Tuple[np.ndarray, ...]]:
    """``(s, arrays / s)`` with ``s`` the largest magnitude (and ``extra``) when it lies beyond
    ``[1/bound, bound]``, where squares (``bound = 1e150``) or products of four values
    (``1e75``) would overflow or underflow; otherwise ``(1.0, arrays)`` untouched.

    Every metric is a ratio or homogeneous of degree 1, so working on ``arrays / s`` keeps
    images of any finite scale finite and exact to rounding.
    """
    top = max([float(np.max(np.abs(a))) for a in arrays] + [abs(extra)])
    if top == 0.0 or 1.0 / bound <= top <= bound:
        return 1.0, arrays
    return top, tuple(a / top for a in arrays)


def region_values(image: np.ndarray, region: Region, name: str = "region") -> np.ndarray:
    """Pixel values of ``image`` inside ``region``, with the checks :func:`cnr` makes.

    Parameters
    ----------
    image : ndarray
        The image (not validated here: :func:`cnr` has already checked it).
    region : tuple of slice or bool ndarray
        At most two slices such as ``np.s_[10:20, 30:40]``, or a boolean mask of the image's
        shape.
    name : str, optional
        How error messages name the region (an argument or a command-line option).

    Returns
    -------
    1-D ndarray
        The selected pixels (a view or copy of ``image``'s values).

    Raises
    ------
    TypeError
        If ``region`` is neither slices nor a boolean mask.
    ValueError
        If a mask does not have the image's shape, or the region selects no pixel.

    Examples
    --------
    >>> import numpy as np
    >>> region_values(np.arange(16.0).reshape(4, 4), np.s_[1:2, 2:4]).tolist()
    [6.0, 7.0]
    """
    if isinstance(region, slice):
        region = (region,)
    if isinstance(region, tuple):
        if len(region) > 2 or not all(isinstance(s, slice) for s in region):
            raise TypeError(f"`{name}` must be a tuple of at most two slices or a boolean mask")
        values = image[region]
    else:
        mask = np.asarray(region)
        if mask.dtype != bool:
            raise TypeError(
                f"`{name}` must be a boolean mask or a tuple of slices, got dtype {mask.dtype}"
            )
        if mask.shape != image.shape:
            raise ValueError(
                f"`{name}` mask must have the image's shape {image.shape}, got {mask.shape}"
            )
        values = image[mask]
    if values.size == 0:
        raise ValueError(f"`{name}` selects no pixel of the image")
    return values.ravel()


def _point(value, name: str, shape: Tuple[int, int]) -> np.ndarray:
    """A (row, col) point inside an image of ``shape``, as float64."""
    try:
        pt = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        pt = None
    if pt is None or pt.shape != (2,):
        raise TypeError(f"`{name}` must be a (row, col) pair of real numbers, got {value!r}")
    if not np.all(np.isfinite(pt)):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    if np.any(pt < 0) or np.any(pt > np.array(shape) - 1):
        raise ValueError(
            f"`{name}` must lie inside the image (0 <= row <= {shape[0] - 1}, "
            f"0 <= col <= {shape[1] - 1}), got {tuple(pt.tolist())}"
        )
    return pt


# --------------------------------------------------------------------------- fidelity metrics
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
        If an input is not 2-D, is empty, contains NaN/inf, or the shapes differ.

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
    xh, x = _as_images(estimate=estimate, reference=reference)
    return _rmse(xh, x)


def _rmse(xh: np.ndarray, x: np.ndarray) -> float:
    scale, (xh, x) = _rescaled(xh, x)
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
        If an input is not 2-D, is empty, contains NaN/inf, the shapes differ, or the peak is
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
    xh, x = _as_images(estimate=estimate, reference=reference)
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
        If an input is not 2-D, is empty, contains NaN/inf, or the shapes differ.

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
    xh, x, y = _as_images(estimate=estimate, reference=reference, observation=observation)
    _, (xh, x, y) = _rescaled(xh, x, y)
    num = float(np.sum((y - x) ** 2))
    den = float(np.sum((xh - x) ** 2))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    if num == 0.0:
        return -math.inf
    return 10.0 * math.log10(num / den)


# --------------------------------------------------------------------------- structural similarity
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
    xh, x = _as_images(estimate=estimate, reference=reference)
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
    scale, (xh, x) = _rescaled(xh, x, extra=L, bound=1e75)
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


# --------------------------------------------------------------------------- contrast
def cnr(
    image: np.ndarray,
    region_a: Region,
    region_b: Region,
    *,
    db: bool = False,
    variant: str = "standard",
) -> float:
    """Contrast-to-noise ratio between two regions of one image.

    Parameters
    ----------
    image : (M, N) array_like
        The image.
    region_a, region_b : tuple of slice or (M, N) bool array
        The two regions, each either a tuple of (at most two) slices such as
        ``np.s_[10:20, 30:40]`` or a boolean mask of the image's shape.
    db : bool, optional
        Return ``20 log10`` of the ratio instead of the ratio (keyword-only).
    variant : {"standard", "authors"}, optional
        ``"standard"`` (default) divides by the root of the summed variances; ``"authors"``
        divides by the summed variances themselves, as the paper's published scripts do.

    Returns
    -------
    float
        The CNR (``inf`` if both regions are constant with different means; in dB, ``-inf`` if
        the means are equal).

    Raises
    ------
    TypeError
        If ``image`` is not a real numeric array, or a region is neither slices nor a bool mask.
    ValueError
        If ``image`` is not 2-D or not finite, a mask has the wrong shape, a region is empty,
        ``variant`` is unknown, or both regions are constant with equal means (CNR undefined).

    Notes
    -----
    With region means :math:`\\mu_a, \\mu_b` and (population, 1/n) variances
    :math:`\\sigma_a^2, \\sigma_b^2`:

    .. math:: \\mathrm{CNR} = \\frac{|\\mu_a - \\mu_b|}{\\sqrt{\\sigma_a^2 + \\sigma_b^2}},
              \\qquad \\mathrm{CNR}_{\\text{authors}} =
              \\frac{|\\mu_a - \\mu_b|}{\\sigma_a^2 + \\sigma_b^2},
              \\qquad \\mathrm{CNR}_{\\mathrm{dB}} = 20 \\log_{10} \\mathrm{CNR}.

    The ``"authors"`` variant is not scale invariant and gives large dB values for images in
    [0, 1]; use it only to compare with numbers published from those scripts (DESIGN.md
    section 9). The result is symmetric in the two regions.

    References
    ----------
    .. [1] O. El Mansouri et al., IEEE Trans. Image Process. 29, 5324-5335 (2020), section V.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((32, 32))
    >>> img[:, 16:] = 1.0
    >>> img[::2] += 0.1  # row texture: variance 0.0025 in each half
    >>> round(cnr(img, np.s_[:, :16], np.s_[:, 16:]), 4)  # 1 / sqrt(0.005)
    14.1421
    """
    if variant not in ("standard", "authors"):
        raise ValueError(f"`variant` must be 'standard' or 'authors', got {variant!r}")
    (img,) = _as_images(image=image)
    a = region_values(img, region_a, "region_a")
    b = region_values(img, region_b, "region_b")
    scale, (a, b) = _rescaled(a, b)
    contrast = abs(float(a.mean()) - float(b.mean()))
    spread = float(a.var()) + float(b.var())
    if variant == "standard":
        spread = math.sqrt(spread)
    else:  # contrast / variance scales as 1 / scale
        spread *= scale
    if spread == 0.0:
        if contrast == 0.0:
            raise ValueError("both regions are constant with equal means: the CNR is undefined")
        value = math.inf
    else:
        value = contrast / spread
    if not db:
        return value
    return 20.0 * math.log10(value) if value > 0.0 else -math.inf


# --------------------------------------------------------------------------- profiles
def profile(
    image: np.ndarray,
    start: Sequence[float],
    end: Sequence[float],
    num: Optional[int] = None,
    order: int = 1,
) -> Tuple[np.ndarray, np.ndarray]:
    """Intensity profile along a straight segment.

    Parameters
    ----------
    image : (M, N) array_like
        The image.
    start, end : (row, col) pair of float
        End points of the segment in pixel coordinates, inside the image and distinct.
    num : int, optional
        Number of equally spaced samples, at least 2. Default: the segment length in pixels,
        rounded, plus one (about one sample per pixel, both end points included; at least 2).
    order : int, optional
        Spline interpolation order of :func:`scipy.ndimage.map_coordinates` (0-5; 1 is
        bilinear).

    Returns
    -------
    distances : (num,) ndarray of float64
        Distance of each sample from ``start``, in pixels.
    values : (num,) ndarray of float64
        Interpolated intensities.

    Raises
    ------
    TypeError
        If ``image`` is not a real numeric array, a point is not a pair of numbers, or ``num``
        or ``order`` is not an integer.
    ValueError
        If ``image`` is not 2-D or not finite, a point is outside the image, ``start == end``,
        ``num < 2`` or ``order`` is not in 0-5.

    Notes
    -----
    Sample :math:`k` lies at :math:`p_k = s + \\tfrac{k}{n-1}(e - s)`, at distance
    :math:`\\tfrac{k}{n-1}\\|e - s\\|` from :math:`s`.

    References
    ----------
    .. [1] O. El Mansouri et al., IEEE Trans. Image Process. 29, 5324-5335 (2020), section V.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(np.arange(32.0), (32, 1))
    >>> d, v = profile(ramp, (5, 2), (5, 6))
    >>> d.tolist(), v.tolist()
    ([0.0, 1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0, 6.0])
    """
    (img,) = _as_images(image=image)
    p0 = _point(start, "start", img.shape)
    p1 = _point(end, "end", img.shape)
    length = float(np.hypot(*(p1 - p0)))
    if length == 0.0:
        raise ValueError("`start` and `end` must be distinct points")
    num = max(2, round(length) + 1) if num is None else check_int(num, "num", low=2)
    order = check_int(order, "order", low=0, high=5)
    t = np.linspace(0.0, 1.0, num)
    coords = p0[:, None] + (p1 - p0)[:, None] * t[None, :]
    # points are inside the image, so the boundary mode only matters for spline prefiltering
    values = ndimage.map_coordinates(img, coords, order=order, mode="nearest")
    return t * length, values


def profile_slope(
    image: np.ndarray,
    start: Sequence[float],
    end: Sequence[float],
    num: Optional[int] = None,
    order: int = 1,
) -> float:
    """Slope of the least-squares line through an intensity profile (a resolution indicator).

    Parameters
    ----------
    image : (M, N) array_like
        The image.
    start, end : (row, col) pair of float
        End points of a short segment crossing an interface, inside the image and distinct.
    num : int, optional
        Number of samples (default: segment length in pixels, rounded, plus one).
    order : int, optional
        Spline interpolation order (1 is bilinear).

    Returns
    -------
    float
        Slope in intensity units per pixel, signed: positive when the intensity rises from
        ``start`` towards ``end``. A sharper interface gives a larger magnitude.

    Raises
    ------
    TypeError, ValueError
        As :func:`profile`.

    Notes
    -----
    With samples :math:`(d_k, v_k)` from :func:`profile`,

    .. math:: \\text{slope} = \\frac{\\sum_k (d_k - \\bar d)(v_k - \\bar v)}
              {\\sum_k (d_k - \\bar d)^2} .

    References
    ----------
    .. [1] O. El Mansouri et al., IEEE Trans. Image Process. 29, 5324-5335 (2020), section V.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(0.5 * np.arange(32.0), (32, 1))
    >>> round(profile_slope(ramp, (3, 3), (3, 20)), 12)
    0.5
    """
    d, v = profile(image, start, end, num=num, order=order)
    dc = d - d.mean()
    return float(np.dot(dc, v - v.mean()) / np.dot(dc, dc))
