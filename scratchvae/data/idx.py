"""Reader for the IDX format MNIST ships in, with every check a corrupt file could fail.

Layout (big-endian): magic (4 bytes: 0, 0, dtype code 0x08 = uint8, number of dims),
then one uint32 per dim, then the uint8 payload. MNIST uses magic 2051 for images
(dims n, rows, cols) and 2049 for labels (dim n).
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from ..errors import UsageError


class DataFileError(UsageError):
    """A data file is missing, truncated, corrupt or not the expected one (one-line message)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    actual = sha256_of(path)
    if actual != expected:
        raise DataFileError(f"{path}: sha256 mismatch (expected {expected[:16]}..., got {actual[:16]}...)")


def read_idx(path: Path, magic: int, ndim: int, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a gzip-compressed IDX file of uint8 into an array of shape (dims...)."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as err:
        raise DataFileError(f"{path}: not a valid gzip file ({err})") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path}: truncated header ({len(raw)} bytes, need {header})")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataFileError(f"{path}: magic number {found}, expected {magic}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if expected_shape is not None and dims != expected_shape:
        raise DataFileError(f"{path}: dims {dims}, expected {expected_shape}")
    payload = len(raw) - header
    if payload != int(np.prod(dims)):
        raise DataFileError(f"{path}: payload is {payload} bytes, dims {dims} need {int(np.prod(dims))}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
