"""Image quality metrics of the paper (DESIGN.md section 9; El Mansouri et al. 2020, eq. 19).

Every metric returns a Python ``float``. Inputs may be any real array (float32, float64,
integers); they are checked by :mod:`mrusfusion._validation` and converted to float64 before any
reduction, so the reported value does not depend on the storage precision of the image. Complex
input is refused, as are NaN and infinite values.

* :mod:`.fidelity`: :func:`rmse`, :func:`psnr`, :func:`isnr` against a reference;
* :mod:`.similarity`: :func:`mssim`, the mean structural similarity;
* :mod:`.contrast`: :func:`cnr` between two regions (and :func:`region_values`, its region check);
* :mod:`.profiles`: :func:`profile` along a segment and its :func:`profile_slope`.
"""
from __future__ import annotations

# Public but not metrics, hence not in __all__: the sweep checks its regions with region_values.
from .contrast import Region as Region
from .contrast import cnr
from .contrast import region_values as region_values
from .fidelity import isnr, psnr, rmse
from .profiles import profile, profile_slope
from .similarity import mssim

__all__ = ["rmse", "psnr", "isnr", "mssim", "cnr", "profile", "profile_slope"]
