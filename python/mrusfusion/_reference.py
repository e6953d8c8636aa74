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


def _weights(x, weights):
    """Per-axis difference weights ``h_ref / h_a`` (DESIGN.md section 11), 1 when None."""
    return (1.0,) * x.ndim if weights is None else tuple(float(w) for w in weights)


def _d(x, axis):
    """Periodic forward difference ``D_a x`` along ``axis``."""
    return np.roll(x, -1, axis=axis) - x


def _dt(y, axis):
    """Its adjoint ``D_a^T y``."""
    return np.roll(y, 1, axis=axis) - y


def _g(x, mode, u, eps, weights=None):
    w = _weights(x, weights)
    t = x.dtype.type
    if mode == 1:
        sq = sum((t(w[a]) * _d(x, a)) ** 2 for a in range(x.ndim))
        return np.sqrt(sq + t(eps * eps))
    return sum(t(u[a] * w[a]) * _d(x, a) for a in range(x.ndim))


def _neg_laplacian(p, weights):
    w = _weights(p, weights)
    return sum(p.dtype.type(w[a] ** 2) * _dt(_d(p, a), a) for a in range(p.ndim))


def roundtrip(x, threads=1):
    return np.array(x, order="C")


def gradient(x, mode, u, eps, out, threads=1, weights=None):
    out[...] = _g(x, mode, u, eps, weights)


def gradient_adjoint(y, u, out, threads=1, weights=None):
    w = _weights(y, weights)
    out[...] = sum(y.dtype.type(u[a] * w[a]) * _dt(y, a) for a in range(y.ndim))


def dtd_apply(p, a_px, a, b, out, threads=1, weights=None):
    diag = p.dtype.type(a) + (a_px if a_px is not None else 0)
    out[...] = diag * p + p.dtype.type(b) * _neg_laplacian(p, weights)
    return float(np.sum(p.astype(np.float64) * out.astype(np.float64)))


def squared_gradient_norm(x, threads=1, weights=None):
    x = x.astype(np.float64)
    w = _weights(x, weights)
    return float(sum(w[a] ** 2 * np.sum(_d(x, a) ** 2) for a in range(x.ndim)))


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


def coupling_eval(x, coeffs, degree, mode, u, eps, v=None, mask=None, f=None, fx=None,
                  fg=None, threads=1, weights=None):
    ff, ffx, ffg = poly_eval(coeffs.astype(x.dtype), degree, x, _g(x, mode, u, eps, weights))
    for out, val in ((f, ff), (fx, ffx), (fg, ffg)):
        if out is not None:
            out[...] = val
    if v is None:
        return 0.0
    e = v.astype(np.float64) - ff.astype(np.float64)
    return float(np.sum((mask if mask is not None else 1.0) * e * e))


def jacobian_transpose(x, r, r_sub, mask, fx, fg, mode, u, eps, scale, w1, w2, out, threads=1,
                       weights=None, w3=None):
    rr = r - r_sub if r_sub is not None else r.copy()
    if mask is not None:
        rr = rr * mask
    rr = rr * x.dtype.type(scale)
    t = fg * rr
    w = _weights(x, weights)
    ty = x.dtype.type
    if mode == 1:
        gm = _g(x, 1, u, eps, weights)
        out[...] = fx * rr + sum(_dt(t * ty(w[a] ** 2) * _d(x, a) / gm, a) for a in range(x.ndim))
    else:
        out[...] = fx * rr + sum(ty(u[a] * w[a]) * _dt(t, a) for a in range(x.ndim))


def poly_normal_equations(x, g, y, mask, degree, x_c, x_s, g_s, threads=1):
    t = (x.astype(np.float64) - x_c) / x_s
    s = g.astype(np.float64) / g_s
    a = np.stack([(t**p * s**q).ravel() for p, q in exponents(degree)], axis=1)
    w = np.ones(a.shape[0]) if mask is None else mask.astype(np.float64).ravel()
    yy = y.astype(np.float64).ravel()
    return (a.T * w) @ a, (a.T * w) @ yy, float(np.sum(w * yy * yy))


def vstep_eval(v, y, w, mask, tau2, gamma, tau3, dk, grad=None, curv=None, threads=1,
               weights=None):
    v64, y64 = v.astype(np.float64), y.astype(np.float64)
    t = tau2 * (mask.astype(np.float64) if mask is not None else np.ones_like(v64))
    z = y64 - v64
    e = np.exp(np.minimum(z, 80.0))
    dw = v64 - w if w is not None else np.zeros_like(v64)
    gval = float(np.sum(t * (e - gamma * z))
                 + tau3 * squared_gradient_norm(v64, weights=weights))
    val = gval + 0.5 * dk * float(np.sum(dw * dw))
    c = t * e
    if grad is not None:
        lap = _neg_laplacian(v64, weights)
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
    """Full spectrum from the half spectrum of a real array whose last axis has ``n2`` values
    (Hermitian symmetry: ``Q[-k] = conj(Q[k])``)."""
    h2 = half.shape[-1]
    full = np.empty(half.shape[:-1] + (n2,), dtype=half.dtype)
    full[..., :h2] = half
    neg = half
    for a in range(half.ndim - 1):  # index -k on the leading axes
        neg = np.roll(np.flip(neg, axis=a), 1, axis=a)
    for c in range(h2, n2):
        full[..., c] = np.conj(neg[..., n2 - c])
    return full


def _ratios(s, ndim):
    return (int(s),) * ndim if np.ndim(s) == 0 else tuple(int(r) for r in s)


def _fold(q, s):
    """``B(Q)``: the mean of the ``prod(s)`` tiles of shape ``n / s``."""
    s = _ratios(s, q.ndim)
    shape = []
    for n, r in zip(q.shape, s):
        shape += [r, n // r]
    return q.reshape(shape).mean(axis=tuple(range(0, 2 * q.ndim, 2)))


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
    out = R / phi - np.conj(lam) * np.tile(T, _ratios(s, R.ndim)) / phi
    X[...] = out[..., : X.shape[-1]]
    if X2 is not None:
        X2[...] = X


def axpby(a, b, alpha, beta, out, threads=1):
    out[...] = alpha * a.astype(np.float64) + beta * b.astype(np.float64)
    return float(np.sum(out.astype(np.float64) ** 2))


def spectral_scale(Z, d, shift, scale, threads=1):
    Z /= shift + scale * d


def mr_residual_energy(X, Lam, Ym, n2, s, threads=1):
    F = _fold(_full(Lam, n2) * _full(X, n2), s)
    m2 = n2 // _ratios(s, X.ndim)[-1]
    E = _full(Ym, m2) - F
    return float(np.sum(np.abs(E) ** 2)) / E.size


def dot(a, b, threads=1):
    return float(np.sum(a.astype(np.float64) * b.astype(np.float64)))
