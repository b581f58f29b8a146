"""im2col / col2im: turn a convolution into one matrix product, on channels-last memory.

im2col copies every receptive field of x (N, C, H, W) into a ROW of cols:

    cols[q, r] = x_padded[n, c, oh*s_h + i*d_h, ow*s_w + j*d_w]
    q = n*H_out*W_out + oh*W_out + ow   (which window: image, output row, output col)
    r = (i*kW + j)*C + c                (which value of the window: kernel row, kernel col, channel)

so cols has shape (N*H_out*W_out, kH*kW*C), and for a weight (C_out, C, kH, kW)

    cols @ weight.transpose(0, 2, 3, 1).reshape(C_out, -1).T     -> (N*H_out*W_out, C_out)

is the convolution of the whole batch as ONE matrix product. Note the order of r:
channel LAST (CS231n and Caffe put it first). That is the order of x in memory when x
is stored channels-last ("NHWC", torch's memory_format=torch.channels_last): the C
values under one kernel offset are then C neighbours in memory, so every copy below
moves a whole contiguous run of C numbers, which the compiler turns into vector
loads and stores. The GEMM's result (N*H_out*W_out, C_out) is channels-last too, so
a chain of conv layers never transposes: each returns its output as the NCHW-shaped
view ``out.reshape(N, H_out, W_out, C_out).transpose(0, 3, 1, 2)``. Indexing and
shapes stay NCHW; only the strides say channels-last (see ``channels_last`` in shapes.py).

col2im is the adjoint (the transpose) of im2col: each entry of cols is ADDED back to
the input position it was copied from. Windows overlap when stride < dilated kernel
size, so one position may receive several contributions; positions that fell in the
zero padding are dropped.

The kernels are compiled with Numba and split work only where outputs are disjoint.
im2col is a gather: each output row of windows (n, oh) is written by one thread.
col2im is a scatter-add: two windows of one image add into the same pixel, so it is
split by image, never by window. Small arrays run on one thread (PARALLEL_MIN_SIZE), and so
does every call from a thread other than the main one. All kernels release the GIL
(nogil), so threads that each run their share of a batch run at once.

``im2col`` and ``col2im`` at the bottom are the names the layers call: im2col_numba and
col2im_numba here, or the NumPy versions in reference.py (SCRATCHVAE_KERNELS, mode.py).
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

from .mode import KERNELS
from .reference import col2im_reference, im2col_reference
from .shapes import ConvGeometry, Pair, channels_last, conv_geometry


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


# Each kernel body handles ONE row of windows (im2col) or ONE image (col2im); two
# drivers run it over all of them. The parallel driver pays a thread wake-up per call
# (microseconds, or milliseconds when the CPU is busy), which costs more than it saves
# on small arrays, so those take the serial driver.
PARALLEL_MIN_SIZE = 1 << 14  # elements of cols below which one thread does it all
# (Only the parallel drivers' copy loops vectorise: their arrays reach LLVM marked as
# not aliasing each other. The serial ones stay scalar; the workers of parallel.py run
# them on large arrays too, where the C >= 32 copies still run at about memory speed.)
#
# ONE CHANNEL: an image model's first conv reads C = 1 channel, its last conv-transpose
# writes C = 1. There a window offset moves one number, not a run of C, so the loops above
# would spend their time on bounds tests and loop set-up. These inputs are small (one
# plane per image), so the one-channel kernels work on a zero-padded copy of the plane,
# (N, H_p, W_p), which needs no bounds test, and run along a row of windows, innermost,
# so the compiler vectorises the reads (im2col) and the adds (col2im).


@njit(cache=True, fastmath=False, inline="always")
def _im2col_row(x, cols, t, geometry):  # pragma: no cover (jit)
    """Fill the W_out rows of cols that belong to windows (n, oh, 0 .. W_out-1), t = n*H_out + oh.

    x is (N, H, W, C) here (channels-last memory), so each kernel offset (i, j) copies
    C contiguous numbers into C contiguous columns of cols.
    """
    kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out = geometry
    N, H, W, C = x.shape
    n, oh = t // H_out, t % H_out
    for ow in range(W_out):
        q = t * W_out + ow                             # row of cols: window (n, oh, ow)
        for i in range(kH):
            h = oh * sH - pH + i * dH
            for j in range(kW):
                w = ow * sW - pW + j * dW
                r = (i * kW + j) * C                   # first column of offset (i, j)
                if 0 <= h < H and 0 <= w < W:          # else the window hangs over the zero padding
                    for c in range(C):
                        cols[q, r + c] = x[n, h, w, c]
                else:
                    for c in range(C):
                        cols[q, r + c] = 0.0


@njit(cache=True, fastmath=False, inline="always")
def _col2im_image(cols, x, n, bias, geometry):  # pragma: no cover (jit)
    """Add every row of cols that came from image n back into x[n] (N, H, W, C here).

    x[n] starts at ``bias`` (zeros when there is none) in every pixel, so a
    ConvTranspose2d gets its bias in this pass instead of another sweep over x.
    One image (28*28*32 float32 = 100 KB) stays in L2 cache while its windows add up.
    """
    kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out = geometry
    N, H, W, C = x.shape
    for h in range(H):
        for w in range(W):
            for c in range(C):
                x[n, h, w, c] = bias[c]
    for oh in range(H_out):
        for ow in range(W_out):
            q = (n * H_out + oh) * W_out + ow
            for i in range(kH):
                h = oh * sH - pH + i * dH
                if h < 0 or h >= H:
                    continue                           # this kernel row sat in the padding
                for j in range(kW):
                    w = ow * sW - pW + j * dW
                    if w < 0 or w >= W:
                        continue
                    r = (i * kW + j) * C
                    for c in range(C):
                        x[n, h, w, c] += cols[q, r + c]


@njit(cache=True, parallel=True, fastmath=False, nogil=True)
def _im2col_parallel(x, cols, geometry):  # pragma: no cover (jit)
    for t in prange(x.shape[0] * geometry.H_out):  # a gather: each row of windows has one writer
        _im2col_row(x, cols, t, geometry)


@njit(cache=True, fastmath=False, nogil=True)
def _im2col_serial(x, cols, geometry):  # pragma: no cover (jit)
    for t in range(x.shape[0] * geometry.H_out):
        _im2col_row(x, cols, t, geometry)


@njit(cache=True, parallel=True, fastmath=False, nogil=True)
def _col2im_parallel(cols, x, bias, geometry):  # pragma: no cover (jit)
    for n in prange(x.shape[0]):  # a scatter-add: split by image, never by window
        _col2im_image(cols, x, n, bias, geometry)


@njit(cache=True, fastmath=False, nogil=True)
def _col2im_serial(cols, x, bias, geometry):  # pragma: no cover (jit)
    for n in range(x.shape[0]):
        _col2im_image(cols, x, n, bias, geometry)


@njit(cache=True, fastmath=False, inline="always")
def _im2col_plane_row(xp, cols, t, geometry):  # pragma: no cover (jit)
    """_im2col_row for one channel, on the zero-padded planes xp (N, H_p, W_p): see ONE CHANNEL.

    Padded coordinates shift by (p_h, p_w), so window (oh, ow) reads xp[n, oh*s_h + i*d_h,
    ow*s_w + j*d_w]. Column r = i*kW + j of W_out consecutive rows is filled at once.
    """
    kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out = geometry
    n, oh = t // H_out, t % H_out
    q0 = t * W_out                                     # row of cols of window (n, oh, 0)
    for i in range(kH):
        src = xp[n, oh * sH + i * dH]                  # (W_p,): the padded row kernel row i reads
        for j in range(kW):
            r = i * kW + j
            for ow in range(W_out):
                cols[q0 + ow, r] = src[ow * sW + j * dW]


@njit(cache=True, fastmath=False, inline="always")
def _col2im_plane_image(cols, xp, n, geometry):  # pragma: no cover (jit)
    """_col2im_image for one channel: adds image n's rows of cols into the padded plane xp[n]
    (N, H_p, W_p), which the caller set to the bias and crops afterwards: see ONE CHANNEL."""
    kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out = geometry
    for oh in range(H_out):
        q0 = (n * H_out + oh) * W_out
        for i in range(kH):
            dst = xp[n, oh * sH + i * dH]              # (W_p,): the padded row kernel row i adds into
            for j in range(kW):
                r = i * kW + j
                for ow in range(W_out):
                    dst[ow * sW + j * dW] += cols[q0 + ow, r]


@njit(cache=True, parallel=True, fastmath=False, nogil=True)
def _im2col_plane_parallel(xp, cols, geometry):  # pragma: no cover (jit)
    for t in prange(xp.shape[0] * geometry.H_out):
        _im2col_plane_row(xp, cols, t, geometry)


@njit(cache=True, fastmath=False, nogil=True)
def _im2col_plane_serial(xp, cols, geometry):  # pragma: no cover (jit)
    for t in range(xp.shape[0] * geometry.H_out):
        _im2col_plane_row(xp, cols, t, geometry)


@njit(cache=True, parallel=True, fastmath=False, nogil=True)
def _col2im_plane_parallel(cols, xp, geometry):  # pragma: no cover (jit)
    for n in prange(xp.shape[0]):
        _col2im_plane_image(cols, xp, n, geometry)


@njit(cache=True, fastmath=False, nogil=True)
def _col2im_plane_serial(cols, xp, geometry):  # pragma: no cover (jit)
    for n in range(xp.shape[0]):
        _col2im_plane_image(cols, xp, n, geometry)


def _padded_plane_shape(N: int, H: int, W: int, g: ConvGeometry) -> tuple[int, int, int]:
    """(N, H_p, W_p): room for the plane at offset (p_h, p_w) and for every window's reach."""
    return (N, max(g.pH + H, (g.H_out - 1) * g.sH + (g.kH - 1) * g.dH + 1),
            max(g.pW + W, (g.W_out - 1) * g.sW + (g.kW - 1) * g.dW + 1))


def _use_parallel(n_tasks: int, cols: np.ndarray) -> bool:
    # Only the main thread may start Numba's threads: its 'workqueue' pool aborts the
    # process when two threads launch parallel loops at once. Other threads (the workers
    # of scratchvae.parallel, which already split the batch over the cores) run serially.
    return (n_tasks > 1 and cols.size >= PARALLEL_MIN_SIZE
            and threading.current_thread() is threading.main_thread())


def im2col_numba(x: np.ndarray, kernel_size: int | Pair, stride: int | Pair, padding: int | Pair,
                 dilation: int | Pair, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) -> cols (N*H_out*W_out, kH*kW*C), same dtype as x.

    Any memory layout of x works; a channels-last x is read in place, any other is
    first copied to channels-last. ``out``, if given, is filled and returned (every
    entry is written), so callers can reuse one buffer across calls.
    """
    _check_float(x, "im2col")
    N, C, H, W = x.shape
    g = conv_geometry(H, W, kernel_size, stride, padding, dilation, "im2col")
    shape = (N * g.H_out * g.W_out, g.kH * g.kW * C)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)                     # (N*H_out*W_out, kH*kW*C)
    else:
        _check_out(out, shape, x.dtype, "im2col")
    parallel = _use_parallel(N * g.H_out, out)
    if C == 1:                                                   # see ONE CHANNEL
        xp = np.zeros(_padded_plane_shape(N, H, W, g), dtype=x.dtype)  # (N, H_p, W_p)
        xp[:, g.pH:g.pH + H, g.pW:g.pW + W] = x[:, 0]
        (_im2col_plane_parallel if parallel else _im2col_plane_serial)(xp, out, g)
        return out
    x_nhwc = channels_last(x).transpose(0, 2, 3, 1)              # (N, H, W, C), C-contiguous
    (_im2col_parallel if parallel else _im2col_serial)(x_nhwc, out, g)
    return out


def col2im_numba(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel_size: int | Pair,
                 stride: int | Pair, padding: int | Pair, dilation: int | Pair,
                 bias: np.ndarray | None = None) -> np.ndarray:
    """cols (N*H_out*W_out, kH*kW*C) -> x (N, C, H, W): the adjoint of im2col.

    Overlapping windows are summed, then ``bias`` (C,), if given, is added to every
    pixel. The result is a new array with channels-last memory (see ``channels_last``).
    """
    _check_float(cols, "col2im")
    cols = np.ascontiguousarray(cols)
    N, C, H, W = (int(s) for s in x_shape)
    g = conv_geometry(H, W, kernel_size, stride, padding, dilation, "col2im")
    expected = (N * g.H_out * g.W_out, g.kH * g.kW * C)
    if cols.shape != expected:
        raise ValueError(f"col2im: for x of shape {tuple(x_shape)} expected cols of shape {expected}, "
                         f"got {cols.shape}")
    if bias is None:
        bias = np.zeros(C, dtype=cols.dtype)                     # (C,)
    elif bias.shape != (C,):
        raise ValueError(f"col2im: bias must have shape ({C},), got {bias.shape}")
    parallel = _use_parallel(N, cols)
    if C == 1:                                                   # see ONE CHANNEL
        xp = np.full(_padded_plane_shape(N, H, W, g), bias[0], dtype=cols.dtype)  # (N, H_p, W_p)
        (_col2im_plane_parallel if parallel else _col2im_plane_serial)(cols, xp, g)
        return xp[:, None, g.pH:g.pH + H, g.pW:g.pW + W].copy()  # (N, 1, H, W): drops the padding
    x_nhwc = np.empty((N, H, W, C), dtype=cols.dtype)            # (N, H, W, C)
    (_col2im_parallel if parallel else _col2im_serial)(cols, x_nhwc, bias.astype(cols.dtype, copy=False), g)
    return x_nhwc.transpose(0, 3, 1, 2)                          # (N, C, H, W), channels-last memory


# The names the layers call: the kernels above, or their NumPy twins (see mode.py).
im2col = im2col_numba if KERNELS == "numba" else im2col_reference
col2im = col2im_numba if KERNELS == "numba" else col2im_reference
