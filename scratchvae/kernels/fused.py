"""Fused elementwise kernels: one pass over memory where NumPy would make many.

NumPy evaluates ``m = b1*m + (1-b1)*g`` as several passes, each writing a
temporary array; for elementwise work, memory traffic is the whole cost. This
Numba loop reads each input once and writes each output once. Its plain NumPy twin
sits beside it (``*_reference``): that is the formula to read, and the tests check
that the two agree.

Not everything is faster fused: a loop calling exp and log1p per element runs on
scalar libm calls, while NumPy's own exp/log are SIMD. The BCE loss therefore stays
in NumPy (measured: 3.3 ms fused vs 1.2 ms NumPy for a 128x784 batch).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# -- Adam ------------------------------------------------------------------------------------------


def adam_update_reference(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, step_size: float,
                          beta1: float, beta2: float, v_scale: float, eps: float) -> None:
    """In place: m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= step_size * m / (sqrt(v) v_scale + eps)."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    p -= step_size * m / (np.sqrt(v) * v_scale + eps)


@njit(cache=True, fastmath=True)
def _adam_kernel(p, g, m, v, step_size, beta1, beta2, one_minus_beta1, one_minus_beta2, v_scale,
                 eps):  # pragma: no cover (jit)
    # The scalars arrive in the arrays' dtype, so float32 stays float32 and the loop
    # vectorises (float64 scalars would promote every element and call scalar sqrt).
    one_b1, one_b2 = one_minus_beta1, one_minus_beta2
    for i in range(p.size):
        gi = g[i]
        mi = beta1 * m[i] + one_b1 * gi
        vi = beta2 * v[i] + one_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= step_size * mi / (math.sqrt(vi) * v_scale + eps)


def adam_update(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, step_size: float,
                beta1: float, beta2: float, v_scale: float, eps: float) -> None:
    """The same update as adam_update_reference, in one pass (arrays must be C-contiguous)."""
    for name, a in (("p", p), ("g", g), ("m", m), ("v", v)):
        if not a.flags.c_contiguous or a.dtype != p.dtype:
            raise ValueError(f"adam_update: {name} must be C-contiguous {p.dtype}, got {a.dtype} "
                             f"(contiguous={a.flags.c_contiguous})")
    dt = p.dtype.type
    _adam_kernel(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), dt(step_size), dt(beta1),
                 dt(beta2), dt(1 - beta1), dt(1 - beta2), dt(v_scale), dt(eps))
