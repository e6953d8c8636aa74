"""Registration of the US to the MR with the link's own similarity (DESIGN.md section 15)."""
from .register import RegistrationResult, register, register_for_fusion
from .similarity import Evaluation, LinkSimilarity
from .transforms import (TRANSFORMS, jacobian, matrix, n_params, target_registration_error,
                         world_matrix)

__all__ = [
    "RegistrationResult", "register", "register_for_fusion", "Evaluation", "LinkSimilarity",
    "TRANSFORMS", "jacobian", "matrix", "n_params", "target_registration_error", "world_matrix",
]
