"""Transposed 2-D convolution, written as the adjoint of Conv2d (no zero insertion)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kernels import (Pair, channels_last, col2im, conv_output_size, conv_transpose_output_size, im2col,
                       matmul_nogil, pair, pixel_rows, sum_axis0)
from .conv import (ConvBase, check_conv_input, check_output_size, conv_arguments, from_pixel_rows, weight_from_rows,
                   weight_rows)
from .init import uniform_fan_in
from .module import Parameter, Product
from .page_arrays import page_array
from .workspace import scratch


class _ConvTransposeCache(NamedTuple):
    x_shape: tuple[int, int, int, int]
    x_rows: np.ndarray  # (N*H_g*W_g, C_in): x, zero-extended to the adjoint conv's grid, as pixel rows
    w_rows: np.ndarray  # (C_in, kH*kW*C_out), the weight in cols' column order
    grid: tuple[int, int]  # (H_g, W_g)


class ConvTranspose2d(ConvBase):
    """The adjoint (transpose) of Conv2d: where Conv2d gathers a window into one output
    value, ConvTranspose2d scatters one input value over a window of the output.

        x_rows  = pixel_rows(x)                          (N*H*W, C_in), one row per input pixel
        w_rows  = weight_rows(weight)                    (C_in, kH*kW*C_out), columns in (i, j, co) order
        cols = x_rows @ w_rows                              (N*H*W, kH*kW*C_out): a window per input pixel
        out  = col2im(cols) + bias                    (N, C_out, H_out, W_out), overlaps summed   [CONVT-1]
    (derivation: docs/derivations/conv_transpose2d.md)

    This is exactly Conv2d's backward-to-input (dx = col2im(dout_rows @ w_rows)), which is why a
    ConvTranspose2d undoes the shape change of a Conv2d with the same settings, and why
    <conv(x), y> == <x, conv_transpose(y)> when both share one weight and have no bias   [CONVT-3].
    col2im starts every output pixel at bias, so the bias costs no extra pass.

    shapes:   x (N, C_in, H, W), weight (C_in, C_out, kH, kW) as in torch, bias (C_out,)
              H_out = (H - 1)*s_h - 2*p_h + d_h*(kH - 1) + output_padding_h + 1   (same for W)   [CONVT-2]
              output_padding picks among the input sizes a strided conv maps to the same H;
              torch's rule: it must be smaller than the stride or the dilation.
              out is channels-last in memory (see kernels/im2col.py).
    backward: dcols   = im2col(dout)                      (N*H*W, kH*kW*C_out)   [CONVT-4]
              dx      = dcols @ w_rows.T                      (N*H*W, C_in) -> viewed as (N, C_in, H, W)   [CONVT-5]
              dweight = x_rows.T @ dcols                      (C_in, kH*kW*C_out) -> weight's shape   [CONVT-6]
              dbias   = dout.sum over n, h, w              (C_out,)   [CONVT-7]
    init:     weight, bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_out*kH*kW:
              torch reads fan_in from dim 1 of the weight, which here is C_out.
    """

    # -- what the tools read (docs/adding-a-layer.md) ------------------------------------------
    NAME, TORCH_NAME = "conv_transpose", "ConvTranspose2d"
    FORMULAS = {"x": "dcols = im2col(dout)  [CONVT-4];  dx = dcols @ w_rows.T  [CONVT-5]",
                "weight": "dW = x_rows.T @ dcols  [CONVT-6]", "bias": "db = dout.sum(axis=(0, 2, 3))  [CONVT-7]"}
    EXAMPLE = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 1, "padding": 0, "dilation": 1,
               "bias": True, "output_padding": 0}
    EXAMPLE_HELP = "2 -> 3 channels, 3x3 kernel, on (2, 2, 4, 4)"
    gains_from_workers = True   # measured on 2 cores: docs/performance.md, "Thread pools"

    @classmethod
    def example(cls, rng: np.random.Generator, shape: tuple[int, ...] | None = None,
                **given) -> tuple[ConvTranspose2d, np.ndarray]:
        s = cls.example_settings(given, shape, in_channels=1)
        return cls(**s), rng.standard_normal(shape or (2, s["in_channels"], 4, 4))

    def products(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[Product]:
        N, C_in, H, W = in_shape  # (an output_padding >= stride grows the grid a little; not counted)
        kH, kW = self.kernel_size
        P, K, M = N * H * W, C_in, self.out_channels * kH * kW          # P: input pixels
        return [Product("forward", P, K, M),                    # x_rows @ w_rows (then col2im)
                Product("dweight", K, P, M, a_t=True),          # x_rows.T @ dcols
                Product("dx", P, M, K, b_t=True)]               # dcols @ w_rows.T

    def torch_kwargs(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "kernel_size": self.kernel_size,
                "stride": self.stride, "padding": self.padding, "output_padding": self.output_padding,
                "dilation": self.dilation, "bias": self.bias is not None}

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

    def output_size(self, H: int, W: int) -> Pair:
        """(H_out, W_out) for an H x W input; raises ValueError if either is < 1."""
        out = tuple(conv_transpose_output_size(size, *args) for size, args in zip(
            (H, W), zip(self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding)))
        check_output_size(self, (H, W), out)
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
        x_rows = pixel_rows(x.astype(dtype, copy=False))             # (N*H_g*W_g, C_in): compute in the parameters' dtype
        w_rows = weight_rows(self.weight.data)                       # (C_in, kH*kW*C_out)
        cols = np.matmul(x_rows, w_rows, out=scratch((x_rows.shape[0], w_rows.shape[1]), dtype))  # (N*H_g*W_g, kH*kW*C_out)
        bias = None if self.bias is None else self.bias.data      # cols is dead once col2im has summed it
        out = col2im(cols, (N, self.out_channels, H_out, W_out), self.kernel_size, self.stride,
                     self.padding, self.dilation, bias=bias)      # (N, C_out, H_out, W_out)
        self.cache = _ConvTransposeCache((N, C_in, H, W), x_rows, w_rows, (H_g, W_g))
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (N, C_in, H, W), x_rows, w_rows, (H_g, W_g) = self._require_cache()
        kH, kW = self.kernel_size
        dout = channels_last(dout.astype(x_rows.dtype, copy=False))  # (N, C_out, H_out, W_out), read twice below
        dcols = im2col(dout, self.kernel_size, self.stride, self.padding, self.dilation,
                       out=scratch((x_rows.shape[0], w_rows.shape[1]), x_rows.dtype))  # (N*H_g*W_g, kH*kW*C_out), dead at return
        self.weight.grad += weight_from_rows(matmul_nogil(x_rows.T, dcols), kH, kW)  # (C_in, C_out, kH, kW)
        if self.bias is not None:
            self.bias.grad += sum_axis0(pixel_rows(dout))          # (C_out,): dout summed over n, h, w
        dx = from_pixel_rows(dcols @ w_rows.T, N, H_g, W_g)          # (N, C_in, H_g, W_g), a new array
        return dx[:, :, :H, :W]  # (N, C_in, H, W): drops forward's zero-extension, if any

    def _settings(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"output_padding={self.output_padding}, dilation={self.dilation}")

    def page_spec(self) -> dict:
        """The JSON object the explorer page runs for this layer (Module.page_spec)."""
        return {"type": "ConvTranspose2d", "stride": list(self.stride), "padding": list(self.padding),
                "output_padding": list(self.output_padding), "dilation": list(self.dilation),
                "weight": page_array(self.weight), "bias": page_array(self.bias)}
