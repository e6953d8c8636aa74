"""The local (patch-wise) polynomial link (DESIGN.md 12.2; El Mansouri et al., ICIP 2020).

The coefficients vary smoothly over the image: ``c(i) = sum_k w_k(i) c_k`` with tensor-product
linear B-splines (hats) ``w_k`` on a grid of knots about ``P`` pixels apart, clamped at the
border (``sum_k w_k = 1``), and ``f_i = sum_{p+q<=d} c_pq(i) t_i^p s_i^q`` in the scaled
features of :class:`~mrusfusion.link.features.FeatureScaling`. All ``c_k`` are fitted jointly:

``min sum_i m_i (y_i - sum_k w_k(i) a_i^T c_k)^2 + mu sum_{k~k'} ||Gam (c_k - c_k')||^2
+ nu sum_k ||Gam (c_k - c_glob)||^2``

with ``k~k'`` the axis neighbours of the knot grid, ``c_glob`` the global fit and
``Gam^2 = diag(sum_i m_i a_i a_i^T) / N_knots`` (each feature's share of the data per knot, so
``mu`` and ``nu`` are dimensionless: 1 weighs as much as one knot's data). The ``nu`` term makes
the system positive definite, so a flat or textureless patch falls back on its neighbours and on
the global link instead of making the system singular. The normal equations are block-sparse (a
pixel touches the ``2^D`` knots around it): one native pass accumulates, for every knot, its
blocks with the "forward" neighbours (offsets in {-1, 0, 1}^D after the centre in lexicographic
order); a banded Cholesky factorisation solves the system.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .. import _core
from .._config import get_num_threads
from .._validation import as_image, as_mask, check_direction, check_gradient, check_int
from ..operators import make_gradient
from .base import LinkMethods, real_scalar
from .features import MAX_DEGREE, FeatureScaling, n_coeffs
from .global_link import _relative, solve_normal_equations

__all__ = ["LocalPolynomialLink", "fit_local_link", "knot_shape", "forward_offsets"]


def knot_shape(shape: Tuple[int, ...], spacing: float) -> Tuple[int, ...]:
    """Knots per axis: ``max(2, 1 + ceil((n - 1) / P))``, spread evenly over the axis.

    Examples
    --------
    >>> knot_shape((256, 100), 64)
    (5, 3)
    """
    return tuple(max(2, 1 + math.ceil((n - 1) / spacing)) for n in shape)


def forward_offsets(ndim: int):
    """Knot offsets stored per knot: the centre and those after it in lexicographic order of
    {-1, 0, 1}^D (the other half are their transposes).

    Examples
    --------
    >>> forward_offsets(2)
    [(0, 0), (0, 1), (1, -1), (1, 0), (1, 1)]
    """
    every = list(itertools.product((-1, 0, 1), repeat=ndim))
    return every[len(every) // 2:]


def _pairs(knots, off):
    """Flat indices of the knots ``k`` and ``k + off`` for every ``k`` whose neighbour exists."""
    idx = np.arange(int(np.prod(knots))).reshape(knots)
    src = tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(off, knots))
    dst = tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(off, knots))
    return idx[src].ravel(), idx[dst].ravel()


@lru_cache(maxsize=32)
def _pattern(knots: Tuple[int, ...], nd: int):
    """Block-sparse (BSR) pattern of the normal matrix on a knot grid: ``indptr``, ``indices``,
    the stored block behind each matrix block (blocks are symmetric, so the block of (k', k)
    is that of (k, k')), and per block the coefficients of ``mu`` (graph Laplacian of the axis
    neighbours) and of ``nu`` (identity) in the ridge."""
    nk = int(np.prod(knots))
    nslot = len(forward_offsets(len(knots)))
    rows: list = []
    cols: list = []
    src: list = []
    lap: list = []
    degree = np.zeros(nk)
    for slot, off in enumerate(forward_offsets(len(knots))):
        i, j = _pairs(knots, off)
        axis = sum(map(abs, off)) == 1
        if axis:
            np.add.at(degree, i, 1.0)
            np.add.at(degree, j, 1.0)
        for r, c in ([(i, j)] if slot == 0 else [(i, j), (j, i)]):
            rows.append(r)
            cols.append(c)
            src.append(i * nslot + slot)
            lap.append(np.full(i.size, -1.0 if axis else 0.0))
    r, c, b, w = (np.concatenate(a) for a in (rows, cols, src, lap))
    order = np.lexsort((c, r))
    r, c, b, w = r[order], c[order], b[order], w[order]
    eye = (r == c).astype(float)
    w = w + eye * degree[r]
    indptr = np.searchsorted(r, np.arange(nk + 1))
    for a in (indptr, c, b, w, eye):
        a.setflags(write=False)  # shared by every call through the cache
    return indptr, c, b, w, eye


def _normal_matrix(blocks: np.ndarray, knots, ridge=None) -> sp.bsr_matrix:
    """The symmetric (N_knots Nd)^2 matrix from the stored forward blocks; with
    ``ridge = (gam, mu, nu)`` plus ``(mu L + nu I) kron Gam^2``."""
    nk, _, nd, _ = blocks.shape
    indptr, indices, src, lap, eye = _pattern(tuple(int(k) for k in knots), nd)
    data = blocks.reshape(-1, nd, nd)[src]
    if ridge is not None:
        gam, mu, nu = ridge
        e = np.arange(nd)
        data[:, e, e] += np.outer(mu * lap + nu * eye, gam**2)
    return sp.bsr_matrix((data, indices, indptr), shape=(nk * nd, nk * nd))


def _system(blocks, rhs, knots, gam, c_glob, mu, nu):
    """Matrix and right-hand side of the normal equations of the objective, ridge included."""
    a = _normal_matrix(blocks, knots, (gam, mu, nu))
    return a, (rhs + nu * (gam**2 * c_glob)[None, :]).ravel()


def _solve(blocks, rhs, knots, gam, c_glob, mu, nu) -> np.ndarray:
    """Knot coefficients from the normal equations. In row-major knot order the matrix is
    banded (half bandwidth under ``(k_last + 2) Nd``), and its banded Cholesky factorisation
    took a fifth of the time of a general sparse LU on 256x256 images; SuperLU remains for a
    matrix that rounding leaves not quite positive definite."""
    a, b = _system(blocks, rhs, knots, gam, c_glob, mu, nu)
    c = a.tocoo()
    up = c.col >= c.row
    r, k, v = c.row[up], c.col[up], c.data[up]
    u = int((k - r).max())
    ab = np.zeros((u + 1, a.shape[0]))
    ab[u + r - k, k] = v
    try:
        x = sla.solveh_banded(ab, b, check_finite=False)
    except np.linalg.LinAlgError:
        x = spla.spsolve(a.tocsc(), b)
    return np.asarray(x).reshape(tuple(knots) + (rhs.shape[1],))


@dataclass(frozen=True, eq=False)
class LocalPolynomialLink(LinkMethods):
    """A local polynomial link: coefficients on a knot grid, interpolated by hat functions.

    Attributes
    ----------
    coeffs : ndarray, shape knots + (Nd,)
        Coefficients of the scaled monomials ``t^p s^q`` at each knot (q-major order).
    degree : int
    shape : tuple of int
        Image shape the knot grid spans.
    scaling : FeatureScaling
        ``t = (x - x_c) / x_s``, ``s = g / g_s``, frozen at the fit.
    gam : ndarray, shape (Nd,)
        Feature scaling ``Gam`` of the ridge terms.
    c_glob : ndarray, shape (Nd,)
        The global fit the ``nu`` term pulls towards.
    mu, nu : float
        Weights of the neighbour and global ridge terms.
    knot_spacing : float
        Requested knot spacing ``P`` in pixels.
    gradient, scan_direction, eps
        As in :class:`~mrusfusion.link.global_link.PolynomialLink`.
    residual_norm, relative_residual : float
        ``||m (y - f)||`` of the fit and its ratio to ``||m y||``.
    n_pixels : int
        Pixels used in the fit.
    """

    coeffs: np.ndarray
    degree: int
    shape: Tuple[int, ...]
    scaling: FeatureScaling
    gam: np.ndarray
    c_glob: np.ndarray
    mu: float
    nu: float
    knot_spacing: float
    gradient: str = "directional"
    scan_direction: Tuple[float, float] = (1.0, 0.0)
    eps: float = 1e-3
    residual_norm: float = float("nan")
    relative_residual: float = float("nan")
    n_pixels: int = 0

    def __post_init__(self):
        d = check_int(self.degree, "degree", low=0, high=MAX_DEGREE)
        nd = n_coeffs(d)
        shape = tuple(int(n) for n in self.shape)
        knots = knot_shape(shape, self.knot_spacing)
        c = np.asarray(self.coeffs, dtype=np.float64)
        if c.shape != knots + (nd,):
            raise ValueError(f"`coeffs` must have shape {knots + (nd,)}, got {c.shape}")
        for name in ("gam", "c_glob"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.shape != (nd,) or not np.isfinite(a).all():
                raise ValueError(f"`{name}` must hold {nd} finite values")
            object.__setattr__(self, name, a)
        if not np.isfinite(c).all():
            raise ValueError("`coeffs` must be finite")
        object.__setattr__(self, "coeffs", np.ascontiguousarray(c))
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "degree", d)
        object.__setattr__(self, "gradient", check_gradient(self.gradient))
        object.__setattr__(self, "scan_direction", check_direction(self.scan_direction))

    @property
    def knots(self) -> Tuple[int, ...]:
        """Knots per axis."""
        return self.coeffs.shape[:-1]

    def coupling(self, x, v, mask, f, fx, fg, threads: int = 1, kernels=_core) -> float:
        """``sum m (v - f)^2``, writing ``f``, ``f_x``, ``f_g`` where not None (one native pass,
        ``c(i)`` interpolated from the ``2^D`` knots around each pixel)."""
        if x.shape != self.shape:
            raise ValueError(f"`x` must have the shape {self.shape} the link was fitted on, "
                             f"got {x.shape}")
        g, sc = self.grad, self.scaling
        return kernels.local_coupling_eval(x, self.coeffs.astype(x.dtype), self.degree, sc.x_c,
                                           sc.x_s, sc.g_s, g.mode, g.u, g.eps, v, mask, f,
                                           fx, fg, threads)

    def penalty(self) -> float:
        """``mu sum_{k~k'} ||Gam (c_k - c_k')||^2 + nu sum_k ||Gam (c_k - c_glob)||^2``."""
        g2 = self.gam**2
        c = self.coeffs
        s = sum(float(np.sum(g2 * np.diff(c, axis=a) ** 2)) for a in range(c.ndim - 1))
        return self.mu * s + self.nu * float(np.sum(g2 * (c - self.c_glob) ** 2))

    def refit(self, x, v, mask=None, threads: Optional[int] = None,
              kernels=_core) -> "LocalPolynomialLink":
        """The exact minimiser over the knot coefficients of ``sum m (v - f)^2 + penalty()``,
        with degree, knots, scaling, ``Gam``, ``c_glob``, ``mu`` and ``nu`` frozen (DESIGN 12.3).

        Examples
        --------
        >>> yy, xx = np.mgrid[0:32, 0:32] / 32
        >>> x = 0.5 + 0.25 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
        >>> link = fit_local_link(x, x, 1, knot_spacing=16)
        >>> new = link.refit(x, 2 * x)
        >>> def psi(k): return k.coupling(x, 2 * x, None, None, None, None) + k.penalty()
        >>> bool(psi(new) <= psi(link))
        True
        """
        x = self._image(x, dtype=np.float64)
        v = as_image(v, "v", min_size=1, dtype=np.float64)
        if x.shape != self.shape or v.shape != self.shape:
            raise ValueError(f"`x` and `v` must have shape {self.shape}, "
                             f"got {x.shape} and {v.shape}")
        m = as_mask(mask, "mask", x.shape, np.float64)
        nt = get_num_threads(threads)
        g = self.grad.apply(x)
        sc = self.scaling
        blocks, rhs, yy = kernels.local_normal_equations(x, g, v, m, self.degree, self.knots,
                                                         sc.x_c, sc.x_s, sc.g_s, nt)
        c = _solve(blocks, rhs, self.knots, self.gam, self.c_glob, self.mu, self.nu)
        link = replace(self, coeffs=c)
        rn = math.sqrt(max(link.coupling(x, v, m, None, None, None, nt, kernels), 0.0))
        n_pix = int(np.count_nonzero(m)) if m is not None else x.size
        return replace(link, residual_norm=rn, relative_residual=_relative(rn, yy), n_pixels=n_pix)


def fit_local_link(mr_up, us, degree: int, *, knot_spacing: float, mu: float = 1.0,
                   nu: float = 1e-2, mask=None, gradient: str = "directional",
                   scan_direction=(1.0, 0.0), eps: float = 1e-3, threads: Optional[int] = None,
                   kernels=_core) -> LocalPolynomialLink:
    """Fit a local polynomial link (DESIGN 12.2).

    Parameters
    ----------
    mr_up : ndarray, shape (n1, n2)
        MR image on the US grid (e.g. the bicubic upsampling of the observation).
    us : ndarray, shape (n1, n2)
        US image.
    degree : int
        Polynomial degree (0 to 10).
    knot_spacing : float
        Knot spacing ``P`` in pixels (at least 2); the knots spread evenly, at most ``P`` apart.
    mu : float
        Weight (>= 0) of the differences between neighbouring knots; large ``mu`` gives the
        global link.
    nu : float
        Weight (> 0) of the pull towards the global fit; keeps the system positive definite.
    mask : ndarray of bool, optional
        Pixels to fit on.
    gradient, scan_direction, eps
        Gradient map of the link, as in :func:`~mrusfusion.fit_polynomial`.
    threads : int, optional
    kernels : module
        ``_core`` or its NumPy twins ``mrusfusion._reference``.

    Returns
    -------
    LocalPolynomialLink

    Notes
    -----
    Solves the normal equations of the objective in the module docstring. The global fit
    ``c_glob`` takes the minimum-norm solution when its system is singular, so the fit never
    fails on a constant image or patch (its coefficients then follow the ridge terms).

    Examples
    --------
    >>> yy, xx = np.mgrid[0:32, 0:32] / 32
    >>> x = 0.5 + 0.25 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    >>> link = fit_local_link(x, (1 + xx) * x, 1, knot_spacing=16, mu=0.01)
    >>> link.knots, bool(link.relative_residual < 0.02)
    ((3, 3), True)
    """
    x = as_image(mr_up, "mr_up", dtype=np.float64)
    y = as_image(us, "us", dtype=np.float64)
    if y.shape != x.shape:
        raise ValueError(f"`us` must have the shape of `mr_up` {x.shape}, got {y.shape}")
    d = check_int(degree, "degree", low=0, high=MAX_DEGREE)
    spacing = real_scalar(knot_spacing, "knot_spacing", positive=True)
    if spacing < 2:
        raise ValueError(f"`knot_spacing` must be at least 2 pixels, got {spacing:g}")
    mu = real_scalar(mu, "mu", nonnegative=True)
    nu = real_scalar(nu, "nu", positive=True)
    m = as_mask(mask, "mask", x.shape, np.float64)
    nt = get_num_threads(threads)
    gmap = make_gradient(gradient, scan_direction, eps, threads=nt)
    g = gmap.apply(x)
    sc = FeatureScaling.from_data(x, g, m)
    knots = knot_shape(x.shape, spacing)
    gram, grhs, yy = _core.poly_normal_equations(x, g, y, m, d, sc.x_c, sc.x_s, sc.g_s, nt)
    c_glob, _ = solve_normal_equations(gram, grhs, exact=True)
    # A feature that vanishes on the data keeps a (tiny) ridge, so the system stays definite.
    diag = np.diag(gram)
    top = float(diag.max()) if diag.max() > 0 else 1.0
    gam = np.sqrt(np.maximum(diag, 1e-12 * top) / np.prod(knots))
    blocks, rhs, _ = kernels.local_normal_equations(x, g, y, m, d, knots, sc.x_c, sc.x_s, sc.g_s,
                                                    nt)
    c = _solve(blocks, rhs, knots, gam, c_glob, mu, nu)
    link = LocalPolynomialLink(c, d, x.shape, sc, gam, c_glob, mu, nu, spacing, gradient,
                               scan_direction, eps)
    rn = math.sqrt(max(link.coupling(x, y, m, None, None, None, nt, kernels), 0.0))
    n_pix = int(np.count_nonzero(m)) if m is not None else x.size
    return replace(link, residual_norm=rn, relative_residual=_relative(rn, yy), n_pixels=n_pix)
