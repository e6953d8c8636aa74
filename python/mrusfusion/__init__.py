"""mrusfusion: joint MR super-resolution and US despeckling by polynomial-link fusion.

The method of El Mansouri et al., "Fusion of Magnetic Resonance and Ultrasound Images for
Endometriosis Detection", IEEE Trans. Image Process. 29 (2020), with a compiled C++/OpenMP core.
"""
import os as _os

# OpenMP threads that spin after each kernel compete with pyFFTW's threads and OpenBLAS for the
# same cores and slowed a whole PALM iteration about 5x (measured at 256x256 on 2 cores); let
# them sleep instead, unless the user chose a policy. Must be set before _core is loaded.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._version import __version__  # noqa: E402
from ._config import get_num_threads, set_num_threads, show_config
from .baselines import despeckle, super_resolve
from .fusion import FusionResult, IterationState, fuse
from .progress import ProgressBar
from .link import PolynomialLink, degree_residuals, fit_polynomial
from .simulate import RealisticSimulation, SimulationResult, simulate, simulate_bmode
from .weights import Weights
from .registration import RegistrationResult, register
from .data import phantom, phantom3d, sample_pair, pelvis_mr

__all__ = [
    "__version__", "get_num_threads", "set_num_threads", "show_config",
    "fuse", "super_resolve", "ProgressBar", "despeckle", "FusionResult", "IterationState",
    "fit_polynomial", "degree_residuals", "PolynomialLink", "simulate", "SimulationResult",
    "Weights", "phantom", "phantom3d", "sample_pair", "pelvis_mr", "simulate_bmode",
    "RealisticSimulation", "register", "RegistrationResult",
]
