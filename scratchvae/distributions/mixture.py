"""The mixture density p(z) = (1/M) sum_m N(z; mean_m, diag(exp(logvar_m))), written once for both
learned priors: MixtureOfGaussians (its means and logvars are Parameters) and VampPrior (they are
the encoder's posterior on learned pseudo-inputs, distributions/vamp.py).

    mixture_log_prob       log p(z) by a stable logsumexp over the components      [MIX-1] [MIX-2]
    mixture_backward       dz, dmeans, dlogvars of dlogp * log p(z)                [MIX-3] .. [MIX-5]
    mixture_sample         a component drawn uniformly, then its Gaussian
    mixture_quantile       each coordinate's marginal quantile (the latent grid's axes)   [MIX-6]
    mixture_marginal_density   each coordinate's marginal density (the latent histograms)
(derivation: docs/derivations/mixture.md)
"""
from __future__ import annotations

import math

import numpy as np

from ..nn import init
from ..nn.module import Module, Parameter
from ..nn.page_arrays import page_array
from .gaussian import LOG_2PI


def _flat(z: np.ndarray) -> np.ndarray:
    return z.reshape(-1, z.shape[-1])                            # (R, L): every leading axis is a row


def component_log_probs(z: np.ndarray, means: np.ndarray, logvars: np.ndarray) -> np.ndarray:
    """log N(z; mean_m, diag(exp(logvar_m))) of every row of z and component m, (R, M), in the
    GEMM form [MIX-1]: the squared distance is (z*z) @ (1/v).T - 2 z @ (mean/v).T + sum(mean^2/v),
    two matrix products instead of an (R, M, L) array."""
    inv_var = np.exp(-logvars)                                   # (M, L)
    const = np.sum(means * means * inv_var + logvars, axis=1) + means.shape[1] * LOG_2PI  # (M,)
    sq = (z * z) @ inv_var.T - 2.0 * (z @ (means * inv_var).T)  # (R, M)
    return -0.5 * (sq + const)                                   # (R, M)


def _responsibilities(log_comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logsumexp over the components (R,), softmax over them (R, M)), from the largest term so
    no exp overflows and at least one term is exp(0) = 1 [MIX-2]."""
    top = log_comp.max(axis=1, keepdims=True)                    # (R, 1)
    e = np.exp(log_comp - top)                                   # (R, M)
    total = e.sum(axis=1, keepdims=True)                         # (R, 1)
    return (top + np.log(total))[:, 0], e / total                # (R,), (R, M)


def mixture_log_prob(z: np.ndarray, means: np.ndarray, logvars: np.ndarray) -> np.ndarray:
    """log (1/M) sum_m N(z; mean_m, exp(logvar_m)) over the last axis of z (any leading axes) [MIX-2]."""
    lse, _ = _responsibilities(component_log_probs(_flat(z), means, logvars))  # (R,)
    return (lse - math.log(means.shape[0])).reshape(z.shape[:-1])


def mixture_backward(z: np.ndarray, dlogp: np.ndarray, means: np.ndarray, logvars: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dz (..., L), dmeans (M, L), dlogvars (M, L)) of sum(dlogp * log p(z)), with the
    responsibilities r = softmax_m(log N(z; mean_m, v_m)) and w = dlogp * r (R, M):

        dz       = dlogp * (r @ (mean/v) - z * (r @ (1/v)))                       [MIX-3]
        dmeans   = (1/v) * (w.T @ z - mean * sum_n w)                             [MIX-4]
        dlogvars = ((1/v) * (w.T @ z^2 - 2 mean * (w.T @ z) + mean^2 * sum_n w) - sum_n w) / 2   [MIX-5]
    """
    zf, g = _flat(z), dlogp.reshape(-1)                          # (R, L), (R,)
    _, r = _responsibilities(component_log_probs(zf, means, logvars))  # (R, M)
    inv_var = np.exp(-logvars)                                   # (M, L)
    dz = g[:, None] * (r @ (means * inv_var) - zf * (r @ inv_var))  # (R, L)
    w = g[:, None] * r                                           # (R, M)
    w_sum = w.sum(axis=0)[:, None]                               # (M, 1)
    wz = w.T @ zf                                                # (M, L)
    dmeans = inv_var * (wz - means * w_sum)                      # (M, L)
    wzz = w.T @ (zf * zf)                                        # (M, L)
    dlogvars = 0.5 * (inv_var * (wzz - 2.0 * means * wz + means * means * w_sum) - w_sum)  # (M, L)
    return dz.reshape(z.shape), dmeans, dlogvars


def mixture_sample(n: int, rng: np.random.Generator, means: np.ndarray, logvars: np.ndarray) -> np.ndarray:
    """n draws: a component m uniform over the M, then z = mean_m + exp(logvar_m / 2) * eps, (n, L)."""
    m = rng.integers(means.shape[0], size=n)                     # (n,)
    eps = rng.standard_normal((n, means.shape[1]))               # (n, L)
    return means[m] + np.exp(0.5 * logvars[m]) * eps             # (n, L)


def mixture_marginal_density(t: np.ndarray, means: np.ndarray, logvars: np.ndarray) -> np.ndarray:
    """Each coordinate's marginal density at the points t (G,), (G, L): the derivative of [MIX-6],
    f_d(t) = (1/M) sum_m N(t; mean_md, v_md) (the latent histograms' curve)."""
    mu, var = means.astype(np.float64), np.exp(logvars.astype(np.float64))  # (M, L) each
    diff = np.asarray(t, dtype=np.float64)[:, None, None] - mu   # (G, M, L)
    return np.mean(np.exp(-0.5 * diff * diff / var) / np.sqrt(2 * math.pi * var), axis=1)  # (G, L)


def mixture_quantile(p: np.ndarray, means: np.ndarray, logvars: np.ndarray, steps: int = 80) -> np.ndarray:
    """Each coordinate's marginal quantile, (len(p), L): the z_d with F_d(z_d) = p, where
    F_d(t) = (1/M) sum_m Phi((t - mean_md) / sigma_md) [MIX-6] is increasing, so bisection finds
    it; 80 halvings of a bracket 40 sigma wide reach float64's resolution."""
    p = np.asarray(p, dtype=np.float64).reshape(-1, 1)           # (P, 1)
    if np.any((p <= 0) | (p >= 1)):
        raise ValueError("mixture_quantile: p must be strictly between 0 and 1")
    mu, sigma = means.astype(np.float64), np.exp(0.5 * logvars.astype(np.float64))  # (M, L) each
    lo = np.broadcast_to((mu - 20 * sigma).min(axis=0), (p.shape[0], mu.shape[1])).copy()  # (P, L)
    hi = np.broadcast_to((mu + 20 * sigma).max(axis=0), lo.shape).copy()  # (P, L)
    erfc = np.frompyfunc(math.erfc, 1, 1)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)                                    # (P, L)
        u = (mid[:, None, :] - mu) / (sigma * math.sqrt(2.0))    # (P, M, L)
        cdf = (0.5 * erfc(-u).astype(np.float64)).mean(axis=1)   # (P, L): Phi(x) = erfc(-x / sqrt 2) / 2
        below = cdf < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)                                       # (P, L)


class MixtureOfGaussians(Module):
    """p(z) = (1/M) sum_m N(z; means[m], diag(exp(logvars[m]))), M learned diagonal Gaussians with
    equal weights 1/M.

    parameters: means (M, L), logvars (M, L)
    density:    log p(z) = logsumexp_m log N(z; means[m], exp(logvars[m])) - log M      [MIX-1] [MIX-2]
    backward:   dz of dlogp * log p(z), and means.grad += dmeans, logvars.grad += dlogvars,
                through the responsibilities r = softmax_m                            [MIX-3] .. [MIX-5]
    shapes:     z (..., L); log p(z) (...)

    Init: means ~ N(0, 1), logvars 0. Equal means would stay equal forever (every component would
    get the same responsibility and the same gradient), so they are drawn apart; N(0, 1) spreads
    them over the region where a fresh encoder's posteriors, near N(0, I), put their codes, and
    unit variances make the mixture start about as wide as N(0, I). Drawn from nn.init's
    generator, so manual_seed makes them reproducible.
    No closed-form KL from the Gaussian posterior exists, so the VAE estimates it from the sample
    ([KL-4], distributions/kl.py).
    """

    def __init__(self, latent_dim: int, components: int = 50) -> None:
        if components < 1:
            raise ValueError(f"MixtureOfGaussians: components must be at least 1, got {components}")
        self.latent_dim = latent_dim
        self.means = Parameter(init._rng.standard_normal((components, latent_dim)))
        self.logvars = Parameter(np.zeros((components, latent_dim)))

    @classmethod
    def from_settings(cls, latent_dim: int, components: int, image_shape: tuple | None = None) -> MixtureOfGaussians:
        return cls(latent_dim, components)

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return mixture_sample(n, rng, self.means.data, self.logvars.data)  # (n, L)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log p(z), summed over the last axis (any leading axes)."""
        return mixture_log_prob(z, self.means.data, self.logvars.data)

    def log_prob_backward(self, z: np.ndarray, dlogp: np.ndarray) -> np.ndarray:
        """dz of dlogp * log p(z) (dlogp: z's shape without the last axis); adds into the Parameters' .grad."""
        dz, dmeans, dlogvars = mixture_backward(z, dlogp, self.means.data, self.logvars.data)
        self.means.grad += dmeans.astype(self.means.grad.dtype, copy=False)
        self.logvars.grad += dlogvars.astype(self.logvars.grad.dtype, copy=False)
        return dz                                                # (..., L)

    def marginal_density(self, t: np.ndarray) -> np.ndarray:
        """Each coordinate's marginal density at the points t (G,), (G, L)."""
        return mixture_marginal_density(t, self.means.data, self.logvars.data)

    def quantile(self, p: np.ndarray) -> np.ndarray:
        """Each coordinate's marginal quantile at p, (len(p), L) [MIX-6] (the latent grid's axes)."""
        return mixture_quantile(p, self.means.data, self.logvars.data)

    def page_spec(self) -> dict:
        """What the browser explorer runs (explore/distributions.js): the components, float32."""
        return {"type": "MixtureOfGaussians", "means": page_array(self.means), "logvars": page_array(self.logvars)}

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, components={self.means.shape[0]}"
