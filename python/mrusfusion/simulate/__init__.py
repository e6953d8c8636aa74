"""Simulated MR/US pairs with ground truth.

Two simulators live here:

- :func:`simulate`, the paper's synthetic protocol (section IV-A; DESIGN.md section 8): the US is
  the model's own polynomial of the MR plus i.i.d. log-Rayleigh noise;
- :func:`simulate_bmode`, a B-mode simulation from scatterers and a PSF (DESIGN.md section 14):
  correlated speckle, a non-polynomial echogenicity, specular interfaces and thin structures that
  the MR observation cannot see, so that fusion is tested without the inverse crime.
"""
from .protocol import AUTHORS_COEFFS, PAPER_SNR_DB, SimulationResult, simulate, snr_db
from .realistic import RealisticSimulation, simulate_bmode, thin_contrast

__all__ = ["simulate", "SimulationResult", "AUTHORS_COEFFS", "snr_db", "PAPER_SNR_DB",
           "simulate_bmode", "RealisticSimulation", "thin_contrast"]

# doctest.testmod(package) skips objects defined in submodules; list them so that the Examples
# of the package's public functions still run as doctests.
__test__ = {"simulate": simulate, "snr_db": snr_db, "simulate_bmode": simulate_bmode,
            "thin_contrast": thin_contrast}
