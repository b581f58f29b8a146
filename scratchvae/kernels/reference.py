"""Plain NumPy versions of the kernels: slow, short, and easy to check by eye.

The tests compare the Numba kernels in im2col.py against these, and the conv
layers against ``conv2d_naive``. Nothing in the library calls them.

The trick in im2col_reference: for a fixed kernel offset (i, j), the values that
offset sees in every window form a strided slice of the padded input,

    x_padded[:, :, i*d_h : i*d_h + s_h*(H_out-1) + 1 : s_h,
                   j*d_w : j*d_w + s_w*(W_out-1) + 1 : s_w]        (N, C, H_out, W_out)

so two loops over (i, j) fill all the columns. col2im_reference adds each slice
back; within one slice no two entries hit the same pixel, so a plain += is safe.
"""
from __future__ import annotations

import numpy as np

from .im2col import Pair, conv_output_size


def _window_slices(i: int, j: int, H_out: int, W_out: int, stride: Pair, dilation: Pair) -> tuple[slice, slice]:
    """Rows and columns of the padded input seen by kernel offset (i, j) across all windows."""
    (sH, sW), (dH, dW) = stride, dilation
    rows = slice(i * dH, i * dH + sH * (H_out - 1) + 1, sH)
    cols = slice(j * dW, j * dW + sW * (W_out - 1) + 1, sW)
    return rows, cols


def im2col_reference(x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair,
                     dilation: Pair) -> np.ndarray:
    """x (N, C, H, W) -> cols (N*H_out*W_out, kH*kW*C): row q = n*L + l, column r = (i*kW + j)*C + c."""
    N, C, H, W = x.shape
    (kH, kW), (pH, pW) = kernel_size, padding
    H_out = conv_output_size(H, kH, stride[0], pH, dilation[0])
    W_out = conv_output_size(W, kW, stride[1], pW, dilation[1])
    x_pad = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))              # (N, C, H+2pH, W+2pW)
    cols = np.empty((N, H_out, W_out, kH, kW, C), dtype=x.dtype)       # (N, H_out, W_out, kH, kW, C)
    for i in range(kH):
        for j in range(kW):
            rows, columns = _window_slices(i, j, H_out, W_out, stride, dilation)
            cols[:, :, :, i, j, :] = x_pad[:, :, rows, columns].transpose(0, 2, 3, 1)  # (N, H_out, W_out, C)
    return cols.reshape(N * H_out * W_out, kH * kW * C)                  # (N*H_out*W_out, kH*kW*C)


def col2im_reference(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel_size: Pair,
                     stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """cols (N*H_out*W_out, kH*kW*C) -> x (N, C, H, W), summing overlapping windows."""
    N, C, H, W = x_shape
    (kH, kW), (pH, pW) = kernel_size, padding
    H_out = conv_output_size(H, kH, stride[0], pH, dilation[0])
    W_out = conv_output_size(W, kW, stride[1], pW, dilation[1])
    cols = cols.reshape(N, H_out, W_out, kH, kW, C)                    # (N, H_out, W_out, kH, kW, C)
    x_pad = np.zeros((N, C, H + 2 * pH, W + 2 * pW), dtype=cols.dtype)  # (N, C, H+2pH, W+2pW)
    for i in range(kH):
        for j in range(kW):
            rows, columns = _window_slices(i, j, H_out, W_out, stride, dilation)
            x_pad[:, :, rows, columns] += cols[:, :, :, i, j, :].transpose(0, 3, 1, 2)  # (N, C, H_out, W_out)
    return x_pad[:, :, pH:pH + H, pW:pW + W].copy()                      # (N, C, H, W): drop padding


def conv2d_naive(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Pair,
                 padding: Pair, dilation: Pair) -> np.ndarray:
    """The textbook definition, one product at a time (tiny shapes only):

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
