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

Spacing = Tuple[float, float]
PathLike = Union[str, "os.PathLike[str]"]

#: Name of the array holding the pixel spacing in ``.npz`` and ``.mat`` containers.
SPACING_KEY = "spacing"
INSTALL_HINT = 'pip install "mrusfusion[io]"'


@dataclasses.dataclass(frozen=True, eq=False)
class Image:
    """A 2-D image with its pixel spacing.

    Parameters
    ----------
    data : numpy.ndarray
        2-D array indexed ``[row, col]``; float64, or float32 if the file held float32.
    spacing : tuple of float or None
        Pixel spacing ``(row, col)`` in millimetres, ``None`` if unknown.
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
    def shape(self) -> Tuple[int, int]:
        """Shape ``(rows, cols)`` of :attr:`data`."""
        return tuple(self.data.shape)  # type: ignore[return-value]

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


def check_spacing(spacing: Any, name: str = "spacing") -> Optional[Spacing]:
    """Return ``spacing`` as a ``(row, col)`` tuple of positive finite floats (or None)."""
    if spacing is None:
        return None
    arr = np.asarray(spacing, dtype=float).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"`{name}` must be two positive finite numbers (row, col) in mm, got {spacing!r}"
        )
    return (float(arr[0]), float(arr[1]))


def as_float(data: Any, what: str) -> np.ndarray:
    """Apply the package dtype policy: float32 stays, other reals become float64 (a copy)."""
    data = np.asarray(data)
    if np.iscomplexobj(data):
        raise ValueError(f"{what} holds complex data; a real image is required")
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{what} holds non-numeric data of dtype {data.dtype}")
    dtype = np.float32 if data.dtype == np.float32 else np.float64
    return np.array(data, dtype=dtype, order="C", copy=True)
