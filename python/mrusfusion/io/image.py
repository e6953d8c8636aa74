"""The :class:`Image` type and the conventions its readers and writers share.

One place for what :mod:`~mrusfusion.io.readers` and :mod:`~mrusfusion.io.writers` must agree
on: the dtype policy, the ``(row, col)`` spacing in mm, the name under which containers store
the spacing, the extension lookup and the lazy import of the optional format libraries.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

#: ``(row, col)`` for an image, ``(axis 0, axis 1, axis 2)`` for a volume, in mm.
Spacing = Tuple[float, ...]
PathLike = Union[str, "os.PathLike[str]"]

#: Name of the array holding the pixel spacing in ``.npz`` and ``.mat`` containers.
SPACING_KEY = "spacing"
INSTALL_HINT = 'pip install "mrusfusion[io]"'


@dataclasses.dataclass(frozen=True, eq=False)
class Image:
    """A 2-D image or a 3-D volume with its pixel (voxel) spacing.

    Parameters
    ----------
    data : numpy.ndarray
        2-D array indexed ``[row, col]``, or a 3-D volume (``load(..., volume=True)``) indexed
        by the file's voxel axes; float64, or float32 if the file held float32.
    spacing : tuple of float or None
        Pixel spacing ``(row, col)`` in millimetres (one entry per axis of a volume), ``None``
        if unknown.
    meta : dict
        What else was learnt from the file: always ``"format"`` and ``"path"``; depending on
        the format ``"affine"`` (NIfTI), ``"slice"``, ``"variable"``, ``"modality"``,
        ``"photometric"``, ``"spacing_source"``.

    Examples
    --------
    >>> import numpy as np
    >>> from mrusfusion.io import Image
    >>> Image(np.zeros((32, 32)), (0.5, 0.5))
    Image(shape=(32, 32), dtype=float64, spacing=(0.5, 0.5), meta={})
    """

    data: np.ndarray
    spacing: Optional[Spacing] = None
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape ``(rows, cols)`` of :attr:`data` (three entries for a volume)."""
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        """2 for an image, 3 for a volume."""
        return int(self.data.ndim)

    def __repr__(self) -> str:
        meta = {k: v for k, v in self.meta.items() if k in ("format", "slice", "variable")}
        return (
            f"Image(shape={self.shape}, dtype={self.data.dtype}, spacing={self.spacing}, "
            f"meta={meta})"
        )


def require(module: str, what: str) -> Any:
    """Import an optional reader lazily, with an install hint on failure."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{what} needs the optional package `{module}`: {INSTALL_HINT} "
            f"(or pip install {module})"
        ) from err


def _extension(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def by_extension(
    path: PathLike, table: Mapping[str, Any], verb: str, names: Optional[Sequence[str]] = None
) -> Tuple[Path, str, Any]:
    """``(Path, extension, table[extension])``, or a ValueError listing what is supported."""
    p = Path(os.fspath(path)).expanduser()
    ext = _extension(p)
    entry = table.get(ext)
    if entry is None:
        raise ValueError(
            f"cannot {verb} {p.name!r}: unsupported extension {ext or '(none)'!r}; supported: "
            f"{', '.join(names if names is not None else table)}"
        )
    return p, ext, entry


def check_spacing(spacing: Any, name: str = "spacing", ndim: int = 2) -> Optional[Spacing]:
    """Return ``spacing`` as a tuple of ``ndim`` positive finite floats (or None); a single
    number is the same spacing on every axis."""
    if spacing is None:
        return None
    arr = np.asarray(spacing, dtype=float).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, ndim)
    if arr.size != ndim or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        what = "two positive finite numbers (row, col)" if ndim == 2 else (
            f"{ndim} positive finite numbers (one per axis)")
        raise ValueError(f"`{name}` must be {what} in mm, got {spacing!r}")
    return tuple(float(a) for a in arr)


def as_float(data: Any, what: str) -> np.ndarray:
    """Apply the package dtype policy: float32 stays, other reals become float64 (a copy)."""
    data = np.asarray(data)
    if np.iscomplexobj(data):
        raise ValueError(f"{what} holds complex data; a real image is required")
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{what} holds non-numeric data of dtype {data.dtype}")
    dtype = np.float32 if data.dtype == np.float32 else np.float64
    return np.array(data, dtype=dtype, order="C", copy=True)


# MATLAB's rgb2gray weights (ITU-R BT.601 luma); US screenshots are usually made for it.
_LUMA = np.array([0.2989, 0.5870, 0.1140])


def rgb_to_grey(data: np.ndarray) -> np.ndarray:
    """Luminance of an RGB(A) image (alpha dropped); grey+alpha keeps the grey channel."""
    if data.shape[-1] == 2:
        return data[..., 0]
    return data[..., :3].astype(np.float64) @ _LUMA


def check_index(slice_: Any, n: int) -> int:
    """``slice_`` as an index into ``n`` images (negative counts from the end)."""
    if isinstance(slice_, bool) or not isinstance(slice_, (int, np.integer)):
        raise TypeError(f"`slice` must be an integer, got {slice_!r}")
    k = int(slice_)
    if not -n <= k < n:
        raise ValueError(f"`slice` must satisfy {-n} <= slice < {n}, got {k}")
    return k % n


def pick_slice(data: np.ndarray, slice_: Optional[int], axis: int, what: str,
               volume: bool = False) -> np.ndarray:
    """Reduce ``data`` to 2-D, selecting ``slice_`` along ``axis`` of a 3-D stack; with
    ``volume``, return a 2-D image or a 3-D volume whole (``slice_`` is then refused)."""
    if volume:
        if slice_ is not None:
            raise ValueError("`slice` and `volume=True` exclude each other: a slice is 2-D")
        if data.ndim not in (2, 3):
            raise ValueError(f"{what} must be a 2-D image or a 3-D volume, got shape "
                             f"{data.shape}")
        return data
    if data.ndim == 2:
        if slice_ is not None:
            raise ValueError(f"`slice` was given but {what} is 2-D with shape {data.shape}")
        return data
    if data.ndim != 3:
        raise ValueError(f"{what} must be 2-D or a 3-D stack, got shape {data.shape}")
    n = data.shape[axis]
    if slice_ is None:
        if n == 1:
            return np.take(data, 0, axis=axis)
        axis_name = "last" if axis in (-1, 2) else "first"
        raise ValueError(
            f"{what} is a 3-D volume of shape {data.shape}; pass `slice=` (an index along the "
            f"{axis_name} axis, 0 <= slice < {n}) to choose one image, or `volume=True` to "
            "read it whole"
        )
    k = check_index(slice_, n)
    return np.take(data, k, axis=axis)
