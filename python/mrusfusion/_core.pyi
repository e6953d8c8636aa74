"""Typed stub of the compiled kernels (cpp/src/bindings.cpp); tests/test_core.py checks that it
names exactly the functions and parameters the module exports.

Every image argument is a 2-D or 3-D NumPy array of one float type, float32 or float64, chosen by
the leading array (complex64 or complex128 for spectra), of the leading array's shape; ``u`` (the
scan direction) and ``weights`` (the difference weights h_ref / h_a, None for all 1) have one
component per axis; outputs must be C-contiguous, writeable
and must not overlap the inputs (except where an elementwise kernel says ``out`` may be an
input). Violations raise ``TypeError`` (type, dtype) or ``ValueError`` (shape, layout).
"""
from typing import Any, Sequence, TypeAlias

import numpy as np
from numpy.typing import NDArray

_Real: TypeAlias = NDArray[np.float32] | NDArray[np.float64]
_Spectrum: TypeAlias = NDArray[np.complex64] | NDArray[np.complex128]

def build_info() -> dict[str, Any]: ...
def simd() -> str: ...
def set_simd(name: str) -> None: ...
def roundtrip(x: _Real, threads: int = 1) -> _Real: ...
def gradient(x: _Real, mode: int, u: Sequence[float], eps: float, out: _Real,
             threads: int = 1, weights: Sequence[float] | None = None) -> None: ...
def gradient_adjoint(y: _Real, u: Sequence[float], out: _Real, threads: int = 1,
                     weights: Sequence[float] | None = None) -> None: ...
def dtd_apply(p: _Real, a_px: _Real | None, a: float, b: float, out: _Real,
              threads: int = 1, weights: Sequence[float] | None = None) -> float: ...
def squared_gradient_norm(x: _Real, threads: int = 1,
                          weights: Sequence[float] | None = None) -> float: ...
def coupling_eval(x: _Real, coeffs: _Real, degree: int, mode: int, u: Sequence[float],
                  eps: float, v: _Real | None = None, mask: _Real | None = None,
                  f: _Real | None = None, fx: _Real | None = None,
                  fg: _Real | None = None, threads: int = 1,
                  weights: Sequence[float] | None = None) -> float: ...
def jacobian_transpose(x: _Real, r: _Real, r_sub: _Real | None, mask: _Real | None,
                       fx: _Real, fg: _Real, mode: int, u: Sequence[float], eps: float,
                       scale: float, w1: _Real, w2: _Real | None, out: _Real,
                       threads: int = 1, weights: Sequence[float] | None = None,
                       w3: _Real | None = None) -> None: ...
def poly_normal_equations(x: _Real, g: _Real, y: _Real, mask: _Real | None, degree: int,
                          x_c: float, x_s: float, g_s: float, threads: int = 1
                          ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]: ...
def local_coupling_eval(x: _Real, coeffs: _Real, degree: int, x_c: float, x_s: float,
                        g_s: float, mode: int, u: Sequence[float], eps: float,
                        v: _Real | None = None, mask: _Real | None = None,
                        f: _Real | None = None, fx: _Real | None = None,
                        fg: _Real | None = None, threads: int = 1) -> float: ...
def local_normal_equations(x: _Real, g: _Real, y: _Real, mask: _Real | None, degree: int,
                           knot_shape: Sequence[int], x_c: float, x_s: float, g_s: float,
                           threads: int = 1
                           ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]: ...
def vstep_eval(v: _Real, y: _Real, w: _Real | None, mask: _Real | None, tau2: float,
               gamma: float, tau3: float, dk: float, grad: _Real | None = None,
               curv: _Real | None = None, threads: int = 1,
               weights: Sequence[float] | None = None
               ) -> tuple[float, float, float, float, float]: ...
def diff_stats(a: _Real, b: _Real, c: _Real | None = None, mask: _Real | None = None,
               threads: int = 1) -> tuple[float, float, float]: ...
def dot(a: _Real, b: _Real, threads: int = 1) -> float: ...
def prox_target(v: _Real, f: _Real, mask: _Real | None, alpha: float, out: _Real,
                threads: int = 1) -> None: ...
def xstep_solve(Rm: _Spectrum, Xk: _Spectrum | None, Gk: _Spectrum | None,
                Lam: _Spectrum, dtd: _Real, n2: int, s: int | Sequence[int], tau1: float,
                L: float,
                Twork: _Spectrum, X: _Spectrum, X2: _Spectrum | None = None,
                threads: int = 1) -> None: ...
def axpby(a: _Real, b: _Real, alpha: float, beta: float, out: _Real,
          threads: int = 1) -> float: ...
def spectral_scale(Z: _Spectrum, d: _Real, shift: float, scale: float,
                   threads: int = 1) -> None: ...
def mr_residual_energy(X: _Spectrum, Lam: _Spectrum, Ym: _Spectrum, n2: int,
                       s: int | Sequence[int],
                       threads: int = 1) -> float: ...
