"""BatchNorm's passes over the channel rows: the statistics, the forward map and the backward.

Every function takes x as ``rows`` (M, C): one row per position (n, or n, h, w), its C
channels side by side (a conv layer's channels-last output is already that, with no copy).
The per-channel sums are then sums down the columns, and each pass reads the rows once.

The ``*_reference`` functions are the formulas of nn/batchnorm.py as NumPy writes them. The
``*_numba`` loops do the same in fewer passes over memory, which is the whole cost of this
layer (NumPy reduces over axes (0, 2, 3) of a channels-last array element by element, and
each line of the formula writes a temporary). They fold the per-channel constants first:

    forward   y  = gamma * (x - mean) * inv_std + beta  =  x * scale + shift,
              scale = gamma * inv_std,   shift = beta - mean * scale
    backward  dx = inv_std / M * (M dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),  dxhat = gamma dy
                 = dy * scale + x * a + b,
              a = -scale * inv_std * sum(dy * xhat) / M,   b = -scale * sum(dy) / M - a * mean
              (eval mode: dx = dy * scale)

so the element passes are one multiply-add each, in x's dtype. Sums are kept in float64.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .mode import KERNELS


def _check_rows(rows: np.ndarray, what: str) -> None:
    if rows.ndim != 2:
        raise ValueError(f"{what}: rows must be (M, C), got shape {rows.shape}")


# -- reference: the formulas -----------------------------------------------------------------------


def batchnorm_stats_reference(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the biased variance (divided by M) of each column, (C,) float64 each."""
    _check_rows(rows, "batchnorm_stats")
    return rows.mean(axis=0, dtype=np.float64), rows.var(axis=0, dtype=np.float64)


def batchnorm_forward_reference(rows: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray,
                                beta: np.ndarray) -> np.ndarray:
    """y = gamma * xhat + beta,  xhat = (x - mean) * inv_std   [BN-1]; (M, C) in x's dtype."""
    _check_rows(rows, "batchnorm_forward")
    dt = rows.dtype
    xhat = (rows - mean.astype(dt)) * inv_std.astype(dt)                 # (M, C)
    return gamma.astype(dt) * xhat + beta.astype(dt)                     # (M, C)


def batchnorm_backward_reference(dy: np.ndarray, rows: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
                                 gamma: np.ndarray, batch_stats: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx (M, C), dgamma (C,), dbeta (C,)) for dy (M, C), as [BN-3], [BN-4] and [BN-5] read."""
    _check_rows(rows, "batchnorm_backward")
    dt = rows.dtype
    xhat = (rows - mean.astype(dt)) * inv_std.astype(dt)                 # (M, C)
    dgamma = (dy * xhat).sum(axis=0, dtype=np.float64)                    # (C,)   [BN-3]
    dbeta = dy.sum(axis=0, dtype=np.float64)                              # (C,)   [BN-3]
    dxhat = dy * gamma.astype(dt)                                         # (M, C)
    if not batch_stats:
        return dxhat * inv_std.astype(dt), dgamma, dbeta                  # (M, C)   [BN-4]
    M = rows.shape[0]
    sum_dxhat = dxhat.sum(axis=0)                                         # (C,)
    sum_dxhat_xhat = (dxhat * xhat).sum(axis=0)                           # (C,)
    dx = inv_std.astype(dt) / M * (M * dxhat - sum_dxhat - xhat * sum_dxhat_xhat)  # (M, C)   [BN-5]
    return dx, dgamma, dbeta


# -- numba: the same in fewer passes ---------------------------------------------------------------
# The loops run row by row, the channel loop innermost: C independent running sums, which the
# compiler vectorises without reordering any sum.


@njit(cache=True, nogil=True)
def _column_sums(rows, shift):  # pragma: no cover (jit)
    """sum(x) and sum((x - shift)**2) of each column, in float64."""
    M, C = rows.shape
    s, ss = np.zeros(C), np.zeros(C)
    for m in range(M):
        for c in range(C):
            d = rows[m, c] - shift[c]
            s[c] += rows[m, c]
            ss[c] += d * d
    return s, ss


@njit(cache=True, nogil=True)
def _scale_shift(rows, scale, shift, out):  # pragma: no cover (jit)
    M, C = rows.shape
    for m in range(M):
        for c in range(C):
            out[m, c] = rows[m, c] * scale[c] + shift[c]


@njit(cache=True, nogil=True)
def _dy_sums(dy, rows, mean):  # pragma: no cover (jit)
    """sum(dy) and sum(dy * (x - mean)) of each column, in float64."""
    M, C = dy.shape
    s, sx = np.zeros(C), np.zeros(C)
    for m in range(M):
        for c in range(C):
            s[c] += dy[m, c]
            sx[c] += dy[m, c] * (rows[m, c] - mean[c])
    return s, sx


@njit(cache=True, nogil=True)
def _backward_map(dy, rows, scale, a, b, out):  # pragma: no cover (jit)
    M, C = dy.shape
    for m in range(M):
        for c in range(C):
            out[m, c] = dy[m, c] * scale[c] + rows[m, c] * a[c] + b[c]


def _contiguous(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def batchnorm_stats_numba(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """batchnorm_stats_reference in one pass over the rows.

    The squares are taken about a first guess of the mean (the first row) rather than about 0,
    so var = sum((x - x0)^2) / M - (mean - x0)^2 keeps its digits when the mean is large
    against the spread (the textbook sum(x^2) / M - mean^2 would not)."""
    _check_rows(rows, "batchnorm_stats")
    rows = _contiguous(rows)
    M = rows.shape[0]
    guess = rows[0].astype(rows.dtype) if M else np.zeros(rows.shape[1], rows.dtype)
    s, ss = _column_sums(rows, guess)
    mean = s / M                                                          # (C,)
    var = np.maximum(ss / M - (mean - guess) ** 2, 0.0)                  # (C,)
    return mean, var


def batchnorm_forward_numba(rows: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray,
                            beta: np.ndarray) -> np.ndarray:
    """batchnorm_forward_reference as y = x * scale + shift, one pass (module docstring)."""
    _check_rows(rows, "batchnorm_forward")
    rows, dt = _contiguous(rows), rows.dtype
    scale = gamma * inv_std                                               # (C,) float64
    shift = beta - mean * scale                                           # (C,)
    out = np.empty_like(rows)                                             # (M, C)
    _scale_shift(rows, scale.astype(dt), shift.astype(dt), out)
    return out


def batchnorm_backward_numba(dy: np.ndarray, rows: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
                             gamma: np.ndarray, batch_stats: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """batchnorm_backward_reference in two passes: the sums, then dx = dy * scale + x * a + b."""
    _check_rows(rows, "batchnorm_backward")
    rows, dt = _contiguous(rows), rows.dtype
    dy = _contiguous(dy.astype(dt, copy=False))
    M, C = rows.shape
    sum_dy, sum_dy_xc = _dy_sums(dy, rows, mean.astype(dt))               # (C,) each, float64
    dgamma, dbeta = sum_dy_xc * inv_std, sum_dy                           # (C,) each   [BN-3]
    scale = gamma * inv_std                                               # (C,)
    a = -scale * inv_std * dgamma / M if batch_stats else np.zeros(C)     # (C,)
    b = -scale * dbeta / M - a * mean if batch_stats else np.zeros(C)     # (C,)
    dx = np.empty_like(rows)                                              # (M, C)
    _backward_map(dy, rows, scale.astype(dt), a.astype(dt), b.astype(dt), dx)
    return dx, dgamma, dbeta


# -- the names the library calls (see mode.py) -----------------------------------------------------

batchnorm_stats = batchnorm_stats_numba if KERNELS == "numba" else batchnorm_stats_reference
batchnorm_forward = batchnorm_forward_numba if KERNELS == "numba" else batchnorm_forward_reference
batchnorm_backward = batchnorm_backward_numba if KERNELS == "numba" else batchnorm_backward_reference
