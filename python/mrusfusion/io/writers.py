"""Writers: :func:`save` stores an image (and its spacing where the format keeps it).

Each writer fills a temporary path; :func:`~mrusfusion.io.atomic.write_atomic` moves it into
place, so a failed or refused write never leaves a partial file or touches an existing one.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .atomic import write_atomic
from .image import (
    SPACING_KEY,
    Image,
    PathLike,
    Spacing,
    as_float,
    by_extension,
    check_spacing,
    require,
)

__all__ = ["save", "WRITE_FORMATS"]

#: Extensions :func:`save` can write.
WRITE_FORMATS = (".npy", ".npz", ".nii", ".nii.gz", ".png", ".tif", ".tiff", ".mat")

_MATLAB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


def _write_npy(tmp: str, data: np.ndarray, spacing, affine, bit_depth, variable) -> None:
    np.save(tmp, data, allow_pickle=False)


def _write_npz(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    arrays = {"data": data}
    if spacing is not None:
        arrays[SPACING_KEY] = np.asarray(spacing, dtype=np.float64)
    np.savez(tmp, **arrays)


def _write_nifti(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    nib = require("nibabel", "writing NIfTI files")
    if affine is None:
        affine = np.eye(4)
        if spacing is not None:
            for axis, step in enumerate(spacing):
                affine[axis, axis] = step
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(data.dtype)
    img.header.set_xyzt_units("mm")
    nib.save(img, tmp)


def _write_png(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    iio = require("imageio.v3", "writing PNG files")
    if not np.all(np.isfinite(data)):
        raise ValueError("cannot write NaN or infinite values to PNG")
    top = 2 ** bit_depth - 1
    lo, hi = float(data.min()), float(data.max())
    scaled = (data - lo) * (top / (hi - lo)) if hi > lo else np.zeros_like(data)
    out = np.rint(scaled).astype(np.uint8 if bit_depth == 8 else np.uint16)
    iio.imwrite(tmp, out, extension=".png")


def _write_tiff(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    tifffile = require("tifffile", "writing TIFF files")
    if data.ndim == 3:  # pages of grey, never RGB
        tifffile.imwrite(tmp, data.astype(np.float32), photometric="minisblack")
    else:
        tifffile.imwrite(tmp, data.astype(np.float32))


def _write_mat(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    from scipy.io import savemat

    arrays = {variable: data}
    if spacing is not None:
        arrays[SPACING_KEY] = np.asarray(spacing, dtype=np.float64).reshape(1, -1)
    savemat(tmp, arrays, format="5", do_compression=True)


_WRITERS = {
    ".npy": _write_npy,
    ".npz": _write_npz,
    ".nii": _write_nifti,
    ".nii.gz": _write_nifti,
    ".png": _write_png,
    ".tif": _write_tiff,
    ".tiff": _write_tiff,
    ".mat": _write_mat,
}


def save(
    path: PathLike,
    image: Union[Image, np.ndarray],
    *,
    spacing: Optional[Spacing] = None,
    overwrite: bool = False,
    affine: Optional[np.ndarray] = None,
    bit_depth: int = 8,
    variable: str = "image",
    volume: bool = False,
) -> Path:
    """Write a 2-D image or a 3-D volume (and its spacing, where the format keeps it) safely.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; its extension picks the format: ``.npy`` (raw float, no spacing),
        ``.npz`` (arrays ``data`` and ``spacing``), ``.nii``/``.nii.gz`` (float32 or float64
        with an affine), ``.png`` (rescaled to 8 or 16 bits, no spacing), ``.tif``/``.tiff``
        (raw float32, no spacing), ``.mat`` (MATLAB v5, variables ``image`` and ``spacing``).
    image : Image or array_like
        The image. An :class:`Image` brings its own spacing.
    spacing : float or (float, float), optional
        Pixel spacing ``(row, col)`` in mm (one entry per axis for a volume); overrides
        ``image.spacing``.
    overwrite : bool, default False
        Replace an existing file. Without it an existing target is left untouched.
    affine : (4, 4) array_like, optional
        NIfTI only: the voxel-to-world affine to store; overrides the diagonal affine built
        from ``spacing`` (the stored spacing then follows the affine's column norms).
    bit_depth : {8, 16}, default 8
        PNG only: bits per pixel of the rescaled image.
    variable : str, default "image"
        MATLAB only: name of the variable holding the image.
    volume : bool, default False
        Accept a 3-D volume (``.npy``, ``.npz``, NIfTI, TIFF pages, ``.mat``; not PNG). NIfTI
        keeps the voxel axes as given, with ``affine`` or a diagonal one from ``spacing``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        If the target folder does not exist.
    ValueError
        If the extension cannot be written (the message lists the supported ones), the image
        is not a real 2-D array, or an option is invalid (``bit_depth``, ``variable``,
        ``affine``, non-finite values for PNG).
    ImportError
        If the optional writer for the format is not installed.

    Notes
    -----
    The file is first written to a temporary file in the target folder
    (:func:`tempfile.mkstemp`), flushed to disk, given the usual permissions
    (``0o666 & ~umask``, or those of the file it replaces), then moved into place in one
    atomic step (:func:`os.replace`, or a hard link when ``overwrite`` is false so a file
    created meanwhile is not clobbered). On any failure the temporary file is removed and the
    previous file, if any, is unchanged. The data follow the package dtype policy (float32
    stays float32, anything else is written as float64), except TIFF (always float32) and PNG.
    PNG maps ``[min, max]`` linearly onto ``[0, 2**bit_depth - 1]``; the mapping is lost.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from mrusfusion.io import load, save
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> x = np.arange(32 * 32, dtype=float).reshape(32, 32)
    >>> path = save(folder / "us.npy", x)
    >>> bool(np.array_equal(load(path).data, x))
    True
    >>> save(folder / "us.npy", x)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    FileExistsError: ...us.npy already exists; pass overwrite=True to replace it
    """
    target, ext, writer = by_extension(path, _WRITERS, "write", WRITE_FORMATS)
    if isinstance(image, Image):
        data, own_spacing = image.data, image.spacing
    else:
        data, own_spacing = image, None
    data = as_float(data, "`image`")
    if volume and data.ndim == 3:
        if ext == ".png":
            raise ValueError("a 3-D volume cannot be written to PNG; use .nii.gz, .npz or .npy")
    elif data.ndim != 2:
        hint = "" if volume else "; pass `volume=True` to write a 3-D volume"
        raise ValueError(f"`image` must be a 2-D array, got shape {data.shape}{hint}")
    final_spacing = check_spacing(spacing if spacing is not None else own_spacing, "spacing",
                                  data.ndim)
    if bit_depth not in (8, 16):
        raise ValueError(f"`bit_depth` must be 8 or 16, got {bit_depth!r}")
    if not isinstance(variable, str) or not _MATLAB_NAME.match(variable) or (
            variable == SPACING_KEY):
        raise ValueError(
            f"`variable` must be a MATLAB identifier other than 'spacing', got {variable!r}"
        )
    if affine is not None:
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ValueError(f"`affine` must be a finite 4x4 array, got shape {affine.shape}")
    return write_atomic(target, lambda tmp: writer(tmp, data, final_spacing, affine, bit_depth,
                                                   variable), overwrite=overwrite, suffix=ext)
