"""Convolutional encoders and decoders.

mnist_conv: the reference architecture the convolution issue compares with PyTorch
            (28x28, latent 32).
keras_conv: the keras-io "Variational AutoEncoder" example (28x28, latent 2),
            used by the speed benchmark.
faces_conv: 64x64 grayscale (Olivetti faces), with BatchNorm and LeakyReLU as the
            DCGAN-style book models do.
Each builder returns (encoder, decoder); ``enc_out`` is 2*latent for a VAE and
latent for an Autoencoder. "same" padding at stride 2 is padding=1 (and
output_padding=1 on the way back), so 28 -> 14 -> 7 -> 14 -> 28.
Every ReLU follows a Linear or conv layer, and every LeakyReLU a BatchNorm, none of whose
backward needs its output, so the activations work in place (inplace=True, as torch's; see
nn/activations.py).
"""
from __future__ import annotations

from ..nn import (BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, LeakyReLU, Linear, ReLU,
                  Reshape, Sequential, Sigmoid)


def _maybe_sigmoid(layers: list, final_sigmoid: bool) -> Sequential:
    return Sequential(*layers, Sigmoid()) if final_sigmoid else Sequential(*layers)


def mnist_conv(latent_dim: int, enc_out: int, final_sigmoid: bool) -> tuple[Sequential, Sequential]:
    encoder = Sequential(
        Conv2d(1, 32, 3, stride=2, padding=1), ReLU(inplace=True),   # (N, 32, 14, 14)
        Conv2d(32, 64, 3, stride=2, padding=1), ReLU(inplace=True),  # (N, 64, 7, 7)
        Flatten(),                                               # (N, 3136)
        Linear(3136, 256), ReLU(inplace=True),
        Linear(256, enc_out),                                    # (N, 2L)
    )
    decoder = _maybe_sigmoid([
        Linear(latent_dim, 256), ReLU(inplace=True),
        Linear(256, 3136), ReLU(inplace=True),
        Reshape((64, 7, 7)),
        ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), ReLU(inplace=True),  # (N, 32, 14, 14)
        ConvTranspose2d(32, 1, 3, stride=2, padding=1, output_padding=1),           # (N, 1, 28, 28)
    ], final_sigmoid)
    return encoder, decoder


def keras_conv(latent_dim: int, enc_out: int, final_sigmoid: bool) -> tuple[Sequential, Sequential]:
    encoder = Sequential(
        Conv2d(1, 32, 3, stride=2, padding=1), ReLU(inplace=True),   # (N, 32, 14, 14)
        Conv2d(32, 64, 3, stride=2, padding=1), ReLU(inplace=True),  # (N, 64, 7, 7)
        Flatten(),
        Linear(3136, 16), ReLU(inplace=True),
        Linear(16, enc_out),
    )
    decoder = _maybe_sigmoid([
        Linear(latent_dim, 3136), ReLU(inplace=True),
        Reshape((64, 7, 7)),
        ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1), ReLU(inplace=True),  # (N, 64, 14, 14)
        ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), ReLU(inplace=True),  # (N, 32, 28, 28)
        ConvTranspose2d(32, 1, 3, stride=1, padding=1),                             # (N, 1, 28, 28)
    ], final_sigmoid)
    return encoder, decoder


def faces_conv(latent_dim: int, enc_out: int, final_sigmoid: bool) -> tuple[Sequential, Sequential]:
    def down(c_in: int, c_out: int) -> list:
        return [Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), BatchNorm2d(c_out),
                LeakyReLU(0.2, inplace=True)]

    def up(c_in: int, c_out: int) -> list:
        return [ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), BatchNorm2d(c_out),
                LeakyReLU(0.2, inplace=True)]

    encoder = Sequential(
        *down(1, 32), *down(32, 64), *down(64, 128), *down(128, 256),  # (N, 256, 4, 4)
        Flatten(),                                                      # (N, 4096)
        Linear(4096, enc_out),
    )
    decoder = _maybe_sigmoid([
        Linear(latent_dim, 4096, bias=False), BatchNorm1d(4096), LeakyReLU(0.2, inplace=True),
        Reshape((256, 4, 4)),
        *up(256, 128), *up(128, 64), *up(64, 32),                       # (N, 32, 32, 32)
        ConvTranspose2d(32, 1, 4, stride=2, padding=1),                 # (N, 1, 64, 64)
    ], final_sigmoid)
    return encoder, decoder
