"""Codes of the held-out images and their principal components.

encode_means: the point each image is put at in the latent space, mu = E_q[z | x] for a VAE (no
sampling: the figures show where the encoder puts an image, not a noisy draw around it), and the
code z = encoder(x) itself for an autoencoder.

PCA by the singular value decomposition of the centred data:

    Xc = X - mean(X)                         (N, L)
    Xc = U S V^T                             U (N, r), S (r,), V^T (r, L), r = min(N, L)
    components      = rows of V^T            (unit vectors, largest variance first)
    variance_k      = S_k^2 / (N - 1)        (the variance of the data along component k)
    ratio_k         = S_k^2 / sum_j S_j^2    (the share of the total variance it explains)
    projection      = Xc V = U S             (N, r)

No covariance matrix is formed: the SVD of Xc gives the same axes with half the digits' loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import VAE
from ..nn.module import Module

_BATCH = 1000   # images encoded at once


def encode_posteriors(model: Module, x: np.ndarray, batch_size: int = _BATCH) -> tuple[np.ndarray, np.ndarray | None]:
    """(mu, logvar) of every image for a VAE, float64 (N, L) each, in eval mode; (z, None) for an
    autoencoder, which has no posterior."""
    was_training = model.training
    model.eval()
    try:
        mus, logvars = [], []
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size].astype(model.dtype, copy=False)
            out = model.encode(xb)
            mu, logvar = out if isinstance(model, VAE) else (out, None)  # (B, L) each: the AE's z has no spread
            mus.append(np.asarray(mu, dtype=np.float64))
            if logvar is not None:
                logvars.append(np.asarray(logvar, dtype=np.float64))
    finally:
        model.train(was_training)
    return np.concatenate(mus), (np.concatenate(logvars) if logvars else None)  # (N, L), (N, L) or None


def encode_means(model: Module, x: np.ndarray, batch_size: int = _BATCH) -> np.ndarray:
    """mu of every image for a VAE, z for an autoencoder: float64 (N, L), in eval mode."""
    return encode_posteriors(model, x, batch_size)[0]            # (N, L)


@dataclass
class PCA:
    """The principal axes of a cloud of points (module docstring for the formulas)."""

    mean: np.ndarray                      # (L,)
    components: np.ndarray                # (r, L), one unit axis a row, largest variance first
    explained_variance: np.ndarray        # (r,)
    explained_variance_ratio: np.ndarray  # (r,), sums to 1

    def project(self, x: np.ndarray, k: int = 2) -> np.ndarray:
        """Coordinates of x along the first k components: (x - mean) V_k, (N, k)."""
        return (x - self.mean) @ self.components[:k].T           # (N, k)


def pca(x: np.ndarray) -> PCA:
    """PCA of the rows of x (N, L), N >= 2, by the SVD of the centred data."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"pca needs an (N, L) array with N >= 2, got shape {x.shape}")
    mean = x.mean(axis=0)                                        # (L,)
    centred = x - mean                                           # (N, L)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)       # (r,), (r, L)
    # SVD fixes each axis only up to its sign: make the largest entry of each one positive, so
    # the same data always gives the same picture.
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])  # (r,)
    vt = vt * np.where(signs == 0, 1.0, signs)[:, None]          # (r, L)
    power = s * s                                                # (r,)
    total = power.sum()
    ratio = power / total if total > 0 else np.zeros_like(power)  # (r,)
    return PCA(mean, vt, power / (x.shape[0] - 1), ratio)
