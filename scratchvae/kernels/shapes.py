"""Window arithmetic and the channels-last memory layout, shared by both kinds of kernels and the layers."""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

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


class ConvGeometry(NamedTuple):
    """Everything the kernels need to know about the windows; Numba reads it as a tuple of ints."""
    kH: int      # kernel size
    kW: int
    sH: int      # stride
    sW: int
    pH: int      # zero padding on each side
    pW: int
    dH: int      # dilation
    dW: int
    H_out: int   # windows along each axis
    W_out: int


def conv_geometry(H: int, W: int, kernel_size: int | Pair, stride: int | Pair, padding: int | Pair,
                  dilation: int | Pair, what: str) -> ConvGeometry:
    """The windows over an H x W input; rejects an empty output (``what`` names the caller)."""
    (kH, kW), (sH, sW), (pH, pW), (dH, dW) = (pair(kernel_size, "kernel_size"), pair(stride, "stride"),
                                              pair(padding, "padding"), pair(dilation, "dilation"))
    H_out, W_out = conv_output_size(H, kH, sH, pH, dH), conv_output_size(W, kW, sW, pW, dW)
    if H_out < 1 or W_out < 1:
        raise ValueError(f"{what}: input {H}x{W} gives an empty output {H_out}x{W_out}")
    return ConvGeometry(kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)


def channels_last(a: np.ndarray) -> np.ndarray:
    """a (N, C, H, W) with channels-last memory: a itself if it already is, else a copy.

    The result is still indexed a[n, c, h, w]; only its strides differ from a C-order
    array: a.transpose(0, 2, 3, 1) is a C-contiguous (N, H, W, C) array.
    """
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def pixel_rows(a: np.ndarray) -> np.ndarray:
    """a (N, C, H, W) -> (N*H*W, C): one row per pixel, its C channels side by side.

    A view when a is channels-last (every conv output is), else a transposing copy.
    """
    N, C, H, W = a.shape
    return channels_last(a).transpose(0, 2, 3, 1).reshape(N * H * W, C)
