"""The identical model in PyTorch, for the parity tests (test_torch_parity.py) and the
speed benchmark (benchmarks/bench.py --vs-torch).

PyTorch is a reference here, never a dependency: import this module only where
torch is installed. Because scratchvae names parameters the way torch.nn does,
``load_state_dict`` copies every weight one to one.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from scratchvae import nn as snn
from scratchvae.models.vae import VAE, Autoencoder


def torch_layer(layer: snn.Module) -> torch.nn.Module:
    """The torch.nn twin of one scratchvae layer (weights are copied separately)."""
    if isinstance(layer, snn.Sequential):
        return torch.nn.Sequential(*(torch_layer(child) for child in layer))
    if isinstance(layer, snn.Linear):
        return torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    if isinstance(layer, snn.Conv2d):
        return torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                               layer.padding, layer.dilation, bias=layer.bias is not None)
    if isinstance(layer, snn.ConvTranspose2d):
        return torch.nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                        layer.padding, layer.output_padding, bias=layer.bias is not None,
                                        dilation=layer.dilation)
    if isinstance(layer, (snn.BatchNorm1d, snn.BatchNorm2d)):
        cls = torch.nn.BatchNorm1d if isinstance(layer, snn.BatchNorm1d) else torch.nn.BatchNorm2d
        return cls(layer.num_features, eps=layer.eps, momentum=layer.momentum)
    if isinstance(layer, snn.LeakyReLU):
        return torch.nn.LeakyReLU(layer.negative_slope, inplace=layer.inplace)
    if isinstance(layer, snn.ReLU):
        return torch.nn.ReLU(inplace=layer.inplace)
    if isinstance(layer, snn.Reshape):
        return torch.nn.Unflatten(1, layer.shape)
    simple = {snn.Sigmoid: torch.nn.Sigmoid, snn.Tanh: torch.nn.Tanh,
              snn.Flatten: torch.nn.Flatten}
    if type(layer) in simple:
        return simple[type(layer)]()
    raise TypeError(f"no torch twin for {type(layer).__name__}: add one to torch_layer in tests/torch_twin.py")


class TorchVAE(torch.nn.Module):
    """Same encoder/decoder, same objective (BCE-with-logits summed over pixels + beta * KL, batch mean)."""

    def __init__(self, model: VAE | Autoencoder) -> None:
        super().__init__()
        if model.loss_name != "bce":
            raise ValueError("the torch twin implements the 'bce' loss only")
        self.encoder, self.decoder = torch_layer(model.encoder), torch_layer(model.decoder)
        self.latent_dim = model.latent_dim
        self.variational = isinstance(model, VAE)
        self.beta = getattr(model, "beta", 0.0)
        self.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})

    def loss(self, x: torch.Tensor, eps: torch.Tensor | None = None,
             target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        target = x.detach() if target is None else target
        h = self.encoder(x)
        if self.variational:
            mu, logvar = h[:, :self.latent_dim], h[:, self.latent_dim:]
            eps = torch.randn_like(mu) if eps is None else eps
            z = mu + torch.exp(0.5 * logvar) * eps
            kl = 0.5 * torch.sum(mu * mu + logvar.exp() - 1 - logvar) / x.shape[0]
        else:
            z, kl = h, torch.zeros(())
        logits = self.decoder(z)
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / x.shape[0]
        return recon + self.beta * kl, recon

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        return torch.sigmoid(self.decoder(h[:, :self.latent_dim]))
