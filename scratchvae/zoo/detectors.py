"""The detectors: each test the library has, run on a buggy model, with its numbers and its verdict.

A Verdict says what the detector measured and whether that caught the bug (None: the detector
could not run, e.g. after training stopped on a NaN). Every verdict is computed from the
numbers it prints; docs/zoo.md pastes what they came out as.

The cheap ones run on a tiny float64 model (bugs.tiny_model):
    gradient check   scratchvae.gradcheck.check_model, eps fixed: caught when any array fails
    std of z         the spread of z - mu over 200,000 draws against exp(logvar / 2) [REP-1]
    KL vs MC         the code's closed-form KL against E_q[log q(z) - log p(z)] over the
                     draws of the sampler the code really runs [KL-1]
    recon            the code's reconstruction loss against the Bernoulli -log p(x|z) [BCE-1]
    IWAE weights     the weights IWAE's backward hands the loss, against softmax(log w) [IWG-3]
    vs the bound     model.backward() against finite differences of the true K-sample bound [IWG-2]
                     (these two: n/a for a model that does not train on the importance-weighted bound)
The others compare two MLP VAEs trained the same way (runner.py), the buggy and the correct one,
and measure the trained buggy one:
    pseudo-inputs    the VampPrior's pseudo-inputs, the images it encodes, against the image range [VAMP-1]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..gradcheck import check_model
from ..distributions import GaussianKL, VampPrior
from ..models import VAE
from ..objective import IWAE
from ..tour_iwae import log_weights
from .bugs import Bug, tiny_model

#: draws for the two Monte Carlo meaning tests: the sample std then has a relative standard
#: error of 1 / sqrt(2 n) = 0.16%, so a 1% tolerance is 6 standard errors (no false alarm)
DRAWS = 200_000
STD_RTOL = 0.01
#: |closed form - Monte Carlo| must stay within this many standard errors of the MC mean
MC_SIGMAS = 5.0
#: the loss and the Bernoulli -log p(x|z) in float64: two formulas of the same ~10-nat sum
#: agree to ~1e-15; a factor 1/D (or any other) is far outside 1e-8
RECON_RTOL = 1e-8
#: a difference between two evaluations counts when it exceeds SIGMAS standard errors of the
#: paired per-image difference AND MIN_GAP nats (the gap a published comparison would care about)
SIGMAS = 4.0
MIN_GAP = 1.0
#: the weights IWAE's backward uses against softmax(log w): two float64 formulas of one softmax agree
#: to ~1e-16; weights never divided by their sum, or 1/K each, are off by more than 1e-2 (measured: docs/zoo.md)
WEIGHTS_ATOL = 1e-8

#: the tiny model's encoder output h = (mu, second half): set by its last Linear's bias, with its
#: weight zeroed, so every image gets these; second halves far from 0, where exp(s) and
#: exp(s / 2) differ by a factor 2 or more
FIXED_MU = (0.5, -1.0, 1.0)
FIXED_SECOND = (math.log(4.0), math.log(0.25), 1.5)


@dataclass
class Verdict:
    detector: str
    measured: str
    caught: bool | None                     # None: could not run
    numbers: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"detector": self.detector, "measured": self.measured, "caught": self.caught, **self.numbers}


def _fixed_encoder_model(bug: Bug, seed: int) -> VAE:
    """tiny_model whose encoder outputs FIXED_MU, FIXED_SECOND for every image."""
    model = tiny_model(bug, seed)
    last = model.encoder[-1]
    last.weight.data[...] = 0.0
    last.bias.data[...] = FIXED_MU + FIXED_SECOND
    return model


def _batch(model: VAE, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """4 binary 1x3x3 images and their fixed eps, (4, L), or (4, K, L) for the importance-weighted bound."""
    rng = np.random.default_rng(seed)
    x = (rng.random((4, 1, 3, 3)) < 0.5).astype(np.float64)
    samples = (model.objective.k,) if isinstance(model.objective, IWAE) else ()
    return x, rng.standard_normal((4, *samples, model.latent_dim))


def _check_verdict(detector: str, model: VAE, x: np.ndarray, eps: np.ndarray, objective: IWAE | None = None) -> Verdict:
    report = check_model(model, x, eps, objective=objective)
    return Verdict(detector, f"{'PASS' if report.ok else 'FAIL'}: {len(report.errors)} arrays, max rel. error "
                   f"{report.max_error:.1e} (tolerance {report.tolerance:g})", not report.ok,
                   {"ok": report.ok, "max_rel_error": report.max_error})


def gradient_check(bug: Bug, seed: int = 0) -> Verdict:
    """check_model on the tiny buggy model: binary images, eps held fixed, float64, h = 1e-6."""
    model = tiny_model(bug, seed)
    return _check_verdict("gradient check", model, *_batch(model, seed))


def gradient_vs_bound(bug: Bug, seed: int = 0) -> Verdict:
    """The buggy model's backward against finite differences of the true bound [IWG-2] (the library's
    IWAE with the same K on the same weights and eps), not of the model's own forward."""
    if bug.objective != "iwae":
        return _not_iwae("gradient vs the IWAE bound")
    model = tiny_model(bug, seed)
    return _check_verdict("gradient vs the IWAE bound", model, *_batch(model, seed), objective=IWAE(bug.iw_samples))


class _DlossProbe:
    """The model's reconstruction loss, keeping the per-row dloss its backward is handed."""

    def __init__(self, loss) -> None:
        self.loss, self.dloss = loss, None

    def __getattr__(self, name: str):
        return getattr(self.loss, name)

    def backward(self, dloss=1.0) -> np.ndarray:
        self.dloss = np.array(dloss, dtype=np.float64)
        return self.loss.backward(dloss)


def iwae_weights(bug: Bug, seed: int = 0) -> Verdict:
    """The weights the backward really uses (the per-row dloss it hands the reconstruction loss, times
    N) against w~ = softmax_k(log w) [IWG-3], log w from the model's parts [IWG-1]: each image's K
    weights must sum to 1 and be w~."""
    if bug.objective != "iwae":
        return _not_iwae("meaning: IWAE weights")
    model = tiny_model(bug, seed)
    x, eps = _batch(model, seed)
    n, k = eps.shape[:2]
    probe = model.recon_loss = _DlossProbe(model.recon_loss)
    try:
        model.loss(x, eps=eps)
        model.backward()
    finally:
        model.recon_loss = probe.loss
    used = probe.dloss.reshape(n, k) * n                         # (N, K)
    log_w = log_weights(model, *model.encode(x), eps, x)         # (N, K)
    right = np.exp(log_w - log_w.max(axis=1, keepdims=True))     # (N, K)
    right /= right.sum(axis=1, keepdims=True)
    worst = float(np.abs(used - right).max())
    sums = used.sum(axis=1)                                      # (N,)
    return Verdict("meaning: IWAE weights", "sum over k per image " + ", ".join(f"{v:.3f}" for v in sums) +
                   f"; max |w - softmax(log w)| {worst:.3f}", worst > WEIGHTS_ATOL,
                   {"sums": sums.tolist(), "max_abs_diff": worst})


def _not_iwae(detector: str) -> Verdict:
    return Verdict(detector, "not run: the model does not train on the importance-weighted bound", None)


def _draws(model: VAE, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mu, logvar) of one image as the code declares them, (1, L) each, and DRAWS samples z
    of the sampler the code really runs with their eps, (DRAWS, L) each."""
    x = np.zeros((1, 1, 3, 3))
    mu, logvar = model.encode(x)                                 # (1, L) each
    eps = np.random.default_rng(seed).standard_normal((DRAWS, model.latent_dim))
    z = model.posterior.forward(np.repeat(mu, DRAWS, 0), np.repeat(logvar, DRAWS, 0), eps)  # (DRAWS, L)
    return mu, logvar, z, eps


def std_of_z(bug: Bug, seed: int = 0) -> Verdict:
    """The spread of z - mu must be exp(logvar / 2) with logvar as the model declares it [REP-1]
    (logvar = 2 a for posterior='logstd' [LOGSTD-1])."""
    model = _fixed_encoder_model(bug, seed)
    mu, logvar, z, _ = _draws(model, seed)
    measured, wanted = (z - mu).std(axis=0), np.exp(logvar[0] / 2)   # (L,) each
    worst = float(np.max(np.abs(measured / wanted - 1)))
    text = "std(z - mu) " + ", ".join(f"{m:.3f}" for m in measured) + "; exp(logvar/2) " + \
        ", ".join(f"{w:.3f}" for w in wanted)
    return Verdict("meaning: std of z", text, worst > STD_RTOL,
                   {"std": measured.tolist(), "expected": wanted.tolist(), "max_rel_diff": worst})


def kl_vs_monte_carlo(bug: Bug, seed: int = 0) -> Verdict:
    """The code's KL against E_q[log q(z) - log p(z)] over the sampler's own draws. The sampler is
    z = mu + s * eps for the s it really uses (s = its output at eps = 1, minus mu), so
    log q(z) = sum(-eps^2 / 2 - log s - log(2 pi) / 2): no convention to get wrong. n/a for a learned
    prior: its KL has no closed form, the code's KL is already log q - log p at the sample [KL-4]."""
    model = _fixed_encoder_model(bug, seed)
    if not isinstance(model.kl, GaussianKL):
        return Verdict("meaning: KL vs Monte Carlo", "not run: no closed-form KL with a learned prior, the loss's "
                       "KL is log q - log p at the sample", None)
    mu, logvar, z, eps = _draws(model, seed)
    closed = float(model.kl.forward(mu, logvar))
    s = model.posterior.forward(mu, logvar, np.ones_like(mu)) - mu  # (1, L): the std the sampler uses
    log_q = np.sum(-0.5 * eps * eps - np.log(s) - 0.5 * math.log(2 * math.pi), axis=1)  # (DRAWS,)
    log_p = np.sum(-0.5 * z * z - 0.5 * math.log(2 * math.pi), axis=1)  # (DRAWS,)
    mc = log_q - log_p
    stderr = float(mc.std() / math.sqrt(len(mc)))
    gap = abs(float(mc.mean()) - closed)
    return Verdict("meaning: KL vs Monte Carlo", f"closed form {closed:.3f}, Monte Carlo {mc.mean():.3f} +- "
                   f"{stderr:.3f} nats ({gap / stderr:.0f} std. errors apart)", gap > MC_SIGMAS * stderr,
                   {"closed_form": closed, "monte_carlo": float(mc.mean()), "stderr": stderr})


def recon_is_log_likelihood(bug: Bug, seed: int = 0) -> Verdict:
    """The code's recon against -log p(x|z) = -sum(x log p + (1 - x) log(1 - p)) [BCE-1], p the
    decoder's mean, on the tiny model (p well inside (0, 1) there; every sample's row for IWAE)."""
    model = tiny_model(bug, seed)
    x, eps = _batch(model, seed)
    recon = float(model.loss(x, eps=eps).recon)
    if isinstance(model.objective, IWAE):                        # its N*K rows, as its forward drew them
        z = model.objective.cache.z.reshape(-1, model.latent_dim)  # (N*K, L)
        t = np.repeat(x, eps.shape[1], axis=0).reshape(len(z), -1)  # (N*K, D)
    else:
        mu, logvar = model.encode(x)
        z = model.posterior.forward(mu, logvar, eps)             # (N, L)
        t = x.reshape(4, -1)                                     # (N, D)
    p = model.decode_mean(z).reshape(len(z), -1)                 # (rows, D)
    bernoulli = float(np.mean(-np.sum(t * np.log(p) + (1 - t) * np.log1p(-p), axis=1)))
    rel = abs(recon - bernoulli) / bernoulli
    return Verdict("meaning: recon = -log p(x|z)", f"loss {recon:.4f}, Bernoulli -log p(x|z) {bernoulli:.4f} "
                   f"nats per image", rel > RECON_RTOL, {"recon": recon, "bernoulli": bernoulli})


def paired_gap(worse: np.ndarray, better: np.ndarray) -> tuple[float, float, bool]:
    """(mean of worse - better, its standard error, whether it counts: > SIGMAS std. errors and > MIN_GAP)."""
    d = np.asarray(worse, dtype=np.float64) - np.asarray(better, dtype=np.float64)   # (N,)
    gap, stderr = float(d.mean()), float(d.std() / math.sqrt(len(d)))
    return gap, stderr, bool(gap > SIGMAS * stderr and gap > MIN_GAP)


def pseudo_inputs_in_range(model: VAE) -> Verdict:
    """The pseudo-inputs u the VampPrior hands the encoder are images: every pixel in [0, 1] [VAMP-1].
    Measured on a trained model: the share of pseudo-pixels outside, and how far the furthest go.
    The library's u = sigmoid(a) cannot leave [0, 1] (float32 rounds it at worst to 0 or 1), so any
    pixel outside, by any amount, is the mistake: no threshold to tune. n/a without a VampPrior."""
    prior = getattr(model, "prior", None)
    if not isinstance(prior, VampPrior):
        return Verdict("pseudo-inputs in [0, 1]", "not run: the model has no VampPrior", None)
    u = np.asarray(prior.pseudo_inputs(), dtype=np.float64)     # (M, C, H, W)
    below, above = int(np.sum(u < 0)), int(np.sum(u > 1))
    low, high = float(u.min()), float(u.max())
    return Verdict("pseudo-inputs in [0, 1]", f"{below + above} of {u.size} pseudo-pixels outside "
                   f"({(below + above) / u.size:.1%}): {below} below 0, {above} above 1; range [{low:.3f}, {high:.3f}]",
                   below + above > 0, {"below": below, "above": above, "size": u.size, "min": low, "max": high})
