"""MNIST, bundled with the package (no network): loading, scaling and binarization."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .idx import read_idx, verify_sha256

FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
SIZES = {"train": 60000, "test": 10000}
BINARIZE_MODES = ("dynamic", "static", "none")


class Split(NamedTuple):
    images: np.ndarray  # (N, 1, 28, 28) float32 in [0, 1]
    labels: np.ndarray  # (N,) uint8


def data_dir() -> Path:
    return Path(str(resources.files("scratchvae.data") / "_files" / "mnist"))


def load_split(split: str = "train", directory: Path | None = None, verify: bool = True) -> Split:
    """Images scaled to [0, 1] as (N, 1, 28, 28) float32, and their labels."""
    if split not in SIZES:
        raise ValueError(f"unknown MNIST split '{split}', choose 'train' or 'test'")
    directory = Path(directory) if directory is not None else data_dir()
    prefix = "train" if split == "train" else "t10k"
    n = SIZES[split]
    img_path = directory / f"{prefix}-images-idx3-ubyte.gz"
    lbl_path = directory / f"{prefix}-labels-idx1-ubyte.gz"
    if verify:
        verify_sha256(img_path, FILES[img_path.name])
        verify_sha256(lbl_path, FILES[lbl_path.name])
    images = read_idx(img_path, magic=2051, ndim=3, expected_shape=(n, 28, 28))
    labels = read_idx(lbl_path, magic=2049, ndim=1, expected_shape=(n,))
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(n, 1, 28, 28)  # (N, 1, 28, 28)
    return Split(x, labels.copy())


def binarize(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One Bernoulli draw per pixel with p = intensity: x_b = (u < x), u ~ U(0, 1)."""
    return (rng.random(x.shape, dtype=np.float32) < x).astype(x.dtype)


def static_test_binarization(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The test set binarized once, as the reference recipe does:
    ``np.random.default_rng(0).random((10000, 784)) < x`` (float64 draws, row-major)."""
    u = np.random.default_rng(seed).random((x.shape[0], int(np.prod(x.shape[1:]))))  # (N, D) float64
    return (u.reshape(x.shape) < x).astype(x.dtype)
