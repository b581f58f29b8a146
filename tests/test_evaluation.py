"""evaluation.py against a model whose likelihood is known in closed form.

The linear Gaussian model   z ~ N(0, I_L),   x = W z + b + noise,   noise ~ N(0, s^2 I_D)
has  p(x) = N(b, W W^T + s^2 I)  and the Gaussian posterior
     q*(z|x) = N( C W^T (x - b) / s^2,  C ),   C = (I + W^T W / s^2)^-1,
diagonal when W's columns are orthogonal. A linear decoder with a fixed-variance Gaussian
likelihood is that model, so every estimate below can be checked against the exact number.
"""
import json
import math

import numpy as np
import pytest

import scratchvae as sv
from scratchvae._threads import blas_thread_control
from scratchvae import evaluation as ev
from scratchvae.objective import ReconstructionLoss

D, L, S2 = 5, 2, 0.25  # pixels, latents, noise variance s^2


class GaussianNLL(ReconstructionLoss):
    """Test-only loss: -log N(x; pred, s^2 I), constant included, so exp(-loss) is a density."""

    def __init__(self, var: float) -> None:
        super().__init__()
        self.var = var

    def per_image(self, pred, target):
        d = pred.shape[1]
        squares = np.sum((target - pred) ** 2, axis=1)
        return 0.5 * squares / self.var + 0.5 * d * math.log(2 * math.pi * self.var)

    def log_likelihood(self, pred, target):
        return -self.per_image(pred, target)


def linear_vae(W, b, enc_weight, enc_bias):
    """VAE(Linear encoder -> (mu, logvar), Linear decoder W z + b, Gaussian likelihood), float64."""
    encoder, decoder = sv.Linear(W.shape[0], 2 * W.shape[1]), sv.Linear(W.shape[1], W.shape[0])
    model = sv.VAE(encoder, decoder, W.shape[1], loss="mse").to(np.float64)
    model.recon_loss = GaussianNLL(S2)
    encoder.weight.data[...], encoder.bias.data[...] = enc_weight, enc_bias
    decoder.weight.data[...], decoder.bias.data[...] = W, b
    return model


def exact_posterior(W, b):
    """Encoder weights giving the exact posterior mean and the diagonal of its covariance C."""
    C = np.linalg.inv(np.eye(W.shape[1]) + W.T @ W / S2)         # (L, L)
    mean_weight = C @ W.T / S2                                   # (L, D): mu = mean_weight (x - b)
    weight = np.vstack([mean_weight, np.zeros_like(mean_weight)])  # logvar does not depend on x
    bias = np.concatenate([-mean_weight @ b, np.log(np.diag(C))])
    return weight, bias, C


def exact_nll(x, W, b):
    """-log N(x; b, W W^T + s^2 I) of each image, (N,)."""
    cov = W @ W.T + S2 * np.eye(W.shape[0])
    r = x - b
    maha = np.einsum("nd,nd->n", r @ np.linalg.inv(cov), r)
    return 0.5 * (W.shape[0] * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1] + maha)


def exact_negative_elbo(model, x, W, b):
    """recon + KL in closed form for the encoder's q = N(m, diag(v)), (N,):
    E_q[-log p(x|z)] = D/2 log(2 pi s^2) + (|x - W m - b|^2 + sum_j v_j |W_j|^2) / (2 s^2)."""
    m, logvar = model.encode(x)
    v = np.exp(logvar)
    recon = (0.5 * D * math.log(2 * math.pi * S2)
             + (np.sum((x - m @ W.T - b) ** 2, axis=1) + v @ np.sum(W * W, axis=0)) / (2 * S2))
    return recon + sv.GaussianKL.per_image(m, logvar)


def sample_data(W, b, n, seed):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, W.shape[1])) @ W.T + b + math.sqrt(S2) * r.standard_normal((n, W.shape[0]))


def imperfect_problem(shrink, widen):
    """A general W (a correlated posterior) and an encoder that is deliberately off: the posterior
    mean times shrink, the diagonal of its covariance times widen (wider than the posterior, so
    the importance weights have a finite variance)."""
    r = np.random.default_rng(7)
    W, b = r.standard_normal((D, L)), r.standard_normal(D)
    weight, bias, _ = exact_posterior(W, b)
    weight[:L] *= shrink
    bias[:L] *= shrink
    bias[L:] += math.log(widen)
    return W, b, linear_vae(W, b, weight, bias), sample_data(W, b, 50, seed=8)


@pytest.fixture(scope="module")
def problem():
    return imperfect_problem(0.8, 2.0)                           # the ELBO 1.6 nats above -log p(x)


def iwae(model, x, k, seed, **kw):
    return ev.importance_sampled_nll(model, x, k, rng=np.random.default_rng(seed), progress=False, **kw)


def nll_repeats(model, x, k, seeds):
    return np.stack([iwae(model, x, k, s) for s in seeds])       # (R, N)


# Checks [IWAE-1], [IWAE-2], [IWAE-3] (docs/derivations).
def test_exact_posterior_makes_the_estimate_exact_at_any_k():
    """q = p(z|x) makes every weight p(x, z) / p(z|x) = p(x): the estimate is -log p(x) whatever K."""
    r = np.random.default_rng(3)
    Q, _ = np.linalg.qr(r.standard_normal((D, L)))
    W, b = Q * np.array([1.5, 0.7]), r.standard_normal(D)       # orthogonal columns: C is diagonal
    weight, bias, C = exact_posterior(W, b)
    assert np.allclose(C, np.diag(np.diag(C)), atol=1e-15)
    model, x = linear_vae(W, b, weight, bias), sample_data(W, b, 20, seed=4)
    for k in (1, 7, 300):
        nll = iwae(model, x, k, seed=k, batch_size=64)
        # the log-weights are log p(x) up to float64 rounding of ~10-nat sums (~1e-15 each)
        np.testing.assert_allclose(nll, exact_nll(x, W, b), rtol=0, atol=1e-10)


# Checks [IWAE-1], [IWAE-3] (docs/derivations).
def test_estimate_converges_to_the_exact_nll(problem):
    W, b, model, x = problem
    x = x[:10]
    nll = nll_repeats(model, x, 5000, seeds=range(16))           # (R, N)
    sd = nll.std(axis=0, ddof=1)                                 # (N,): spread of one K=5000 estimate
    error = nll.mean(axis=0) - exact_nll(x, W, b)                # (N,)
    # 5 standard errors of the mean of 16 (a t-distribution of 15 dof is beyond 5 with p ~ 2e-4),
    # plus the estimator's bias, ~sd^2 / 2 by the delta method (it is log of a mean)
    assert np.all(np.abs(error) < 5 * sd / math.sqrt(16) + sd ** 2)
    assert np.all(np.abs(error) < 0.02)                          # in nats: ~1% of the 1.6-nat ELBO gap left


# Checks [IWAE-5], [KL-1] (docs/derivations).
def test_k1_is_the_elbo_in_expectation(problem):
    """At K = 1, -log w = -log p(x|z) - log p(z) + log q(z|x): the single-sample negative ELBO."""
    W, b, model, x = problem
    diff = nll_repeats(model, x, 1, seeds=range(40)) - exact_negative_elbo(model, x, W, b)  # (R, N)
    # 4 standard errors of the mean of 2000 draws (p ~ 6e-5 under the central limit theorem)
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(diff.size)

    elbo = np.array([ev.elbo_terms(model, x, batch_size=16, rng=np.random.default_rng(s)).total
                     for s in range(30)])                        # (R,)
    # the same, over 30 single-sample ELBOs of 50 images (a t of 29 dof beyond 4.5 has p ~ 1e-4)
    exact = exact_negative_elbo(model, x, W, b).mean()
    assert abs(elbo.mean() - exact) < 4.5 * elbo.std(ddof=1) / math.sqrt(30)
    terms = ev.elbo_terms(model, x, rng=np.random.default_rng(0))
    m, logvar = model.encode(x)
    # analytic, no sampling: equal up to rounding
    assert terms.kl == pytest.approx(sv.GaussianKL.per_image(m, logvar).mean(), rel=1e-12)
    assert terms.total == pytest.approx(terms.recon + terms.kl, rel=1e-12)


# Checks [IWAE-4] (docs/derivations).
def test_bound_tightens_with_k_and_stays_below_the_elbo():
    W, b, model, x = imperfect_problem(0.5, 3.0)                 # a poorer q: 4.7 nats of ELBO gap
    seeds = range(20)
    # differences are paired by (seed, image), so the spread of -log p(x) over images cancels;
    # the means fall as K grows, though not every pair does
    nll = {k: nll_repeats(model, x, k, seeds) for k in (1, 10, 100)}  # (R, N) each
    negative_elbo = exact_negative_elbo(model, x, W, b)          # (N,)
    exact = exact_nll(x, W, b)                                   # (N,)

    def mean_and_se(gap):                                        # of 1000 paired differences (R, N)
        return gap.mean(), gap.std() / math.sqrt(gap.size)

    # each K falls by more than 3 standard errors: the order is the estimator's, not the draw's
    for k_small, k_large in ((1, 10), (10, 100)):
        mean, se = mean_and_se(nll[k_small] - nll[k_large])
        assert mean > 3 * se
    # never above the ELBO (K = 1 equals it in expectation), never below -log p(x) (K = 100 is
    # within its bias ~ Var(w) / 2K of it): one-sided, at 3 standard errors
    for k in (1, 10, 100):
        mean, se = mean_and_se(negative_elbo - nll[k])
        assert mean > -3 * se
        mean, se = mean_and_se(nll[k] - exact)
        assert mean > -3 * se


def test_chunk_sizes_do_not_change_the_draws_and_bound_memory(problem):
    W, b, model, x = problem
    x = x[:13]

    class RowCounter(sv.Module):
        """Wraps the decoder and records the most rows it saw in one call: the memory bound."""

        def __init__(self, inner):
            self.inner, self.max_rows = inner, 0

        def forward(self, z):
            self.max_rows = max(self.max_rows, z.shape[0])
            return self.inner.forward(z)

    model.decoder, decoder = RowCounter(model.decoder), model.decoder
    try:
        k = 23                                                    # prime: no batch size divides it
        ref = iwae(model, x, k, seed=5, batch_size=10_000)
        for batch_size in (1, 4, 23, 50):
            model.decoder.max_rows = 0
            nll = iwae(model, x, k, seed=5, batch_size=batch_size, workers=1)  # this decoder, not a replica's
            assert model.decoder.max_rows <= batch_size
            # the same draws; only the order of float64 sums (and BLAS blocking) differs, ~1e-16 each
            np.testing.assert_allclose(nll, ref, rtol=1e-12)
        model.decoder.max_rows = 0
        ev.importance_sampled_nll(model, x[:2], 3000, batch_size=64, progress=False, workers=1)
        assert model.decoder.max_rows <= 64                       # K = 3000 still sees 64 rows at most
        e1 = ev.elbo_terms(model, x, batch_size=3, rng=np.random.default_rng(6))
        e2 = ev.elbo_terms(model, x, batch_size=1000, rng=np.random.default_rng(6))
        np.testing.assert_allclose(e1, e2, rtol=1e-12)           # as above: same eps, sums reordered
    finally:
        model.decoder = decoder


@pytest.mark.skipif(blas_thread_control() is None, reason="several workers need an OpenBLAS whose threads can be set")
def test_workers_draw_the_same_noise_as_one(problem):
    """The chunks' log-weights computed on two worker threads: the same draws in the same order, so
    the same estimate; float64, and only the BLAS thread count differs (1 on a worker, as many as
    there are cores here), which can reorder a product's sums: ~1e-16 each, rtol 1e-12."""
    _, _, model, x = problem
    for k, batch_size in ((7, 20), (23, 10)):                     # whole images per chunk; one image split
        one = iwae(model, x[:9], k, seed=3, batch_size=batch_size, workers=1)
        two = iwae(model, x[:9], k, seed=3, batch_size=batch_size, workers=2)
        np.testing.assert_allclose(two, one, rtol=1e-12)
    assert not np.allclose(iwae(model, x[:9], 23, seed=4, batch_size=10, workers=2), one)  # other draws differ


@pytest.mark.parametrize("k", [0, -3])
def test_k_below_one_raises(problem, k):
    model, x = problem[2], problem[3]
    for call in (ev.importance_sampled_nll, ev.evaluate_model):
        with pytest.raises(ValueError, match="at least 1") as err:
            call(model, x, k, progress=False)
        assert "\n" not in str(err.value)


def test_active_units_and_kl_per_dimension():
    """mu_1 and mu_3 ignore x (zero weights), mu_4 barely uses it (Var ~ 0.0009 < 0.01)."""
    r = np.random.default_rng(11)
    D6, L5 = 6, 5
    weight, bias = r.standard_normal((2 * L5, D6)) / math.sqrt(D6), r.standard_normal(2 * L5) * 0.5
    weight[[1, 3, L5 + 1, L5 + 3]] = 0.0                          # mu and logvar of dims 1, 3
    weight[4] = 0.03 * weight[4] / np.linalg.norm(weight[4])
    model = linear_vae(r.standard_normal((D6, L5)), np.zeros(D6), weight, bias)
    x = r.standard_normal((500, D6))                              # unit variance: Var(mu_d) ~ |w_d|^2
    activity = ev.latent_activity(model, x)
    assert np.all(activity[[1, 3]] < 1e-20)                      # constant mu: 0 up to rounding of its mean
    np.testing.assert_array_equal(np.flatnonzero(activity > 0.01), [0, 2])
    assert ev.active_units(model, x) == 2

    kl = ev.kl_per_dimension(model, x)
    assert kl.shape == (L5,)
    m, logvar = model.encode(x)
    assert kl.sum() == pytest.approx(sv.GaussianKL().forward(m, logvar), rel=1e-12)  # the model's KL, split
    assert kl.sum() == pytest.approx(ev.elbo_terms(model, x).kl, rel=1e-12)
    c, lv = bias[[1, 3]], bias[[L5 + 1, L5 + 3]]                 # ignored dims: q = N(c, e^lv) for every x
    np.testing.assert_allclose(kl[[1, 3]], 0.5 * (c * c + np.exp(lv) - 1 - lv), rtol=1e-12)


def test_mse_is_a_gaussian_of_variance_half_and_rmse_is_refused():
    r = np.random.default_rng(12)
    pred, x = r.standard_normal((2, 3, 7))
    gaussian = np.sum(-0.5 * math.log(2 * math.pi * 0.5) - (x - pred) ** 2 / (2 * 0.5), axis=1)
    np.testing.assert_allclose(ev.log_likelihood(sv.MSE(), pred, x), gaussian, rtol=1e-13)
    with pytest.raises(ValueError, match="not a negative log-likelihood"):
        ev.log_likelihood(sv.RMSE(), pred, x)
    model = sv.build_model("mlp", loss="rmse", latent_dim=2, rng=np.random.default_rng(0))
    images = r.random((4, 1, 28, 28))
    with pytest.raises(ValueError, match="RMSE"):
        ev.importance_sampled_nll(model, images, 2, progress=False)
    result = ev.evaluate_model(model, images, k=2, rng=np.random.default_rng(0), progress=False)
    assert result.nll is None and result.likelihood is None and result.elbo is not None


def test_bce_elbo_is_the_training_loss_and_evaluate_model_reports_everything():
    model = sv.build_model("mlp", latent_dim=3, rng=np.random.default_rng(0))      # float32, bce on logits
    x = (np.random.default_rng(1).random((8, 1, 28, 28)) > 0.5).astype(np.float32)
    eps = np.random.default_rng(2).standard_normal((8, 3))     # the draws elbo_terms makes from seed 2
    model.eval()
    training = model.loss(x, eps=eps)
    model.train()
    terms = ev.elbo_terms(model, x, rng=np.random.default_rng(2))
    # the same eps; float32 networks and float32 sums of ~550 nats in model.loss: ~1e-6 relative
    np.testing.assert_allclose(terms, training, rtol=1e-5)
    assert model.training                                      # the evaluation restored the mode

    result = ev.evaluate_model(model, x, k=20, n=6, batch_size=16, rng=np.random.default_rng(3),
                               progress=False)
    row = json.loads(json.dumps(result.as_json()))
    for key in ("elbo", "recon", "kl", "nll", "k", "n", "active_units", "seconds", "kl_per_dim"):
        assert key in row
    assert (row["n"], row["k"], row["likelihood"], len(row["kl_per_dim"])) == (6, 20, "bernoulli", 3)
    assert row["nll"] < row["elbo"]                            # K = 20 below the single-sample bound
    assert sum(row["kl_per_dim"]) == pytest.approx(row["kl"], rel=1e-9)

    with pytest.warns(UserWarning, match="non-binary"):
        ev.importance_sampled_nll(model, x * 0.5, 2, progress=False)
    ae = sv.build_model("mlp", kind="ae", latent_dim=3, rng=np.random.default_rng(0))
    row = ev.evaluate_model(ae, x, k=5, progress=False).as_json()
    assert row["recon"] > 0
    assert all(row[key] is None for key in ("elbo", "kl", "kl_per_dim", "nll", "nll_stderr", "active_units"))
