"""``scratchvae train --trace-grads``: DIR/gradflow.npz and .png, and the gradient split they record."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

import pngs
import scratchvae as sv
from scratchvae.checkpoint import load_model
from scratchvae.cli import main
from scratchvae.commands import train as train_command
from scratchvae.gradflow import GradTracer, kl_part, split_encoder_grad
from scratchvae.objective import GaussianKL

SMALL = ["--train-size", "300", "--batch-size", "64", "--no-progress"]
STEPS_PER_EPOCH = math.ceil(300 / 64)


def _train(out: Path, *flags: str, epochs: int = 2) -> int:
    return main(["train", "--epochs", str(epochs), "--out", str(out), *SMALL, *flags])


def _gradflow(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "gradflow.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_traced_run_records_every_step_and_epoch(tmp_path):
    out = tmp_path / "run"
    assert _train(out, "--trace-grads") == 0
    g = _gradflow(out)
    model, _ = load_model(out / "last.npz")
    names = [n for n, _ in model.named_parameters()]
    steps = 2 * STEPS_PER_EPOCH
    assert list(g["names"]) == names
    assert g["norms"].shape == (steps, len(names))
    assert g["recon"].shape == g["kl"].shape == (steps,)
    assert list(g["step_epoch"]) == [1] * 5 + [2] * 5 and list(g["step_index"]) == [0, 1, 2, 3, 4] * 2
    assert np.all(np.isfinite(g["norms"])) and np.all(g["norms"] > 0) and np.all(g["kl"] > 0)
    assert g["kl_per_dim"].shape == (2, 20) and list(g["kl_epochs"]) == [1, 2]
    rows = _rows(out)
    for row, per_dim in zip(rows, g["kl_per_dim"]):
        assert len(row["kl_per_dim"]) == 20
        np.testing.assert_allclose(row["kl_per_dim"], per_dim, rtol=1e-12)
        # the closed-form KL of the same held-out mu, logvar (it needs no eps): kl_per_dim in float64,
        # test_kl summed in float32 (measured 0.5-5e-8 apart over three seeds); a dimension left out
        # or counted twice moves the sum by its share, >= 1e-3 here
        assert sum(row["kl_per_dim"]) == pytest.approx(row["test_kl"], rel=1e-6)
    assert json.loads((out / "config.json").read_text())["trace_grads"] is True
    # the norms and the recon/KL parts over the steps (curves), the KL per dimension per epoch (a heat
    # map, and its colour bar: a fourth frame)
    pngs.assert_plots(out / "gradflow.png", 4)


def test_tracing_changes_no_weight_and_an_untraced_run_records_nothing(tmp_path):
    assert _train(tmp_path / "plain") == 0
    assert _train(tmp_path / "traced", "--trace-grads") == 0
    assert not (tmp_path / "plain" / "gradflow.npz").exists()
    assert not (tmp_path / "plain" / "gradflow.png").exists()
    assert all("kl_per_dim" not in r for r in _rows(tmp_path / "plain"))
    with np.load(tmp_path / "plain" / "last.npz") as a, np.load(tmp_path / "traced" / "last.npz") as b:
        for key in a.files:
            if key != "meta.config":
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # bit for bit


def test_resume_appends_to_the_record_as_if_uninterrupted(tmp_path, monkeypatch):
    assert _train(tmp_path / "whole", "--trace-grads", epochs=3) == 0
    assert _train(tmp_path / "parts", "--trace-grads", epochs=1) == 0
    assert main(["train", "--out", str(tmp_path / "parts"), "--resume", "--epochs", "2", "--no-progress"]) == 0

    class Stop(train_command.StopOnCtrlC):               # Ctrl-C in epoch 3 after its step 2
        def __call__(self) -> bool:
            self.count = getattr(self, "count", 0) + 1
            return self.count >= 3
    monkeypatch.setattr(train_command, "StopOnCtrlC", Stop)
    assert main(["train", "--out", str(tmp_path / "parts"), "--resume", "--epochs", "3", "--no-progress"]) == 130
    assert len(_gradflow(tmp_path / "parts")["recon"]) == 2 * STEPS_PER_EPOCH + 2
    monkeypatch.undo()
    assert main(["train", "--out", str(tmp_path / "parts"), "--resume", "--no-progress"]) == 0
    whole, parts = _gradflow(tmp_path / "whole"), _gradflow(tmp_path / "parts")
    assert sorted(whole) == sorted(parts)
    for key in whole:
        np.testing.assert_array_equal(whole[key], parts[key], err_msg=key)
    assert len(whole["recon"]) == 3 * STEPS_PER_EPOCH


@pytest.mark.parametrize("flags, message", [
    (["--model", "conv", "--workers", "2"], "--trace-grads runs on one worker; use --workers 1"),
    (["--kind", "ae"], "--trace-grads traces a VAE"),
])
def test_what_tracing_cannot_do_is_one_line_and_exit_2(tmp_path, capsys, flags, message):
    assert _train(tmp_path / "run", "--trace-grads", *flags, epochs=1) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("scratchvae: error:") and message in err
    assert not (tmp_path / "run").exists()


def _kl_gradient_by_finite_differences(mu: np.ndarray, logvar: np.ndarray, beta: float) -> np.ndarray:
    """d (beta * KL) / dh, h = concat(mu, logvar), by central differences of GaussianKL's forward
    (the batch mean of [KL-1]): no gradient formula involved. (N, 2L)"""
    h, step = np.concatenate([mu, logvar], axis=1), 1e-6
    L = mu.shape[1]
    grad = np.zeros_like(h)
    for index in np.ndindex(h.shape):
        values = []
        for sign in (1, -1):
            shifted = h.copy()
            shifted[index] += sign * step
            values.append(beta * GaussianKL().forward(shifted[:, :L], shifted[:, L:]))
        grad[index] = (values[0] - values[1]) / (2 * step)
    return grad


def test_the_kl_part_is_the_closed_form():
    mu = np.array([[1.0, -2.0], [0.0, 4.0]])
    logvar = np.array([[0.0, np.log(3.0)], [np.log(0.5), 0.0]])
    # beta * mu / N and beta * (exp(logvar) - 1) / (2 N), N = 2, beta = 0.5, worked by hand
    expected = np.array([[0.25, -0.5, 0.0, 0.25], [0.0, 1.0, -0.0625, 0.0]])
    np.testing.assert_allclose(kl_part(mu, logvar, 0.5), expected, rtol=1e-15, atol=1e-16)
    # and the derivative of the KL's own forward, numerically: central differences with h = 1e-6 of a
    # smooth O(10) function err by ~1e-10 (rounding of 1e-15 / h); a missing factor is >= 0.06 off
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(kl_part(mu, logvar, 0.7), _kl_gradient_by_finite_differences(mu, logvar, 0.7),
                               rtol=0, atol=1e-8)
    # the split takes that part out of dh and leaves the rest: both against the hand-worked numbers
    mu = np.array([[1.0, -2.0], [0.0, 4.0]])
    logvar = np.array([[0.0, np.log(3.0)], [np.log(0.5), 0.0]])
    dh = np.arange(8.0).reshape(2, 4)
    recon, kl = split_encoder_grad(dh, mu, logvar, 0.5)
    np.testing.assert_allclose(kl, expected, rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(recon, dh - expected, rtol=1e-15, atol=1e-16)


def _tiny_step(beta: float, dtype, capture: list | None = None, posterior: str = "logvar") -> tuple[sv.VAE, GradTracer]:
    """One traced step of a small MLP VAE on fixed images and eps."""
    sv.manual_seed(3)
    model = sv.build_model("mlp", latent_dim=3, beta=beta, image_shape=(1, 4, 4), posterior=posterior).to(dtype)
    x = np.random.default_rng(0).random((5, 1, 4, 4)).astype(dtype)
    eps = np.random.default_rng(1).standard_normal((5, 3)).astype(dtype)
    tracer = GradTracer(model, x)
    if capture is not None:                               # the dh the encoder's backward receives
        inner = model._encoder_backward
        model._encoder_backward = lambda dout, input_grad: (capture.append(dout.copy()), inner(dout, input_grad))[1]
    tracer.install()
    model.zero_grad()
    model.loss(x, eps=eps)
    model.backward(input_grad=False)
    tracer.on_grads(model, 1, 0)
    return model, tracer


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_a_step_splits_the_encoder_gradient_into_recon_and_kl(dtype, tol):
    """The KL part measured without kl_part: beta only weights the KL, so the same step at beta = 2
    and at beta = 0 (same weights, images and eps) differ in dh by exactly the KL part, and the
    beta = 0 step's dh is the whole reconstruction part."""
    dh, dh0 = [], []
    model, tracer = _tiny_step(2.0, dtype, dh)
    _, tracer0 = _tiny_step(0.0, dtype, dh0)
    dh, dh0 = dh[0], dh0[0]
    mu, logvar = model.encode(np.random.default_rng(0).random((5, 1, 4, 4)).astype(dtype))
    recon, kl = split_encoder_grad(dh, mu, logvar, 2.0)
    # each side carries ~1 rounding of O(1) entries: eps (1.1e-16 float64, 6e-8 float32) times a few
    np.testing.assert_allclose(kl, dh - dh0, rtol=0, atol=tol)
    np.testing.assert_allclose(recon, dh0, rtol=0, atol=tol)
    assert tracer0.kl[0] == 0.0
    assert tracer.kl[0] == pytest.approx(np.linalg.norm(dh - dh0), rel=10 * tol)
    assert tracer.recon[0] == pytest.approx(np.linalg.norm(dh0), rel=10 * tol)
    # the per-parameter norms are those of the step's own gradients
    np.testing.assert_array_equal(tracer.norms[0], [np.linalg.norm(p.grad) for p in model.parameters()])
    assert tracer.names == [n for n, _ in model.named_parameters()]


def test_the_logstd_posterior_splits_the_encoder_gradient_too():
    """With posterior='logstd' the KL part of the second half is 2 * dlogvar ([LOGSTD-2]): the
    recon part is still exactly the dh of the same step with no KL weight."""
    dh, dh0 = [], []
    model, tracer = _tiny_step(2.0, np.float64, dh, posterior="logstd")
    _tiny_step(0.0, np.float64, dh0, posterior="logstd")
    mu, logvar = model.encode(np.random.default_rng(0).random((5, 1, 4, 4)))
    recon, _ = split_encoder_grad(dh[0], mu, logvar, 2.0, posterior="logstd")
    # float64: two roundings of O(1) entries (as in the logvar test above)
    np.testing.assert_allclose(recon, dh0[0], rtol=0, atol=1e-12)
    assert tracer.recon[0] == pytest.approx(np.linalg.norm(dh0[0]), rel=1e-10)
