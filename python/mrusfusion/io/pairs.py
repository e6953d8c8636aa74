"""Bring a loaded MR/US pair onto the grids of the fusion model, in one call.

:func:`prepare_pair` decides the decimation ``ratio`` (from the pixel spacings, a given value or
the shapes), resamples the US image when asked, crops both images to their common field of
view when asked, and refuses anything that would not satisfy ``us.shape == ratio * mr.shape``
(DESIGN.md, observation model :math:`y_{MR} = S H x`). It is the step between :func:`load` and
:func:`mrusfusion.fuse`; registration will plug in here.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import numpy as np

from .._validation import check_int, infer_ratio
from .geometry import crop_to_ratio, ratio_from_spacing, resample_to_ratio, resampled_affine
from .image import Image, Spacing, as_float, check_spacing

__all__ = ["PreparedPair", "prepare_pair"]


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedPair:
    """An MR/US pair on grids with ``us.shape == (ratio * mr.shape[0], ratio * mr.shape[1])``.

    Attributes
    ----------
    mr, us : numpy.ndarray
        The MR and US images, ready for :func:`mrusfusion.fuse`.
    ratio : int
        The decimation ratio between the two grids.
    ratio_source : str
        Where ``ratio`` came from: ``"spacings"``, ``"spacings, US resampled"``,
        ``"ratio argument"`` or ``"shapes"``.
    mr_spacing, us_spacing : (float, float) or None
        Pixel spacings in mm after resampling; when only one image had a spacing, the other
        is derived from it and ``ratio``. ``None`` if neither image had one.
    us_affine : (4, 4) numpy.ndarray or None
        The US image's NIfTI affine, moved to the resampled grid; cropping keeps the first
        pixel, so it needs no change. ``None`` if the US file had none.
    notes : list of str
        Human-readable lines about what was resampled or cropped (empty if nothing was).
    """

    mr: np.ndarray
    us: np.ndarray
    ratio: int
    ratio_source: str
    mr_spacing: Optional[Spacing]
    us_spacing: Optional[Spacing]
    us_affine: Optional[np.ndarray]
    notes: List[str]

    @property
    def message(self) -> str:
        """One line: both shapes, the ratio and where it came from."""
        (m0, m1), (u0, u1) = self.mr.shape, self.us.shape
        return f"MR {m0}x{m1}, US {u0}x{u1}, ratio {self.ratio} (from {self.ratio_source})"


def _pixels(image: Image, name: str) -> Tuple[np.ndarray, Optional[Spacing]]:
    """The data (dtype policy applied only where needed, so loaded data are not copied)."""
    if not isinstance(image, Image):
        raise TypeError(
            f"`{name}` must be a mrusfusion.io.Image (as returned by mrusfusion.io.load), got "
            f"{type(image).__name__}"
        )
    data = image.data
    if not (isinstance(data, np.ndarray) and data.dtype in (np.float32, np.float64)):
        data = as_float(data, f"`{name}.data`")
    if data.ndim != 2 or min(data.shape) < 1:
        raise ValueError(f"`{name}.data` must be a non-empty 2-D array, got shape {data.shape}")
    return data, check_spacing(image.spacing, f"{name}.spacing")


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
    ratio: Optional[int] = None,
    resample_us: bool = False,
    crop: bool = False,
) -> PreparedPair:
    """Decide the ratio of a registered MR/US pair and bring both images onto matching grids.

    Parameters
    ----------
    mr, us : Image
        The MR and the US image (see :func:`load`), registered, with the same top-left outer
        corner. ``us.meta["affine"]``, if present, follows the US grid.
    ratio : int, optional
        The decimation ratio. With both spacings known it must agree with them; without, it
        replaces the inference from the shapes (and is needed for ``crop``).
    resample_us : bool, default False
        Resample the US image so that its spacing divides the MR spacing by an integer
        (:func:`resample_to_ratio`); needs both spacings.
    crop : bool, default False
        Crop both images to their common field of view (:func:`crop_to_ratio`).

    Returns
    -------
    PreparedPair
        ``mr`` and ``us`` with ``us.shape == ratio * mr.shape``, the ratio and its source, the
        spacings, the US affine and notes on what was changed.

    Raises
    ------
    TypeError
        If ``mr`` or ``us`` is not an :class:`Image`, or ``ratio`` is not an integer.
    ValueError
        If ``ratio`` is below 1; if the spacings are not in an integer ratio and
        ``resample_us`` is false; if ``ratio`` contradicts the spacings; if ``resample_us`` is
        set without both spacings; if ``crop`` is set with neither ``ratio`` nor both spacings;
        if the shapes give no integer ratio; or if, after all this, ``us.shape`` is not
        ``ratio * mr.shape``. Each message names the argument and, in parentheses, the
        command-line option of ``mrusfusion fuse`` that sets it.

    Notes
    -----
    The ratio comes from the first that applies: both spacings, through
    :func:`ratio_from_spacing` (after :func:`resample_to_ratio` if ``resample_us``), checked
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
    us_data, us_sp = _pixels(us, "us")
    if ratio is not None:
        ratio = check_int(ratio, "ratio", low=1)
    us_affine = us.meta.get("affine")
    notes: List[str] = []
    if mr_sp is not None and us_sp is not None:
        if resample_us:
            old_shape, old_sp = us_data.shape, us_sp
            us_data, us_sp, found = resample_to_ratio(us_data, us_sp, mr_sp)
            if us_affine is not None:
                us_affine = resampled_affine(us_affine, old_sp, us_sp)
            source = "spacings, US resampled"
            notes.append(f"resampled US {old_shape[0]}x{old_shape[1]} ({old_sp[0]:.4g}, "
                         f"{old_sp[1]:.4g}) mm -> {us_data.shape[0]}x{us_data.shape[1]} "
                         f"({us_sp[0]:.4g}, {us_sp[1]:.4g}) mm")
        else:
            try:
                found = ratio_from_spacing(mr_sp, us_sp)
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
            found, source = _shape_ratio(mr_data, us_data), "shapes"
    if crop:
        old = (mr_data.shape, us_data.shape)
        mr_data, us_data = crop_to_ratio(mr_data, us_data, found)
        mr_data, us_data = np.ascontiguousarray(mr_data), np.ascontiguousarray(us_data)
        if (mr_data.shape, us_data.shape) != old:
            notes.append(f"cropped MR {old[0]} -> {mr_data.shape}, US {old[1]} -> "
                         f"{us_data.shape}")
    expected = (found * mr_data.shape[0], found * mr_data.shape[1])
    if us_data.shape != expected:
        raise ValueError(
            f"with ratio {found} the US image must have shape ratio * MR shape = {expected}, "
            f"got US {us_data.shape} and MR {mr_data.shape}; pass `crop=True` (--crop) to crop "
            "both to their common field of view"
        )
    if us_sp is None and mr_sp is not None:
        us_sp = (mr_sp[0] / found, mr_sp[1] / found)
    if mr_sp is None and us_sp is not None:
        mr_sp = (us_sp[0] * found, us_sp[1] * found)
    return PreparedPair(mr=mr_data, us=us_data, ratio=found, ratio_source=source,
                        mr_spacing=mr_sp, us_spacing=us_sp, us_affine=us_affine, notes=notes)
