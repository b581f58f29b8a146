"""The VAE and the plain Autoencoder: an encoder, a decoder, and the objective between them.

Both take images (N, C, H, W) and let the encoder/decoder be any Module, so the
MLP and the convolutional models share this file. The backward chains are
written out in full, one step a line, so a reader can follow every gradient.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..nn.activations import sigmoid
from ..nn.module import Module, Sequential
from ..objective import GaussianKL, Reparameterize, make_loss


class Losses(NamedTuple):
    """Per-image averages over the batch: total = recon + beta * kl."""

    total: float
    recon: float
    kl: float

    def finite(self) -> bool:
        """No NaN or infinity among them (the training loop's NaN guard)."""
        return all(math.isfinite(v) for v in self)


class _AutoencoderBase(Module):
    def __init__(self, encoder: Module, decoder: Module, latent_dim: int, loss: str) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim = latent_dim
        self.loss_name = loss
        self.recon_loss = make_loss(loss)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Decoder output: logits for 'bce', image-space values otherwise."""
        return self.decoder.forward(z.astype(self.dtype, copy=False))

    def decode_mean(self, z: np.ndarray) -> np.ndarray:
        """The decoded image in pixel space [0, 1] (sigmoid of the logits for 'bce')."""
        out = self.decode(z)
        return sigmoid(out) if self.recon_loss.takes_logits else out

    def trace(self, x: np.ndarray, z: np.ndarray) -> list[tuple[str, Module, np.ndarray, np.ndarray]]:
        """(name, layer, input, output) for every layer of the encoder run on x and of the
        decoder run on z, each run once; name as in state_dict ("encoder.3").

        Each output is a copy taken as the layer returns it: an in-place ReLU after a Linear or
        conv layer overwrites that layer's output with its own, so the array the forward pass
        hands on is no longer the layer's output. The copies keep the memory layout a step
        really passes on (a conv layer's output is channels-last). An encoder or decoder that
        is not a Sequential is one layer.
        """
        rows = []
        for part, net, h in (("encoder", self.encoder, x), ("decoder", self.decoder, z)):
            layers = enumerate(net) if isinstance(net, Sequential) else [(None, net)]
            h_seen = h
            for i, layer in layers:
                out = layer.forward(h)
                out_seen = out.copy(order="K")
                rows.append((part if i is None else f"{part}.{i}", layer, h_seen, out_seen))
                h, h_seen = out, out_seen
        return rows

    def _encoder_backward(self, dout: np.ndarray, input_grad: bool) -> np.ndarray | None:
        if input_grad:
            return self.encoder.backward(dout)                   # (N, C, H, W)
        self.encoder.backward_params(dout)
        return None

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, loss={self.loss_name!r}"


class VAE(_AutoencoderBase):
    """Variational autoencoder, trained on the negative ELBO.

    forward:  h = encoder(x)                           (N, 2L)
              mu, logvar = h[:, :L], h[:, L:]          (N, L) each
              z = mu + exp(logvar / 2) * eps           (N, L), eps ~ N(0, I)
              pred = decoder(z)                        (N, C, H, W)
    loss:     recon(pred, x) + beta * KL(N(mu, exp(logvar)) || N(0, I))   [ELBO-1]
    backward: dpred = d recon / d pred                                     [ELBO-2]
              dz = decoder.backward(dpred)                                 [ELBO-3]
              dmu     = dz + beta * mu / N                                 [ELBO-4]
              dlogvar = dz * eps * exp(logvar / 2) / 2 + beta * (exp(logvar) - 1) / (2 N)   [ELBO-5]
              dx = encoder.backward(concat(dmu, dlogvar))   (training skips dx: input_grad=False)   [ELBO-6]
              (derivation, line by line: docs/derivations/elbo.md)
              backward(dloss=w) starts the chain at w instead of 1 (dpred and the KL terms
              are multiplied by w): the gradients of w * loss (parallel.py: w = n_k / n)
    beta = 1 is the VAE; beta > 1 is the beta-VAE of Higgins et al. (2017).

    posterior='logstd' (the lecture slides' parameterization): the encoder's second half is
    a = log sigma, sigma = exp(a), and everything above runs on logvar = 2 a      [LOGSTD-1]
    backward: da = 2 dlogvar = dz * eps * sigma + beta * (sigma^2 - 1) / N       [LOGSTD-2]
              (docs/derivations/logstd.md)
    """

    POSTERIORS = ("logvar", "logstd")

    def __init__(self, encoder: Module, decoder: Module, latent_dim: int, loss: str = "bce",
                 beta: float = 1.0, rng: np.random.Generator | None = None, posterior: str = "logvar") -> None:
        super().__init__(encoder, decoder, latent_dim, loss)
        if posterior not in self.POSTERIORS:
            raise ValueError(f"VAE: posterior must be one of {', '.join(self.POSTERIORS)}, got {posterior!r}")
        self.posterior = posterior
        self.beta = beta
        self.reparam = Reparameterize()
        self.kl = GaussianKL()
        self.rng = rng if rng is not None else np.random.default_rng()

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = self.encoder.forward(x)                              # (N, 2L)
        if h.ndim != 2 or h.shape[1] != 2 * self.latent_dim:
            raise ValueError(f"VAE: encoder must output (N, {2 * self.latent_dim}), got {h.shape}")
        mu, second = h[:, :self.latent_dim], h[:, self.latent_dim:]  # (N, L), (N, L)
        if self.posterior == "logstd":
            return mu, 2 * second                                # logvar = 2 a   [LOGSTD-1]
        return mu, second

    def forward(self, x: np.ndarray, eps: np.ndarray | None = None) -> np.ndarray:
        mu, logvar = self.encode(x)
        z = self.reparam.forward(mu, logvar, eps, self.rng)      # (N, L)
        return self.decoder.forward(z)                           # (N, C, H, W)

    def loss(self, x: np.ndarray, target: np.ndarray | None = None,
             eps: np.ndarray | None = None) -> Losses:
        """Forward pass and the negative ELBO; call ``backward()`` next for gradients."""
        mu, logvar = self.encode(x)
        z = self.reparam.forward(mu, logvar, eps, self.rng)      # (N, L)
        pred = self.decoder.forward(z)                           # (N, C, H, W)
        recon = self.recon_loss.forward(pred, x if target is None else target)
        kl = self.kl.forward(mu, logvar)
        return Losses(recon + self.beta * kl, recon, kl)

    def backward(self, input_grad: bool = True, dloss: float = 1.0) -> np.ndarray | None:
        """Gradients of dloss * loss, added into every Parameter.grad; returns dx, or None when
        input_grad=False (training needs no gradient for the data, and skipping it saves a
        matrix product)."""
        dpred = self.recon_loss.backward(dloss)                  # (N, C, H, W)
        dz = self.decoder.backward(dpred)                        # (N, L)
        dmu, dlogvar = self.reparam.backward(dz)                 # (N, L) each
        dmu_kl, dlogvar_kl = self.kl.backward(dloss)             # (N, L) each
        dmu = dmu + self.beta * dmu_kl                           # (N, L)
        dlogvar = dlogvar + self.beta * dlogvar_kl               # (N, L)
        dsecond = 2 * dlogvar if self.posterior == "logstd" else dlogvar  # da = 2 dlogvar   [LOGSTD-2]
        dh = np.concatenate([dmu, dsecond], axis=1)              # (N, 2L)
        return self._encoder_backward(dh, input_grad)            # (N, C, H, W) or None

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Decode the posterior mean (no sampling): the usual reconstruction figure."""
        mu, _ = self.encode(x)
        return self.decode_mean(mu)

    def sample(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Decode n draws z ~ N(0, I) from the prior."""
        z = (rng or self.rng).standard_normal((n, self.latent_dim))  # (n, L)
        return self.decode_mean(z)


class Autoencoder(_AutoencoderBase):
    """Plain deterministic autoencoder, for comparison with the VAE.

    forward:  z = encoder(x)  (N, L);   pred = decoder(z)
    loss:     recon(pred, x)             (no KL, no sampling)
    backward: dz = decoder.backward(dpred);  dx = encoder.backward(dz)
              (backward(dloss=w): the gradients of w * loss, as the VAE's)
    """

    def encode(self, x: np.ndarray) -> np.ndarray:
        z = self.encoder.forward(x)                              # (N, L)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Autoencoder: encoder must output (N, {self.latent_dim}), got {z.shape}")
        return z

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.decoder.forward(self.encode(x))              # (N, C, H, W)

    def loss(self, x: np.ndarray, target: np.ndarray | None = None, eps: None = None) -> Losses:
        pred = self.forward(x)                                   # (N, C, H, W)
        recon = self.recon_loss.forward(pred, x if target is None else target)
        return Losses(recon, recon, 0.0)

    def backward(self, input_grad: bool = True, dloss: float = 1.0) -> np.ndarray | None:
        dpred = self.recon_loss.backward(dloss)                  # (N, C, H, W)
        dz = self.decoder.backward(dpred)                        # (N, L)
        return self._encoder_backward(dz, input_grad)            # (N, C, H, W) or None

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode_mean(self.encode(x))
