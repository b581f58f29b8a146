"""BatchNorm1d / BatchNorm2d: gradients in both modes, running statistics, state_dict, torch parity."""
import numpy as np
import pytest

from scratchvae.gradcheck import check_module
from scratchvae.nn.batchnorm import BatchNorm1d, BatchNorm2d

# layer, input shape
SHAPES = [
    (BatchNorm1d, (5, 3)),
    (BatchNorm1d, (4, 3, 2)),      # (N, C, L) also reduces over L
    (BatchNorm2d, (3, 2, 3, 4)),
    (BatchNorm2d, (1, 2, 2, 3)),   # batch 1: statistics come from H and W alone
]
IDS = [f"{cls.__name__}{shape}" for cls, shape in SHAPES]


def _layer(cls, C, rng, affine=True):
    layer = cls(C, affine=affine)
    if affine:  # away from ones/zeros, so a missing gamma or beta term shows up
        layer.weight.data[...] = rng.uniform(0.5, 1.5, C)
        layer.bias.data[...] = rng.standard_normal(C)
    return layer


# Checks [BN-3], [BN-5] (docs/derivations).
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("cls, shape", SHAPES, ids=IDS)
def test_gradcheck_train(cls, shape, affine):
    # Not seed 0: check_module draws its R from seed 0, and with R proportional to x the
    # gradient of sum(xhat * R) is ~0 (xhat is blind to per-channel shift and scale).
    rng = np.random.default_rng(10)
    layer = _layer(cls, shape[1], rng, affine)
    report = check_module(layer, 2 + 3 * rng.standard_normal(shape))  # mean 2, std 3: normalising matters
    assert report.ok, "\n" + str(report)


# Checks [BN-3], [BN-4] (docs/derivations).
@pytest.mark.parametrize("cls, shape", SHAPES, ids=IDS)
def test_gradcheck_eval(cls, shape):
    rng = np.random.default_rng(1)
    layer = _layer(cls, shape[1], rng)
    layer.running_mean.data[...] = rng.standard_normal(shape[1])
    layer.running_var.data[...] = rng.uniform(0.5, 2.0, shape[1])
    layer.eval()
    report = check_module(layer, rng.standard_normal(shape))
    assert report.ok, "\n" + str(report)


# Checks [BN-1] (docs/derivations).
def test_train_output_is_normalised():
    x = 5 + 2 * np.random.default_rng(2).standard_normal((8, 3, 4, 4))
    y = BatchNorm2d(3).forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)  # var / (var + eps)


# Checks [BN-2] (docs/derivations).
def test_running_stats_by_hand():
    rng = np.random.default_rng(3)
    bn = BatchNorm2d(2, momentum=0.25)
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(3):
        x = 1 + 4 * rng.standard_normal((4, 2, 3, 3))
        bn.forward(x)
        batch_mean = x.mean(axis=(0, 2, 3))
        batch_var = x.var(axis=(0, 2, 3), ddof=1)  # unbiased, as torch
        mean = 0.75 * mean + 0.25 * batch_mean
        var = 0.75 * var + 0.25 * batch_var
    np.testing.assert_allclose(bn.running_mean.data, mean, rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.data, var, rtol=1e-6)
    assert bn.num_batches_tracked.data == 3
    assert bn.running_mean.data.dtype == np.float32  # updated in place, not replaced by x's dtype


def test_eval_uses_running_stats_and_does_not_update_them():
    rng = np.random.default_rng(4)
    bn = _layer(BatchNorm1d, 3, rng)
    bn.running_mean.data[...] = [1.0, -2.0, 0.5]
    bn.running_var.data[...] = [4.0, 0.25, 1.0]
    bn.eval()
    x = rng.standard_normal((6, 3)).astype(np.float32)
    expected = (x - bn.running_mean.data) / np.sqrt(bn.running_var.data + bn.eps) * bn.weight.data + bn.bias.data
    np.testing.assert_allclose(bn.forward(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bn.running_mean.data, [1.0, -2.0, 0.5])
    assert bn.num_batches_tracked.data == 0


def test_state_dict_names():
    bn = BatchNorm2d(4)
    state = bn.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert state["num_batches_tracked"].dtype == np.int64 and state["num_batches_tracked"].shape == ()
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(BatchNorm1d(4, affine=False).state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]


def test_bad_input():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input of shape \(N, 3, H, W\), got \(2, 4, 5, 5\)"):
        BatchNorm2d(3).forward(np.zeros((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected input of shape \(N, 3\) or \(N, 3, L\)"):
        BatchNorm1d(3).forward(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(3).forward(np.zeros((1, 3)))


# -- PyTorch parity (skipped when torch is absent) -------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls, shape", SHAPES, ids=IDS)
def test_matches_torch(cls, shape, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    ours = _layer(cls, shape[1], rng, affine=True).to(dtype)
    theirs = getattr(torch.nn, cls.__name__)(shape[1], momentum=0.3).to(torch.float64 if dtype == np.float64
                                                                        else torch.float32)
    ours.momentum = 0.3
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ours.state_dict().items()})
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for mode in ("train", "train", "eval"):
        ours.train(mode == "train")
        theirs.train(mode == "train")
        ours.zero_grad()
        theirs.zero_grad()
        x = (1 + 2 * rng.standard_normal(shape)).astype(dtype)
        xt = torch.tensor(x, requires_grad=True)
        out, out_t = ours.forward(x), theirs(xt)
        np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=tol, atol=tol, err_msg=mode)
        dout = rng.standard_normal(shape).astype(dtype)
        dx = ours.backward(dout)
        out_t.backward(torch.from_numpy(dout))
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol, err_msg=mode)
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, getattr(theirs, name).grad.numpy(), rtol=tol, atol=tol,
                                       err_msg=f"{mode} {name}")
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(ours, name).data, getattr(theirs, name).numpy(), rtol=tol,
                                       atol=tol, err_msg=f"{mode} {name}")
        assert ours.num_batches_tracked.data == theirs.num_batches_tracked.item()
