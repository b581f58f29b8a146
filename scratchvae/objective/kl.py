"""KL divergence of the encoder's Gaussian from the prior N(0, I), in closed form."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class _KLCache(NamedTuple):
    mu: np.ndarray      # (N, L)
    logvar: np.ndarray  # (N, L)


class GaussianKL:
    """KL( N(mu, exp(logvar)) || N(0, I) ), summed over the L latents, averaged over N.

    per image:  kl = 0.5 * sum_j ( mu_j**2 + exp(logvar_j) - 1 - logvar_j )   [KL-1]
    returned:   mean over the batch (nats per image)
    backward:   dmu     = mu / N                        [KL-2]
                dlogvar = 0.5 * (exp(logvar) - 1) / N   [KL-3]
    (the 1/N is the batch mean; beta is applied by the caller: dmu = dz + beta * mu / N;
     backward(dloss) multiplies both by dloss, the gradient arriving at the KL;
     derivation: docs/derivations/kl.md)
    """

    def __init__(self) -> None:
        self.cache: _KLCache | None = None

    def forward(self, mu: np.ndarray, logvar: np.ndarray) -> float:
        self.cache = _KLCache(mu, logvar)
        return float(self.per_image(mu, logvar).mean())

    @staticmethod
    def per_image(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
        """The KL of each image, (N,)."""
        return 0.5 * np.sum(mu * mu + np.exp(logvar) - 1.0 - logvar, axis=1)  # (N,)

    def backward(self, dloss: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is None:
            raise RuntimeError("GaussianKL.backward called before forward")
        mu, logvar = self.cache
        scale = float(dloss) / mu.shape[0]                       # dloss / N
        dmu = mu * scale                                         # (N, L)
        dlogvar = (0.5 * scale) * (np.exp(logvar) - 1.0)         # (N, L)
        return dmu, dlogvar
