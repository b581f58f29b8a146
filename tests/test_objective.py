"""The VAE objective: reparameterization, KL and reconstruction losses, their gradients and their meaning."""
import numpy as np
import pytest

import scratchvae as sv
from scratchvae.gradcheck import check_loss, gradcheck


# Checks [REP-2], [REP-3] (docs/derivations).
def test_reparameterize_gradcheck(rng):
    mu, logvar, eps = rng.standard_normal((3, 4, 5))
    r = rng.standard_normal((4, 5))
    rep = sv.Reparameterize()
    rep.forward(mu, logvar, eps)
    dmu, dlogvar = rep.backward(r)
    report = gradcheck(lambda: float(np.sum(rep.forward(mu, logvar, eps) * r)),
                       {"mu": (mu, dmu), "logvar": (logvar, dlogvar)})
    assert report.ok, f"\n{report}"


# Checks [REP-1] (docs/derivations).
def test_reparameterize_std_is_exp_half_logvar():
    """z's spread must be exp(logvar/2): a sampler using exp(logvar) as std would pass gradchecks but fail here."""
    n = 200_000
    mu = np.full((n, 3), [0.5, -1.0, 2.0])
    logvar = np.full((n, 3), [np.log(4.0), 0.0, np.log(0.25)])
    z = sv.Reparameterize().forward(mu, logvar, rng=np.random.default_rng(0))
    np.testing.assert_allclose(z.std(axis=0), [2.0, 1.0, 0.5], rtol=0.01)
    np.testing.assert_allclose(z.mean(axis=0), [0.5, -1.0, 2.0], atol=0.01)


# Checks [KL-2], [KL-3] (docs/derivations).
def test_kl_gradcheck(rng):
    mu, logvar = rng.standard_normal((2, 4, 3))
    kl = sv.GaussianKL()
    kl.forward(mu, logvar)
    dmu, dlogvar = kl.backward()
    report = gradcheck(lambda: kl.forward(mu, logvar), {"mu": (mu, dmu), "logvar": (logvar, dlogvar)})
    assert report.ok, f"\n{report}"


# Checks [KL-1] (docs/derivations).
def test_kl_matches_monte_carlo_estimate():
    """E_q[log q(z) - log p(z)] estimated from samples equals the closed form."""
    rng = np.random.default_rng(1)
    mu = np.array([[0.3, -1.2, 0.8]])
    logvar = np.array([[-0.5, 0.7, -1.5]])
    analytic = sv.GaussianKL().forward(mu, logvar)
    n = 400_000
    std = np.exp(logvar / 2)
    z = mu + std * rng.standard_normal((n, 3))
    log_q = np.sum(-0.5 * ((z - mu) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), axis=1)
    log_p = np.sum(-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi), axis=1)
    mc = log_q - log_p
    assert abs(mc.mean() - analytic) < 4 * mc.std() / np.sqrt(n)
    assert abs(mc.mean() - analytic) < 0.01


def test_kl_is_zero_at_the_prior():
    assert sv.GaussianKL().forward(np.zeros((2, 5)), np.zeros((2, 5))) == 0.0


# Checks [BCE-2], [BCE-4], [MSE-1], [RMSE-1] (docs/derivations).
@pytest.mark.parametrize("name", ["bce", "bce-prob", "mse", "rmse"])
def test_loss_gradcheck(name, rng):
    target = rng.random((3, 2, 4))
    if name == "bce-prob":
        pred = rng.uniform(0.1, 0.9, (3, 2, 4))
    else:
        pred = rng.standard_normal((3, 2, 4))
    report = check_loss(sv.make_loss(name), pred, target)
    assert report.ok, f"\n{report}"


# Checks [LOSS-1], [KL-2], [KL-3] (docs/derivations).
@pytest.mark.parametrize("name", ["bce", "bce-prob", "mse", "rmse", "kl"])
def test_backward_dloss_scales_the_gradient(name, rng):
    """backward(dloss) is the gradient of dloss * loss: the chain rule seeded with dloss."""
    a, b = rng.uniform(0.1, 0.9, (2, 3, 5))
    loss = sv.GaussianKL() if name == "kl" else sv.make_loss(name)
    loss.forward(a, b)
    plain, scaled = loss.backward(), loss.backward(dloss=0.3)
    for g, g3 in zip(plain if name == "kl" else [plain], scaled if name == "kl" else [scaled]):
        assert np.abs(g).max() > 0
        np.testing.assert_allclose(g3, 0.3 * g, rtol=1e-12)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    loss.forward(a32, b32)
    out = loss.backward(dloss=np.float64(0.3))   # a NumPy float64 scalar must not promote float32 gradients
    assert all(g.dtype == np.float32 for g in (out if name == "kl" else [out]))


# Checks [LOSS-1], [BCE-1], [MSE-1] (docs/derivations).
def test_losses_sum_over_pixels_mean_over_batch():
    pred, target = np.array([[0.0, 1.0], [2.0, 2.0]]), np.array([[1.0, 1.0], [0.0, 0.0]])
    assert sv.MSE().forward(pred, target) == pytest.approx((1 + 8) / 2)
    assert sv.RMSE().forward(pred, target) == pytest.approx((np.sqrt(0.5) + 2.0) / 2)
    # BCE of logit 0 is log 2 nats per pixel whatever the target
    assert sv.BCEWithLogits().forward(np.zeros((3, 4)), np.ones((3, 4))) == pytest.approx(4 * np.log(2))


# Checks [BCE-1], [BCE-2], [BCE-3], [BCE-4] (docs/derivations).
def test_bce_from_logits_equals_bce_on_probabilities(rng):
    logits, target = 3 * rng.standard_normal((4, 10)), rng.random((4, 10))
    p = 1 / (1 + np.exp(-logits))
    assert sv.BCEWithLogits().forward(logits, target) == pytest.approx(sv.BCE().forward(p, target), rel=1e-10)
    # and the chain rule through sigmoid links their gradients
    bce = sv.BCE()
    bce.forward(p, target)
    logit_loss = sv.BCEWithLogits()
    logit_loss.forward(logits, target)
    np.testing.assert_allclose(bce.backward() * p * (1 - p), logit_loss.backward(), rtol=1e-8)


# Checks [BCE-1] (docs/derivations).
def test_bce_with_logits_is_stable_for_extreme_logits():
    loss = sv.BCEWithLogits().forward(np.array([[1e4, -1e4]]), np.array([[0.0, 1.0]]))
    assert loss == pytest.approx(2e4)


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown reconstruction loss 'l1'"):
        sv.make_loss("l1")
