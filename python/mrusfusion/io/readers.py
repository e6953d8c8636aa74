"""Readers: :func:`load` turns a medical or ordinary image file into an :class:`Image`.

Each reader returns ``(data, spacing, meta)`` straight from its file format; :func:`load`
applies what is common to all (dtype policy, 2-D check, spacing override and validation).
The stacking axis of 3-D files is the format's own: the **last** axis for NIfTI and MATLAB
(column-major formats), the **first** axis for DICOM frames, TIFF pages and NumPy arrays.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

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

# MATLAB's rgb2gray weights (ITU-R BT.601 luma); US screenshots are usually made for it.
_LUMA = np.array([0.2989, 0.5870, 0.1140])
# DICOM PS3.3 C.8.5.5.1.15: Physical Units X/Y Direction, 0x0003 = cm.
_DICOM_UNITS_CM = 3
_NIFTI_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3}


def _rgb_to_grey(data: np.ndarray) -> np.ndarray:
    """Luminance of an RGB(A) image (alpha dropped); grey+alpha keeps the grey channel."""
    if data.shape[-1] == 2:
        return data[..., 0]
    return data[..., :3].astype(np.float64) @ _LUMA


def _pick_slice(data: np.ndarray, slice_: Optional[int], axis: int, what: str) -> np.ndarray:
    """Reduce ``data`` to 2-D, selecting ``slice_`` along ``axis`` of a 3-D stack."""
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
            f"{axis_name} axis, 0 <= slice < {n}) to choose one image"
        )
    k = _check_index(slice_, n)
    return np.take(data, k, axis=axis)


def _check_index(slice_: Any, n: int) -> int:
    if isinstance(slice_, bool) or not isinstance(slice_, (int, np.integer)):
        raise TypeError(f"`slice` must be an integer, got {slice_!r}")
    k = int(slice_)
    if not -n <= k < n:
        raise ValueError(f"`slice` must satisfy {-n} <= slice < {n}, got {k}")
    return k % n


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


def _read_nifti(path: Path, slice_: Optional[int], variable: Optional[str]):
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
    if len(shape) == 3:
        if slice_ is None:
            raise ValueError(
                f"{path.name} is a 3-D volume of shape {shape}; pass `slice=` (an index along "
                f"the last axis, 0 <= slice < {shape[2]}) to choose one image"
            )
        k = _check_index(slice_, shape[2])
        index = (slice(None), slice(None), k) + (0,) * (len(img.shape) - 3)
        data = np.asarray(img.dataobj[index], dtype=dtype)
    else:
        if slice_ is not None:
            raise ValueError(f"`slice` was given but {path.name} is 2-D with shape {shape}")
        k = None
        data = np.asarray(img.dataobj, dtype=dtype).reshape(shape)
    zooms = img.header.get_zooms()
    spacing = None
    if len(zooms) >= 2 and zooms[0] > 0 and zooms[1] > 0:
        unit = img.header.get_xyzt_units()[0]
        scale = _NIFTI_TO_MM.get(unit, 1.0)  # "unknown" is read as mm, as most tools do
        spacing = (float(zooms[0]) * scale, float(zooms[1]) * scale)
    meta = {"affine": np.array(img.affine), "slice": k, "spacing_source": "pixdim"}
    return data, spacing, meta


def _read_dicom(path: Path, slice_: Optional[int], variable: Optional[str]):
    _no_variable(variable, "DICOM")
    pydicom = require("pydicom", "reading DICOM files")
    ds = pydicom.dcmread(str(path))
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ValueError(f"{path.name} is a DICOM file without pixel data")
    pixels = np.asarray(ds.pixel_array)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples > 1:
        pixels = _rgb_to_grey(pixels)
    data = _pick_slice(pixels, slice_, 0, path.name)
    k = _check_index(slice_, frames) if slice_ is not None else (0 if frames > 1 else None)
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    data = data.astype(np.float64)
    if slope != 1.0 or intercept != 0.0:
        data = data * slope + intercept

    spacing, source = None, None
    for region in ds.get("SequenceOfUltrasoundRegions", []) or []:
        ux = region.get("PhysicalUnitsXDirection", _DICOM_UNITS_CM)
        uy = region.get("PhysicalUnitsYDirection", _DICOM_UNITS_CM)
        dx, dy = region.get("PhysicalDeltaX"), region.get("PhysicalDeltaY")
        if ux == _DICOM_UNITS_CM and uy == _DICOM_UNITS_CM and dx and dy:
            # Physical deltas are in cm; Y runs down the rows, X along the columns.
            spacing, source = (abs(float(dy)) * 10.0, abs(float(dx)) * 10.0), "ultrasound region"
            break
    if spacing is None:
        for key in ("PixelSpacing", "ImagerPixelSpacing"):
            value = ds.get(key)
            if value is not None and len(value) == 2:
                spacing, source = (float(value[0]), float(value[1])), key
                break
    meta = {
        "slice": k,
        "modality": str(ds.get("Modality", "")),
        "photometric": str(ds.get("PhotometricInterpretation", "")),
        "spacing_source": source,
    }
    return data, spacing, meta


def _read_raster(path: Path, slice_: Optional[int], variable: Optional[str], fmt: str):
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
        data = _rgb_to_grey(data)
    data = _pick_slice(data, slice_, 0, path.name)
    return data, None, {"slice": slice_, "grey_from_colour": bool(colour)}


def _read_npy(path: Path, slice_: Optional[int], variable: Optional[str]):
    _no_variable(variable, "NumPy .npy")
    data = np.load(str(path), allow_pickle=False)
    return _pick_slice(data, slice_, 0, path.name), None, {"slice": slice_}


def _read_npz(path: Path, slice_: Optional[int], variable: Optional[str]):
    with np.load(str(path), allow_pickle=False) as npz:
        name = _choose_variable(list(npz.files), variable, path)
        data = npz[name]
        spacing = npz[SPACING_KEY] if SPACING_KEY in npz.files and name != SPACING_KEY else None
    return _pick_slice(data, slice_, 0, path.name), spacing, {"slice": slice_, "variable": name}


def _read_mat(path: Path, slice_: Optional[int], variable: Optional[str]):
    from scipy.io import loadmat
    from scipy.io.matlab import matfile_version

    if matfile_version(str(path))[0] == 2:
        return _read_mat73(path, slice_, variable)
    contents = loadmat(str(path))
    names = [
        n for n, v in contents.items()
        if not n.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "biufc"
    ]
    name = _choose_variable(names, variable, path)
    spacing = contents.get(SPACING_KEY) if name != SPACING_KEY else None
    data = _pick_slice(contents[name], slice_, -1, f"variable {name!r} of {path.name}")
    return data, spacing, {"slice": slice_, "variable": name, "mat_version": "5"}


def _read_mat73(path: Path, slice_: Optional[int], variable: Optional[str]):
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
    data = _pick_slice(data, slice_, -1, f"variable {name!r} of {path.name}")
    return data, spacing, {"slice": slice_, "variable": name, "mat_version": "7.3"}


_READERS = {
    "nifti": _read_nifti,
    "dicom": _read_dicom,
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
) -> Image:
    """Read a 2-D image and its pixel spacing from a medical or ordinary image file.

    Parameters
    ----------
    path : str or os.PathLike
        File to read. The format follows the extension: ``.nii``/``.nii.gz`` (NIfTI-1/2, via
        nibabel), ``.dcm``/``.dicom`` (DICOM, via pydicom), ``.png``/``.jpg``/``.jpeg``
        (via imageio), ``.tif``/``.tiff`` (via tifffile), ``.npy``/``.npz`` (NumPy) and
        ``.mat`` (MATLAB v5 via SciPy, v7.3 via h5py).
    slice : int, optional
        Index of the image to read from a stack: along the last axis of a NIfTI volume or a
        3-D MATLAB array, along the first axis of a multi-frame DICOM, a multi-page TIFF or a
        3-D NumPy array. Required for stacks of more than one image, refused for 2-D files.
    spacing : float or (float, float), optional
        Pixel spacing ``(row, col)`` in mm; overrides whatever the file says. The only way to
        attach a spacing to PNG, TIFF, JPEG and ``.npy`` files.
    variable : str, optional
        Name of the array to read from a ``.npz`` or ``.mat`` container; needed only when the
        file holds more than one array besides ``spacing``.

    Returns
    -------
    Image
        ``data`` (2-D, float64 or float32), ``spacing`` (mm, ``(row, col)``, or ``None``) and
        ``meta`` (``"format"``, ``"path"`` and format-specific entries).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the extension is not supported (the message lists the supported ones), a volume
        is read without ``slice=``, the container holds several arrays and ``variable`` is
        missing, or the data are not a real 2-D image.
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
    p, ext, fmt = by_extension(path, READ_FORMATS, "read")
    if not p.exists():
        raise FileNotFoundError(f"no such file: {str(p)!r}")
    if p.is_dir():
        raise IsADirectoryError(f"{str(p)!r} is a directory, not an image file")
    override = check_spacing(spacing)
    if fmt in ("png", "jpeg", "tiff"):
        data, file_spacing, meta = _read_raster(p, slice, variable, fmt)
    else:
        data, file_spacing, meta = _READERS[fmt](p, slice, variable)
    data = as_float(data, p.name)
    if data.ndim != 2:
        raise ValueError(f"{p.name} must hold a 2-D image, got shape {data.shape}")
    final: Optional[Spacing]
    source: Optional[str]
    if override is not None:
        final, source = override, "argument"
    else:
        try:
            final = check_spacing(file_spacing, f"spacing stored in {p.name}")
        except ValueError:
            final = None  # a zero/garbage spacing in a header means "unknown"
        source = meta.get("spacing_source", "file") if final is not None else None
    meta.update({"format": fmt, "path": str(p), "spacing_source": source})
    return Image(data=data, spacing=final, meta=meta)
