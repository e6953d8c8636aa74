"""The experiments of :func:`~mrusfusion.experiments.reproduce.reproduce`: a ground-truth MR
image, a ratio and the paper's SNRs (section IV-A; DESIGN.md section 8), and the regions of the
phantom's lesion where the paper's Fig. 8 measures contrast and sharpness.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, cast

import numpy as np

from ..data import pelvis_mr, phantom_lesion
from ..data import phantom as phantom_image  # Case.phantom would shadow the name
from ..simulate import PAPER_SNR_DB

__all__ = ["Case", "paper_cases", "paper_snr", "phantom_regions", "check_cases"]


def phantom_regions(shape: Tuple[int, int]):
    """Regions of :func:`mrusfusion.phantom` for the paper's Fig. 8 measurements.

    Parameters
    ----------
    shape : (int, int)
        Shape of the phantom (and of the fused images).

    Returns
    -------
    lesion : (rows, cols) bool ndarray
        Inside the endometrioma-like lesion, at least two edge widths from its boundary.
    surround : (rows, cols) bool ndarray
        A ring around the lesion (from two edge widths to two edge widths plus its mean
        semi-axis outside the boundary), restricted to the uniform soft-tissue background.
    profile : ((float, float), (float, float))
        A horizontal segment through the lesion's centre crossing its right boundary, from the
        background (half a semi-axis outside) into the lesion (half a semi-axis inside): its
        profile slope is positive, larger for a sharper interface.

    Raises
    ------
    ValueError
        If the phantom is too small for the lesion to have an interior or a surrounding.
    """
    n1, n2 = (int(n) for n in shape)
    truth = phantom_image((n1, n2))
    geometry = phantom_lesion((n1, n2))
    d, width = geometry.distance, geometry.edge_width
    semi_r, semi_c = geometry.semi_axes
    ring = 0.5 * (semi_r + semi_c)
    lesion = d >= 2 * width
    surround = ((d <= -2 * width) & (d >= -2 * width - ring)
                & (np.abs(truth - geometry.background) < 0.01))
    if not lesion.any() or not surround.any():
        raise ValueError(f"the phantom of shape {(n1, n2)} is too small for the lesion regions")
    r, c = geometry.center
    start = (r, min(c + 1.5 * semi_c, n2 - 1.0))
    end = (r, c + 0.5 * semi_c)
    return lesion, surround, (start, end)


@dataclass(frozen=True, eq=False)
class Case:
    """One simulated experiment: a ground-truth MR image, a ratio and the two SNRs.

    Attributes
    ----------
    dataset : str
        Name in the tables and file names (``"pelvis"``, ``"phantom"``).
    truth : ndarray
        Ground-truth high-resolution MR image (cropped to a multiple of ``ratio``).
    ratio : int
    mr_snr_db, us_snr_db : float
        SNRs of the simulated observations.
    regions : tuple, optional
        ``(region_a, region_b, (start, end))`` for the CNR and profile slope of the ``tau4``
        sweep (see :func:`phantom_regions`).
    tau4_sweep : bool
        Run the paper's Fig. 8 ``tau4`` sweep on this case (needs ``regions``).
    """

    dataset: str
    truth: np.ndarray
    ratio: int
    mr_snr_db: float
    us_snr_db: float
    regions: Optional[tuple] = None
    tau4_sweep: bool = False

    @property
    def name(self) -> str:
        """``<dataset>_r<ratio>``, as in the figure file names."""
        return f"{self.dataset}_r{self.ratio}"

    @classmethod
    def pelvis(cls, ratio: int = 4) -> "Case":
        """The authors' simulated pelvic MR (:func:`mrusfusion.pelvis_mr`), cropped to a multiple
        of 4 and divided by its maximum, with the paper's SNRs for ``ratio``."""
        truth = pelvis_mr()
        truth = truth[: truth.shape[0] // 4 * 4, : truth.shape[1] // 4 * 4]
        truth = np.ascontiguousarray(truth / truth.max())
        return cls("pelvis", truth, ratio, *paper_snr(ratio))

    @classmethod
    def phantom(cls, ratio: int = 4, shape: Tuple[int, int] = (256, 256), *,
                tau4_sweep: bool = False) -> "Case":
        """The analytic pelvic phantom (:func:`mrusfusion.phantom`) with the paper's SNRs for
        ``ratio`` and the lesion regions of :func:`phantom_regions`."""
        # a tuple, as phantom() wants, of whatever sequence was given: phantom() checks it
        size = cast(Tuple[int, int], tuple(shape))
        return cls("phantom", phantom_image(size), ratio, *paper_snr(ratio),
                   regions=phantom_regions(shape), tau4_sweep=tau4_sweep)


def paper_snr(ratio: int) -> Tuple[float, float]:
    """``(MR, US)`` SNRs in dB of the paper's protocol at ``ratio`` (4 or 2).

    Raises
    ------
    ValueError
        For any other ratio (the paper has none).

    Examples
    --------
    >>> paper_snr(4)
    (23.26, 13.72)
    """
    if ratio not in PAPER_SNR_DB:
        raise ValueError(f"the paper's protocol has ratios 4 and 2, got {ratio}; build the Case "
                         "with your own SNRs")
    return PAPER_SNR_DB[ratio]


def paper_cases(phantom_shape: Tuple[int, int] = (256, 256)) -> List[Case]:
    """The default experiments: pelvis and phantom, ratios 4 and 2; the ``tau4`` sweep on the
    phantom at ratio 4."""
    return [Case.pelvis(4), Case.pelvis(2), Case.phantom(4, phantom_shape, tau4_sweep=True),
            Case.phantom(2, phantom_shape)]


def check_cases(cases) -> List[Case]:
    """The cases of a reproduction, checked: Case objects, unique names, at most one tau4
    sweep, and regions wherever a sweep is asked."""
    cases = list(cases)
    if not cases:
        raise ValueError("`cases` is empty; give at least one Case")
    names = set()
    for c in cases:
        if not isinstance(c, Case):
            raise TypeError(f"`cases` must hold mrusfusion.experiments.cases.Case objects, got "
                            f"{type(c).__name__}")
        if c.name in names:
            raise ValueError(f"two cases are named {c.name!r}; their files would collide")
        names.add(c.name)
        if c.tau4_sweep and c.regions is None:
            raise ValueError(f"case {c.name!r} asks for the tau4 sweep but has no regions")
    if sum(c.tau4_sweep for c in cases) > 1:
        raise ValueError("at most one case may run the tau4 sweep")
    return cases
