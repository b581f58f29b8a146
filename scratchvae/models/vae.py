"""The VAE and the plain Autoencoder: an encoder, a decoder, and the objective between them.

Both take images (N, C, H, W) and let the encoder/decoder be any Module, so the
MLP and the convolutional models share this file. The VAE's objective and its backward
chain, one step a line, are in objective/elbo.py; its distributions in distributions/.
"""
from __future__ import annotations

import numpy as np

from ..distributions import make_kl, make_posterior, make_prior
from ..nn.activations import sigmoid
from ..nn.module import Module, Sequential, batch_coupling
from ..objective import Losses, make_loss, make_objective


class _AutoencoderBase(Module):
    def __init__(self, encoder: Module, decoder: Module, latent_dim: int, loss: str) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim = latent_dim
        self.loss_name = loss
        self.recon_loss = make_loss(loss)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Decoder output: logits for 'bce', image-space values otherwise."""
        return self.decoder.forward(z.astype(self.dtype, copy=False))

    def decode_mean(self, z: np.ndarray) -> np.ndarray:
        """The decoded image in pixel space [0, 1] (sigmoid of the logits for 'bce')."""
        out = self.decode(z)
        return sigmoid(out) if self.recon_loss.takes_logits else out

    def trace(self, x: np.ndarray, z: np.ndarray) -> list[tuple[str, Module, np.ndarray, np.ndarray]]:
        """(name, layer, input, output) for every layer of the encoder run on x and of the
        decoder run on z, each run once; name as in state_dict ("encoder.3").

        Each output is a copy taken as the layer returns it: an in-place ReLU after a Linear or
        conv layer overwrites that layer's output with its own, so the array the forward pass
        hands on is no longer the layer's output. The copies keep the memory layout a step
        really passes on (a conv layer's output is channels-last). An encoder or decoder that
        is not a Sequential is one layer.
        """
        rows = []
        for part, net, h in (("encoder", self.encoder, x), ("decoder", self.decoder, z)):
            layers = enumerate(net) if isinstance(net, Sequential) else [(None, net)]
            h_seen = h
            for i, layer in layers:
                out = layer.forward(h)
                out_seen = out.copy(order="K")
                rows.append((part if i is None else f"{part}.{i}", layer, h_seen, out_seen))
                h, h_seen = out, out_seen
        return rows

    def _encoder_backward(self, dout: np.ndarray, input_grad: bool) -> np.ndarray | None:
        if input_grad:
            return self.encoder.backward(dout)                   # (N, C, H, W)
        self.encoder.backward_params(dout)
        return None

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, loss={self.loss_name!r}"


class VAE(_AutoencoderBase):
    """Variational autoencoder: an encoder, a decoder and the parts of its objective, each an object.

    posterior  q(z|x): DiagonalGaussian, reading the encoder's output h (N, 2L) as mu and logvar
               (posterior='logvar') or mu and log sigma (posterior='logstd')  (distributions/gaussian.py)
    prior      p(z): StandardNormal, N(0, I) (distributions/normal.py; prior='normal'), a
               MixtureOfGaussians ('mog', mixture.py) or a VampPrior ('vamp', vamp.py), or a built prior
    kl         KL(q(z|x) || p(z)): the closed form for N(0, I), else log q - log p at the sample (distributions/kl.py)
    objective  the negative ELBO, recon + beta * kl, with its backward written out (objective/elbo.py;
               objective='elbo'), or the K-sample importance-weighted bound (objective/iwae.py;
               objective='iwae', iw_samples=K)

    loss(x) runs the objective's forward; backward() its backward down to the encoder's output
    dh, then the encoder's. beta = 1 is the VAE; beta > 1 is the beta-VAE of Higgins et al. (2017).
    Swapping a part (a learned prior, another posterior, another objective) is swapping the object.
    A VampPrior's components are the encoder's posterior on its pseudo-inputs u: encode runs the
    encoder on [x; u] and backward runs its backward on both, so the objectives never see u.
    """

    def __init__(self, encoder: Module, decoder: Module, latent_dim: int, loss: str = "bce",
                 beta: float = 1.0, rng: np.random.Generator | None = None, posterior: str = "logvar",
                 prior: str | Module = "normal", objective: str = "elbo", iw_samples: int = 1) -> None:
        super().__init__(encoder, decoder, latent_dim, loss)
        self.posterior = make_posterior(posterior)
        self.prior = prior if isinstance(prior, Module) else make_prior(prior, latent_dim)
        if self._reads_encoder and (why := batch_coupling(encoder)) is not None:
            raise ValueError(f"the {type(self.prior).__name__} runs the encoder on its pseudo-inputs in the "
                             f"images' batch, and this encoder has {why}, whose batch statistics would mix them")
        self.kl = make_kl(self.posterior, self.prior)
        self.objective = make_objective(objective, iw_samples)
        self.beta = beta
        self.rng = rng if rng is not None else np.random.default_rng()

    @property
    def loss_names(self) -> tuple[str, ...]:
        """What ``loss`` returns: the total and the objective's terms."""
        return ("total", *self.objective.names)

    @property
    def _reads_encoder(self) -> bool:
        """True for a prior made from the encoder's output (the VampPrior)."""
        return getattr(self.prior, "reads_encoder", False)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The posterior's mu and logvar of each image, (N, L) each. With a VampPrior the encoder
        runs once on [x; u], and the u rows' mu and logvar become the prior's components   [VAMP-2]."""
        if not self._reads_encoder:
            return self.posterior.params(self.encoder.forward(x), self.latent_dim)
        u = self.prior.pseudo_inputs().astype(x.dtype, copy=False)  # (M, C, H, W)
        mu, logvar = self.posterior.params(self.encoder.forward(np.concatenate([x, u])), self.latent_dim)
        n = x.shape[0]
        self.prior.set_components(mu[n:], logvar[n:])           # (M, L) each
        return mu[:n], logvar[:n]                                # (N, L) each

    def refresh_prior(self) -> None:
        """Make a VampPrior's components from the current weights (before sampling from it or
        reading its quantiles without encoding images); nothing for other priors."""
        if self._reads_encoder:
            u = self.prior.pseudo_inputs().astype(self.dtype, copy=False)  # (M, C, H, W)
            self.prior.set_components(*self.posterior.params(self.encoder.forward(u), self.latent_dim))

    def forward(self, x: np.ndarray, eps: np.ndarray | None = None) -> np.ndarray:
        mu, logvar = self.encode(x)
        z = self.posterior.forward(mu, logvar, eps, self.rng)    # (N, L)
        return self.decoder.forward(z)                           # (N, C, H, W)

    def loss(self, x: np.ndarray, target: np.ndarray | None = None,
             eps: np.ndarray | None = None) -> Losses:
        """Forward pass and the objective (the negative ELBO); call ``backward()`` next for gradients."""
        return self.objective.forward(self, x, x if target is None else target, eps)

    def backward(self, input_grad: bool = True, dloss: float | np.ndarray = 1.0) -> np.ndarray | None:
        """Gradients of dloss * loss (or, for an (N,) dloss, of sum_n dloss_n * loss_n), added into
        every Parameter.grad; returns dx, or None when input_grad=False (training needs no
        gradient for the data, and skipping it saves a matrix product)."""
        dh = self.objective.backward(self, dloss)                # (N, 2L)
        if not self._reads_encoder:
            return self._encoder_backward(dh, input_grad)        # (N, C, H, W) or None
        # the prior's components came from the u rows of the same encoder pass: their gradient
        # joins the images' and one encoder backward gives dx and du   [VAMP-3]
        dh_u = self.posterior.params_backward(*self.prior.component_grads)  # (M, 2L)
        dxu = self.encoder.backward(np.concatenate([dh, dh_u]))  # (N + M, C, H, W)
        n = dh.shape[0]
        self.prior.pseudo_backward(dxu[n:])
        return dxu[:n] if input_grad else None

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Decode the posterior mean (no sampling): the usual reconstruction figure."""
        mu, _ = self.encode(x)
        return self.decode_mean(mu)

    def sample(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Decode n draws z ~ p(z) from the prior."""
        self.refresh_prior()
        return self.decode_mean(self.prior.sample(n, rng or self.rng))


class Autoencoder(_AutoencoderBase):
    """Plain deterministic autoencoder, for comparison with the VAE.

    forward:  z = encoder(x)  (N, L);   pred = decoder(z)
    loss:     recon(pred, x)             (no KL, no sampling)
    backward: dz = decoder.backward(dpred);  dx = encoder.backward(dz)
              (backward(dloss=w): the gradients of w * loss, as the VAE's)
    """

    #: what ``loss`` returns: kl is 0, kept so an autoencoder's log lines up with a VAE's
    loss_names = ("total", "recon", "kl")

    def encode(self, x: np.ndarray) -> np.ndarray:
        z = self.encoder.forward(x)                              # (N, L)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Autoencoder: encoder must output (N, {self.latent_dim}), got {z.shape}")
        return z

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.decoder.forward(self.encode(x))              # (N, C, H, W)

    def loss(self, x: np.ndarray, target: np.ndarray | None = None, eps: None = None) -> Losses:
        pred = self.forward(x)                                   # (N, C, H, W)
        recon = self.recon_loss.forward(pred, x if target is None else target)
        return Losses(recon, recon=recon, kl=0.0)

    def backward(self, input_grad: bool = True, dloss: float = 1.0) -> np.ndarray | None:
        dpred = self.recon_loss.backward(dloss)                  # (N, C, H, W)
        dz = self.decoder.backward(dpred)                        # (N, L)
        return self._encoder_backward(dz, input_grad)            # (N, C, H, W) or None

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode_mean(self.encode(x))
