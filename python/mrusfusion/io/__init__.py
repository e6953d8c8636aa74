"""Read and write medical images and volumes with their spacing, and prepare an MR/US pair.

The fusion model (DESIGN.md, observation model) needs two things the arrays alone do not
carry: the physical size of a pixel in each image, from which the decimation ``ratio`` between
the MR and the US grids follows, and a common field of view. :func:`load` returns an
:class:`Image` (data, spacing in mm, metadata) from NIfTI, DICOM, PNG/TIFF/JPEG, NumPy and
MATLAB files; :func:`save` writes one back without ever leaving a half-written file in place
(:func:`write_atomic`); :func:`ratio_from_spacing`, :func:`resample_to_ratio` and
:func:`crop_to_ratio` bring a registered MR/US pair onto grids whose sizes differ by an integer
factor, and :func:`prepare_pair` does all of that in one call.

Modules: :mod:`.image` (the :class:`Image` type, dtype and spacing conventions),
:mod:`.readers`, :mod:`.writers`, :mod:`.atomic`, :mod:`.geometry` (ratio, resampling,
cropping), :mod:`.dicom` (DICOM files and series) and :mod:`.pairs` (:func:`prepare_pair`).
A new file format is one reader function in ``readers.py`` and/or one writer in
``writers.py``, plus its extension in the table there.

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

Volumes
-------
``load(path, volume=True)`` reads a 3-D volume whole: a NIfTI volume (the file's voxel axes,
``pixdim[1:4]``, the affine in mm), a DICOM series (a folder; ordered along the slice normal,
indexed ``[slice, row, col]``, affine in NIfTI's RAS+ convention: :mod:`.dicom`), 3-D NumPy or
MATLAB arrays and multi-page TIFF. ``spacing`` then has one entry per axis;
:func:`ratios_from_spacing` gives one integer ratio per axis, :func:`prepare_pair` returns them
as a tuple, carries the US affine (moved by a resampling) for the output and the US field of
view (:func:`field_of_view`) as ``mask``; ``save(..., volume=True)`` writes a volume.

The readers (nibabel, pydicom, imageio, tifffile, h5py) are optional and imported only when a
file of their format is read or written; install them all with ``pip install "mrusfusion[io]"``.
"""
from __future__ import annotations

from .atomic import write_atomic
from .geometry import crop_to_ratio, ratio_from_spacing, ratios_from_spacing, resample_to_ratio
from .image import Image
from .pairs import PreparedPair, field_of_view, prepare_pair
from .readers import READ_FORMATS, load
from .writers import WRITE_FORMATS, save

__all__ = [
    "Image",
    "load",
    "save",
    "write_atomic",
    "ratio_from_spacing",
    "ratios_from_spacing",
    "field_of_view",
    "resample_to_ratio",
    "crop_to_ratio",
    "prepare_pair",
    "PreparedPair",
    "READ_FORMATS",
    "WRITE_FORMATS",
]

# The public objects live in the submodules; listing them here lets
# doctest.testmod(mrusfusion.io) run their Examples, as it did when io was one module.
__test__ = {name: globals()[name] for name in __all__ if callable(globals()[name])}
