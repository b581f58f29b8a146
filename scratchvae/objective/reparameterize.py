"""The reparameterization trick: sampling that gradients can flow through."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class _ReparamCache(NamedTuple):
    eps: np.ndarray  # (N, L)
    std: np.ndarray  # (N, L)


class Reparameterize:
    """z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I)   [REP-1]

    ``logvar`` is the log of the VARIANCE, so the standard deviation is
    std = exp(logvar / 2) (not exp(logvar): that mistake passes every gradient
    check, which is why tests also measure the std of sampled z).

    shapes:   mu, logvar, eps, z: (N, L)
    backward: dmu     = dz                                                     [REP-2]
              dlogvar = dz * eps * std / 2        since d std / d logvar = std / 2   [REP-3]
    eps is a constant for backprop: its distribution depends on no parameter
    (docs/derivations/reparameterize.md).
    ``eps`` may be passed in to hold the noise fixed (gradient checks, demos).
    """

    def __init__(self) -> None:
        self.cache: _ReparamCache | None = None

    def forward(self, mu: np.ndarray, logvar: np.ndarray, eps: np.ndarray | None = None,
                rng: np.random.Generator | None = None) -> np.ndarray:
        if mu.shape != logvar.shape:
            raise ValueError(f"Reparameterize: mu {mu.shape} and logvar {logvar.shape} differ in shape")
        if eps is None:
            eps = (rng or np.random.default_rng()).standard_normal(mu.shape, dtype=mu.dtype)
        elif eps.shape != mu.shape:
            raise ValueError(f"Reparameterize: eps has shape {eps.shape}, mu has {mu.shape}")
        else:
            eps = np.asarray(eps, dtype=mu.dtype)  # float64 noise must not promote a float32 model
        std = np.exp(0.5 * logvar)                               # (N, L)
        self.cache = _ReparamCache(eps, std)
        return mu + std * eps                                    # (N, L)

    def backward(self, dz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is None:
            raise RuntimeError("Reparameterize.backward called before forward")
        eps, std = self.cache
        dmu = dz                                                 # (N, L)
        dlogvar = dz * eps * std * 0.5                           # (N, L)
        return dmu, dlogvar
