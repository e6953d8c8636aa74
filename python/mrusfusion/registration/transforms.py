"""Parametric transforms of the moving US and the target registration error (DESIGN.md 15).

Convention (``scipy.ndimage.affine_transform``): the output point ``o`` of the registered US is
sampled at ``p = A [o, 1]`` of the moving US, where ``A = [M | t]`` holds the top ``ndim`` rows
of the homogeneous ``(ndim+1) x (ndim+1)`` matrix. Parameters act about the grid centre ``c``
so that a rotation or a scaling does not also translate the middle of the image:

- ``"translation"``: ``p = o + t``, ``theta = t`` (fine-grid pixels);
- ``"rigid"`` (2-D): ``p = R(phi) (o - c) + c + t``, ``theta = (phi, t)`` (radians, pixels);
- ``"affine"``: ``p = (I + L) (o - c) + c + t``, ``theta = (L row by row, t)``.

Only :func:`jacobian` knows the parametrisation; the similarity works with ``dS/dA``.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import numpy as np

__all__ = ["TRANSFORMS", "n_params", "check_transform", "matrix", "jacobian",
           "target_registration_error", "world_matrix"]

TRANSFORMS = ("translation", "rigid", "affine")
#: A point: a sequence of floats or a 1-D array.
Point = Union[Sequence[float], np.ndarray]


def check_transform(transform: str, ndim: int) -> str:
    """Validate the ``transform`` name for images of ``ndim`` dimensions."""
    if transform not in TRANSFORMS:
        raise ValueError(f"`transform` must be one of {', '.join(map(repr, TRANSFORMS))}, "
                         f"got {transform!r}")
    if transform == "rigid" and ndim != 2:
        raise ValueError(f"`transform='rigid'` is implemented in 2-D only, got {ndim}-D images")
    return transform


def n_params(transform: str, ndim: int) -> int:
    """Number of parameters: ``ndim``, ``1 + ndim`` (2-D rigid) or ``ndim^2 + ndim``."""
    return {"translation": ndim, "rigid": 1 + ndim, "affine": ndim * ndim + ndim}[transform]


def _rotation(phi: float) -> Tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(phi), np.sin(phi)
    return np.array([[c, -s], [s, c]]), np.array([[-s, -c], [c, -s]])


def jacobian(transform: str, theta: np.ndarray, center: Point
             ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``ndim x (ndim+1)`` matrix ``A(theta)`` and its derivative ``dA/dtheta``.

    Returns
    -------
    A : ndarray, shape (ndim, ndim + 1)
    dA : ndarray, shape (n_params, ndim, ndim + 1)
    """
    c = np.asarray(center, dtype=np.float64)
    d = c.size
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (n_params(transform, d),):
        raise ValueError(f"`theta` must have {n_params(transform, d)} entries for "
                         f"{transform!r} in {d}-D, got shape {theta.shape}")
    t = theta[-d:]
    if transform == "translation":
        lin, dlin = np.eye(d), np.zeros((0, d, d))
    elif transform == "rigid":
        lin, drot = _rotation(theta[0])
        dlin = drot[None]
    else:
        lin = np.eye(d) + theta[: d * d].reshape(d, d)
        dlin = np.eye(d * d).reshape(d * d, d, d)
    a = np.concatenate([lin, (c + t - lin @ c)[:, None]], axis=1)
    da = np.zeros((theta.size, d, d + 1))
    k = dlin.shape[0]
    da[:k, :, :d] = dlin
    da[:k, :, d] = -dlin @ c
    da[k:, :, d] = np.eye(d)
    return a, da


def matrix(transform: str, theta: np.ndarray, center: Point) -> np.ndarray:
    """The homogeneous ``(ndim+1) x (ndim+1)`` matrix of ``theta``.

    Examples
    --------
    >>> matrix("translation", np.array([1.0, -2.0]), (7.5, 7.5))
    array([[ 1.,  0.,  1.],
           [ 0.,  1., -2.],
           [ 0.,  0.,  1.]])
    """
    a, _ = jacobian(transform, theta, center)
    d = a.shape[0]
    return np.vstack([a, np.eye(1, d + 1, d)])


def target_registration_error(estimated, true, shape: Sequence[int], *, scale=1.0) -> float:
    """Mean distance between where two transforms send the grid points (DESIGN.md 15).

    Parameters
    ----------
    estimated, true : ndarray, shape (ndim+1, ndim+1)
        Homogeneous matrices in the convention of this module (fine-grid index coordinates).
    shape : tuple of int
        The grid whose points are sent.
    scale : float or sequence of float
        Divide each axis's displacement by this before the norm: 1 for fine-grid pixels, the
        ratio for MR pixels, ``1 / spacing`` for millimetres.

    Examples
    --------
    >>> t = np.eye(3); t[0, 2] = 3.0
    >>> float(target_registration_error(t, np.eye(3), (8, 8), scale=2))
    1.5
    """
    e = np.asarray(estimated, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    d = len(shape)
    if e.shape != (d + 1, d + 1) or t.shape != (d + 1, d + 1):
        raise ValueError(f"`estimated` and `true` must be {d + 1}x{d + 1} matrices, got "
                         f"{e.shape} and {t.shape}")
    grid = np.indices(tuple(shape), dtype=np.float64).reshape(d, -1)
    diff = (e - t)[:d, :d] @ grid + (e - t)[:d, d:]
    sc = np.broadcast_to(np.asarray(scale, dtype=np.float64), (d,))
    return float(np.mean(np.sqrt(np.sum((diff / sc[:, None]) ** 2, axis=0))))


def world_matrix(index_matrix, affine) -> np.ndarray:
    """The transform in world coordinates (mm) for a US grid with voxel-to-world ``affine``.

    A 2-D transform of a slice of a volume (a 4x4 NIfTI affine) acts on the first two index
    axes and leaves the slice index alone. The result ``W A W^-1`` sends a world point of the
    registered US to the world point of the moving US it is sampled from.

    Examples
    --------
    >>> a = np.eye(3); a[0, 2] = 2.0
    >>> float(world_matrix(a, np.diag([0.5, 0.5, 1.0, 1.0]))[0, 3])
    1.0
    """
    a = np.asarray(index_matrix, dtype=np.float64)
    w = np.asarray(affine, dtype=np.float64)
    d, n = a.shape[0] - 1, w.shape[0] - 1
    if w.shape != (n + 1, n + 1) or n < d:
        raise ValueError(f"`affine` must be a square matrix of at least {d + 1} rows, "
                         f"got shape {w.shape}")
    full = np.eye(n + 1)
    full[:d, :d] = a[:d, :d]
    full[:d, n] = a[:d, d]
    return w @ full @ np.linalg.inv(w)
