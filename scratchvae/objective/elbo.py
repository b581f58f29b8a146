"""The VAE's training objective: the negative ELBO, as named terms with per-image gradients."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .terms import Losses

if TYPE_CHECKING:                     # models/ imports objective/: the annotation only
    from ..models.vae import VAE


class ELBO:
    """The negative evidence lower bound, one z per image, averaged over the batch:

    forward:  h = encoder(x)                              (N, 2L)
              mu, logvar = posterior.params(h)            (N, L) each
              z = posterior.forward(mu, logvar, eps)      (N, L): z = mu + exp(logvar / 2) * eps
              pred = decoder(z)                           (N, C, H, W)
    loss:     recon(pred, x) + beta * KL(q(z|x) || p(z))                      [ELBO-1]
    backward: dpred = d recon / d pred                                         [ELBO-2]
              dz = decoder.backward(dpred)                                     [ELBO-3]
              dmu, dlogvar = posterior.backward(dz) + kl.backward(beta)
                  = dz + beta * mu / N,                                        [ELBO-4]
                    dz * eps * exp(logvar / 2) / 2 + beta * (exp(logvar) - 1) / (2 N)   [ELBO-5]
                    (for the N(0, I) prior's closed-form KL)
              dh = posterior.params_backward(dmu, dlogvar)
              dx = encoder.backward(dh)      (training skips dx: input_grad=False)   [ELBO-6]
              (derivation, line by line: docs/derivations/elbo.md)
    beta enters the KL's backward as its upstream gradient, not as a factor applied after it: a
    learned prior's log_prob_backward adds its own parameters' gradients on the way, and they
    must carry beta too.
    backward(dloss) starts the chain at dloss: a float gives the gradients of dloss * loss
    (parallel.py: dloss = n_k / n); an (N,) array weights each image's terms (the gradients of
    sum_n dloss_n * loss_n).
    The terms it names, ``names``, are what the training loop, the metrics and the checkpoint carry.
    beta = 1 is the VAE; beta > 1 is the beta-VAE of Higgins et al. (2017).
    """

    names = ("recon", "kl")

    def forward(self, vae: VAE, x: np.ndarray, target: np.ndarray, eps: np.ndarray | None = None) -> Losses:
        mu, logvar = vae.encode(x)                               # (N, L) each
        z = vae.posterior.forward(mu, logvar, eps, vae.rng)      # (N, L)
        pred = vae.decoder.forward(z)                            # (N, C, H, W)
        recon = vae.recon_loss.forward(pred, target)
        kl = vae.kl.forward(mu, logvar, z, vae.posterior.cache.eps)
        return Losses(recon + vae.beta * kl, recon=recon, kl=kl)

    def backward(self, vae: VAE, dloss: float | np.ndarray = 1.0) -> np.ndarray:
        """The gradient at the encoder's output, dh (N, 2L); the decoder's and the prior's
        parameter gradients are added into their .grad on the way."""
        dpred = vae.recon_loss.backward(dloss)                   # (N, C, H, W)
        dz = vae.decoder.backward(dpred)                         # (N, L)
        dmu, dlogvar = vae.posterior.backward(dz)                # (N, L) each
        dmu_kl, dlogvar_kl = vae.kl.backward(vae.beta * dloss)   # (N, L) each: beta * d kl
        dmu = dmu + dmu_kl                                       # (N, L)
        dlogvar = dlogvar + dlogvar_kl                           # (N, L)
        return vae.posterior.params_backward(dmu, dlogvar)       # (N, 2L)

    def per_image(self, vae: VAE, x: np.ndarray, target: np.ndarray, rng: np.random.Generator | None = None,
                  eps: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The loss and each term of every image, (N,) float64 each, as forward computes them
        (the model's own pieces; eps given, or drawn from rng, else from the model's generator as
        forward draws it): what the number training prints is made of."""
        n = x.shape[0]
        mu, logvar = vae.encode(x)                               # (N, L) each
        z = vae.posterior.forward(mu, logvar, eps, vae.rng if rng is None else rng)  # (N, L)
        pred = vae.decoder.forward(z)                            # (N, C, H, W)
        recon = vae.recon_loss.per_image(pred.reshape(n, -1), target.reshape(n, -1).astype(pred.dtype))  # (N,)
        kl = vae.kl.per_image(mu, logvar, z, vae.posterior.cache.eps).astype(np.float64)  # (N,)
        recon = recon.astype(np.float64)
        return {"loss": recon + vae.beta * kl, "recon": recon, "kl": kl}
