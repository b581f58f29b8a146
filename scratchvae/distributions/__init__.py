"""Priors p(z), posteriors q(z|x) and the KL between them: the parts a VAE's objective is made of.

    gaussian.py   DiagonalGaussian: q(z|x) from the encoder's output; its reparameterised
                  sample (a layer: forward, backward) and its log-density
    normal.py     StandardNormal: p(z) = N(0, I); samples, log-density and its backward
    kl.py         GaussianKL (closed form) and MonteCarloKL (log q - log p at the sample),
                  and make_kl, which picks the closed form when the pair has one
    mixture.py    the mixture density and its gradient, written once; MixtureOfGaussians
    vamp.py       VampPrior: the mixture of the encoder's posteriors on learned pseudo-inputs

A new prior is a Module built with the latent size, with ``sample(n, rng)``, ``log_prob(z)`` and
``log_prob_backward(z, dlogp)`` (adding into its own Parameters' .grad), one line in PRIORS,
and, if its KL from the posterior has a closed form, one line in kl.CLOSED_FORM
(docs/architecture.md).
"""
from __future__ import annotations

from ..nn.module import Module
from .gaussian import DiagonalGaussian
from .kl import CLOSED_FORM, GaussianKL, MonteCarloKL, make_kl
from .mixture import MixtureOfGaussians
from .normal import StandardNormal
from .vamp import VampPrior

#: --prior name -> the prior's class (built with the latent size; a class with ``from_settings``
#: is built by it, with --prior-components and the image shape too)
PRIORS = {"normal": StandardNormal, "mog": MixtureOfGaussians, "vamp": VampPrior}
#: --prior-components when not given: 50 components cost a mog step two (N, 50) GEMMs and a vamp
#: step 50 more encoder rows (a third of a 128-image batch), affordable on a laptop
DEFAULT_COMPONENTS = 50
#: --posterior name -> how the encoder's second half is read (DiagonalGaussian's param)
POSTERIORS = {"logvar": DiagonalGaussian, "logstd": DiagonalGaussian}


def make_prior(name: str, latent_dim: int, components: int = DEFAULT_COMPONENTS,
               image_shape: tuple[int, int, int] | None = None) -> Module:
    """The prior called ``name`` (PRIORS) over latent_dim latents; a learned mixture gets
    ``components`` components (the VampPrior pseudo-inputs of ``image_shape``, (C, H, W))."""
    try:
        cls = PRIORS[name]
    except KeyError:
        raise ValueError(f"unknown prior '{name}', choose from {', '.join(PRIORS)}") from None
    if hasattr(cls, "from_settings"):
        return cls.from_settings(latent_dim, components, image_shape)
    return cls(latent_dim)


def prior_of(model) -> Module:
    """The model's prior, ready to sample (a VampPrior's components made from the current weights);
    N(0, I) for a model without one (an autoencoder, whose codes the tools still compare with N(0, I))."""
    prior = getattr(model, "prior", None)
    if prior is None:
        return StandardNormal(model.latent_dim)
    if hasattr(model, "refresh_prior"):
        model.refresh_prior()             # a VampPrior's components from the current weights
    return prior


def prior_label(prior: Module) -> str:
    """The prior in a few words, for figure titles: 'N(0, I)', 'VampPrior, M=50', ..."""
    m = getattr(prior, "num_components", None)
    return "N(0, I)" if isinstance(prior, StandardNormal) else f"{type(prior).__name__}" + (f", M={m}" if m else "")


def make_posterior(name: str) -> DiagonalGaussian:
    """The posterior family called ``name`` (POSTERIORS)."""
    try:
        return POSTERIORS[name](name)
    except KeyError:
        raise ValueError(f"VAE: posterior must be one of {', '.join(POSTERIORS)}, got {name!r}") from None


__all__ = ["CLOSED_FORM", "DEFAULT_COMPONENTS", "DiagonalGaussian", "GaussianKL", "MixtureOfGaussians",
           "MonteCarloKL", "POSTERIORS", "PRIORS", "StandardNormal", "VampPrior", "make_kl", "make_posterior",
           "make_prior", "prior_label", "prior_of"]
