"""Readers: :func:`load` turns a medical or ordinary image file into an :class:`Image`.

Each reader returns ``(data, spacing, meta)`` straight from its file format; :func:`load`
applies what is common to all (dtype policy, 2-D check, spacing override and validation).
The stacking axis of 3-D files is the format's own: the **last** axis for NIfTI and MATLAB
(column-major formats), the **first** axis for DICOM frames, TIFF pages and NumPy arrays.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .dicom import read_dicom_file, read_dicom_series
from .image import (
    SPACING_KEY,
    Image,
    PathLike,
    Spacing,
    as_float,
    by_extension,
    check_index,
    check_spacing,
    pick_slice,
    require,
    rgb_to_grey,
)

__all__ = ["load", "READ_FORMATS"]

#: Extensions :func:`load` understands, mapped to the format name stored in ``meta["format"]``.
READ_FORMATS = {
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".npy": "npy",
    ".npz": "npz",
    ".mat": "mat",
}

_NIFTI_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3}


def _no_variable(variable: Optional[str], fmt: str) -> None:
    if variable is not None:
        raise ValueError(f"`variable` only applies to .npz and .mat files, not to {fmt} files")


def _choose_variable(names: Sequence[str], variable: Optional[str], path: Path) -> str:
    """The array to read from a container: ``variable`` if given, else the only candidate."""
    if variable is not None:
        if variable not in names:
            raise ValueError(
                f"`variable` {variable!r} is not in {path.name}; it holds: "
                f"{', '.join(names) or 'no arrays'}"
            )
        return variable
    candidates = [n for n in names if n != SPACING_KEY]
    if len(candidates) != 1:
        raise ValueError(
            f"{path.name} holds {len(candidates)} image arrays ({', '.join(candidates) or 'none'});"
            " pass `variable=` to choose one"
        )
    return candidates[0]


def _read_nifti(path: Path, slice_: Optional[int], variable: Optional[str],
                volume: bool = False):
    _no_variable(variable, "NIfTI")
    nib = require("nibabel", "reading NIfTI files")
    img = nib.load(str(path))
    shape = tuple(img.shape)
    # Trailing singleton axes (e.g. (x, y, 1, 1)) carry no image content.
    while len(shape) > 2 and shape[-1] == 1 and (len(shape) > 3 or slice_ is None):
        shape = shape[:-1]
    if len(shape) > 3:
        raise ValueError(f"{path.name} has shape {tuple(img.shape)}; only 2-D images and 3-D "
                         "volumes are supported")
    dtype = np.float32 if img.get_data_dtype() == np.float32 else np.float64
    if len(shape) == 3 and not volume:
        if slice_ is None:
            raise ValueError(
                f"{path.name} is a 3-D volume of shape {shape}; pass `slice=` (an index along "
                f"the last axis, 0 <= slice < {shape[2]}) to choose one image, or "
                "`volume=True` to read it whole"
            )
        k = check_index(slice_, shape[2])
        index = (slice(None), slice(None), k) + (0,) * (len(img.shape) - 3)
        data = np.asarray(img.dataobj[index], dtype=dtype)
    else:
        if slice_ is not None:
            what = "`volume=True` reads it whole" if volume else f"{path.name} is 2-D"
            raise ValueError(f"`slice` was given but {what} (shape {shape})")
        k = None
        data = np.asarray(img.dataobj, dtype=dtype).reshape(shape)
    zooms = img.header.get_zooms()
    unit = img.header.get_xyzt_units()[0]
    scale = _NIFTI_TO_MM.get(unit, 1.0)  # "unknown" is read as mm, as most tools do
    spacing = None
    if len(zooms) >= data.ndim and all(z > 0 for z in zooms[:data.ndim]):
        spacing = tuple(float(z) * scale for z in zooms[:data.ndim])
    affine = np.array(img.affine, dtype=np.float64)
    affine[:3, :] *= scale
    meta = {"affine": affine, "slice": k, "spacing_source": "pixdim"}
    return data, spacing, meta


def _read_raster(path: Path, slice_: Optional[int], variable: Optional[str], fmt: str,
                 volume: bool = False):
    _no_variable(variable, fmt.upper())
    if fmt == "tiff":
        tifffile = require("tifffile", "reading TIFF files")
        with tifffile.TiffFile(str(path)) as tif:
            series = tif.series[0]
            axes = series.axes
            data = np.asarray(series.asarray())
        colour = axes.endswith("S")
    else:
        iio = require("imageio.v3", "reading PNG/JPEG files")
        data = np.asarray(iio.imread(str(path)))
        colour = data.ndim == 3 and data.shape[-1] in (2, 3, 4)
    if colour:
        data = rgb_to_grey(data)
    data = pick_slice(data, slice_, 0, path.name, volume)
    return data, None, {"slice": slice_, "grey_from_colour": bool(colour)}


def _read_npy(path: Path, slice_: Optional[int], variable: Optional[str],
              volume: bool = False):
    _no_variable(variable, "NumPy .npy")
    data = np.load(str(path), allow_pickle=False)
    return pick_slice(data, slice_, 0, path.name, volume), None, {"slice": slice_}


def _read_npz(path: Path, slice_: Optional[int], variable: Optional[str],
              volume: bool = False):
    with np.load(str(path), allow_pickle=False) as npz:
        name = _choose_variable(list(npz.files), variable, path)
        data = npz[name]
        spacing = npz[SPACING_KEY] if SPACING_KEY in npz.files and name != SPACING_KEY else None
    data = pick_slice(data, slice_, 0, path.name, volume)
    return data, spacing, {"slice": slice_, "variable": name}


def _read_mat(path: Path, slice_: Optional[int], variable: Optional[str],
              volume: bool = False):
    from scipy.io import loadmat
    from scipy.io.matlab import matfile_version

    if matfile_version(str(path))[0] == 2:
        return _read_mat73(path, slice_, variable, volume)
    contents = loadmat(str(path))
    names = [
        n for n, v in contents.items()
        if not n.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "biufc"
    ]
    name = _choose_variable(names, variable, path)
    spacing = contents.get(SPACING_KEY) if name != SPACING_KEY else None
    data = pick_slice(contents[name], slice_, -1, f"variable {name!r} of {path.name}", volume)
    return data, spacing, {"slice": slice_, "variable": name, "mat_version": "5"}


def _read_mat73(path: Path, slice_: Optional[int], variable: Optional[str],
                volume: bool = False):
    h5py = require("h5py", "reading MATLAB v7.3 (HDF5) .mat files")
    with h5py.File(str(path), "r") as f:
        names = [
            n for n, obj in f.items()
            if isinstance(obj, h5py.Dataset) and not n.startswith("#")
            and obj.dtype.kind in "biuf"
        ]
        name = _choose_variable(names, variable, path)
        # HDF5 stores MATLAB's column-major arrays with the axes reversed.
        data = np.asarray(f[name][()]).T
        spacing = np.asarray(f[SPACING_KEY][()]) if (
            SPACING_KEY in names and name != SPACING_KEY) else None
    data = pick_slice(data, slice_, -1, f"variable {name!r} of {path.name}", volume)
    return data, spacing, {"slice": slice_, "variable": name, "mat_version": "7.3"}


_READERS = {
    "nifti": _read_nifti,
    "dicom": read_dicom_file,
    "npy": _read_npy,
    "npz": _read_npz,
    "mat": _read_mat,
}


def load(
    path: PathLike,
    *,
    slice: Optional[int] = None,  # noqa: A002 - the natural name for a volume index
    spacing: Optional[Spacing] = None,
    variable: Optional[str] = None,
    volume: bool = False,
) -> Image:
    """Read a 2-D image (or a 3-D volume) and its pixel spacing from a medical or image file.

    Parameters
    ----------
    path : str or os.PathLike
        File to read, or with ``volume=True`` a folder holding one DICOM series. The format
        follows the extension: ``.nii``/``.nii.gz`` (NIfTI-1/2, via nibabel),
        ``.dcm``/``.dicom`` (DICOM, via pydicom), ``.png``/``.jpg``/``.jpeg``
        (via imageio), ``.tif``/``.tiff`` (via tifffile), ``.npy``/``.npz`` (NumPy) and
        ``.mat`` (MATLAB v5 via SciPy, v7.3 via h5py).
    slice : int, optional
        Index of the image to read from a stack: along the last axis of a NIfTI volume or a
        3-D MATLAB array, along the first axis of a multi-frame DICOM, a multi-page TIFF or a
        3-D NumPy array. Required for stacks of more than one image, refused for 2-D files.
    spacing : float or (float, float), optional
        Pixel spacing ``(row, col)`` in mm (one value per axis of a volume); overrides
        whatever the file says. The only way to
        attach a spacing to PNG, TIFF, JPEG and ``.npy`` files.
    variable : str, optional
        Name of the array to read from a ``.npz`` or ``.mat`` container; needed only when the
        file holds more than one array besides ``spacing``.
    volume : bool, default False
        Read a 3-D volume whole (a 2-D file still gives its image): NIfTI volumes, DICOM
        series (a folder) and multi-frame files, 3-D NumPy/MATLAB arrays, multi-page TIFF.
        ``spacing`` then has one entry per axis and ``slice`` is refused.

    Returns
    -------
    Image
        ``data`` (2-D, or 3-D with ``volume``; float64 or float32), ``spacing`` (mm, one entry
        per axis, or ``None``) and ``meta`` (``"format"``, ``"path"`` and format-specific
        entries; ``"affine"`` for NIfTI files and DICOM series).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the extension is not supported (the message lists the supported ones), a volume
        is read without ``slice=`` or ``volume=True``, the container holds several arrays and
        ``variable`` is missing, the data are not a real 2-D image (or 3-D volume), or a DICOM
        series is not one evenly spaced volume.
    IsADirectoryError
        If ``path`` is a folder and ``volume`` is false.
    ImportError
        If the optional reader for the format is not installed; the message says
        ``pip install "mrusfusion[io]"``.

    Notes
    -----
    Per-format details:

    * NIfTI: rows are voxel axis ``i``, columns axis ``j`` (no reorientation); spacing is
      ``pixdim[1:3]`` converted from the header's spatial unit to mm; ``meta["affine"]``
      holds the file's affine.
    * DICOM: the stored values are mapped through ``RescaleSlope``/``RescaleIntercept``.
      Spacing comes from the first ultrasound region of ``SequenceOfUltrasoundRegions`` whose
      physical units are cm (``PhysicalDeltaY`` for rows, ``PhysicalDeltaX`` for columns,
      times 10), else from ``PixelSpacing`` (already mm, row then column), else from
      ``ImagerPixelSpacing``. Colour (e.g. US screenshots) is converted to grey by luminance.
    * Volumes: NIfTI keeps the file's voxel axes ``(i, j, k)``, spacing ``pixdim[1:4]`` and
      affine (scaled to mm). A DICOM series is ordered along the slice normal by
      ``ImagePositionPatient`` and indexed ``[slice, row, col]``, spacing ``(slice step,
      row, col)``, affine in NIfTI's RAS+ convention (see :mod:`mrusfusion.io.dicom`).
    * PNG/JPEG/TIFF: values are kept as stored (a uint8 PNG gives 0..255); RGB/RGBA is
      converted to grey by :math:`0.2989 R + 0.5870 G + 0.1140 B` (MATLAB's ``rgb2gray``).
    * ``.npz``/``.mat``: an array named ``spacing`` is read as the pixel spacing.
      HDF5-based v7.3 files store arrays transposed; they are transposed back so the result
      matches what MATLAB shows.

    References
    ----------
    .. [1] O. El Mansouri et al., "Fusion of magnetic resonance and ultrasound images for
       endometriosis detection", IEEE Trans. Image Process. 29, 5324-5335 (2020).
    .. [2] NEMA PS3.3, section C.8.5.5, "US Region Calibration Module".

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from mrusfusion.io import load, save
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = save(folder / "mr.npz", np.ones((32, 32)), spacing=(2.0, 2.0))
    >>> image = load(path)
    >>> image.data.shape, image.spacing
    ((32, 32), (2.0, 2.0))
    >>> load(path, spacing=(1.5, 1.5)).spacing
    (1.5, 1.5)
    """
    folder = Path(os.fspath(path)).expanduser()
    if folder.is_dir():
        if not volume:
            raise IsADirectoryError(f"{str(folder)!r} is a directory, not an image file; pass "
                                    "`volume=True` to read the DICOM series in it")
        if slice is not None or variable is not None:
            raise ValueError("`slice` and `variable` do not apply to a DICOM series (a folder)")
        p, fmt = folder, "dicom"
        data, file_spacing, meta = read_dicom_series(folder)
    else:
        p, ext, fmt = by_extension(path, READ_FORMATS, "read")
        if not p.exists():
            raise FileNotFoundError(f"no such file: {str(p)!r}")
        if not volume:
            check_spacing(spacing)  # refused before reading
        if fmt in ("png", "jpeg", "tiff"):
            data, file_spacing, meta = _read_raster(p, slice, variable, fmt, volume)
        else:
            data, file_spacing, meta = _READERS[fmt](p, slice, variable, volume)
    data = as_float(data, p.name)
    if data.ndim != 2 and not (volume and data.ndim == 3):
        raise ValueError(f"{p.name} must hold a 2-D image, got shape {data.shape}")
    override = check_spacing(spacing, "spacing", data.ndim)
    final: Optional[Spacing]
    source: Optional[str]
    if override is not None:
        final, source = override, "argument"
    else:
        try:
            final = check_spacing(file_spacing, f"spacing stored in {p.name}", data.ndim)
        except ValueError:
            final = None  # a zero/garbage spacing in a header means "unknown"
        source = meta.get("spacing_source", "file") if final is not None else None
    meta.update({"format": fmt, "path": str(p), "spacing_source": source})
    return Image(data=data, spacing=final, meta=meta)
