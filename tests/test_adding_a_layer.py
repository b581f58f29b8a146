"""docs/adding-a-layer.md holds: every layer declares what the tools read, and a toy layer defined in
this file alone, registered with one line, is picked up by ``scratchvae gradcheck --layer``, the
tour's layer step, the benchmark's matrix-product count and the torch twin, with no edit elsewhere.
"""
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import scratchvae as sv
from scratchvae import tour
from scratchvae.cli import main
from scratchvae.gradcheck import check_module
from scratchvae.nn import Module, Parameter
from scratchvae.nn.module import check_shape, no_products
from scratchvae.nn.registry import LAYERS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from gemms import layer_gemms, step_gemms  # noqa: E402  (benchmarks/gemms.py)

ID = re.compile(r"\[([A-Z]+-\d+)\]")


class PReLU(Module):
    """y = x if x > 0 else a * x, one learned slope a per feature (torch.nn.PReLU on (N, C) input).

    shapes:   x (N, C), weight (C,) the slopes a, y (N, C)
    backward: dx      = dy if x > 0 else a * dy                (N, C)   [LRELU-1], with a learned
              dweight = (dy * min(x, 0)).sum(axis=0)           (C,)
    A layer of the package would define an id for dweight on its derivation page and cite it here;
    a layer defined in a test cannot (tests/test_derivations.py: scratchvae/ must cite every id).
    """

    # -- what the tools read (docs/adding-a-layer.md) ----------------------------------------------
    NAME, TORCH_NAME = "prelu", "PReLU"
    FORMULAS = {"x": "dx = dy * (1 if x > 0 else a)  [LRELU-1]", "weight": "da = (dy * min(x, 0)).sum(axis=0)"}
    EXAMPLE, EXAMPLE_HELP = {"in_features": 4}, "4 slopes on (3, 4)"
    products = no_products  # elementwise: no matrix product

    @classmethod
    def example(cls, rng, shape=None, **given):
        C = cls.example_settings(given, shape, in_features=-1)["in_features"]
        return cls(C), rng.standard_normal(shape or (3, C))

    def torch_kwargs(self):
        return {"num_parameters": self.in_features}

    def units_on(self):
        return self._require_cache() > 0                        # the kink at 0

    # -- the layer ------------------------------------------------------------------------------------
    def __init__(self, in_features: int, init: float = 0.25) -> None:
        self.in_features = in_features
        self.weight = Parameter(np.full(in_features, init))     # torch.nn.PReLU's init
        self.cache = None                                       # x

    def forward(self, x):
        check_shape(self, x, (None, self.in_features))
        self.cache = x
        return np.where(x > 0, x, self.weight.data * x)         # (N, C)

    def backward(self, dy):
        x = self._require_cache()
        self.weight.grad += (dy * np.minimum(x, 0)).sum(axis=0)  # (C,)
        return np.where(x > 0, dy, self.weight.data * dy)       # (N, C)


class FlippedSlopePReLU(PReLU):
    """The toy with its dweight's sign flipped: a check that runs the toy's backward must fail it."""

    def backward(self, dy):
        before = self.weight.grad.copy()
        dx = super().backward(dy)
        self.weight.grad[...] = 2 * before - self.weight.grad
        return dx


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(LAYERS, PReLU.NAME, PReLU)             # the one registration line


def _cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


# -- every layer of the package declares what the tools read ---------------------------------------

def test_every_layer_class_of_nn_is_registered_by_its_name():
    classes = {getattr(sv.nn, n) for n in sv.nn.__all__}
    layers = {c for c in classes if isinstance(c, type) and issubclass(c, Module)} - {Module, sv.Sequential}
    assert layers == set(LAYERS.values())
    assert all(cls.NAME == name for name, cls in LAYERS.items())


@pytest.mark.parametrize("name", list(LAYERS))
def test_each_layer_declares_what_the_tools_read(name):
    cls = LAYERS[name]
    layer, x = cls.example(np.random.default_rng(0))
    assert set(cls.FORMULAS) == {"x"} | {n for n, _ in layer.named_parameters()}
    assert all(ID.search(f) for f in cls.FORMULAS.values()), cls.FORMULAS  # ids: tests/test_derivations.py
    assert cls.EXAMPLE_HELP and cls.TORCH_NAME
    out = layer.forward(x)
    assert layer.products(x.shape, out.shape) is not None
    assert layer.units_on() is None or layer.units_on().shape == x.shape


# every layer on its example, and again with each setting away from both its and torch's defaults
# (a torch_kwargs() that dropped a setting would then build a twin that computes something else)
TWIN_CASES = [(name, {}, {}) for name in LAYERS] + [
    ("linear", {"bias": False}, {}),
    ("conv", {"kernel_size": 2, "stride": 2, "padding": 1, "dilation": 2, "bias": False}, {}),
    ("conv_transpose", {"stride": 2, "padding": 1, "output_padding": 1, "dilation": 2, "bias": False}, {}),
    ("leaky_relu", {"negative_slope": -0.3}, {}),
    ("reshape", {"reshape_to": (3, 2)}, {}),
    ("batchnorm1d", {}, {"eps": 0.1, "momentum": 0.3}),
    ("batchnorm2d", {}, {"eps": 0.1, "momentum": 0.3}),
]


@pytest.mark.parametrize("name, settings, attrs", TWIN_CASES, ids=[f"{n}-{s}{a}" for n, s, a in TWIN_CASES])
def test_each_layer_matches_its_declared_torch_twin(name, settings, attrs):
    """The twin built from TORCH_NAME and torch_kwargs() computes what the layer computes: output,
    dx, parameter gradients and (BatchNorm) the updated running statistics. float64 on both sides:
    sums of at most a few dozen terms agree to ~1e-15, so rtol 1e-10 passes any summation order,
    while a wrong setting (stride, slope, eps, momentum, a dropped bias) moves values by >= 1e-3."""
    torch = pytest.importorskip("torch")
    from torch_twin import torch_layer
    layer, x = LAYERS[name].example(np.random.default_rng(0), **settings)
    for key, value in attrs.items():
        setattr(layer, key, value)
    layer.to(np.float64)
    twin = torch_layer(layer).double()
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in layer.state_dict().items()})
    xt = torch.tensor(x, requires_grad=True)
    out, out_t = layer.forward(x.copy()), twin(xt)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx = layer.backward(dout)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    grads = dict(twin.named_parameters())
    for pname, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, grads[pname].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=pname)
    theirs = twin.state_dict()
    for key, value in layer.state_dict().items():
        np.testing.assert_allclose(value, theirs[key].numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


# -- a toy layer, added through the checklist ----------------------------------------------------

def test_the_toy_is_a_layer_its_gradients_right():
    layer, x = PReLU.example(np.random.default_rng(2))
    layer.weight.data[...] = [0.1, 0.3, -0.2, 0.6]             # a slope per feature, so a mix-up shows
    assert check_module(layer, x).ok                          # float64 central differences, rel. error < 1e-6
    assert not check_module(FlippedSlopePReLU(4), x).ok


def test_gradcheck_command_checks_the_toy(capsys, registered):
    code, out, _ = _cli(capsys, "gradcheck", "--layer", "prelu")
    assert code == 0, out
    assert out.startswith("gradcheck: layer PReLU() on input (3, 4)") and out.splitlines()[-1].startswith("PASS")
    assert [line.split()[0] for line in out.splitlines()[2:-1]] == ["input", "weight"]
    code, report = _cli(capsys, "gradcheck", "--layer", "prelu", "--input-shape", "2,5", "--json")[:2]
    report = json.loads(report)
    assert code == 0 and report["input_shape"] == [2, 5]
    assert [r["shape"] for r in report["rows"]] == [[2, 5], [5]]   # --input-shape set in_features
    code, _, err = _cli(capsys, "gradcheck", "--layer", "prelu", "--stride", "2")
    assert code == 2 and err.strip() == ("scratchvae: error: --stride does not apply to --layer prelu; "
                                         "it takes --in-features")
    with pytest.raises(SystemExit):
        main(["gradcheck", "--help"])
    assert "prelu 4 slopes on (3, 4)" in " ".join(capsys.readouterr().out.split())


def test_gradcheck_command_fails_a_wrong_toy(capsys, monkeypatch):
    monkeypatch.setitem(LAYERS, "prelu", FlippedSlopePReLU)
    code, report = _cli(capsys, "gradcheck", "--layer", "prelu", "--json")[:2]
    rows = {r["name"]: r["ok"] for r in json.loads(report)["rows"]}
    assert code == 1 and rows == {"input": True, "weight": False}


def _mlp_with_prelu(model="mlp", seed=0, real=tour.tiny_vae):
    """The tour's tiny mlp VAE with its decoder's ReLU swapped for the toy."""
    vae, x, eps = real(model, seed)
    toy = PReLU(6).to(np.float64)
    toy.weight.data[...] = np.linspace(0.1, 0.6, 6, dtype=np.float32)  # float32 values: TorchVAE loads them so
    vae.decoder.layers[1] = toy
    return vae, x, eps


def test_the_tour_walks_and_checks_the_toy(capsys, monkeypatch):
    monkeypatch.setattr(tour, "tiny_vae", _mlp_with_prelu)
    code, out, _ = _cli(capsys, "tour")
    assert code == 0, out
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if "decoder.1 PReLU" in line)
    assert lines[i + 1].split()[0] == "dx" and lines[i + 1].endswith(PReLU.FORMULAS["x"])
    assert lines[i + 2].split()[:2] == ["dweight", "(6,)"] and lines[i + 2].endswith(PReLU.FORMULAS["weight"])
    assert lines[i + 3].strip().startswith("(min |x| = ")  # units_on(): the tour knows it has a kink
    assert lines[-1].startswith("OK: 12 steps")


def test_the_gemm_count_takes_the_toy():
    """gemms.py refuses a layer that declares no products; the toy declares it runs none, so a
    model with it has exactly the products of the same model with a ReLU there."""
    vae, x, _ = tour.tiny_vae("mlp")
    with_relu = step_gemms(vae, x)
    vae.decoder.layers[1] = PReLU(6).to(np.float64)
    assert step_gemms(vae, x) == with_relu and len(with_relu) == 11
    assert layer_gemms(PReLU(6), (3, 6), (3, 6)) == []


def test_the_torch_twin_takes_the_toy():
    """The whole tiny VAE with the toy in its decoder, against its torch twin (torch.nn.PReLU):
    same loss and the same gradients, float64 (torch_twin.assert_matches_twin, as test_torch_parity.py)."""
    pytest.importorskip("torch")
    from torch_twin import assert_matches_twin
    vae, x, eps = _mlp_with_prelu()                            # the twin's load is strict: decoder.1.weight
    assert_matches_twin(vae, x, eps)
