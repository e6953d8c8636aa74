"""Moved to :mod:`mrusfusion.link`; this module only keeps older imports working."""
from .link.features import MAX_DEGREE, exponents, n_coeffs, polynomial_features  # noqa: F401
from .link.global_link import PolynomialLink, degree_residuals, fit_polynomial  # noqa: F401
