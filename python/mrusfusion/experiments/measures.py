"""The measures of the realistic experiments (:mod:`.realistic`; issue 14's targets).

PSNR after scaling by the truth's maximum, the tissue regions of a CNR, the slope entering thin
structures along the beam, and the ratio of a fused measure to a reference's. The contrast of
thin structures is :func:`mrusfusion.simulate.thin_contrast`.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
from scipy import ndimage

from .. import metrics
from .._validation import as_image, check_int
from ..simulate import RealisticSimulation

__all__ = ["scaled_psnr", "tissue_regions", "entry_slope", "relative"]


def scaled_psnr(estimate, truth) -> float:
    """PSNR (dB) after dividing both images by the truth's maximum (as ``reproduce`` does).

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.full((32, 32), 2.0)
    >>> round(scaled_psnr(truth + 0.02, truth), 2)  # RMSE 0.01 of the maximum
    40.0
    """
    t = np.asarray(truth, dtype=np.float64)
    peak = float(np.max(t))
    return metrics.psnr(np.asarray(estimate, dtype=np.float64) / peak, t / peak, data_range=1.0)


def tissue_regions(sim: RealisticSimulation, erode: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """The two largest tissue classes, eroded by ``erode`` px and kept away from the thin
    layers, so that a CNR measures tissue contrast rather than edges."""
    away = ~ndimage.binary_dilation(sim.thin_mask, iterations=erode)
    masks = [ndimage.binary_erosion(sim.labels == c, iterations=erode) & away
             for c in range(int(sim.labels.max()) + 1)]
    a, b = sorted(masks, key=lambda m: -int(m.sum()))[:2]
    return a, b


def entry_slope(image, mask, depth: int = 3, beam: Tuple[int, int] = (1, 0)) -> float:
    """Mean slope (intensity per px) entering the structures of ``mask`` along the beam.

    The least-squares slope of the mean profile from ``depth`` px before each entry pixel (a
    mask pixel whose predecessor along ``beam`` is outside the mask) to the entry pixel itself:
    the slope of :func:`mrusfusion.metrics.profile_slope` on the profile averaged over the
    entries. Periodic at the borders, as the fusion's operators.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(0.5 * np.arange(32.0)[:, None], (1, 32))
    >>> mask = np.zeros((32, 32), bool); mask[20:22] = True
    >>> entry_slope(ramp, mask), entry_slope(-ramp, mask)
    (0.5, -0.5)
    """
    img = as_image(image, "image", dtype=np.float64, min_size=1)
    m = np.asarray(mask, dtype=bool)
    if m.shape != img.shape:
        raise ValueError(f"`mask` must have the shape of `image` {img.shape}, got {m.shape}")
    depth = check_int(depth, "depth", low=1)
    entry = m & ~np.roll(m, beam, axis=(0, 1))
    if not entry.any():
        raise ValueError("`mask` has no entry pixel along `beam`")
    rows, cols = np.nonzero(entry)
    offsets = np.arange(-depth, 1)
    r = (rows[:, None] + offsets[None, :] * beam[0]) % m.shape[0]
    c = (cols[:, None] + offsets[None, :] * beam[1]) % m.shape[1]
    profile = img[r, c].mean(axis=0)
    d = offsets - offsets.mean()
    return float(np.dot(d, profile - profile.mean()) / np.dot(d, d))


def relative(a: float, b: float) -> float:
    """``a / b``, NaN when ``b`` is 0 or not finite (a ratio of a fused measure to a
    reference's)."""
    return a / b if b != 0 and math.isfinite(b) else float("nan")
