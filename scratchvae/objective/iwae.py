"""The importance-weighted objective (IWAE, Burda et al. 2016): K samples per image, one bound."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..nn.module import per_image_scale
from .terms import Losses

if TYPE_CHECKING:                     # models/ imports objective/: the annotation only
    from ..models.vae import VAE

#: at most this many decoder rows (images x samples) are alive at once: above it the decoder runs
#: in chunks, twice (module docstring of IWAE). 4096 rows of the reference conv decoder's layer
#: outputs are about 0.5 GB; a DataParallel worker's passes are cut to fit far below it.
MAX_ROWS = 4096


class _IWCache(NamedTuple):
    z: np.ndarray        # (N, K, L)
    eps: np.ndarray      # (N, K, L)
    std: np.ndarray      # (N, 1, L)
    target: np.ndarray   # (N, ...) the images the decoder must explain
    weights: np.ndarray  # (N, K) float64: the normalised importance weights w~
    chunked: bool        # True: the decoder ran in chunks without caches; backward reruns it


class IWAE:
    """The negative K-sample importance-weighted bound, averaged over the batch:

    forward:  mu, logvar = posterior.params(encoder(x))            (N, L) each
              z_k = mu + exp(logvar / 2) * eps_k,  k = 1..K        (N, K, L)
              pred_k = decoder(z_k)                                 (N*K, C, H, W): one row per sample
              log w_k = -recon_k - beta * (log q(z_k|x) - log p(z_k))                      [IWG-1]
    loss:     -(1/N) sum_n ( logsumexp_k log w_nk - log K )                                 [IWG-2]
              (K = 1: recon + beta * (log q - log p), the ELBO with the single-sample KL [KL-4])
    backward: w~_nk = softmax_k(log w_nk): the normalised importance weights               [IWG-3]
              d loss / d log w_nk = -w~_nk / N  =: -g_nk
              drecon_nk = g_nk            (the loss's backward with per-row dloss g)         [IWG-4]
              dz_nk = decoder.backward(dpred)_nk - beta * g_nk * d log p(z_nk) / dz         [IWG-5]
              dmu = sum_k dz_nk                                                             [IWG-6]
              dlogvar = sum_k ( dz_nk * eps_nk * std / 2 - beta * g_nk / 2 )               [IWG-6]
              (log q in eps is -eps^2/2 - logvar/2 - log(2 pi)/2: with eps fixed, -1/2 per logvar)
    Each sample's gradient is the ELBO's, weighted by w~ instead of 1/K: at K = 1, w~ = 1 and this
    is the single-sample ELBO's backward. Derivation: docs/derivations/iwae_gradient.md.

    The terms it names are plain means over the N*K samples: recon = mean recon_nk, kl = mean of
    log q - log p; the total is the bound, never above recon + beta * kl (log of a mean >= mean
    of logs), equal to it at K = 1.

    Memory: the decoder sees N*K rows. Above MAX_ROWS, forward runs it in chunks of whole images,
    each chunk's caches replacing the last's (it keeps the log-weights), and backward, which needs the weights of all K samples
    first, runs each chunk's forward again and its backward at once: two decoder forwards, but
    only a chunk's layer outputs alive at a time.
    backward(dloss) starts the chain at dloss: a float (parallel.py: n_k / n) or (N,) per image.
    """

    names = ("recon", "kl")

    def __init__(self, k: int = 5, max_rows: int = MAX_ROWS) -> None:
        if k < 1:
            raise ValueError(f"IWAE: the number of importance samples must be at least 1, got {k}")
        self.k, self.max_rows = k, max_rows
        self.cache: _IWCache | None = None

    @property
    def decoder_rows_per_image(self) -> int:
        """How many decoder rows one image costs (parallel.py cuts its passes by it)."""
        return self.k

    # -- forward -------------------------------------------------------------------------------------
    def noise(self, vae: VAE, n: int, eps: np.ndarray | None) -> np.ndarray:
        """eps (N, K, L): given ((N, L) allowed at K = 1, the ELBO's shape), or drawn from the model's generator."""
        shape = (n, self.k, vae.latent_dim)
        if eps is None:
            return vae.rng.standard_normal(shape, dtype=vae.dtype)
        eps = np.asarray(eps, dtype=vae.dtype)
        if self.k == 1 and eps.shape == (n, vae.latent_dim):
            eps = eps[:, None, :]
        if eps.shape != shape:
            raise ValueError(f"IWAE: eps must have shape {shape} (images, samples, latents), got {eps.shape}")
        return eps

    def forward(self, vae: VAE, x: np.ndarray, target: np.ndarray, eps: np.ndarray | None = None) -> Losses:
        loss, recon, kl = self._run(vae, x, target, eps)         # (N,), (N, K), (N, K)
        return Losses(float(loss.mean()), recon=float(recon.mean()), kl=float(kl.mean()))

    def _run(self, vae: VAE, x: np.ndarray, target: np.ndarray,
             eps: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The forward lines, caching for backward: each image's loss (N,), recon and kl (N, K)."""
        mu, logvar = vae.encode(x)                               # (N, L) each
        n = mu.shape[0]
        eps = self.noise(vae, n, eps)                            # (N, K, L)
        mu, logvar = mu[:, None, :], logvar[:, None, :]          # (N, 1, L) each
        std = np.exp(0.5 * logvar)                               # (N, 1, L)
        z = mu + std * eps                                       # (N, K, L)   [REP-1]
        chunked = len(self._chunks(n)) > 1
        recon = self._recon(vae, z, target)                      # (N, K) float64
        kl = (vae.posterior.log_prob(eps, logvar) - vae.prior.log_prob(z)).astype(np.float64)  # (N, K)   [KL-4]
        log_w = -recon - vae.beta * kl                           # (N, K)   [IWG-1]
        top = log_w.max(axis=1, keepdims=True)                   # (N, 1): log-sum-exp without overflow
        ratio = np.exp(log_w - top)                              # (N, K)
        total = ratio.sum(axis=1, keepdims=True)                 # (N, 1)
        loss = -(top[:, 0] + np.log(total[:, 0]) - math.log(self.k))  # (N,)   [IWG-2]
        self.cache = _IWCache(z, eps, std, target, ratio / total, chunked)  # weights (N, K)   [IWG-3]
        return loss, recon, kl

    def _recon(self, vae: VAE, z: np.ndarray, target: np.ndarray) -> np.ndarray:
        """recon_nk = -log p(x_n | z_nk), (N, K) float64, a chunk of whole images at a time (_chunks):
        with one chunk, its caches are what backward uses; with several, backward reruns each."""
        n, k, latent = z.shape
        rows = [vae.recon_loss.forward_rows(vae.decoder.forward(z[part].reshape(-1, latent)),  # (B*K, C, H, W)
                                            _repeat(target[part], k))
                for part in self._chunks(n)]                     # (B*K,) each
        return (rows[0] if len(rows) == 1 else np.concatenate(rows)).reshape(n, k)  # (N, K)

    def _chunks(self, n: int) -> list[slice]:
        """All N images at once when their N*K decoder rows fit in max_rows, else whole images by max_rows."""
        images = n if n * self.k <= self.max_rows else max(1, self.max_rows // self.k)
        return [slice(a, min(a + images, n)) for a in range(0, n, images)]

    # -- backward ------------------------------------------------------------------------------------
    def backward(self, vae: VAE, dloss: float | np.ndarray = 1.0) -> np.ndarray:
        """The gradient at the encoder's output, dh (N, 2L); the decoder's and the prior's
        parameter gradients are added into their .grad on the way."""
        if self.cache is None:
            raise RuntimeError("IWAE.backward called before forward")
        z, eps, std, target, weights, chunked = self.cache
        n, k, latent = z.shape
        scale = np.broadcast_to(per_image_scale(dloss, n, np.float64), (n, 1))  # (N, 1): dloss / N or dloss_n
        g = (weights * scale).astype(z.dtype)                    # (N, K): -d loss / d log w
        dz = self._decoder_backward(vae, z, target, g, chunked)  # (N, K, L)   [IWG-4]
        dz += vae.prior.log_prob_backward(z, -vae.beta * g)      # (N, K, L)   [IWG-5]
        dmu = dz.sum(axis=1)                                     # (N, L)      [IWG-6]
        dlogvar = (dz * eps * std * 0.5).sum(axis=1) - 0.5 * vae.beta * g.sum(axis=1, keepdims=True)  # (N, L)
        return vae.posterior.params_backward(dmu, dlogvar)       # (N, 2L)

    def _decoder_backward(self, vae: VAE, z: np.ndarray, target: np.ndarray, g: np.ndarray,
                          chunked: bool) -> np.ndarray:
        """dz of sum_nk g_nk recon_nk, (N, K, L): the loss's and the decoder's backward, per
        chunk after rerunning its forward when forward kept no caches."""
        n, k, latent = z.shape
        if not chunked:
            dpred = vae.recon_loss.backward(g.reshape(n * k))    # (N*K, C, H, W)
            return vae.decoder.backward(dpred).reshape(n, k, latent)  # (N, K, L)
        dz = np.empty_like(z)                                    # (N, K, L)
        for part in self._chunks(n):
            pred = vae.decoder.forward(z[part].reshape(-1, latent))  # (B*K, C, H, W)
            vae.recon_loss.forward_rows(pred, _repeat(target[part], k))
            dpred = vae.recon_loss.backward(g[part].reshape(-1))  # (B*K, C, H, W)
            dz[part] = vae.decoder.backward(dpred).reshape(-1, k, latent)  # (B, K, L)
        return dz

    def per_image(self, vae: VAE, x: np.ndarray, target: np.ndarray, rng: np.random.Generator | None = None,
                  eps: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The loss (the negative bound) of every image, (N,) float64, and its terms averaged over
        the K samples, as forward computes them (eps given, or drawn from rng, else from the
        model's generator as forward draws it)."""
        if eps is None and rng is not None:
            eps = rng.standard_normal((x.shape[0], self.k, vae.latent_dim))
        loss, recon, kl = self._run(vae, x, target, eps)         # (N,), (N, K), (N, K)
        return {"loss": loss, "recon": recon.mean(axis=1), "kl": kl.mean(axis=1)}

    def extra_repr(self) -> str:
        return f"k={self.k}"


def _repeat(target: np.ndarray, k: int) -> np.ndarray:
    """Each image k times in a row, (N*K, ...): the rows of the samples z_n1..z_nK."""
    return np.repeat(target, k, axis=0) if k > 1 else target
