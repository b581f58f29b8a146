"""Figures: image grids for reconstructions and samples (matplotlib, no screen needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def tile(images: np.ndarray, ncols: int) -> np.ndarray:
    """(N, 1, H, W) or (N, H, W) -> one (rows*H, ncols*W) mosaic, blank-padded."""
    images = images.reshape(images.shape[0], images.shape[-2], images.shape[-1])  # (N, H, W)
    n, h, w = images.shape
    rows = -(-n // ncols)
    grid = np.ones((rows * h, ncols * w), dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return grid


def save_grid(images: np.ndarray, path: Path, ncols: int = 10, title: str | None = None) -> Path:
    grid = tile(np.clip(images, 0.0, 1.0), ncols)
    fig, ax = plt.subplots(figsize=(ncols * 0.6, grid.shape[0] / grid.shape[1] * ncols * 0.6 + 0.4))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def draw_mosaic(ax, images: np.ndarray, ncols: int, title: str, fontsize: int = 8) -> None:
    """One titled mosaic of images (clipped to [0, 1]) in the axes ``ax``, no frame."""
    ax.imshow(tile(np.clip(images, 0.0, 1.0), ncols), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=fontsize)
    ax.axis("off")


def save_mosaics(panels: list[tuple[str, np.ndarray]], path: Path, ncols: int = 6, stacked: bool = False) -> Path:
    """(title, images) panels, one mosaic each with ``ncols`` images a row: side by side, or one under
    another (``stacked``: for wide mosaics)."""
    rows = max(-(-len(images) // ncols) for _, images in panels)
    width, height = 0.55 * ncols, 0.55 * rows + 0.4            # inches per panel
    shape, size = ((len(panels), 1), (width, height * len(panels))) if stacked else \
        ((1, len(panels)), (width * len(panels), height))
    fig, axes = plt.subplots(*shape, figsize=size, squeeze=False)
    for ax, (title, images) in zip(axes.ravel(), panels):
        draw_mosaic(ax, images, ncols, title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def save_reconstructions(originals: np.ndarray, recons: np.ndarray, path: Path, ncols: int = 10,
                         title: str = "top: test images, bottom: reconstructions") -> Path:
    """Alternate rows of originals and their reconstructions (a short last pair padded with blank
    tiles, so its reconstructions start a row of their own, under their originals)."""
    rows = []
    for start in range(0, len(originals), ncols):
        for part in (originals[start:start + ncols], recons[start:start + ncols]):
            blank = np.ones((ncols - len(part), *part.shape[1:]), dtype=part.dtype)  # (pad, C, H, W)
            rows.append(np.concatenate([part, blank]))
    return save_grid(np.concatenate(rows), path, ncols, title)


def save_loss_curves(history: list[dict], path: Path) -> Path:
    """Train and test loss per epoch from metrics rows."""
    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax.plot(epochs, [r["test_loss"] for r in history], "s-", label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per image")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
