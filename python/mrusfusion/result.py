"""What :func:`mrusfusion.fuse` returns (:class:`FusionResult`) and what its ``callback`` sees
after each iteration (:class:`IterationState`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Tuple, Union

import numpy as np

from .link import PolynomialLink
from .problem import LinkChoice
from .weights import Weights

__all__ = ["FusionResult", "IterationState"]


@dataclass(frozen=True)
class FusionResult:
    """Outcome of :func:`fuse`.

    Attributes
    ----------
    x : ndarray
        The MR-domain image (the paper's "fused image"): the MR super-resolved onto the US
        grid, in the MR intensity scale, sharpened where the link carries US detail into it.
    v : ndarray
        The US-domain image: the despeckled US, in the US scale, pulled towards the link's
        prediction ``f(x, g(x))`` and so towards the MR's tissue contrast, as far as
        ``coupling_share`` says.
    coeffs : ndarray
        Polynomial link coefficients (q-major order) between the scaled images
        ``x / mr_scale`` and ``v / us_scale``.
    link : PolynomialLink
        The link, with its fit residual.
    objective : ndarray
        ``psi(x_k, v_k)`` for k = 0..n_iter (solver units), non-increasing.
    lipschitz : ndarray
        Accepted step constant ``L`` of each x-step.
    n_iter : int
    converged : bool
        True when the relative-change rule was met.
    stop_reason : str
    message : str
    mr_scale, us_scale : float
        The inputs were divided by these (their maxima) before solving.
    ratio : int or tuple of int
        One ratio for every axis, or one per axis when they differ.
    weights : Weights
        ``tau1``..``tau4`` and ``gamma`` used, how each was obtained, and the measured noise levels.
    x_init : ndarray
        Starting point (aligned bicubic interpolation of the MR image), MR scale.
    timings : dict
        Seconds spent in set-up, x-steps, v-steps, evaluations of the link and its Jacobian
        (``link``, part of both steps), rejected inertial steps, and in total.
    vstep_newton, vstep_cg : ndarray
        Newton and CG iterations of each v-step.
    trials : ndarray
        Number of x-step solves of each iteration (1 + the backtracking increases of ``L``).
    restarts : int
        Inertial steps rejected by the monotone safeguard (redone as plain PALM steps).
    link_choice : LinkChoice
        How the link was chosen: the degree and knot-grid cross-validation and a message.
    explained : ndarray
        With ``refit_link``: the share of the variance of ``v`` that the link explains after
        each c-step (a value near 0 means the link degenerated to the mean of ``v``).
    link_explained : float
        The share of the variance of the final ``v`` that ``f(x, g(x))`` explains (inside the
        mask): how much of ``v`` the MR accounts for.
    registration : RegistrationResult or None
        With ``fuse(register=...)``: the transform applied to the US (``matrix`` in the
        ``scipy.ndimage.affine_transform`` convention), its similarity and message.

    Notes
    -----
    Which image to look at: ``x`` for MR tissue contrast at the US's resolution, ``v`` for the
    US's own detail (thin echogenic layers, interfaces) with less speckle. Each carries the
    other modality only through the link: ``coupling_share`` near 0 means ``v`` is close to
    the US-only despeckling and ``x`` to the MR-only super-resolution (the automatic ``tau4``
    found the link too poor a predictor of the US); near 1, ``v`` follows the MR.
    """

    x: np.ndarray
    v: np.ndarray
    coeffs: np.ndarray
    link: PolynomialLink
    objective: np.ndarray
    lipschitz: np.ndarray
    n_iter: int
    converged: bool
    stop_reason: str
    mr_scale: float
    us_scale: float
    ratio: Union[int, Tuple[int, ...]]
    weights: Weights
    x_init: np.ndarray
    timings: dict = field(default_factory=dict)
    vstep_newton: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    vstep_cg: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    trials: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    restarts: int = 0
    explained: np.ndarray = field(default_factory=lambda: np.zeros(0))
    link_choice: Optional[LinkChoice] = None
    link_explained: float = float("nan")
    registration: Any = None

    @property
    def coupling_share(self) -> float:
        """``2 tau4 / (2 tau4 + gamma tau2)`` in [0, 1]: the weight of the link's prediction
        against the US data in each pixel of ``v`` (the two terms' curvatures at the data)."""
        link, data = 2.0 * self.weights.tau4, self.weights.gamma * self.weights.tau2
        return float(link / (link + data)) if link + data > 0 else float("nan")

    @property
    def message(self) -> str:
        return f"{self.stop_reason} after {self.n_iter} iteration(s)"

    @property
    def tau1(self) -> float:
        return self.weights.tau1

    @property
    def tau2(self) -> float:
        return self.weights.tau2

    @property
    def tau3(self) -> float:
        return self.weights.tau3

    @property
    def tau4(self) -> float:
        return self.weights.tau4

    @property
    def gamma(self) -> float:
        return self.weights.gamma


class IterationState:
    """What a ``callback`` of :func:`fuse` sees after each iteration (images in input units)."""

    def __init__(self, k, x, v, psi, L, mr_scale, us_scale):
        self.iteration, self.objective, self.lipschitz = k, psi, L
        self._x, self._v, self._ms, self._us = x, v, mr_scale, us_scale

    @property
    def x(self) -> np.ndarray:
        return self._x * self._ms

    @property
    def v(self) -> np.ndarray:
        return self._v * self._us
