"""The manifold of a 2-D latent space: decode a grid of codes laid out by the prior's quantiles.

The grid follows Kingma & Welling (2014, fig. 4): z runs over the standard-normal quantiles

    z_i = Phi^-1(p_i),   p_i = (i + 0.5) / n,   i = 0 .. n-1,

so each grid cell holds the same prior mass 1/n per axis. The p_i are strictly inside (0, 1):
the often-copied ``norm.ppf(np.linspace(0, 1, n))`` puts p = 0 and p = 1 on the grid, whose
quantiles are -inf and +inf, and the decoder of an infinite code is garbage (or NaN).

Phi^-1 is the prior's quantile function (StandardNormal.quantile: normal_ppf, computed without
scipy in distributions/quantile.py); ``manifold_codes`` takes the quantile function of the model's
prior, so a prior with other marginals lays its own grid. A learned mixture prior (mog, vamp) has
a different marginal on each axis, F_d(t) = (1/M) sum_m Phi((t - mean_md) / sigma_md), and its
quantile returns both axes' quantiles, (n, 2): each column then holds 1/n of the prior's mass of
z_1 and each row 1/n of that of z_2 (distributions/mixture.py, mixture_quantile, [MIX-6]).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..distributions.quantile import normal_ppf


def quantile_grid(n: int, quantile: Callable[[np.ndarray], np.ndarray] = normal_ppf) -> np.ndarray:
    """z_i = quantile((i + 0.5) / n), i = 0 .. n-1 (Phi^-1 by default): n finite values, (n,), or
    (n, L) for a quantile function with one column per axis (a mixture's); symmetrised about 0
    for the standard normal."""
    if n < 1:
        raise ValueError(f"the grid needs at least 1 point per axis, got {n}")
    z = quantile((np.arange(n) + 0.5) / n)                       # (n,)
    if quantile is not normal_ppf:
        return z
    return 0.5 * (z - z[::-1])                                   # exact symmetry z_i = -z_{n-1-i}


def manifold_codes(latent_dim: int, n: int, quantile: Callable[[np.ndarray], np.ndarray] = normal_ppf
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The n x n grid of 2-D codes, in the order of an image mosaic (row by row, top row first):
    row r has z_2 = q[n-1-r] (largest on top, as a y axis), column c has z_1 = q[c].
    ``quantile``: the prior's per-axis quantile function (model.prior.quantile).
    Returns (codes (n*n, 2), q (n,) or (n, 2): one column per axis when the prior's marginals
    differ). A latent of another size than 2 is a ValueError."""
    if latent_dim != 2:
        raise ValueError(f"the manifold grid needs a 2-D latent space, this model's has {latent_dim} "
                         f"dimension{'s' if latent_dim != 1 else ''}")
    q = quantile_grid(n, quantile)                               # (n,) or (n, 2)
    q1, q2 = (q[:, 0], q[:, 1]) if q.ndim == 2 else (q, q)       # (n,) each
    z1, z2 = np.meshgrid(q1, q2[::-1])                           # (n, n) each
    return np.stack([z1.ravel(), z2.ravel()], axis=1), q         # (n*n, 2), (n,)
