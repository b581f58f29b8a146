"""Fused elementwise kernels: one pass over memory where NumPy would make many.

NumPy evaluates ``m = b1*m + (1-b1)*g`` as several passes, each writing a
temporary array; for elementwise work, memory traffic is the whole cost. This
Numba loop reads each input once and writes each output once. Its plain NumPy twin
sits beside it (``*_reference``): that is the formula to read, and the tests check
that the two agree. Adam's twin is its update written out in optim.Adam.update.

Not everything is faster fused: a loop calling exp and log1p per element runs on
scalar libm calls, while NumPy's own exp/log are SIMD. The BCE loss therefore stays
in NumPy.

``relu_backward``, ``relu_backward_inplace`` and ``leaky_relu(_backward)`` at the bottom are
names the library calls: the ``*_numba`` functions, or with SCRATCHVAE_KERNELS=reference
(mode.py) their ``*_reference`` twins. ``adam_update`` is the kernel in both modes: the
mode chooses Adam's default (Adam(fused=...)).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .mode import KERNELS

# -- Adam ------------------------------------------------------------------------------------------


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
    """Adam's update as optim.Adam's docstring reads it (and Adam.update with fused=False runs
    it), in one pass (arrays must be C-contiguous).

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


# -- LeakyReLU ------------------------------------------------------------------------------------


def leaky_relu_reference(x: np.ndarray, negative_slope: float, inplace: bool = False) -> np.ndarray:
    """y = x where x > 0, else negative_slope * x; written over x (and x returned) when inplace
    and x is writable."""
    y = np.where(x > 0, x, x.dtype.type(negative_slope) * x)
    if inplace and x.flags.writeable:
        x[...] = y
        return x
    return y


def leaky_relu_backward_reference(dy: np.ndarray, sign: np.ndarray, negative_slope: float,
                                  inplace: bool = False) -> np.ndarray:
    """dx = dy where sign > 0, else negative_slope * dy. sign is > 0 exactly where x > 0: the
    layer passes y when the slope is >= 0, else x. Written over dy (and dy returned) when inplace
    and dy can take it (writable, of sign's dtype and memory layout)."""
    dx = np.where(sign > 0, dy, dy.dtype.type(negative_slope) * dy)
    if inplace and dy.flags.writeable and dy.dtype == sign.dtype and dy.strides == sign.strides:
        dy[...] = dx
        return dy
    return dx


@njit(cache=True, nogil=True)
def _leaky_relu_kernel(x, y, a):  # pragma: no cover (jit)
    for i in range(x.size):
        y[i] = x[i] if x[i] > 0 else a * x[i]


@njit(cache=True, nogil=True)
def _leaky_relu_inplace_kernel(x, a):  # pragma: no cover (jit)
    # its own loop, for the reason _relu_backward_inplace_kernel has one
    for i in range(x.size):
        x[i] = x[i] if x[i] > 0 else a * x[i]


@njit(cache=True, nogil=True)
def _leaky_relu_backward_kernel(dy, sign, dx, a):  # pragma: no cover (jit)
    for i in range(dx.size):
        dx[i] = dy[i] if sign[i] > 0 else a * dy[i]


@njit(cache=True, nogil=True)
def _leaky_relu_backward_inplace_kernel(dy, sign, a):  # pragma: no cover (jit)
    for i in range(dy.size):
        dy[i] = dy[i] if sign[i] > 0 else a * dy[i]


def _dense_view(a: np.ndarray) -> np.ndarray | None:
    """a's elements in memory order as a 1-D view, or None when a is not dense in memory."""
    flat = a.ravel(order="K")
    return flat if np.may_share_memory(flat, a) or a.size == 0 else None


def leaky_relu_numba(x: np.ndarray, negative_slope: float, inplace: bool = False) -> np.ndarray:
    """leaky_relu_reference in one pass: over x when inplace and x is writable and dense in
    memory, else into a new array laid out like x."""
    a = x.dtype.type(negative_slope)
    flat = _dense_view(x)
    if inplace and x.flags.writeable and flat is not None:
        _leaky_relu_inplace_kernel(flat, a)
        return x
    y = np.empty_like(x)                              # same shape, dtype and memory order as x
    if flat is None:
        np.copyto(y, x)                               # a strided view: bring it into y's dense layout
        _leaky_relu_inplace_kernel(y.ravel(order="K"), a)
    else:
        _leaky_relu_kernel(flat, y.ravel(order="K"), a)
    return y


def leaky_relu_backward_numba(dy: np.ndarray, sign: np.ndarray, negative_slope: float,
                              inplace: bool = False) -> np.ndarray:
    """leaky_relu_backward_reference in one pass: over dy when inplace and dy can take it (writable,
    sign's dtype and memory layout, dense), else into a new array laid out like sign (dense)."""
    if dy.shape != sign.shape:
        raise ValueError(f"leaky_relu_backward: dy {dy.shape} and sign {sign.shape} differ")
    a = dy.dtype.type(negative_slope)
    signs = _dense_view(sign)
    if signs is None:
        raise ValueError("leaky_relu_backward: sign must be dense in memory (the layer caches such an array)")
    same_layout = dy.dtype == sign.dtype and dy.strides == sign.strides
    flat = _dense_view(dy) if same_layout else None
    if inplace and flat is not None and dy.flags.writeable:
        _leaky_relu_backward_inplace_kernel(flat, signs, a)
        return dy
    dx = np.empty_like(sign)                          # same shape, dtype and memory order as sign
    if flat is None:
        np.copyto(dx, dy)                             # bring dy into sign's layout, then work in place
        _leaky_relu_backward_inplace_kernel(dx.ravel(order="K"), signs, a)
    else:
        _leaky_relu_backward_kernel(flat, signs, dx.ravel(order="K"), a)
    return dx


# -- the names the library calls (see mode.py) -----------------------------------------------------

adam_update = adam_update_numba                # optim.Adam(fused=False) is its reference
relu_backward = relu_backward_numba if KERNELS == "numba" else relu_backward_reference
relu_backward_inplace = relu_backward_inplace_numba if KERNELS == "numba" else relu_backward_inplace_reference
leaky_relu = leaky_relu_numba if KERNELS == "numba" else leaky_relu_reference
leaky_relu_backward = leaky_relu_backward_numba if KERNELS == "numba" else leaky_relu_backward_reference
