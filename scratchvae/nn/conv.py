"""2-D convolution as im2col + one matrix product, and the argument checks both conv layers share."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kernels.im2col import Pair, col2im, conv_output_size, im2col, pair
from .init import uniform_fan_in
from .module import Module, Parameter
from .workspace import Workspace

# -- shared by Conv2d and ConvTranspose2d -------------------------------------------------


def conv_arguments(layer: str, in_channels: int, out_channels: int, kernel_size: int | Pair,
                   stride: int | Pair, padding: int | Pair, dilation: int | Pair) -> tuple[Pair, Pair, Pair, Pair]:
    """Normalise ints to (h, w) pairs and reject sizes no convolution can have."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    k, s, p, d = (pair(v, f"{layer}: {name}") for v, name in (
        (kernel_size, "kernel_size"), (stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    for name, value in (("kernel_size", k), ("stride", s), ("dilation", d)):
        if min(value) < 1:
            raise ValueError(f"{layer}: {name} must be positive, got {value}")
    if min(p) < 0:
        raise ValueError(f"{layer}: padding must be non-negative, got {p}")
    return k, s, p, d


def check_conv_input(layer: Module, x: np.ndarray, in_channels: int) -> None:
    """x must be (N, in_channels, H, W); the message names the layer, like check_shape's."""
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{type(layer).__name__}: expected input of shape (N, {in_channels}, H, W), "
                         f"got {x.shape}")


def check_output_size(layer: Module, in_hw: Pair, out_hw: Pair, settings: str) -> None:
    """An input too small for the kernel gives a size < 1; say so with every number involved."""
    if min(out_hw) < 1:
        raise ValueError(f"{type(layer).__name__}: input of spatial size {in_hw} gives output size "
                         f"{out_hw} (must be >= 1) with {settings}")


def to_channel_major(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(N, C, H, W) -> (C, N*H*W): the layout of one big GEMM over the whole batch (a copy)."""
    N, C, H, W = a.shape
    out = np.empty((C, N * H * W), dtype=a.dtype) if out is None else out   # (C, N*H*W)
    np.copyto(out.reshape(C, N, H, W), a.transpose(1, 0, 2, 3))
    return out


def from_channel_major(a2d: np.ndarray, N: int, H: int, W: int, bias: np.ndarray | None) -> np.ndarray:
    """(C, N*H*W) -> a NEW C-contiguous (N, C, H, W), adding bias[c] in the same pass.

    Always a copy: a2d is a workspace buffer that the next call overwrites.
    """
    C = a2d.shape[0]
    nchw = a2d.reshape(C, N, H, W).transpose(1, 0, 2, 3)           # (N, C, H, W), a strided view
    out = np.empty((N, C, H, W), dtype=a2d.dtype)                  # (N, C, H, W)
    if bias is None:
        np.copyto(out, nchw)
    else:
        np.add(nchw, bias[:, None, None], out=out)
    return out


class ConvBase(Module):
    """What Conv2d and ConvTranspose2d share besides the math: the workspace reset and the repr."""

    def _cast_hook(self, dtype) -> None:
        self.workspace.clear()  # buffers of the old dtype
        self.cache = None

    def _settings(self) -> str:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, {self._settings()}, bias={self.bias is not None}"


# -- Conv2d -----------------------------------------------------------------------------------


class _ConvCache(NamedTuple):
    x_shape: tuple[int, int, int, int]
    cols: np.ndarray  # (C_in*kH*kW, N*H_out*W_out), the receptive fields of x


class Conv2d(ConvBase):
    """out[n, co] = bias[co] + sum over ci of cross-correlate(x[n, ci], weight[co, ci])   (NCHW)

    Computed as im2col and ONE matrix product for the whole batch:
        cols = im2col(x)                   (C_in*kH*kW, N*H_out*W_out), one column per window
        W2d  = weight.reshape(C_out, -1)   (C_out, C_in*kH*kW)
        out  = W2d @ cols + bias           (C_out, N*H_out*W_out) -> transposed to (N, C_out, H_out, W_out)

    shapes:   x (N, C_in, H, W), weight (C_out, C_in, kH, kW) as in torch, bias (C_out,)
              H_out = floor((H + 2*p_h - d_h*(kH-1) - 1) / s_h) + 1   (same for W)
    backward: with dout transposed to dout2d (C_out, N*H_out*W_out),
              dweight = dout2d @ cols.T                    (C_out, C_in*kH*kW) -> weight's shape
                        (the sum over images and positions is inside the product)
              dbias   = dout2d.sum(axis=1)                 (C_out,)
              dcols   = W2d.T @ dout2d                     (C_in*kH*kW, N*H_out*W_out)
              dx      = col2im(dcols)                      (N, C_in, H, W)
              col2im is the transpose of im2col: it adds every column entry back onto the
              pixel it was copied from, so a pixel seen by k windows gets k contributions.
    init:     weight, bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in*kH*kW (PyTorch's default)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair, stride: int | Pair = 1,
                 padding: int | Pair = 0, dilation: int | Pair = 1, bias: bool = True,
                 rng: np.random.Generator | None = None) -> None:
        self.kernel_size, self.stride, self.padding, self.dilation = conv_arguments(
            "Conv2d", in_channels, out_channels, kernel_size, stride, padding, dilation)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        kH, kW = self.kernel_size
        fan_in = in_channels * kH * kW
        self.weight = Parameter(uniform_fan_in((out_channels, in_channels, kH, kW), fan_in, rng))
        self.bias = Parameter(uniform_fan_in((out_channels,), fan_in, rng)) if bias else None
        self.cache: _ConvCache | None = None
        self.workspace = Workspace()  # cols, out2d, dout2d, dcols: reused every step (see workspace.py)

    def output_size(self, H: int, W: int) -> Pair:
        """(H_out, W_out) for an H x W input; raises ValueError if either is < 1."""
        out = tuple(conv_output_size(size, *args) for size, args in
                    zip((H, W), zip(self.kernel_size, self.stride, self.padding, self.dilation)))
        check_output_size(self, (H, W), out, self._settings())
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_conv_input(self, x, self.in_channels)
        N, _, H, W = x.shape
        H_out, W_out = self.output_size(H, W)
        K, L = self.weight.data[0].size, H_out * W_out
        dtype = self.weight.data.dtype
        x = x.astype(dtype, copy=False)                            # compute in the parameters' dtype
        cols = self.workspace.get("cols", (K, N * L), dtype)
        im2col(x, self.kernel_size, self.stride, self.padding, self.dilation, out=cols)  # (C_in*kH*kW, N*L)
        W2d = self.weight.data.reshape(self.out_channels, -1)     # (C_out, C_in*kH*kW)
        out2d = np.matmul(W2d, cols, out=self.workspace.get("out2d", (self.out_channels, N * L), dtype))  # (C_out, N*L)
        self.cache = _ConvCache(x.shape, cols)
        bias = None if self.bias is None else self.bias.data
        return from_channel_major(out2d, N, H_out, W_out, bias)   # (N, C_out, H_out, W_out)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_shape, cols = self._require_cache()
        dout2d = to_channel_major(dout, out=self.workspace.get("dout2d", (self.out_channels, cols.shape[1]),
                                                              cols.dtype))  # (C_out, N*L)
        self.weight.grad += (dout2d @ cols.T).reshape(self.weight.shape)  # (C_out, C_in, kH, kW)
        if self.bias is not None:
            self.bias.grad += dout2d.sum(axis=1)                   # (C_out,)
        W2d = self.weight.data.reshape(self.out_channels, -1)     # (C_out, C_in*kH*kW)
        dcols = np.matmul(W2d.T, dout2d, out=self.workspace.get("dcols", cols.shape, cols.dtype))  # (C_in*kH*kW, N*L)
        dx = col2im(dcols, x_shape, self.kernel_size, self.stride, self.padding, self.dilation)  # (N, C_in, H, W)
        return dx

    def _settings(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}")
