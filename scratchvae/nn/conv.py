"""2-D convolution as im2col + one matrix product, and the argument checks both conv layers share."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kernels import Pair, col2im, conv_output_size, im2col, matmul_nogil, pair, pixel_rows, sum_axis0
from .init import uniform_fan_in
from .module import Module, Parameter, Product
from .page_arrays import page_array
from .workspace import Workspace, scratch

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


def check_output_size(layer: ConvBase, in_hw: Pair, out_hw: Pair) -> None:
    """An input too small for the kernel gives a size < 1; say so with every number involved."""
    if min(out_hw) < 1:
        raise ValueError(f"{type(layer).__name__}: input of spatial size {in_hw} gives output size "
                         f"{out_hw} (must be >= 1) with {layer._settings()}")


def weight_rows(weight: np.ndarray) -> np.ndarray:
    """weight (A, B, kH, kW) -> (A, kH*kW*B): each row's entries in im2col's (i, j, c) order.

    im2col puts the channel LAST in a column index (see kernels/im2col.py), so the
    weight's channel axis (dim 1) moves behind the kernel axes to match. A copy.
    """
    A, B, kH, kW = weight.shape
    return weight.transpose(0, 2, 3, 1).reshape(A, kH * kW * B)   # (A, kH*kW*B)


def weight_from_rows(w_rows: np.ndarray, kH: int, kW: int) -> np.ndarray:
    """The inverse of weight_rows: (A, kH*kW*B) -> (A, B, kH, kW), a strided view."""
    A = w_rows.shape[0]
    return w_rows.reshape(A, kH, kW, -1).transpose(0, 3, 1, 2)       # (A, B, kH, kW)


def from_pixel_rows(a2d: np.ndarray, N: int, H: int, W: int) -> np.ndarray:
    """(N*H*W, C) -> the (N, C, H, W) view of it: channels-last memory, no copy."""
    return a2d.reshape(N, H, W, -1).transpose(0, 3, 1, 2)           # (N, C, H, W)


class ConvBase(Module):
    """What Conv2d and ConvTranspose2d share besides the math: the cache reset and the repr."""

    def _cast_hook(self, dtype) -> None:
        self.cache = None  # arrays of the old dtype

    def _settings(self) -> str:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, {self._settings()}, bias={self.bias is not None}"


# -- Conv2d -----------------------------------------------------------------------------------


class _ConvCache(NamedTuple):
    x_shape: tuple[int, int, int, int]
    cols: np.ndarray  # (N*H_out*W_out, kH*kW*C_in), the receptive fields of x, one per row
    w_rows: np.ndarray   # (C_out, kH*kW*C_in), the weight in cols' column order


class Conv2d(ConvBase):
    """out[n, co] = bias[co] + sum over ci of cross-correlate(x[n, ci], weight[co, ci])   (NCHW)   [CONV-1]
    (derivation: docs/derivations/conv2d.md)

    Computed as im2col and ONE matrix product for the whole batch:
        cols = im2col(x)                   (N*H_out*W_out, kH*kW*C_in), one row per window
        w_rows  = weight_rows(weight)         (C_out, kH*kW*C_in), columns in cols' (i, j, ci) order
        out  = cols @ w_rows.T + bias         (N*H_out*W_out, C_out) -> viewed as (N, C_out, H_out, W_out)   [CONV-3]

    shapes:   x (N, C_in, H, W), weight (C_out, C_in, kH, kW) as in torch, bias (C_out,)
              H_out = floor((H + 2*p_h - d_h*(kH-1) - 1) / s_h) + 1   (same for W)   [CONV-2]
              out is channels-last in memory (see kernels/im2col.py): the GEMM's rows
              are pixels, so no transpose is needed, and the next conv reads it as is.
    backward: with dout as pixel rows dout_rows (N*H_out*W_out, C_out),
              dweight = dout_rows.T @ cols                    (C_out, kH*kW*C_in) -> weight's shape   [CONV-4]
                        (the sum over images and positions is inside the product)
              dbias   = dout_rows.sum(axis=0)                 (C_out,)   [CONV-5]
              dcols   = dout_rows @ w_rows                       (N*H_out*W_out, kH*kW*C_in)   [CONV-6]
              dx      = col2im(dcols)                      (N, C_in, H, W)   [CONV-7]
              col2im is the transpose of im2col: it adds every column entry back onto the
              pixel it was copied from, so a pixel seen by k windows gets k contributions.
              backward_params: dweight and dbias only, no dcols and no col2im (a model's
              first layer: its input, the data, needs no gradient)
    init:     weight, bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in*kH*kW (PyTorch's default)
    """

    # -- what the tools read (docs/adding-a-layer.md) ------------------------------------------
    NAME, TORCH_NAME = "conv", "Conv2d"
    FORMULAS = {"x": "dcols = dout_rows @ w_rows  [CONV-6];  dx = col2im(dcols)  [CONV-7]",
                "weight": "dW = dout_rows.T @ cols  [CONV-4]", "bias": "db = dout_rows.sum(axis=0)  [CONV-5]"}
    EXAMPLE = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 1, "padding": 0, "dilation": 1,
               "bias": True}
    EXAMPLE_HELP = "2 -> 3 channels, 3x3 kernel, on (2, 2, 7, 7)"
    gains_from_workers = True   # measured on 2 cores: docs/performance.md, "Thread pools"

    @classmethod
    def example(cls, rng: np.random.Generator, shape: tuple[int, ...] | None = None,
                **given) -> tuple[Conv2d, np.ndarray]:
        s = cls.example_settings(given, shape, in_channels=1)
        return cls(**s), rng.standard_normal(shape or (2, s["in_channels"], 7, 7))

    def products(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[Product]:
        kH, kW = self.kernel_size
        N, C_out, H_out, W_out = out_shape
        P, K, M = N * H_out * W_out, self.in_channels * kH * kW, C_out   # P: output pixels, one window each
        return [Product("forward", P, K, M, b_t=True),          # cols @ w_rows.T
                Product("dweight", M, P, K, a_t=True),          # dout_rows.T @ cols
                Product("dx", P, M, K)]                         # dout_rows @ w_rows (then col2im)

    def torch_kwargs(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "kernel_size": self.kernel_size,
                "stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "bias": self.bias is not None}

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
        self.workspace = Workspace()  # cols, kept from forward to backward and reused every step

    def output_size(self, H: int, W: int) -> Pair:
        """(H_out, W_out) for an H x W input; raises ValueError if either is < 1."""
        out = tuple(conv_output_size(size, *args) for size, args in
                    zip((H, W), zip(self.kernel_size, self.stride, self.padding, self.dilation)))
        check_output_size(self, (H, W), out)
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_conv_input(self, x, self.in_channels)
        N, _, H, W = x.shape
        H_out, W_out = self.output_size(H, W)
        K, L = self.weight.data[0].size, H_out * W_out
        dtype = self.weight.data.dtype
        x = x.astype(dtype, copy=False)                            # compute in the parameters' dtype
        cols = im2col(x, self.kernel_size, self.stride, self.padding, self.dilation,
                      out=self.workspace.get("cols", (N * L, K), dtype))  # (N*L, kH*kW*C_in), kept for backward
        w_rows = weight_rows(self.weight.data)                        # (C_out, kH*kW*C_in)
        out_rows = cols @ w_rows.T                                       # (N*L, C_out), a new array
        if self.bias is not None:
            out_rows += self.bias.data
        self.cache = _ConvCache(x.shape, cols, w_rows)
        return from_pixel_rows(out_rows, N, H_out, W_out)             # (N, C_out, H_out, W_out)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_shape, cols, w_rows = self._require_cache()
        dout_rows = pixel_rows(dout.astype(cols.dtype, copy=False))   # (N*L, C_out), a view if channels-last
        self._add_param_grads(dout_rows, cols)                        # dweight, dbias
        dcols = np.matmul(dout_rows, w_rows, out=scratch(cols.shape, cols.dtype))  # (N*L, kH*kW*C_in), dead after col2im
        return col2im(dcols, x_shape, self.kernel_size, self.stride, self.padding, self.dilation)  # (N, C_in, H, W)

    def backward_params(self, dout: np.ndarray) -> None:
        """dweight and dbias only: no dcols product, no col2im (the model's first layer)."""
        cols = self._require_cache().cols
        self._add_param_grads(pixel_rows(dout.astype(cols.dtype, copy=False)), cols)

    def _add_param_grads(self, dout_rows: np.ndarray, cols: np.ndarray) -> None:
        """dweight += dout_rows.T @ cols (in the weight's shape);  dbias += dout_rows.sum(axis=0)."""
        kH, kW = self.kernel_size
        self.weight.grad += weight_from_rows(matmul_nogil(dout_rows.T, cols), kH, kW)  # (C_out, C_in, kH, kW)
        if self.bias is not None:
            self.bias.grad += sum_axis0(dout_rows)                    # (C_out,)

    def _cast_hook(self, dtype) -> None:
        super()._cast_hook(dtype)
        self.workspace.clear()  # cols of the old dtype

    def _settings(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}")

    def page_spec(self) -> dict:
        """The JSON object the explorer page runs for this layer (Module.page_spec)."""
        return {"type": "Conv2d", "stride": list(self.stride), "padding": list(self.padding),
                "dilation": list(self.dilation), "weight": page_array(self.weight), "bias": page_array(self.bias)}
