"""The training flags no other test takes through the command line, each on a tiny run: the logstd
posterior from train to every command that reads its checkpoint, --model keras and faces,
--image-size, --loss bce-prob and rmse."""
import json
import math

import numpy as np
import pytest

import pngs
from scratchvae.checkpoint import load_model
from scratchvae.cli import main
from scratchvae.data.datasets import held_out_images

QUICK = ["--epochs", "1", "--no-progress"]
UNTRAINED_BCE = 784 * math.log(2)         # nats per image of p = 1/2 for every pixel: knowing nothing


def _run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert err == "" or code != 0, err
    return code, out


def _metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def logstd_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("logstd") / "run"
    assert main(["train", "--posterior", "logstd", "--latent-dim", "2", "--binarize", "dynamic", "--train-size", "1024",
                 "--batch-size", "64", "--out", str(run), *QUICK]) == 0
    return run


def test_logstd_reaches_every_command_through_the_checkpoint(logstd_run, capsys, tmp_path):
    ckpt = logstd_run / "best.npz"
    model, checkpoint = load_model(ckpt)
    assert checkpoint.config["posterior"] == "logstd" and model.posterior.param == "logstd"
    code, out = _run(capsys, "evaluate", ckpt, "--k", 20, "--n", 50, "--json", "--no-progress")
    assert code == 0
    result = json.loads(out)
    # the KL of N(mu, exp(a)^2) from the encoder's raw output h = (mu, a), not through model.encode:
    # had a command read a as log sigma^2 (the logvar default), its KL would differ by ~a per dimension
    x, _ = held_out_images(checkpoint.config)
    h = model.encoder.forward(x[:50].astype(model.dtype)).astype(np.float64)          # (50, 4)
    mu, a = h[:, :2], h[:, 2:]
    kl = np.mean(0.5 * np.sum(mu ** 2 + np.exp(2 * a) - 1 - 2 * a, axis=1))
    assert result["kl"] == pytest.approx(kl, rel=1e-5)       # float32 encoder, float64 sums: ~1e-7 apart
    assert math.isfinite(result["nll"]) and result["nll"] <= result["elbo"] + 3 * result["nll_stderr"]
    code, out = _run(capsys, "sample", ckpt, "--n", 9, "--out", tmp_path / "s.png")
    assert code == 0
    pngs.assert_mosaic(tmp_path / "s.png", 3, 3, min_distinct=9)
    code, out = _run(capsys, "latent", ckpt, "--grid", 5, "--out", tmp_path)
    assert code == 0 and len(out.split()) == 3
    pngs.assert_mosaic(tmp_path / "latent-grid-best.png", 5, 5, min_distinct=15)
    code, out = _run(capsys, "explore", ckpt, "--out", tmp_path / "page.html", "--n", 50)
    assert code == 0 and (tmp_path / "page.html").read_text()[:15] == "<!DOCTYPE html>"
    code, out = _run(capsys, "gradcheck", "--checkpoint", ckpt, "--max-entries", 5)
    assert code == 0 and out.splitlines()[-1].startswith("PASS")


@pytest.mark.parametrize("flags, image_shape, latent_dim", [
    (["--model", "keras", "--train-size", "256", "--batch-size", "64"], [1, 28, 28], 2),
    (["--model", "faces", "--train-size", "40", "--batch-size", "20"], [1, 64, 64], 64),   # olivetti by default
    (["--image-size", "14", "--train-size", "256", "--batch-size", "64"], [1, 14, 14], 20),
], ids=["keras", "faces", "image-size"])
def test_each_model_and_image_size_trains_from_the_command_line(tmp_path, flags, image_shape, latent_dim):
    run = tmp_path / "run"
    assert main(["train", *flags, "--out", str(run), *QUICK]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["image_shape"] == image_shape and config["latent_dim"] == latent_dim
    assert all(math.isfinite(v) for v in _metrics(run)[0].values())
    model, _ = load_model(run / "best.npz")
    assert model.sample(2).shape == (2, *image_shape)
    # the held-out images (rows 0, 2, ...) over their reconstructions, 10 a row: 40 faces, else the first 50
    rows = 8 if config["dataset"] == "olivetti" else 10
    tiles = pngs.assert_mosaic(run / "reconstructions.png", rows, 10, min_distinct=rows * 5)
    assert pngs.distinct(tiles[::2]) >= rows * 5 - 2                 # different images, not one repeated


def test_bce_on_probabilities_trains_and_is_a_likelihood(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--loss", "bce-prob", "--binarize", "dynamic", "--train-size", "1024", "--batch-size", "64",
                 "--out", str(run), *QUICK]) == 0
    assert _metrics(run)[0]["test_recon"] < 0.8 * UNTRAINED_BCE      # 16 steps already learn the background
    capsys.readouterr()
    code, out = _run(capsys, "evaluate", run / "best.npz", "--k", 10, "--n", 20, "--json", "--no-progress")
    result = json.loads(out)
    assert code == 0 and result["likelihood"] == "bernoulli" and result["nll_is_likelihood"] is True


def test_rmse_trains_and_evaluates_without_a_likelihood(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--loss", "rmse", "--train-size", "1024", "--batch-size", "64", "--out", str(run),
                 *QUICK]) == 0
    row = _metrics(run)[0]
    assert 0 < row["test_recon"] < 1 and math.isfinite(row["test_kl"])  # per-image RMSE of pixels in [0, 1]
    capsys.readouterr()
    code, out = _run(capsys, "evaluate", run / "best.npz", "--k", 10, "--n", 20, "--json", "--no-progress")
    result = json.loads(out)
    assert code == 0 and result["nll"] is None and "no log-likelihood" in result["note"]
