"""im2col / col2im: turn a convolution into one matrix product.

im2col copies every receptive field of x (N, C, H, W) into a column:

    cols[n, r, l] = x_padded[n, c, oh*s_h + i*d_h, ow*s_w + j*d_w]
    r = c*kH*kW + i*kW + j          (which input value of the window: channel, kernel row, kernel col)
    l = oh*W_out + ow               (which window: output row, output col)

so cols has shape (N, C*kH*kW, H_out*W_out), and for a weight (C_out, C, kH, kW)

    weight.reshape(C_out, -1) @ cols        -> (N, C_out, H_out*W_out)

is the convolution of the whole batch (np.matmul broadcasts over n, no transpose).

col2im is the adjoint (the transpose) of im2col: each column entry is ADDED back to
the input position it was copied from. Windows overlap when stride < dilated kernel
size, so one input position may receive several contributions. Positions that fell
in the zero padding are dropped.

The kernels are compiled with Numba. They run in parallel over the batch axis only:
in col2im two windows of the same image write to the same pixel, so splitting the
windows across threads would race; different images never share memory. Small
arrays run on one thread (see PARALLEL_MIN_SIZE).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numba import njit, prange

Pair = tuple[int, int]


def pair(v: int | Sequence[int], name: str) -> Pair:
    """An int or a pair of ints -> (int, int); raises ValueError for anything else."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(
        isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in v
    ):
        return int(v[0]), int(v[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")


def conv_output_size(size: int, k: int, s: int, p: int, d: int) -> int:
    """floor((size + 2p - d(k-1) - 1) / s) + 1: how many windows fit along one axis."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose_output_size(size: int, k: int, s: int, p: int, d: int, output_padding: int = 0) -> int:
    """(size-1)s - 2p + d(k-1) + output_padding + 1: the largest input a conv maps to `size`.

    A strided conv maps several input sizes to the same output size; output_padding
    picks which one (it must be < s, or < d, to stay in that set).
    """
    return (size - 1) * s - 2 * p + d * (k - 1) + output_padding + 1


def _check_float(a: np.ndarray, what: str) -> None:
    # One compiled version per dtype; restricting dtypes keeps the numba cache small.
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{what}: expected float32 or float64, got {a.dtype}")


def _check_out(out: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, what: str) -> None:
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"{what}: out must be a C-contiguous {dtype} array of shape {shape}, "
            f"got {out.dtype} {out.shape} (contiguous={out.flags.c_contiguous})"
        )


# Each kernel is written for ONE image n; two drivers run it over the batch. The parallel
# driver pays a thread wake-up per call (microseconds, or milliseconds when the CPU is
# busy), which costs more than it saves on small arrays, so those take the serial driver.
PARALLEL_MIN_SIZE = 1 << 14  # elements of cols below which one thread does it all (crossover measured ~1e4)


@njit(cache=True, fastmath=False)
def _im2col_image(x, cols, n, geometry):  # pragma: no cover (jit)
    kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out = geometry
    _, C, H, W = x.shape
    for c in range(C):
        for i in range(kH):
            for j in range(kW):
                r = (c * kH + i) * kW + j
                for oh in range(H_out):
                    h = oh * sH - pH + i * dH
                    row_inside = 0 <= h < H
                    for ow in range(W_out):
                        w = ow * sW - pW + j * dW
                        if row_inside and 0 <= w < W:
                            cols[n, r, oh * W_out + ow] = x[n, c, h, w]
                        else:
                            cols[n, r, oh * W_out + ow] = 0.0  # zero padding


@njit(cache=True, fastmath=False)
def _col2im_image(cols, x, n, geometry):  # pragma: no cover (jit)
    kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out = geometry
    _, C, H, W = x.shape
    x[n] = 0.0  # `out` may hold old values
    for c in range(C):
        for i in range(kH):
            for j in range(kW):
                r = (c * kH + i) * kW + j
                for oh in range(H_out):
                    h = oh * sH - pH + i * dH
                    if h < 0 or h >= H:
                        continue  # this kernel row sat in the padding
                    for ow in range(W_out):
                        w = ow * sW - pW + j * dW
                        if 0 <= w < W:
                            x[n, c, h, w] += cols[n, r, oh * W_out + ow]


@njit(cache=True, parallel=True, fastmath=False)
def _im2col_parallel(x, cols, geometry):  # pragma: no cover (jit)
    for n in prange(x.shape[0]):
        _im2col_image(x, cols, n, geometry)


@njit(cache=True, fastmath=False)
def _im2col_serial(x, cols, geometry):  # pragma: no cover (jit)
    for n in range(x.shape[0]):
        _im2col_image(x, cols, n, geometry)


@njit(cache=True, parallel=True, fastmath=False)
def _col2im_parallel(cols, x, geometry):  # pragma: no cover (jit)
    for n in prange(x.shape[0]):  # images never share pixels: no race
        _col2im_image(cols, x, n, geometry)


@njit(cache=True, fastmath=False)
def _col2im_serial(cols, x, geometry):  # pragma: no cover (jit)
    for n in range(x.shape[0]):
        _col2im_image(cols, x, n, geometry)


def _use_parallel(cols: np.ndarray) -> bool:
    return cols.shape[0] > 1 and cols.size >= PARALLEL_MIN_SIZE


def _pairs(kernel_size, stride, padding, dilation) -> tuple[Pair, Pair, Pair, Pair]:
    return (pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding"),
            pair(dilation, "dilation"))


def im2col(x: np.ndarray, kernel_size: int | Pair, stride: int | Pair, padding: int | Pair,
           dilation: int | Pair, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) -> cols (N, C*kH*kW, H_out*W_out), same dtype as x.

    ``out``, if given, is filled and returned (every entry is written), so callers
    can reuse one buffer across calls.
    """
    _check_float(x, "im2col")
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    (kH, kW), (sH, sW), (pH, pW), (dH, dW) = _pairs(kernel_size, stride, padding, dilation)
    H_out, W_out = conv_output_size(H, kH, sH, pH, dH), conv_output_size(W, kW, sW, pW, dW)
    if H_out < 1 or W_out < 1:
        raise ValueError(f"im2col: input {H}x{W} gives an empty output {H_out}x{W_out}")
    shape = (N, C * kH * kW, H_out * W_out)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)                     # (N, C*kH*kW, H_out*W_out)
    else:
        _check_out(out, shape, x.dtype, "im2col")
    geometry = (kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)
    (_im2col_parallel if _use_parallel(out) else _im2col_serial)(x, out, geometry)
    return out


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel_size: int | Pair,
           stride: int | Pair, padding: int | Pair, dilation: int | Pair,
           out: np.ndarray | None = None) -> np.ndarray:
    """cols (N, C*kH*kW, H_out*W_out) -> x (N, C, H, W): the adjoint of im2col.

    Overlapping windows are summed. ``out``, if given, is zero-filled, then filled.
    """
    _check_float(cols, "col2im")
    cols = np.ascontiguousarray(cols)
    N, C, H, W = (int(s) for s in x_shape)
    (kH, kW), (sH, sW), (pH, pW), (dH, dW) = _pairs(kernel_size, stride, padding, dilation)
    H_out, W_out = conv_output_size(H, kH, sH, pH, dH), conv_output_size(W, kW, sW, pW, dW)
    if H_out < 1 or W_out < 1:
        raise ValueError(f"col2im: input {H}x{W} gives an empty output {H_out}x{W_out}")
    expected = (N, C * kH * kW, H_out * W_out)
    if cols.shape != expected:
        raise ValueError(f"col2im: for x of shape {tuple(x_shape)} expected cols of shape {expected}, "
                         f"got {cols.shape}")
    if out is None:
        out = np.empty((N, C, H, W), dtype=cols.dtype)           # (N, C, H, W)
    else:
        _check_out(out, (N, C, H, W), cols.dtype, "col2im")
    geometry = (kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)
    (_col2im_parallel if _use_parallel(cols) else _col2im_serial)(cols, out, geometry)
    return out
