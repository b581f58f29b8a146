"""A folder of PNG / JPEG images as a dataset, read with ``matplotlib.image.imread``.

matplotlib reads PNG itself and hands every other format to Pillow (one of its own dependencies),
so JPEG needs nothing extra. Rules, chosen so that a folder means one unambiguous array:

* Files are taken in sorted path order, subfolders included (so a class-per-folder layout works);
  hidden files and folders (``.DS_Store``, ``.git``) are skipped. Any other file that is not
  .png / .jpg / .jpeg is an error rather than silently left out.
* Alpha is dropped. If every image is gray (2-D, or RGB with R = G = B, as many "grayscale"
  JPEGs are saved) the dataset has one channel, else three (gray images repeated).
* ``image_size`` center-crops each image to a square and resizes it (``resize.resize_square``);
  without it, every image must already have the same height and width.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .arrays import as_unit_float
from .idx import DataFileError
from .resize import resize_square

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def image_files(folder: Path) -> list[Path]:
    """Every image under ``folder`` in sorted order; a non-image file or no image at all is an error."""
    found: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or not path.is_file():
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataFileError(f"{path}: not a PNG or JPEG image (move it out of {folder})")
        found.append(path)
    if not found:
        raise DataFileError(f"{folder}: no PNG or JPEG images in this folder")
    return found


def read_image(path: Path) -> np.ndarray:
    """One image as float32 (C, H, W) in [0, 1] with C = 1 (gray) or 3 (RGB)."""
    import matplotlib.image  # imported here: the plotting stack is slow to load and rarely needed

    try:
        x = matplotlib.image.imread(path)
    except Exception as err:  # Pillow and the PNG reader raise many types for a bad file
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DataFileError(f"{path}: not a readable image ({reason})") from None
    # PNG comes back as float32 in [0, 1], JPEG as uint8; as_unit_float maps both (and checks).
    x = as_unit_float(path, np.asarray(x))
    if x.ndim == 2:
        return x[None]                                   # (1, H, W)
    if x.ndim != 3 or x.shape[2] not in (2, 3, 4):
        raise DataFileError(f"{path}: decoded to shape {x.shape}, expected (H, W) or (H, W, 1-4)")
    if x.shape[2] == 2:                                  # gray + alpha
        return x[None, :, :, 0]
    return np.ascontiguousarray(x[:, :, :3].transpose(2, 0, 1))  # RGB(A) -> (3, H, W), alpha dropped


def _is_gray(x: np.ndarray) -> bool:
    return x.shape[0] == 1 or (np.array_equal(x[0], x[1]) and np.array_equal(x[1], x[2]))


def load_image_folder(folder: Path, image_size: int | None = None) -> np.ndarray:
    """All images in ``folder`` as float32 (N, C, H, W) in [0, 1] (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder")
    images: list[np.ndarray] = []
    paths = image_files(folder)
    for path in paths:
        x = read_image(path)
        if image_size is not None:
            x = resize_square(x, image_size)            # resized one by one: photos can be large
        elif images and x.shape[1:] != images[0].shape[1:]:
            raise DataFileError(f"{path}: {x.shape[2]}x{x.shape[1]} pixels but {paths[0].name} is "
                                f"{images[0].shape[2]}x{images[0].shape[1]}; give an image size to resize all")
        images.append(x)
    channels = 1 if all(_is_gray(x) for x in images) else 3
    # broadcast_to repeats a gray image over three channels; [:1] keeps one channel of a gray RGB.
    return np.stack([np.broadcast_to(x, (3, *x.shape[1:])) if channels == 3 else x[:1] for x in images])
