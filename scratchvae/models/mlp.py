"""Fully connected encoder and decoder (the pytorch/examples VAE: 784-400-20)."""
from __future__ import annotations

import numpy as np

from ..nn import Flatten, Linear, ReLU, Reshape, Sequential, Sigmoid


def mlp_encoder(image_shape: tuple[int, ...], hidden: int, out_features: int) -> Sequential:
    """(N, C, H, W) -> Flatten -> Linear(D, hidden) -> ReLU -> Linear(hidden, out_features)."""
    d = int(np.prod(image_shape))
    return Sequential(Flatten(), Linear(d, hidden), ReLU(inplace=True), Linear(hidden, out_features))


def mlp_decoder(latent_dim: int, hidden: int, image_shape: tuple[int, ...],
                final_sigmoid: bool) -> Sequential:
    """z -> Linear(L, hidden) -> ReLU -> Linear(hidden, D) [-> Sigmoid] -> Reshape(image_shape)."""
    d = int(np.prod(image_shape))
    layers = [Linear(latent_dim, hidden), ReLU(inplace=True), Linear(hidden, d)]
    if final_sigmoid:
        layers.append(Sigmoid())
    layers.append(Reshape(image_shape))
    return Sequential(*layers)
