"""The posterior q(z|x): a diagonal Gaussian whose parameters the encoder outputs."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..nn.module import Module

LOG_2PI = math.log(2 * math.pi)


class _SampleCache(NamedTuple):
    eps: np.ndarray  # (N, L)
    std: np.ndarray  # (N, L)


class DiagonalGaussian(Module):
    """q(z|x) = N(mu, diag(exp(logvar))), read off the encoder's output h = [mu, second half].

    parameters: mu, logvar = h[:, :L], h[:, L:]        param='logvar' (log sigma^2)
                mu, logvar = h[:, :L], 2 * h[:, L:]    param='logstd' (a = log sigma)   [LOGSTD-1]
                backward: dh = [dmu, dlogvar]  or  [dmu, 2 dlogvar]                    [LOGSTD-2]
    sample:     z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I)                       [REP-1]
                backward: dmu = dz                                                      [REP-2]
                          dlogvar = dz * eps * std / 2   (d std / d logvar = std / 2)   [REP-3]
    density:    log q(z|x) = sum_d ( -eps_d^2 / 2 - logvar_d / 2 - log(2 pi) / 2 )      [IWAE-2]
                (written in eps: (z - mu) / std loses every digit once std is tiny)

    shapes: h (N, 2L); mu, logvar, eps, z (N, L) (any leading axes for the density).
    ``logvar`` is the log of the VARIANCE, so std = exp(logvar / 2), not exp(logvar): that
    mistake passes every gradient check, which is why tests also measure the std of sampled z.
    eps is a constant for backprop: its distribution depends on no parameter
    (docs/derivations/reparameterize.md). ``forward`` is the sampling layer: it caches eps and
    std for ``backward``; ``eps`` may be passed in to hold the noise fixed.
    """

    PARAMS = ("logvar", "logstd")

    def __init__(self, param: str = "logvar") -> None:
        if param not in self.PARAMS:
            raise ValueError(f"DiagonalGaussian: param must be one of {', '.join(self.PARAMS)}, got {param!r}")
        self.param = param
        self.cache: _SampleCache | None = None

    # -- the encoder's output -> (mu, logvar) -------------------------------------------------------
    def params(self, h: np.ndarray, latent_dim: int) -> tuple[np.ndarray, np.ndarray]:
        if h.ndim != 2 or h.shape[1] != 2 * latent_dim:
            raise ValueError(f"VAE: encoder must output (N, {2 * latent_dim}), got {h.shape}")
        mu, second = h[:, :latent_dim], h[:, latent_dim:]        # (N, L), (N, L)
        if self.param == "logstd":
            return mu, 2 * second                                # logvar = 2 a   [LOGSTD-1]
        return mu, second

    def params_backward(self, dmu: np.ndarray, dlogvar: np.ndarray) -> np.ndarray:
        dsecond = 2 * dlogvar if self.param == "logstd" else dlogvar  # da = 2 dlogvar   [LOGSTD-2]
        return np.concatenate([dmu, dsecond], axis=1)            # (N, 2L)

    # -- the reparameterised sample ------------------------------------------------------------------
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
        self.cache = _SampleCache(eps, std)
        return mu + std * eps                                    # (N, L)

    def backward(self, dz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eps, std = self._require_cache()
        dmu = dz                                                 # (N, L)
        dlogvar = dz * eps * std * 0.5                           # (N, L)
        return dmu, dlogvar

    def sample(self, mu: np.ndarray, logvar: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """z = mu + exp(logvar / 2) * eps with nothing cached (evaluation); any leading axes."""
        return mu + np.exp(0.5 * logvar) * eps                   # (..., L)

    # -- the density ---------------------------------------------------------------------------------
    @staticmethod
    def log_prob(eps: np.ndarray, logvar: np.ndarray) -> np.ndarray:
        """log q(z|x) at z = mu + exp(logvar / 2) eps, summed over the last axis   [IWAE-2]."""
        return np.sum(-0.5 * eps * eps - 0.5 * logvar - 0.5 * LOG_2PI, axis=-1)

    def extra_repr(self) -> str:
        return f"param={self.param!r}"
