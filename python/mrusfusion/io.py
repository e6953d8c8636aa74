"""Read and write 2-D medical images together with their pixel spacing.

The fusion model (DESIGN.md, observation model) needs two things the arrays alone do not
carry: the physical size of a pixel in each image, from which the decimation ``ratio`` between
the MR and the US grids follows, and a common field of view. :func:`load` returns an
:class:`Image` (data, spacing in mm, metadata) from NIfTI, DICOM, PNG/TIFF/JPEG, NumPy and
MATLAB files; :func:`save` writes one back without ever leaving a half-written file in place;
:func:`ratio_from_spacing`, :func:`resample_to_ratio` and :func:`crop_to_ratio` bring a
registered MR/US pair onto grids whose sizes differ by an integer factor.

Conventions
-----------
* ``data`` is a 2-D array indexed ``[row, col]``; ``spacing`` is ``(row, col)`` in millimetres
  (the distance between the centres of neighbouring rows, then columns), or ``None``.
* dtype policy (as everywhere in the package): float32 stays float32, every other real type
  becomes float64, complex data is refused.
* ``slice=`` picks one image out of a stack. The stacking axis is the file format's own: the
  **last** axis for NIfTI and MATLAB (column-major formats, volumes are ``(x, y, z)`` /
  ``(rows, cols, k)``), the **first** axis for DICOM frames, TIFF pages and NumPy arrays
  (C-order stacks ``(k, rows, cols)``).
* NIfTI orientation: rows follow the first voxel axis ``i`` and columns the second axis ``j``
  of the file, exactly as in ``nibabel``'s ``dataobj`` and MATLAB's ``niftiread``; no
  reorientation to RAS is done, so a viewer may show the image transposed or flipped. The
  spacing is ``(pixdim[1], pixdim[2])`` converted to mm. :func:`save` writes the array in the
  same order, so ``load(save(...))`` round-trips exactly.

The readers (nibabel, pydicom, imageio, tifffile, h5py) are optional and imported only when a
file of their format is read or written; install them all with ``pip install "mrusfusion[io]"``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "Image",
    "load",
    "save",
    "ratio_from_spacing",
    "resample_to_ratio",
    "crop_to_ratio",
    "READ_FORMATS",
    "WRITE_FORMATS",
]

Spacing = Tuple[float, float]
PathLike = Union[str, "os.PathLike[str]"]

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
#: Extensions :func:`save` can write.
WRITE_FORMATS = (".npy", ".npz", ".nii", ".nii.gz", ".png", ".tif", ".tiff", ".mat")

_INSTALL_HINT = 'pip install "mrusfusion[io]"'
# MATLAB's rgb2gray weights (ITU-R BT.601 luma); US screenshots are usually made for it.
_LUMA = np.array([0.2989, 0.5870, 0.1140])
# DICOM PS3.3 C.8.5.5.1.15: Physical Units X/Y Direction, 0x0003 = cm.
_DICOM_UNITS_CM = 3
_NIFTI_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3}
_MATLAB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_SPACING_KEY = "spacing"


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


# --------------------------------------------------------------------------- helpers


def _require(module: str, what: str):
    """Import an optional reader lazily, with an install hint on failure."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{what} needs the optional package `{module}`: {_INSTALL_HINT} "
            f"(or pip install {module})"
        ) from err


def _extension(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def _by_extension(path, table, verb: str, names=None):
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


def _check_spacing(spacing: Any, name: str = "spacing") -> Optional[Spacing]:
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


def _as_float(data: np.ndarray, what: str) -> np.ndarray:
    """Apply the package dtype policy: float32 stays, other reals become float64."""
    data = np.asarray(data)
    if np.iscomplexobj(data):
        raise ValueError(f"{what} holds complex data; a real image is required")
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{what} holds non-numeric data of dtype {data.dtype}")
    dtype = np.float32 if data.dtype == np.float32 else np.float64
    return np.array(data, dtype=dtype, order="C", copy=True)


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
    candidates = [n for n in names if n != _SPACING_KEY]
    if len(candidates) != 1:
        raise ValueError(
            f"{path.name} holds {len(candidates)} image arrays ({', '.join(candidates) or 'none'});"
            " pass `variable=` to choose one"
        )
    return candidates[0]


# --------------------------------------------------------------------------- readers


def _read_nifti(path: Path, slice_: Optional[int], variable: Optional[str]):
    _no_variable(variable, "NIfTI")
    nib = _require("nibabel", "reading NIfTI files")
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
    pydicom = _require("pydicom", "reading DICOM files")
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
        tifffile = _require("tifffile", "reading TIFF files")
        with tifffile.TiffFile(str(path)) as tif:
            series = tif.series[0]
            axes = series.axes
            data = np.asarray(series.asarray())
        colour = axes.endswith("S")
    else:
        iio = _require("imageio.v3", "reading PNG/JPEG files")
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
        spacing = npz[_SPACING_KEY] if _SPACING_KEY in npz.files and name != _SPACING_KEY else None
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
    spacing = contents.get(_SPACING_KEY) if name != _SPACING_KEY else None
    data = _pick_slice(contents[name], slice_, -1, f"variable {name!r} of {path.name}")
    return data, spacing, {"slice": slice_, "variable": name, "mat_version": "5"}


def _read_mat73(path: Path, slice_: Optional[int], variable: Optional[str]):
    h5py = _require("h5py", "reading MATLAB v7.3 (HDF5) .mat files")
    with h5py.File(str(path), "r") as f:
        names = [
            n for n, obj in f.items()
            if isinstance(obj, h5py.Dataset) and not n.startswith("#")
            and obj.dtype.kind in "biuf"
        ]
        name = _choose_variable(names, variable, path)
        # HDF5 stores MATLAB's column-major arrays with the axes reversed.
        data = np.asarray(f[name][()]).T
        spacing = np.asarray(f[_SPACING_KEY][()]) if (
            _SPACING_KEY in names and name != _SPACING_KEY) else None
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
    p, ext, fmt = _by_extension(path, READ_FORMATS, "read")
    if not p.exists():
        raise FileNotFoundError(f"no such file: {str(p)!r}")
    if p.is_dir():
        raise IsADirectoryError(f"{str(p)!r} is a directory, not an image file")
    override = _check_spacing(spacing)
    if fmt in ("png", "jpeg", "tiff"):
        data, file_spacing, meta = _read_raster(p, slice, variable, fmt)
    else:
        data, file_spacing, meta = _READERS[fmt](p, slice, variable)
    data = _as_float(data, p.name)
    if data.ndim != 2:
        raise ValueError(f"{p.name} must hold a 2-D image, got shape {data.shape}")
    if override is not None:
        final, source = override, "argument"
    else:
        try:
            final = _check_spacing(file_spacing, f"spacing stored in {p.name}")
        except ValueError:
            final = None  # a zero/garbage spacing in a header means "unknown"
        source = meta.get("spacing_source", "file") if final is not None else None
    meta.update({"format": fmt, "path": str(p), "spacing_source": source})
    return Image(data=data, spacing=final, meta=meta)


# --------------------------------------------------------------------------- writers


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_npy(tmp: str, data: np.ndarray, spacing, affine, bit_depth, variable) -> None:
    np.save(tmp, data, allow_pickle=False)


def _write_npz(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    arrays = {"data": data}
    if spacing is not None:
        arrays[_SPACING_KEY] = np.asarray(spacing, dtype=np.float64)
    np.savez(tmp, **arrays)


def _write_nifti(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    nib = _require("nibabel", "writing NIfTI files")
    if affine is None:
        affine = np.eye(4)
        if spacing is not None:
            affine[0, 0], affine[1, 1] = spacing
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(data.dtype)
    img.header.set_xyzt_units("mm")
    nib.save(img, tmp)


def _write_png(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    iio = _require("imageio.v3", "writing PNG files")
    if not np.all(np.isfinite(data)):
        raise ValueError("cannot write NaN or infinite values to PNG")
    top = 2 ** bit_depth - 1
    lo, hi = float(data.min()), float(data.max())
    scaled = (data - lo) * (top / (hi - lo)) if hi > lo else np.zeros_like(data)
    out = np.rint(scaled).astype(np.uint8 if bit_depth == 8 else np.uint16)
    iio.imwrite(tmp, out, extension=".png")


def _write_tiff(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    tifffile = _require("tifffile", "writing TIFF files")
    tifffile.imwrite(tmp, data.astype(np.float32))


def _write_mat(tmp: str, data, spacing, affine, bit_depth, variable) -> None:
    from scipy.io import savemat

    arrays = {variable: data}
    if spacing is not None:
        arrays[_SPACING_KEY] = np.asarray(spacing, dtype=np.float64).reshape(1, 2)
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
) -> Path:
    """Write a 2-D image (and its spacing, where the format keeps it) without risking data.

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
        Pixel spacing ``(row, col)`` in mm; overrides ``image.spacing``.
    overwrite : bool, default False
        Replace an existing file. Without it an existing target is left untouched.
    affine : (4, 4) array_like, optional
        NIfTI only: the voxel-to-world affine to store; overrides the diagonal affine built
        from ``spacing`` (the stored spacing then follows the affine's column norms).
    bit_depth : {8, 16}, default 8
        PNG only: bits per pixel of the rescaled image.
    variable : str, default "image"
        MATLAB only: name of the variable holding the image.

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
    target, ext, writer = _by_extension(path, _WRITERS, "write", WRITE_FORMATS)
    if isinstance(image, Image):
        data, own_spacing = image.data, image.spacing
    else:
        data, own_spacing = image, None
    data = _as_float(data, "`image`")
    if data.ndim != 2:
        raise ValueError(f"`image` must be a 2-D array, got shape {data.shape}")
    final_spacing = _check_spacing(spacing) if spacing is not None else own_spacing
    if bit_depth not in (8, 16):
        raise ValueError(f"`bit_depth` must be 8 or 16, got {bit_depth!r}")
    if not isinstance(variable, str) or not _MATLAB_NAME.match(variable) or (
            variable == _SPACING_KEY):
        raise ValueError(
            f"`variable` must be a MATLAB identifier other than 'spacing', got {variable!r}"
        )
    if affine is not None:
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ValueError(f"`affine` must be a finite 4x4 array, got shape {affine.shape}")
    return write_atomic(target, lambda tmp: writer(tmp, data, final_spacing, affine, bit_depth,
                                                   variable), overwrite=overwrite, suffix=ext)


def write_atomic(path, fill, *, overwrite: bool = False, suffix: Optional[str] = None) -> Path:
    """Create ``path`` through ``fill(temporary_path)`` without ever leaving a partial file.

    ``fill`` writes the whole file at a temporary path in the target folder; the file is then
    flushed to disk and renamed into place (``os.replace``, or a hard link when ``overwrite`` is
    false, so that a file created meanwhile is never clobbered). On any failure the temporary
    file is removed and an existing target keeps its bytes. ``suffix`` (default: the target's)
    ends the temporary name, for writers that choose the format from it (``.nii.gz``).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        If the folder does not exist.
    IsADirectoryError
        If ``path`` is a folder.
    """
    target = Path(os.fspath(path)).expanduser()
    if target.is_dir():
        raise IsADirectoryError(f"{str(target)!r} is a directory")
    exists_msg = f"{target} already exists; pass overwrite=True to replace it"
    if target.exists() and not overwrite:
        raise FileExistsError(exists_msg)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist")
    suffix = target.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)  # mkstemp's 0o600 would hide the file from other users
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # atomic and never clobbers a file created meanwhile
            except FileExistsError:
                raise FileExistsError(exists_msg) from None
            except OSError:  # filesystem without hard links
                if target.exists():
                    raise FileExistsError(exists_msg) from None
                os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


# --------------------------------------------------------------------------- grids


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
    mr = _check_spacing(mr_spacing, "mr_spacing")
    us = _check_spacing(us_spacing, "us_spacing")
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
) -> Tuple[np.ndarray, Spacing, int]:
    """Resample the US image so its spacing divides the MR spacing by an integer.

    Parameters
    ----------
    us : (M, N) array_like
        The US image.
    us_spacing, mr_spacing : float or (float, float)
        Pixel spacings ``(row, col)`` in mm.

    Returns
    -------
    us_resampled : ndarray
        The US image on the new grid (float32 if ``us`` is float32, else float64). Its first
        pixel has the same outer corner as before; the number of pixels is the largest that
        fits inside the original field of view.
    new_spacing : (float, float)
        ``mr_spacing / ratio``, exactly.
    ratio : int
        The integer nearest to the per-axis ratios ``mr_spacing / us_spacing`` (when the two
        axes round differently, the integer nearest to their geometric mean), at least 1.

    Raises
    ------
    ValueError
        If ``us`` is not a real 2-D array or a spacing is invalid.

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

    us_arr = _as_float(us, "`us`")
    if us_arr.ndim != 2:
        raise ValueError(f"`us` must be a 2-D array, got shape {us_arr.shape}")
    us_sp = np.array(_check_spacing(us_spacing, "us_spacing"))
    mr_sp = np.array(_check_spacing(mr_spacing, "mr_spacing"))
    ratio = _nearest_common_ratio(mr_sp / us_sp)
    new_sp = mr_sp / ratio
    scale = new_sp / us_sp  # input pixels per output pixel
    # The 1e-9 guards against 31.999999 becoming 31 when the grids already match.
    shape = tuple(max(1, int(math.floor(n / s + 1e-9))) for n, s in zip(us_arr.shape, scale))
    offset = 0.5 * scale - 0.5
    out = ndimage.affine_transform(
        us_arr, scale, offset=offset, output_shape=shape, order=3, mode="nearest",
        output=us_arr.dtype,
    )
    return out, (float(new_sp[0]), float(new_sp[1])), ratio


def crop_to_ratio(
    mr: np.ndarray, us: np.ndarray, ratio: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Crop a registered MR/US pair to their common field of view with ``us = ratio * mr``.

    Parameters
    ----------
    mr : (m, n) array_like
        The MR image.
    us : (M, N) array_like
        The US image, registered to ``mr`` with the same top-left corner.
    ratio : int
        Decimation ratio (see :func:`ratio_from_spacing`).

    Returns
    -------
    mr_c, us_c : ndarray
        Views of the top-left parts of ``mr`` and ``us`` with
        ``us_c.shape == (ratio * mr_c.shape[0], ratio * mr_c.shape[1])``.

    Raises
    ------
    ValueError
        If an input is not 2-D, ``ratio`` is not a positive integer, or the common field of
        view holds no full MR pixel.

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
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 1:
        raise ValueError(f"`ratio` must be a positive integer, got {ratio!r}")
    ratio = int(ratio)
    mr_arr, us_arr = np.asarray(mr), np.asarray(us)
    for name, arr in (("mr", mr_arr), ("us", us_arr)):
        if arr.ndim != 2:
            raise ValueError(f"`{name}` must be a 2-D array, got shape {arr.shape}")
    rows = min(mr_arr.shape[0], us_arr.shape[0] // ratio)
    cols = min(mr_arr.shape[1], us_arr.shape[1] // ratio)
    if rows < 1 or cols < 1:
        raise ValueError(
            f"no common field of view: `us` of shape {us_arr.shape} holds fewer than {ratio} "
            f"pixels (one MR pixel at ratio {ratio}) along an axis"
        )
    return mr_arr[:rows, :cols], us_arr[: ratio * rows, : ratio * cols]
