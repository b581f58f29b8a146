"""One training step: train._step makes the same calls on one worker and on several, and
DataParallel.step's update made inside the reduce gives the weights optimizer.step() gives."""
import numpy as np
import pytest

import scratchvae as sv
from scratchvae._threads import blas_thread_control
from scratchvae.models import ARCHITECTURES
from scratchvae.optim import Optimizer
from scratchvae.parallel import DataParallel
from scratchvae.train import TrainingFault, _step, train_epoch

needs_blas_control = pytest.mark.skipif(blas_thread_control() is None,
                                        reason="NumPy's BLAS is not an OpenBLAS whose threads can be set")

OPTIMIZERS = {
    "adam": lambda params: sv.Adam(params, lr=1e-2),
    "adam-decay": lambda params: sv.Adam(params, lr=1e-2, weight_decay=0.1),
    "sgd-momentum-decay": lambda params: sv.SGD(params, lr=1e-2, momentum=0.9, weight_decay=0.1),
}


def _build(arch: str):
    sv.manual_seed(0)                              # the weights; rng is the VAE's eps generator
    return sv.build_model(arch, rng=np.random.default_rng(0)).to(np.float64)


def _setup(arch: str, workers: int, per_pass: int | None, make_optimizer):
    model = _build(arch)
    return model, DataParallel(model, workers, images_per_pass=per_pass), make_optimizer(model.parameters())


def _batches(arch: str, n: int, steps: int, latent_dim: int):
    rng = np.random.default_rng(1)
    shape = ARCHITECTURES[arch][1]
    return [((rng.random((n,) + shape) < 0.3).astype(np.float64), rng.standard_normal((n, latent_dim)))
            for _ in range(steps)]


def _assert_same_state(model_a, opt_a, model_b, opt_b):
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.grad, a.grad, rtol=1e-10, atol=1e-14 * np.abs(a.grad).max())
    for name in ("m", "v", "velocity"):
        for a, b in zip(getattr(opt_a, name, []), getattr(opt_b, name, [])):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
    assert getattr(opt_a, "t", None) == getattr(opt_b, "t", None)


@needs_blas_control
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("arch,n,workers,per_pass", [
    ("conv", 6, 2, None), ("conv", 7, 3, 2), ("keras", 5, 2, 2), ("mlp", 2, 3, None), ("mlp", 4, 1, None)])
def test_train_step_updates_the_weights_as_step_does(optimizer, arch, n, workers, per_pass):
    model_a, par_a, opt_a = _setup(arch, workers, per_pass, OPTIMIZERS[optimizer])
    model_b, par_b, opt_b = _setup(arch, workers, per_pass, OPTIMIZERS[optimizer])
    for x, eps in _batches(arch, n, 3, model_a.latent_dim):
        model_a.zero_grad()
        expected = par_a.loss_and_backward(x, eps=eps)
        opt_a.step()
        for p in model_b.parameters():
            p.grad[...] = 7.0                      # train_step zeroes the gradients first
        losses = par_b.train_step(x, opt_b, eps=eps)
        np.testing.assert_allclose(losses, expected, rtol=1e-12)
        _assert_same_state(model_a, opt_a, model_b, opt_b)
    start = _build(arch)
    assert all(np.abs(p.data - q.data).max() > 1e-4 for p, q in zip(model_b.parameters(), start.parameters()))


@needs_blas_control
@pytest.mark.parametrize("workers", [1, 2])
def test_a_non_finite_loss_leaves_the_weights_as_they_were(workers):
    model_a, par_a, opt_a = _setup("conv", workers, None, OPTIMIZERS["adam"])
    model_b, par_b, opt_b = _setup("conv", workers, None, OPTIMIZERS["adam"])
    (x, eps), (x2, eps2) = _batches("conv", 4, 2, model_a.latent_dim)
    bad = x.copy()
    bad[1, 0, 3, 3] = np.nan
    before = [p.data.copy() for p in model_b.parameters()]
    losses = par_b.train_step(bad, opt_b, eps=eps)
    assert not np.isfinite(losses.total)
    assert opt_b.t == 0
    for p, b in zip(model_b.parameters(), before):
        np.testing.assert_array_equal(p.data, b)
    # and the next step is as if the bad one had never been
    model_a.zero_grad()
    par_a.loss_and_backward(x2, eps=eps2)
    opt_a.step()
    par_b.train_step(x2, opt_b, eps=eps2)
    _assert_same_state(model_a, opt_a, model_b, opt_b)


class _StepOnly(Optimizer):
    """An optimizer with its own step() and no update(): train_step must call step()."""

    def __init__(self, params):
        super().__init__(params, lr=0.1)
        self.steps = 0

    def step(self):
        self.steps += 1
        for p in self.params:
            p.data -= self.lr * p.grad


@needs_blas_control
@pytest.mark.parametrize("case", ["step-only", "foreign-parameter"])
def test_optimizers_that_cannot_update_in_parts_take_a_whole_step(case):
    model_a, par_a, _ = _setup("conv", 2, None, OPTIMIZERS["adam"])
    model_b, par_b, _ = _setup("conv", 2, None, OPTIMIZERS["adam"])
    (x, eps), = _batches("conv", 4, 1, model_a.latent_dim)
    if case == "step-only":
        opt_a, opt_b = _StepOnly(model_a.parameters()), _StepOnly(model_b.parameters())
    else:  # a parameter the model does not have: its gradient is not summed by the reduce
        extra_a, extra_b = sv.Parameter(np.ones(3)), sv.Parameter(np.ones(3))
        extra_a.grad[...] = extra_b.grad[...] = 0.5
        opt_a, opt_b = sv.Adam(model_a.parameters() + [extra_a]), sv.Adam(model_b.parameters() + [extra_b])
    model_a.zero_grad()
    par_a.loss_and_backward(x, eps=eps)
    opt_a.step()
    par_b.train_step(x, opt_b, eps=eps)
    _assert_same_state(model_a, opt_a, model_b, opt_b)
    if case == "step-only":
        assert opt_b.steps == 1
    else:
        np.testing.assert_array_equal(extra_b.data, extra_a.data)
        assert extra_b.data[0] < 1.0


def test_train_epoch_with_clipping_clips_before_the_update():
    clip = 1e-3                                    # far below the gradient's norm: every step is clipped
    models = [_build("mlp") for _ in range(2)]
    for m in models:
        m.rng = np.random.default_rng(5)           # the same eps draws in both
    x = (np.random.default_rng(1).random((8, 1, 28, 28)) < 0.3).astype(np.float64)
    opt_a, opt_b = sv.SGD(models[0].parameters(), lr=1.0), sv.SGD(models[1].parameters(), lr=1.0)
    before = [p.data.copy() for p in models[0].parameters()]
    train_epoch(models[0], opt_a, x, 8, np.random.default_rng(2), clip=clip, progress=False)
    models[1].zero_grad()
    models[1].loss(x[np.random.default_rng(2).permutation(8)])
    models[1].backward(input_grad=False)
    assert sv.clip_grad_norm(models[1].parameters(), clip) > 100 * clip
    opt_b.step()
    moved = np.sqrt(sum(np.sum((p.data - b) ** 2) for p, b in zip(models[0].parameters(), before)))
    assert moved == pytest.approx(clip, rel=1e-4)  # lr 1 times a gradient of norm clip
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12)


@needs_blas_control
def test_the_workers_update_the_large_parameters_and_the_main_thread_the_small_ones():
    import threading

    from scratchvae.reduce import UPDATE_IN_PARTS_MIN

    class Recording(sv.Adam):
        def update(self, i, k=0, parts=1):
            self.calls.append((i, k, parts, threading.current_thread() is threading.main_thread()))
            super().update(i, k, parts)

    model, par, _ = _setup("conv", 2, None, OPTIMIZERS["adam"])
    opt = Recording(model.parameters())
    opt.calls = []
    (x, eps), = _batches("conv", 4, 1, model.latent_dim)
    par.train_step(x, opt, eps=eps)
    large = {i for i, p in enumerate(opt.params) if p.data.size >= UPDATE_IN_PARTS_MIN}
    assert large and len(large) < len(opt.params)  # the reference model has both kinds
    expected = sorted([(i, k, 2, False) for i in large for k in (0, 1)]
                      + [(i, 0, 1, True) for i in range(len(opt.params)) if i not in large])
    assert sorted(opt.calls) == expected


class _Recording(DataParallel):
    """A DataParallel that logs which of the model's calls it gets, in order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def zero_grad(self):
        self.calls.append("zero_grad")
        super().zero_grad()

    def loss(self, x, target=None, eps=None):
        self.calls.append("loss")
        return super().loss(x, target, eps)

    def backward(self, input_grad=False):
        self.calls.append("backward")
        return super().backward(input_grad)

    def parameters(self):
        self.calls.append("parameters")
        return super().parameters()

    def step(self, optimizer, check=lambda: None):
        self.calls.append("step")
        super().step(optimizer, check)


class _RecordingAdam(sv.Adam):
    """Logs step() and every update's number of parts (2: a slice, made by a worker inside the sum)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def step(self):
        self.calls.append("step")
        super().step()

    def update(self, i, k=0, parts=1):
        self.calls.append(("update", parts))
        super().update(i, k, parts)


def _ae_step(workers: int, clip: float | None, x: np.ndarray):
    """train._step of a float64 conv autoencoder (no eps draws: one worker and two see the same loss)."""
    sv.manual_seed(0)
    model = sv.build_model("conv", "ae").to(np.float64)
    par, opt = _Recording(model, workers), _RecordingAdam(model.parameters(), lr=1e-2)
    losses = _step(model, opt, par, x, np.random.default_rng(0), "none", clip, "epoch 1, step 0")
    return model, par, opt, losses


@needs_blas_control
@pytest.mark.parametrize("clip", [None, 1e-3])
def test_one_worker_and_several_take_the_step_through_the_same_lines(clip):
    """zero_grad, loss, backward, (clip: parameters() read whole), step: the same calls whatever
    the workers; only where Adam's update is made differs (inside the sum: two workers, no clip)."""
    x = _batches("conv", 6, 1, 1)[0][0]
    one, two = _ae_step(1, clip, x), _ae_step(2, clip, x)
    expected = ["zero_grad", "loss", "backward"] + (["parameters"] if clip else []) + ["step"]
    assert one[1].calls == two[1].calls == expected
    assert one[2].calls[0] == "step" and ("update", 2) not in one[2].calls
    if clip:
        assert two[2].calls[0] == "step" and ("update", 2) not in two[2].calls
    else:
        assert "step" not in two[2].calls and ("update", 2) in two[2].calls
    np.testing.assert_allclose(two[3], one[3], rtol=1e-12)
    # The same gradient, summed in another order: float64 rounding, ~7e-16 of the largest entry
    # measured. The first Adam step moves each weight by lr * g / (|g| + eps), which for |g| near
    # eps turns that rounding into up to lr * rounding / (4 eps): 9.5e-14 measured, bound 1e-11.
    for a, b, ma, mb in zip(one[0].parameters(), two[0].parameters(), one[2].m, two[2].m):
        np.testing.assert_allclose(b.grad, a.grad, rtol=0, atol=1e-14 * np.abs(a.grad).max())
        np.testing.assert_allclose(mb, ma, rtol=0, atol=1e-14 * np.abs(ma).max())
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-11)
    assert one[2].t == two[2].t == 1


@needs_blas_control
@pytest.mark.parametrize("workers", [1, 2])
def test_a_non_finite_gradient_stops_the_step(workers, monkeypatch):
    """An overflow in backward with a finite loss: _step raises naming the parameter. On one
    worker the weights stay as they were; on two the update, made inside the sum, has run."""
    sv.manual_seed(0)
    model = sv.build_model("conv", "ae").to(np.float64)
    par, opt = DataParallel(model, workers), sv.Adam(model.parameters())
    poisoned = par.replicas[-1] if workers > 1 else model    # the last worker's share, or the model's
    real_backward = poisoned.backward

    def backward_with_an_inf(*args, **kwargs):
        out = real_backward(*args, **kwargs)
        poisoned.parameters()[0].grad.flat[0] = np.inf
        return out
    monkeypatch.setattr(poisoned, "backward", backward_with_an_inf)
    before = [p.data.copy() for p in model.parameters()]
    name = next(model.named_parameters())[0]
    with pytest.raises(TrainingFault, match=f"non-finite gradient of {name} at epoch 1, step 0"):
        _step(model, opt, par, _batches("conv", 4, 1, 1)[0][0], np.random.default_rng(0), "none", None,
              "epoch 1, step 0")
    assert opt.t == workers - 1
    if workers == 1:
        assert all(np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))
