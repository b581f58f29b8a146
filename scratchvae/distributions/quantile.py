"""Phi^-1, the standard-normal quantile function, without scipy: the N(0, I) prior's quantiles.

Acklam's rational approximation (relative error < 1.15e-9), then one Halley step on
f(z) = Phi(z) - p with Phi(z) = erfc(-z / sqrt 2) / 2 (math.erfc, accurate in both tails):

    e = Phi(z) - p,   u = e * sqrt(2 pi) * exp(z^2 / 2)   (= e / phi(z)),
    z <- z - u / (1 + z u / 2)

which brings it to full double precision.
"""
from __future__ import annotations

import math

import numpy as np

# Acklam's coefficients: a central rational function for p_low <= p <= 1 - p_low, a tail one outside
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
_P_LOW = 0.02425


def _acklam(p: float) -> float:
    """Acklam's approximation of Phi^-1(p), 0 < p < 1 (relative error < 1.15e-9)."""
    if p < _P_LOW:                                   # lower tail: in q = sqrt(-2 log p)
        q = math.sqrt(-2.0 * math.log(p))
        return ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
                / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    if p > 1.0 - _P_LOW:                             # upper tail: the lower one mirrored
        return -_acklam(1.0 - p)
    q = p - 0.5                                      # centre: in r = q^2
    r = q * q
    return ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
            / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))


def _ppf_scalar(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"normal_ppf: p must be strictly between 0 and 1, got {p}")
    z = _acklam(p)
    e = 0.5 * math.erfc(-z / math.sqrt(2.0)) - p     # Phi(z) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(0.5 * z * z)
    return z - u / (1.0 + 0.5 * z * u)               # one Halley step


def normal_ppf(p: float | np.ndarray) -> float | np.ndarray:
    """Phi^-1(p), the standard-normal quantile, for p strictly inside (0, 1) (a float or an array).
    p = 0 or 1 (quantiles -inf, +inf) and anything outside raise ValueError."""
    if np.ndim(p) == 0:
        return _ppf_scalar(float(p))
    p = np.asarray(p, dtype=np.float64)
    return np.array([_ppf_scalar(v) for v in p.ravel()]).reshape(p.shape)
