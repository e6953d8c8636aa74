"""Plain NumPy twins of the C++ kernels in ``_core``, with the same signatures.

They define what each kernel computes, are compared with it in the tests, and let the benchmark
run the same PALM iterations without the native code
(``mrusfusion.fusion.fuse_with_kernels``). They are written for clarity, not speed. (They live in
the package rather than under ``tests/`` because ``mrusfusion bench`` needs them on an installed
copy.)
"""
from __future__ import annotations

import numpy as np

from .link.features import exponents
from .link._twins import local_coupling_eval, local_normal_equations  # noqa: F401


def _dh(x):
    return np.roll(x, -1, axis=1) - x


def _dv(x):
    return np.roll(x, -1, axis=0) - x


def _dht(y):
    return np.roll(y, 1, axis=1) - y


def _dvt(y):
    return np.roll(y, 1, axis=0) - y


def _g(x, mode, uv, uh, eps):
    if mode == 1:
        return np.sqrt(_dh(x) ** 2 + _dv(x) ** 2 + x.dtype.type(eps * eps))
    return x.dtype.type(uv) * _dv(x) + x.dtype.type(uh) * _dh(x)


def roundtrip(x, threads=1):
    return np.array(x, order="C")


def gradient(x, mode, uv, uh, eps, out, threads=1):
    out[...] = _g(x, mode, uv, uh, eps)


def gradient_adjoint(y, uv, uh, out, threads=1):
    out[...] = y.dtype.type(uv) * _dvt(y) + y.dtype.type(uh) * _dht(y)


def dtd_apply(p, a_px, a, b, out, threads=1):
    lap = 4 * p - np.roll(p, 1, 0) - np.roll(p, -1, 0) - np.roll(p, 1, 1) - np.roll(p, -1, 1)
    diag = p.dtype.type(a) + (a_px if a_px is not None else 0)
    out[...] = diag * p + p.dtype.type(b) * lap
    return float(np.sum(p.astype(np.float64) * out.astype(np.float64)))


def squared_gradient_norm(x, threads=1):
    x = x.astype(np.float64)
    return float(np.sum(_dh(x) ** 2) + np.sum(_dv(x) ** 2))


def poly_eval(c, d, x, g):
    """f, f_x, f_g by direct sums of monomials."""
    f = np.zeros_like(x)
    fx = np.zeros_like(x)
    fg = np.zeros_like(x)
    for ck, (p, q) in zip(c, exponents(d)):
        f += ck * x**p * g**q
        if p:
            fx += ck * p * x ** (p - 1) * g**q
        if q:
            fg += ck * q * x**p * g ** (q - 1)
    return f, fx, fg


def coupling_eval(x, coeffs, degree, mode, uv, uh, eps, v=None, mask=None, f=None, fx=None,
                  fg=None, threads=1):
    ff, ffx, ffg = poly_eval(coeffs.astype(x.dtype), degree, x, _g(x, mode, uv, uh, eps))
    for out, val in ((f, ff), (fx, ffx), (fg, ffg)):
        if out is not None:
            out[...] = val
    if v is None:
        return 0.0
    e = v.astype(np.float64) - ff.astype(np.float64)
    return float(np.sum((mask if mask is not None else 1.0) * e * e))


def jacobian_transpose(x, r, r_sub, mask, fx, fg, mode, uv, uh, eps, scale, w1, w2, out, threads=1):
    rr = r - r_sub if r_sub is not None else r.copy()
    if mask is not None:
        rr = rr * mask
    rr = rr * x.dtype.type(scale)
    t = fg * rr
    if mode == 1:
        gm = _g(x, 1, 0, 0, eps)
        out[...] = fx * rr + _dht(t * _dh(x) / gm) + _dvt(t * _dv(x) / gm)
    else:
        out[...] = fx * rr + x.dtype.type(uv) * _dvt(t) + x.dtype.type(uh) * _dht(t)


def poly_normal_equations(x, g, y, mask, degree, x_c, x_s, g_s, threads=1):
    t = (x.astype(np.float64) - x_c) / x_s
    s = g.astype(np.float64) / g_s
    a = np.stack([(t**p * s**q).ravel() for p, q in exponents(degree)], axis=1)
    w = np.ones(a.shape[0]) if mask is None else mask.astype(np.float64).ravel()
    yy = y.astype(np.float64).ravel()
    return (a.T * w) @ a, (a.T * w) @ yy, float(np.sum(w * yy * yy))


def vstep_eval(v, y, w, mask, tau2, gamma, tau3, dk, grad=None, curv=None, threads=1):
    v64, y64 = v.astype(np.float64), y.astype(np.float64)
    t = tau2 * (mask.astype(np.float64) if mask is not None else np.ones_like(v64))
    z = y64 - v64
    e = np.exp(np.minimum(z, 80.0))
    dw = v64 - w if w is not None else np.zeros_like(v64)
    gval = float(np.sum(t * (e - gamma * z))
                 + tau3 * (np.sum(_dh(v64) ** 2) + np.sum(_dv(v64) ** 2)))
    val = gval + 0.5 * dk * float(np.sum(dw * dw))
    c = t * e
    if grad is not None:
        lap = (4 * v64 - np.roll(v64, 1, 0) - np.roll(v64, -1, 0)
               - np.roll(v64, 1, 1) - np.roll(v64, -1, 1))
        grad[...] = t * (gamma - e) + 2 * tau3 * lap + dk * dw
    gg = 0.0
    if grad is not None:
        gg = float(np.sum(grad.astype(np.float64) ** 2))
    if curv is not None:
        curv[...] = c
    return val, float(c.min()), float(c.mean()), gval, gg


def diff_stats(a, b, c=None, mask=None, threads=1):
    d = a.astype(np.float64) - b.astype(np.float64)
    m = mask.astype(np.float64) if mask is not None else 1.0
    dc = float(np.sum(d * c.astype(np.float64))) if c is not None else 0.0
    return dc, float(np.sum(m * d * d)), float(np.sum(b.astype(np.float64) ** 2))


def prox_target(v, f, mask, alpha, out, threads=1):
    m = mask if mask is not None else 1
    out[...] = v - v.dtype.type(alpha) * m * (v - f)


def _full(half, n2):
    """Full spectrum from the half spectrum of a real (n1, n2) image (Hermitian symmetry)."""
    n1 = half.shape[0]
    full = np.empty((n1, n2), dtype=half.dtype)
    h2 = half.shape[1]
    full[:, :h2] = half
    kk = (-np.arange(n1)) % n1
    for c in range(h2, n2):
        full[:, c] = np.conj(half[kk, n2 - c])
    return full


def _fold(q, s):
    n1, n2 = q.shape
    return q.reshape(s, n1 // s, s, n2 // s).mean(axis=(0, 2))


def xstep_solve(Rm, Xk, Gk, Lam, dtd, n2, s, tau1, L, Twork, X, X2=None, threads=1):
    R = _full(Rm, n2)
    if Xk is not None:
        R = R + L * _full(Xk, n2)
    if Gk is not None:
        R = R - _full(Gk, n2)
    lam = _full(Lam, n2)
    phi = 2 * tau1 * _full(dtd.astype(np.complex128), n2).real + L
    W = _fold(np.abs(lam) ** 2 / phi, s)
    T = _fold(lam * R / phi, s) / (1 + W)
    out = R / phi - np.conj(lam) * np.tile(T, (s, s)) / phi
    X[...] = out[:, : X.shape[1]]
    if X2 is not None:
        X2[...] = X


def axpby(a, b, alpha, beta, out, threads=1):
    out[...] = alpha * a.astype(np.float64) + beta * b.astype(np.float64)
    return float(np.sum(out.astype(np.float64) ** 2))


def spectral_scale(Z, d, shift, scale, threads=1):
    Z /= shift + scale * d


def mr_residual_energy(X, Lam, Ym, n2, s, threads=1):
    F = _fold(_full(Lam, n2) * _full(X, n2), s)
    m2 = n2 // s
    E = _full(Ym, m2) - F
    return float(np.sum(np.abs(E) ** 2)) / E.size


def dot(a, b, threads=1):
    return float(np.sum(a.astype(np.float64) * b.astype(np.float64)))
