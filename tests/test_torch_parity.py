"""Whole models against PyTorch with the same weights and noise (skipped when torch is absent)."""
import numpy as np
import pytest

import scratchvae as sv

torch = pytest.importorskip("torch")
from torch_twin import TorchVAE, assert_matches_twin, torch_layer  # noqa: E402  (tests/torch_twin.py)


@pytest.mark.parametrize("arch", ["mlp", "conv", "keras"])
def test_vae_loss_and_gradients_match_torch(arch):
    sv.manual_seed(0)
    model = sv.build_model(arch).to(np.float64)
    shape = sv.models.ARCHITECTURES[arch][1]
    rng = np.random.default_rng(0)
    x = (rng.random((4,) + shape) < 0.3).astype(np.float64)
    eps = rng.standard_normal((4, model.latent_dim))
    assert_matches_twin(model, x, eps)


# Checks [IWG-1] .. [IWG-6] against autograd (docs/derivations/iwae_gradient.md).
@pytest.mark.parametrize("arch, k, beta", [("mlp", 5, 1.0), ("conv", 3, 0.5), ("mlp", 1, 1.0)])
def test_the_iwae_bound_and_its_gradients_match_torch(arch, k, beta):
    """The twin writes log q(z|x) from z and lets autograd find every path; scratchvae writes it in
    eps and derives the weighted backward by hand."""
    sv.manual_seed(0)
    model = sv.build_model(arch, objective="iwae", iw_samples=k, beta=beta).to(np.float64)
    shape = sv.models.ARCHITECTURES[arch][1]
    rng = np.random.default_rng(1)
    x = (rng.random((3,) + shape) < 0.3).astype(np.float64)
    assert_matches_twin(model, x, rng.standard_normal((3, k, model.latent_dim)))


# Checks [IWG-5], [MIX-3] .. [MIX-5], [VAMP-3] against autograd: the twin the benchmark times.
@pytest.mark.parametrize("arch, prior, k", [("mlp", "mog", None), ("conv", "vamp", None), ("mlp", "vamp", 4),
                                            ("conv", "mog", 3)])
def test_learned_priors_with_either_objective_match_torch(arch, prior, k):
    sv.manual_seed(0)
    kwargs = {"objective": "iwae", "iw_samples": k} if k else {}
    model = sv.build_model(arch, prior=prior, prior_components=5, **kwargs).to(np.float64)
    shape = sv.models.ARCHITECTURES[arch][1]
    rng = np.random.default_rng(2)
    x = (rng.random((3,) + shape) < 0.3).astype(np.float64)
    assert_matches_twin(model, x, rng.standard_normal((3, *((k,) if k else ()), model.latent_dim)))


def test_faces_model_state_dict_loads_into_torch():
    model = sv.build_model("faces")
    tmodel = TorchVAE(model)  # load_state_dict is strict: every name and shape must match
    assert set(tmodel.state_dict()) == set(model.state_dict())
    assert "encoder.1.running_mean" in model.state_dict()


def test_a_layer_without_a_twin_is_a_clear_error():
    class Swish(sv.nn.Module):
        pass
    with pytest.raises(TypeError, match="no torch twin for Swish: declare its TORCH_NAME"):
        torch_layer(sv.Sequential(sv.Linear(2, 2), Swish()))
