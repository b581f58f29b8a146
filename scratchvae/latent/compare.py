"""Figures that compare models: the plain autoencoder against the VAE, and a sweep over beta.

AE vs VAE ("the problems with the normal autoencoder"). Both models put each held-out image at a
point of the same 2-D latent space. For each model the figure shows

    the codes, coloured by label                   where the encoder puts the data
    decodes of z ~ Uniform(bounding box of codes)  is every point between the clusters an image?
    decodes of z ~ the model's prior               can we sample by drawing from the prior?
                                                   (N(0, I) for the autoencoder, which has none)

The AE's codes have no reason to fill their box or to sit near the origin at unit scale: uniform
draws land in the gaps between clusters (blurry non-digits) and N(0, I) draws may miss the codes
altogether. The VAE's KL term pulls its codes towards N(0, I), so both kinds of draws decode to
images.

beta sweep (the rate-distortion view of Alemi et al. 2018): a beta-VAE minimises
recon + beta * KL; on held-out data KL is the rate (nats the code carries about the image) and
recon the distortion. Small beta: a high rate and sharp reconstructions; large beta: a low rate,
blurry reconstructions and (past some beta) an ignored latent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..distributions import prior_label, prior_of
from ..plots import draw_mosaic, plt, tile
from .figures import _save
from .projection import encode_means


def bounding_box(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low (L,), high (L,)): the per-dimension min and max of codes (N, L)."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] < 1:
        raise ValueError(f"codes must be an (N, L) array with N >= 1, got shape {codes.shape}")
    return codes.min(axis=0), codes.max(axis=0)


def box_samples(codes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points drawn uniformly over the bounding box of codes (N, L): (n, L), each inside it."""
    if n < 1:
        raise ValueError(f"need at least 1 sample, got {n}")
    low, high = bounding_box(codes)
    return low + (high - low) * rng.uniform(0.0, 1.0, (n, low.shape[0]))  # (n, L)


def _scatter(ax, codes: np.ndarray, labels: np.ndarray | None, title: str) -> None:
    size = max(1.0, min(10.0, 3000.0 / len(codes)))
    cmap = plt.get_cmap("tab10")
    if labels is None:
        ax.scatter(codes[:, 0], codes[:, 1], s=size, alpha=0.6, linewidths=0)
    else:
        for i, c in enumerate(np.unique(labels)):
            at = labels == c
            ax.scatter(codes[at, 0], codes[at, 1], s=size, alpha=0.6, linewidths=0, color=cmap(i % 10),
                       label=str(c))
        ax.legend(fontsize=6, markerscale=2, loc="best", ncol=2)
    low, high = bounding_box(codes)
    ax.add_patch(plt.Rectangle(low, *(high - low), fill=False, ls="--", lw=1, ec="k"))
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(2 * np.cos(t), 2 * np.sin(t), "r-", lw=1, label="_")   # 2 sigma of N(0, I)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("z_1")
    ax.set_ylabel("z_2")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)


def save_ae_vs_vae(ae, vae, x: np.ndarray, labels: np.ndarray | None, path: Path, n: int = 64,
                   rng: np.random.Generator | None = None) -> Path:
    """The AE-vs-VAE figure (module docstring): a row per model of [codes of x (dashed: their bounding
    box, red: radius 2 of N(0, I)), decodes of n uniform draws over that box, decodes of n draws
    from the model's prior (distributions.prior_of: N(0, I) for the autoencoder)]. Both models need a 2-D
    latent space (a ValueError otherwise)."""
    for name, model in (("autoencoder", ae), ("VAE", vae)):
        if model.latent_dim != 2:
            raise ValueError(f"the AE-vs-VAE figure needs 2-D latent spaces, the {name}'s has {model.latent_dim}")
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"{len(labels)} labels for {len(x)} images")
    rng = np.random.default_rng(0) if rng is None else rng
    ncols = int(np.ceil(np.sqrt(n)))
    fig, axs = plt.subplots(2, 3, figsize=(12, 8))
    for row, (name, model) in enumerate((("autoencoder", ae), ("VAE", vae))):
        codes = encode_means(model, x)                           # (N, 2)
        z_box = box_samples(codes, n, rng)                       # (n, 2)
        prior = prior_of(model)
        z_prior = prior.sample(n, rng)                           # (n, 2)
        _scatter(axs[row, 0], codes, labels, f"{name}: codes of the held-out images")
        was_training = model.training
        model.eval()
        try:
            box_images, prior_images = model.decode_mean(z_box), model.decode_mean(z_prior)
        finally:
            model.train(was_training)
        (lo0, lo1), (hi0, hi1) = bounding_box(codes)
        draw_mosaic(axs[row, 1], box_images, ncols,
                    f"{name}: z uniform in the box [{lo0:.1f}, {hi0:.1f}] x [{lo1:.1f}, {hi1:.1f}]")
        draw_mosaic(axs[row, 2], prior_images, ncols, f"{name}: z ~ {prior_label(prior)}")
    return _save(fig, path)


@dataclass
class BetaResult:
    """One model of a beta sweep, judged on held-out images."""

    beta: float
    recon: float              # held-out reconstruction loss per image (distortion, nats)
    kl: float                 # held-out KL per image (rate, nats)
    samples: np.ndarray       # (K, C, H, W) or (K, H, W) decoded prior draws in [0, 1]


def _check_results(results: Sequence[BetaResult]) -> None:
    if len(results) == 0:
        raise ValueError("a beta sweep needs at least one result")


def save_rate_distortion(results: Sequence[BetaResult], path: Path, title: str = "") -> Path:
    """Held-out KL (rate, x) against held-out recon (distortion, y), one labelled point per beta,
    joined in order of beta, and the lines recon + KL = const through the beta = 1 point if any."""
    _check_results(results)
    results = sorted(results, key=lambda r: r.beta)
    rate = np.array([r.kl for r in results])
    dist = np.array([r.recon for r in results])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(rate, dist, "o-", color="tab:blue")
    for r in results:
        ax.annotate(f"beta={r.beta:g}", (r.kl, r.recon), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ones = [r for r in results if r.beta == 1]
    if ones:
        elbo = ones[0].recon + ones[0].kl
        span = np.linspace(0, rate.max() * 1.1 + 1, 50)
        ax.plot(span, elbo - span, "k:", lw=1, label=f"recon + KL = {elbo:.1f} (beta = 1's -ELBO)")
        ax.legend(fontsize=7)
        ax.set_xlim(0, rate.max() * 1.1 + 1)
        ax.set_ylim(dist.min() - 0.1 * np.ptp(dist) - 1, dist.max() + 0.1 * np.ptp(dist) + 1)
    ax.set_xlabel("rate: held-out KL per image (nats)")
    ax.set_ylabel("distortion: held-out recon per image (nats)")
    ax.set_title(title or "beta-VAE: rate against distortion", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def save_beta_samples(results: Sequence[BetaResult], path: Path, title: str = "") -> Path:
    """A row of prior samples per beta (every result needs the same number of samples)."""
    _check_results(results)
    results = sorted(results, key=lambda r: r.beta)
    k = len(results[0].samples)
    if any(len(r.samples) != k for r in results):
        raise ValueError("every beta needs the same number of samples")
    h, w = results[0].samples.shape[-2:]
    images = np.concatenate([np.asarray(r.samples).reshape(k, h, w) for r in results])  # (R*K, H, W)
    fig, ax = plt.subplots(figsize=(max(3.0, 0.6 * k + 1.2), 0.6 * len(results) + 0.8))
    ax.imshow(tile(np.clip(images, 0, 1), k), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks(np.arange(len(results)) * h + h / 2,
                  [f"beta={r.beta:g}\nKL {r.kl:.1f}" for r in results], fontsize=7)
    ax.set_title(title or "decoded z ~ N(0, I), one row per beta", fontsize=9)
    return _save(fig, path)
