"""The matrix products of each layer, as data: counted for the GFLOP/s figure, and timed
alone by ``bench.py --layers``, which so shows how much of a layer's time is BLAS and how
much is everything around it (im2col, col2im, bias, copies).

Each entry states one product of a layer's forward or backward with the shapes and
memory layouts the layer uses (see nn/linear.py, nn/conv.py, nn/conv_transpose.py),
so the isolated product costs what it costs inside the layer.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scratchvae import nn as snn


class Gemm(NamedTuple):
    """op(A) @ op(B) with op(A) (m, k) and op(B) (k, n).

    a_t: A is stored (k, m), C-contiguous, and read as A.T (a view: BLAS reads it
    transposed, no copy); b_t likewise for B.
    """

    role: str  # "forward", "dweight" or "dx"
    m: int
    k: int
    n: int
    a_t: bool = False
    b_t: bool = False

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n

    def operands(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Random float32 operands laid out as the layer's: ``a @ b`` is the product."""
        a = rng.random((self.k, self.m) if self.a_t else (self.m, self.k), dtype=np.float32)
        b = rng.random((self.n, self.k) if self.b_t else (self.k, self.n), dtype=np.float32)
        return (a.T if self.a_t else a), (b.T if self.b_t else b)


def first_trained_layer(model: snn.Module) -> snn.Module | None:
    """The layer whose backward_params a training step runs (see Sequential.backward_params)."""
    i = model.encoder.first_with_parameters()
    return model.encoder[i] if i < len(model.encoder) else None


def step_gemms(model: snn.Module, x: np.ndarray, training: bool = True) -> list[Gemm]:
    """Every product of one training step of a VAE or Autoencoder on the batch x: each layer's
    forward, dweight and dx, except the dx of the encoder's first trained layer (no gradient
    for the data). training=False: the forward products only, as encode + decode run them."""
    first = first_trained_layer(model)
    z = np.zeros((x.shape[0], model.latent_dim), x.dtype)         # (N, L)
    return [g for _, layer, x_in, out in model.trace(x, z)
            for g in layer_gemms(layer, x_in.shape, out.shape, input_grad=layer is not first)
            if training or g.role == "forward"]


def layer_gemms(layer: snn.Module, in_shape: tuple, out_shape: tuple, input_grad: bool = True) -> list[Gemm]:
    """The products of one layer's forward and backward; [] for layers without any, TypeError
    for a layer type this file does not know.

    input_grad=False leaves out dx: a model's first layer runs backward_params in
    training (see Sequential.backward_params). P is the number of rows every product
    of the layer shares: images (Linear), output pixels (Conv2d, one window each) or
    input pixels (ConvTranspose2d).
    """
    return [g for g in _layer_gemms(layer, in_shape, out_shape) if input_grad or g.role != "dx"]


# Layers whose forward and backward run no matrix product (elementwise, reshapes, batch norm).
_NO_PRODUCTS = (snn.ReLU, snn.LeakyReLU, snn.Sigmoid, snn.Tanh, snn.Flatten, snn.Reshape,
                snn.BatchNorm1d, snn.BatchNorm2d)


def _layer_gemms(layer: snn.Module, in_shape: tuple, out_shape: tuple) -> list[Gemm]:
    if isinstance(layer, snn.Linear):
        P, K, M = in_shape[0], layer.in_features, layer.out_features
        return [Gemm("forward", P, K, M, b_t=True),          # x @ weight.T
                Gemm("dweight", M, P, K, a_t=True),          # dy.T @ x
                Gemm("dx", P, M, K)]                         # dy @ weight
    if isinstance(layer, snn.Conv2d):
        kH, kW = layer.kernel_size
        N, C_out, H_out, W_out = out_shape
        P, K, M = N * H_out * W_out, layer.in_channels * kH * kW, C_out
        return [Gemm("forward", P, K, M, b_t=True),          # cols @ w_rows.T
                Gemm("dweight", M, P, K, a_t=True),          # dout_rows.T @ cols
                Gemm("dx", P, M, K)]                         # dout_rows @ w_rows (then col2im)
    if isinstance(layer, snn.ConvTranspose2d):
        kH, kW = layer.kernel_size
        N, C_in, H, W = in_shape  # (an output_padding >= stride grows the grid a little; not counted)
        P, K, M = N * H * W, C_in, layer.out_channels * kH * kW
        return [Gemm("forward", P, K, M),                    # x_rows @ w_rows (then col2im)
                Gemm("dweight", K, P, M, a_t=True),          # x_rows.T @ dcols
                Gemm("dx", P, M, K, b_t=True)]               # dcols @ w_rows.T
    if isinstance(layer, _NO_PRODUCTS):
        return []
    raise TypeError(f"gemms.py does not know the matrix products of {type(layer).__name__}: add them to "
                    f"_layer_gemms (or the class to _NO_PRODUCTS if it runs none)")
