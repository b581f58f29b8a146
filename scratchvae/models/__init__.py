"""Model zoo: ``build_model`` puts an encoder/decoder pair into a VAE or an Autoencoder."""
from __future__ import annotations

import numpy as np

from ..distributions import DEFAULT_COMPONENTS, make_prior
from ..nn.module import batch_coupling
from ..objective import make_loss
from .conv import faces_conv, keras_conv, mnist_conv
from .mlp import mlp_decoder, mlp_encoder
from .vae import VAE, Autoencoder, Losses


def _mlp(latent_dim: int, enc_out: int, final_sigmoid: bool, shape: tuple[int, int, int] = (1, 28, 28),
         hidden: int = 400):
    return mlp_encoder(shape, hidden, enc_out), mlp_decoder(latent_dim, hidden, shape, final_sigmoid)


#: architecture name -> (builder, image shape (C, H, W), default latent size); the MLP takes
#: any image shape (build_model's image_shape), the conv models only their own
ARCHITECTURES = {
    "mlp": (_mlp, (1, 28, 28), 20),
    "conv": (mnist_conv, (1, 28, 28), 32),
    "keras": (keras_conv, (1, 28, 28), 2),
    "faces": (faces_conv, (1, 64, 64), 64),
}


def build_model(arch: str = "mlp", kind: str = "vae", latent_dim: int | None = None, loss: str = "bce",
                beta: float = 1.0, rng: np.random.Generator | None = None,
                image_shape: tuple[int, int, int] | None = None, posterior: str = "logvar",
                prior: str = "normal", prior_components: int = DEFAULT_COMPONENTS,
                objective: str = "elbo", iw_samples: int = 1) -> VAE | Autoencoder:
    """A VAE (kind='vae') or plain Autoencoder (kind='ae') of a named architecture.

    ``rng`` draws the VAE's eps; the initial weights come from nn.init (manual_seed).
    ``image_shape`` (C, H, W): the MLP's input size (default 1x28x28); a conv model takes
    only its own. ``posterior``: what the VAE encoder's second half is, 'logvar' (log sigma^2)
    or 'logstd' (log sigma). ``prior``: 'normal' (N(0, I)), 'mog' (a mixture of prior_components
    learned Gaussians) or 'vamp' (a VampPrior with prior_components pseudo-inputs; not with a
    BatchNorm encoder, prior_refusal). ``objective``: 'elbo', or 'iwae' with ``iw_samples`` K per image."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown model '{arch}', choose from {sorted(ARCHITECTURES)}")
    if kind not in ("vae", "ae"):
        raise ValueError(f"unknown kind '{kind}', choose 'vae' or 'ae'")
    builder, _, default_latent = ARCHITECTURES[arch]
    latent_dim = default_latent if latent_dim is None else latent_dim
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be at least 1, got {latent_dim}")
    final_sigmoid = not make_loss(loss).takes_logits
    enc_out = 2 * latent_dim if kind == "vae" else latent_dim
    if image_shape is not None and arch != "mlp" and tuple(image_shape) != ARCHITECTURES[arch][1]:
        raise ValueError(f"model '{arch}' takes images of shape {ARCHITECTURES[arch][1]} (C, H, W), "
                         f"not {tuple(image_shape)}; the mlp model takes any size")
    if image_shape is not None and arch == "mlp":
        encoder, decoder = builder(latent_dim, enc_out, final_sigmoid, tuple(image_shape))
    else:
        encoder, decoder = builder(latent_dim, enc_out, final_sigmoid)
    if kind == "vae":
        shape = tuple(image_shape) if image_shape is not None else ARCHITECTURES[arch][1]
        prior_module = make_prior(prior, latent_dim, prior_components, shape)
        return VAE(encoder, decoder, latent_dim, loss, beta, rng, posterior, prior_module,
                   objective=objective, iw_samples=iw_samples)
    return Autoencoder(encoder, decoder, latent_dim, loss)


def prior_refusal(arch: str, prior: str) -> str | None:
    """Why the architecture cannot take that prior, or None: a VampPrior runs the encoder on its
    pseudo-inputs in the images' batch, which BatchNorm's statistics would mix (faces)."""
    if prior == "vamp" and arch == "faces":
        return ("--prior vamp: the faces model's encoder has BatchNorm, whose batch statistics would mix "
                "the images with the pseudo-inputs; use --prior mog or normal")
    return None


def objective_refusal(model, arch: str, objective: str) -> str | None:
    """Why the model cannot train on that objective, or None: the importance-weighted bound needs
    an image's K samples to be independent draws, which BatchNorm's batch statistics would couple."""
    if objective == "iwae" and (coupled := batch_coupling(model)) is not None:
        return (f"--objective iwae: the '{arch}' model has {coupled}, whose batch statistics would couple "
                f"an image's K samples (they must be independent draws)")
    return None


__all__ = ["ARCHITECTURES", "Autoencoder", "Losses", "VAE", "build_model", "faces_conv", "keras_conv",
           "mlp_decoder", "mlp_encoder", "mnist_conv", "objective_refusal", "prior_refusal"]
