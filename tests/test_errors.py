"""Bad input and bugs apart: a UsageError is one line on stderr and exit 2; anything else is a bug
and keeps its traceback (exit 1), whatever its type. (The bad input of each command is tested
with that command; here, the line between the two.)"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scratchvae as sv
from scratchvae.checkpoint import Checkpoint, CheckpointError, save_checkpoint
from scratchvae.cli import main
from scratchvae.commands import images
from scratchvae.data import DataFileError
from conftest import CHILD_CWD
from scratchvae.errors import UsageError

@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """An untrained 2-latent MLP VAE (sample needs no dataset)."""
    config = {"model": "mlp", "kind": "vae", "latent_dim": 2, "loss": "bce", "beta": 1.0, "image_shape": [1, 28, 28],
              "dataset": "mnist", "seed": 0}
    sv.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "m.npz"
    save_checkpoint(path, Checkpoint(config, sv.build_model("mlp", latent_dim=2).state_dict()))
    return path


def _broadcast(*_):
    return np.ones((2, 3)) + np.ones((4, 5))                      # ValueError: operands could not be broadcast


def _wrong_call(*_):
    return np.concatenate(np.ones(3), axis=0, out=1)             # TypeError


def _overflow(*_):
    with np.errstate(all="raise"):
        return np.exp(np.array([1000.0]))                        # FloatingPointError


def _missing_file(*_):
    return open("/nonexistent/scratchvae-internal-file")         # FileNotFoundError, an OSError


@pytest.mark.parametrize("bug, error", [(_broadcast, ValueError), (_wrong_call, TypeError),
                                        (_overflow, FloatingPointError), (_missing_file, OSError)])
def test_a_bug_inside_a_command_keeps_its_traceback(monkeypatch, ckpt, bug, error):
    """The four types cli.py used to turn into 'scratchvae: error: ...' and exit 2: raised by a bug,
    not by a check of the input, each reaches the caller as itself."""
    monkeypatch.setattr(images, "_decode_mean", bug)
    with pytest.raises(error) as info:
        main(["sample", str(ckpt), "--n", "4"])
    assert not isinstance(info.value, UsageError)


def test_in_a_real_process_a_bug_exits_1_with_its_traceback_and_bad_input_2_with_one_line(ckpt, tmp_path):
    code = ("import sys, numpy as np\n"
            "from scratchvae.commands import images\n"
            "images._decode_mean = lambda model, z: np.ones((2, 3)) + np.ones((4, 5))\n"
            "from scratchvae.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    bug = subprocess.run([sys.executable, "-c", code, "sample", str(ckpt)], capture_output=True, text=True,
                         cwd=CHILD_CWD, timeout=300)
    assert bug.returncode == 1
    assert "Traceback" in bug.stderr and "could not be broadcast" in bug.stderr
    assert "scratchvae: error" not in bug.stderr
    bad = subprocess.run([sys.executable, "-c", code, "sample", str(tmp_path / "none.npz")], capture_output=True,
                         text=True, cwd=CHILD_CWD, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"scratchvae: error: {tmp_path / 'none.npz'}: no such checkpoint file"


def test_the_input_errors_are_usage_errors_and_value_errors():
    """A library caller that catches ValueError (as before there was a UsageError) still catches them."""
    for cls in (CheckpointError, DataFileError):
        assert issubclass(cls, UsageError) and issubclass(cls, ValueError)


def test_an_out_folder_the_file_system_refuses_is_bad_input(tmp_path, capsys):
    (tmp_path / "file").write_text("in the way")
    train = ["train", "--epochs", "1", "--train-size", "64", "--no-progress", "--out"]
    for argv in ([*train, str(tmp_path / "file" / "run")], [*train, str(tmp_path / "file")],
                 ["zoo", "pixel-mean", "--quick", "--out", str(tmp_path / "file" / "zoo")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("scratchvae: error:") and str(tmp_path / "file") in err


def test_a_labels_csv_that_is_not_text_is_bad_input(tmp_path, capsys):
    from scratchvae.latent.features import labels_from_file
    (tmp_path / "labels.csv").write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(UsageError, match="labels.csv: not a readable CSV file"):
        labels_from_file(tmp_path / "labels.csv", 3)


@pytest.mark.parametrize("argv, words", [
    (["train", "--model", "faces", "--workers", "2", "--epochs", "1", "--train-size", "8"],
     ["--workers 2", "BatchNorm"]),
    (["train", "--model", "faces", "--batch-size", "1", "--epochs", "1", "--train-size", "8"],
     ["--batch-size 1", "BatchNorm"]),
])
def test_flags_a_model_cannot_take_are_bad_input(tmp_path, capsys, argv, words):
    """Checked by the command before the library would refuse them (DataParallel's ValueError), or
    would train nothing (BatchNorm skips a lone image: every batch of one)."""
    assert main([*argv, "--no-progress", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("scratchvae: error:") and all(w in err for w in words), err
    assert not (tmp_path / "run").exists()


def test_evaluate_workers_a_model_cannot_take_is_bad_input(tmp_path, capsys):
    config = {"model": "faces", "kind": "vae", "latent_dim": 4, "loss": "bce", "beta": 1.0, "image_shape": [1, 64, 64],
              "dataset": "olivetti", "seed": 0}
    path = tmp_path / "faces.npz"
    save_checkpoint(path, Checkpoint(config, sv.build_model("faces", latent_dim=4).state_dict()))
    assert main(["evaluate", str(path), "--workers", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--workers 2" in err and "BatchNorm" in err
