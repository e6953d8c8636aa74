"""Bring a loaded MR/US pair onto the grids of the fusion model, in one call.

:func:`prepare_pair` decides the decimation ``ratio`` (from the pixel spacings, a given value or
the shapes), resamples the US image when asked, crops both images to their common field of
view when asked, and refuses anything that would not satisfy ``us.shape == ratio * mr.shape``
(DESIGN.md, observation model :math:`y_{MR} = S H x`). It is the step between :func:`load` and
:func:`mrusfusion.fuse`; registration will plug in here.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple, Union

import numpy as np

from .._validation import check_int, infer_ratio
from .geometry import (Ratio, crop_to_ratio, ratio_from_spacing, ratios_from_spacing,
                       resample_to_ratio, resampled_affine)
from .image import Image, Spacing, as_float, check_spacing

__all__ = ["PreparedPair", "prepare_pair", "field_of_view"]


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedPair:
    """An MR/US pair on grids with ``us.shape == (ratio * mr.shape[0], ratio * mr.shape[1])``.

    Attributes
    ----------
    mr, us : numpy.ndarray
        The MR and US images (2-D) or volumes (3-D), ready for :func:`mrusfusion.fuse`.
    ratio : int or tuple of int
        The decimation ratio between the two grids: one int for images, one per axis (a
        tuple) for volumes.
    ratio_source : str
        Where ``ratio`` came from: ``"spacings"``, ``"spacings, US resampled"``,
        ``"ratio argument"`` or ``"shapes"``.
    mr_spacing, us_spacing : (float, float) or None
        Pixel spacings in mm after resampling; when only one image had a spacing, the other
        is derived from it and ``ratio``. ``None`` if neither image had one.
    us_affine : (4, 4) numpy.ndarray or None
        The US image's affine (NIfTI, DICOM series), moved to the resampled grid; cropping
        keeps the first pixel, so it needs no change. ``None`` if the US file had none. The
        fused output lives on this grid.
    notes : list of str
        Human-readable lines about what was resampled or cropped (empty if nothing was).
    mask : numpy.ndarray of bool or None
        The US field of view on the US grid (resampled and cropped with it), if a ``mask``
        was given to :func:`prepare_pair`.
    """

    mr: np.ndarray
    us: np.ndarray
    ratio: Ratio
    ratio_source: str
    mr_spacing: Optional[Spacing]
    us_spacing: Optional[Spacing]
    us_affine: Optional[np.ndarray]
    notes: List[str]
    mask: Optional[np.ndarray] = None

    @property
    def message(self) -> str:
        """One line: both shapes, the ratio and where it came from."""
        mr, us = ("x".join(map(str, a.shape)) for a in (self.mr, self.us))
        ratio = self.ratio if isinstance(self.ratio, int) else ",".join(map(str, self.ratio))
        return f"MR {mr}, US {us}, ratio {ratio} (from {self.ratio_source})"


def _pixels(image: Image, name: str, ndim: Optional[int] = None
            ) -> Tuple[np.ndarray, Optional[Spacing]]:
    """The data (dtype policy applied only where needed, so loaded data are not copied), 2-D
    or 3-D, or of ``ndim`` dimensions when given."""
    if not isinstance(image, Image):
        raise TypeError(
            f"`{name}` must be a mrusfusion.io.Image (as returned by mrusfusion.io.load), got "
            f"{type(image).__name__}"
        )
    data = image.data
    if not (isinstance(data, np.ndarray) and data.dtype in (np.float32, np.float64)):
        data = as_float(data, f"`{name}.data`")
    if ndim is not None and (data.ndim != ndim or min(data.shape) < 1):
        what = "2-D array" if ndim == 2 else "3-D volume"
        raise ValueError(f"`{name}.data` must be a non-empty {what} like `mr.data`, got shape "
                         f"{data.shape}")
    if data.ndim not in (2, 3) or min(data.shape) < 1:
        raise ValueError(f"`{name}.data` must be a non-empty 2-D array (or 3-D volume), got "
                         f"shape {data.shape}")
    return data, check_spacing(image.spacing, f"{name}.spacing", data.ndim)


def _volume_ratio(mr: np.ndarray, us: np.ndarray) -> Tuple[int, ...]:
    ratios = [u // m if m and u % m == 0 else 0 for m, u in zip(mr.shape, us.shape)]
    if min(ratios) < 1:
        raise ValueError(
            f"the volume shapes MR {mr.shape} and US {us.shape} are not in an integer ratio per "
            "axis; `ratio` with `crop=True` (--ratio A,B,C --crop) crops both to their common "
            "field of view, and the voxel spacings (--mr-spacing/--us-spacing) give the ratio")
    return tuple(ratios)


def _as_mask(mask, shape) -> np.ndarray:
    data = mask.data if isinstance(mask, Image) else np.asarray(mask)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"`mask` must be a boolean or real array, got dtype {data.dtype}")
    if data.shape != tuple(shape):
        raise ValueError(f"`mask` must have the shape of the US image {tuple(shape)}, got "
                         f"{data.shape}")
    return np.asarray(data > 0.5 if data.dtype.kind == "f" else data != 0)


def _shape_ratio(mr: np.ndarray, us: np.ndarray) -> int:
    try:
        return infer_ratio(mr.shape, us.shape)
    except ValueError as exc:
        raise ValueError(
            f"{exc}; `ratio` with `crop=True` (--ratio N --crop) crops both to their common field "
            "of view, and the pixel spacings (--mr-spacing/--us-spacing) give the ratio"
        ) from None


def prepare_pair(
    mr: Image,
    us: Image,
    *,
    ratio: Optional[Union[int, Tuple[int, ...]]] = None,
    resample_us: bool = False,
    crop: bool = False,
    mask=None,
) -> PreparedPair:
    """Decide the ratio of a registered MR/US pair and bring both images onto matching grids.

    Parameters
    ----------
    mr, us : Image
        The MR and the US image (see :func:`load`), registered, with the same top-left outer
        corner; or two volumes (``load(..., volume=True)``). ``us.meta["affine"]``, if
        present, follows the US grid.
    ratio : int or tuple of int, optional
        The decimation ratio (for volumes an int or one per axis). With both spacings known
        it must agree with them; without, it replaces the inference from the shapes (and is
        needed for ``crop``).
    resample_us : bool, default False
        Resample the US image so that its spacing divides the MR spacing by an integer
        (:func:`resample_to_ratio`); needs both spacings.
    crop : bool, default False
        Crop both images to their common field of view (:func:`crop_to_ratio`).
    mask : Image or array_like, optional
        The US field of view (e.g. a fan, ``us.data > 1e-6``) on the US grid; it is resampled
        and cropped with the US image into ``PreparedPair.mask``.

    Returns
    -------
    PreparedPair
        ``mr`` and ``us`` with ``us.shape == ratio * mr.shape`` (per axis), the ratio (a tuple
        of per-axis ratios for volumes) and its source, the spacings, the US affine, the mask
        and notes on what was changed.

    Raises
    ------
    TypeError
        If ``mr`` or ``us`` is not an :class:`Image`, ``ratio`` is not an integer (or a tuple
        of them), or ``mask`` is not numeric.
    ValueError
        If ``ratio`` is below 1 or has the wrong length; if the two differ in dimension; if
        ``mask`` is not of the US shape; if the spacings are not in an integer ratio and
        ``resample_us`` is false; if ``ratio`` contradicts the spacings; if ``resample_us`` is
        set without both spacings; if ``crop`` is set with neither ``ratio`` nor both spacings;
        if the shapes give no integer ratio; or if, after all this, ``us.shape`` is not
        ``ratio * mr.shape``. Each message names the argument and, in parentheses, the
        command-line option of ``mrusfusion fuse`` that sets it.

    Notes
    -----
    The ratio comes from the first that applies: both spacings, through
    :func:`ratio_from_spacing` (:func:`ratios_from_spacing` for volumes; after
    :func:`resample_to_ratio` if ``resample_us``), checked
    against ``ratio`` if given; ``ratio``; the shapes, when :math:`M/m = N/n` is an integer.
    Then ``crop`` keeps ``mr[:m', :n']`` and ``us[:d m', :d n']``. A missing spacing is
    derived from the other, :math:`s^{US} = s^{MR} / d`, and the US affine after resampling
    keeps the outer corner of the first pixel (see ``geometry.resampled_affine``).

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion.io import Image, prepare_pair
    >>> mr = Image(np.zeros((16, 16)), (2.0, 2.0))
    >>> pair = prepare_pair(mr, Image(np.zeros((32, 32)), (1.0, 1.0)))
    >>> pair.message
    'MR 16x16, US 32x32, ratio 2 (from spacings)'
    >>> pair = prepare_pair(mr, Image(np.zeros((33, 33)), (0.9, 0.9)), resample_us=True, crop=True)
    >>> pair.message, pair.us_spacing
    ('MR 14x14, US 28x28, ratio 2 (from spacings, US resampled)', (1.0, 1.0))
    >>> pair.notes[1]
    'cropped MR (16, 16) -> (14, 14), US (29, 29) -> (28, 28)'
    """
    mr_data, mr_sp = _pixels(mr, "mr")
    us_data, us_sp = _pixels(us, "us", mr_data.ndim)
    nd = mr_data.ndim
    if ratio is not None:
        ratio = _ratio_argument(ratio, nd)
    us_affine = us.meta.get("affine")
    fov = None if mask is None else _as_mask(mask, us_data.shape)
    notes: List[str] = []
    found: Ratio
    if mr_sp is not None and us_sp is not None:
        if resample_us:
            old_shape, old_sp = us_data.shape, us_sp
            us_data, us_sp, found = resample_to_ratio(us_data, us_sp, mr_sp)
            if fov is not None:
                fov = resample_to_ratio(fov.astype(np.float64), old_sp, mr_sp)[0] > 0.5
            if us_affine is not None:
                us_affine = resampled_affine(us_affine, old_sp, us_sp)
            source = "spacings, US resampled"
            notes.append(f"resampled US {_shape(old_shape)} {_mm(old_sp)} mm -> "
                         f"{_shape(us_data.shape)} {_mm(us_sp)} mm")
        else:
            try:
                found = (ratio_from_spacing(mr_sp, us_sp) if nd == 2
                         else ratios_from_spacing(mr_sp, us_sp))
            except ValueError as exc:
                raise ValueError(
                    f"{exc}, or let prepare_pair do it: `resample_us=True` (--resample-us)"
                ) from None
            source = "spacings"
        if ratio is not None and ratio != found:
            raise ValueError(
                f"`ratio`={ratio} contradicts the ratio {found} of the pixel spacings (MR "
                f"{mr_sp} mm, US {us_sp} mm); drop `ratio` (--ratio) or correct the spacings "
                "(--mr-spacing/--us-spacing)"
            )
    else:
        if resample_us:
            missing = [n for n, sp in (("MR", mr_sp), ("US", us_sp)) if sp is None]
            which = "the MR and US images have" if len(missing) == 2 else (
                f"the {missing[0]} image has")
            raise ValueError(
                f"`resample_us` (--resample-us) needs the pixel spacing of both images, but "
                f"{which} none; give the spacings (--mr-spacing/--us-spacing)"
            )
        if ratio is not None:
            found, source = ratio, "ratio argument"
        elif crop:
            raise ValueError("`crop` (--crop) needs the ratio: pass `ratio` (--ratio N) or the "
                             "pixel spacings (--mr-spacing/--us-spacing)")
        else:
            found = _shape_ratio(mr_data, us_data) if nd == 2 else _volume_ratio(mr_data, us_data)
            source = "shapes"
    ratios = (found,) * nd if isinstance(found, int) else tuple(found)
    if crop:
        old = (mr_data.shape, us_data.shape)
        mr_data, us_data = crop_to_ratio(mr_data, us_data, found)
        mr_data, us_data = np.ascontiguousarray(mr_data), np.ascontiguousarray(us_data)
        if fov is not None:
            fov = np.ascontiguousarray(fov[tuple(slice(n) for n in us_data.shape)])
        if (mr_data.shape, us_data.shape) != old:
            notes.append(f"cropped MR {old[0]} -> {mr_data.shape}, US {old[1]} -> "
                         f"{us_data.shape}")
    expected = tuple(r * n for r, n in zip(ratios, mr_data.shape))
    if us_data.shape != expected:
        raise ValueError(
            f"with ratio {found} the US image must have shape ratio * MR shape = {expected}, "
            f"got US {us_data.shape} and MR {mr_data.shape}; pass `crop=True` (--crop) to crop "
            "both to their common field of view"
        )
    if us_sp is None and mr_sp is not None:
        us_sp = tuple(h / r for h, r in zip(mr_sp, ratios))
    if mr_sp is None and us_sp is not None:
        mr_sp = tuple(h * r for h, r in zip(us_sp, ratios))
    return PreparedPair(mr=mr_data, us=us_data, ratio=found, ratio_source=source,
                        mr_spacing=mr_sp, us_spacing=us_sp, us_affine=us_affine, notes=notes,
                        mask=fov)


def _shape(shape) -> str:
    return "x".join(str(n) for n in shape)


def _mm(spacing) -> str:
    return "(" + ", ".join(f"{h:.4g}" for h in spacing) + ")"


def _ratio_argument(ratio, nd: int) -> Ratio:
    """``ratio`` of :func:`prepare_pair`: an int for an image; an int or a tuple of three for
    a volume (a tuple always)."""
    if nd == 2 or not isinstance(ratio, (tuple, list)):
        value = check_int(ratio, "ratio", low=1)
        return value if nd == 2 else (value,) * nd
    if len(ratio) != nd:
        raise ValueError(f"`ratio` must have {nd} entries (one per axis), got {tuple(ratio)}")
    return tuple(check_int(r, "ratio", low=1) for r in ratio)


def field_of_view(us, *, threshold: float = 1e-6) -> np.ndarray:
    """The field of view of a US image or volume: where it holds data, holes filled.

    Parameters
    ----------
    us : Image or array_like, 2-D or 3-D
        The US image (a fan or cone of data in a box padded with zeros or a tiny value).
    threshold : float, default 1e-6
        Values above it are data.

    Returns
    -------
    numpy.ndarray of bool
        ``us > threshold`` with the enclosed holes filled (dark speckle inside the fan
        stays in the field of view), the shape of ``us``; usable as ``mask=`` of
        :func:`prepare_pair` and of :func:`mrusfusion.fuse`.

    Raises
    ------
    ValueError
        If ``us`` is not a 2-D or 3-D real array, ``threshold`` is not finite, or nothing
        lies above it.

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion.io import field_of_view
    >>> us = np.zeros((32, 32)); us[8:24, 8:24] = 0.5; us[15, 15] = 0.0
    >>> int(field_of_view(us).sum())
    256
    """
    from scipy import ndimage

    data = as_float(us.data if isinstance(us, Image) else us, "`us`")
    if data.ndim not in (2, 3):
        raise ValueError(f"`us` must be a 2-D image or a 3-D volume, got shape {data.shape}")
    if not np.isfinite(threshold):
        raise ValueError(f"`threshold` must be finite, got {threshold!r}")
    inside = data > threshold
    if not inside.any():
        raise ValueError(f"no value of `us` lies above `threshold`={threshold:g}")
    return np.asarray(ndimage.binary_fill_holes(inside), dtype=bool)
