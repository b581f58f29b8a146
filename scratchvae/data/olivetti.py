"""Olivetti faces (AT&T Laboratories Cambridge), bundled: 400 images, 40 people, 64x64."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .idx import DataFileError, verify_sha256

SHA256 = "c8d85f0620ce7facaae7693d7597863f5b87427b765b77e3607bf922b4bca005"


class Faces(NamedTuple):
    images: np.ndarray   # (400, 1, 64, 64) float32 in [0, 1]
    subject: np.ndarray  # (400,) person 0-39


def load_faces(path: Path | None = None, verify: bool = True) -> Faces:
    path = Path(path) if path is not None else Path(
        str(resources.files("scratchvae.data") / "_files" / "olivetti" / "olivetti_faces.npz"))
    if verify:
        verify_sha256(path, SHA256)
    with np.load(path, allow_pickle=False) as f:
        images, subject = f["images"], f["subject"]
    if images.shape != (400, 64, 64) or images.dtype != np.uint8:
        raise DataFileError(f"{path}: images are {images.dtype} {images.shape}, expected uint8 (400, 64, 64)")
    x = (images.astype(np.float32) / np.float32(255.0))[:, None]  # (400, 1, 64, 64)
    return Faces(x, subject.astype(np.int64))
