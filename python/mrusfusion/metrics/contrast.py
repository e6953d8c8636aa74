"""Contrast-to-noise ratio between two regions of one image (DESIGN.md section 9)."""
from __future__ import annotations

import math
from typing import Tuple, Union

import numpy as np

from ._checks import as_images, rescaled

__all__ = ["Region", "region_values", "cnr"]

#: A region of an image: at most two slices (``np.s_[10:20, 30:40]``) or a boolean mask.
Region = Union[np.ndarray, Tuple[slice, ...], slice]


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
    (img,) = as_images(image=image)
    a = region_values(img, region_a, "region_a")
    b = region_values(img, region_b, "region_b")
    scale, (a, b) = rescaled(a, b)
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
