"""Evaluating a trained model: the ELBO, the importance-sampled log-likelihood, active units.

All numbers are nats per image, with the sign of a loss (lower is better):

    elbo   = recon + kl  >=  nll          the negative ELBO, one z per image (beta = 1: the bound
                                          itself, whatever beta the model was trained with)
    recon  = -E_q[log p(x|z)]             kl = KL(q(z|x) || p(z)): the model's kl (closed form for N(0, I);
                                          for a learned prior log q(z|x) - log p(z) at the one z, [KL-4])
    nll    = -log p(x)  ~=  -log (1/K) sum_k w_k,   w_k = p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x)   [IWAE-1]

The nll estimate is the IWAE bound of Burda et al. (2016): at K = 1 its expectation is the
negative ELBO [IWAE-5], and it decreases towards -log p(x) as K grows [IWAE-4]
(derivation: docs/derivations/iwae.md).

What log p(x|z) is depends on the reconstruction loss (``log_likelihood``):
    bce, bce-prob  the Bernoulli log-probability, -per_image: a true log-likelihood for binary x
                   only (a warning says so when x is not binary: the number is then not -log p(x))
    mse            sum (x - pred)^2 is the negative log-density of N(pred, 1/2 I) less its constant,
                   so log p(x|z) = -per_image - D/2 log(pi): a density on R^D, comparable only
                   with other Gaussian models (recon and elbo here include that constant too, so
                   they sit D/2 log(pi) = 448.7 nats above the training log's MSE at D = 784)
    rmse           not the log-density of a per-pixel noise model: importance_sampled_nll refuses it
                   (ValueError); evaluate_model reports nll None, and recon is the RMSE itself
    any other loss with a log_likelihood(pred, x) method: that method
An Autoencoder has no q(z|x): evaluate_model reports its recon only, and None for elbo, kl,
kl_per_dim, nll and active_units.
"""
from __future__ import annotations

import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from .models import VAE, Autoencoder, Losses
from .objective import BCE, MSE, BCEWithLogits, GaussianKL, ReconstructionLoss
from .parallel import DataParallel, inference_workers



# -- log p(x|z), from the reconstruction loss ---------------------------------------------------------
def likelihood_name(loss: ReconstructionLoss) -> str | None:
    """What log p(x|z) the loss stands for, or None when it is not a negative log-likelihood."""
    if hasattr(loss, "log_likelihood"):
        return type(loss).__name__
    if isinstance(loss, (BCEWithLogits, BCE)):
        return "bernoulli"
    if isinstance(loss, MSE):
        return "gaussian, variance 1/2"
    return None


def _check_likelihood(loss: ReconstructionLoss) -> None:
    if likelihood_name(loss) is None:
        raise ValueError(f"the {type(loss).__name__} loss is not a negative log-likelihood, so log p(x) "
                         f"is not defined for it (use bce, bce-prob or mse)")


def log_likelihood(loss: ReconstructionLoss, pred: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log p(x|z) of each image, (N,) float64, from the decoder output pred for z (module docstring).

    Each pixel's term is computed in pred's dtype (the model's: the logits carry its rounding
    already) and summed over the image in float64 (the loss's per_image), so the log-weights are
    float64 whatever the model's dtype; a float32 model's per-pixel terms in float32 run on
    NumPy's SIMD exp (kernels/bce.py for BCE from logits).
    A loss's own log_likelihood method gets float64 (N, D) arrays."""
    _check_likelihood(loss)
    n = pred.shape[0]
    pred, x = pred.reshape(n, -1), x.reshape(n, -1).astype(pred.dtype, copy=False)  # (N, D) each
    if hasattr(loss, "log_likelihood"):
        return loss.log_likelihood(_flat64(pred), _flat64(x))    # (N,)
    log_p = -loss.per_image(pred, x)                             # (N,) float64
    if isinstance(loss, MSE):
        # the MSE drops the Gaussian's normaliser D/2 log(2 pi sigma^2), sigma^2 = 1/2
        log_p -= 0.5 * x.shape[1] * math.log(math.pi)
    return log_p


def _recon_per_image(loss: ReconstructionLoss, pred: np.ndarray, x: np.ndarray) -> np.ndarray:
    """-log p(x|z) of each image, (N,); the loss itself when it is no log-likelihood (rmse)."""
    if likelihood_name(loss) is not None:
        return -log_likelihood(loss, pred, x)                    # (N,)
    return loss.per_image(_flat64(pred), _flat64(x))             # (N,)


def _flat64(a: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, D) in float64."""
    return a.reshape(a.shape[0], -1).astype(np.float64)         # (N, D)


def _warn_if_not_binary(loss: ReconstructionLoss, x: np.ndarray) -> None:
    if isinstance(loss, (BCEWithLogits, BCE)) and not np.all((x == 0) | (x == 1)):
        warnings.warn("Bernoulli likelihood on non-binary images: the nll is not -log p(x) of any "
                      "distribution over these images (binarize the test set for a true likelihood)",
                      stacklevel=3)


# -- helpers -----------------------------------------------------------------------------------------------
@contextmanager
def _eval_mode(model: VAE | Autoencoder) -> Iterator[None]:
    """Evaluate in eval mode (BatchNorm's running statistics), then restore the mode the model had."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _require_vae(model: VAE | Autoencoder, what: str) -> None:
    if not isinstance(model, VAE):
        raise TypeError(f"{what} needs a VAE: a {type(model).__name__} has no encoder distribution q(z|x)")


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


def posterior(model: VAE, x: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's mu and logvar of every image, float64 (N, L) each, encoded batch_size at a time."""
    _require_vae(model, "posterior")
    _check_batch_size(batch_size)
    mus, logvars = [], []
    with _eval_mode(model):
        for start in range(0, x.shape[0], batch_size):
            mu, logvar = model.encode(x[start:start + batch_size].astype(model.dtype, copy=False))
            mus.append(mu.astype(np.float64))                    # (B, L)
            logvars.append(logvar.astype(np.float64))            # (B, L)
    return np.concatenate(mus), np.concatenate(logvars)          # (N, L), (N, L)


# -- the three measures ------------------------------------------------------------------------------------
def elbo_terms(model: VAE, x: np.ndarray, batch_size: int = 1000,
               rng: np.random.Generator | None = None) -> Losses:
    """The negative ELBO averaged over the images, one z ~ q(z|x) per image:
    total = recon + kl,  recon = -log p(x|z),  kl = the model's kl: KL(N(mu, exp(logvar)) || N(0, I)) in
    closed form, or for a learned prior the one-sample log q(z|x) - log p(z) at the same z [KL-4].

    model.loss in eval mode with beta = 1, except that recon is -log p(x|z) (log_likelihood):
    for mse that adds D/2 log(pi); for rmse, no likelihood, recon is the loss. eps is drawn from
    rng in image order, so batch_size does not change the draws."""
    recon, kl = elbo_per_image(model, x, batch_size, rng)        # (N,) each
    return Losses(float(recon.sum() + kl.sum()) / x.shape[0], recon=float(recon.mean()), kl=float(kl.mean()))


def elbo_per_image(model: VAE, x: np.ndarray, batch_size: int = 1000,
                   rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(recon, kl) of each image, (N,) float64 each: the terms elbo_terms averages."""
    _require_vae(model, "elbo_terms")
    _check_batch_size(batch_size)
    rng = rng if rng is not None else np.random.default_rng()
    recons, kls = [], []
    with _eval_mode(model):
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size]
            mu, logvar = (a.astype(np.float64) for a in model.encode(xb.astype(model.dtype, copy=False)))
            eps = rng.standard_normal(mu.shape)                  # (B, L)
            z = model.posterior.sample(mu, logvar, eps)          # (B, L)
            recons.append(_recon_per_image(model.recon_loss, model.decode(z), xb))  # (B,)
            kls.append(model.kl.per_image(mu, logvar, z, eps))   # (B,)
    return np.concatenate(recons), np.concatenate(kls)           # (N,), (N,)


def importance_sampled_nll(model: VAE, x: np.ndarray, k: int, batch_size: int = 1000,
                           rng: np.random.Generator | None = None, progress: bool = True,
                           workers: int | None = None) -> np.ndarray:
    """-log p(x) of each image, (N,) float64, estimated with K importance samples (Burda et al.):

        -log p(x) ~= -log (1/K) sum_k exp( log p(x|z_k) + log p(z_k) - log q(z_k|x) ),  z_k ~ q(z|x)

    Its mean over draws is >= -log p(x), equals the negative ELBO at K = 1 and falls towards
    -log p(x) as K grows. ValueError for K < 1 or a loss that is no likelihood (rmse).

    Memory does not grow with K: the decoder sees at most batch_size rows at once (a chunk of
    images x a chunk of their samples), and each image's log-sum-exp is kept running over its
    chunks of samples. A chunk holds either whole images (all K samples of each) or consecutive
    samples of one image, so the draws are those of rng.standard_normal((N, K, L)), in that
    order, whatever batch_size is: the chunk sizes never change the draws.

    The chunks' log-weights are computed on ``workers`` threads (None: one per core, or 1 for a
    model that cannot be split; parallel.inference_workers), each with its own replica of the
    model; the noise is drawn here, in chunk order, so the draws never depend on the workers.
    """
    if k < 1:
        raise ValueError(f"importance_sampled_nll: k (samples per image) must be at least 1, got {k}")
    _require_vae(model, "importance_sampled_nll")
    _check_batch_size(batch_size)
    _check_likelihood(model.recon_loss)
    _warn_if_not_binary(model.recon_loss, x)
    rng = rng if rng is not None else np.random.default_rng()
    n, latent = x.shape[0], model.latent_dim
    images_per_chunk = max(1, batch_size // k)                   # many images when K is small ...
    samples_per_chunk = min(k, batch_size)                       # ... one image, K split, when K is large
    mu_all, logvar_all = posterior(model, x, batch_size)         # (N, L) each: one encoder pass per batch
    chunks = [(start, k0) for start in range(0, n, images_per_chunk) for k0 in range(0, k, samples_per_chunk)]

    def jobs() -> Iterator[tuple[int, int, np.ndarray]]:
        for start, k0 in chunks:                                 # drawn here, in order   [IWAE-1]
            b, kc = min(images_per_chunk, n - start), min(samples_per_chunk, k - k0)
            yield start, k0, rng.standard_normal((b, kc, latent))  # (B, kc, L)

    def log_weights(replica: VAE, job: tuple[int, int, np.ndarray]) -> np.ndarray:
        start, _, eps = job
        b = eps.shape[0]
        return chunk_log_weights(replica, x[start:start + b], mu_all[start:start + b, None],
                            logvar_all[start:start + b, None], eps)  # (B, kc)

    nll = np.empty(n)                                            # (N,)
    workers = inference_workers(model) if workers is None else workers
    with _eval_mode(model), tqdm(total=n, desc=f"nll, k={k}", unit="img", leave=False,
                                 disable=not progress) as bar:
        parallel = DataParallel(model, workers)
        for (start, k0, eps), log_w in parallel.imap(log_weights, jobs()):
            b = eps.shape[0]
            if k0 == 0:
                running_max = np.full(b, -np.inf)                # (B,)
                running_sum = np.zeros(b)                        # (B,): sum_k exp(log_w_k - running_max)
            # stable log-sum-exp: rescale the old sum to the new max instead of exponentiating raw   [IWAE-3]
            new_max = np.maximum(running_max, log_w.max(axis=1))  # (B,)
            running_sum = (running_sum * np.exp(running_max - new_max)
                           + np.exp(log_w - new_max[:, None]).sum(axis=1))  # (B,)
            running_max = new_max
            if k0 + eps.shape[1] == k:                           # the image chunk's last samples
                nll[start:start + b] = -(running_max + np.log(running_sum) - math.log(k))  # (B,)
                bar.update(b)
    return nll


def chunk_log_weights(model: VAE, xc: np.ndarray, mu: np.ndarray, logvar: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """log w = log p(x|z) + log p(z) - log q(z|x) of each sample z = mu + exp(logvar / 2) eps,
    (B, kc) float64; xc (B, ...), mu and logvar (B, 1, L), eps (B, kc, L)."""
    kc, latent = eps.shape[1], eps.shape[2]
    z = model.posterior.sample(mu, logvar, eps)                  # (B, kc, L)
    pred = model.decode(z.reshape(-1, latent))                   # (B*kc, ...)
    log_px_z = log_likelihood(model.recon_loss, pred, np.repeat(xc, kc, axis=0))  # (B*kc,)
    return log_px_z.reshape(-1, kc) + model.prior.log_prob(z) - model.posterior.log_prob(eps, logvar)  # (B, kc)


def kl_per_dimension(model: VAE, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """KL(q(z_d|x) || N(0, 1)) of each latent dimension averaged over the images, (L,) nats:
    0.5 * (mu_d^2 + exp(logvar_d) - 1 - logvar_d) [KL-1]. Summed over d it is the ELBO's kl.
    Only for the N(0, I) prior, whose KL splits over the dimensions (ValueError otherwise)."""
    if not isinstance(model.kl, GaussianKL):
        raise ValueError(f"the KL per dimension needs the closed-form KL from N(0, I), not a "
                         f"{type(model.kl).__name__}")
    mu, logvar = posterior(model, x, batch_size)
    return np.mean(GaussianKL.per_dimension(mu, logvar), axis=0)  # (L,)


def latent_activity(model: VAE, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Var_x( E_q[z_d | x] ) = the variance over the images of the posterior mean mu_d, (L,).
    A dimension the encoder ignores has the same mu_d for every image: activity 0."""
    mu, _ = posterior(model, x, batch_size)
    return mu.var(axis=0)                                        # (L,)


def active_units(model: VAE, x: np.ndarray, threshold: float = 0.01, batch_size: int = 1000) -> int:
    """A_u = #{d : Var_x(E_q[z_d | x]) > threshold}, threshold 0.01 as in Burda et al. (2016)."""
    return int(np.sum(latent_activity(model, x, batch_size) > threshold))


# -- everything at once, for the CLI ---------------------------------------------------------------------
@dataclass
class Evaluation:
    """One evaluation, nats per image (module docstring); None where the model has no such number."""

    n: int                            # images evaluated
    k: int                            # importance samples per image
    likelihood: str | None            # what log p(x|z) is (likelihood_name)
    recon: float
    elbo: float | None                # the NEGATIVE ELBO, recon + kl: a loss, >= nll
    kl: float | None
    nll: float | None                 # importance-sampled -log p(x), mean over the images
    nll_stderr: float | None          # its standard error over the images, std / sqrt(n)
    active_units: int | None
    kl_per_dim: list[float] | None    # None for a learned prior (no closed form, no split over d)
    seconds: float

    def as_json(self) -> dict:
        return asdict(self)


def evaluate_model(model: VAE | Autoencoder, x: np.ndarray, k: int = 5000, n: int | None = None,
                   batch_size: int = 1000, rng: np.random.Generator | None = None,
                   progress: bool = True, workers: int | None = None) -> Evaluation:
    """elbo_terms, importance_sampled_nll (K samples, on ``workers`` threads), active_units and
    kl_per_dimension of the first n images of x (all when n is None). nll is None when the loss is no likelihood (rmse);
    an Autoencoder gets its recon loss only."""
    if k < 1:
        raise ValueError(f"evaluate_model: k (samples per image) must be at least 1, got {k}")
    start = time.perf_counter()
    x = x if n is None else x[:n]
    name = likelihood_name(model.recon_loss)
    if not isinstance(model, VAE):
        return Evaluation(x.shape[0], k, name, _autoencoder_recon(model, x, batch_size), None, None, None,
                          None, None, None, time.perf_counter() - start)
    rng = rng if rng is not None else np.random.default_rng()
    terms = elbo_terms(model, x, batch_size, rng)
    nll = importance_sampled_nll(model, x, k, batch_size, rng, progress, workers) if name else None  # (N,)
    return Evaluation(
        n=x.shape[0], k=k, likelihood=name, recon=terms.recon, elbo=terms.total, kl=terms.kl,
        nll=None if nll is None else float(nll.mean()),
        nll_stderr=None if nll is None else float(nll.std() / math.sqrt(len(nll))),
        active_units=active_units(model, x, batch_size=batch_size),
        kl_per_dim=_kl_per_dim(model, x, batch_size),
        seconds=time.perf_counter() - start)


def _kl_per_dim(model: VAE, x: np.ndarray, batch_size: int) -> list[float] | None:
    """kl_per_dimension as a list, or None for a learned prior: its KL neither has a closed form
    nor splits over the dimensions (a mixture couples them)."""
    if not isinstance(model.kl, GaussianKL):
        return None
    return [float(v) for v in kl_per_dimension(model, x, batch_size)]


def _autoencoder_recon(model: Autoencoder, x: np.ndarray, batch_size: int) -> float:
    """-log p(x|z) at z = encoder(x), averaged over the images (on the same scale as a VAE's recon)."""
    _check_batch_size(batch_size)
    total = 0.0
    with _eval_mode(model):
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size]
            pred = model.forward(xb.astype(model.dtype, copy=False))
            total += _recon_per_image(model.recon_loss, pred, xb).sum()
    return float(total) / x.shape[0]
