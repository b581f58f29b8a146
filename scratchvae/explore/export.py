"""The model as data a web page can run: its layers, and which prior, posterior and likelihood it has.

    export_model(model) -> {"encoder": [layer, ...], "decoder": [layer, ...],
                            "prior": {"type": "StandardNormal"}   (or a learned prior's components),
                            "posterior": {"type": "DiagonalGaussian", "param": "logvar"},
                            "likelihood": {"type": "Bernoulli", "logits": true}}

Each layer is the JSON object its class declares (``page_spec``, nn/): its type, its settings as
JSON numbers and its arrays as {"shape", "b64"} (nn/page_arrays.py). layers.js runs the lists in
order: the encoder on an image, the decoder on a code. A layer whose page_spec is None (the page
has no forward for it) is refused with one line naming it (ExportError, a UsageError: the checkpoint is the user's input).

The decoder's output is what the likelihood reads (logits for bce); the image the page shows is
the likelihood's mean, which is ``model.decode_mean``: sigmoid(logits) for bce, the output itself
otherwise. distributions.js holds the math of the prior, the posterior and the likelihood; the
types named here are the ones it knows. A learned prior exports its components: a
MixtureOfGaussians its means and logvars, a VampPrior the means and logvars the encoder gives its
pseudo-inputs now (refresh_prior, at export) and the pseudo-inputs themselves. An autoencoder has
no prior and no posterior (None): its encoder's output is the code.

A BatchNorm exports its running statistics: the page runs in eval mode, as every command does
(checkpoint.load_model puts the model in eval mode).
"""
from __future__ import annotations

from ..distributions import prior_of
from ..errors import UsageError
from ..nn.module import Module, Sequential
from ..objective import BCE, MSE, BCEWithLogits

POSTERIOR_PARAMS = ("logvar", "logstd")   # what distributions.js reads the encoder's second half as
PRIORS = ("StandardNormal", "MixtureOfGaussians", "VampPrior")   # the priors distributions.js has (PRIORS there)


class ExportError(UsageError):
    """A model the page cannot run (one-line message)."""


def runnable_layers() -> list[str]:
    """The names of the layer classes of scratchvae/nn/ that declare a page_spec: the ones the page runs."""
    names, todo = set(), [Module]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if (sub.page_spec is not Module.page_spec and sub.__module__.startswith("scratchvae.nn.")
                    and not sub.__name__.startswith("_")):
                names.add(sub.__name__)
    return sorted(names)


def export_layers(net: Module, part: str) -> list[dict]:
    """The page_spec of every layer of ``net`` (a Sequential, or one layer), in order."""
    layers = list(net) if isinstance(net, Sequential) else [net]
    specs = []
    for i, layer in enumerate(layers):
        spec = layer.page_spec()
        if spec is None:
            raise ExportError(f"the page cannot run a {type(layer).__name__} layer ({part}.{i}); "
                              f"it runs {', '.join(runnable_layers())}")
        specs.append(spec)
    return specs


def posterior_param(model: Module) -> str:
    """What the encoder's second half is, 'logvar' (log sigma^2) or 'logstd' (log sigma): the
    posterior's parameterisation (DiagonalGaussian.param)."""
    param = model.posterior.param
    if param not in POSTERIOR_PARAMS:
        raise ExportError(f"the page cannot run a posterior parameterised by {param!r} "
                          f"(it knows {', '.join(POSTERIOR_PARAMS)})")
    return param


def prior_spec(model: Module) -> dict:
    """N(0, I) for a model without a prior (an autoencoder); else the prior's page_spec() (None: the
    page cannot run it), a VampPrior's components made from the current weights first (prior_of).
    distributions.js must know the type."""
    prior = prior_of(model)
    spec = prior.page_spec()
    if spec is None or spec["type"] not in PRIORS:
        raise ExportError(f"the page cannot run a {type(prior).__name__} prior (it knows {', '.join(PRIORS)})")
    return spec


def likelihood_spec(model: Module) -> dict | None:
    """p(x|z) as evaluation.log_likelihood reads the loss; None for a loss that is none (rmse)."""
    loss = model.recon_loss
    if isinstance(loss, (BCEWithLogits, BCE)):
        return {"type": "Bernoulli", "logits": bool(loss.takes_logits)}
    if isinstance(loss, MSE):
        return {"type": "Gaussian", "variance": 0.5}             # sum (x - pred)^2 = -log N(x; pred, I/2) + const
    return None


def export_model(model: Module) -> dict:
    """The model as the page runs it (module docstring); ExportError when the page cannot."""
    if getattr(model, "decoder", None) is None or getattr(model, "encoder", None) is None:
        raise ExportError(f"a {type(model).__name__} has no encoder and decoder to export")
    has_posterior = hasattr(model, "posterior")                  # a VAE; an Autoencoder has none
    return {
        "encoder": export_layers(model.encoder, "encoder"),
        "decoder": export_layers(model.decoder, "decoder"),
        "prior": prior_spec(model) if has_posterior else None,
        "posterior": {"type": "DiagonalGaussian", "param": posterior_param(model)} if has_posterior else None,
        "likelihood": likelihood_spec(model),
    }
