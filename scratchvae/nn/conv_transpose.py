"""Transposed 2-D convolution, written as the adjoint of Conv2d (no zero insertion)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kernels.im2col import Pair, col2im, conv_output_size, conv_transpose_output_size, im2col, pair
from .conv import ConvBase, check_conv_input, check_output_size, conv_arguments, from_channel_major, to_channel_major
from .init import uniform_fan_in
from .module import Parameter
from .workspace import Workspace


class _ConvTransposeCache(NamedTuple):
    x_shape: tuple[int, int, int, int]
    x2d: np.ndarray  # (C_in, N*H_g*W_g): x, zero-extended to the adjoint conv's grid, channel-major
    grid: tuple[int, int]  # (H_g, W_g)


class ConvTranspose2d(ConvBase):
    """The adjoint (transpose) of Conv2d: where Conv2d gathers a window into one output
    value, ConvTranspose2d scatters one input value over a window of the output.

        W2d  = weight.reshape(C_in, C_out*kH*kW)      (C_in, C_out*kH*kW)
        x2d  = x transposed to (C_in, N*H*W)          one column per input pixel
        cols = W2d.T @ x2d                            (C_out*kH*kW, N*H*W): a window per input pixel
        out  = col2im(cols) + bias                    (N, C_out, H_out, W_out), overlaps summed

    This is exactly Conv2d's backward-to-input (dx = col2im(W2d.T @ dout)), which is why a
    ConvTranspose2d undoes the shape change of a Conv2d with the same settings, and why
    <conv(x), y> == <x, conv_transpose(y)> when both share one weight and have no bias.

    shapes:   x (N, C_in, H, W), weight (C_in, C_out, kH, kW) as in torch, bias (C_out,)
              H_out = (H - 1)*s_h - 2*p_h + d_h*(kH - 1) + output_padding_h + 1   (same for W)
              output_padding picks among the input sizes a strided conv maps to the same H;
              torch's rule: it must be smaller than the stride or the dilation.
    backward: dcols   = im2col(dout)                      (C_out*kH*kW, N*H*W)
              dx      = W2d @ dcols                        (C_in, N*H*W) -> transposed to (N, C_in, H, W)
              dweight = x2d @ dcols.T                      (C_in, C_out*kH*kW) -> weight's shape
              dbias   = dout.sum over n, h, w              (C_out,)
    init:     weight, bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_out*kH*kW:
              torch reads fan_in from dim 1 of the weight, which here is C_out.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair, stride: int | Pair = 1,
                 padding: int | Pair = 0, output_padding: int | Pair = 0, dilation: int | Pair = 1,
                 bias: bool = True, rng: np.random.Generator | None = None) -> None:
        self.kernel_size, self.stride, self.padding, self.dilation = conv_arguments(
            "ConvTranspose2d", in_channels, out_channels, kernel_size, stride, padding, dilation)
        self.output_padding = pair(output_padding, "ConvTranspose2d: output_padding")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op < 0 or (op >= s and op >= d):
                raise ValueError(
                    f"ConvTranspose2d: output_padding {self.output_padding} must be non-negative and "
                    f"smaller than either stride {self.stride} or dilation {self.dilation}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        kH, kW = self.kernel_size
        fan_in = out_channels * kH * kW
        self.weight = Parameter(uniform_fan_in((in_channels, out_channels, kH, kW), fan_in, rng))
        self.bias = Parameter(uniform_fan_in((out_channels,), fan_in, rng)) if bias else None
        self.cache: _ConvTransposeCache | None = None
        self.workspace = Workspace()  # x2d, cols, dcols, dx2d: reused every step (see workspace.py)

    def output_size(self, H: int, W: int) -> Pair:
        """(H_out, W_out) for an H x W input; raises ValueError if either is < 1."""
        out = tuple(conv_transpose_output_size(size, *args) for size, args in zip(
            (H, W), zip(self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding)))
        check_output_size(self, (H, W), out, self._settings())
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_conv_input(self, x, self.in_channels)
        N, C_in, H, W = x.shape
        H_out, W_out = self.output_size(H, W)
        # The conv this layer is the adjoint of maps (H_out, W_out) to a grid of windows
        # (H_g, W_g). That is (H, W), except when output_padding >= stride (allowed by a
        # larger dilation): then the last windows have no input pixel, so x gets zeros there.
        H_g, W_g = (conv_output_size(size, *args) for size, args in zip(
            (H_out, W_out), zip(self.kernel_size, self.stride, self.padding, self.dilation)))
        if (H_g, W_g) != (H, W):
            x = np.pad(x, ((0, 0), (0, 0), (0, H_g - H), (0, W_g - W)))  # (N, C_in, H_g, W_g)
        dtype = self.weight.data.dtype
        x = x.astype(dtype, copy=False)                            # compute in the parameters' dtype
        x2d = to_channel_major(x, out=self.workspace.get("x2d", (C_in, N * H_g * W_g), dtype))  # (C_in, N*H_g*W_g)
        W2d = self.weight.data.reshape(C_in, -1)                  # (C_in, C_out*kH*kW)
        cols = np.matmul(W2d.T, x2d, out=self.workspace.get("cols", (W2d.shape[1], x2d.shape[1]), dtype))
        out = col2im(cols, (N, self.out_channels, H_out, W_out),  # cols: (C_out*kH*kW, N*H_g*W_g)
                     self.kernel_size, self.stride, self.padding, self.dilation)  # (N, C_out, H_out, W_out)
        if self.bias is not None:
            out += self.bias.data[:, None, None]
        self.cache = _ConvTransposeCache((N, C_in, H, W), x2d, (H_g, W_g))
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (N, C_in, H, W), x2d, (H_g, W_g) = self._require_cache()
        W2d = self.weight.data.reshape(C_in, -1)                  # (C_in, C_out*kH*kW)
        dcols = self.workspace.get("dcols", (W2d.shape[1], x2d.shape[1]), x2d.dtype)
        im2col(dout, self.kernel_size, self.stride, self.padding, self.dilation, out=dcols)  # (C_out*kH*kW, N*H_g*W_g)
        self.weight.grad += (x2d @ dcols.T).reshape(self.weight.shape)  # (C_in, C_out, kH, kW)
        if self.bias is not None:
            self.bias.grad += dout.sum(axis=(0, 2, 3))             # (C_out,)
        dx2d = np.matmul(W2d, dcols, out=self.workspace.get("dx2d", x2d.shape, x2d.dtype))  # (C_in, N*H_g*W_g)
        dx = from_channel_major(dx2d, N, H_g, W_g, None)          # (N, C_in, H_g, W_g)
        return dx[:, :, :H, :W]  # (N, C_in, H, W): drops forward's zero-extension, if any

    def _settings(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"output_padding={self.output_padding}, dilation={self.dilation}")
