"""What every link offers the PALM engine (DESIGN.md sections 3, 12.2, 12.3).

A link maps the MR-domain image ``x`` to ``f(x, g(x))`` in the US domain. The engine calls

- ``coupling(x, v, mask, f, fx, fg, threads, kernels)``: ``sum m (v - f)^2`` and the values
  ``f``, ``f_x``, ``f_g`` written into the given buffers (one native pass);
- ``grad``: the gradient map ``g`` (``.mode, .u, .eps, .weights``), so that
  ``J^T r = f_x r + Du^T (f_g r)`` is formed by the one ``jacobian_transpose`` kernel for every
  link (the coefficients do not depend on ``x``);
- ``penalty()``: the ridge terms of the link (0 for the global link);
- ``refit(x, v, mask, threads)``: the exact minimiser over the coefficients of
  ``sum m (v - f)^2 + penalty`` with everything else frozen (the c-step of 12.3);
- ``explained_variance(x, v, mask)``: the share of the variance of ``v`` that ``f`` explains.
"""
from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

import numpy as np

from .. import _core
from .._config import get_num_threads
from .._validation import as_image, as_mask, check_scalar
from ..operators import Gradient, make_gradient

__all__ = ["Link", "LinkMethods", "real_scalar"]


def real_scalar(value, name: str, **checks) -> float:
    """:func:`~mrusfusion._validation.check_scalar` of a required value, typed as a float."""
    v = check_scalar(value, name, **checks)
    assert v is not None  # only allow_none=True gives None
    return v


@runtime_checkable
class Link(Protocol):
    """The interface of a link (structural type; see the module docstring)."""

    degree: int

    @property
    def grad(self) -> Gradient: ...

    def coupling(self, x, v, mask, f, fx, fg, threads=1, kernels=_core) -> float: ...

    def penalty(self) -> float: ...

    def refit(self, x, v, mask=None, threads=None) -> "Link": ...

    def explained_variance(self, x, v, mask=None, *, threads=None) -> float: ...


class LinkMethods:
    """Methods shared by the links, written on top of their ``coupling``."""

    gradient: str
    scan_direction: tuple
    eps: float
    spacing: Optional[tuple] = None  # the fine grid's voxel size (DESIGN 11); None: isotropic

    @property
    def grad(self) -> Gradient:
        """The gradient map ``g(x)`` this link uses."""
        return make_gradient(self.gradient, self.scan_direction, self.eps, spacing=self.spacing)

    def coupling(self, x, v, mask, f, fx, fg, threads: int = 1, kernels=_core) -> float:
        """``sum m (v - f)^2``, writing ``f``, ``f_x``, ``f_g`` where not None (each link's own)."""
        raise NotImplementedError

    def _image(self, x, name: str = "x", dtype=None) -> np.ndarray:
        return as_image(x, name, min_size=1, dtype=dtype, ndims=(2, 3))

    def evaluate(self, x, *, derivatives: bool = False, threads: Optional[int] = None):
        """``f(x, g(x))``, and with ``derivatives`` also ``f_x`` and ``f_g`` (one native pass).

        Parameters
        ----------
        x : ndarray, shape (n1, n2)
            MR-domain image on the fine grid.
        derivatives : bool
            Also return the partial derivatives.
        threads : int, optional

        Returns
        -------
        f or (f, f_x, f_g) : ndarray
        """
        x = self._image(x)
        f = np.empty_like(x)
        fx = np.empty_like(x) if derivatives else None
        fg = np.empty_like(x) if derivatives else None
        self.coupling(x, None, None, f, fx, fg, get_num_threads(threads))
        return (f, fx, fg) if derivatives else f

    def __call__(self, x, **kwargs):
        return self.evaluate(x, **kwargs)

    def jacobian_transpose(self, x, r, *, threads: Optional[int] = None) -> np.ndarray:
        """``J^T r`` of the map ``x -> f(x, g(x))``.

        Directional: ``f_x r + Du^T (f_g r)``; magnitude:
        ``f_x r + Dh^T(f_g r Dh x / g) + Dv^T(f_g r Dv x / g)``. The gradient term is kept (the
        authors' code drops it).
        """
        x = self._image(x)
        r = as_image(r, "r", min_size=1, dtype=x.dtype, ndims=(2, 3))
        if r.shape != x.shape:
            raise ValueError(f"`r` must have shape {x.shape}, got {r.shape}")
        nt = get_num_threads(threads)
        _, fx, fg = self.evaluate(x, derivatives=True, threads=nt)
        g = self.grad
        w1 = np.empty_like(x)
        w2 = np.empty_like(x) if g.mode == 1 else None
        w3 = np.empty_like(x) if g.mode == 1 and x.ndim == 3 else None
        out = np.empty_like(x)
        _core.jacobian_transpose(x, r, None, None, fx, fg, g.mode, g.u,
                                 float(g.eps or 0.0), 1.0, w1, w2, out, nt, g.weights, w3)
        return out

    def explained_variance(self, x, v, mask=None, *, threads: Optional[int] = None) -> float:
        """Share of the variance of ``v`` over the mask that ``f(x)`` explains (DESIGN 12.3).

        ``1 - sum m (v - f)^2 / sum m (v - mean_m v)^2``: 1 for a perfect link, 0 for a link
        that only predicts the mean (the degenerate c-step), negative when worse than the mean.
        When ``v`` is constant over the mask there is no variance to explain: 1.0 if ``f``
        matches ``v`` exactly, else 0.0.

        Examples
        --------
        >>> from mrusfusion.link import PolynomialLink
        >>> x = np.linspace(0, 1, 64).reshape(8, 8)
        >>> round(PolynomialLink([1.5, 1.0, 0.0], 1).explained_variance(x, 1 + 2 * x), 12)
        0.75
        """
        x = self._image(x, dtype=np.float64)
        v = as_image(v, "v", min_size=1, dtype=np.float64, ndims=(2, 3))
        if v.shape != x.shape:
            raise ValueError(f"`v` must have shape {x.shape}, got {v.shape}")
        m = as_mask(mask, "mask", x.shape, np.float64)
        ssr = self.coupling(x, v, m, None, None, None, get_num_threads(threads))
        w = np.ones(x.shape) if m is None else m
        vbar = float(np.sum(w * v) / np.sum(w))
        sst = float(np.sum(w * (v - vbar) ** 2))
        if sst == 0.0:
            return 1.0 if ssr == 0.0 else 0.0
        return 1.0 - ssr / sst
