"""The zoo's deliberate mistakes: each a subclass of the correct part (posterior, KL, loss) with ONE line wrong.

Every class here is wrong on purpose and is used only by the bug zoo (scratchvae/zoo/bugs.py,
``scratchvae zoo``). Each backward but one is the exact derivative of its own (wrong) forward, so
each passes a finite-difference gradient check: the check compares backward with the forward it is
given, and cannot know that the forward computes the wrong thing. The one, UnnormalisedWeights,
computes the right bound and the wrong gradient: the mistake a gradient check is for. docs/zoo.md
shows, bug by bug, which other tests do catch it.
"""
from __future__ import annotations

import math

import numpy as np

from ..evaluation import chunk_log_weights, posterior
from ..models import VAE
from ..distributions import DiagonalGaussian, GaussianKL, VampPrior
from ..distributions.gaussian import _SampleCache
from ..nn.activations import sigmoid
from ..objective import BCE, IWAE, BCEWithLogits


class StdIsExpLogvar(DiagonalGaussian):
    """WRONG: z = mu + exp(logvar) * eps, the log-variance used as if it were the log-std.

    A posterior (DiagonalGaussian) whose sampling layer is wrong.
    right:    std = exp(logvar / 2)                          [REP-1]
    here:     std = exp(logvar)          (the KL still reads logvar as log sigma^2 [KL-1])
    backward: dmu = dz;  dlogvar = dz * eps * std   (d exp(logvar) / d logvar = exp(logvar):
              consistent with this forward, so the gradient check passes)
    """

    def forward(self, mu: np.ndarray, logvar: np.ndarray, eps: np.ndarray | None = None,
                rng: np.random.Generator | None = None) -> np.ndarray:
        super().forward(mu, logvar, eps, rng)                    # the checks and the eps it draws
        eps = self.cache.eps
        std = np.exp(logvar)                                     # (N, L)   <- the bug: exp(logvar / 2)
        self.cache = _SampleCache(eps, std)
        return mu + std * eps                                    # (N, L)

    def backward(self, dz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eps, std = self.cache
        return dz, dz * eps * std                                # (N, L) each


class LogstdFedAsLogvar(DiagonalGaussian):
    """WRONG: in a posterior='logstd' model, the sampler is handed a = log sigma where the
    library's DiagonalGaussian.forward expects logvar = 2 a [LOGSTD-1]; the KL gets 2 a, as it should.

    VAE.encode returns logvar = 2 a; this sampler stands for the line ``z = reparam(mu, a)``
    written where ``z = reparam(mu, 2 * a)`` was meant, so it samples with
    std = exp(a / 2) = exp(logvar / 4) while the KL describes std = exp(a).
    backward: the chain rule through a = logvar / 2 halves dlogvar [REP-3] (consistent)
    """

    def forward(self, mu: np.ndarray, logvar: np.ndarray, eps: np.ndarray | None = None,
                rng: np.random.Generator | None = None) -> np.ndarray:
        return super().forward(mu, logvar / 2, eps, rng)         # (N, L)   <- the bug: logvar, i.e. 2 a

    def backward(self, dz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dmu, da = super().backward(dz)
        return dmu, da / 2                                       # (N, L) each


class PixelMeanBCE(BCEWithLogits):
    """WRONG: the reconstruction averaged over the D pixels instead of summed [LOSS-1].

    right:  l_n = sum_i bce(a_i, t_i)            -log p(x|z) in nats per image [BCE-1]
    here:   l_n = mean_i bce(a_i, t_i) = sum / D (e.g. torch's F.binary_cross_entropy default
            reduction='mean'); the KL stays a sum over latents, so it now weighs D times more
    backward: da = (sigmoid(a) - t) / (N D)      [BCE-2] over D: consistent
    (forward, per_image and the gradient each divide by D: training runs forward's compiled
    sum, the evaluation per_image)
    """

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        return super().forward(pred, target) / self.cache.pred.shape[1]   # <- the bug: / D

    def per_image(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        return super().per_image(pred, target) / pred.shape[1]   # (N,)   <- the bug: / D

    def _dpred(self, pred: np.ndarray, target: np.ndarray, scale: float) -> np.ndarray:
        return super()._dpred(pred, target, scale / pred.shape[1])  # (N, D)


class KLMeanOverDims(GaussianKL):
    """WRONG: the KL averaged over the L latent dimensions instead of summed [KL-1].

    right:  kl_n = 0.5 * sum_j (mu_j**2 + exp(logvar_j) - 1 - logvar_j)
    here:   kl_n = that / L (torch.mean over both axes instead of sum over dim 1, then mean)
    backward: [KL-2] and [KL-3] over L: consistent
    """

    @staticmethod
    def per_image(mu: np.ndarray, logvar: np.ndarray, z: np.ndarray | None = None,
                  eps: np.ndarray | None = None) -> np.ndarray:
        return GaussianKL.per_image(mu, logvar) / mu.shape[1]   # (N,)   <- the bug: / L

    def backward(self, dloss: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        dmu, dlogvar = super().backward(dloss)
        latent = self.cache.mu.shape[1]
        return dmu / latent, dlogvar / latent                    # (N, L) each


class UnclampedBCE(BCE):
    """WRONG: BCE on probabilities with neither the clamp of log at -100 [BCE-3] nor the floor
    under p (1 - p) [BCE-4].

    here:   l = -t log p - (1 - t) log(1 - p);   dp = (p - t) / (p (1 - p)) / N
    In float32 the decoder's sigmoid returns exactly 0 for logits below about -17 and exactly 1
    above about +17 (0.5 + 0.5 tanh(a / 2) rounds to it); then 0 * log 0 = 0 * -inf = NaN in
    the loss and 0 / 0 in dp. Where 0 < p < 1 it is the right function with the right
    derivative, so a gradient check on moderate p passes.
    """

    def per_pixel(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):     # let the NaN through, as the bug does
            return -(target * np.log(pred) + (1 - target) * np.log1p(-pred))  # (N, D)

    def _dpred(self, pred: np.ndarray, target: np.ndarray, scale: float) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (pred - target) / (pred * (1 - pred)) * scale  # (N, D)


class UnnormalisedWeights(IWAE):
    """WRONG: the backward's importance weights shifted by their max, for stability, and never
    divided by their sum [IWG-3].

    right:  w~_k = exp(log w_k - m) / sum_j exp(log w_j - m),  m = max_j log w_j   (sum_k w~_k = 1)
    here:   w_k  = exp(log w_k - m): the best sample weighs 1 and the others their ratio to it, so
            each image's gradient is scaled by sum_k w_k, between 1 and K: most for the images whose
            K samples explain them equally well
    forward: the bound [IWG-2], right; backward: not its derivative (the one zoo piece a gradient
    check can catch)
    """

    def _run(self, vae: VAE, x: np.ndarray, target: np.ndarray,
             eps: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        loss, recon, kl = super()._run(vae, x, target, eps)
        log_w = -recon - vae.beta * kl                           # (N, K)   [IWG-1]
        ratio = np.exp(log_w - log_w.max(axis=1, keepdims=True))  # (N, K)   <- the bug: not / ratio.sum(axis=1)
        self.cache = self.cache._replace(weights=ratio)
        return loss, recon, kl


class MeanOfLogWeights(IWAE):
    """WRONG: the K samples averaged in log space, the K-sample ELBO instead of the bound [IWG-2].

    right:  loss_n = -(logsumexp_k log w_nk - log K);   g_nk = w~_nk / N   [IWG-3]
    here:   loss_n = -(1/K) sum_k log w_nk;             g_nk = 1 / (N K): uniform weights
    (the estimator's iwae-mean-log mistake, made in training: a lower-variance ELBO, never tighter)
    backward: the derivative of this forward, consistent: a gradient check passes. Right at K = 1.
    """

    def _run(self, vae: VAE, x: np.ndarray, target: np.ndarray,
             eps: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, recon, kl = super()._run(vae, x, target, eps)
        self.cache = self.cache._replace(weights=np.full_like(self.cache.weights, 1 / self.k))  # (N, K)
        return (recon + vae.beta * kl).mean(axis=1), recon, kl  # (N,)   <- the bug: mean of the log-weights


class UnboundedVampPrior(VampPrior):
    """WRONG: the VampPrior's pseudo-inputs are the raw Parameter, u = a, with nothing keeping them
    images [VAMP-1] (Tomczak and Welling clip them with hardtanh; the library squashes them with a sigmoid).

    right:  u = sigmoid(a), inside [0, 1] whatever step Adam takes;   da = du * u * (1 - u)   [VAMP-3]
    here:   u = a: each step moves a pseudo-pixel wherever the gradient points, below 0 or above 1,
            into inputs the encoder never sees in the data;   da = du
    Starts from the library's initial pseudo-inputs (a = sigmoid(a0), from_prior), so the two models
    begin with the same u and differ only in where training may take it. The density and its
    backward are the library's mixture on encoder(u): consistent, a gradient check passes.
    """

    @classmethod
    def from_prior(cls, prior: VampPrior) -> UnboundedVampPrior:
        """The bug in place of ``prior``: its latent size, M and image shape, and u = its current pseudo-inputs."""
        m, *shape = prior.pseudo_logits.shape
        bug = cls(prior.latent_dim, m, tuple(shape))
        bug.pseudo_logits.data[...] = sigmoid(prior.pseudo_logits.data)   # (M, C, H, W): the same u
        return bug

    def pseudo_inputs(self) -> np.ndarray:
        self._u = self.pseudo_logits.data                        # (M, C, H, W)   <- the bug: sigmoid(a)
        return self._u

    def pseudo_backward(self, du: np.ndarray) -> None:
        self.pseudo_logits.grad += du                            # (M, C, H, W)   <- the bug: du * u * (1 - u)


def log_weights(model: VAE, x: np.ndarray, k: int, rng: np.random.Generator, batch_size: int = 1000) -> np.ndarray:
    """The importance log-weights log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), (N, K) float64 [IWAE-1].

    Drawn as evaluation.importance_sampled_nll draws them when K <= batch_size (a chunk of whole
    images, eps of shape (B, K, L) each), so the same rng gives the same z_k: the two reductions
    below then differ only in the reduction."""
    if not 1 <= k <= batch_size:
        raise ValueError(f"log_weights: k must be between 1 and batch_size ({batch_size}), got {k}")
    mu, logvar = posterior(model, x)                             # (N, L) each
    out, step = np.empty((x.shape[0], k)), max(1, batch_size // k)
    for start in range(0, x.shape[0], step):
        m, lv = mu[start:start + step, None], logvar[start:start + step, None]  # (B, 1, L)
        eps = rng.standard_normal((m.shape[0], k, model.latent_dim))  # (B, K, L)
        out[start:start + m.shape[0]] = chunk_log_weights(model, x[start:start + step], m, lv, eps)  # (B, K)
    return out


def nll_log_of_mean(log_w: np.ndarray) -> np.ndarray:
    """Right [IWAE-1]: -log (1/K) sum_k w_k, with the max taken out [IWAE-3]; (N,)."""
    m = log_w.max(axis=1)                                        # (N,)
    return -(m + np.log(np.exp(log_w - m[:, None]).sum(axis=1)) - math.log(log_w.shape[1]))


def nll_mean_of_logs(log_w: np.ndarray) -> np.ndarray:
    """WRONG: -(1/K) sum_k log w_k, the mean of the logs, (N,). Its expectation is the negative
    ELBO at every K ([IWAE-5] holds for each k alone), so it never tightens as K grows [IWAE-4]:
    it is a lower-variance ELBO, not a likelihood."""
    return -log_w.mean(axis=1)                                   # (N,)   <- the bug: log of the mean
