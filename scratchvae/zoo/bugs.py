"""The bugs of the zoo: what each one gets wrong, and how to build a VAE that has it.

A Bug names the wrong line and the right one, says which correct model it is compared with
(the reconstruction loss, the posterior parameterization) and how to put its wrong piece
(scratchvae/zoo/pieces.py) into a VAE. ``true_posterior`` is the parameterization the buggy
sampler really follows: the honest evaluation reads the trained weights that way, so its ELBO
and log-likelihood are those of the distribution the model really samples from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..distributions import make_kl, make_prior
from ..models import VAE, build_model
from ..models.mlp import mlp_decoder, mlp_encoder
from ..nn.init import manual_seed
from ..objective import make_loss
from .pieces import (KLMeanOverDims, LogstdFedAsLogvar, MeanOfLogWeights, PixelMeanBCE, StdIsExpLogvar,
                     UnboundedVampPrior, UnclampedBCE, UnnormalisedWeights)

#: the tiny model's VampPrior: 3 pseudo-inputs of 1x3x3, enough for a mixture, small for a gradient check
TINY_COMPONENTS = 3


def _sampler(cls) -> Callable[[VAE], None]:
    def install(model: VAE) -> None:
        model.posterior = cls(model.posterior.param)
    return install


def _recon(cls) -> Callable[[VAE], None]:
    def install(model: VAE) -> None:
        model.recon_loss = cls()
    return install


def _kl(model: VAE) -> None:
    model.kl = KLMeanOverDims()


def _objective(cls) -> Callable[[VAE], None]:
    def install(model: VAE) -> None:
        model.objective = cls(model.objective.k)
    return install


def _unbounded_vamp(model: VAE) -> None:
    model.prior = UnboundedVampPrior.from_prior(model.prior)
    model.kl = make_kl(model.posterior, model.prior)             # the KL reads the prior it was built with


@dataclass(frozen=True)
class Bug:
    name: str
    summary: str                                 # one line, for `scratchvae zoo --list`
    wrong: str                                   # the wrong line
    right: str                                   # the right one
    install: Callable[[VAE], None] | None        # puts the wrong piece into a VAE; None: the bug is
    loss: str = "bce"                            # not in training but in the nll estimate
    posterior: str = "logvar"                    # of the correct model, and what the buggy one declares
    true_posterior: str = "logvar"               # what the buggy sampler really follows
    objective: str = "elbo"                      # what the correct model trains on: elbo, or iwae with
    iw_samples: int = 1                          # iw_samples z per image
    prior: str = "normal"                        # the correct model's prior (distributions.PRIORS)

    @property
    def in_estimator(self) -> bool:
        return self.install is None


BUGS: dict[str, Bug] = {b.name: b for b in [
    Bug("std-exp-logvar", "the sampler takes exp(logvar) as the std while the KL takes logvar as log sigma^2",
        "std = np.exp(logvar)", "std = np.exp(0.5 * logvar)   [REP-1]", _sampler(StdIsExpLogvar),
        true_posterior="logstd"),
    Bug("logstd-mixup", "posterior logstd: the KL gets logvar = 2a but the sampler is handed a itself",
        "z = reparam.forward(mu, a, eps)", "z = reparam.forward(mu, 2 * a, eps)   [LOGSTD-1]",
        _sampler(LogstdFedAsLogvar), posterior="logstd", true_posterior="logvar"),
    Bug("pixel-mean", "the reconstruction loss averaged over the pixels instead of summed",
        "recon = bce(logits, x).mean(axis=1)", "recon = bce(logits, x).sum(axis=1)   [LOSS-1]",
        _recon(PixelMeanBCE)),
    Bug("kl-dim-mean", "the KL averaged over the latent dimensions instead of summed",
        "kl = 0.5 * (mu**2 + exp(logvar) - 1 - logvar).mean(axis=1)",
        "kl = 0.5 * (mu**2 + exp(logvar) - 1 - logvar).sum(axis=1)   [KL-1]", _kl),
    Bug("bce-unclamped", "BCE on sigmoid probabilities with no clamp: log(0) once p rounds to 0 or 1",
        "l = -(t * log(p) + (1 - t) * log(1 - p))",
        "l = -(t * max(log(p), -100) + (1 - t) * max(log(1 - p), -100))   [BCE-3]",
        _recon(UnclampedBCE), loss="bce-prob"),
    Bug("iwae-mean-log", "the log-likelihood estimate takes the mean of the log-weights, not the log of the mean",
        "nll = -log_w.mean(axis=1)", "nll = -(logsumexp(log_w, axis=1) - log(K))   [IWAE-1]", None),
    Bug("iwae-unnormalised", "IWAE training: the backward's importance weights exp(log w - max) never divided by "
        "their sum", "weights = ratio", "weights = ratio / ratio.sum(axis=1, keepdims=True)   [IWG-3]",
        _objective(UnnormalisedWeights), objective="iwae", iw_samples=5),
    Bug("iwae-uniform", "IWAE training on the mean of the K log-weights: uniform weights 1/K, the K-sample ELBO, "
        "not the bound", "loss = -log_w.mean(axis=1)",
        "loss = -(logsumexp(log_w, axis=1) - log(K))   [IWG-2]", _objective(MeanOfLogWeights),
        objective="iwae", iw_samples=5),
    Bug("vamp-unbounded", "VampPrior pseudo-inputs u = a, the raw parameter: nothing keeps them inside the image "
        "range [0, 1]", "u = pseudo_logits", "u = sigmoid(pseudo_logits)   [VAMP-1]", _unbounded_vamp, prior="vamp"),
]}


def get_bug(name: str) -> Bug:
    try:
        return BUGS[name]
    except KeyError:
        raise ValueError(f"unknown bug '{name}', choose from {', '.join(BUGS)} (scratchvae zoo --list)") from None


def buggy_model(bug: Bug, latent_dim: int, seed: int) -> VAE:
    """The MLP VAE (784-400-L) of the zoo's trainings, with the bug installed; weights and eps
    seeded by ``seed``, so the correct model built with the same seed starts identical."""
    model = correct_model(bug, latent_dim, seed)
    if bug.install is not None:
        bug.install(model)
    return model


def correct_model(bug: Bug, latent_dim: int, seed: int) -> VAE:
    """The same MLP VAE without the bug: the library's own pieces."""
    manual_seed(seed)
    return build_model("mlp", "vae", latent_dim, bug.loss, rng=np.random.default_rng(seed), posterior=bug.posterior,
                       objective=bug.objective, iw_samples=bug.iw_samples, prior=bug.prior)


def honest_view(bug: Bug, model: VAE, buggy: bool) -> VAE:
    """A correct VAE on ``model``'s trained encoder and decoder, with the correct loss, that reads
    the encoder's second half as the model's sampler really used it (the buggy one:
    ``true_posterior``): what evaluation.py measures on it is the ELBO and likelihood of the
    model as it really samples."""
    return VAE(model.encoder, model.decoder, model.latent_dim, bug.loss, rng=model.rng,
               posterior=bug.true_posterior if buggy else bug.posterior, prior=model.prior)


def tiny_model(bug: Bug, seed: int = 0, latent_dim: int = 3, with_bug: bool = True) -> VAE:
    """A float64 VAE on 1x3x3 images (hidden 5) small enough for a full gradient check (a VampPrior:
    TINY_COMPONENTS pseudo-inputs)."""
    manual_seed(seed)
    shape = (1, 3, 3)
    final_sigmoid = not make_loss(bug.loss).takes_logits
    encoder, decoder = mlp_encoder(shape, 5, 2 * latent_dim), mlp_decoder(latent_dim, 5, shape, final_sigmoid)
    model = VAE(encoder, decoder, latent_dim, bug.loss, posterior=bug.posterior, rng=np.random.default_rng(seed),
                prior=make_prior(bug.prior, latent_dim, TINY_COMPONENTS, shape),
                objective=bug.objective, iw_samples=bug.iw_samples).to(np.float64)
    if with_bug and bug.install is not None:
        bug.install(model)
    return model
