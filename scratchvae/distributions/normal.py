"""The prior p(z) = N(0, I): nothing to learn, a closed-form KL from the Gaussian posterior."""
from __future__ import annotations

import numpy as np

from ..nn.module import Module
from .gaussian import LOG_2PI
from .quantile import normal_ppf


class StandardNormal(Module):
    """p(z) = N(0, I) over L latents.

    sample:    z ~ N(0, I)                                            (n, L)
    density:   log p(z) = sum_d ( -z_d^2 / 2 - log(2 pi) / 2 )        [PRIOR-1]
    backward:  dz = dlogp * d log p / dz = -z * dlogp                 [PRIOR-2]
               (what a Monte Carlo KL needs; this prior has no parameters to train)
    """

    def __init__(self, latent_dim: int) -> None:
        self.latent_dim = latent_dim

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.latent_dim))         # (n, L)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log p(z), summed over the last axis."""
        return np.sum(-0.5 * z * z - 0.5 * LOG_2PI, axis=-1)

    def log_prob_backward(self, z: np.ndarray, dlogp: np.ndarray) -> np.ndarray:
        """dz of dlogp * log p(z); dlogp has z's shape without the last axis."""
        return -z * dlogp[..., None]                             # (..., L)

    @staticmethod
    def quantile(p: float | np.ndarray) -> float | np.ndarray:
        """The quantile function of each coordinate, Phi^-1(p) (the latent grid's axes)."""
        return normal_ppf(p)

    def page_spec(self) -> dict:
        """What the browser explorer runs (explore/distributions.js)."""
        return {"type": "StandardNormal"}

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}"
