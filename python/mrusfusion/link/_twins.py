"""Plain NumPy twins of the local-link kernels (``_core.local_coupling_eval`` and
``_core.local_normal_equations``), with the same signatures; re-exported by
:mod:`mrusfusion._reference`. Written for clarity, not speed: the normal equations come from a
dense design matrix, the evaluation from a per-pixel coefficient image.

Knots: ``K_a`` per axis at positions ``u = i (K_a - 1) / (n_a - 1)`` in knot units; pixel ``i``
lies between knots ``lo = min(floor(u), K_a - 2)`` and ``lo + 1`` with hat weights ``1 - w`` and
``w = u - lo`` (DESIGN 12.2).
"""
from __future__ import annotations

import itertools

import numpy as np


def _hat(n, k):
    u = np.arange(n) * (k - 1) / (n - 1) if n > 1 else np.zeros(n)
    lo = np.minimum(np.floor(u).astype(np.int64), k - 2)
    return lo, u - lo


def _terms(degree):
    return [(p, q) for q in range(degree + 1) for p in range(degree + 1 - q)]


def _gradient(x, mode, uv, uh, eps):
    dh = np.roll(x, -1, axis=1) - x
    dv = np.roll(x, -1, axis=0) - x
    if mode == 1:
        return np.sqrt(dh**2 + dv**2 + x.dtype.type(eps * eps))
    return x.dtype.type(uv) * dv + x.dtype.type(uh) * dh


def _corners(shape, knot_shape):
    """Per pixel (C order): the flat indices and weights of the 2^D surrounding knots."""
    tables = [_hat(n, k) for n, k in zip(shape, knot_shape)]
    idx, wts = [], []
    for corner in itertools.product((0, 1), repeat=len(shape)):
        kk = np.zeros(shape, np.int64)
        ww = np.ones(shape)
        for a, (lo, w) in enumerate(tables):
            view = [1] * len(shape)
            view[a] = shape[a]
            kk = kk * knot_shape[a] + (lo + corner[a]).reshape(view)
            ww = ww * (w if corner[a] else 1 - w).reshape(view)
        idx.append(kk.ravel())
        wts.append(ww.ravel())
    return idx, wts


def local_coupling_eval(x, coeffs, degree, x_c, x_s, g_s, mode, u, eps, v=None, mask=None,
                        f=None, fx=None, fg=None, threads=1):
    T = x.dtype.type
    nd = len(_terms(degree))
    knots = coeffs.shape[:-1]
    c = coeffs.astype(x.dtype).reshape(-1, nd)
    idx, wts = _corners(x.shape, knots)
    cimg = sum(w.astype(x.dtype)[:, None] * c[k] for k, w in zip(idx, wts))
    t = ((x - T(x_c)) * T(1 / x_s)).ravel()
    uv, uh = u if mode == 0 else (1.0, 0.0)
    s = (_gradient(x, mode, uv, uh, eps) * T(1 / g_s)).ravel()
    ff, ft, fs = (np.zeros(x.size, x.dtype) for _ in range(3))
    for k, (p, q) in enumerate(_terms(degree)):
        ff += cimg[:, k] * t**p * s**q
        if p:
            ft += cimg[:, k] * p * t ** (p - 1) * s**q
        if q:
            fs += cimg[:, k] * q * t**p * s ** (q - 1)
    vals = (ff, ft * T(1 / x_s), fs * T(1 / g_s))
    for out, val in zip((f, fx, fg), vals):
        if out is not None:
            out[...] = val.reshape(x.shape)
    if v is None:
        return 0.0
    e = v.astype(np.float64).ravel() - ff.astype(np.float64)
    w = 1.0 if mask is None else mask.astype(np.float64).ravel()
    return float(np.sum(w * e * e))


def local_normal_equations(x, g, y, mask, degree, knot_shape, x_c, x_s, g_s, threads=1):
    terms = _terms(degree)
    nd, knots = len(terms), tuple(knot_shape)
    nk = int(np.prod(knots))
    t = (x.astype(np.float64).ravel() - x_c) / x_s
    s = g.astype(np.float64).ravel() / g_s
    a = np.stack([t**p * s**q for p, q in terms], axis=1)
    design = np.zeros((x.size, nk * nd))
    rows = np.arange(x.size)
    for k, w in zip(*_corners(x.shape, knots)):
        for j in range(nd):
            design[rows, k * nd + j] += w * a[:, j]
    m = np.ones(x.size) if mask is None else mask.astype(np.float64).ravel()
    yy = y.astype(np.float64).ravel()
    normal = (design.T * m) @ design
    rhs = ((design.T * m) @ yy).reshape(nk, nd)
    offsets = list(itertools.product((-1, 0, 1), repeat=len(knots)))
    offsets = offsets[len(offsets) // 2:]
    blocks = np.zeros((nk, len(offsets), nd, nd))
    for k, pos in enumerate(itertools.product(*(range(n) for n in knots))):
        for slot, off in enumerate(offsets):
            nb = tuple(p + o for p, o in zip(pos, off))
            if all(0 <= b < n for b, n in zip(nb, knots)):
                k2 = int(np.ravel_multi_index(nb, knots))
                blocks[k, slot] = normal[k * nd:(k + 1) * nd, k2 * nd:(k2 + 1) * nd]
    return blocks, rhs, float(np.sum(m * yy * yy))
