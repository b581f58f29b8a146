"""The VampPrior (Tomczak and Welling, 2018): p(z) = (1/M) sum_m q(z | u_m), the mixture of the
encoder's posteriors on M learned pseudo-inputs u_m (docs/derivations/vamp.md)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..nn import init
from ..nn.activations import sigmoid
from ..nn.module import Module, Parameter
from ..nn.page_arrays import page_array
from .mixture import mixture_backward, mixture_log_prob, mixture_marginal_density, mixture_quantile, mixture_sample


class _Components(NamedTuple):
    means: np.ndarray     # (M, L): mu of q(z | u_m)
    logvars: np.ndarray   # (M, L): logvar of q(z | u_m)


class VampPrior(Module):
    """p(z) = (1/M) sum_m q(z | u_m), u = sigmoid(pseudo_logits), M learned pseudo-inputs.

    parameters:  pseudo_logits a (M, C, H, W); the pseudo-inputs are u = sigmoid(a)      [VAMP-1]
    components:  means, logvars = the posterior's parameters of encoder(u)   (M, L) each  [VAMP-2]
    density:     the mixture of docs/derivations/mixture.md on those components    [MIX-1] [MIX-2]
    backward:    log_prob_backward returns dz and ADDS dmeans, dlogvars into the components'
                 gradient (component_grads) [MIX-3] .. [MIX-5]; the VAE sends them through
                 posterior.params_backward and the encoder's backward with the images' rows,
                 which gives du, and pseudo_backward(du) adds into a.grad:
                 da = du * u * (1 - u)                                                  [VAMP-3]

    The prior never runs the encoder (it must not hold it: named_parameters would count the
    encoder twice). The VAE does, once per forward, on [x; u] (VAE.encode), and hands the
    prior its components with set_components; a model whose encoder couples the images of a
    batch (BatchNorm) would mix x and u in its statistics and is refused (models.prior_refusal).
    Why sigmoid: u stays inside the image range (0, 1) whatever step Adam takes, with a
    gradient everywhere; clipping u instead would stop the gradient of a pseudo-pixel at 0 or 1
    and need a hook after every optimizer step.
    Init: a ~ N(0, 1), so u ~ sigmoid(N(0, 1)) lies mostly in (0.12, 0.88), where the sigmoid's
    slope is at least 0.1: random grey images, different from each other (equal pseudo-inputs
    would give equal components, which stay equal), drawn from nn.init's generator.
    """

    reads_encoder = True   # the VAE runs its encoder on pseudo_inputs() and calls set_components

    def __init__(self, latent_dim: int, components: int, image_shape: tuple[int, int, int]) -> None:
        if components < 1:
            raise ValueError(f"VampPrior: components must be at least 1, got {components}")
        self.latent_dim = latent_dim
        self.pseudo_logits = Parameter(init._rng.standard_normal((components, *image_shape)))
        self.components: _Components | None = None
        self.component_grads: _Components | None = None
        self._u: np.ndarray | None = None    # sigmoid(a) of the last pseudo_inputs(), for pseudo_backward

    @classmethod
    def from_settings(cls, latent_dim: int, components: int, image_shape: tuple | None = None) -> VampPrior:
        if image_shape is None:
            raise ValueError("VampPrior: needs the image shape (C, H, W) of its pseudo-inputs")
        return cls(latent_dim, components, tuple(image_shape))

    # -- the pseudo-inputs and their components, run through the VAE's encoder ---------------------
    def pseudo_inputs(self) -> np.ndarray:
        """u = sigmoid(a), (M, C, H, W), inside [0, 1]   [VAMP-1]."""
        self._u = sigmoid(self.pseudo_logits.data)               # (M, C, H, W)
        return self._u

    def set_components(self, means: np.ndarray, logvars: np.ndarray) -> None:
        """The posterior's mu and logvar of encoder(u), (M, L) each [VAMP-2]; a new forward, so the
        components' gradient starts at zero."""
        self.components = _Components(means, logvars)
        self.component_grads = _Components(np.zeros_like(means), np.zeros_like(logvars))

    def _require_components(self) -> _Components:
        if self.components is None:
            raise RuntimeError("VampPrior: no components yet; the VAE sets them when it encodes "
                               "(VAE.encode or VAE.refresh_prior)")
        return self.components

    def pseudo_backward(self, du: np.ndarray) -> None:
        """Adds da = du * u * (1 - u) into pseudo_logits.grad   [VAMP-3]."""
        u = self._u
        self.pseudo_logits.grad += du * u * (1.0 - u)           # (M, C, H, W)

    # -- the mixture ----------------------------------------------------------------------------------
    @property
    def num_components(self) -> int:
        return self.pseudo_logits.shape[0]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return mixture_sample(n, rng, *self._require_components())  # (n, L)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log p(z), summed over the last axis (any leading axes)."""
        return mixture_log_prob(z, *self._require_components())

    def log_prob_backward(self, z: np.ndarray, dlogp: np.ndarray) -> np.ndarray:
        """dz of dlogp * log p(z); adds dmeans, dlogvars into component_grads (the VAE's backward
        takes them through the encoder to the pseudo-inputs)."""
        dz, dmeans, dlogvars = mixture_backward(z, dlogp, *self._require_components())
        grads = self.component_grads
        grads.means[...] += dmeans
        grads.logvars[...] += dlogvars
        return dz                                                # (..., L)

    def marginal_density(self, t: np.ndarray) -> np.ndarray:
        """Each coordinate's marginal density at the points t (G,), (G, L)."""
        return mixture_marginal_density(t, *self._require_components())

    def quantile(self, p: np.ndarray) -> np.ndarray:
        """Each coordinate's marginal quantile at p, (len(p), L) [MIX-6]."""
        return mixture_quantile(p, *self._require_components())

    def page_spec(self) -> dict:
        """What the browser explorer runs (explore/distributions.js): the components as they are now
        (VAE.refresh_prior makes them from the current weights first) and the pseudo-inputs u, to show."""
        means, logvars = self._require_components()
        return {"type": "VampPrior", "means": page_array(means), "logvars": page_array(logvars),
                "pseudo_inputs": page_array(sigmoid(self.pseudo_logits.data))}

    def _cast_hook(self, dtype) -> None:
        """Module.to: the components were the encoder's output in the old dtype; the next encode makes them again."""
        self.components = self.component_grads = None

    def extra_repr(self) -> str:
        m, *shape = self.pseudo_logits.shape
        return f"latent_dim={self.latent_dim}, components={m}, pseudo-inputs {tuple(shape)}"
