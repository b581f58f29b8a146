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
from scratchvae.distributions import MixtureOfGaussians, VampPrior
from scratchvae.objective import IWAE


def torch_layer(layer: snn.Module) -> torch.nn.Module:
    """The torch.nn twin of one scratchvae layer, torch.nn.<TORCH_NAME>(**torch_kwargs()) as the layer
    declares it (weights are copied separately)."""
    if isinstance(layer, snn.Sequential):
        return torch.nn.Sequential(*(torch_layer(child) for child in layer))
    if layer.TORCH_NAME is None:
        raise TypeError(f"no torch twin for {type(layer).__name__}: declare its TORCH_NAME and torch_kwargs() "
                        "(docs/adding-a-layer.md)")
    return getattr(torch.nn, layer.TORCH_NAME)(**layer.torch_kwargs())


class TorchVAE(torch.nn.Module):
    """Same encoder/decoder, same objective (BCE-with-logits summed over pixels + beta * KL, batch
    mean; or, for a model trained on the importance-weighted bound, that bound on eps (N, K, L)).
    A learned prior (mixture, VampPrior) is the same mixture density with the same parameters
    (prior.means/logvars, prior.pseudo_logits), its KL the one-sample log q - log p at z."""

    def __init__(self, model: VAE | Autoencoder) -> None:
        super().__init__()
        if model.loss_name != "bce":
            raise ValueError("the torch twin implements the 'bce' loss only")
        self.encoder, self.decoder = torch_layer(model.encoder), torch_layer(model.decoder)
        self.latent_dim = model.latent_dim
        self.variational = isinstance(model, VAE)
        self.beta = getattr(model, "beta", 0.0)
        self.iw_samples = model.objective.k if isinstance(getattr(model, "objective", None), IWAE) else None
        prior = getattr(model, "prior", None)
        self.prior_kind = {MixtureOfGaussians: "mog", VampPrior: "vamp"}.get(type(prior), "normal")
        if self.prior_kind != "normal":
            self.prior = torch.nn.Module()
            for name, p in prior.named_parameters():
                setattr(self.prior, name, torch.nn.Parameter(torch.zeros(p.data.shape)))
        self.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})

    def loss(self, x: torch.Tensor, eps: torch.Tensor | None = None,
             target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        target = x.detach() if target is None else target
        h = self.encode(x)
        if self.iw_samples is not None:
            return self.iwae_loss(h, eps, target)
        if self.variational:
            mu, logvar = h[:, :self.latent_dim], h[:, self.latent_dim:]
            eps = torch.randn_like(mu) if eps is None else eps
            z = mu + torch.exp(0.5 * logvar) * eps
            if self.prior_kind == "normal":
                kl = 0.5 * torch.sum(mu * mu + logvar.exp() - 1 - logvar) / x.shape[0]
            else:
                log_q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
                kl = torch.mean(log_q - self.log_prior(z))
        else:
            z, kl = h, torch.zeros(())
        logits = self.decoder(z)
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / x.shape[0]
        return recon + self.beta * kl, recon

    def iwae_loss(self, h: torch.Tensor, eps: torch.Tensor | None,
                  target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-(1/N) sum_n logsumexp_k log w_nk + log K, log w = log p(x|z) + beta (log p(z) - log q(z|x)),
        the densities written from z (not from eps, as scratchvae writes log q), autograd doing the rest."""
        n, latent, k = h.shape[0], self.latent_dim, self.iw_samples
        mu, logvar = h[:, None, :latent], h[:, None, latent:]
        eps = torch.randn(n, k, latent, dtype=h.dtype) if eps is None else eps.reshape(n, k, latent)
        std = torch.exp(0.5 * logvar)
        z = mu + std * eps                                                   # (N, K, L)
        logits = self.decoder(z.reshape(n * k, latent))
        rows = target.repeat_interleave(k, dim=0)
        recon = F.binary_cross_entropy_with_logits(logits, rows, reduction="none").reshape(n, k, -1).sum(-1)
        log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)      # (N, K)
        log_w = -recon + self.beta * (self.log_prior(z) - log_q)
        bound = torch.logsumexp(log_w, dim=1) - np.log(k)
        return -bound.mean(), recon.mean()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's output h for x; with a VampPrior the encoder runs once on [x; sigmoid(a)], as
        scratchvae's VAE.encode does, and the pseudo-inputs' rows are the prior's components."""
        if self.prior_kind != "vamp":
            return self.encoder(x)
        h = self.encoder(torch.cat([x, torch.sigmoid(self.prior.pseudo_logits)]))
        n, latent = x.shape[0], self.latent_dim
        self._components = (h[n:, :latent], h[n:, latent:])
        return h[:n]

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), summed over the last axis: N(0, I), or the mixture (1/M) sum_m N(z; m_m, exp(v_m))."""
        if self.prior_kind != "normal":
            means, logvars = ((self.prior.means, self.prior.logvars) if self.prior_kind == "mog"
                              else self._components)
            comp = torch.distributions.Normal(means, torch.exp(0.5 * logvars)).log_prob(z[..., None, :]).sum(-1)
            return torch.logsumexp(comp, dim=-1) - np.log(means.shape[0])
        return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        return torch.sigmoid(self.decoder(h[:, :self.latent_dim]))


def assert_matches_twin(model: VAE, x: np.ndarray, eps: np.ndarray) -> None:
    """A float64 model's loss, recon, dx and every parameter gradient against its twin's autograd on
    the same weights and eps. Tolerances: the two libraries sum the same float64 products in other
    orders (measured differences ~1e-13 relative), far below a wrong formula's O(1e-2)."""
    twin = TorchVAE(model).double()                              # load_state_dict is strict
    model.zero_grad()
    ours = model.loss(x, eps=eps)
    dx = model.backward()
    tx = torch.tensor(x, requires_grad=True)
    total, recon = twin.loss(tx, torch.tensor(eps))
    total.backward()
    assert abs(ours.total - total.item()) <= 1e-10 * abs(total.item())
    assert abs(ours.recon - recon.item()) <= 1e-10 * abs(recon.item())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-8, atol=1e-12)
    grads = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)
