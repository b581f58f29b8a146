"""The KL term KL(q(z|x) || p(z)): in closed form where the pair has one, else estimated from the sample.

Both take the per-image upstream gradient of the objective: ``backward(dloss)`` with a float
is the gradient of dloss * (the batch mean of kl_n); with an (N,) array it is the gradient of
sum_n dloss_n * kl_n (an objective that weights images or samples differently).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..nn.module import Module, per_image_scale
from .gaussian import DiagonalGaussian
from .normal import StandardNormal


class _KLCache(NamedTuple):
    mu: np.ndarray      # (N, L)
    logvar: np.ndarray  # (N, L)


class GaussianKL:
    """KL( N(mu, exp(logvar)) || N(0, I) ) in closed form, summed over the L latents, averaged over N.

    per image:  kl = 0.5 * sum_j ( mu_j**2 + exp(logvar_j) - 1 - logvar_j )   [KL-1]
    returned:   mean over the batch (nats per image)
    backward:   dmu     = mu / N                        [KL-2]
                dlogvar = 0.5 * (exp(logvar) - 1) / N   [KL-3]
    (the 1/N is the batch mean; beta is applied by the caller: dmu = dz + beta * mu / N;
     backward(dloss) multiplies both by dloss, the gradient arriving at the KL, or by dloss_n
     without the 1/N for a per-image dloss; derivation: docs/derivations/kl.md)
    z and eps are not needed: the closed form is the expectation over them.
    """

    def __init__(self) -> None:
        self.cache: _KLCache | None = None

    def forward(self, mu: np.ndarray, logvar: np.ndarray, z: np.ndarray | None = None,
                eps: np.ndarray | None = None) -> float:
        self.cache = _KLCache(mu, logvar)
        return float(self.per_image(mu, logvar).mean())

    @staticmethod
    def per_image(mu: np.ndarray, logvar: np.ndarray, z: np.ndarray | None = None,
                  eps: np.ndarray | None = None) -> np.ndarray:
        """The KL of each image, (N,): per_dimension summed over the latents (the same bits as
        0.5 * sum(...), since halving is exact)."""
        return np.sum(GaussianKL.per_dimension(mu, logvar), axis=1)  # (N,)

    @staticmethod
    def per_dimension(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
        """The KL of each latent dimension of each image, (N, L): per_image before the sum."""
        return 0.5 * (mu * mu + np.exp(logvar) - 1.0 - logvar)  # (N, L)

    def backward(self, dloss: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is None:
            raise RuntimeError("GaussianKL.backward called before forward")
        return self.grads(*self.cache, dloss)

    @staticmethod
    def grads(mu: np.ndarray, logvar: np.ndarray, dloss: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(dmu, dlogvar) of dloss * the KL at (mu, logvar): backward without the cache."""
        scale = per_image_scale(dloss, mu.shape[0], mu.dtype)  # dloss / N, or (N, 1)
        dmu = mu * scale                                         # (N, L)
        dlogvar = (0.5 * scale) * (np.exp(logvar) - 1.0)         # (N, L)
        return dmu, dlogvar


class _MCCache(NamedTuple):
    z: np.ndarray       # (N, L)
    eps: np.ndarray     # (N, L)
    std: np.ndarray     # (N, L)


class MonteCarloKL:
    """KL(q(z|x) || p(z)) estimated from the sample the objective drew, for pairs with no closed form:

    per image:  kl = log q(z|x) - log p(z),   z = mu + std * eps,  std = exp(logvar / 2)   [KL-4]
                (unbiased: its mean over eps is the KL; one draw is noisy, and can be negative)
    backward:   log q(z|x) in eps is -eps^2/2 - logvar/2 - log(2 pi)/2: with eps held fixed it
                depends on logvar alone (d / dlogvar = -1/2), and -log p(z) reaches mu and
                logvar through z:
                dz      = -d log p / dz * s                 (the prior's log_prob_backward)
                dmu     = dz                                 [KL-5]
                dlogvar = -s / 2 + dz * eps * std / 2        [KL-5]
                where s = dloss / N (or dloss_n); the prior's own parameters get their gradient
                from its log_prob_backward.
    """

    def __init__(self, posterior: DiagonalGaussian, prior: Module) -> None:
        self.posterior, self.prior = posterior, prior
        self.cache: _MCCache | None = None

    def forward(self, mu: np.ndarray, logvar: np.ndarray, z: np.ndarray, eps: np.ndarray) -> float:
        self.cache = _MCCache(z, eps, np.exp(0.5 * logvar))
        return float(self.per_image(mu, logvar, z, eps).mean())

    def per_image(self, mu: np.ndarray, logvar: np.ndarray, z: np.ndarray, eps: np.ndarray) -> np.ndarray:
        return self.posterior.log_prob(eps, logvar) - self.prior.log_prob(z)  # (N,)

    def backward(self, dloss: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is None:
            raise RuntimeError("MonteCarloKL.backward called before forward")
        z, eps, std = self.cache
        scale = per_image_scale(dloss, z.shape[0], z.dtype)    # dloss / N, or (N, 1)
        dlogp = -np.broadcast_to(scale, (z.shape[0], 1))[:, 0]    # (N,): kl = ... - log p(z)
        dz = self.prior.log_prob_backward(z, dlogp)              # (N, L)
        dmu = dz                                                 # (N, L)
        dlogvar = -0.5 * scale + dz * eps * std * 0.5            # (N, L)
        return dmu, dlogvar


#: (posterior family, prior family) -> its closed-form KL; any other pair gets MonteCarloKL
CLOSED_FORM = {(DiagonalGaussian, StandardNormal): GaussianKL}


def make_kl(posterior: DiagonalGaussian, prior: Module) -> GaussianKL | MonteCarloKL:
    """The KL term of a posterior and a prior: the closed form when CLOSED_FORM has the pair."""
    for (post_type, prior_type), kl in CLOSED_FORM.items():
        if isinstance(posterior, post_type) and type(prior) is prior_type:
            return kl()
    return MonteCarloKL(posterior, prior)
