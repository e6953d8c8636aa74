"""The link between the modalities: features, the global and the local polynomial links, and
their selection by blocked cross-validation (DESIGN.md sections 3 and 12)."""
from .base import Link
from .features import (MAX_DEGREE, FeatureScaling, degree_subset, exponents, monomial_coeffs,
                       n_coeffs, polynomial_features)
from .global_link import PolynomialLink, degree_residuals, fit_polynomial
from .local_link import LocalPolynomialLink, fit_local_link, knot_shape

__all__ = [
    "Link", "MAX_DEGREE", "FeatureScaling", "degree_subset", "exponents", "monomial_coeffs",
    "n_coeffs", "polynomial_features", "PolynomialLink", "degree_residuals", "fit_polynomial",
    "LocalPolynomialLink", "fit_local_link", "knot_shape",
]
