"""Fused elementwise kernels: one pass over memory where NumPy would make many.

NumPy evaluates ``m = b1*m + (1-b1)*g`` as several passes, each writing a
temporary array; for elementwise work, memory traffic is the whole cost. This
Numba loop reads each input once and writes each output once. Its plain NumPy twin
sits beside it (``*_reference``): that is the formula to read, and the tests check
that the two agree.

Not everything is faster fused: a loop calling exp and log1p per element runs on
scalar libm calls, while NumPy's own exp/log are SIMD. The BCE loss therefore stays
in NumPy.

``adam_update``, ``relu_backward`` and ``relu_backward_inplace`` at the bottom are the
names the library calls: the ``*_numba`` functions, or with SCRATCHVAE_KERNELS=reference
(mode.py) their ``*_reference`` twins.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .mode import KERNELS

# -- Adam ------------------------------------------------------------------------------------------


def adam_update_reference(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float,
                          beta1: float, beta2: float, eps: float, t: int) -> None:
    """Adam's step t, in place, as its formula reads (optim.Adam's docstring)."""
    m *= beta1
    m += (1 - beta1) * g                                          # m = b1 m + (1 - b1) g
    v *= beta2
    v += (1 - beta2) * g * g                                      # v = b2 v + (1 - b2) g^2
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    p -= lr * m_hat / (np.sqrt(v_hat) + eps)


# error_model="numpy": by default Numba checks every float division for a zero divisor
# (to raise ZeroDivisionError like Python); that branch alone kept this loop from
# vectorising. The divisor here is >= eps > 0 anyway.
@njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def _adam_kernel(p, g, m, v, step_size, beta1, beta2, one_minus_beta1, one_minus_beta2, v_scale,
                 eps, g_floor, mv_floor):  # pragma: no cover (jit)
    # The scalars arrive in the arrays' dtype, so float32 stays float32 and the loop
    # vectorises (float64 scalars would promote every element and call scalar sqrt).
    # Flushes are written as multiplications by a 0/1 comparison, not as branches:
    # that keeps the loop vectorised.
    for i in range(p.size):
        gi = g[i]
        gi = gi * (abs(gi) >= g_floor)            # so gi*gi cannot underflow (see adam_update)
        mi = beta1 * m[i] + one_minus_beta1 * gi
        vi = beta2 * v[i] + one_minus_beta2 * gi * gi
        mi = mi * (abs(mi) >= mv_floor)
        vi = vi * (vi >= mv_floor)
        m[i] = mi
        v[i] = vi
        p[i] -= step_size * mi / (math.sqrt(vi) * v_scale + eps)


def adam_update_numba(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float,
                      beta1: float, beta2: float, eps: float, t: int) -> None:
    """The same update as adam_update_reference, in one pass (arrays must be C-contiguous).

    The bias corrections are folded into two scalars, so no m_hat or v_hat array is made:
        lr * m_hat / (sqrt(v_hat) + eps) = step_size * m / (sqrt(v) * v_scale + eps),
        step_size = lr / (1 - beta1^t),   v_scale = 1 / sqrt(1 - beta2^t)

    One difference, far below anything float32 weights can feel: values that would
    become subnormal (below ~1e-35 in float32) are flushed to zero. Subnormal
    arithmetic takes a slow microcode path on x86, and without the flush the moments of
    parameters whose gradients shrink towards 0 (the weights of MNIST's always-black
    border pixels) drift into that range and slow every step down. A flushed gradient
    is < 1e-16, so the update it would have made is < lr * 1e-8 / eps ~ 1e-11.
    """
    step_size = lr / (1 - beta1 ** t)
    v_scale = 1.0 / math.sqrt(1 - beta2 ** t)
    for name, a in (("p", p), ("g", g), ("m", m), ("v", v)):
        if not a.flags.c_contiguous or a.dtype != p.dtype:
            raise ValueError(f"adam_update: {name} must be C-contiguous {p.dtype}, got {a.dtype} "
                             f"(contiguous={a.flags.c_contiguous})")
    dt = p.dtype.type
    mv_floor = 1000 * np.finfo(p.dtype).tiny                 # m, v below this become 0
    g_floor = math.sqrt(mv_floor / max(1 - beta2, 1e-30))    # so (1 - beta2) * g * g >= mv_floor
    _adam_kernel(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), dt(step_size), dt(beta1),
                 dt(beta2), dt(1 - beta1), dt(1 - beta2), dt(v_scale), dt(eps), dt(g_floor), dt(mv_floor))


# -- ReLU backward ---------------------------------------------------------------------------------


def relu_backward_reference(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dx = dy * (y > 0), for y = max(x, 0): y > 0 exactly where x > 0."""
    return dy * (y > 0)


def relu_backward_inplace_reference(dy: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """dy *= (y > 0), in place, and return dy; None (dy untouched) where the ReLU layer promises
    a new array: dy read-only, or of another dtype or memory layout than y."""
    if not dy.flags.writeable or dy.dtype != y.dtype or dy.strides != y.strides:
        return None
    dy *= y > 0
    return dy


@njit(cache=True, nogil=True)
def _relu_backward_kernel(dy, y, dx):  # pragma: no cover (jit)
    # One thread: the loop is memory-bound, and a second thread's wake-up cost more
    # than it saved.
    for i in range(dx.size):
        dx[i] = dy[i] if y[i] > 0 else 0.0


@njit(cache=True, nogil=True)
def _relu_backward_inplace_kernel(dy, y):  # pragma: no cover (jit)
    # In place takes its own two-argument loop. _relu_backward_kernel(dy, y, dy) gives the
    # compiler two names for one array; it then cannot vectorise safely and falls back to a
    # scalar loop with a branch per element, which is slow on random signs.
    for i in range(dy.size):
        dy[i] = dy[i] if y[i] > 0 else 0.0


def relu_backward_numba(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """relu_backward_reference in one pass, into a new array laid out like y.

    NumPy's ``dy * (y > 0)`` writes a boolean temporary and reads it back.
    """
    if dy.shape != y.shape:
        raise ValueError(f"relu_backward: dy {dy.shape} and y {y.shape} differ")
    dx = np.empty_like(y)                          # same shape, dtype and memory order as y
    # ravel('K') walks memory order: a view of y and of dx (both dense), in the same order
    if dy.dtype != y.dtype or dy.strides != y.strides:
        np.copyto(dx, dy)                          # bring dy into y's layout, then work in place
        _relu_backward_inplace_kernel(dx.ravel(order="K"), y.ravel(order="K"))
    else:
        _relu_backward_kernel(dy.ravel(order="K"), y.ravel(order="K"), dx.ravel(order="K"))
    return dx


def relu_backward_inplace_numba(dy: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """dy *= (y > 0), in place, and return dy; None (dy untouched) when dy cannot take it:
    not writable, or another dtype or memory layout than y."""
    if dy.shape != y.shape:
        raise ValueError(f"relu_backward_inplace: dy {dy.shape} and y {y.shape} differ")
    if not dy.flags.writeable or dy.dtype != y.dtype or dy.strides != y.strides:
        return None
    flat = dy.ravel(order="K")
    if not np.may_share_memory(flat, dy):          # not dense in memory: ravel copied
        return None
    _relu_backward_inplace_kernel(flat, y.ravel(order="K"))
    return dy


# -- the names the library calls (see mode.py) -----------------------------------------------------

adam_update = adam_update_numba if KERNELS == "numba" else adam_update_reference
relu_backward = relu_backward_numba if KERNELS == "numba" else relu_backward_reference
relu_backward_inplace = relu_backward_inplace_numba if KERNELS == "numba" else relu_backward_inplace_reference
