"""Checks and rescaling shared by the metrics (a private module of :mod:`mrusfusion.metrics`)."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .._validation import as_image

__all__ = ["as_images", "rescaled", "point"]


def as_images(ndims: Tuple[int, ...] = (2,), /, **images) -> Tuple[np.ndarray, ...]:
    """Validate images (finite, real, of a dimensionality in ``ndims``: 2-D by default) that
    must share one shape, as float64 copies."""
    arrays = tuple(
        as_image(value, name, dtype=np.float64, min_size=1, ndims=ndims)
        for name, value in images.items()
    )
    names = tuple(images)
    for name, arr in zip(names[1:], arrays[1:]):
        if arr.shape != arrays[0].shape:
            raise ValueError(
                f"`{name}` must have the shape of `{names[0]}` {arrays[0].shape}, got {arr.shape}"
            )
    return arrays


def rescaled(*arrays: np.ndarray, extra: float = 0.0,
              bound: float = 1e150) -> Tuple[float, Tuple[np.ndarray, ...]]:
    """``(s, arrays / s)`` with ``s`` the largest magnitude (and ``extra``) when it lies beyond
    ``[1/bound, bound]``, where squares (``bound = 1e150``) or products of four values
    (``1e75``) would overflow or underflow; otherwise ``(1.0, arrays)`` untouched.

    Every metric is a ratio or homogeneous of degree 1, so working on ``arrays / s`` keeps
    images of any finite scale finite and exact to rounding.
    """
    top = max([float(np.max(np.abs(a))) for a in arrays] + [abs(extra)])
    if top == 0.0 or 1.0 / bound <= top <= bound:
        return 1.0, arrays
    return top, tuple(a / top for a in arrays)


def point(value, name: str, shape: Tuple[int, int]) -> np.ndarray:
    """A (row, col) point inside an image of ``shape``, as float64."""
    try:
        pt = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        pt = None
    if pt is None or pt.shape != (2,):
        raise TypeError(f"`{name}` must be a (row, col) pair of real numbers, got {value!r}")
    if not np.all(np.isfinite(pt)):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    if np.any(pt < 0) or np.any(pt > np.array(shape) - 1):
        raise ValueError(
            f"`{name}` must lie inside the image (0 <= row <= {shape[0] - 1}, "
            f"0 <= col <= {shape[1] - 1}), got {tuple(pt.tolist())}"
        )
    return pt
