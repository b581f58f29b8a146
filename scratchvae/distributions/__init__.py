"""Priors p(z), posteriors q(z|x) and the KL between them: the parts a VAE's objective is made of.

    gaussian.py   DiagonalGaussian: q(z|x) from the encoder's output; its reparameterised
                  sample (a layer: forward, backward) and its log-density
    normal.py     StandardNormal: p(z) = N(0, I); samples, log-density and its backward
    kl.py         GaussianKL (closed form) and MonteCarloKL (log q - log p at the sample),
                  and make_kl, which picks the closed form when the pair has one

A new prior is a Module built with the latent size, with ``sample(n, rng)``, ``log_prob(z)`` and
``log_prob_backward(z, dlogp)`` (adding into its own Parameters' .grad), one line in PRIORS,
and, if its KL from the posterior has a closed form, one line in kl.CLOSED_FORM
(docs/architecture.md).
"""
from __future__ import annotations

from ..nn.module import Module
from .gaussian import DiagonalGaussian
from .kl import CLOSED_FORM, GaussianKL, MonteCarloKL, make_kl
from .normal import StandardNormal

#: --prior name -> the prior's class (built with the latent size)
PRIORS = {"normal": StandardNormal}
#: --posterior name -> how the encoder's second half is read (DiagonalGaussian's param)
POSTERIORS = {"logvar": DiagonalGaussian, "logstd": DiagonalGaussian}


def make_prior(name: str, latent_dim: int):
    """The prior called ``name`` (PRIORS) over latent_dim latents."""
    try:
        cls = PRIORS[name]
    except KeyError:
        raise ValueError(f"unknown prior '{name}', choose from {', '.join(PRIORS)}") from None
    return cls(latent_dim)


def prior_of(model) -> Module:
    """The model's prior; N(0, I) for a model without one (an autoencoder, whose codes the tools
    still compare with N(0, I))."""
    prior = getattr(model, "prior", None)
    return prior if prior is not None else StandardNormal(model.latent_dim)


def make_posterior(name: str) -> DiagonalGaussian:
    """The posterior family called ``name`` (POSTERIORS)."""
    try:
        return POSTERIORS[name](name)
    except KeyError:
        raise ValueError(f"VAE: posterior must be one of {', '.join(POSTERIORS)}, got {name!r}") from None


__all__ = ["CLOSED_FORM", "DiagonalGaussian", "GaussianKL", "MonteCarloKL", "POSTERIORS", "PRIORS",
           "StandardNormal", "make_kl", "make_posterior", "make_prior", "prior_of"]
