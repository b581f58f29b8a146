"""The latent-space PNGs (matplotlib, no screen needed; plots.py's tile() builds the mosaics).

    save_scatter      the held-out codes coloured by label; above 2 dimensions their PCA projection
    save_manifold     the decoded quantile grid of a 2-D latent (grid.py)
    save_histograms   one histogram per latent dimension over the prior's density (N(0, 1) or a learned marginal)
    save_strip        rows of decoded images with a label per column (interpolations, feature strips)
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..plots import plt, tile   # plots.py has already switched matplotlib to the Agg backend
from .projection import pca


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def save_scatter(codes: np.ndarray, labels: np.ndarray | None, path: Path, title: str = "") -> Path:
    """codes (N, L) as points: z_1 against z_2 when L = 2, z against its label when L = 1, and the
    first two principal components when L > 2 (their explained variance in the title)."""
    n, latent = codes.shape
    if latent > 2:
        p = pca(codes)
        xy = p.project(codes, 2)                                 # (N, 2)
        r = p.explained_variance_ratio
        axes = ("PC 1", "PC 2")
        title += f"\nPCA of the {latent}-D means: PC 1 {100 * r[0]:.1f}% + PC 2 {100 * r[1]:.1f}% of the variance"
    elif latent == 2:
        xy, axes = codes, ("z_1", "z_2")
    else:
        rows = labels if labels is not None else np.random.default_rng(0).uniform(-0.3, 0.3, n)
        xy, axes = np.stack([codes[:, 0], rows], axis=1), ("z_1", "label" if labels is not None else "(jitter)")
    fig, ax = plt.subplots(figsize=(6, 5))
    size = max(1.0, min(12.0, 4000.0 / n))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6, linewidths=0)
    else:
        classes = np.unique(labels)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "viridis")
        for i, c in enumerate(classes):
            at = labels == c
            colour = cmap(i if len(classes) <= 10 else i / max(1, len(classes) - 1))
            ax.scatter(xy[at, 0], xy[at, 1], s=size, alpha=0.6, linewidths=0, color=colour,
                       label=str(c) if len(classes) <= 10 else None)
        if len(classes) <= 10:
            ax.legend(markerscale=max(1.0, 12.0 / size) ** 0.5, fontsize=7, loc="best", title="label")
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def save_manifold(images: np.ndarray, q: np.ndarray, path: Path, title: str = "") -> Path:
    """The n x n decoded grid (images in manifold_codes' order: top row z_2 largest), axes in z;
    q (n,), or (n, 2) when each axis has its own quantiles (a mixture prior)."""
    n = len(q)
    q1, q2 = (q[:, 0], q[:, 1]) if q.ndim == 2 else (q, q)     # (n,) each
    h, w = images.shape[-2:]
    mosaic = tile(np.clip(images, 0.0, 1.0), n)                  # (n*H, n*W)
    fig, ax = plt.subplots(figsize=(7, 7.3))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    step = max(1, n // 8)
    ticks = np.arange(0, n, step)
    ax.set_xticks(ticks * w + w / 2, [f"{q1[i]:.2f}" for i in ticks], fontsize=7)
    ax.set_yticks(ticks * h + h / 2, [f"{q2[n - 1 - i]:.2f}" for i in ticks], fontsize=7)
    ax.set_xlabel("z_1 = Phi^-1((i + 0.5) / n)" if q.ndim == 1 else "z_1 = F_1^-1((i + 0.5) / n), the prior's marginal")
    ax.set_ylabel("z_2")
    ax.set_title(title, fontsize=8)
    return _save(fig, path)


def save_histograms(codes: np.ndarray, path: Path, title: str = "", max_dims: int = 64,
                    prior: tuple[np.ndarray, np.ndarray, str] | None = None) -> Path:
    """A density histogram of each dimension of codes (N, L) over the prior's density: N(0, 1), or
    ``prior`` = (points (G,), each dimension's marginal density there (G, L), its name), a learned
    prior's (distributions/mixture.py, mixture_marginal_density)."""
    latent = min(codes.shape[1], max_dims)
    cols = min(latent, 4)
    rows = math.ceil(latent / cols)
    fig, axs = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.1 * rows + 0.4), squeeze=False)
    if prior is None:
        grid = np.linspace(-4, 4, 200)                           # (200,)
        normal = np.exp(-0.5 * grid * grid) / math.sqrt(2 * math.pi)  # (200,)
        prior = (grid, np.repeat(normal[:, None], codes.shape[1], axis=1), "N(0, 1)")
    grid, density, name = prior
    for d, ax in enumerate(axs.ravel()):
        if d >= latent:
            ax.axis("off")
            continue
        c = codes[:, d]                                          # (N,)
        ax.hist(c, bins=40, density=True, alpha=0.6, color="tab:blue")
        ax.plot(grid, density[:, d], "k-", lw=1, label=name)
        ax.set_title(f"z_{d + 1}: mean {c.mean():.2f}, std {c.std():.2f}", fontsize=7)
        ax.tick_params(labelsize=6)
    axs.ravel()[0].legend(fontsize=6)
    fig.suptitle(title + (f" (first {max_dims} of {codes.shape[1]} dims)" if codes.shape[1] > max_dims else ""),
                 fontsize=8)
    return _save(fig, path)


def save_strip(rows: np.ndarray, column_labels: Sequence[str], path: Path, title: str = "",
               row_labels: Sequence[str] | None = None) -> Path:
    """rows (R, K, C, H, W) or (R, K, H, W) images as an R x K mosaic, a label under each column."""
    r, k = rows.shape[:2]
    h, w = rows.shape[-2:]
    mosaic = tile(np.clip(rows.reshape(r * k, h, w), 0.0, 1.0), k)  # (R*H, K*W)
    fig, ax = plt.subplots(figsize=(max(3.0, 0.75 * k + 0.8), 0.75 * r + 0.9))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(np.arange(k) * w + w / 2, list(column_labels), fontsize=6)
    if row_labels is not None:
        ax.set_yticks(np.arange(r) * h + h / 2, list(row_labels), fontsize=6)
    else:
        ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    return _save(fig, path)
