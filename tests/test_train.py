"""Training on real MNIST: the loss falls, and the command line writes what it promises."""
import json

import numpy as np

import pngs
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
                            "test_kl", "kl_weight", "seconds"}
    assert rows[1]["test_loss"] < rows[0]["test_loss"]
    # 50 held-out images in rows of 10 over their reconstructions; 100 samples; both curves
    tiles = pngs.assert_mosaic(out / "reconstructions.png", 10, 10, min_distinct=80)
    assert np.abs(tiles[1::2] - tiles[::2]).mean() > 0.02          # decodes, not copies of the images
    pngs.assert_mosaic(out / "samples.png", 10, 10, min_distinct=80)
    pngs.assert_plots(out / "loss.png", 1)
    with np.load(out / "last.npz", allow_pickle=False) as state:
        assert "encoder.1.weight" in state.files


def test_cli_seed_makes_runs_repeatable(tmp_path):
    def run(folder):
        main(["train", "--epochs", "1", "--train-size", "256", "--seed", "5", "--out", str(folder),
              "--no-progress"])
        return json.loads((folder / "metrics.jsonl").read_text())["test_loss"]
    assert run(tmp_path / "a") == run(tmp_path / "b")


def _run(tmp_path, *flags):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--train-size", "256", "--batch-size", "64", "--out", str(out),
                 "--no-progress", *flags]) == 0
    return out, json.loads((out / "metrics.jsonl").read_text())


def test_cli_autoencoder_has_no_kl_and_no_samples(tmp_path):
    out, row = _run(tmp_path, "--kind", "ae", "--loss", "mse")
    assert row["test_kl"] == 0.0 and row["test_loss"] == row["test_recon"]
    assert not (out / "samples.png").exists()
    pngs.assert_mosaic(out / "reconstructions.png", 10, 10, min_distinct=80)


def test_cli_beta_weights_the_kl(tmp_path):
    _, row = _run(tmp_path, "--beta", "4", "--seed", "2")
    assert abs(row["test_loss"] - (row["test_recon"] + 4 * row["test_kl"])) < 1e-3


def test_cli_conv_model_with_dynamic_binarization_and_clipping(tmp_path):
    _, row = _run(tmp_path, "--model", "conv", "--binarize", "dynamic", "--clip", "5", "--latent-dim", "8")
    assert row["test_loss"] < 543  # 784 * log(2): better than knowing nothing about the pixels


def test_prepare_binarization_modes():
    from scratchvae.data import load_dataset, prepare
    rng = np.random.default_rng(0)
    mnist = load_dataset("mnist", train_size=100)
    train, test = prepare(mnist, "static", rng)
    assert set(np.unique(train)) == {0.0, 1.0} and set(np.unique(test)) == {0.0, 1.0}
    train, test = prepare(mnist, "dynamic", rng)
    assert len(np.unique(train)) > 2 and set(np.unique(test)) == {0.0, 1.0}  # train drawn per batch
    train, test = prepare(mnist, "none", rng)
    assert len(np.unique(test)) > 2
    faces = load_dataset("olivetti")
    assert faces.train.shape == (360, 1, 64, 64) and faces.test.shape == (40, 1, 64, 64)


def test_cli_rejects_bad_flags_with_one_line(capsys):
    import pytest
    for flags in (["--epochs", "0"], ["--batch-size", "-5"], ["--latent-dim", "0"], ["--clip", "-1"],
                  ["--lr", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", *flags])
        assert exit_info.value.code == 2
        assert "must be" in capsys.readouterr().err


def test_cli_reports_library_errors_without_a_traceback(capsys, monkeypatch, tmp_path):
    from scratchvae.commands import train as train_command
    from scratchvae.data import DataFileError

    def broken(*args, **kwargs):
        raise DataFileError("train-images-idx3-ubyte.gz: sha256 mismatch")
    monkeypatch.setattr(train_command, "load_dataset", broken)
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == "scratchvae: error: train-images-idx3-ubyte.gz: sha256 mismatch"


def test_training_skips_a_lone_leftover_image_for_batchnorm():
    from scratchvae.train import train_epoch
    model = sv.build_model("faces", latent_dim=4)
    x = np.random.default_rng(0).random((5, 1, 64, 64)).astype(np.float32)
    losses = train_epoch(model, sv.Adam(model.parameters()), x, 4, np.random.default_rng(0), progress=False)
    assert np.isfinite(losses.total)
