"""DICOM readers: one file (an image, or frames), and a series of slices in a folder (a volume).

A series is ordered along the slice normal ``n = r x c`` of ``ImageOrientationPatient`` (``r``
the direction along a row, ``c`` down a column) by the projection of ``ImagePositionPatient``,
so the file names and ``InstanceNumber`` do not matter. The volume is indexed
``[slice, row, col]`` (C order, like the frames of a multi-frame file), its spacing is
``(slice step, PixelSpacing[0], PixelSpacing[1])`` and its affine maps ``(k, i, j, 1)`` to RAS+
millimetres, NIfTI's convention (DICOM's patient axes are LPS: ``x`` and ``y`` flip sign):

``A_LPS = [[p_last - p_first] / (K - 1), c PixelSpacing[0], r PixelSpacing[1], p_first]``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np

from .image import check_index, pick_slice, require, rgb_to_grey

__all__ = ["read_dicom_file", "read_dicom_series", "LPS_TO_RAS"]

# DICOM PS3.3 C.8.5.5.1.15: Physical Units X/Y Direction, 0x0003 = cm.
_DICOM_UNITS_CM = 3
#: Flips DICOM's LPS patient axes to the RAS+ axes of NIfTI affines.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Slice steps may differ by rounding in the headers, not by more.
_STEP_RTOL = 1e-3


def _rescaled(ds, pixels: np.ndarray) -> np.ndarray:
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    data = pixels.astype(np.float64)
    if slope != 1.0 or intercept != 0.0:
        data = data * slope + intercept
    return data


def _pixel_spacing(ds):
    """Row and column spacing in mm, and where it came from."""
    for region in ds.get("SequenceOfUltrasoundRegions", []) or []:
        ux = region.get("PhysicalUnitsXDirection", _DICOM_UNITS_CM)
        uy = region.get("PhysicalUnitsYDirection", _DICOM_UNITS_CM)
        dx, dy = region.get("PhysicalDeltaX"), region.get("PhysicalDeltaY")
        if ux == _DICOM_UNITS_CM and uy == _DICOM_UNITS_CM and dx and dy:
            # Physical deltas are in cm; Y runs down the rows, X along the columns.
            return (abs(float(dy)) * 10.0, abs(float(dx)) * 10.0), "ultrasound region"
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(key)
        if value is not None and len(value) == 2:
            return (float(value[0]), float(value[1])), key
    return None, None


def _slice_step(ds) -> Optional[float]:
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(key)
        if value is not None and float(value) > 0:
            return float(value)
    return None


def read_dicom_file(path: Path, slice_: Optional[int], variable: Optional[str],
                    volume: bool = False):
    """``(data, spacing, meta)`` of one DICOM file: an image, or one frame (``slice_``), or
    with ``volume`` every frame as ``[frame, row, col]`` (spacing ``(SpacingBetweenSlices or
    SliceThickness, row, col)`` when the header has them)."""
    if variable is not None:
        raise ValueError("`variable` only applies to .npz and .mat files, not to DICOM files")
    pydicom = require("pydicom", "reading DICOM files")
    ds = pydicom.dcmread(str(path))
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ValueError(f"{path.name} is a DICOM file without pixel data")
    pixels = np.asarray(ds.pixel_array)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples > 1:
        pixels = rgb_to_grey(pixels)
    data = _rescaled(ds, pick_slice(pixels, slice_, 0, path.name, volume))
    spacing, source = _pixel_spacing(ds)
    if volume:
        k = None
        if data.ndim == 3:
            step = _slice_step(ds)
            spacing = None if spacing is None or step is None else (step,) + tuple(spacing)
    else:
        k = check_index(slice_, frames) if slice_ is not None else (0 if frames > 1 else None)
    meta = {
        "slice": k,
        "modality": str(ds.get("Modality", "")),
        "photometric": str(ds.get("PhotometricInterpretation", "")),
        "spacing_source": source,
    }
    return data, spacing, meta


def _geometry(datasets: List) -> Optional[tuple]:
    """Order, positions and direction cosines of a series, or None without the tags."""
    try:
        iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
        pos = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    except (AttributeError, TypeError, ValueError):
        return None
    if iop.shape != (6,) or pos.shape[1:] != (3,):
        return None
    row, col = iop[:3], iop[3:]
    for ds in datasets[1:]:
        other = np.array([float(v) for v in ds.get("ImageOrientationPatient", iop)])
        if not np.allclose(other, iop, atol=1e-4):
            raise ValueError("the DICOM series mixes slice orientations "
                             "(ImageOrientationPatient); it is not one volume")
    normal = np.cross(row, col)
    order = np.argsort(pos @ normal, kind="stable")
    return order, pos[order], row, col, normal


def read_dicom_series(folder: Path):
    """``(data, spacing, meta)`` of the DICOM series in ``folder`` (see the module docstring).

    Files that are not DICOM images are skipped; several series in one folder, slices of
    different sizes or orientations, and unevenly spaced slices are refused.
    """
    pydicom = require("pydicom", "reading DICOM series")
    from pydicom.errors import InvalidDicomError

    datasets = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        try:
            ds = pydicom.dcmread(str(p))
        except (InvalidDicomError, OSError):
            continue
        if "PixelData" in ds:
            datasets.append(ds)
    if not datasets:
        raise ValueError(f"{folder.name!r} holds no DICOM image files")
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series) > 1:
        raise ValueError(f"{folder.name!r} holds {len(series)} DICOM series "
                         "(SeriesInstanceUID); put each series in its own folder")
    shapes = {(int(ds.Rows), int(ds.Columns)) for ds in datasets}
    if len(shapes) > 1 or any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in datasets):
        raise ValueError(f"the slices in {folder.name!r} are not one volume: sizes "
                         f"{sorted(shapes)}, or multi-frame files among them")
    pixel_sp, source = _pixel_spacing(datasets[0])
    geometry = _geometry(datasets)
    affine = None
    if geometry is None:
        datasets.sort(key=lambda ds: int(ds.get("InstanceNumber", 0) or 0))
        step = _slice_step(datasets[0])
    else:
        order, pos, row, col, normal = geometry
        datasets = [datasets[i] for i in order]
        if len(datasets) > 1:
            steps = np.diff(pos @ normal)
            step = float(np.mean(steps))
            if step <= 0 or np.ptp(steps) > _STEP_RTOL * step:
                raise ValueError(
                    f"the slices in {folder.name!r} are not evenly spaced (steps "
                    f"{steps.min():.4g} to {steps.max():.4g} mm along the slice normal) or two "
                    "share a position; resample the series first")
            first_axis = (pos[-1] - pos[0]) / (len(datasets) - 1)
        else:
            step = _slice_step(datasets[0])
            first_axis = normal * (step or 1.0)
        if pixel_sp is not None:
            lps = np.eye(4)
            lps[:3, 0] = first_axis
            lps[:3, 1] = col * pixel_sp[0]
            lps[:3, 2] = row * pixel_sp[1]
            lps[:3, 3] = pos[0]
            affine = LPS_TO_RAS @ lps
    data = np.stack([_rescaled(ds, np.asarray(ds.pixel_array)) for ds in datasets])
    spacing = None if pixel_sp is None or step is None else (step,) + tuple(pixel_sp)
    meta = {"slice": None, "modality": str(datasets[0].get("Modality", "")),
            "spacing_source": source, "files": len(datasets)}
    if affine is not None:
        meta["affine"] = affine
    return data, spacing, meta
