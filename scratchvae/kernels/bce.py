"""Binary cross-entropy from logits, the training loss of every model, in two compiled passes.

The formulas (objective/losses.py, BCEWithLogits), with e = exp(-|a|) in (0, 1]:

    loss  = sum over every pixel of  max(a, 0) - a t + log(1 + e)          [BCE-1]
    dpred = (sigmoid(a) - t) * scale,   sigmoid(a) = 1 / (1 + e) where a >= 0, e / (1 + e) elsewhere   [BCE-2]

``bce_logits_sum_reference`` and ``bce_logits_grad_reference`` (and ``bce_logits_rows_reference``,
the loss of each image, which the log-likelihood needs) are those lines in NumPy: about
nine passes over the (N, D) logits for the loss and five for dpred, each writing a temporary.
The ``*_numba`` versions let NumPy take e = exp(-|a|) (its SIMD exp; a compiled loop would call
the scalar one per pixel) and then make one pass each:

    forward   sum(max(a, 0) - a t) and the product of (1 + e) over runs of 256 pixels, in
              float64, whose log is the sum of their logs: one log per run instead of one per
              pixel (each factor is in (1, 2], so a run's product is at most 2^256, far inside
              float64's range, and it rounds 256 times by 1e-16 at most)
    backward  dpred from a, t and the cached e, with no exp at all

The sums are float64 whatever the dtype of a; dpred has a's dtype.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..nn.activations import sigmoid
from .mode import KERNELS

RUN = 256  # pixels per product of (1 + e) in the compiled forward (module docstring); a multiple of 8


def exp_neg_abs(a: np.ndarray) -> np.ndarray:
    """e = exp(-|a|), in (0, 1] (never overflows), a's shape and dtype: three NumPy passes, in place."""
    e = np.abs(a)
    np.negative(e, out=e)
    return np.exp(e, out=e)


def bce_logits_sum_reference(a: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """(sum over every pixel of max(a, 0) - a t + log1p(exp(-|a|)) [BCE-1], e = exp(-|a|))."""
    e = exp_neg_abs(a)
    return float(np.sum(np.maximum(a, 0) - a * t + np.log1p(e), dtype=np.float64)), e


def bce_logits_grad_reference(a: np.ndarray, t: np.ndarray, e: np.ndarray, scale: float) -> np.ndarray:
    """dpred = (sigmoid(a) - t) * scale   [BCE-2], a's shape and dtype (e is not needed here)."""
    return (sigmoid(a) - t) * a.dtype.type(scale)


# reassoc lets the compiler reorder a run's sum and product into vector lanes (the result changes
# only by rounding); no assumption that values are finite, so a NaN logit still gives a NaN loss.
# error_model="numpy": no check of each divisor for zero (1 + e >= 1), which would stop the loop
# from vectorising.
_FAST = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")


@njit(**_FAST)
def _bce_rows_kernel(a, t, e, out):  # pragma: no cover (jit)
    """out[r] = the loss of row r of a (R, D): its linear part, plus the log of the (1 + e)
    product of each run of RUN pixels (and one log for the last, shorter run)."""
    R, D = a.shape
    full = D - D % RUN
    for r in range(R):
        linear = 0.0
        for i in range(D):
            ai = np.float64(a[r, i])
            linear += max(ai, 0.0) - ai * t[r, i]
        logs = 0.0
        for start in range(0, full, RUN):
            # eight running products side by side: one product is a chain of dependent
            # multiplications, eight are a vector the compiler fills in one instruction each
            p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = 1.0
            for j in range(start, start + RUN, 8):
                p0 *= 1.0 + e[r, j]
                p1 *= 1.0 + e[r, j + 1]
                p2 *= 1.0 + e[r, j + 2]
                p3 *= 1.0 + e[r, j + 3]
                p4 *= 1.0 + e[r, j + 4]
                p5 *= 1.0 + e[r, j + 5]
                p6 *= 1.0 + e[r, j + 6]
                p7 *= 1.0 + e[r, j + 7]
            logs += math.log(((p0 * p1) * (p2 * p3)) * ((p4 * p5) * (p6 * p7)))
        product = 1.0
        for i in range(full, D):
            product *= 1.0 + e[r, i]
        out[r] = linear + logs + math.log(product)


@njit(**_FAST)
def _bce_grad_kernel(a, t, e, one, scale, out):  # pragma: no cover (jit)
    # one and scale arrive in a's dtype, so float32 stays float32 (twice the vector lanes)
    for i in range(a.size):
        numerator = one if a[i] >= 0 else e[i]
        out[i] = (numerator / (one + e[i]) - t[i]) * scale


def _flat(a: np.ndarray, like: np.ndarray) -> np.ndarray:
    """a as a C-contiguous 1-D array of like's dtype (a view when it already is one)."""
    return np.ascontiguousarray(a, dtype=like.dtype).reshape(-1)


def _rows_numba(a: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The loss of each row of a (R, D), float64 (R,), and e = exp(-|a|)."""
    e = exp_neg_abs(a)
    out = np.empty(a.shape[0])
    _bce_rows_kernel(np.ascontiguousarray(a), np.ascontiguousarray(t, dtype=a.dtype), e, out)
    return out, e


def bce_logits_sum_numba(a: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """bce_logits_sum_reference with e by NumPy and the rest in one pass (module docstring): the
    whole batch as one row. A NaN logit makes the sum NaN, as in the reference."""
    total, e = _rows_numba(a.reshape(1, -1), t.reshape(1, -1))
    return float(total[0]), e.reshape(a.shape)


def bce_logits_rows_reference(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The loss of each row of a (R, D) [BCE-1], summed in float64: (R,)."""
    return np.sum(np.maximum(a, 0) - a * t + np.log1p(exp_neg_abs(a)), axis=1, dtype=np.float64)


def bce_logits_rows_numba(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """bce_logits_rows_reference with e by NumPy and the rest in one pass (module docstring)."""
    return _rows_numba(a, t)[0]


def bce_logits_rows_e_reference(a: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the loss of each row, (R,) float64; e = exp(-|a|)): a training step that weights each
    row's loss (the importance-weighted bound) keeps e for backward, as bce_logits_sum does."""
    e = exp_neg_abs(a)
    return np.sum(np.maximum(a, 0) - a * t + np.log1p(e), axis=1, dtype=np.float64), e


def bce_logits_grad_numba(a: np.ndarray, t: np.ndarray, e: np.ndarray, scale: float) -> np.ndarray:
    """bce_logits_grad_reference in one pass from the cached e."""
    af = _flat(a, a)
    out = np.empty_like(af)                                      # (a.size,)
    dt = a.dtype.type
    _bce_grad_kernel(af, _flat(t, a), _flat(e, a), dt(1), dt(scale), out)
    return out.reshape(a.shape)


# -- the names the library calls (see mode.py) -----------------------------------------------------

bce_logits_sum = bce_logits_sum_numba if KERNELS == "numba" else bce_logits_sum_reference
bce_logits_grad = bce_logits_grad_numba if KERNELS == "numba" else bce_logits_grad_reference
bce_logits_rows = bce_logits_rows_numba if KERNELS == "numba" else bce_logits_rows_reference
bce_logits_rows_e = _rows_numba if KERNELS == "numba" else bce_logits_rows_e_reference
