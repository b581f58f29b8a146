"""The learned priors (--prior mog, vamp): the mixture density's gradients, the whole VAE's gradients
with each, PyTorch autograd of the same loss, and what the densities mean."""
import math

import numpy as np
import pytest

import scratchvae as sv
from scratchvae.distributions import GaussianKL, MixtureOfGaussians, MonteCarloKL, VampPrior, make_prior
from scratchvae.distributions.mixture import mixture_log_prob, mixture_marginal_density, mixture_quantile
from scratchvae.gradcheck import check_model, gradcheck
from scratchvae.models import mlp_decoder, mlp_encoder
from scratchvae.optim import Adam

LOG_2PI = math.log(2 * math.pi)
SHAPE, L, M = (1, 3, 3), 2, 3


def tiny(prior: str, components: int = M, beta: float = 1.0) -> sv.VAE:
    """An MLP VAE on 3x3 images with the named prior (float64 once checked)."""
    return sv.VAE(mlp_encoder(SHAPE, 5, 2 * L), mlp_decoder(L, 5, SHAPE, False), L, "bce", beta,
                  prior=make_prior(prior, L, components, SHAPE), rng=np.random.default_rng(0))


def textbook_gaussian(z: np.ndarray, mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """log N(z; mu, diag(exp(logvar))) from (z - mu) / sigma, summed over the last axis."""
    sigma = np.exp(0.5 * logvar)
    return np.sum(-0.5 * ((z - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * LOG_2PI, axis=-1)


# -- the mixture density: forward against the textbook, backward against finite differences -------------
# Checks [MIX-1], [MIX-2] (docs/derivations/mixture.md).
def test_the_mixture_density_is_the_mean_of_its_gaussians_and_stays_finite_far_away(rng):
    means, logvars = rng.standard_normal((2, 4, 3))
    z = rng.standard_normal((2, 5, 3))                           # leading axes (2, 5)
    comps = textbook_gaussian(z[..., None, :], means, logvars)   # (2, 5, 4)
    expected = np.log(np.mean(np.exp(comps), axis=-1))           # the plain sum, fine at these values
    np.testing.assert_allclose(mixture_log_prob(z, means, logvars), expected, rtol=1e-12)
    far = np.full((1, 3), 60.0)                                  # every exp(l_m) underflows to 0
    value = mixture_log_prob(far, means, logvars)[0]
    assert np.isfinite(value)
    best = textbook_gaussian(far[:, None], means, logvars).max()  # logsumexp >= the largest term
    # [MIX-1]'s expanded square cancels out here: ~1e-11 of ~7000 nats measured, so 1e-12 relative
    slack = 1e-12 * abs(best)
    assert best - math.log(4) - slack <= value <= best + slack


# Checks [MIX-3], [MIX-4], [MIX-5] (docs/derivations/mixture.md).
@pytest.mark.parametrize("components", [1, 4])
def test_mixture_log_prob_gradcheck_wrt_z_and_its_parameters(components, rng):
    prior = MixtureOfGaussians(3, components).to(np.float64)
    prior.means.data[...] = rng.standard_normal((components, 3))
    prior.logvars.data[...] = 0.5 * rng.standard_normal((components, 3))
    z = rng.standard_normal((2, 4, 3))                           # (2, 4) leading axes
    dlogp = rng.standard_normal((2, 4))
    prior.zero_grad()
    dz = prior.log_prob_backward(z, dlogp)
    report = gradcheck(lambda: float(np.sum(dlogp * prior.log_prob(z))),
                       {"z": (z, dz), "means": (prior.means.data, prior.means.grad.copy()),
                        "logvars": (prior.logvars.data, prior.logvars.grad.copy())})
    assert report.ok, f"\n{report}"


# Checks [MIX-3] .. [MIX-5] with the components the encoder made (VampPrior.log_prob_backward).
def test_vamp_log_prob_gradcheck_wrt_z_and_its_components(rng):
    prior = VampPrior(3, 4, SHAPE)
    means, logvars = rng.standard_normal((2, 4, 3))
    z, dlogp = rng.standard_normal((5, 3)), rng.standard_normal(5)
    prior.set_components(means, logvars)
    dz = prior.log_prob_backward(z, dlogp)
    grads = prior.component_grads
    report = gradcheck(lambda: float(np.sum(dlogp * prior.log_prob(z))),
                       {"z": (z, dz), "means": (means, grads.means.copy()), "logvars": (logvars, grads.logvars.copy())})
    assert report.ok, f"\n{report}"


# -- the whole VAE --------------------------------------------------------------------------------------------
# Checks [KL-4], [KL-5] with each learned prior, and [VAMP-1] .. [VAMP-3] through the encoder.
@pytest.mark.parametrize("prior", ["mog", "vamp"])
@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_the_vae_with_a_learned_prior_passes_the_gradient_check(prior, beta, rng):
    model = tiny(prior, beta=beta)
    assert isinstance(model.kl, MonteCarloKL)
    report = check_model(model, rng.random((4,) + SHAPE), eps=rng.standard_normal((4, L)))
    learned = ["prior.means", "prior.logvars"] if prior == "mog" else ["prior.pseudo_logits"]
    assert all(name in report.errors for name in learned) and report.ok, f"\n{report}"


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_a_per_image_dloss_gives_the_weighted_sum_s_gradient_with_a_learned_prior(prior, rng):
    """backward(dloss=w) as the importance-weighted objective calls it: the vamp's u rows take
    their share of every image's weight."""
    model = tiny(prior).to(np.float64)
    x, eps, w = rng.random((3,) + SHAPE), rng.standard_normal((3, L)), np.array([0.5, 2.0, 1.25])
    target = x.copy()

    def weighted() -> float:
        return float(np.sum(w * model.objective.per_image(model, x, target, eps=eps)["loss"]))
    model.zero_grad()
    model.loss(x, target, eps)
    dx = model.backward(dloss=w)
    wrt = {"input": (x, dx), **{n: (p.data, p.grad.copy()) for n, p in model.named_parameters()}}
    assert gradcheck(weighted, wrt).ok


def test_vamp_refuses_an_encoder_with_batchnorm():
    with pytest.raises(ValueError, match="BatchNorm2d, whose batch statistics would mix them"):
        sv.build_model("faces", prior="vamp", prior_components=2)
    assert sv.build_model("faces", prior="mog", prior_components=2).prior.num_components == 2
    for bad in (0, -1):
        with pytest.raises(ValueError, match="components must be at least 1"):
            make_prior("mog", 2, bad)


# -- PyTorch autograd on the same loss, weights and eps ----------------------------------------------------
@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_the_learned_prior_loss_and_gradients_match_torch_autograd(prior, rng):
    torch = pytest.importorskip("torch")
    from torch_twin import TorchVAE
    sv.manual_seed(3)
    model = sv.build_model("mlp", latent_dim=3, image_shape=(1, 6, 6), prior=prior, prior_components=4).to(np.float64)
    x = (rng.random((5, 1, 6, 6)) < 0.4).astype(np.float64)
    eps = rng.standard_normal((5, 3))
    model.zero_grad()
    ours = model.loss(x, eps=eps)
    dx = model.backward()

    twin = TorchVAE(_without_prior(model)).double()
    tx = torch.tensor(x, requires_grad=True)
    params = {n: torch.tensor(p.data, requires_grad=True)
              for n, p in model.named_parameters() if n.startswith("prior.")}
    mu, logvar = _torch_posterior(twin, tx, 3)
    z = mu + torch.exp(0.5 * logvar) * torch.tensor(eps)
    if prior == "mog":
        means, logvars = params["prior.means"], params["prior.logvars"]
    else:
        means, logvars = _torch_posterior(twin, torch.sigmoid(params["prior.pseudo_logits"]), 3)
    comp = -0.5 * (((z[:, None] - means) ** 2 / logvars.exp() + logvars + LOG_2PI).sum(-1))  # (N, M)
    log_p = torch.logsumexp(comp, 1) - math.log(means.shape[0])
    log_q = (-0.5 * torch.tensor(eps) ** 2 - 0.5 * logvar - 0.5 * LOG_2PI).sum(-1)
    recon = torch.nn.functional.binary_cross_entropy_with_logits(twin.decoder(z), tx.detach(), reduction="sum") / 5
    total = recon + (log_q - log_p).mean()
    total.backward()
    # float64 both sides, the same products summed in other orders: measured ~1e-14 relative
    assert abs(ours.total - total.item()) <= 1e-10 * abs(total.item())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-8, atol=1e-12)
    grads = {**{n: p.grad for n, p in twin.named_parameters()}, **{n: p.grad for n, p in params.items()}}
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name].numpy(), rtol=1e-8, atol=1e-12, err_msg=name)


def _without_prior(model: sv.VAE) -> sv.VAE:
    """The same encoder and decoder with N(0, I): TorchVAE copies the state_dict strictly."""
    return sv.VAE(model.encoder, model.decoder, model.latent_dim)


def _torch_posterior(twin, x, latent: int):
    h = twin.encoder(x)
    return h[:, :latent], h[:, latent:]


# -- what the densities mean ----------------------------------------------------------------------------------
def test_a_one_component_mixture_at_n01_gives_the_closed_form_kl_on_average():
    """One component, mean 0, logvar 0, is N(0, I): the mean of the one-sample KL is [KL-1]."""
    model = tiny("mog", components=1).to(np.float64)
    model.prior.means.data[...] = 0.0
    model.prior.logvars.data[...] = 0.0
    n = 200_000
    mu = np.repeat([[0.6, -1.1]], n, 0)
    logvar = np.repeat([[-0.4, 0.9]], n, 0)
    eps = np.random.default_rng(5).standard_normal((n, L))
    mc = model.kl.per_image(mu, logvar, model.posterior.sample(mu, logvar, eps), eps)
    closed = GaussianKL.per_image(mu[:1], logvar[:1])[0]
    # the standard error of the mean is ~0.004 nats here; 4 of them
    assert abs(mc.mean() - closed) < 4 * mc.std() / math.sqrt(n)
    # and the density itself is N(0, I)'s, draw for draw
    z = model.posterior.sample(mu[:100], logvar[:100], eps[:100])
    np.testing.assert_allclose(model.prior.log_prob(z), sv.distributions.StandardNormal(L).log_prob(z), rtol=1e-12)


def test_the_vamp_density_is_the_mean_of_the_encoder_s_posteriors_on_the_pseudo_inputs(rng):
    """[VAMP-2]: log p(z) = log (1/M) sum_m q(z | u_m), q computed here one pseudo-input at a time."""
    model = tiny("vamp", components=4).to(np.float64)
    x = rng.random((3,) + SHAPE)
    model.encode(x)                                              # sets the components, as a step does
    z = rng.standard_normal((6, L))
    u = 1.0 / (1.0 + np.exp(-model.prior.pseudo_logits.data))  # sigmoid, written out
    q = []
    for um in u:
        h = model.encoder.forward(um[None])                      # (1, 2L): this pseudo-input alone
        q.append(np.exp(textbook_gaussian(z, h[0, :L], h[0, L:])))  # (6,)
    np.testing.assert_allclose(model.prior.log_prob(z), np.log(np.mean(q, axis=0)), rtol=1e-12)


def test_pseudo_inputs_stay_in_the_image_range_after_many_large_adam_steps(rng):
    """[VAMP-1]: 300 steps at lr 0.5 move the logits far past where u = a itself would have left
    [0, 1] (|a| > 5); u = sigmoid(a) stays inside."""
    sv.manual_seed(1)
    model = tiny("vamp", components=4)
    x = (rng.random((16,) + SHAPE) < 0.5).astype(np.float32)
    optimizer = Adam(model.parameters(), lr=0.5)
    start = model.prior.pseudo_logits.data.copy()
    for _ in range(300):
        model.zero_grad()
        model.loss(x)
        model.backward(input_grad=False)
        optimizer.step()
    a = model.prior.pseudo_logits.data
    assert np.abs(a - start).max() > 5
    u = model.prior.pseudo_inputs()
    assert u.min() >= 0.0 and u.max() <= 1.0 and np.all(np.isfinite(u))


def test_mixture_samples_have_the_mixture_s_moments(rng):
    """mean = mean_m mean_m, variance = mean_m (v_m + mean_m^2) - mean^2, per coordinate."""
    prior = MixtureOfGaussians(2, 3).to(np.float64)
    prior.means.data[...] = [[-2.0, 0.5], [1.0, 3.0], [0.0, -1.0]]
    prior.logvars.data[...] = [[0.0, -1.0], [0.5, 0.0], [-2.0, 1.0]]
    n = 400_000
    z = prior.sample(n, np.random.default_rng(2))
    v, m = np.exp(prior.logvars.data), prior.means.data
    mean = m.mean(0)
    var = (v + m ** 2).mean(0) - mean ** 2
    # standard errors: sqrt(var / n) for the mean; the variance's from the 4th central moment
    assert np.all(np.abs(z.mean(0) - mean) < 4 * np.sqrt(var / n))
    se_var = np.sqrt((((z - mean) ** 4).mean(0) - var ** 2) / n)
    assert np.all(np.abs(z.var(0) - var) < 4 * se_var)


def test_the_mixture_quantiles_split_the_samples_of_each_axis(rng):
    """[MIX-6]: the fraction of draws below quantile(p) is p (binomial standard error), per axis;
    one standard-normal component gives Phi^-1."""
    prior = MixtureOfGaussians(2, 3).to(np.float64)
    prior.means.data[...] = [[-2.0, 0.5], [1.0, 3.0], [0.0, -1.0]]
    prior.logvars.data[...] = [[0.0, -1.0], [0.5, 0.0], [-2.0, 1.0]]
    p = np.array([0.025, 0.3, 0.5, 0.9])
    q = prior.quantile(p)                                        # (4, 2)
    n = 400_000
    z = prior.sample(n, np.random.default_rng(4))
    below = (z[:, None, :] < q[None]).mean(0)                    # (4, 2)
    assert np.all(np.abs(below - p[:, None]) < 4 * np.sqrt(p * (1 - p) / n)[:, None])
    np.testing.assert_allclose(mixture_quantile(p, np.zeros((1, 1)), np.zeros((1, 1)))[:, 0],
                               sv.distributions.quantile.normal_ppf(p), atol=1e-12)


def test_the_marginal_density_integrates_to_one_and_is_the_samples_histogram(rng):
    """The latent histograms' curve: each axis's density integrates to 1 and, binned, matches the
    fraction of draws per bin within 4 binomial standard errors."""
    means, logvars = np.array([[-2.0, 0.5], [1.0, 3.0]]), np.array([[0.0, -1.0], [0.5, 0.0]])
    t = np.linspace(-12, 14, 5201)                               # step 0.005
    density = mixture_marginal_density(t, means, logvars)        # (G, 2)
    np.testing.assert_allclose(density.sum(0) * (t[1] - t[0]), 1.0, atol=1e-9)  # smooth, ~0 at both ends
    n = 200_000
    z = MixtureOfGaussians(2, 2).to(np.float64)
    z.means.data[...], z.logvars.data[...] = means, logvars
    draws = z.sample(n, np.random.default_rng(6))
    edges = np.linspace(-3, 3, 13)
    for d in range(2):
        counts = np.histogram(draws[:, d], edges)[0] / n         # (12,)
        inside = (t[:, None] >= edges[:-1]) & (t[:, None] < edges[1:])  # (G, 12)
        mass = (density[:, d, None] * inside).sum(0) * (t[1] - t[0])  # (12,) Riemann sums
        se = np.sqrt(mass * (1 - mass) / n)
        assert np.all(np.abs(counts - mass) < 4 * se + 2e-3 * mass), d   # 2e-3: the sums' step error


def test_vamp_samples_and_quantiles_need_the_encoder_s_components():
    """A fresh VampPrior has no components until the VAE encodes; model.sample makes them."""
    model = tiny("vamp")
    with pytest.raises(RuntimeError, match="no components yet"):
        model.prior.sample(2, np.random.default_rng(0))
    assert model.sample(5).shape == (5,) + SHAPE
    assert model.prior.quantile(np.array([0.5])).shape == (1, L)
