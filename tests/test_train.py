"""Training on real MNIST: the loss falls, and the command line writes what it promises."""
import json

import numpy as np

import scratchvae as sv
from scratchvae.cli import main
from scratchvae.data import load_split
from scratchvae.train import evaluate, fit


def test_mlp_vae_loss_falls_on_a_slice_of_mnist():
    sv.manual_seed(0)
    x = load_split("train").images[:2000]
    x_test = load_split("test").images[:500]
    model = sv.build_model("mlp", rng=np.random.default_rng(0))
    before = evaluate(model, x_test)
    history = fit(model, sv.Adam(model.parameters()), x, x_test, epochs=2, batch_size=64,
                  rng=np.random.default_rng(0), progress=False)
    assert before.total > 500  # an untrained decoder: ~log(2) nats on each of 784 pixels
    assert history[-1].test.total < 0.5 * before.total
    assert history[1].train.total < history[0].train.total


def test_cli_train_writes_metrics_and_figures(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--train-size", "512", "--batch-size", "64", "--seed", "3",
                 "--out", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) == {"epoch", "train_loss", "train_recon", "train_kl", "test_loss", "test_recon",
                            "test_kl", "seconds"}
    assert rows[1]["test_loss"] < rows[0]["test_loss"]
    for name in ("reconstructions.png", "samples.png", "loss.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with np.load(out / "model.npz", allow_pickle=False) as state:
        assert "encoder.1.weight" in state.files


def test_cli_seed_makes_runs_repeatable(tmp_path):
    def run(folder):
        main(["train", "--epochs", "1", "--train-size", "256", "--seed", "5", "--out", str(folder),
              "--no-progress"])
        return json.loads((folder / "metrics.jsonl").read_text())["test_loss"]
    assert run(tmp_path / "a") == run(tmp_path / "b")
