"""The importance-weighted objective (objective/iwae.py): its gradient, checked by finite differences
and by PyTorch's autograd, and its meaning: K = 1 is the ELBO, the bound never passes log p(x) on a
model whose likelihood has a closed form, and it tightens as K grows."""
import math

import numpy as np
import pytest

import scratchvae as sv
from scratchvae.distributions import MonteCarloKL
from scratchvae.gradcheck import check_model
from scratchvae.models.mlp import mlp_decoder, mlp_encoder
from scratchvae.nn.linear import Linear
from scratchvae.objective import IWAE

SHAPE = (1, 3, 3)


def tiny_vae(k: int, beta: float = 1.0, loss: str = "bce", latent: int = 2) -> sv.VAE:
    sv.manual_seed(0)
    vae = sv.VAE(mlp_encoder(SHAPE, 5, 2 * latent), mlp_decoder(latent, 5, SHAPE, False), latent, loss=loss,
                 beta=beta, objective="iwae", iw_samples=k, rng=np.random.default_rng(0))
    return vae.to(np.float64)


# Checks [IWG-1] .. [IWG-6] (docs/derivations/iwae_gradient.md).
@pytest.mark.parametrize("k, beta", [(1, 1.0), (4, 1.0), (3, 0.6)])
def test_the_whole_vae_on_the_iwae_bound_passes_the_gradient_check(k, beta, rng):
    vae = tiny_vae(k, beta)
    x = rng.uniform(0, 1, (3, *SHAPE))
    report = check_model(vae, x, eps=rng.standard_normal((3, k, 2)))
    assert report.ok, f"\n{report}"


def test_the_chunked_decoder_gives_the_one_pass_gradients(rng):
    """Above max_rows the decoder runs in chunks, twice: the same loss and gradients (to rounding:
    the per-chunk products sum in another order), however the rows are cut."""
    x, eps = rng.uniform(0, 1, (5, *SHAPE)), rng.standard_normal((5, 3, 2))
    results = []
    for max_rows in (10_000, 3, 7):
        vae = tiny_vae(3)
        vae.objective.max_rows = max_rows
        loss = vae.loss(x, eps=eps)
        dx = vae.backward()
        results.append((loss, dx, {n: p.grad.copy() for n, p in vae.named_parameters()}))
    assert vae.objective.cache.chunked
    (loss0, dx0, g0), *others = results
    for loss, dx, grads in others:
        assert loss.as_dict() == pytest.approx(loss0.as_dict(), rel=1e-13)
        np.testing.assert_allclose(dx, dx0, rtol=1e-11, atol=1e-15)
        for name, g in grads.items():
            np.testing.assert_allclose(g, g0[name], rtol=1e-11, atol=1e-15, err_msg=name)


def test_a_per_image_upstream_gradient_weights_each_image(rng):
    """backward(dloss=(N,)) is the gradient of sum_n dloss_n loss_n (DataParallel passes a float; the
    zoo and the tour weight images)."""
    vae = tiny_vae(3)
    x, eps, w = rng.uniform(0, 1, (4, *SHAPE)), rng.standard_normal((4, 3, 2)), rng.uniform(0.5, 2, 4)

    def weighted() -> float:
        return float(np.sum(w * vae.objective.per_image(vae, x, x, eps=eps)["loss"]))
    vae.zero_grad()
    vae.loss(x, eps=eps)
    vae.backward(input_grad=False, dloss=w)
    from scratchvae.gradcheck import gradcheck
    report = gradcheck(weighted, {n: (p.data, p.grad.copy()) for n, p in vae.named_parameters()})
    assert report.ok, f"\n{report}"


# Checks [IWG-2] at K = 1 (docs/derivations/iwae_gradient.md).
def test_k_1_is_the_single_sample_elbo_exactly(rng):
    """Same weights, same eps: the bound at K = 1 is recon + beta * (log q - log p), the ELBO with the
    single-sample KL [KL-4], and so are its gradients; the closed-form ELBO agrees on average."""
    x, eps = rng.uniform(0, 1, (4, *SHAPE)), rng.standard_normal((4, 2))
    iw = tiny_vae(1, beta=0.8)
    elbo = tiny_vae(1, beta=0.8)
    elbo.objective, elbo.kl = sv.objective.ELBO(), MonteCarloKL(elbo.posterior, elbo.prior)
    a, b = iw.loss(x, eps=eps), elbo.loss(x, eps=eps)
    assert a.total == pytest.approx(b.total, rel=1e-14) and a.recon == pytest.approx(b.recon, rel=1e-14)
    assert a.kl == pytest.approx(b.kl, rel=1e-13, abs=1e-14)
    np.testing.assert_allclose(iw.backward(), elbo.backward(), rtol=1e-12, atol=1e-15)
    for (name, p), q in zip(iw.named_parameters(), elbo.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-12, atol=1e-15, err_msg=name)
    # on the same eps the two differ by the single-sample KL less the closed form: 0 on average
    closed = tiny_vae(1, beta=0.8)
    closed.objective = sv.objective.ELBO()
    draws = np.random.default_rng(5).standard_normal((4000, 4, 2))
    diffs = np.array([iw.loss(x, eps=e).total - closed.loss(x, eps=e).total for e in draws])
    assert abs(diffs.mean()) < 4 * diffs.std() / math.sqrt(len(diffs)) and diffs.std() > 0.01


def linear_gaussian_vae(k: int) -> sv.VAE:
    """p(z) = N(0, I), p(x|z) = N(W z + b, I / 2) (the mse loss is that density's negative log
    less D/2 log pi): so p(x) = N(b, W W^T + I / 2) in closed form. The encoder is linear, and not
    the true posterior, so the bound has a gap for K to close."""
    sv.manual_seed(1)
    enc, dec = sv.nn.Sequential(sv.nn.Flatten(), Linear(4, 4)), sv.nn.Sequential(Linear(2, 4), sv.nn.Reshape((1, 2, 2)))
    vae = sv.VAE(enc, dec, 2, loss="mse", objective="iwae", iw_samples=k, rng=np.random.default_rng(0))
    return vae.to(np.float64)


def true_nll(vae: sv.VAE, x: np.ndarray) -> np.ndarray:
    w, b = vae.decoder[0].weight.data, vae.decoder[0].bias.data          # (D, L), (D,)
    cov = w @ w.T + 0.5 * np.eye(4)
    r = x.reshape(len(x), -1) - b
    _, logdet = np.linalg.slogdet(cov)
    return 0.5 * (np.sum(r @ np.linalg.inv(cov) * r, axis=1) + logdet + 4 * math.log(2 * math.pi))


# Checks [IWAE-4] on the training objective (docs/derivations/iwae.md).
def test_the_bound_never_passes_log_px_and_tightens_with_k():
    """On a model with a closed-form likelihood: E[loss] + D/2 log(pi) >= -log p(x) for every K, and
    it falls as K grows. Each mean is over 3000 draws; the margins are 4 standard errors."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 1, 2, 2))
    nll = true_nll(linear_gaussian_vae(1), x).mean()
    const = 0.5 * 4 * math.log(math.pi)
    means = []
    for k in (1, 5, 50):
        vae = linear_gaussian_vae(k)
        draws = np.array([vae.loss(x).total for _ in range(3000)]) + const
        err = draws.std() / math.sqrt(len(draws))
        assert draws.mean() > nll - 4 * err, (k, draws.mean(), nll)
        means.append((draws.mean(), err))
    (m1, e1), (m5, e5), (m50, e50) = means
    assert m1 - m5 > 4 * math.hypot(e1, e5) and m5 - m50 > 4 * math.hypot(e5, e50), means
    assert m50 - nll < 0.5 * (m1 - nll)                     # most of the gap closed by K = 50


def test_terms_are_sample_means_and_the_total_is_never_above_them(rng):
    vae = tiny_vae(6)
    x = rng.uniform(0, 1, (4, *SHAPE))
    losses = vae.loss(x)
    assert losses.names == ("total", "recon", "kl")
    assert losses.total <= losses.recon + losses.kl + 1e-12   # log of a mean >= the mean of logs


def test_bad_sample_counts_and_noise_shapes_are_clear_errors(rng):
    with pytest.raises(ValueError, match="at least 1"):
        IWAE(0)
    with pytest.raises(ValueError, match="needs objective 'iwae'"):
        sv.objective.make_objective("elbo", 5)
    vae = tiny_vae(3)
    with pytest.raises(ValueError, match=r"eps must have shape \(2, 3, 2\)"):
        vae.loss(rng.uniform(0, 1, (2, *SHAPE)), eps=rng.standard_normal((2, 2)))


def test_workers_split_the_images_and_sum_to_the_one_worker_gradient(rng):
    """DataParallel cuts the batch by images, each worker's share with its K samples: the summed
    gradient is the batch's, up to the order of the sums."""
    from scratchvae.parallel import DataParallel
    sv.manual_seed(0)
    model = sv.build_model("conv", latent_dim=3, objective="iwae", iw_samples=4).to(np.float64)
    x, eps = (rng.random((6, 1, 28, 28)) < 0.3).astype(np.float64), rng.standard_normal((6, 4, 3))
    model.zero_grad()
    one = model.loss(x, eps=eps)
    model.backward(input_grad=False)
    want = {n: p.grad.copy() for n, p in model.named_parameters()}
    parallel = DataParallel(model, workers=2, images_per_pass=2)
    parallel.zero_grad()
    two = parallel.loss(x, eps=eps)
    parallel.backward()
    assert two.total == pytest.approx(one.total, rel=1e-13)
    for name, p in zip(want, parallel.parameters()):
        np.testing.assert_allclose(p.grad, want[name], rtol=1e-10, atol=1e-14, err_msg=name)


def test_a_worker_cuts_its_passes_by_the_decoder_rows_of_k_samples():
    from scratchvae.parallel import layer_output_bytes
    x1 = np.zeros((1, 1, 28, 28), np.float32)
    sv.manual_seed(0)
    one, five = sv.build_model("conv"), sv.build_model("conv", objective="iwae", iw_samples=5)
    decoder = sum(out.nbytes for name, *_, out in one.trace(x1, np.zeros((1, 32), np.float32))
                  if name.startswith("decoder"))
    assert layer_output_bytes(five, x1) - layer_output_bytes(one, x1) == 4 * decoder


@pytest.mark.parametrize("argv, message", [
    (["--iw-samples", "5"], "--iw-samples 5 needs --objective iwae"),
    (["--objective", "iwae", "--kind", "ae"], "--objective iwae trains a VAE"),
    (["--objective", "iwae", "--model", "faces"], "BatchNorm2d, whose batch statistics would couple"),
    (["--objective", "iwae", "--iw-samples", "0"], "--iw-samples: must be a positive integer, got 0"),
    (["--objective", "nope"], "invalid choice: 'nope'"),
])
def test_bad_objective_flags_are_one_line_errors(argv, message, capsys, tmp_path):
    from scratchvae.cli import main
    try:
        code = main(["train", "--out", str(tmp_path / "r"), "--epochs", "1", "--train-size", "64", "--no-progress",
                     *argv])
    except SystemExit as exit_:           # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err.splitlines()[-1] and "Traceback" not in err, err


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_the_bound_with_a_learned_prior_passes_the_gradient_check(prior, rng):
    """The prior's term [IWG-5] reaches a mixture's means and logvars, and a VampPrior's pseudo-inputs
    through the encoder, with every sample's weight g."""
    sv.manual_seed(0)
    vae = sv.build_model("mlp", latent_dim=2, image_shape=SHAPE, prior=prior, prior_components=3,
                         objective="iwae", iw_samples=3, rng=np.random.default_rng(0)).to(np.float64)
    x = rng.uniform(0, 1, (3, *SHAPE))
    report = check_model(vae, x, eps=rng.standard_normal((3, 3, 2)))
    assert report.ok and any(name.startswith("prior.") for name in report.errors), f"\n{report}"
