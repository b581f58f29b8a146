"""backward_params and model.backward(input_grad=False): the same parameter gradients, no dx.

Training never needs the gradient for the data, so the first layer skips it; these
tests hold the shortcut to exactly the gradients the full backward gives.
"""
import numpy as np
import pytest

import scratchvae as sv


def _grads(module):
    return {name: p.grad.copy() for name, p in module.named_parameters()}


def _both_ways(module, x, dout):
    """Parameter gradients from backward and from backward_params, and what each returned."""
    module.zero_grad()
    module.forward(x)
    dx = module.backward(dout)
    full = _grads(module)
    module.zero_grad()
    module.forward(x)
    returned = module.backward_params(dout)
    return full, _grads(module), dx, returned


# The layers with a backward_params of their own. The others (ConvTranspose2d, BatchNorm, ...)
# inherit Module's, which is backward with dx dropped: comparing it with backward would
# compare backward with itself (test_every_override_is_listed_here keeps this list whole).
LAYERS = [
    ("linear", lambda: sv.Linear(6, 4), (3, 6)),
    ("conv", lambda: sv.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 7, 7)),
    ("conv_no_bias", lambda: sv.Conv2d(2, 3, 2, bias=False), (2, 2, 5, 5)),
    ("mlp_stack", lambda: sv.Sequential(sv.Flatten(), sv.Linear(12, 5), sv.ReLU(), sv.Linear(5, 2)), (3, 3, 2, 2)),
    ("conv_stack", lambda: sv.Sequential(sv.Conv2d(1, 2, 3, padding=1), sv.ReLU(), sv.ConvTranspose2d(2, 2, 3),
                                         sv.BatchNorm2d(2)), (2, 1, 4, 4)),
]


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_every_override_is_listed_here():
    """A layer that gets its own backward_params must get a case in LAYERS."""
    overriding = {cls.__name__ for cls in _all_subclasses(sv.Module)
                  if "backward_params" in vars(cls) and cls.__module__.startswith("scratchvae.nn")}
    covered = {type(make()).__name__ for _, make, _ in LAYERS}
    assert overriding == {"Linear", "Conv2d", "Sequential"}
    assert overriding <= covered


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[entry[0] for entry in LAYERS])
def test_backward_params_gives_backwards_parameter_gradients(name, make, shape):
    sv.manual_seed(0)
    layer = make().to(np.float64)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(layer.forward(x).shape)
    full, params_only, dx, returned = _both_ways(layer, x, dout)
    assert returned is None
    assert dx.shape == x.shape
    assert set(full) == set(params_only) and full
    for key in full:
        assert np.any(full[key] != 0), key  # a gradient that is all zeros would compare equal to anything
        np.testing.assert_allclose(params_only[key], full[key], rtol=1e-12, atol=0, err_msg=key)


class _Spy(sv.Module):
    """A parameter-free layer that records which backward ran."""

    def __init__(self, calls):
        self.calls = calls

    def forward(self, x):
        return x

    def backward(self, dout):
        self.calls.append("backward")
        return dout


def test_sequential_skips_the_layers_in_front_of_its_first_parameter():
    calls = []
    seq = sv.Sequential(_Spy(calls), sv.Linear(3, 2), _Spy(calls))
    seq.forward(np.ones((2, 3), np.float32))
    seq.backward_params(np.ones((2, 2), np.float32))
    assert calls == ["backward"]  # only the layer after Linear ran
    assert np.all(seq[1].weight.grad == 2.0)  # dweight = dy.T @ x = sum over the 2 rows of 1 * 1


def test_sequential_without_parameters_does_nothing():
    calls = []
    seq = sv.Sequential(_Spy(calls), _Spy(calls))
    seq.forward(np.ones((2, 3)))
    assert seq.backward_params(np.ones((2, 3))) is None
    assert calls == []


@pytest.mark.parametrize("arch", ["mlp", "conv", "keras"])
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_model_backward_without_input_grad_matches(arch, kind):
    sv.manual_seed(0)
    model = sv.build_model(arch, kind=kind).to(np.float64)
    rng = np.random.default_rng(0)
    x = (rng.random((3,) + sv.models.ARCHITECTURES[arch][1]) < 0.3).astype(np.float64)
    eps = rng.standard_normal((3, model.latent_dim)) if kind == "vae" else None

    model.zero_grad()
    model.loss(x, eps=eps)
    dx = model.backward()
    full = _grads(model)
    model.zero_grad()
    model.loss(x, eps=eps)
    assert model.backward(input_grad=False) is None
    assert dx.shape == x.shape
    for key, g in _grads(model).items():
        np.testing.assert_allclose(g, full[key], rtol=1e-12, atol=0, err_msg=key)


def test_first_layers_skip_the_input_products(monkeypatch):
    """Linear and Conv2d override backward_params: no dx product, no col2im."""
    import scratchvae.nn.conv as conv_module

    def refuse(what):
        def call(*args, **kwargs):
            raise AssertionError(f"backward_params ran {what}")
        return call

    conv = sv.Conv2d(1, 2, 3)
    conv.forward(np.ones((1, 1, 4, 4), np.float32))
    monkeypatch.setattr(conv_module, "col2im", refuse("col2im"))
    monkeypatch.setattr(conv_module, "scratch", refuse("the dcols product"))  # dcols is its only scratch array
    conv.backward_params(np.ones((1, 2, 2, 2), np.float32))
    assert np.all(conv.bias.grad == 4.0)                         # it did run: dbias sums the 2x2 ones

    linear = sv.Linear(3, 2)
    linear.forward(np.ones((2, 3), np.float32))
    linear.weight.data = None  # dx = dy @ weight would raise; dweight and dbias do not read it
    linear.backward_params(np.ones((2, 2), np.float32))
    assert np.all(linear.weight.grad == 2.0)


def test_backward_params_passes_a_finite_difference_check():
    """The parameter gradients of the no-dx path against float64 central differences."""
    sv.manual_seed(0)
    seq = sv.Sequential(sv.Conv2d(1, 2, 3, stride=2, padding=1), sv.ReLU(), sv.Flatten(), sv.Linear(8, 3))
    seq.to(np.float64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 4, 4))
    r = rng.standard_normal((2, 3))
    seq.zero_grad()
    seq.forward(x)
    assert seq.backward_params(r) is None
    wrt = {name: (p.data, p.grad.copy()) for name, p in seq.named_parameters()}
    report = sv.gradcheck(lambda: float(np.sum(seq.forward(x) * r)), wrt)
    assert set(report.errors) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    assert max(report.errors.values()) < 1e-8, report.errors


def test_first_with_parameters():
    assert sv.Sequential(sv.Flatten(), sv.Linear(2, 2), sv.ReLU()).first_with_parameters() == 1
    assert sv.Sequential(sv.Flatten(), sv.ReLU()).first_with_parameters() == 2
