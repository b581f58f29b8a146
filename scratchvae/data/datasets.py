"""One entry point for ``scratchvae train --dataset NAME|PATH``: a name or a path in, a Dataset out.

Names: ``mnist`` and ``olivetti`` (bundled), ``fashion-mnist`` (downloaded once, see download.py).
Anything else is a path: a .npy / .npz array (arrays.py) or a folder of PNG / JPEG images
(folder.py). The bundled and downloaded sets come with their own held-out part; a path is split
here, 90 / 10, by a seeded permutation.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import UsageError
from .arrays import ARRAY_SUFFIXES, load_array_file
from .download import load_fashion_mnist
from .folder import load_image_folder
from .idx import DataFileError
from .mnist import binarize, load_split, static_test_binarization
from .olivetti import load_faces
from .resize import resize_square

NAMES = ("mnist", "fashion-mnist", "olivetti")
HELD_OUT_FRACTION = 0.1


class Dataset(NamedTuple):
    train: np.ndarray                 # (N, C, H, W) float32 in [0, 1]
    test: np.ndarray                  # (M, C, H, W) float32 in [0, 1], never trained on
    train_labels: np.ndarray | None   # (N,) int64 class / subject ids, or None for a path without labels
    test_labels: np.ndarray | None    # (M,)
    name: str                         # the name, or the path as given
    image_shape: tuple[int, int, int]  # (C, H, W) of every image


def held_out_split(n: int, seed: int = 0, fraction: float = HELD_OUT_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of a seeded split of ``n`` items: the first ``max(1, int(n * fraction))``
    items of ``default_rng(seed).permutation(n)`` are held out. Both parts are returned sorted, so
    each keeps the file's order (training shuffles anyway)."""
    if n < 2:
        raise ValueError(f"need at least 2 images to hold some out, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(n * fraction))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _olivetti() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    faces = load_faces()
    # The same rule as cli.load_data: the 10th photo of each of the 40 people is held out, so
    # every person is seen in training and judged on a photo the model never saw.
    is_test = np.arange(len(faces.images)) % 10 == 9
    return faces.images[~is_test], faces.images[is_test], faces.subject[~is_test], faces.subject[is_test]


def _from_path(path: Path, image_size: int | None, seed: int):
    if path.is_dir():
        images, labels = load_image_folder(path, image_size), None
    elif path.is_file() and path.suffix.lower() in ARRAY_SUFFIXES:
        images, labels = load_array_file(path)
    elif path.exists():
        raise DataFileError(f"{path}: not a .npy/.npz file or a folder of images")
    else:
        raise DataFileError(f"{path}: no such file or folder, and not a dataset name ({', '.join(NAMES)})")
    if len(images) < 2:
        raise DataFileError(f"{path}: holds {len(images)} image, need at least 2 to hold some out")
    train, test = held_out_split(len(images), seed)
    if labels is None:
        return images[train], images[test], None, None
    return images[train], images[test], labels[train], labels[test]


def load_dataset(name_or_path: str, *, image_size: int | None = None, seed: int = 0,
                 train_size: int | None = None) -> Dataset:
    """Train and held-out images (and labels when there are some) of a named dataset or a path.

    ``image_size`` center-crops and resizes every image to image_size x image_size (None keeps the
    native size); ``seed`` drives the 90/10 split of a path (the named sets have fixed splits);
    ``train_size`` keeps the first that many training images. Bad files raise ``DataFileError``
    with a one-line message naming the file.
    """
    if image_size is not None and image_size < 1:
        raise UsageError(f"image_size must be at least 1, got {image_size}")
    if train_size is not None and train_size < 1:
        raise UsageError(f"train_size must be at least 1, got {train_size}")
    key = name_or_path.lower()
    if key == "mnist":
        train, test = load_split("train"), load_split("test")
        parts = train.images, test.images, train.labels, test.labels
    elif key == "fashion-mnist":
        train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
        parts = train.images, test.images, train.labels, test.labels
    elif key == "olivetti":
        parts = _olivetti()
    else:
        parts = _from_path(Path(name_or_path).expanduser(), image_size, seed)
        key = name_or_path
    x_train, x_test, y_train, y_test = parts
    if train_size is not None:                 # before resizing: no work spent on dropped images
        x_train = x_train[:train_size]
        y_train = None if y_train is None else y_train[:train_size]
    if image_size is not None and x_train.shape[-2:] != (image_size, image_size):
        x_train, x_test = resize_square(x_train, image_size), resize_square(x_test, image_size)
    y_train = None if y_train is None else np.asarray(y_train, dtype=np.int64)
    y_test = None if y_test is None else np.asarray(y_test, dtype=np.int64)
    return Dataset(x_train, x_test, y_train, y_test, key, tuple(int(d) for d in x_train.shape[1:]))


def check_model_fits(arch: str, image_shape: tuple[int, int, int]) -> None:
    """Raise a one-line UsageError unless architecture ``arch`` takes images of ``image_shape``.

    The shapes come from ``models.ARCHITECTURES``; the MLP takes any size (build_model's image_shape).
    """
    from ..models import ARCHITECTURES   # here, not at the top: the data package stays model-free

    if arch not in ARCHITECTURES:
        raise UsageError(f"unknown model '{arch}', choose from {sorted(ARCHITECTURES)}")
    wanted = None if arch == "mlp" else ARCHITECTURES[arch][1]   # the MLP takes any size
    image_shape = tuple(int(d) for d in image_shape)
    if wanted is None or tuple(wanted) == image_shape:
        return
    takes = ", ".join(f"{name} {tuple(shape)}" for name, (_, shape, _) in ARCHITECTURES.items() if name != "mlp")
    takes += ", mlp any size"
    hint = ""
    if image_shape[0] == wanted[0] and wanted[1] == wanted[2]:
        hint = f"; resize with --image-size {wanted[1]}"
    elif image_shape[0] != wanted[0]:
        hint = f"; '{arch}' needs {wanted[0]}-channel images"
    raise UsageError(f"model '{arch}' takes images of shape {tuple(wanted)} (C, H, W) but the dataset's are "
                     f"{image_shape}{hint} (models and their shapes: {takes})")


def prepare(dataset: Dataset, binarize_mode: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out images as a run uses them: with binarization (dynamic or static) the
    held-out images are binarized once, by the fixed rule of static_test_binarization (seed 0),
    so every run and every evaluation of a binarized model sees the same binary test set;
    static binarization also binarizes the training images once (from rng); dynamic draws
    them anew in every batch (train.py)."""
    x_train, x_test = dataset.train, dataset.test
    if binarize_mode != "none":
        x_test = static_test_binarization(x_test, seed=0)
    if binarize_mode == "static":
        x_train = binarize(x_train, rng)
    return x_train, x_test


def held_out_images(config: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """The held-out images (binarized as in training) and their labels, of the run a checkpoint's
    config describes: the same images its training loop evaluated on."""
    dataset = load_dataset(config["dataset"], image_size=config.get("image_size"), seed=config.get("seed", 0))
    _, x_test = prepare(dataset, config.get("binarize", "none"), np.random.default_rng(0))
    return x_test, dataset.test_labels
