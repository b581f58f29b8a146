"""DataParallel: the batch split over worker threads gives the full batch's losses and gradients."""
import importlib
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import CHILD_CWD
import scratchvae as sv
from scratchvae._threads import blas_thread_control, blas_threads
from scratchvae.data import load_split
from scratchvae.models import ARCHITECTURES
from scratchvae.nn.init import manual_seed
from scratchvae.parallel import (MAX_DEFAULT_WORKERS, PASS_BYTES, DataParallel, cpu_cores, default_workers,
                                 layer_output_bytes)
from scratchvae.train import evaluate, fit, train_epoch

im2col = importlib.import_module("scratchvae.kernels.im2col")  # the module, not the function it exports
needs_blas_control = pytest.mark.skipif(blas_thread_control() is None,
                                        reason="NumPy's BLAS is not an OpenBLAS whose threads can be set")


def _model(arch: str, kind: str = "vae", dtype=np.float64):
    return sv.build_model(arch, kind, rng=np.random.default_rng(0)).to(dtype)


def _images(arch: str, n: int, seed: int = 1) -> np.ndarray:
    shape = ARCHITECTURES[arch][1]
    return (np.random.default_rng(seed).random((n,) + shape) < 0.3).astype(np.float64)


def _full_batch(model, x, eps):
    model.zero_grad()
    losses = model.loss(x, eps=eps)
    model.backward(input_grad=False)
    return losses, [p.grad.copy() for p in model.parameters()]


@needs_blas_control
@pytest.mark.parametrize("arch,kind", [("mlp", "vae"), ("conv", "vae"), ("keras", "vae"), ("conv", "ae")])
@pytest.mark.parametrize("n,workers", [(6, 2), (7, 3), (2, 3), (7, 2)])  # even, uneven, fewer images than workers
@pytest.mark.parametrize("per_pass", [None, 2])  # 2: shares of 3 and 4 run in passes of 1+2 and 2+2 images
def test_split_batch_gives_the_full_batch_gradient(arch, kind, n, workers, per_pass):
    model = _model(arch, kind)
    x = _images(arch, n)
    eps = np.random.default_rng(2).standard_normal((n, model.latent_dim)) if kind == "vae" else None
    expected_losses, expected = _full_batch(model, x, eps)
    model.zero_grad()
    losses = DataParallel(model, workers, images_per_pass=per_pass).loss_and_backward(x, eps=eps)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-12)
    for p, g in zip(model.parameters(), expected):
        assert np.abs(g).max() > 0
        np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-14 * np.abs(g).max())


@needs_blas_control
def test_gradients_add_into_what_is_there():
    model = _model("conv")
    x = _images("conv", 4)
    eps = np.random.default_rng(2).standard_normal((4, model.latent_dim))
    _, full = _full_batch(model, x, eps)
    before = [np.full_like(p.data, 0.5) for p in model.parameters()]
    for p, b in zip(model.parameters(), before):
        p.grad[...] = b
    DataParallel(model, 2).loss_and_backward(x, eps=eps)
    for p, b, g in zip(model.parameters(), before, full):
        np.testing.assert_allclose(p.grad, b + g, rtol=1e-10)


@needs_blas_control
def test_replicas_follow_the_model_weights_dtype_and_mode():
    model = _model("conv", dtype=np.float32)
    dp = DataParallel(model, 2)
    x = _images("conv", 4)
    for p in model.parameters():          # an optimizer writes in place: replicas see it through the shared array
        p.data += 0.01
    for replica in dp.replicas:
        for p, rp in zip(model.parameters(), replica.parameters()):
            assert rp.data is p.data
    model.to(np.float64)                  # new arrays: the next call re-points the replicas
    eps = np.random.default_rng(2).standard_normal((4, model.latent_dim))
    _, full = _full_batch(model, x, eps)
    model.zero_grad()
    dp.loss_and_backward(x, eps=eps)
    for p, g in zip(model.parameters(), full):
        assert p.grad.dtype == np.float64
        # the shares' gradients are summed share by share, the full batch's in one product:
        # another order of the same float64 sum, so an entry that nearly cancels may keep few
        # correct digits; measured against the largest entry, the rounding is ~1e-16
        np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-14 * np.abs(g).max())
    model.eval()
    # Not bit for bit: the model runs the whole batch on this thread with BLAS on every core,
    # the workers their shares with BLAS on one thread, and OpenBLAS's threaded and serial
    # products may add in another order (its Haswell kernels do, on AMD Zen 3: up to 2.2e-16
    # on outputs in [0, 1]). A few float64 roundings per layer through 8 layers stay far below 1e-12.
    np.testing.assert_allclose(dp.reconstruct(x), model.reconstruct(x), rtol=1e-12, atol=1e-15)
    assert all(not r.training for r in dp.replicas)


@needs_blas_control
@pytest.mark.parametrize("per_pass", [None, 2])
def test_forward_only_calls_match_the_model(per_pass):
    model = _model("conv", "ae")
    x = _images("conv", 5)
    dp = DataParallel(model, 2, images_per_pass=per_pass)
    model.eval()
    np.testing.assert_allclose(dp.loss(x), model.loss(x), rtol=1e-12)
    np.testing.assert_allclose(dp.reconstruct(x), model.reconstruct(x), rtol=1e-12, atol=1e-15)
    assert all(p.grad.max() == 0 == p.grad.min() for p in model.parameters())  # no backward ran


@needs_blas_control
def test_passes_draw_the_same_noise_as_one_pass():
    """A worker's passes draw eps one after another from its generator: the same numbers."""
    x = _images("conv", 6)
    results = []
    for per_pass in (None, 1):
        manual_seed(0)                                           # the same initial weights
        model = _model("conv")                                   # and the same replica generators
        results.append((DataParallel(model, 2, images_per_pass=per_pass).loss_and_backward(x),
                        [p.grad.copy() for p in model.parameters()]))
    (losses_a, grads_a), (losses_b, grads_b) = results
    np.testing.assert_allclose(losses_b, losses_a, rtol=1e-12)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-14 * np.abs(a).max())


def test_images_per_pass_follows_the_bytes_of_one_images_layer_outputs():
    model = _model("mlp")                                        # float64: 8 bytes a number
    x = _images("mlp", 1)
    # encoder Flatten 784, Linear 400, ReLU 400, Linear 40; decoder Linear 400, ReLU 400,
    # Linear 784, Reshape 784
    assert layer_output_bytes(model, x) == 8 * (784 + 400 + 400 + 40 + 400 + 400 + 784 + 784)
    if blas_thread_control() is not None:
        dp = DataParallel(model, 2)
        assert dp._images_per_pass(x) == PASS_BYTES // layer_output_bytes(model, x)
        assert DataParallel(model, 2, images_per_pass=5)._images_per_pass(x) == 5


@needs_blas_control
@pytest.mark.parametrize("n,workers,per_pass", [(7, 2, 2), (2, 3, None), (10, 3, 4)])
def test_plan_cuts_the_batch_into_shares_and_passes(n, workers, per_pass):
    """Each worker a near-equal share, run in near-equal passes of at most per_pass images;
    together they cover the batch once, in order (the step, inference and bench's floor use it)."""
    dp = DataParallel(_model("conv"), workers, images_per_pass=per_pass)
    plan = dp.plan(_images("conv", n))
    assert [k for k, _ in plan] == list(range(min(n, workers)))
    parts = [part for _, passes in plan for part in passes]
    assert [(p.start, p.stop) for p in parts] == list(zip([0] + [p.stop for p in parts[:-1]], [p.stop for p in parts]))
    assert parts[0].start == 0 and parts[-1].stop == n
    shares = [sum(p.stop - p.start for p in passes) for _, passes in plan]
    assert max(shares) - min(shares) <= 1
    limit = per_pass or dp._images_per_pass(_images("conv", 1))
    assert all(p.stop - p.start <= limit for p in parts)
    assert DataParallel(_model("conv"), 1).plan(_images("conv", n)) == [(0, [slice(0, n)])]  # the model, whole


@needs_blas_control
def test_an_encoder_that_is_not_a_sequential_splits_too():
    """The encoder and decoder may be any Module; the pass size still counts their outputs."""
    manual_seed(0)
    model = sv.VAE(sv.Linear(6, 4), sv.Linear(2, 6), 2, loss="mse").to(np.float64)
    x = np.random.default_rng(1).random((5, 6))
    eps = np.random.default_rng(2).standard_normal((5, 2))
    expected_losses, expected = _full_batch(model, x, eps)
    model.zero_grad()
    dp = DataParallel(model, 2)
    np.testing.assert_allclose(dp.loss_and_backward(x, eps=eps), expected_losses, rtol=1e-12)
    for p, g in zip(model.parameters(), expected):
        # summed share by share, not in one product: float64 rounding, small against the largest entry
        np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-14 * np.abs(g).max())
    assert layer_output_bytes(model, x[:1]) == 8 * (4 + 6)       # one (1, 4) and one (1, 6) float64 output


@needs_blas_control
def test_each_replica_draws_its_own_noise():
    dp = DataParallel(_model("conv"), 2)
    a, b = (r.rng.standard_normal(8) for r in dp.replicas)
    assert not np.allclose(a, b)


def test_one_worker_is_the_model_itself():
    model = _model("mlp")
    dp = DataParallel(model, 1)
    assert dp.replicas == []
    x = _images("mlp", 3)
    eps = np.zeros((3, model.latent_dim))
    expected, grads = _full_batch(model, x, eps)
    model.zero_grad()
    assert dp.loss_and_backward(x, eps=eps) == expected
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)


def test_batchnorm_models_and_bad_counts_are_refused():
    faces = sv.build_model("faces", rng=np.random.default_rng(0))
    assert default_workers(faces) == 1
    with pytest.raises(ValueError, match="BatchNorm"):
        DataParallel(faces, 2)
    DataParallel(faces, 1)  # fine: nothing is split
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="workers must be a positive int"):
            DataParallel(_model("mlp"), bad)
        with pytest.raises(ValueError, match="images_per_pass must be a positive int"):
            DataParallel(_model("mlp"), 1, images_per_pass=bad)


@needs_blas_control
def test_default_workers():
    assert default_workers(_model("mlp")) == 1         # measured slower on 2 workers
    assert default_workers(_model("conv")) == min(cpu_cores(), MAX_DEFAULT_WORKERS)


@needs_blas_control
def test_a_worker_error_reaches_the_caller():
    dp = DataParallel(_model("conv"), 2)
    with pytest.raises(ValueError, match="Conv2d"):
        dp.loss_and_backward(np.zeros((4, 3, 28, 28)))    # 3 channels for a 1-channel encoder


@needs_blas_control
@pytest.mark.parametrize("per_pass", [None, 2])
def test_every_step_starts_from_zero_replica_gradients(per_pass):
    """Worker 0 adds into the model's gradients; the reduce zeroes the others' for the next
    step, and a failed step zeroes them too: step after step gives the full batch gradient."""
    model = _model("keras")
    dp = DataParallel(model, 2, images_per_pass=per_pass)
    with pytest.raises(ValueError, match="Conv2d"):
        dp.loss_and_backward(np.zeros((4, 3, 28, 28)))           # fails after no worker's backward
    for seed in (1, 2, 3):
        x = _images("keras", 5, seed)
        eps = np.random.default_rng(seed).standard_normal((5, model.latent_dim))
        _, full = _full_batch(model, x, eps)
        for replica in dp.replicas[1:]:
            assert all(not rp.grad.any() for rp in replica.parameters())
        model.zero_grad()
        dp.loss_and_backward(x, eps=eps)
        for p, g in zip(model.parameters(), full):
            np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-14 * np.abs(g).max())


@needs_blas_control
def test_a_step_that_fails_midway_leaves_no_gradient_behind(monkeypatch):
    model = _model("conv")
    dp = DataParallel(model, 2)
    x = _images("conv", 4)
    eps = np.random.default_rng(2).standard_normal((4, model.latent_dim))
    failing = dp.replicas[0]
    real_backward = type(failing).backward

    def backward_then_fail(self, *args, **kwargs):
        real_backward(self, *args, **kwargs)                     # replica 1 has added its gradient by now, or will
        raise RuntimeError("worker 0 fails")
    monkeypatch.setattr(failing, "backward", backward_then_fail.__get__(failing))
    with pytest.raises(RuntimeError, match="worker 0 fails"):
        dp.loss_and_backward(x, eps=eps)
    monkeypatch.undo()
    _, full = _full_batch(model, x, eps)
    model.zero_grad()
    dp.loss_and_backward(x, eps=eps)
    for p, g in zip(model.parameters(), full):
        np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-14 * np.abs(g).max())


@needs_blas_control
def test_blas_threads_sets_and_restores():
    control = blas_thread_control()
    before = control.get()
    with blas_threads(1):
        assert control.get() == 1
    assert control.get() == before


@pytest.mark.parametrize("user_value,expected", [(None, "20"), ("7", "7")])
def test_thread_defaults_yield_to_the_user(user_value, expected):
    """Importing scratchvae sets OpenBLAS's spin timeout and Numba's threading layer
    (in a fresh process, as OpenBLAS reads them once); a value the user exported wins."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "NUMBA_THREADING_LAYER")}
    if user_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = user_value
    code = "import os, scratchvae; print(os.environ['OPENBLAS_THREAD_TIMEOUT'], os.environ['NUMBA_THREADING_LAYER'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=CHILD_CWD)
    assert out.stdout.split() == [expected, "workqueue"]


def test_kernels_run_serially_off_the_main_thread(monkeypatch):
    """Numba's workqueue pool aborts if two threads start parallel loops at once."""
    monkeypatch.setattr(im2col, "PARALLEL_MIN_SIZE", 0)
    cols = np.empty((100, 9))
    seen = []
    thread = threading.Thread(target=lambda: seen.append(im2col._use_parallel(10, cols)))
    thread.start()
    thread.join()
    assert im2col._use_parallel(10, cols) and seen == [False]


@needs_blas_control
def test_training_on_two_workers_lowers_the_loss():
    sv.manual_seed(0)
    x = load_split("train").images[:512]
    x_test = load_split("test").images[:200]
    model = sv.build_model("conv", rng=np.random.default_rng(0))
    before = evaluate(model, x_test, parallel=DataParallel(model, 2))
    history = fit(model, sv.Adam(model.parameters()), x, x_test, epochs=2, batch_size=64,
                  rng=np.random.default_rng(0), progress=False, workers=2)
    assert history[-1].test.total < 0.8 * before.total
    assert np.isfinite(train_epoch(model, sv.Adam(model.parameters()), x[:64], 32, np.random.default_rng(1),
                                   progress=False, parallel=DataParallel(model, 2)).total)


@pytest.mark.skipif(blas_thread_control() is None, reason="two workers need an OpenBLAS whose threads can be set")
def test_imap_yields_in_job_order_and_never_shares_a_replica():
    """Jobs that finish out of order come back in order; no replica runs two jobs at once; the
    jobs are consumed on the calling thread, one at a time."""
    import time
    model = sv.build_model("mlp")
    parallel = DataParallel(model, 2)
    busy, lock, overlaps, consumed = set(), threading.Lock(), [], []

    def fn(replica, job):
        with lock:
            if id(replica) in busy:
                overlaps.append(job)
            busy.add(id(replica))
        time.sleep(0.004 * (job % 3))                             # uneven: later jobs can finish first
        with lock:
            busy.discard(id(replica))
        return job * job, replica is model

    def jobs():
        for j in range(11):
            consumed.append(threading.current_thread() is threading.main_thread())
            yield j

    out = list(parallel.imap(fn, jobs()))
    assert [job for job, _ in out] == list(range(11)) and [r[0] for _, r in out] == [j * j for j in range(11)]
    assert not overlaps and all(consumed) and not any(r[1] for _, r in out)  # replicas, never the model
    assert [r for _, r in DataParallel(model, 1).imap(lambda m, j: m is model, range(3))] == [True] * 3
