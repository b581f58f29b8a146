"""The log-standard-deviation posterior: gradients, and what its second half means."""
import numpy as np
import pytest

import scratchvae as sv
from scratchvae.gradcheck import check_model
from scratchvae.models import mlp_decoder, mlp_encoder


def tiny(posterior: str, beta: float = 1.0) -> sv.VAE:
    shape = (1, 3, 3)
    return sv.VAE(mlp_encoder(shape, 5, 6), mlp_decoder(3, 5, shape, False), 3, "bce", beta,
                  posterior=posterior)


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_logstd_vae_passes_the_gradient_check(beta, rng):
    """Checks [LOGSTD-2] (docs/derivations): da = 2 dlogvar through the whole model."""
    model = tiny("logstd", beta)
    report = check_model(model, rng.random((4, 1, 3, 3)), rng.standard_normal((4, 3)))
    assert report.ok, f"\n{report}"


def test_the_second_half_is_the_log_of_the_spread_of_z(rng):
    """Checks [LOGSTD-1]: with logstd, z - mu has std exp(a); with logvar, exp(a / 2)."""
    for posterior, std_of in (("logstd", lambda a: np.exp(a)), ("logvar", lambda a: np.exp(a / 2))):
        sv.manual_seed(0)
        model = tiny(posterior).to(np.float64)
        x = np.repeat(rng.random((1, 1, 3, 3)), 20000, axis=0)   # one image, many draws
        a = model.encoder.forward(x)[0, 3:]                      # the encoder's second half, (L,)
        mu, logvar = model.encode(x)
        z = model.posterior.forward(mu, logvar, rng=np.random.default_rng(1))
        # 20000 draws: the sample std has relative standard error 1/sqrt(2 * 20000) = 0.5%
        np.testing.assert_allclose((z - mu).std(axis=0), std_of(a), rtol=0.02)


def test_the_kl_of_a_logstd_posterior_equals_monte_carlo():
    """KL(N(mu, exp(a)^2) || N(0, 1)) in closed form against E_q[log q(z) - log p(z)]."""
    model = tiny("logstd").to(np.float64)
    mu, a = np.array([[0.3, -1.0, 0.0]]), np.array([[-0.5, 0.2, 0.0]])
    kl = model.kl.forward(mu, 2 * a)                             # what VAE.loss computes at logvar = 2a
    eps = np.random.default_rng(0).standard_normal((200000, 3))
    z = mu + np.exp(a) * eps
    log_q = -0.5 * eps ** 2 - a - 0.5 * np.log(2 * np.pi)
    log_p = -0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)
    mc = (log_q - log_p).sum(axis=1)
    # 200000 draws: the Monte-Carlo mean's standard error is std / sqrt(n); 4 of them
    assert abs(mc.mean() - kl) < 4 * mc.std() / np.sqrt(len(mc))


def test_an_unknown_posterior_is_refused():
    with pytest.raises(ValueError, match="posterior must be one of logvar, logstd"):
        tiny("std")
