"""The tour of IWAE.backward: the importance-weighted bound's chain rule, one step a line, each
step checked on its own (the ELBO's tour, scratchvae/tour.py, walks VAE.backward the same way).

On the tiny float64 VAE of tour.tiny_vae with objective 'iwae', K samples per image and eps
(N, K, L) held fixed, ``run_iwae_tour`` unrolls IWAE.backward exactly as it runs it
(docs/derivations/iwae_gradient.md):

    g     = w~ / N,  w~ = softmax_k(log w)                           [IWG-3]
    dpred = recon_loss.backward(g)  (per-row dloss, N*K rows)         [IWG-4]
    dz    = decoder layers' backward, last to first, + prior term     [IWG-5]
    dmu, dlogvar = sums over the K samples                            [IWG-6]
    dh    = posterior.params_backward(dmu, dlogvar); encoder layers' backward

and compares what leaves each step with central finite differences of a scalar that step alone
defines:

    the weights:       the bound [IWG-2] as a function of the log-weights log w (N, K)
    the loss:          sum_r g_r recon_r(pred) w.r.t. pred, the N*K decoded rows
    a layer:           sum(layer.forward(x) * dout), as in the ELBO's tour
    the prior:         sum_nk (-beta g_nk) log p(z_nk) w.r.t. z
    the sum over k:    sum(dz * z(mu, logvar)) + beta sum_nk g_nk log q(z_nk | x_n), eps fixed
    params -> dh:      the whole bound as a function of the encoder's output h

and last the unrolled chain with model.backward(). The weights w~ of each image are shown: they
are what makes this the IWAE's gradient and not K ELBOs' (uniform 1/K weights would be).
"""
from __future__ import annotations

import math

import numpy as np

from .gradcheck import numerical_gradient, relative_error
from .models.vae import VAE
from .nn.module import per_image_scale
from .tour import (H, LOSS_FORMULAS, Grad, Step, Tour, _check_layer, compare_with_model_backward,
                   layers_backward, tiny_vae)

DEFAULT_K = 3
WEIGHT_FORMULA = "w~ = softmax_k(log w)  [IWG-3];  g = -d loss / d log w = w~ / N"
PRIOR_FORMULA = "dz_prior = -beta g z  [PRIOR-2] [IWG-5];  dz = decoder's dz + dz_prior"
SUM_FORMULAS = ("dmu = sum_k dz_k  [REP-2] [IWG-6]",
                "dlogvar = sum_k (dz_k * eps_k * std / 2 - beta g_k / 2)  [REP-3] [IWG-6]")
DH_FORMULA = "dh = concat(dmu, dlogvar)  [ELBO-6]"


def log_weights(vae: VAE, mu: np.ndarray, logvar: np.ndarray, eps: np.ndarray, target: np.ndarray) -> np.ndarray:
    """log w_nk = -recon_nk - beta (log q(z_nk | x_n) - log p(z_nk)), (N, K)   [IWG-1], from the
    model's parts (decoder, loss, posterior, prior): the scalars the checks differentiate."""
    n, k, latent = eps.shape
    z = mu[:, None] + np.exp(0.5 * logvar)[:, None] * eps            # (N, K, L)   [REP-1]
    pred = vae.decoder.forward(z.reshape(n * k, latent))             # (N*K, C, H, W)
    rows = np.repeat(target, k, axis=0)                              # (N*K, C, H, W)
    recon = vae.recon_loss.per_image(pred.reshape(n * k, -1), rows.reshape(n * k, -1)).reshape(n, k)  # (N, K)
    kl = vae.posterior.log_prob(eps, logvar[:, None]) - vae.prior.log_prob(z)  # (N, K)
    return -recon - vae.beta * kl                                    # (N, K)


def negative_bound(log_w: np.ndarray) -> float:
    """-(1/N) sum_n (logsumexp_k log w_nk - log K)   [IWG-2]."""
    top = log_w.max(axis=1, keepdims=True)                           # (N, 1)
    lse = top[:, 0] + np.log(np.exp(log_w - top).sum(axis=1))        # (N,)
    return float(-(lse - math.log(log_w.shape[1])).mean())


def run_iwae_tour(model: str = "mlp", seed: int = 0, k: int = DEFAULT_K) -> Tour:
    """Unroll IWAE.backward on a tiny VAE (tour.tiny_vae, K samples per image) and check every step."""
    if k < 1:
        raise ValueError(f"the IWAE tour needs at least 1 importance sample per image, got {k}")
    vae, x, eps = tiny_vae(model, seed, "iwae", k)
    n, latent, beta = x.shape[0], vae.latent_dim, vae.beta
    target = x.copy()
    mu, logvar = (a.copy() for a in vae.encode(x))                   # (N, L) each
    vae.loss(x, target, eps)
    z = vae.objective.cache.z.copy()                                 # (N, K, L): the samples forward drew
    rows = vae.trace(x, z.reshape(n * k, latent))                    # (name, layer, input, output) per layer
    vae.zero_grad()
    total = vae.loss(x, target, eps).total                           # every cache as model.loss leaves it
    cache = vae.objective.cache
    if cache.chunked:
        raise ValueError("the tour walks the one-pass backward: the tiny batch is far below MAX_ROWS")
    pred_in = vae.recon_loss.cache.pred.reshape(vae.recon_loss.cache.shape).copy()  # (N*K, C, H, W)

    # -- IWAE.backward, unrolled: one call at a time ----------------------------------------------
    chain: list = []
    scale = np.broadcast_to(per_image_scale(1.0, n, np.float64), (n, 1))  # (N, 1): dloss / N
    g = (cache.weights * scale).astype(z.dtype)                      # (N, K)   [IWG-3]
    chain.append(("weights", g.copy()))
    dpred = vae.recon_loss.backward(g.reshape(n * k))                # (N*K, C, H, W)   [IWG-4]
    chain.append(("loss", dpred.copy()))
    dz = layers_backward([r for r in rows if r[0].startswith("decoder")], dpred, chain).reshape(n, k, latent)
    dz_prior = vae.prior.log_prob_backward(z, -beta * g)             # (N, K, L)   [IWG-5]
    chain.append(("prior", dz_prior.copy()))
    dz = dz + dz_prior                                               # (N, K, L)
    dmu = dz.sum(axis=1)                                             # (N, L)   [IWG-6]
    dlogvar = (dz * cache.eps * cache.std * 0.5).sum(axis=1) - 0.5 * beta * g.sum(axis=1, keepdims=True)  # (N, L)
    chain.append(("samples", (dz.copy(), dmu.copy(), dlogvar.copy())))
    dh = vae.posterior.params_backward(dmu, dlogvar)                 # (N, 2L)
    chain.append(("concat", dh.copy()))
    dx_chain = layers_backward([r for r in rows if r[0].startswith("encoder")], dh, chain)
    unrolled, from_model, diffs = compare_with_model_backward(vae, x, target, eps, dx_chain)

    # -- each step against finite differences --------------------------------------------------
    log_w = log_weights(vae, mu, logvar, eps, target)                # (N, K)
    steps = []
    for kind, data in chain:
        if kind == "weights":
            a = log_w.copy()
            err = relative_error(data, numerical_gradient(lambda: -negative_bound(a), a, H))
            steps.append(Step("loss -> log w: the normalised importance weights  [IWG-2]", None,
                              [Grad("g", data.shape, WEIGHT_FORMULA, err)],
                              note=_weights_note(cache.weights, negative_bound(log_w), total)))
        elif kind == "loss":
            steps.append(_check_loss_rows(vae, pred_in, np.repeat(target, k, axis=0), g, data))
        elif kind == "layer":
            steps.append(_check_layer(*data))
        elif kind == "prior":
            zz = z.copy()
            num = numerical_gradient(lambda: float(np.sum(-beta * g * vae.prior.log_prob(zz))), zz, H)
            steps.append(Step(f"prior log p(z) (times -beta g, beta = {beta:g})  [PRIOR-1]", None,
                              [Grad("dz_prior", data.shape, PRIOR_FORMULA, relative_error(data, num))]))
        elif kind == "samples":
            steps.append(_check_sample_sum(vae, mu, logvar, cache.eps, g, *data))
        else:  # params_backward: the whole bound as a function of the encoder's output h
            h = np.concatenate([mu, logvar], axis=1)                 # (N, 2L)

            def bound_of_h() -> float:
                return negative_bound(log_weights(vae, *vae.posterior.params(h, latent), eps, target))
            err = relative_error(data, numerical_gradient(bound_of_h, h, H))
            steps.append(Step("posterior.params_backward -> dh", dmu.shape, [Grad("dh", data.shape, DH_FORMULA, err)],
                              note="checked against d loss / d h: the whole decoder side at once", dout_count=2))
    return Tour(model, seed, x.shape, steps, max(diffs), len(diffs), unrolled, from_model, "iwae", k)


def _check_loss_rows(vae: VAE, pred_in: np.ndarray, rows: np.ndarray, g: np.ndarray, dpred: np.ndarray) -> Step:
    """dpred against finite differences of sum_r g_r recon_r(pred), the N*K rows' losses weighted by g."""
    pred, weights = pred_in.copy(), g.reshape(-1)                    # (N*K, C, H, W), (N*K,)
    m = pred.shape[0]

    def weighted() -> float:
        return float(np.sum(weights * vae.recon_loss.per_image(pred.reshape(m, -1), rows.reshape(m, -1))))
    label, formula = LOSS_FORMULAS[type(vae.recon_loss).__name__]
    row_formula = formula.replace(" / N", " * g_r", 1) + " [IWG-4]"
    return Step(f"recon rows -> dpred ({label}, per-row dloss g: N*K = {m} rows)", g.shape,
                [Grad("dpred", dpred.shape, row_formula, relative_error(dpred, numerical_gradient(weighted, pred, H)))])


def _check_sample_sum(vae: VAE, mu: np.ndarray, logvar: np.ndarray, eps: np.ndarray, g: np.ndarray,
                      dz: np.ndarray, dmu: np.ndarray, dlogvar: np.ndarray) -> Step:
    """dmu, dlogvar against finite differences of sum(dz * z(mu, logvar)) + beta sum g log q, eps fixed:
    each sample's dz pulled back through z = mu + std * eps, and log q's -1/2 per logvar."""
    m, lv = mu.copy(), logvar.copy()

    def scalar() -> float:
        z = m[:, None] + np.exp(0.5 * lv)[:, None] * eps             # (N, K, L)
        return float(np.sum(dz * z) + vae.beta * np.sum(g * vae.posterior.log_prob(eps, lv[:, None])))
    grads = [Grad("dmu", dmu.shape, SUM_FORMULAS[0], relative_error(dmu, numerical_gradient(scalar, m, H))),
             Grad("dlogvar", dlogvar.shape, SUM_FORMULAS[1],
                  relative_error(dlogvar, numerical_gradient(scalar, lv, H)))]
    return Step("sum over the K samples -> dmu, dlogvar  (z_k = mu + std * eps_k  [REP-1], log q at fixed eps)",
                dz.shape, grads)


def _weights_note(weights: np.ndarray, bound: float, total: float) -> str:
    """Each image's w~ (they sum to 1), and the bound of the log-weights the checks use against model.loss()."""
    rows = "; ".join(f"image {i}: " + " ".join(f"{w:.3f}" for w in row) for i, row in enumerate(weights))
    sums = ", ".join(f"{s:.3f}" for s in weights.sum(axis=1))
    return (f"w~, each image's K weights: {rows}\nsum over k, per image: {sums}\n"
            f"the bound of these log w: {bound:.6f}; model.loss(): {total:.6f}")
