"""Whole-model gradient checks (eps held fixed) and model-level behaviour."""
import numpy as np
import pytest

import scratchvae as sv
from scratchvae.gradcheck import check_model
from scratchvae.models import mlp_decoder, mlp_encoder


def tiny(kind: str, loss: str = "bce", beta: float = 1.0, latent: int = 3):
    shape = (1, 3, 3)
    sigmoid = not sv.make_loss(loss).takes_logits
    enc = mlp_encoder(shape, 5, 2 * latent if kind == "vae" else latent)
    dec = mlp_decoder(latent, 5, shape, sigmoid)
    if kind == "vae":
        return sv.VAE(enc, dec, latent, loss, beta)
    return sv.Autoencoder(enc, dec, latent, loss)


@pytest.mark.parametrize("loss", ["bce", "bce-prob", "mse", "rmse"])
@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_vae_gradcheck_all_parameters_and_input(loss, beta, rng):
    model = tiny("vae", loss, beta)
    x = rng.random((4, 1, 3, 3))
    eps = rng.standard_normal((4, 3))
    report = check_model(model, x, eps)
    assert report.ok, f"\n{report}"
    assert set(report.errors) == {"input"} | {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_autoencoder_gradcheck(loss, rng):
    report = check_model(tiny("ae", loss), rng.random((4, 1, 3, 3)))
    assert report.ok, f"\n{report}"


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_model_backward_dloss_gives_the_gradients_of_dloss_times_loss(kind, rng):
    model = tiny(kind, beta=2.0).to(np.float64) if kind == "vae" else tiny(kind).to(np.float64)
    x, eps = rng.random((4, 1, 3, 3)), rng.standard_normal((4, 3))
    grads = []
    for dloss in (1.0, 0.25):
        model.zero_grad()
        model.loss(x, eps=eps if kind == "vae" else None)
        dx = model.backward(dloss=dloss)
        grads.append([dx] + [p.grad.copy() for p in model.parameters()])
    for g, g4 in zip(*grads):
        assert np.abs(g).max() > 0
        np.testing.assert_allclose(g4, 0.25 * g, rtol=1e-12)


def test_vae_loss_is_recon_plus_beta_kl(rng):
    model = tiny("vae", beta=3.0).to(np.float64)
    x, eps = rng.random((4, 1, 3, 3)), rng.standard_normal((4, 3))
    losses = model.loss(x, eps=eps)
    assert losses.total == pytest.approx(losses.recon + 3.0 * losses.kl)
    assert losses.kl > 0


def test_fixed_eps_makes_the_loss_deterministic(rng):
    model = tiny("vae")
    x, eps = rng.random((4, 1, 3, 3)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    assert model.loss(x, eps=eps) == model.loss(x, eps=eps)
    assert model.loss(x) != model.loss(x)  # fresh noise each call otherwise


@pytest.mark.parametrize("arch", ["mlp", "conv", "keras", "faces"])
def test_build_model_shapes(arch):
    model = sv.build_model(arch)
    _, shape, latent = sv.models.ARCHITECTURES[arch]
    x = np.random.default_rng(0).random((2,) + shape).astype(np.float32)
    model.eval()
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(3).shape == (3,) + shape
    assert model.latent_dim == latent


def test_mlp_vae_parameter_names_match_torch_layout():
    names = dict((n, p.shape) for n, p in sv.build_model("mlp").named_parameters())
    assert names == {"encoder.1.weight": (400, 784), "encoder.1.bias": (400,),
                     "encoder.3.weight": (40, 400), "encoder.3.bias": (40,),
                     "decoder.0.weight": (400, 20), "decoder.0.bias": (400,),
                     "decoder.2.weight": (784, 400), "decoder.2.bias": (784,)}


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        sv.build_model("resnet")


def test_sampled_gradcheck_on_a_full_size_model():
    """max_entries checks a random subset, so the real 784-400-20 model is checkable in seconds."""
    model = sv.build_model("mlp", latent_dim=4)
    rng = np.random.default_rng(0)
    # a loss of ~500 nats needs a larger step than a tiny layer (see gradcheck's docstring)
    report = check_model(model, rng.random((2, 1, 28, 28)), rng.standard_normal((2, 4)), max_entries=20, h=1e-4)
    assert report.ok, f"\n{report}"
    assert len(report.errors) == 1 + len(model.parameters())


def test_latent_dim_must_be_positive():
    with pytest.raises(ValueError, match="latent_dim must be at least 1, got 0"):
        sv.build_model("mlp", latent_dim=0)


# The finite-difference step per model. Rounding puts an error of ~1e-16 * |loss| / h on each
# difference quotient, and the losses are hundreds (28x28) to thousands (64x64) of nats, so a
# large h keeps it small against the gradient; the kink check (gradcheck's docstring) keeps a
# large h from straddling a ReLU's kink, and truncation (h**2) is still far below 1e-6.
# Measured over 4 seeds (weights and data): max rel. error 0.5-3.7e-7 at these steps;
# conv's input reached 9e-7 at h = 1e-4, and faces (BatchNorm on batch statistics: every
# weight moves every later unit, so more retries at smaller steps) 1.0e-6 at h = 1e-5.
SAMPLED_CHECK_STEP = {"conv": 1e-3, "keras": 1e-3, "faces": 1e-4}


@pytest.mark.parametrize("arch, kind", [("conv", "vae"), ("keras", "vae"), ("faces", "vae"), ("conv", "ae")])
def test_full_size_conv_models_pass_a_sampled_gradcheck(arch, kind):
    """The real conv, keras-io and faces models, every parameter and the input, without torch.

    Random entries of each array (two loss evaluations each; 20 for the slower faces
    model) keep it to seconds. The data are binary, so no pixel is near BCE's clamp.
    faces trains BatchNorm on batch statistics: a batch of 3.
    """
    model = sv.build_model(arch, kind, latent_dim=4)
    _, shape, _ = sv.models.ARCHITECTURES[arch]
    rng = np.random.default_rng(0)
    x = (rng.random((3,) + shape) < 0.3).astype(np.float64)
    eps = rng.standard_normal((3, 4)) if kind == "vae" else None
    report = check_model(model, x, eps, max_entries=20 if arch == "faces" else 40, h=SAMPLED_CHECK_STEP[arch])
    assert report.ok, f"\n{report}"
    assert set(report.errors) == {"input"} | {n for n, _ in model.named_parameters()}
    assert sum(report.checked.values()) > 0.9 * sum(min(40, p.data.size) for p in model.parameters()) / 2


@pytest.mark.parametrize("arch", ["mlp", "conv", "faces"])
def test_trace_returns_each_layers_own_output(arch):
    """Every row's output is what that layer computes from that row's input, even where an
    in-place ReLU came next and overwrote the array the forward pass handed on."""
    import copy
    model = sv.build_model(arch, latent_dim=3)
    model.eval()
    _, shape, _ = sv.models.ARCHITECTURES[arch]
    rng = np.random.default_rng(0)
    x = rng.random((2,) + shape).astype(np.float32)
    z = rng.standard_normal((2, 3)).astype(np.float32)
    rows = model.trace(x, z)
    assert len(rows) == len(model.encoder) + len(model.decoder)
    for name, layer, inp, out in rows:
        np.testing.assert_array_equal(copy.deepcopy(layer).forward(inp.copy()), out, err_msg=name)
    linear = [out for name, layer, _, out in rows if isinstance(layer, sv.Linear) and name == "encoder.1"
              or (arch != "mlp" and name == "encoder.0")]
    assert linear and (linear[0] < 0).any()        # before its ReLU: negative values are still there
