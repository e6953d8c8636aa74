"""An analytic 3-D pelvic MR phantom of ellipsoids and slabs, at any resolution (issue 15).

The volume counterpart of :func:`mrusfusion.data.phantom`: the same tissues and intensities, as
slabs (fat, muscle) and ellipsoids (bladder in its fat rim, a tilted uterus with its
endometrium, a posterior fat plane, a small lesion), painted in order with smooth edges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

__all__ = ["phantom3d"]

_BACKGROUND = 0.35  # soft tissue


@dataclass(frozen=True)
class _Ellipsoid:
    """An ellipsoid in normalised coordinates, rotated by ``angle`` degrees about axis 2."""

    center: Tuple[float, float, float]
    semi_axes: Tuple[float, float, float]
    value: float
    angle: float = 0.0

    def signed_distance(self, grid, shape) -> np.ndarray:
        """First-order (Sampson) distance in voxels, positive inside."""
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        d = [g / n - m for g, n, m in zip(grid, shape, self.center)]
        p = d[0] * c + d[1] * s  # along semi_axes[0]
        q = -d[0] * s + d[1] * c  # along semi_axes[1]
        a0, a1, a2 = self.semi_axes
        f = (p / a0) ** 2 + (q / a1) ** 2 + (d[2] / a2) ** 2 - 1.0
        fp, fq, fz = 2 * p / a0**2, 2 * q / a1**2, 2 * d[2] / a2**2
        # chain rule from (p, q, z) to voxel indices
        g0 = (fp * c - fq * s) / shape[0]
        g1 = (fp * s + fq * c) / shape[1]
        g2 = fz / shape[2]
        grad = np.maximum(np.sqrt(g0**2 + g1**2 + g2**2), 1e-12)
        return -f / grad


@dataclass(frozen=True)
class _Slab:
    """The slab between normalised positions ``top`` and ``bottom`` along axis 0."""

    top: float
    bottom: float
    value: float

    def signed_distance(self, grid, shape) -> np.ndarray:
        return np.minimum(grid[0] - self.top * shape[0], self.bottom * shape[0] - grid[0])


# Painted in order, each over the previous ones (axis 0: depth, as the rows of the 2-D phantom).
_STRUCTURES = (
    _Slab(top=0.03, bottom=0.12, value=0.85),  # subcutaneous fat
    _Slab(top=0.12, bottom=0.18, value=0.20),  # abdominal wall muscle
    _Ellipsoid((0.41, 0.31, 0.50), (0.15, 0.20, 0.22), 0.75),  # perivesical fat
    _Ellipsoid((0.41, 0.31, 0.50), (0.12, 0.17, 0.19), 0.08),  # bladder (fluid)
    _Ellipsoid((0.88, 0.50, 0.50), (0.025, 0.36, 0.40), 0.72, angle=-8.0),  # fat plane
    _Ellipsoid((0.60, 0.60, 0.50), (0.14, 0.25, 0.20), 0.55, angle=-25.0),  # uterus
    _Ellipsoid((0.60, 0.60, 0.50), (0.03, 0.16, 0.12), 0.80, angle=-25.0),  # endometrium
    _Ellipsoid((0.80, 0.83, 0.45), (0.045, 0.05, 0.08), 0.95),  # endometrioma-like lesion
)


def _shape3(shape: Sequence[int]) -> Tuple[int, int, int]:
    if (not isinstance(shape, (tuple, list)) or len(shape) != 3
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                       for n in shape)):
        raise TypeError(f"`shape` must be three integers, got {shape!r}")
    out = (int(shape[0]), int(shape[1]), int(shape[2]))
    if min(out) < 1:
        raise ValueError(f"`shape` must be positive, got {out}")
    return out


def phantom3d(shape: Sequence[int] = (96, 96, 48), *, dtype=np.float64,
              seed: Optional[int] = None) -> np.ndarray:
    """An analytic 3-D pelvic MR phantom in [0, 1] with smooth edges, at any resolution.

    Parameters
    ----------
    shape : (int, int, int), optional
        Voxels along axes 0 (depth, the US beam's default direction), 1 and 2.
    dtype : {numpy.float64, numpy.float32}, optional
        Floating type of the result.
    seed : int, optional
        ``None`` gives the deterministic, texture-free phantom; an integer adds a reproducible
        smooth texture (Gaussian-filtered white noise, standard deviation 0.02), then clips.

    Returns
    -------
    ndarray, shape ``shape``
        Soft tissue 0.35; fat slab (axis-0 fraction 0.03-0.12) 0.85; muscle slab (0.12-0.18)
        0.20; a bladder ellipsoid 0.08 in a fat rim 0.75; a uterus 0.55 tilted 25 degrees in
        the (0, 1) plane with an endometrium 0.80; a posterior fat plane 0.72; a lesion 0.95.

    Raises
    ------
    TypeError
        If ``shape`` is not three integers, ``dtype`` not float32/float64 or ``seed`` not an
        integer.
    ValueError
        If a size is not positive.

    Notes
    -----
    Each structure with signed distance :math:`d` (voxels, positive inside; the first-order
    Sampson distance for ellipsoids) has the occupancy :math:`m = \\tfrac12 (1 + \\tanh(d/w))`
    and is painted as :math:`I \\leftarrow (1 - m) I + m v`, with the edge width
    :math:`w = 1.5 \\max(1, \\min(\\text{shape}) / 256)` of the 2-D phantom; geometry in
    normalised coordinates at voxel centres. A synthetic volume, not patient data.

    Examples
    --------
    >>> from mrusfusion.data import phantom3d
    >>> x = phantom3d((16, 16, 8))
    >>> x.shape, bool(0 <= x.min() and x.max() <= 1)
    ((16, 16, 8), True)
    """
    shp = _shape3(shape)
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"`dtype` must be float32 or float64, got {dt}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"`seed` must be an integer or None, got {seed!r}")
    scale = max(1.0, min(shp) / 256.0)
    width = 1.5 * scale
    grid = np.meshgrid(*(np.arange(n) + 0.5 for n in shp), indexing="ij", sparse=True)
    vol = np.full(shp, _BACKGROUND)
    for structure in _STRUCTURES:
        occupancy = 0.5 * (1.0 + np.tanh(structure.signed_distance(grid, shp) / width))
        vol += occupancy * (structure.value - vol)
    if seed is not None:
        noise = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shp),
                                        sigma=2.0 * scale, mode="wrap")
        vol += 0.02 * noise / max(float(noise.std()), 1e-12)
        np.clip(vol, 0.0, 1.0, out=vol)
    return vol.astype(dt, copy=False)
