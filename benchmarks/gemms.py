"""The matrix products of each layer, as data: counted for the GFLOP/s figure, and timed
alone by ``bench.py --layers``, which so shows how much of a layer's time is BLAS and how
much is everything around it (im2col, col2im, bias, copies).

Each layer declares its products (its products() method, e.g. nn/linear.py's), each with
the shapes and memory layouts the layer uses, so the isolated product costs what it costs
inside the layer.
"""
from __future__ import annotations

import numpy as np

from scratchvae import nn as snn
from scratchvae.nn.module import Product


class Gemm(Product):
    """A layer's Product (op(A) @ op(B), op(A) (m, k), op(B) (k, n)), counted and run here."""

    __slots__ = ()

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
    for the data). training=False: the forward products only, as encode + decode run them.
    An objective that decodes K samples of each image (the importance-weighted bound) trains the
    decoder on N*K rows; a VampPrior's encoder runs on the N images and its M pseudo-inputs, and
    needs the input gradient for them (u is trained), so its first layer's dx is a product too."""
    first = first_trained_layer(model)
    rows = getattr(getattr(model, "objective", None), "decoder_rows_per_image", 1) if training else 1
    z = np.zeros((x.shape[0] * rows, model.latent_dim), x.dtype)  # (N*K, L)
    if getattr(getattr(model, "prior", None), "reads_encoder", False):
        x = np.concatenate([x, model.prior.pseudo_inputs().astype(x.dtype)])  # (N + M, C, H, W)
        first = None if training else first
    return [g for _, layer, x_in, out in model.trace(x, z)
            for g in layer_gemms(layer, x_in.shape, out.shape, input_grad=layer is not first)
            if training or g.role == "forward"]


def layer_gemms(layer: snn.Module, in_shape: tuple, out_shape: tuple, input_grad: bool = True) -> list[Gemm]:
    """The products of one layer's forward and backward, as the layer declares them ([] for
    layers without any); TypeError for a layer that declares none (it might run some).

    input_grad=False leaves out dx: a model's first layer runs backward_params in
    training (see Sequential.backward_params).
    """
    products = layer.products(in_shape, out_shape)
    if products is None:
        raise TypeError(f"gemms.py does not know the matrix products of {type(layer).__name__}: declare them "
                        f"in its products() method, [] if it runs none (docs/adding-a-layer.md)")
    return [Gemm(*p) for p in products if input_grad or p.role != "dx"]
