"""Argument checks and the dtype policy, in one place.

Policy (as scikit-image): float32 stays float32, float64 stays float64, every other real dtype
(integers, bool, float16) becomes float64; complex input is refused. Byte order is storage, not
precision: a big-endian float32 stays float32. Arrays come back C-contiguous, native byte order
and owned (never a view of the caller's array, so nothing we do can touch the caller's data).
"""
from __future__ import annotations

import numbers
from typing import Literal, Optional, Sequence, SupportsInt, Tuple, cast, overload

import numpy as np

from ._config import get_num_threads

#: Bounds of the weights ``tau1``..``tau4`` of every entry point (fuse, super_resolve, despeckle),
#: in solver units (images divided by their maxima): beyond 1e12 the float32 v-step overflows,
#: and below 1e-12 a positive weight is indistinguishable from 0 against the other terms.
MAX_WEIGHT = 1e12
MIN_WEIGHT = 1e-12
#: ``gamma = E[exp(b log R)]`` is 1 to 2 for any log-Rayleigh scale ``b`` in (0, 2]; the v-step
#: shifts ``v`` by ``log gamma``, so a gamma far outside this range is a units mistake.
GAMMA_RANGE = (1e-3, 1e3)
#: Values are divided by the image maximum and results multiplied back; this much headroom
#: below the largest float keeps the overshoot of a solution (ringing) representable.
HEADROOM = 1e6
#: Largest fine grid (pixels) an entry point accepts: FFT plans and kernels index with 32 bits
#: per axis product, and 2**31 float64 pixels are already 16 GiB.
MAX_PIXELS = 2**31 - 1


def float_dtype(dtype) -> np.dtype:
    """The working dtype for input of ``dtype`` (float32 stays float32, else float64)."""
    dtype = np.dtype(dtype)
    single = dtype.kind == "f" and dtype.itemsize == 4  # either byte order
    return np.dtype(np.float32) if single else np.dtype(np.float64)


def as_image(a, name: str, *, dtype=None, min_size: int = 2,
             allow_nonfinite: bool = False, ndims: Tuple[int, ...] = (2,)) -> np.ndarray:
    """Validate a real image (2-D, or 3-D where ``ndims`` allows) and return a C-contiguous
    native-endian float copy.

    Parameters
    ----------
    a : array_like
        The image.
    name : str
        Argument name, used in error messages.
    dtype : dtype, optional
        Force this float dtype; default: the dtype policy above.
    min_size : int
        Minimum size of each axis.
    ndims : tuple of int
        The dimensionalities accepted: (2,) for images, (2, 3) for images and volumes.
    """
    # Images first: the message names a 2-D array, and adds the volume where one is accepted.
    kind = f"{ndims[0]}-D"
    alt = f" (or a {ndims[1]}-D array, a volume)" if len(ndims) > 1 else ""
    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"`{name}` must be a {kind} array of real numbers, "
                        f"got {type(a).__name__}{alt}")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"`{name}` must be a {kind} array of real numbers ({exc}){alt}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "c":
            raise TypeError(f"`{name}` must be real, got complex dtype {arr.dtype}")
        raise TypeError(f"`{name}` must be a {kind} array of real numbers, "
                        f"got dtype {arr.dtype}{alt}")
    if arr.ndim not in ndims:
        raise ValueError(f"`{name}` must be a {kind} array, got shape {arr.shape}{alt}")
    if arr.ndim > ndims[0] and min(arr.shape) < max(min_size, 2):
        raise ValueError(f"`{name}` must be a {kind} array, got shape {arr.shape} (a volume "
                         f"needs at least {max(min_size, 2)} voxels on every axis; squeeze a "
                         "singleton axis)")
    if min(arr.shape) < min_size:
        side = "x".join([str(min_size)] * arr.ndim)
        raise ValueError(f"`{name}` must be at least {side} pixels, got shape {arr.shape}")
    out_dtype = float_dtype(arr.dtype) if dtype is None else np.dtype(dtype)
    out = np.array(arr, dtype=out_dtype.newbyteorder("="), order="C", copy=True)
    if not allow_nonfinite and not np.isfinite(out).all():
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise ValueError(f"`{name}` contains {bad} NaN or infinite value(s)")
    limit = float(np.finfo(out.dtype).max) / HEADROOM
    if out.size and not allow_nonfinite:
        big = float(np.max(np.abs(out)))
        if big > limit:
            raise ValueError(
                f"`{name}` has values up to {big:.3g}, within a factor {HEADROOM:g} of the largest "
                f"{out.dtype} ({float(np.finfo(out.dtype).max):.3g}), so results could overflow; "
                "divide it by a constant (the method is scale-invariant)")
    return out


def as_mask(mask, name: str, shape: Tuple[int, int], dtype) -> Optional[np.ndarray]:
    """A boolean (or 0..1 weight) mask of ``shape`` as a float array of ``dtype``, or None."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a boolean or real array, got dtype {m.dtype}")
    if m.shape != tuple(shape):
        raise ValueError(f"`{name}` must have shape {tuple(shape)} (the US grid), got {m.shape}")
    m = np.ascontiguousarray(m, dtype=dtype)
    if not np.isfinite(m).all() or (m < 0).any() or (m > 1).any():
        raise ValueError(f"`{name}` must hold values in [0, 1] (or booleans)")
    if not m.any():
        raise ValueError(f"`{name}` selects no pixel")
    return m


@overload
def check_scalar(value, name: str, *, positive: bool = ..., nonnegative: bool = ...,
                 allow_none: Literal[False] = ..., high: Optional[float] = ...) -> float: ...
@overload
def check_scalar(value, name: str, *, positive: bool = ..., nonnegative: bool = ...,
                 allow_none: bool, high: Optional[float] = ...) -> Optional[float]: ...
def check_scalar(value, name: str, *, positive: bool = False, nonnegative: bool = False,
                 allow_none: bool = False, high: Optional[float] = None) -> Optional[float]:
    """A finite real scalar (optionally > 0 or >= 0, and at most ``high``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"`{name}` must be finite, got {v}")
    if positive and v <= 0:
        raise ValueError(f"`{name}` must be > 0, got {v}")
    if nonnegative and v < 0:
        raise ValueError(f"`{name}` must be >= 0, got {v}")
    if high is not None and v > high:
        raise ValueError(f"`{name}` must be at most {high:g}, got {v:g}")
    return v


def check_weight(value, name: str, *, allow_none: bool = True,
                 allow_zero: bool = False) -> Optional[float]:
    """A weight ``tau`` in [MIN_WEIGHT, MAX_WEIGHT] (or exactly 0 when ``allow_zero``)."""
    v = check_scalar(value, name, nonnegative=True, allow_none=allow_none, high=MAX_WEIGHT)
    if v is None or (allow_zero and v == 0.0):
        return v
    if v == 0.0:
        raise ValueError(f"`{name}` must be > 0, got {v:g}")
    if v < MIN_WEIGHT:
        zero = " or exactly 0" if allow_zero else ""
        raise ValueError(f"`{name}` must be at least {MIN_WEIGHT:g}{zero} (images are scaled to "
                         f"a maximum of 1), got {v:g}")
    return v


def check_gamma(value, name: str = "gamma", *, allow_none: bool = True) -> Optional[float]:
    """The log-Rayleigh parameter, within :data:`GAMMA_RANGE`."""
    v = check_scalar(value, name, positive=True, allow_none=allow_none)
    if v is not None and not GAMMA_RANGE[0] <= v <= GAMMA_RANGE[1]:
        raise ValueError(f"`{name}` must be between {GAMMA_RANGE[0]:g} and {GAMMA_RANGE[1]:g} "
                         f"(it is E[exp(b log R)], 1 to 2 for log-Rayleigh noise), got {v:g}")
    return v


def check_tol(value, name: str = "tol", *, allow_zero: bool = False) -> float:
    """A relative tolerance in (0, 1) (or [0, 1) with ``allow_zero``)."""
    if isinstance(value, str):
        raise TypeError(f"`{name}` must be a real number, got {value!r}")
    v = check_scalar(value, name, nonnegative=True)
    if (v == 0.0 and not allow_zero) or v >= 1.0:
        low = "[0" if allow_zero else "(0"
        raise ValueError(f"`{name}` must be in {low}, 1), got {v:g}")
    return v


def check_grid_size(shape, name: str = "ratio") -> None:
    """Refuse a fine grid too large to allocate (see :data:`MAX_PIXELS`)."""
    n = 1
    for a in shape:
        n *= int(a)
    if n > MAX_PIXELS:
        dims = "x".join(str(int(a)) for a in shape)
        raise ValueError(f"`{name}` gives a fine grid of {dims} = {n:.3g} pixels, more than the "
                         f"{MAX_PIXELS} this library handles")


def check_int(value, name: str, *, low: int, high: Optional[int] = None) -> int:
    """An integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if (isinstance(value, numbers.Real) and np.isfinite(float(value))
                and float(value).is_integer()):
            v = int(cast(SupportsInt, value))  # a Real with an integral value
        else:
            raise TypeError(f"`{name}` must be an integer, got {value!r}")
    else:
        v = int(value)
    if v < low:
        rng = f">= {low}" if high is None or high > 2**20 else f"between {low} and {high}"
        raise ValueError(f"`{name}` must be {rng}, got {v}")
    if high is not None and v > high:
        rng = f"<= {high}" if high > 2**20 else f"between {low} and {high}"
        raise ValueError(f"`{name}` must be {rng}, got {v}")
    return v


def check_direction(u: Sequence[float], name: str = "scan_direction",
                    ndim: Optional[int] = None) -> Tuple[float, ...]:
    """A scan direction with one component per axis (``(u_v, u_h)`` for an image, 3 for a
    volume), normalised to unit length."""
    try:
        comps = tuple(float(c) for c in u)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a pair (u_v, u_h) of real numbers (a triple for a "
                        f"volume: one component per axis), got {u!r}") from None
    want = (2, 3) if ndim is None else (ndim,)
    if len(comps) not in want:
        kind = "a pair (u_v, u_h)" if want == (2,) else f"{' or '.join(map(str, want))} numbers"
        raise TypeError(f"`{name}` must be {kind}, one component per axis of the images, got "
                        f"{len(comps)} components")
    n = float(np.sqrt(sum(c * c for c in comps)))
    if not np.isfinite(n) or n == 0.0:
        raise ValueError(f"`{name}` must be a non-zero finite vector, got {u!r}")
    return tuple(c / n for c in comps)


def default_direction(u, ndim: int) -> Tuple[float, ...]:
    """The scan direction for ``ndim`` axes; None is axial, down the rows: ``(1, 0)`` for an
    image, ``(1, 0, 0)`` for a volume (down the first axis, as the command line assumes)."""
    if u is None:
        return (1.0, 0.0) if ndim == 2 else (1.0, 0.0, 0.0)
    return check_direction(u, ndim=ndim)


def check_spacing(spacing, ndim: int, name: str = "spacing") -> Optional[Tuple[float, ...]]:
    """The fine grid's voxel size, one positive value per axis (None: isotropic)."""
    if spacing is None:
        return None
    if np.ndim(spacing) == 0:
        spacing = (spacing,) * ndim
    try:
        h = tuple(float(c) for c in spacing)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a positive number or one per axis, "
                        f"got {spacing!r}") from None
    if len(h) != ndim:
        raise ValueError(f"`{name}` must have {ndim} components (one per axis), got {len(h)}")
    if not all(np.isfinite(c) and c > 0 for c in h):
        raise ValueError(f"`{name}` must be positive and finite, got {spacing!r}")
    return h


def difference_weights(spacing: Optional[Sequence[float]]) -> Optional[Tuple[float, ...]]:
    """The weights ``h_ref / h_a`` (``h_ref = min h``) of the differences (DESIGN.md 11), or
    None on an isotropic grid (all weights 1)."""
    if spacing is None:
        return None
    ref = min(spacing)
    w = tuple(ref / h for h in spacing)
    return None if all(c == 1.0 for c in w) else w


def check_gradient(gradient: str) -> str:
    if gradient not in ("directional", "magnitude"):
        raise ValueError(f"`gradient` must be 'directional' or 'magnitude', got {gradient!r}")
    return gradient


def infer_ratio(mr_shape, us_shape, ratio=None) -> int:
    """The integer decimation ratio between the MR grid and the US grid."""
    if ratio is not None:
        s = check_int(ratio, "ratio", low=1, high=MAX_PIXELS)
        check_grid_size((s * mr_shape[0], s * mr_shape[1]))
        if (us_shape[0] != s * mr_shape[0]) or (us_shape[1] != s * mr_shape[1]):
            raise ValueError(
                f"`us` must have shape ratio * mr.shape = {(s * mr_shape[0], s * mr_shape[1])} "
                f"for ratio={s}, got us.shape={tuple(us_shape)} and mr.shape={tuple(mr_shape)}")
        return s
    r0, r1 = us_shape[0] / mr_shape[0], us_shape[1] / mr_shape[1]
    if r0 != r1 or not float(r0).is_integer() or r0 < 1:
        raise ValueError(
            f"cannot infer an integer ratio from mr.shape={tuple(mr_shape)} and "
            f"us.shape={tuple(us_shape)} (ratios {r0:g} and {r1:g}); crop or resample the images "
            "so that us.shape == ratio * mr.shape, or pass `ratio`")
    return int(r0)


def check_ratios(ratio, ndim: int) -> Tuple[int, ...]:
    """A ratio for every axis: an int (the same on each) or one positive int per axis."""
    if np.ndim(ratio) == 0:
        return (check_int(ratio, "ratio", low=1, high=MAX_PIXELS),) * ndim
    try:
        comps = tuple(ratio)
    except TypeError:
        raise TypeError(f"`ratio` must be an integer or one per axis, got {ratio!r}") from None
    if len(comps) != ndim:
        raise ValueError(f"`ratio` must have {ndim} components (one per axis), got {len(comps)}")
    return tuple(check_int(r, "ratio", low=1, high=MAX_PIXELS) for r in comps)


def infer_ratios(mr_shape, us_shape, ratio=None) -> Tuple[int, ...]:
    """The integer decimation ratio of each axis between the MR grid and the US grid (given, or
    inferred per axis from the shapes)."""
    nd = len(us_shape)
    if ratio is not None:
        s = check_ratios(ratio, nd)
        want = tuple(r * m for r, m in zip(s, mr_shape))
        check_grid_size(want)
        if tuple(us_shape) != want:
            raise ValueError(
                f"`us` must have shape ratio * mr.shape = {want} for ratio={ratio}, got "
                f"us.shape={tuple(us_shape)} and mr.shape={tuple(mr_shape)}")
        return s
    r = [u / m for u, m in zip(us_shape, mr_shape)]
    if not all(float(v).is_integer() and v >= 1 for v in r):
        text = [f"{v:g}" for v in r]
        listed = ", ".join(text[:-1]) + " and " + text[-1]
        raise ValueError(
            f"cannot infer an integer ratio from mr.shape={tuple(mr_shape)} and "
            f"us.shape={tuple(us_shape)} (ratios {listed}); crop or "
            "resample the images so that us.shape == ratio * mr.shape on every axis, or pass "
            "`ratio`")
    return tuple(int(v) for v in r)


def threads_arg(threads) -> int:
    return get_num_threads(threads)
