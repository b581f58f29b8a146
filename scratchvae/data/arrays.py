"""A NumPy array file as a dataset: ``.npy``, or ``.npz`` holding one array (or one named ``images``).

Accepted: shape (N, H, W) (grayscale) or (N, C, H, W) with C = 1 or 3; dtype uint8 (0-255), bool,
or floats already in [0, 1]. The result is always float32 (N, C, H, W) in [0, 1]. An ``.npz`` may
also carry ``labels`` of shape (N,), which are handed back with the images.

Files are always opened with ``allow_pickle=False``: a pickled array can run arbitrary code when
loaded, and an image dataset never needs one.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .idx import DataFileError

ARRAY_SUFFIXES = (".npy", ".npz")
IMAGES_KEY, LABELS_KEY = "images", "labels"   # the bundled olivetti_faces.npz uses "images" too


class ArrayData(NamedTuple):
    images: np.ndarray          # (N, C, H, W) float32 in [0, 1]
    labels: np.ndarray | None   # (N,) int64, when the .npz carries them


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in the file by name (a .npy is one array named ``images``)."""
    try:
        if path.suffix.lower() == ".npy":
            return {IMAGES_KEY: np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        # np.load reports a pickled (object) array, a bad header and a cut file alike as one of these.
        reason = " ".join(str(err).split())
        raise DataFileError(f"{path}: not a readable {path.suffix} array file ({reason})") from None


def _pick_images(path: Path, arrays: dict[str, np.ndarray]) -> np.ndarray:
    if IMAGES_KEY in arrays:
        return arrays[IMAGES_KEY]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if not arrays:
        raise DataFileError(f"{path}: the archive holds no arrays")
    # Guessing which of several arrays are the images would be a silent coin toss.
    raise DataFileError(f"{path}: holds {len(arrays)} arrays ({', '.join(sorted(arrays))}); "
                        f"name the images '{IMAGES_KEY}' or keep only one array")


def as_unit_float(path: Path, x: np.ndarray) -> np.ndarray:
    """uint8 / bool / float images as float32 in [0, 1], refusing anything that is not plainly so."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.floating):
        if np.isnan(x).any():
            raise DataFileError(f"{path}: contains NaN")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:      # also catches +-inf
            raise DataFileError(f"{path}: values span [{lo:g}, {hi:g}], expected floats in [0, 1] "
                                f"(or uint8 0-255)")
        return x.astype(np.float32)
    # Other integer types are refused rather than guessed at: 0-255, 0-65535 and 0/1 all occur.
    raise DataFileError(f"{path}: dtype {x.dtype}, expected uint8 (0-255), bool or floats in [0, 1]")


def as_nchw(path: Path, x: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); (N, C, H, W) with C in (1, 3) as is; anything else refused."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim != 4:
        raise DataFileError(f"{path}: array of shape {x.shape} ({x.ndim}-D), expected (N, H, W) or (N, C, H, W)")
    elif x.shape[1] not in (1, 3):
        hint = "; it looks channels-last, use x.transpose(0, 3, 1, 2)" if x.shape[3] in (1, 3) else ""
        raise DataFileError(f"{path}: shape {x.shape} has {x.shape[1]} channels, expected 1 or 3 "
                            f"as (N, C, H, W){hint}")
    if 0 in x.shape:
        raise DataFileError(f"{path}: shape {x.shape} holds no pixels")
    return x


def load_array_file(path: Path) -> ArrayData:
    """Images (N, C, H, W) float32 in [0, 1] from a .npy or .npz file, checked (one-line errors)."""
    path = Path(path)
    if path.suffix.lower() not in ARRAY_SUFFIXES:
        raise DataFileError(f"{path}: not a .npy or .npz file")
    arrays = _read_arrays(path)
    images = as_unit_float(path, as_nchw(path, _pick_images(path, arrays)))
    labels = arrays.get(LABELS_KEY) if IMAGES_KEY in arrays else None
    if labels is not None:
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise DataFileError(f"{path}: '{LABELS_KEY}' is {labels.dtype} {labels.shape}, "
                                f"expected integers of shape ({len(images)},)")
        labels = labels.astype(np.int64)
    return ArrayData(images, labels)
