"""Bundled sample data and an analytic pelvic MR phantom.

The ``.mat`` files in this folder were made by the paper's authors (O. El Mansouri, F. Vidal,
A. Basarab, P. Payoux, D. Kouamé, J.-Y. Tourneret; University of Toulouse, IRIT) and are
redistributed under their notice, reproduced in ``README.md`` next to this file. They are read
with :mod:`importlib.resources`, so they work from an installed wheel as well as a source tree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np
from scipy import ndimage
from scipy.io import loadmat

from .phantom3d import phantom3d

__all__ = ["sample_pair", "SamplePair", "SAMPLE_PSF", "pelvis_mr", "phantom", "phantom_lesion",
           "PhantomLesion", "phantom3d"]


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"`dtype` must be float32 or float64, got {dt}")
    return dt


def _load(filename: str, variable: str, dtype) -> np.ndarray:
    dt = _float_dtype(dtype)
    with resources.files(__name__).joinpath(filename).open("rb") as f:
        array = loadmat(f)[variable]
    return np.ascontiguousarray(array, dtype=dt)


#: Blur of the MR image of :func:`sample_pair`: the authors' code blurs with small Gaussian
#: kernels of sigma 3-4 (5x5 or 7x7) rather than the paper's 9x9 of variance 4. With the paper's
#: PSF, deconvolution rings (MR-only result in [-0.57, 1.64] for data in [0, 0.67]) and GCV
#: picks the smallest tau1 it is offered; with this one it picks tau1 = 2.8e-4 and the fusion
#: converges cleanly. Pass it as ``fuse(mr, us, psf=SAMPLE_PSF)``.
SAMPLE_PSF = (5, 9.0)


class SamplePair(NamedTuple):
    """An MR/US pair with the MR blur it was made with, in :func:`mrusfusion.fuse`'s order.

    ``fuse(*pair)`` passes ``mr``, ``us`` and ``psf`` positionally, so the obvious call uses
    the right blur; ``mr, us, psf = pair`` unpacks it.
    """

    mr: np.ndarray
    us: np.ndarray
    psf: Union[Tuple[int, float], np.ndarray]


def sample_pair(dtype=np.float64) -> SamplePair:
    """The authors' simulated pelvic MR/US pair with decimation ratio 2.

    Parameters
    ----------
    dtype : {numpy.float64, numpy.float32}, optional
        Floating type of the returned arrays.

    Returns
    -------
    SamplePair
        ``(mr, us, psf)``: ``mr`` (128, 128), the low-resolution MR observation ``y1``
        (blurred and decimated by 2), about [0, 0.67]; ``us`` (256, 256), the noisy US
        observation ``y2`` on the 2x finer grid, about [0.09, 1.31]; ``psf``, its MR blur
        :data:`SAMPLE_PSF`. ``mrusfusion.fuse(*sample_pair())`` fuses it with that blur.

    Raises
    ------
    TypeError
        If ``dtype`` is not float32 or float64.

    Notes
    -----
    Files ``y1.mat`` and ``y2.mat`` (variables ``y1``, ``y2``), simulated by the paper's authors;
    there is no ground truth for this pair. Normalise each image by its maximum before fusion, as
    the authors do. Its MR blur is :data:`SAMPLE_PSF` (5x5 Gaussian, variance 9), not the
    paper's 9x9 kernel; the pair carries it as its third element.

    Credit: O. El Mansouri, F. Vidal, A. Basarab, P. Payoux, D. Kouamé, J.-Y. Tourneret
    (University of Toulouse, IRIT), from their public MATLAB code; redistributed under their
    notice (see ``mrusfusion/data/README.md``).

    References
    ----------
    .. [1] O. El Mansouri et al., "Fusion of magnetic resonance and ultrasound images for
       endometriosis detection", IEEE Trans. Image Process. 29, 5324-5335 (2020).

    Examples
    --------
    >>> mr, us, psf = sample_pair()
    >>> mr.shape, us.shape, psf
    ((128, 128), (256, 256), (5, 9.0))
    """
    return SamplePair(_load("y1.mat", "y1", dtype), _load("y2.mat", "y2", dtype), SAMPLE_PSF)


def pelvis_mr(dtype=np.float64) -> np.ndarray:
    """The authors' high-resolution simulated pelvic MR image (a ground truth).

    Parameters
    ----------
    dtype : {numpy.float64, numpy.float32}, optional
        Floating type of the returned array.

    Returns
    -------
    (300, 400) ndarray
        Variable ``irm_gt`` of ``IRM_GT.mat``, values about [-0.004, 0.64].

    Raises
    ------
    TypeError
        If ``dtype`` is not float32 or float64.

    Notes
    -----
    The ground truth of the authors' ratio-1 simulation: their US image was made from it by a
    polynomial of the intensity and the gradient magnitude (DESIGN.md section 8). Use it as
    ``x_m`` to simulate observations with known truth.

    Credit: O. El Mansouri, F. Vidal, A. Basarab, P. Payoux, D. Kouamé, J.-Y. Tourneret
    (University of Toulouse, IRIT), from their public MATLAB code; redistributed under their
    notice (see ``mrusfusion/data/README.md``).

    References
    ----------
    .. [1] O. El Mansouri et al., IEEE Trans. Image Process. 29, 5324-5335 (2020).

    Examples
    --------
    >>> pelvis_mr(dtype="float32").shape
    (300, 400)
    """
    return _load("IRM_GT.mat", "irm_gt", dtype)


# --------------------------------------------------------------------------- phantom
@dataclass(frozen=True)
class _Ellipse:
    """An ellipse in normalised coordinates (row and column both in [0, 1], origin top-left).

    ``angle`` is in degrees, counter-clockwise as displayed, from the column axis to the
    ``semi_axes[1]`` axis.
    """

    center: Tuple[float, float]  # (row, col)
    semi_axes: Tuple[float, float]  # (row-wise, col-wise) before rotation
    value: float
    angle: float = 0.0

    def signed_distance(self, rows: np.ndarray, cols: np.ndarray, shape) -> np.ndarray:
        """Approximate signed distance in pixels to the boundary, positive inside.

        First-order (Sampson) distance ``-F / |grad F|`` of the implicit function ``F``; exact on
        the boundary, which is all the smooth step needs.
        """
        h, w = shape
        dy = rows / h - self.center[0]
        dx = cols / w - self.center[1]
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        u = dx * c - dy * s  # along semi_axes[1]
        v = dx * s + dy * c  # along semi_axes[0]
        ay, ax = self.semi_axes
        f = (u / ax) ** 2 + (v / ay) ** 2 - 1.0
        fu, fv = 2 * u / ax**2, 2 * v / ay**2
        # chain rule from (u, v) to pixel (row, col)
        f_col = (fu * c + fv * s) / w
        f_row = (-fu * s + fv * c) / h
        grad = np.maximum(np.hypot(f_row, f_col), 1e-12)
        return -f / grad


@dataclass(frozen=True)
class _Band:
    """A horizontal band between normalised rows ``top`` and ``bottom``."""

    top: float
    bottom: float
    value: float

    def signed_distance(self, rows: np.ndarray, cols: np.ndarray, shape) -> np.ndarray:
        h = shape[0]
        return np.minimum(rows - self.top * h, self.bottom * h - rows)


_BACKGROUND = 0.35  # soft tissue
_LESION = _Ellipse(center=(0.80, 0.83), semi_axes=(0.045, 0.05), value=0.95)
# Painted in order, each over the previous ones.
_STRUCTURES = (
    _Band(top=0.03, bottom=0.12, value=0.85),  # subcutaneous fat
    _Band(top=0.12, bottom=0.18, value=0.20),  # abdominal wall muscle
    _Ellipse(center=(0.41, 0.31), semi_axes=(0.15, 0.20), value=0.75),  # perivesical fat
    _Ellipse(center=(0.41, 0.31), semi_axes=(0.12, 0.17), value=0.08),  # bladder (fluid)
    _Ellipse(center=(0.88, 0.50), semi_axes=(0.025, 0.36), value=0.72, angle=-8.0),  # fat plane
    _Ellipse(center=(0.60, 0.60), semi_axes=(0.14, 0.25), value=0.55, angle=-25.0),  # uterus
    _Ellipse(center=(0.60, 0.60), semi_axes=(0.03, 0.16), value=0.80, angle=-25.0),  # endometrium
    _LESION,  # endometrioma-like lesion beside the uterus
)


def _phantom_shape(shape) -> Tuple[int, int]:
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape)
    ):
        raise TypeError(f"`shape` must be a pair of integers, got {shape!r}")
    shape = (int(shape[0]), int(shape[1]))
    if min(shape) < 1:
        raise ValueError(f"`shape` must be positive, got {shape}")
    return shape


def _edge_width(shape: Tuple[int, int]) -> float:
    """Width ``w`` (pixels) of the phantom's smooth edges, so the anatomy looks the same at any
    size."""
    return 1.5 * max(1.0, min(shape) / 256.0)


def phantom(
    shape: Tuple[int, int] = (256, 256),
    *,
    dtype=np.float64,
    seed: Optional[int] = None,
) -> np.ndarray:
    """An analytic pelvic MR phantom in [0, 1] with smooth edges, at any resolution.

    Parameters
    ----------
    shape : (int, int), optional
        Number of rows and columns; any positive sizes (non-square stretches the anatomy).
        Three sizes give the 3-D phantom of ellipsoids, :func:`phantom3d`.
    dtype : {numpy.float64, numpy.float32}, optional
        Floating type of the result (keyword-only).
    seed : int, optional
        ``None`` (default) gives the deterministic, texture-free phantom. An integer adds a
        reproducible smooth tissue texture (Gaussian-filtered white noise, standard deviation
        0.02) drawn from ``numpy.random.default_rng(seed)``, then clips to [0, 1].

    Returns
    -------
    (rows, cols) ndarray
        The phantom. Structures and intensities (row, col given as fractions of the image):
        soft-tissue background 0.35; subcutaneous fat band, rows 0.03-0.12, 0.85; abdominal wall
        muscle, rows 0.12-0.18, 0.20; bladder (fluid, dark) 0.08 at (0.41, 0.31) inside a
        perivesical fat rim 0.75; uterus 0.55 at (0.60, 0.60) tilted 25 degrees with a bright
        endometrium 0.80; a posterior fat plane 0.72 near row 0.88; a small bright
        endometrioma-like lesion 0.95 at (0.80, 0.83).

    Raises
    ------
    TypeError
        If ``shape`` is not a pair of integers, ``dtype`` is not float32/float64 or ``seed`` is
        not an integer.
    ValueError
        If a size is not positive.

    Notes
    -----
    Each structure with signed distance :math:`d` (pixels, positive inside) has the occupancy
    :math:`m = \\tfrac12 (1 + \\tanh(d / w))` and is painted over the image as
    :math:`I \\leftarrow (1 - m) I + m\\, v`, so the result stays a convex combination of
    intensities in [0, 1]. The edge width is :math:`w = 1.5 \\max(1, \\min(\\text{shape}) / 256)`
    pixels: the anatomy looks the same at any resolution and is never aliased. The geometry is
    in normalised coordinates; the ellipse distance is the first-order (Sampson) approximation.
    This is a synthetic image made by this package; it is not patient data.

    References
    ----------
    .. [1] O. El Mansouri et al., "Fusion of magnetic resonance and ultrasound images for
       endometriosis detection", IEEE Trans. Image Process. 29, 5324-5335 (2020), whose
       simulations use a pelvic MR image with these structures.

    Examples
    --------
    >>> x = phantom((32, 48))
    >>> x.shape, bool(0 <= x.min() and x.max() <= 1)
    ((32, 48), True)
    """
    if isinstance(shape, (tuple, list)) and len(shape) == 3:
        return phantom3d(shape, dtype=dtype, seed=seed)
    shape = _phantom_shape(shape)
    dt = _float_dtype(dtype)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"`seed` must be an integer or None, got {seed!r}")

    scale = max(1.0, min(shape) / 256.0)
    width = _edge_width(shape)
    # pixel centres, so that normalised coordinates do not depend on the resolution
    rows, cols = np.meshgrid(
        np.arange(shape[0]) + 0.5, np.arange(shape[1]) + 0.5, indexing="ij", sparse=True
    )
    image = np.full(shape, _BACKGROUND)
    for structure in _STRUCTURES:
        occupancy = 0.5 * (1.0 + np.tanh(structure.signed_distance(rows, cols, shape) / width))
        image += occupancy * (structure.value - image)
    if seed is not None:
        noise = ndimage.gaussian_filter(
            np.random.default_rng(seed).standard_normal(shape), sigma=2.0 * scale, mode="wrap"
        )
        image += 0.02 * noise / max(float(noise.std()), 1e-12)
        np.clip(image, 0.0, 1.0, out=image)
    return image.astype(dt, copy=False)


@dataclass(frozen=True, eq=False)
class PhantomLesion:
    """Where the endometrioma-like lesion of :func:`phantom` lies, at one image shape.

    Attributes
    ----------
    distance : (rows, cols) ndarray
        Signed distance (pixels) from each pixel centre to the lesion boundary, positive inside.
    center : (float, float)
        Centre ``(row, col)`` in index coordinates (pixel ``(i, j)`` is centred at ``(i, j)``).
    semi_axes : (float, float)
        Semi-axes along the rows and the columns, in pixels (the lesion is axis-aligned).
    edge_width : float
        Width ``w`` (pixels) of the phantom's smooth edges.
    value, background : float
        Intensity of the lesion and of the soft tissue around it.
    """

    distance: np.ndarray
    center: Tuple[float, float]
    semi_axes: Tuple[float, float]
    edge_width: float
    value: float
    background: float


def phantom_lesion(shape: Tuple[int, int] = (256, 256)) -> PhantomLesion:
    """The geometry of the lesion of :func:`phantom` of the same ``shape``, in pixels.

    Parameters
    ----------
    shape : (int, int), optional
        Number of rows and columns of the phantom.

    Returns
    -------
    PhantomLesion
        Signed distance map, centre, semi-axes, edge width and intensities: what a measurement
        of the lesion (its CNR against the tissue around it, the slope across its boundary)
        needs to place its regions.

    Raises
    ------
    TypeError
        If ``shape`` is not a pair of integers.
    ValueError
        If a size is not positive.

    Notes
    -----
    Same geometry as :func:`phantom`: normalised coordinates at pixel centres, first-order
    (Sampson) distance to the ellipse; the phantom equals ``value`` to within ``1e-3`` where
    ``distance`` exceeds a few edge widths.

    Examples
    --------
    >>> lesion = phantom_lesion((32, 32))
    >>> lesion.distance.shape, bool(lesion.distance.max() > 0)
    ((32, 32), True)
    >>> [round(c, 2) for c in lesion.center]
    [25.1, 26.06]
    """
    n1, n2 = _phantom_shape(shape)
    rows, cols = np.meshgrid(np.arange(n1) + 0.5, np.arange(n2) + 0.5, indexing="ij",
                             sparse=True)
    return PhantomLesion(
        distance=_LESION.signed_distance(rows, cols, (n1, n2)),
        # pixel centres sit at index + 0.5 in the normalised geometry
        center=(_LESION.center[0] * n1 - 0.5, _LESION.center[1] * n2 - 0.5),
        semi_axes=(_LESION.semi_axes[0] * n1, _LESION.semi_axes[1] * n2),
        edge_width=_edge_width((n1, n2)),
        value=_LESION.value,
        background=_BACKGROUND,
    )
