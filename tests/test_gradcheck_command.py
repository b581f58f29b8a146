"""``scratchvae gradcheck``: every layer, model and loss passes; a broken backward fails; bad input exits 2."""
import json

import numpy as np
import pytest

import scratchvae as sv
from scratchvae.checkpoint import Checkpoint, save_checkpoint
from scratchvae.cli import main
from scratchvae.commands import gradcheck as command
from scratchvae.objective import IWAE

LAYER_PARAMS = {"linear": {"input", "weight", "bias"}, "conv": {"input", "weight", "bias"},
                "conv_transpose": {"input", "weight", "bias"}, "batchnorm1d": {"input", "weight", "bias"},
                "batchnorm2d": {"input", "weight", "bias"}, "relu": {"input"}, "leaky_relu": {"input"},
                "sigmoid": {"input"}, "tanh": {"input"}, "flatten": {"input"}, "reshape": {"input"}}


def _run(capsys, *argv):
    code = main(["gradcheck", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys, *argv):
    code, out, err = _run(capsys, *argv, "--json")
    return code, json.loads(out)


def _assert_one_line_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scratchvae: error:"), err
    for word in words:
        assert word in lines[0]


def test_every_layer_type_is_covered():
    assert set(LAYER_PARAMS) == set(command.LAYERS)


@pytest.mark.parametrize("layer", sorted(LAYER_PARAMS))
def test_each_layer_passes_with_a_row_per_array(capsys, layer):
    code, out, err = _run(capsys, "--layer", layer)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[-1].startswith("PASS") and "FAIL" not in out
    assert {line.split()[0] for line in lines[2:-1]} == LAYER_PARAMS[layer]
    code, report = _json(capsys, "--layer", layer)
    assert code == 0 and report["ok"] and report["layer"] == layer
    assert {r["name"] for r in report["rows"]} == LAYER_PARAMS[layer]
    for row in report["rows"]:
        assert row["ok"] and row["checked"] == row["size"] == int(np.prod(row["shape"]))
        assert row["rel_error"] < 1e-6 and row["analytic_norm"] == pytest.approx(row["numeric_norm"], rel=1e-6)


@pytest.mark.parametrize("argv", [
    ["--layer", "conv", "--stride", "2", "--padding", "1"],
    ["--layer", "conv", "--no-bias", "--dilation", "2", "--kernel-size", "2", "--input-shape", "2,3,6,5"],
    ["--layer", "conv_transpose", "--stride", "2", "--padding", "1", "--output-padding", "1"],
    ["--layer", "linear", "--in-features", "3", "--out-features", "7", "--no-bias"],
    ["--layer", "reshape", "--reshape-to", "3,2,2", "--input-shape", "2,12"],
    ["--layer", "batchnorm1d", "--input-shape", "5,3,4"],
])
def test_layer_settings(capsys, argv):
    code, report = _json(capsys, *argv)
    assert code == 0 and report["ok"], report
    if "--no-bias" in argv:
        assert {r["name"] for r in report["rows"]} == {"input", "weight"}
    if "--input-shape" in argv:
        assert report["input_shape"] == [int(v) for v in argv[argv.index("--input-shape") + 1].split(",")]


@pytest.mark.parametrize("arch, batch", [("mlp", 2), ("conv", 2), ("keras", 2), ("faces", 3)])
def test_each_model_passes_a_sampled_check(capsys, arch, batch):
    code, report = _json(capsys, "--model", arch, "--batch", batch, "--max-entries", 5, "--latent-dim", 4)
    assert code == 0 and report["ok"], report
    model = sv.build_model(arch, latent_dim=4)
    assert [r["name"] for r in report["rows"]] == ["input"] + [n for n, _ in model.named_parameters()]
    assert report["h"] == command.MODEL_STEP[arch] and report["input_shape"][0] == batch
    assert all(r["checked"] + r["kinks"] >= min(5, r["size"]) for r in report["rows"])


def test_model_table_shows_sampled_counts(capsys):
    code, out, _ = _run(capsys, "--model", "mlp", "--kind", "ae", "--max-entries", 4, "--latent-dim", 3)
    assert code == 0 and out.splitlines()[-1].startswith("PASS")
    assert "4 of 313600" in out and "mlp ae" in out


def test_checkpoint(capsys, tmp_path):
    model = sv.build_model("mlp", "vae", latent_dim=2, loss="mse")
    config = {"model": "mlp", "kind": "vae", "latent_dim": 2, "loss": "mse", "beta": 1.0,
              "image_shape": [1, 28, 28]}
    path = tmp_path / "m.npz"
    save_checkpoint(path, Checkpoint(config, model.state_dict(), epoch=3))
    code, report = _json(capsys, "--checkpoint", path, "--max-entries", 5)
    assert code == 0 and report["ok"], report
    assert report["checkpoint"] == str(path) and report["epoch"] == 3 and report["loss"] == "mse"
    assert {r["name"] for r in report["rows"]} == {"input"} | {n for n, _ in model.named_parameters()}
    _assert_one_line_error(*_run(capsys, "--checkpoint", path, "--latent-dim", 3)[::2], "--latent-dim")


@pytest.mark.parametrize("loss", ["bce", "bce-prob", "mse", "rmse", "kl"])
def test_each_loss(capsys, loss):
    code, report = _json(capsys, "--loss", loss)
    assert code == 0 and report["ok"], report
    assert {r["name"] for r in report["rows"]} == ({"mu", "logvar"} if loss == "kl" else {"pred"})


class FlippedTanh(sv.Tanh):
    def backward(self, dy):
        return -super().backward(dy)


class FlippedLinear(sv.Linear):
    def backward(self, dy):
        return -super().backward(dy)


def test_a_wrong_layer_backward_fails(capsys, monkeypatch):
    monkeypatch.setitem(command.LAYERS, "tanh", FlippedTanh)
    code, out, _ = _run(capsys, "--layer", "tanh")
    assert code == 1
    assert "FAIL" in out.splitlines()[-1] and out.splitlines()[2].split()[-1] == "FAIL"
    code, report = _json(capsys, "--layer", "tanh")
    assert code == 1 and not report["ok"] and report["rows"][0]["rel_error"] == pytest.approx(2.0)  # ||a + a|| / ||a||


def test_a_wrong_backward_inside_a_model_fails(capsys, monkeypatch):
    """The mlp's last encoder Linear with a flipped dx: the input's row fails (its parameters' do not)."""
    def build(*args, **kwargs):
        model = sv.build_model(*args, **kwargs)
        good = model.encoder.layers[3]
        bad = FlippedLinear(good.in_features, good.out_features)
        bad.weight, bad.bias = good.weight, good.bias
        model.encoder.layers[3] = bad
        return model
    monkeypatch.setattr(command, "build_model", build)
    code, report = _json(capsys, "--model", "mlp", "--max-entries", 5, "--latent-dim", 2)
    assert code == 1 and not report["ok"]
    failed = {r["name"] for r in report["rows"] if not r["ok"]}
    assert "input" in failed and "decoder.2.weight" not in failed
    code, out, _ = _run(capsys, "--model", "mlp", "--max-entries", 5, "--latent-dim", 2)
    assert code == 1 and out.splitlines()[-1].startswith("FAIL")


@pytest.mark.parametrize("argv, words", [
    (["--layer", "dense"], ["unknown layer 'dense'", "linear"]),
    (["--layer", "conv", "--stride", "0"], ["stride"]),
    (["--layer", "relu", "--stride", "2"], ["--stride", "relu"]),
    (["--model", "resnet"], ["unknown model 'resnet'"]),
    (["--loss", "hinge"], ["unknown loss 'hinge'"]),
    (["--layer", "linear", "--input-shape", "4,5", "--in-features", "6"], ["Linear"]),
    ([], ["--model"]),
])
def test_bad_input_is_one_line(capsys, argv, words):
    _assert_one_line_error(*_run(capsys, *argv)[::2], *words)


def test_missing_checkpoint(capsys, tmp_path):
    missing = tmp_path / "nope.npz"
    _assert_one_line_error(*_run(capsys, "--checkpoint", missing)[::2], str(missing))


@pytest.mark.parametrize("argv", [["--model", "mlp", "--layer", "relu"], ["--layer", "relu", "--h", "0"],
                                  ["--layer", "relu", "--input-shape", "3,x"]])
def test_argparse_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(["gradcheck", *argv])
    assert info.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit) as info:
        main(["gradcheck", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0 when every row passes, 1 when any fails" in text


# -- the importance-weighted bound: --objective iwae --iw-samples K --------------------------------------------
class UniformWeightIWAE(IWAE):
    """WRONG backward: every sample weighted 1/K instead of w~ [IWG-3] (the forward is the bound)."""

    def _run(self, vae, x, target, eps):
        out = super()._run(vae, x, target, eps)
        self.cache = self.cache._replace(weights=np.full_like(self.cache.weights, 1 / self.k))
        return out


@pytest.mark.parametrize("arch, k", [("mlp", 4), ("conv", 2), ("mlp", 1)])
def test_iwae_models_pass_with_eps_fixed_per_sample(capsys, monkeypatch, arch, k):
    seen = []
    original = command.check_model

    def spy(model, x, eps, **kwargs):
        seen.append((type(model.objective), model.objective.k, eps.shape))
        return original(model, x, eps, **kwargs)
    monkeypatch.setattr(command, "check_model", spy)
    code, report = _json(capsys, "--model", arch, "--objective", "iwae", "--iw-samples", k, "--max-entries", 5,
                         "--latent-dim", 3, "--batch", 2)
    assert code == 0 and report["ok"], report
    assert report["objective"] == "iwae" and report["iw_samples"] == k
    assert seen == [(IWAE, k, (2, k, 3))]                # the bound of K samples, each its own fixed eps
    code, out, _ = _run(capsys, "--model", arch, "--objective", "iwae", "--iw-samples", k, "--max-entries", 3,
                        "--latent-dim", 3, "--batch", 2)
    assert code == 0 and f"IWAE bound K = {k}," in out.splitlines()[0] and out.splitlines()[-1].startswith("PASS")


def test_iwae_default_k_and_a_wrong_iwae_backward_fails(capsys, monkeypatch):
    """Uniform weights 1/K in backward: the gradient of the mean of K ELBOs, not of the bound forward
    computes. The check must see it (every array but the input's sampled entries can move; all fail here)."""
    code, report = _json(capsys, "--model", "mlp", "--objective", "iwae", "--max-entries", 5, "--latent-dim", 3)
    assert code == 0 and report["iw_samples"] == command.DEFAULT_IW_SAMPLES

    def build(*args, **kwargs):
        model = sv.build_model(*args, **kwargs)
        model.objective = UniformWeightIWAE(model.objective.k)
        return model
    monkeypatch.setattr(command, "build_model", build)
    code, report = _json(capsys, "--model", "mlp", "--objective", "iwae", "--max-entries", 5, "--latent-dim", 3)
    assert code == 1 and not report["ok"]
    failed = [r["name"] for r in report["rows"] if not r["ok"]]
    assert "decoder.2.bias" in failed and "encoder.3.bias" in failed, failed


def test_iwae_checkpoint_is_checked_on_its_own_bound(capsys, tmp_path):
    model = sv.build_model("mlp", "vae", latent_dim=2, objective="iwae", iw_samples=3)
    config = {"model": "mlp", "kind": "vae", "latent_dim": 2, "loss": "bce", "beta": 1.0,
              "image_shape": [1, 28, 28], "objective": "iwae", "iw_samples": 3}
    path = tmp_path / "iw.npz"
    save_checkpoint(path, Checkpoint(config, model.state_dict(), epoch=1))
    code, report = _json(capsys, "--checkpoint", path, "--max-entries", 4)
    assert code == 0 and report["ok"] and report["objective"] == "iwae" and report["iw_samples"] == 3
    _assert_one_line_error(*_run(capsys, "--checkpoint", path, "--iw-samples", 5)[::2], "--iw-samples")


@pytest.mark.parametrize("argv, words", [
    (["--model", "mlp", "--iw-samples", "3"], ["--iw-samples 3 needs --objective iwae"]),
    (["--model", "mlp", "--objective", "elbo", "--iw-samples", "2"], ["--iw-samples 2 needs --objective iwae"]),
    (["--model", "mlp", "--kind", "ae", "--objective", "iwae"], ["--objective iwae", "--kind vae"]),
    (["--model", "faces", "--objective", "iwae"], ["--objective iwae", "BatchNorm2d", "independent draws"]),
    (["--layer", "relu", "--objective", "iwae"], ["--objective", "--layer"]),
    (["--loss", "bce", "--iw-samples", "2"], ["--iw-samples", "--loss"]),
])
def test_iwae_bad_input_is_one_line(capsys, argv, words):
    _assert_one_line_error(*_run(capsys, *argv)[::2], *words)


@pytest.mark.parametrize("argv", [["--model", "mlp", "--objective", "iwae", "--iw-samples", "0"],
                                  ["--model", "mlp", "--objective", "vamp"]])
def test_iwae_argparse_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(["gradcheck", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err and "--" in err.strip().splitlines()[-1]
