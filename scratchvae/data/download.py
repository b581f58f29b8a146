"""Fashion-MNIST, downloaded once into a local cache, checked, then read like the bundled MNIST.

Fashion-MNIST (Zalando Research) is MNIST's drop-in replacement: the same IDX files, the same
60,000 / 10,000 split of 28x28 grayscale images, 10 classes of clothing. It is too big to bundle,
so the first use fetches the four files from the project's own server into

    $SCRATCHVAE_DATA/fashion-mnist/     (or ~/.cache/scratchvae/fashion-mnist/)

and every later use reads them from there, with no network. Each file is checked against its
sha256 before it is trusted, both right after the download and each time it is read.

Where the sha256 values come from: the Fashion-MNIST README publishes only md5s
(train-images 8d4fb7e6c68d591d4c3dfef9ec88bf0d, train-labels 25c81989df183df01b3e8a0aad5dffbe,
t10k-images bef4ecab320f06d8554ea6380940ec79, t10k-labels bb300cfdad3c16e7a12a480ee83cd310).
The sha256 values below are the ones torchvision's dataset code pins for the same URLs
(pytorch/vision, torchvision/prototype/datasets/_builtin/mnist.py), and that several other
projects list next to those md5s for the same files.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

import numpy as np

from ..atomic import fsync_folder
from .idx import DataFileError, read_idx, sha256_of
from .mnist import Split

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
URL_ENV = "SCRATCHVAE_FASHION_MNIST_URL"   # points the download at a mirror (or a test server)
DATA_ENV = "SCRATCHVAE_DATA"               # where downloaded datasets are kept

#: file name -> sha256 of the .gz file as served (sizes 26,421,880 / 29,515 / 4,422,102 / 5,148 bytes)
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class _Retryable(Exception):
    """A failure worth another attempt: the network or the server, not the file's content."""


def cache_dir() -> Path:
    """The folder downloaded datasets live in: ``$SCRATCHVAE_DATA``, else ``~/.cache/scratchvae``."""
    root = os.environ.get(DATA_ENV)
    return Path(root) if root else Path.home() / ".cache" / "scratchvae"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _download_once(url: str, dest: Path, sha256: str, timeout: float) -> None:
    """Stream ``url`` into a temporary file next to ``dest``, check it, then rename it into place.

    The temporary file lives in the same folder so that ``os.replace`` is an atomic rename: a
    reader sees either no file or the whole verified file, never a partial one, even if this
    process is killed half-way.
    """
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest, received = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    announced = response.headers.get("Content-Length")
                    while chunk := response.read(1 << 16):
                        try:
                            out.write(chunk)
                        except OSError as err:   # a full disk is not the network's fault: no retry
                            raise DataFileError(f"{tmp}: cannot write ({_one_line(err)})") from None
                        digest.update(chunk)
                        received += len(chunk)
            except urllib.error.HTTPError as err:
                err.close()
                # 5xx and 429 are the server's passing trouble; 404 and the like will not change.
                if err.code >= 500 or err.code == 429:
                    raise _Retryable(f"HTTP {err.code} {err.reason}") from None
                raise DataFileError(f"{url}: HTTP {err.code} {err.reason}") from None
            except (urllib.error.URLError, HTTPException, OSError) as err:
                reason = err.reason if isinstance(err, urllib.error.URLError) else err
                raise _Retryable(_one_line(reason)) from None
            # http.client does not complain when the connection closes before Content-Length
            # bytes arrived, so count them here: that is the usual sign of a cut transfer.
            if announced is not None and received != int(announced):
                raise _Retryable(f"transfer cut short: {received} of {announced} bytes")
            out.flush()
            os.fsync(out.fileno())      # the bytes are on disk before the name points at them
        actual = digest.hexdigest()
        if actual != sha256:
            # Not retried: a server that sends the wrong bytes will most likely send them again.
            raise DataFileError(f"{url}: sha256 mismatch (expected {sha256}, got {actual}); nothing was kept")
        os.replace(tmp, dest)
        fsync_folder(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)     # after a success the temporary name is already gone


def fetch(names: dict[str, str], directory: Path, base_url: str, *, attempts: int = 3,
          backoff: float = 0.5, timeout: float = 30.0) -> Path:
    """Make sure ``directory`` holds every file in ``names`` (file name -> sha256), downloading the
    missing ones from ``base_url`` + name. Returns ``directory``.

    Network and server errors are retried ``attempts`` times in all, waiting ``backoff`` seconds,
    then twice that, and so on. A file already present is verified, never downloaded again.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    base_url = base_url.rstrip("/") + "/"
    for name, sha256 in names.items():
        path = directory / name
        if path.is_file():
            actual = sha256_of(path)
            if actual != sha256:
                raise DataFileError(f"{path}: sha256 mismatch (expected {sha256}, got {actual}); "
                                    f"delete it to download it again")
            continue
        for attempt in range(attempts):
            try:
                _download_once(base_url + name, path, sha256, timeout)
                break
            except _Retryable as err:
                if attempt + 1 < attempts:
                    time.sleep(backoff * 2 ** attempt)
                    continue
                missing = [n for n in names if not (directory / n).is_file()]
                by_hand = ", ".join(f"{n} (sha256 {names[n]})" for n in missing)
                raise DataFileError(f"could not download {base_url + name} after {attempts} attempts "
                                    f"({err}); without network, put {by_hand} in {directory}") from None
    return directory


def fetch_fashion_mnist(directory: Path | None = None, base_url: str | None = None,
                        checksums: dict[str, str] | None = None, *, attempts: int = 3,
                        backoff: float = 0.5) -> Path:
    """The folder holding the four verified Fashion-MNIST files, downloading what is missing.

    ``base_url`` defaults to ``$SCRATCHVAE_FASHION_MNIST_URL``, else the project's server;
    ``checksums`` (file name -> sha256) defaults to ``FASHION_MNIST_SHA256``.
    """
    directory = Path(directory) if directory is not None else cache_dir() / "fashion-mnist"
    base_url = base_url or os.environ.get(URL_ENV) or FASHION_MNIST_URL
    checksums = FASHION_MNIST_SHA256 if checksums is None else checksums
    return fetch(checksums, directory, base_url, attempts=attempts, backoff=backoff)


def load_fashion_mnist(split: str = "train", directory: Path | None = None, base_url: str | None = None,
                       checksums: dict[str, str] | None = None, *, attempts: int = 3,
                       backoff: float = 0.5) -> Split:
    """Fashion-MNIST images scaled to [0, 1] as (N, 1, 28, 28) float32, and their labels (0-9)."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown Fashion-MNIST split '{split}', choose 'train' or 'test'")
    folder = fetch_fashion_mnist(directory, base_url, checksums, attempts=attempts, backoff=backoff)
    prefix = "train" if split == "train" else "t10k"
    img_path, lbl_path = folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
    # The sha256 already pins the real files' sizes; the count is left open here so that small
    # stand-in files (tests, a mirror with a subset) go through the same reader and checks.
    images = read_idx(img_path, magic=2051, ndim=3)
    labels = read_idx(lbl_path, magic=2049, ndim=1)
    if images.shape[1:] != (28, 28):
        raise DataFileError(f"{img_path}: images are {images.shape[1:]}, expected (28, 28)")
    if len(labels) != len(images):
        raise DataFileError(f"{lbl_path}: {len(labels)} labels for {len(images)} images in {img_path.name}")
    x = (images.astype(np.float32) / np.float32(255.0))[:, None]  # (N, 1, 28, 28)
    return Split(x, labels.copy())
