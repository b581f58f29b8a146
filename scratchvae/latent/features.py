"""Feature vectors: a direction in the latent space that adds a feature to an image's code.

    v = mean of mu over the items WITH the feature  -  mean of mu over the items WITHOUT it   (L,)
    z_new = z + alpha v                                                                     (L,)

mu is the encoder's posterior mean E_q[z | x], not a sampled z: a sample adds noise of the
posterior's spread to every item, which only slows the estimate down without moving it.

Estimated batch by batch (estimate_feature_vector), as running means of each side:

    after a batch with k positive items of mean m_b:  n_pos <- n_pos + k,
                                                      m_pos <- m_pos + k (m_b - m_pos) / n_pos
    (and likewise for the negatives), v_t = m_pos - m_neg after batch t.

A batch with no positive item updates only the negative mean (and the other way round); v
is undefined until both sides have been seen at least once. The change after batch t is

    change_t = max_d | v_t[d] - v_{t-1}[d] |     (the largest move of any coordinate, in latent units)

and the estimate stops at the first batch whose change is below the tolerance. A change is only
measured between two batches that both come after both sides were first seen, so convergence is
never declared before that, nor on the very first estimate. With tolerance 0 (or when the
tolerance is never met) every batch is used and v is the mean difference over the whole data.

Features with no labels, computed from the pixels of each image I (intensities in [0, 1]):

    ink   = mean_{pixels} I                             (how much ink)
    slant = mu11 / mu02, the central image moments of I taken as a distribution over pixel
            positions (x = column, y = row counted UPWARD from the bottom):
                xbar = sum I x / sum I,  ybar = sum I y / sum I
                mu11 = sum I (x - xbar)(y - ybar),  mu02 = sum I (y - ybar)^2
            the shear dx/dy of the stroke: > 0 for a '/' leaning right, < 0 for '\\', 0 upright.

An item has the attribute when its value is above the median (split_at_median).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import UsageError


# -- attributes from the pixels -------------------------------------------------------------------------
def _pixels(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) -> (N, H, W) float64, colour averaged over its channels."""
    images = np.asarray(images, dtype=np.float64)
    return images.mean(axis=1) if images.ndim == 4 else images  # (N, H, W)


def ink(images: np.ndarray) -> np.ndarray:
    """Mean intensity of each image, (N,)."""
    return _pixels(images).mean(axis=(1, 2))                     # (N,)


def slant(images: np.ndarray) -> np.ndarray:
    """mu11 / mu02 of each image (module docstring), (N,); 0 for a blank image or a flat line."""
    img = _pixels(images)                                        # (N, H, W)
    h, w = img.shape[1:]
    y = (h - 1 - np.arange(h, dtype=np.float64))[None, :, None]  # (1, H, 1), counted upward
    x = np.arange(w, dtype=np.float64)[None, None, :]            # (1, 1, W)
    mass = img.sum(axis=(1, 2))                                  # (N,)
    safe = np.where(mass > 0, mass, 1.0)                         # (N,)
    xbar = (img * x).sum(axis=(1, 2)) / safe                     # (N,)
    ybar = (img * y).sum(axis=(1, 2)) / safe                     # (N,)
    dx = x - xbar[:, None, None]                                 # (N, 1, W)
    dy = y - ybar[:, None, None]                                 # (N, H, 1)
    mu11 = (img * dx * dy).sum(axis=(1, 2))                      # (N,)
    mu02 = (img * dy * dy).sum(axis=(1, 2))                      # (N,)
    return np.where(mu02 > 0, mu11 / np.where(mu02 > 0, mu02, 1.0), 0.0)  # (N,)


def split_at_median(values: np.ndarray) -> np.ndarray:
    """values > median(values): the items that have the attribute, (N,) bool (ties go to 'without')."""
    values = np.asarray(values, dtype=np.float64)
    return values > np.median(values)                            # (N,)


# -- user-given labels ------------------------------------------------------------------------------------
_TRUE, _FALSE = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f"}


def _bool(text: str, where: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE or t in _FALSE:
        return t in _TRUE
    raise UsageError(f"{where}: label '{text.strip()}' is not 0/1 or true/false")


def labels_from_file(path: Path, n: int) -> np.ndarray:
    """Boolean feature labels of n items, (n,) bool, from
    a ``.npy`` of n bools or 0/1 numbers, or a CSV of ``index,label`` lines (label 0/1 or
    true/false; any order; every index 0..n-1 exactly once; blank lines, lines starting with '#'
    and one header line ``index,label`` are skipped). A bad file is a one-line UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such labels file")
    if path.suffix.lower() == ".npy":
        try:
            raw = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise UsageError(f"{path}: not a readable .npy file ({' '.join(str(err).split())})") from None
        raw = raw.ravel() if raw.ndim == 2 and 1 in raw.shape else raw
        if raw.ndim != 1 or len(raw) != n:
            raise UsageError(f"{path}: holds {raw.shape[0] if raw.ndim else 0} labels (shape {raw.shape}), "
                             f"the held-out set has {n} images")
        if raw.dtype != bool and not np.all(np.isin(raw, (0, 1))):
            raise UsageError(f"{path}: labels must be booleans or 0/1 numbers")
        return raw.astype(bool)
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"{path}: not a readable CSV file ({' '.join(str(err).split())})") from None
    labels: dict[int, bool] = {}
    for line_no, row in enumerate(rows, start=1):
        where = f"{path}, line {line_no}"
        if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
            continue
        if len(row) != 2:
            raise UsageError(f"{where}: expected 'index,label', got {','.join(row)!r}")
        if not labels and row[0].strip().lower() == "index":
            continue                                         # the header
        try:
            index = int(row[0])
        except ValueError:
            raise UsageError(f"{where}: index '{row[0].strip()}' is not an integer") from None
        if not 0 <= index < n:
            raise UsageError(f"{where}: index {index} is outside the held-out set (0..{n - 1})")
        if index in labels:
            raise UsageError(f"{where}: index {index} is listed twice")
        labels[index] = _bool(row[1], where)
    if len(labels) != n:
        raise UsageError(f"{path}: labels {len(labels)} items, the held-out set has {n} images "
                         f"(every index 0..{n - 1} once)")
    return np.array([labels[i] for i in range(n)], dtype=bool)


# -- the estimator --------------------------------------------------------------------------------------------
@dataclass
class FeatureEstimate:
    """The feature vector and how it was reached (module docstring)."""

    vector: np.ndarray        # (L,) v = mean mu with - mean mu without
    batches: int              # batches consumed
    change: float             # max |v_t - v_{t-1}| of the last batch (inf if never measured)
    converged: bool           # change < tolerance was reached before the data ran out
    n_with: int               # items with the feature seen
    n_without: int            # items without it seen


def estimate_feature_vector(batches: Iterable[tuple[np.ndarray, np.ndarray]],
                            tolerance: float = 1e-3) -> FeatureEstimate:
    """v from batches of (mu (B, L), has_feature (B,) bool) by running means, stopping at the first
    batch whose change max_d |v_t - v_{t-1}| is < tolerance (module docstring). The batches are
    consumed lazily: a generator that encodes as it goes is encoded no further than needed."""
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be zero or positive, got {tolerance}")
    mean_with = mean_without = None
    n_with = n_without = count = 0
    previous: np.ndarray | None = None
    change = float("inf")
    for mu, has in batches:
        count += 1
        mu = np.asarray(mu, dtype=np.float64)                    # (B, L)
        has = np.asarray(has, dtype=bool)                        # (B,)
        if mean_with is None:
            mean_with, mean_without = np.zeros(mu.shape[1]), np.zeros(mu.shape[1])  # (L,) each
        k_with, k_without = int(has.sum()), int((~has).sum())
        if k_with:                                               # a side with no item stays as it was
            n_with += k_with
            mean_with += k_with * (mu[has].mean(axis=0) - mean_with) / n_with        # (L,)
        if k_without:
            n_without += k_without
            mean_without += k_without * (mu[~has].mean(axis=0) - mean_without) / n_without  # (L,)
        if not (n_with and n_without):
            continue                                             # v undefined: one side not seen yet
        v = mean_with - mean_without                             # (L,)
        if previous is not None:
            change = float(np.max(np.abs(v - previous)))
            if change < tolerance:
                return FeatureEstimate(v, count, change, True, n_with, n_without)
        previous = v.copy()
    if previous is None:
        raise ValueError("no item has the feature" if not n_with else "every item has the feature")
    return FeatureEstimate(previous, count, change, False, n_with, n_without)


def in_batches(codes_of, x: np.ndarray, has: np.ndarray, batch_size: int,
               order: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(codes_of(x[idx]), has[idx]) for consecutive chunks idx of ``order`` (default 0..N-1):
    the batches estimate_feature_vector consumes, each encoded only when it is asked for."""
    order = np.arange(len(x)) if order is None else order
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield codes_of(x[idx]), has[idx]                         # (B, L), (B,)


def shift_codes(z: np.ndarray, v: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """z_new = z + alpha v for every code and alpha: (N, A, L) for z (N, L), v (L,), alphas (A,)."""
    return z[:, None, :] + np.asarray(alphas, float)[None, :, None] * v[None, None, :]  # (N, A, L)
