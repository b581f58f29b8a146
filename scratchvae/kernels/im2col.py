"""im2col / col2im: turn a convolution into one matrix product.

im2col copies every receptive field of x (N, C, H, W) into a column:

    cols[r, q] = x_padded[n, c, oh*s_h + i*d_h, ow*s_w + j*d_w]
    r = c*kH*kW + i*kW + j          (which input value of the window: channel, kernel row, kernel col)
    q = n*H_out*W_out + oh*W_out + ow   (which window: image, output row, output col)

so cols has shape (C*kH*kW, N*H_out*W_out), the layout of CS231n's im2col, and for a
weight (C_out, C, kH, kW)

    weight.reshape(C_out, -1) @ cols        -> (C_out, N*H_out*W_out)

is the convolution of the whole batch as ONE matrix product. One large GEMM runs about
twice as fast as N small ones (measured: 1.3 ms vs 2.6 ms for the reference model's
second conv at batch 128); the price is a transpose of the (C_out, N, ...) result to NCHW.

col2im is the adjoint (the transpose) of im2col: each column entry is ADDED back to
the input position it was copied from. Windows overlap when stride < dilated kernel
size, so one input position may receive several contributions. Positions that fell
in the zero padding are dropped.

The kernels are compiled with Numba and run in parallel over disjoint outputs only.
im2col is a gather: each row r of cols is written by one thread. col2im is a
scatter-add: two windows of one image add into the same pixel, so splitting windows
across threads would race; it is split by channel instead, since rows (c, i, j)
only ever add into x[:, c]. Small arrays run on one thread (see PARALLEL_MIN_SIZE).
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


# Each kernel body handles ONE row of cols (im2col) or ONE channel of x (col2im); two
# drivers run it over all of them. The parallel driver pays a thread wake-up per call
# (microseconds, or milliseconds when the CPU is busy), which costs more than it saves
# on small arrays, so those take the serial driver.
PARALLEL_MIN_SIZE = 1 << 14  # elements of cols below which one thread does it all (crossover measured ~1e4)


@njit(cache=True, inline="always")
def _inside(j, W, W_out, sW, pW, dW):  # pragma: no cover (jit)
    """[lo, hi): the windows ow whose column w = ow*sW - pW + j*dW falls inside [0, W).

    Computing the range once lets the copy loops run without a bounds test per element.
    """
    off = j * dW - pW
    lo = min(max(0, -(off // sW)), W_out)                   # first ow with w >= 0: ceil(-off / sW)
    hi = max(min(W_out, (W - 1 - off) // sW + 1), lo)       # last ow with w <= W-1, plus one
    return lo, hi


@njit(cache=True, fastmath=False, inline="always")
def _im2col_row(x, cols, r, geometry):  # pragma: no cover (jit)
    """Fill row r of cols: kernel offset (c, i, j) across every window of every image.

    Written row by row, cols is filled front to back: each thread streams through
    its own rows, instead of scattering short runs over all 288 rows of a 7 MB array.
    """
    kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out = geometry
    N, C, H, W = x.shape
    c, i, j = r // (kH * kW), (r // kW) % kH, r % kW
    lo, hi = _inside(j, W, W_out, sW, pW, dW)
    w0 = lo * sW - pW + j * dW
    for n in range(N):
        for oh in range(H_out):
            h = oh * sH - pH + i * dH
            q = (n * H_out + oh) * W_out               # column of window (n, oh, 0)
            if h < 0 or h >= H:                        # a whole row of zero padding
                for ow in range(W_out):
                    cols[r, q + ow] = 0.0
                continue
            for ow in range(lo):
                cols[r, q + ow] = 0.0
            for k in range(hi - lo):
                cols[r, q + lo + k] = x[n, c, h, w0 + k * sW]
            for ow in range(hi, W_out):
                cols[r, q + ow] = 0.0


@njit(cache=True, fastmath=False, inline="always")
def _col2im_channel(cols, x, c, geometry):  # pragma: no cover (jit)
    """Sum every column entry that came from channel c back into x[:, c].

    All rows r = (c, i, j) of one channel write only to x[:, c], so channels can go
    to different threads without two of them ever adding into the same pixel. Image
    by image, all kH*kW offsets are added while that image's plane is in L1 cache.
    """
    kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out = geometry
    N, C, H, W = x.shape
    for n in range(N):
        x[n, c] = 0.0  # `out` may hold old values
        for i in range(kH):
            for j in range(kW):
                r = (c * kH + i) * kW + j
                lo, hi = _inside(j, W, W_out, sW, pW, dW)
                w0 = lo * sW - pW + j * dW
                for oh in range(H_out):
                    h = oh * sH - pH + i * dH
                    if h < 0 or h >= H:
                        continue  # this kernel row sat in the padding
                    q = (n * H_out + oh) * W_out + lo
                    for k in range(hi - lo):
                        x[n, c, h, w0 + k * sW] += cols[r, q + k]


@njit(cache=True, parallel=True, fastmath=False)
def _im2col_parallel(x, cols, geometry):  # pragma: no cover (jit)
    for r in prange(cols.shape[0]):  # a gather: every row is written by one thread
        _im2col_row(x, cols, r, geometry)


@njit(cache=True, fastmath=False)
def _im2col_serial(x, cols, geometry):  # pragma: no cover (jit)
    for r in range(cols.shape[0]):
        _im2col_row(x, cols, r, geometry)


@njit(cache=True, parallel=True, fastmath=False)
def _col2im_parallel(cols, x, geometry):  # pragma: no cover (jit)
    for c in prange(x.shape[1]):  # a scatter-add: split by channel, never by window
        _col2im_channel(cols, x, c, geometry)


@njit(cache=True, fastmath=False)
def _col2im_serial(cols, x, geometry):  # pragma: no cover (jit)
    for c in range(x.shape[1]):
        _col2im_channel(cols, x, c, geometry)


def _use_parallel(n_tasks: int, cols: np.ndarray) -> bool:
    return n_tasks > 1 and cols.size >= PARALLEL_MIN_SIZE


def _pairs(kernel_size, stride, padding, dilation) -> tuple[Pair, Pair, Pair, Pair]:
    return (pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding"),
            pair(dilation, "dilation"))


def im2col(x: np.ndarray, kernel_size: int | Pair, stride: int | Pair, padding: int | Pair,
           dilation: int | Pair, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) -> cols (C*kH*kW, N*H_out*W_out), same dtype as x.

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
    shape = (C * kH * kW, N * H_out * W_out)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)                     # (C*kH*kW, N*H_out*W_out)
    else:
        _check_out(out, shape, x.dtype, "im2col")
    geometry = (kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)
    (_im2col_parallel if _use_parallel(out.shape[0], out) else _im2col_serial)(x, out, geometry)
    return out


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel_size: int | Pair,
           stride: int | Pair, padding: int | Pair, dilation: int | Pair,
           out: np.ndarray | None = None) -> np.ndarray:
    """cols (C*kH*kW, N*H_out*W_out) -> x (N, C, H, W): the adjoint of im2col.

    Overlapping windows are summed. ``out``, if given, is zero-filled, then filled.
    """
    _check_float(cols, "col2im")
    cols = np.ascontiguousarray(cols)
    N, C, H, W = (int(s) for s in x_shape)
    (kH, kW), (sH, sW), (pH, pW), (dH, dW) = _pairs(kernel_size, stride, padding, dilation)
    H_out, W_out = conv_output_size(H, kH, sH, pH, dH), conv_output_size(W, kW, sW, pW, dW)
    if H_out < 1 or W_out < 1:
        raise ValueError(f"col2im: input {H}x{W} gives an empty output {H_out}x{W_out}")
    expected = (C * kH * kW, N * H_out * W_out)
    if cols.shape != expected:
        raise ValueError(f"col2im: for x of shape {tuple(x_shape)} expected cols of shape {expected}, "
                         f"got {cols.shape}")
    if out is None:
        out = np.empty((N, C, H, W), dtype=cols.dtype)           # (N, C, H, W)
    else:
        _check_out(out, (N, C, H, W), cols.dtype, "col2im")
    geometry = (kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)
    (_col2im_parallel if _use_parallel(C, cols) else _col2im_serial)(cols, out, geometry)
    return out
