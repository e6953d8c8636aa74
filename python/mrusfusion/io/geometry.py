"""Grid geometry of a registered MR/US pair: integer ratio, resampling, common field of view.

The observation model of DESIGN.md, :math:`y_{MR} = S H x`, decimates the US grid by one
integer ``ratio`` on both axes of an image, or by one integer per axis of a volume (DESIGN.md
section 11: ``s_a = round(H_a / h_a)``). These functions bring two grids to that relation: the
ratio from the pixel spacings, a resampling of the US image when the spacings are not in an
integer ratio, and a crop to the common field of view (both images start at the same outer
corner).
"""
from __future__ import annotations

import math
from typing import Tuple, Union

import numpy as np

from .image import Spacing, as_float, check_spacing

__all__ = ["ratio_from_spacing", "ratios_from_spacing", "resample_to_ratio", "crop_to_ratio",
           "resampled_affine"]

#: A ratio: one integer for both axes of an image, or one per axis of a volume.
Ratio = Union[int, Tuple[int, ...]]


def _spacing(value: Spacing, name: str, ndim: int = 2) -> Spacing:
    """:func:`check_spacing` for a spacing that must be known (``None`` refused)."""
    spacing = check_spacing(value, name, ndim)
    if spacing is None:
        what = "two positive finite numbers (row, col)" if ndim == 2 else (
            f"{ndim} positive finite numbers (one per axis)")
        raise ValueError(f"`{name}` must be {what} in mm, got None")
    return spacing


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"


def ratios_from_spacing(mr_spacing: Spacing, us_spacing: Spacing, *,
                        tol: float = 0.05) -> Tuple[int, ...]:
    """The per-axis integer decimation ratios between the MR and US grids of a volume.

    Parameters
    ----------
    mr_spacing, us_spacing : sequence of float
        Voxel spacings in mm, one entry per axis (2 or 3, the same number for both).
    tol : float, default 0.05
        Accepted relative deviation of each per-axis ratio from its integer.

    Returns
    -------
    tuple of int
        ``s_a = round(H_a / h_a)`` per axis (DESIGN.md section 11).

    Raises
    ------
    ValueError
        If a spacing is invalid, the two have different lengths, ``tol`` is not in ``[0, 1)``,
        or an axis is not within ``tol`` of an integer ratio; the message gives both spacings,
        the ratios found and the US spacing that would fix it.

    Notes
    -----
    Per axis :math:`a`, :math:`r_a = H_a / h_a` must satisfy :math:`|r_a - s_a| \\le
    \\mathrm{tol}\\, s_a` with :math:`s_a = \\max(1, \\mathrm{round}(r_a))`.

    Examples
    --------
    >>> from mrusfusion.io import ratios_from_spacing
    >>> ratios_from_spacing((1.0, 1.0, 4.0), (0.5, 0.5, 1.0))
    (2, 2, 4)
    >>> ratios_from_spacing((1.0, 1.0, 2.5), (0.5, 0.5, 1.0))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: MR spacing (1, 1, 2.5) mm and US spacing (0.5, 0.5, 1) mm give ratios (2, 2, 2.5)...
    """
    n = np.size(mr_spacing) if np.size(mr_spacing) > 1 else np.size(us_spacing)
    mr = np.array(_spacing(mr_spacing, "mr_spacing", max(2, int(n))))
    us = np.array(_spacing(us_spacing, "us_spacing", mr.size))
    if not (isinstance(tol, (int, float)) and 0 <= tol < 1):
        raise ValueError(f"`tol` must be in [0, 1), got {tol!r}")
    ratios = mr / us
    nearest = np.maximum(1, np.rint(ratios))
    bad = np.abs(ratios - nearest) > tol * nearest
    if not bad.any():
        return tuple(int(r) for r in nearest)
    axes = ", ".join(str(a) for a in np.flatnonzero(bad))
    raise ValueError(
        f"MR spacing {_fmt(mr)} mm and US spacing {_fmt(us)} mm give ratios {_fmt(ratios)}, "
        f"not integers within tol={tol} on axis {axes}; resample the US volume to spacing "
        f"{_fmt(mr / nearest)} mm (ratios {tuple(int(r) for r in nearest)}), e.g. with "
        "mrusfusion.io.resample_to_ratio"
    )


def _nearest_common_ratio(ratios: np.ndarray) -> int:
    """The integer nearest (in log scale) to both per-axis ratios."""
    return max(1, int(round(math.sqrt(float(ratios[0] * ratios[1])))))


def ratio_from_spacing(mr_spacing: Spacing, us_spacing: Spacing, *, tol: float = 0.05) -> int:
    """The integer decimation ``ratio`` between the MR and US grids, from their spacings.

    Parameters
    ----------
    mr_spacing, us_spacing : float or (float, float)
        Pixel spacings ``(row, col)`` in mm of the MR and the US image.
    tol : float, default 0.05
        Accepted relative deviation of each per-axis ratio from the integer.

    Returns
    -------
    int
        ``ratio`` such that one MR pixel covers ``ratio x ratio`` US pixels.

    Raises
    ------
    ValueError
        If a spacing is invalid, ``tol`` is not in ``[0, 1)``, or the per-axis ratios are not
        the same integer within ``tol``; the message gives the ratios found and the
        resampling of the US image that would fix it (see :func:`resample_to_ratio`).

    Notes
    -----
    Per axis :math:`a`, :math:`r_a = s^{MR}_a / s^{US}_a`. The model
    :math:`y_{MR} = S H x` decimates by one integer ``ratio`` :math:`d` on both axes, so
    :math:`|r_a - d| \\le \\mathrm{tol}\\, d` is required for both axes.

    Examples
    --------
    >>> from mrusfusion.io import ratio_from_spacing
    >>> ratio_from_spacing((2.0, 2.0), (0.5, 0.5))
    4
    >>> ratio_from_spacing((1.0, 1.0), (0.3, 0.3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: MR/US spacing ratios are 3.333 (rows) and 3.333 (cols), not one integer ...
    """
    mr = _spacing(mr_spacing, "mr_spacing")
    us = _spacing(us_spacing, "us_spacing")
    if not (isinstance(tol, (int, float)) and 0 <= tol < 1):
        raise ValueError(f"`tol` must be in [0, 1), got {tol!r}")
    ratios = np.array(mr) / np.array(us)
    nearest = np.maximum(1, np.rint(ratios))
    if nearest[0] == nearest[1] and np.all(np.abs(ratios - nearest) <= tol * nearest):
        return int(nearest[0])
    target = _nearest_common_ratio(ratios)
    factors = target / ratios
    fixes = [f"a factor {factors[0]:.4g} along rows", f"{factors[1]:.4g} along columns"]
    raise ValueError(
        f"MR/US spacing ratios are {ratios[0]:.4g} (rows) and {ratios[1]:.4g} (cols), not one "
        f"integer within tol={tol}; resample the US image by {' and '.join(fixes)} to reach "
        f"an integer ratio {target} (US spacing ({mr[0] / target:.4g}, {mr[1] / target:.4g}) "
        "mm), e.g. with mrusfusion.io.resample_to_ratio"
    )


def resample_to_ratio(
    us: np.ndarray, us_spacing: Spacing, mr_spacing: Spacing
) -> Tuple[np.ndarray, Spacing, Ratio]:
    """Resample the US image so its spacing divides the MR spacing by an integer.

    Parameters
    ----------
    us : (M, N) or (M, N, P) array_like
        The US image or volume.
    us_spacing, mr_spacing : float or sequence of float
        Pixel spacings in mm, one per axis.

    Returns
    -------
    us_resampled : ndarray
        The US image on the new grid (float32 if ``us`` is float32, else float64). Its first
        pixel has the same outer corner as before; the number of pixels is the largest that
        fits inside the original field of view.
    new_spacing : (float, float)
        ``mr_spacing / ratio``, exactly.
    ratio : int or tuple of int
        The integer nearest to the per-axis ratios ``mr_spacing / us_spacing`` (when the two
        axes round differently, the integer nearest to their geometric mean), at least 1. For
        a 3-D volume, the nearest integer per axis (a tuple).

    Raises
    ------
    ValueError
        If ``us`` is not a real 2-D or 3-D array or a spacing is invalid.

    Notes
    -----
    Cubic B-spline interpolation (order 3, the one of :func:`scipy.ndimage.zoom`), with
    pixel edges aligned (``grid_mode``): output pixel :math:`k` samples the input at
    :math:`(k + 1/2)\\, s' / s - 1/2`, so the output spacing is exactly :math:`s'` rather
    than the rounded value ``zoom`` would give. No anti-alias filter is applied, which is
    harmless for the near-1 factors this is meant for.

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion.io import resample_to_ratio
    >>> us = np.random.default_rng(0).random((32, 32))
    >>> out, spacing, ratio = resample_to_ratio(us, (0.3, 0.3), (1.0, 1.0))
    >>> out.shape, ratio, tuple(round(s, 4) for s in spacing)
    ((28, 28), 3, (0.3333, 0.3333))
    """
    from scipy import ndimage

    us_arr = as_float(us, "`us`")
    if us_arr.ndim not in (2, 3):
        raise ValueError(f"`us` must be a 2-D array (or a 3-D volume), got shape {us_arr.shape}")
    us_sp = np.array(_spacing(us_spacing, "us_spacing", us_arr.ndim))
    mr_sp = np.array(_spacing(mr_spacing, "mr_spacing", us_arr.ndim))
    ratio: Ratio
    if us_arr.ndim == 2:
        ratio = _nearest_common_ratio(mr_sp / us_sp)
        new_sp = mr_sp / ratio
    else:
        ratio = tuple(int(r) for r in np.maximum(1, np.rint(mr_sp / us_sp)))
        new_sp = mr_sp / np.array(ratio)
    scale = new_sp / us_sp  # input pixels per output pixel
    # The 1e-9 guards against 31.999999 becoming 31 when the grids already match.
    shape = tuple(max(1, int(math.floor(n / s + 1e-9))) for n, s in zip(us_arr.shape, scale))
    offset = 0.5 * scale - 0.5
    out = ndimage.affine_transform(
        us_arr, scale, offset=offset, output_shape=shape, order=3, mode="nearest",
        output=us_arr.dtype,
    )
    return out, tuple(float(v) for v in new_sp), ratio


def crop_to_ratio(
    mr: np.ndarray, us: np.ndarray, ratio: Ratio
) -> Tuple[np.ndarray, np.ndarray]:
    """Crop a registered MR/US pair to their common field of view with ``us = ratio * mr``.

    Parameters
    ----------
    mr : (m, n) or (m, n, p) array_like
        The MR image or volume.
    us : (M, N) or (M, N, P) array_like
        The US image or volume, registered to ``mr`` with the same first corner.
    ratio : int or tuple of int
        Decimation ratio, or one per axis (see :func:`ratio_from_spacing`,
        :func:`ratios_from_spacing`).

    Returns
    -------
    mr_c, us_c : ndarray
        Views of the top-left parts of ``mr`` and ``us`` with
        ``us_c.shape == (ratio * mr_c.shape[0], ratio * mr_c.shape[1])``.

    Raises
    ------
    ValueError
        If an input is not 2-D or 3-D, the two differ in dimension, ``ratio`` is not a positive
        integer (or a tuple of one per axis), or the common field of view holds no full MR pixel.

    Notes
    -----
    Both images are assumed to start at the same corner, so rows are removed from the bottom
    and columns from the right: :math:`m' = \\min(m, \\lfloor M/d \\rfloor)` and likewise for
    columns, then ``mr[:m', :n']`` and ``us[:d m', :d n']``.

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion.io import crop_to_ratio
    >>> mr_c, us_c = crop_to_ratio(np.zeros((10, 9)), np.zeros((32, 32)), 4)
    >>> mr_c.shape, us_c.shape
    ((8, 8), (32, 32))
    """
    mr_arr, us_arr = np.asarray(mr), np.asarray(us)
    for name, arr in (("mr", mr_arr), ("us", us_arr)):
        if arr.ndim not in (2, 3):
            raise ValueError(f"`{name}` must be a 2-D array (or a 3-D volume), got shape "
                             f"{arr.shape}")
    if us_arr.ndim != mr_arr.ndim:
        raise ValueError(f"`mr` and `us` must have the same number of dimensions, got shapes "
                         f"{mr_arr.shape} and {us_arr.shape}")
    ratios = _check_ratio(ratio, mr_arr.ndim)
    keep = [min(m, u // r) for m, u, r in zip(mr_arr.shape, us_arr.shape, ratios)]
    if min(keep) < 1:
        raise ValueError(
            f"no common field of view: `us` of shape {us_arr.shape} holds fewer than one MR "
            f"pixel at ratio {ratio} along an axis"
        )
    return (mr_arr[tuple(slice(k) for k in keep)],
            us_arr[tuple(slice(k * r) for k, r in zip(keep, ratios))])


def _check_ratio(ratio, ndim: int) -> Tuple[int, ...]:
    """``ratio`` (an int, or a tuple of ``ndim`` ints) as ``ndim`` positive integers."""
    values = ratio if isinstance(ratio, (tuple, list)) else (ratio,) * ndim
    if len(values) != ndim or any(
            isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1 for r in values):
        raise ValueError(f"`ratio` must be a positive integer or a tuple of {ndim}, got "
                         f"{ratio!r}")
    return tuple(int(r) for r in values)


def resampled_affine(
    affine: np.ndarray, old_spacing: Spacing, new_spacing: Spacing
) -> np.ndarray:
    """The voxel-to-world affine of an image after :func:`resample_to_ratio`.

    Parameters
    ----------
    affine : (4, 4) array_like
        The affine of the image before resampling (rows along voxel axis 0, columns axis 1).
    old_spacing, new_spacing : sequence of float
        Pixel spacings before and after resampling, one per axis (2 or 3).

    Returns
    -------
    ndarray
        A new (4, 4) float64 affine: the first 2 (3) columns scaled by ``new / old``, the
        translation moved so that the outer corner of pixel ``(0, 0)`` stays where it was.

    Raises
    ------
    ValueError
        If ``affine`` is not a finite 4x4 array or a spacing is invalid.

    Notes
    -----
    With edges aligned, new pixel :math:`k` is centred at old index
    :math:`(k + 1/2)\\, s - 1/2` where :math:`s = s'/s_{old}`, so new pixel 0 sits at old
    index :math:`(s - 1)/2` along each axis.

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion.io.geometry import resampled_affine
    >>> a = resampled_affine(np.diag([0.3, 0.3, 1.0, 1.0]), (0.3, 0.3), (0.6, 0.6))
    >>> np.round(a[:2, [0, 1, 3]], 6).tolist()
    [[0.6, 0.0, 0.15], [0.0, 0.6, 0.15]]
    """
    a = np.array(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError(f"`affine` must be a finite 4x4 array, got shape {a.shape}")
    n = max(2, int(np.size(old_spacing)))
    old = np.array(_spacing(old_spacing, "old_spacing", n))
    new = np.array(_spacing(new_spacing, "new_spacing", n))
    scale = new / old
    a[:3, 3] = a[:3, 3] + a[:3, :n] @ ((scale - 1) / 2)
    a[:3, :n] *= scale
    return a
