"""Fused elementwise kernels: one pass over memory where NumPy would make many.

NumPy evaluates ``m = b1*m + (1-b1)*g`` as several passes, each writing a
temporary array; for elementwise work, memory traffic is the whole cost. These
Numba loops read each input once and write each output once. Each kernel has its
plain NumPy twin right here (``*_reference``), which is the formula to read; the
tests check that the two agree.
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


@njit(cache=True, fastmath=False)
def _adam_kernel(p, g, m, v, step_size, beta1, beta2, v_scale, eps):  # pragma: no cover (jit)
    one_b1, one_b2 = 1.0 - beta1, 1.0 - beta2
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
    _adam_kernel(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), step_size, beta1, beta2,
                 v_scale, eps)


# -- binary cross-entropy from logits -------------------------------------------------------------


def bce_with_logits_reference(a: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image loss (N,) and the gradient of the batch mean (N, D), for logits a and targets t (N, D)."""
    loss = np.sum(np.maximum(a, 0) - a * t + np.log1p(np.exp(-np.abs(a))), axis=1)  # (N,)
    e = np.exp(-np.abs(a))
    s = np.where(a >= 0, 1 / (1 + e), e / (1 + e))                               # sigmoid(a)
    return loss, ((s - t) / a.shape[0]).astype(a.dtype)


@njit(cache=True, fastmath=False)
def _bce_kernel(a, t, loss, grad):  # pragma: no cover (jit)
    n_img, d = a.shape
    inv_n = 1.0 / n_img
    for n in range(n_img):
        acc = 0.0  # float64 accumulator: 784 float32 terms would lose digits
        for i in range(d):
            ai, ti = a[n, i], t[n, i]
            e = math.exp(-abs(ai))
            acc += max(ai, 0.0) - ai * ti + math.log1p(e)
            s = 1.0 / (1.0 + e) if ai >= 0 else e / (1.0 + e)
            grad[n, i] = (s - ti) * inv_n
        loss[n] = acc


def bce_with_logits(a: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image loss (N,) float64 and d(mean loss)/da (N, D) in a's dtype, in one pass."""
    a, t = np.ascontiguousarray(a), np.ascontiguousarray(t, dtype=a.dtype)
    loss = np.empty(a.shape[0], dtype=np.float64)                # (N,)
    grad = np.empty_like(a)                                      # (N, D)
    _bce_kernel(a, t, loss, grad)
    return loss, grad
