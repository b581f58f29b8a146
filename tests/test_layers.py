"""Dense, activation and shape layers: gradients, shapes, and the Module bookkeeping."""
import numpy as np
import pytest

import scratchvae as sv
from scratchvae.gradcheck import activation_pattern, check_module
from conftest import away_from_zero

LAYERS = {
    "linear": (lambda: sv.Linear(5, 3), (4, 5)),
    "linear_nobias": (lambda: sv.Linear(5, 3, bias=False), (2, 5)),
    "relu": (sv.ReLU, (3, 6)),
    "leaky_relu": (lambda: sv.LeakyReLU(0.2), (3, 6)),
    "sigmoid": (sv.Sigmoid, (3, 6)),
    "tanh": (sv.Tanh, (3, 6)),
    "flatten": (sv.Flatten, (2, 3, 4, 5)),
    "reshape": (lambda: sv.Reshape((2, 3)), (4, 6)),
    "mlp": (lambda: sv.Sequential(sv.Linear(4, 6), sv.Tanh(), sv.Linear(6, 3), sv.Sigmoid()), (5, 4)),
}


# Checks [LIN-2], [LIN-3], [LIN-4], [RELU-1], [LRELU-1], [SIG-2], [TANH-1], [SHAPE-1] (docs/derivations).
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradcheck_float64(name, rng):
    make, shape = LAYERS[name]
    report = check_module(make(), away_from_zero(rng, shape))
    assert report.ok, f"\n{report}"
    assert "input" in report.errors


def test_gradcheck_detects_a_wrong_backward(rng):
    class BadTanh(sv.Tanh):
        def backward(self, dy):
            return dy * (1 - self.cache)  # forgot the square
    assert not check_module(BadTanh(), rng.standard_normal((3, 4))).ok


def test_gradcheck_skips_an_entry_at_a_relu_kink():
    """An input within every step of ReLU's kink: the plain check fails, the kink-aware one
    skips that entry (and only it) and passes on the others."""
    relu = sv.ReLU().to(np.float64)
    x = np.array([[1e-9, 0.5, -0.7, 1.2]])                      # 1e-9 < h / 64: straddled at every step
    r = np.array([[1.0, 2.0, 3.0, 4.0]])
    relu.forward(x)
    dx = relu.backward(r)
    loss = lambda: float(np.sum(relu.forward(x) * r))
    assert not sv.gradcheck(loss, {"input": (x, dx)}).ok        # (0.5 * 1 - 0) / 1: half the slope
    report = sv.gradcheck(loss, {"input": (x, dx)}, pattern=activation_pattern(relu))
    assert report.ok and report.kinks == {"input": 1} and report.checked == {"input": 3}


def test_gradcheck_fails_when_every_entry_sits_at_a_kink():
    relu = sv.ReLU().to(np.float64)
    x = np.array([[1e-9, -1e-9]])
    relu.forward(x)
    dx = relu.backward(np.ones((1, 2)))
    report = sv.gradcheck(lambda: float(relu.forward(x).sum()), {"input": (x, dx)},
                          pattern=activation_pattern(relu))
    assert report.checked == {"input": 0} and not report.ok   # nothing checked is no pass


# Checks [LIN-1] (docs/derivations).
def test_linear_matches_formula_and_shapes(rng):
    layer = sv.Linear(5, 3)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    assert layer.weight.data.dtype == np.float32
    x = rng.standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(layer(x), x @ layer.weight.data.T + layer.bias.data, rtol=1e-6)


def test_linear_init_is_torch_default():
    sv.manual_seed(0)
    layer = sv.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    assert np.abs(layer.weight.data).max() <= bound
    # U(-b, b) has std b / sqrt(3)
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.02 * bound


def test_wrong_shape_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Linear: expected input of shape \(N, 5\), got \(4, 6\)"):
        sv.Linear(5, 3)(np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match="Reshape"):
        sv.Reshape((2, 3))(np.zeros((4, 5)))


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        sv.Linear(2, 2).backward(np.zeros((1, 2)))


def test_gradients_accumulate(rng):
    layer = sv.Linear(4, 3).to(np.float64)
    x, dy = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    layer.forward(x)
    layer.backward(dy)
    once = layer.weight.grad.copy(), layer.bias.grad.copy()
    layer.forward(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, 2 * once[0])
    np.testing.assert_allclose(layer.bias.grad, 2 * once[1])
    layer.zero_grad()
    assert not layer.weight.grad.any()


def test_named_parameters_are_pytorch_style():
    class Net(sv.Module):
        def __init__(self):
            self.encoder = sv.Sequential(sv.Linear(3, 4), sv.ReLU(), sv.Linear(4, 2))
            self.head = sv.Linear(2, 1, bias=False)
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias", "head.weight"]
    assert len(net.parameters()) == 5
    state = net.state_dict()
    state["head.weight"][...] = 7.0
    net.load_state_dict(state)
    assert (net.head.weight.data == 7.0).all()
    with pytest.raises(KeyError, match="missing"):
        net.load_state_dict({})


def test_train_eval_and_dtype_propagate():
    net = sv.Sequential(sv.Linear(2, 2), sv.Sequential(sv.ReLU()))
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.to(np.float64)
    assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())


# Checks [SIG-1] (docs/derivations).
def test_sigmoid_is_stable_for_large_inputs():
    y = sv.Sigmoid()(np.array([[-1000.0, 0.0, 1000.0]]))
    np.testing.assert_allclose(y, [[0.0, 0.5, 1.0]])
    assert np.isfinite(y).all()


# Checks [RELU-1] (docs/derivations).
def test_inplace_relu_overwrites_its_input_and_dy_with_the_same_values(rng):
    x = rng.standard_normal((3, 4, 5, 6))
    x[0, 0, 0, :2] = 0.0                                  # the kink: slope 0 either way
    dy = rng.standard_normal(x.shape)
    plain, inplace = sv.ReLU(), sv.ReLU(inplace=True)
    y_ref, dx_ref = plain.forward(x.copy()), plain.backward(dy.copy())
    x_in, dy_in = x.copy(), dy.copy()
    y = inplace.forward(x_in)
    assert y is x_in
    np.testing.assert_array_equal(y, y_ref)
    dx = inplace.backward(dy_in)
    assert dx is dy_in
    np.testing.assert_array_equal(dx, dx_ref)
    assert repr(inplace) == "ReLU(inplace=True)" and repr(plain) == "ReLU()"


def test_inplace_relu_makes_new_arrays_where_it_cannot_overwrite(rng):
    from scratchvae.kernels import channels_last
    relu = sv.ReLU(inplace=True)
    x = rng.standard_normal((2, 3, 4, 5))
    x.flags.writeable = False
    y = relu.forward(x)                                   # a read-only input (e.g. data) is left alone
    assert not np.shares_memory(y, x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    for dy in (rng.standard_normal(x.shape), channels_last(rng.standard_normal(x.shape))):
        dy_before = dy.copy()
        if dy.strides == y.strides:
            dy.flags.writeable = False                    # read-only dy: new array
        dx = relu.backward(dy)                            # or dy in another layout than y: new array
        assert not np.shares_memory(dx, dy)
        np.testing.assert_array_equal(dy, dy_before)
        np.testing.assert_array_equal(dx, dy_before * (y > 0))


def test_inplace_relu_inside_a_network_passes_gradcheck(rng):
    net = sv.Sequential(sv.Linear(4, 6), sv.ReLU(inplace=True), sv.Linear(6, 3))
    net.to(np.float64)
    x = rng.standard_normal((5, 4))
    assert np.abs(net[0].forward(x)).min() > 1e-3          # no kink within a finite-difference step
    report = check_module(net, x)
    assert report.ok, f"\n{report}"
