"""Plain NumPy versions of im2col and col2im, and the convolution written as its definition.

im2col_reference and col2im_reference take the same arguments as the Numba kernels in
im2col.py and stand in for them when SCRATCHVAE_KERNELS=reference (see mode.py); the
tests check that the two agree. conv2d_naive and conv2d_backward_naive are the textbook
loops, one product at a time, that the tests hold the conv layers to (tiny shapes only).

The trick in im2col_reference: for a fixed kernel offset (i, j), the values that
offset sees in every window form a strided slice of the padded input,

    x_padded[:, :, i*d_h : i*d_h + s_h*(H_out-1) + 1 : s_h,
                   j*d_w : j*d_w + s_w*(W_out-1) + 1 : s_w]        (N, C, H_out, W_out)

so two loops over (i, j) fill all the columns. col2im_reference adds each slice
back; within one slice no two entries hit the same pixel, so a plain += is safe.
"""
from __future__ import annotations

import numpy as np

from .shapes import ConvGeometry, Pair, conv_geometry


def _window_slices(i: int, j: int, g: ConvGeometry) -> tuple[slice, slice]:
    """Rows and columns of the padded input seen by kernel offset (i, j) across all windows."""
    rows = slice(i * g.dH, i * g.dH + g.sH * (g.H_out - 1) + 1, g.sH)
    cols = slice(j * g.dW, j * g.dW + g.sW * (g.W_out - 1) + 1, g.sW)
    return rows, cols


def im2col_reference(x: np.ndarray, kernel_size: int | Pair, stride: int | Pair, padding: int | Pair,
                     dilation: int | Pair, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) -> cols (N*H_out*W_out, kH*kW*C): row q = n*L + l, column r = (i*kW + j)*C + c.

    ``out``, if given, is filled and returned, as by the Numba im2col.
    """
    N, C, H, W = x.shape
    g = conv_geometry(H, W, kernel_size, stride, padding, dilation, "im2col")
    x_pad = np.pad(x, ((0, 0), (0, 0), (g.pH, g.pH), (g.pW, g.pW)))          # (N, C, H+2pH, W+2pW)
    cols = np.empty((N, g.H_out, g.W_out, g.kH, g.kW, C), dtype=x.dtype)   # (N, H_out, W_out, kH, kW, C)
    for i in range(g.kH):
        for j in range(g.kW):
            rows, columns = _window_slices(i, j, g)
            cols[:, :, :, i, j, :] = x_pad[:, :, rows, columns].transpose(0, 2, 3, 1)  # (N, H_out, W_out, C)
    cols = cols.reshape(N * g.H_out * g.W_out, g.kH * g.kW * C)              # (N*H_out*W_out, kH*kW*C)
    if out is None:
        return cols
    out[...] = cols
    return out


def col2im_reference(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel_size: int | Pair,
                     stride: int | Pair, padding: int | Pair, dilation: int | Pair,
                     bias: np.ndarray | None = None) -> np.ndarray:
    """cols (N*H_out*W_out, kH*kW*C) -> x (N, C, H, W), summing overlapping windows, plus bias (C,) if given."""
    N, C, H, W = x_shape
    g = conv_geometry(H, W, kernel_size, stride, padding, dilation, "col2im")
    cols = cols.reshape(N, g.H_out, g.W_out, g.kH, g.kW, C)                 # (N, H_out, W_out, kH, kW, C)
    x_pad = np.zeros((N, C, H + 2 * g.pH, W + 2 * g.pW), dtype=cols.dtype)  # (N, C, H+2pH, W+2pW)
    for i in range(g.kH):
        for j in range(g.kW):
            rows, columns = _window_slices(i, j, g)
            x_pad[:, :, rows, columns] += cols[:, :, :, i, j, :].transpose(0, 3, 1, 2)  # (N, C, H_out, W_out)
    x = x_pad[:, :, g.pH:g.pH + H, g.pW:g.pW + W].copy()                     # (N, C, H, W): drop padding
    if bias is not None:
        x += bias.reshape(C, 1, 1)
    return x


def conv2d_naive(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Pair,
                 padding: Pair, dilation: Pair) -> np.ndarray:
    """The textbook definition, one product at a time (tiny shapes only)   [CONV-1]:

        out[n, co, oh, ow] = bias[co] + sum over ci, i, j of
            weight[co, ci, i, j] * x[n, ci, oh*s_h - p_h + i*d_h, ow*s_w - p_w + j*d_w]

    where x is taken as 0 outside its bounds (the zero padding).
    """
    N, C_in, H, W = x.shape
    C_out, _, kH, kW = weight.shape
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    H_out = (H + 2 * pH - dH * (kH - 1) - 1) // sH + 1  # written out again on purpose: an independent check
    W_out = (W + 2 * pW - dW * (kW - 1) - 1) // sW + 1
    out = np.zeros((N, C_out, H_out, W_out), dtype=x.dtype)              # (N, C_out, H_out, W_out)
    for n in range(N):
        for co in range(C_out):
            for oh in range(H_out):
                for ow in range(W_out):
                    total = 0.0 if bias is None else bias[co]
                    for ci in range(C_in):
                        for i in range(kH):
                            for j in range(kW):
                                h = oh * sH - pH + i * dH
                                w = ow * sW - pW + j * dW
                                if 0 <= h < H and 0 <= w < W:
                                    total += weight[co, ci, i, j] * x[n, ci, h, w]
                    out[n, co, oh, ow] = total
    return out


def conv2d_backward_naive(x: np.ndarray, weight: np.ndarray, dout: np.ndarray, stride: Pair, padding: Pair,
                          dilation: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dweight, dbias) of conv2d_naive for the output gradient dout, one term at a time
    (the entrywise form of [CONV-4], [CONV-5] and [CONV-7]):

    every term  weight[co, ci, i, j] * x[n, ci, h, w]  of out[n, co, oh, ow] (h, w inside x) gives

        dx[n, ci, h, w]         += dout[n, co, oh, ow] * weight[co, ci, i, j]
        dweight[co, ci, i, j]   += dout[n, co, oh, ow] * x[n, ci, h, w]

    and the term bias[co] gives  dbias[co] += dout[n, co, oh, ow].
    """
    N, C_in, H, W = x.shape
    C_out, _, kH, kW = weight.shape
    (sH, sW), (pH, pW), (dH, dW) = stride, padding, dilation
    _, _, H_out, W_out = dout.shape
    dx = np.zeros(x.shape, dtype=x.dtype)                                # (N, C_in, H, W)
    dweight = np.zeros(weight.shape, dtype=weight.dtype)                 # (C_out, C_in, kH, kW)
    dbias = np.zeros(C_out, dtype=dout.dtype)                            # (C_out,)
    for n in range(N):
        for co in range(C_out):
            for oh in range(H_out):
                for ow in range(W_out):
                    g = dout[n, co, oh, ow]
                    dbias[co] += g
                    for ci in range(C_in):
                        for i in range(kH):
                            for j in range(kW):
                                h = oh * sH - pH + i * dH
                                w = ow * sW - pW + j * dW
                                if 0 <= h < H and 0 <= w < W:
                                    dx[n, ci, h, w] += g * weight[co, ci, i, j]
                                    dweight[co, ci, i, j] += g * x[n, ci, h, w]
    return dx, dweight, dbias
