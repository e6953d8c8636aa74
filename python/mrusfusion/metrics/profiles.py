"""Intensity profiles along a segment and their slope, a resolution indicator (DESIGN.md
section 9)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from .._validation import check_int
from ._checks import as_images, point

__all__ = ["profile", "profile_slope"]


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
    (img,) = as_images(image=image)
    p0 = point(start, "start", img.shape)
    p1 = point(end, "end", img.shape)
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
