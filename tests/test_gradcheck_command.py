"""``scratchvae gradcheck``: every layer, model and loss passes; a broken backward fails; bad input exits 2."""
import json

import numpy as np
import pytest

import scratchvae as sv
from scratchvae.checkpoint import Checkpoint, save_checkpoint
from scratchvae.cli import main
from scratchvae.commands import gradcheck as command

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
