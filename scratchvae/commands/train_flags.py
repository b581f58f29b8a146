"""The flags of ``scratchvae train``, their defaults, and the presets (recipes a flag names).

Every flag defaults to None, so that --resume can tell a flag given (compared with the run's
config) from one left out; DEFAULTS says what a setting is when neither the flag nor a
--preset gives it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data import BINARIZE_MODES
from ..distributions import DEFAULT_COMPONENTS, PRIORS
from ..models import ARCHITECTURES
from ..objective import LOSSES, OBJECTIVES
from ..train import LR_SCHEDULES
from .argtypes import non_negative_float, non_negative_int, positive_float, positive_int

SETTINGS = ("model", "kind", "latent_dim", "loss", "beta", "binarize", "dataset", "image_size", "seed", "workers",
            "epochs", "batch_size", "lr", "clip", "train_size", "kl_warmup",
            "trace_grads", "posterior",
            "prior", "prior_components",
            "objective", "iw_samples", "lr_schedule", "preset")
#: what a setting is when its flag is not given. The flags themselves default to None, so that
#: --resume can tell a flag given (compared with the run's config) from one left out.
#: None here: decided from the model or the data (_new_config, cmd_train).
DEFAULTS = {"model": "mlp", "kind": "vae", "latent_dim": None, "loss": "bce", "beta": 1.0, "binarize": "none",
            "dataset": None, "image_size": None, "seed": 0, "workers": None, "epochs": 10, "batch_size": 128,
            "lr": 1e-3, "clip": None, "train_size": None, "kl_warmup": 0, "trace_grads": False, "posterior": "logvar",
            "prior": "normal", "prior_components": DEFAULT_COMPONENTS,
            "objective": "elbo", "iw_samples": 1, "lr_schedule": "constant", "preset": None}

#: --preset name -> the settings it gives (a flag given as well wins); docs/recipes.md says how
#: each was chosen and what it measured
PRESETS = {
    "best": {"model": "conv", "binarize": "dynamic", "epochs": 250, "kl_warmup": 10, "lr_schedule": "cosine",
             "lr": 1e-3, "prior": "vamp", "prior_components": 50, "seed": 1},
}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--model", choices=sorted(ARCHITECTURES),
                   help="architecture: mlp (784-400-L; any image size), conv (reference conv VAE), keras "
                        "(keras-io conv VAE), faces (64x64, BatchNorm); the conv models take 1x28x28 images, "
                        f"faces 1x64x64 (default: {DEFAULTS['model']})")
    p.add_argument("--kind", choices=("vae", "ae"), help=f"VAE or plain autoencoder (default: {DEFAULTS['kind']})")
    p.add_argument("--dataset",
                   help="mnist (bundled), olivetti (bundled faces), fashion-mnist (downloaded once into "
                        "$SCRATCHVAE_DATA or ~/.cache/scratchvae), or a path: a .npy/.npz array (N, H, W) or "
                        "(N, C, H, W) or a folder of PNG/JPEG images, split 90/10 by --seed "
                        "(default: olivetti for --model faces, else mnist)")
    p.add_argument("--image-size", type=positive_int,
                   help="center-crop and resize every image to this size (default: the data's own)")
    p.add_argument("--latent-dim", type=positive_int,
                   help="latent size (default: 20 mlp, 32 conv, 2 keras, 64 faces)")
    p.add_argument("--epochs", type=positive_int, help=f"(default: {DEFAULTS['epochs']}; with --resume: the run's)")
    p.add_argument("--batch-size", type=positive_int, help=f"(default: {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=positive_float, help=f"Adam learning rate (default: {DEFAULTS['lr']})")
    p.add_argument("--beta", type=non_negative_float,
                   help=f"weight of the KL term, beta-VAE (default: {DEFAULTS['beta']})")
    p.add_argument("--posterior", choices=("logvar", "logstd"),
                   help="what the encoder's second half is: logvar = log sigma^2, or logstd = log sigma "
                        f"(the lecture slides' form; docs/derivations/logstd.md) (default: {DEFAULTS['posterior']})")
    p.add_argument("--prior", choices=sorted(PRIORS),
                   help="p(z): normal = N(0, I) (closed-form KL); mog = a mixture of --prior-components learned "
                        "diagonal Gaussians; vamp = the VampPrior, the mixture of the encoder's posteriors on "
                        "--prior-components learned pseudo-inputs in [0, 1] (not --model faces: BatchNorm). The "
                        "learned priors' KL is the one-sample estimate log q(z|x) - log p(z), so the logged kl is "
                        f"noisy (docs/derivations/mixture.md) (default: {DEFAULTS['prior']})")
    p.add_argument("--prior-components", type=positive_int, metavar="M",
                   help="components of --prior mog or pseudo-inputs of --prior vamp; 50 keeps a laptop's step "
                        "cheap: mog adds two (N x M) products, vamp M more encoder rows per step, about a third "
                        "of a 128-image batch (Tomczak and Welling used 500) "
                        f"(default: {DEFAULTS['prior_components']})")
    p.add_argument("--objective", choices=sorted(OBJECTIVES),
                   help="elbo: one z per image; iwae: the importance-weighted bound of --iw-samples z per image, "
                        "each sample's gradient weighted by its normalised importance weight (Burda et al. 2016; "
                        f"docs/derivations/iwae_gradient.md) (default: {DEFAULTS['objective']})")
    p.add_argument("--iw-samples", type=positive_int, metavar="K",
                   help="importance samples per image for --objective iwae; the decoder runs on K x batch rows, "
                        f"so a step costs about K times the decoder's (default: {DEFAULTS['iw_samples']})")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                   help="constant: --lr throughout; cosine: from --lr down towards 0 over the run's epochs, "
                        f"lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2 (default: {DEFAULTS['lr_schedule']})")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="a recipe of settings (docs/recipes.md); any flag given as well overrides it. best: "
                        + ", ".join(f"{_flag(k)} {v}" for k, v in PRESETS["best"].items()))
    p.add_argument("--kl-warmup", type=non_negative_int, metavar="EPOCHS",
                   help="raise the KL weight linearly from 0 to beta over this many epochs, beta * min(1, "
                        f"epoch / EPOCHS) (against posterior collapse; the test loss always uses beta) (default: "
                        f"{DEFAULTS['kl_warmup']})")
    p.add_argument("--loss", choices=sorted(LOSSES),
                   help="reconstruction loss: bce (from logits), bce-prob (on sigmoid outputs), mse, rmse "
                        f"(default: {DEFAULTS['loss']})")
    p.add_argument("--binarize", choices=BINARIZE_MODES,
                   help="dynamic: fresh Bernoulli pixels every epoch; static: binarized once; "
                        f"none: grey levels as BCE targets (default: {DEFAULTS['binarize']})")
    p.add_argument("--seed", type=int,
                   help=f"seeds init, shuffling, noise and binarization (default: {DEFAULTS['seed']})")
    p.add_argument("--clip", type=positive_float, help="clip the global gradient norm to this value")
    p.add_argument("--train-size", type=positive_int, help="use only the first N training images")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default: runs/<model>-<kind>, numbered -2, -3, ... if taken)")
    p.add_argument("--resume", action="store_true",
                   help="go on from --out's last.npz with that run's settings: the run's own flags may be "
                        "repeated, a different value is refused (only --epochs may change)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=positive_int,
                   help="threads, each training on its share of every batch (default: one per core for "
                        "the conv models, 1 otherwise; see scratchvae/parallel.py)")
    p.add_argument("--trace-grads", action="store_true", default=None,
                   help="record every step's gradient L2 norm per parameter, the reconstruction and KL "
                        "parts of the gradient at the encoder output, and each epoch's held-out KL per "
                        "latent dimension into DIR/gradflow.npz and DIR/gradflow.png (vanishing or "
                        "exploding gradients, posterior collapse); VAE only, one worker")
    return p


