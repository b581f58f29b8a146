"""The run folder: config, checkpoints, exact resume, Ctrl-C, the NaN guard, KL warm-up, bad input."""
import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import CHILD_CWD
from scratchvae import checkpoint as ckpt_module
from scratchvae import train as train_module
from scratchvae.checkpoint import CheckpointError, load_checkpoint, load_model
from scratchvae.cli import main
from scratchvae.commands import train as train_command

SMALL = ["--train-size", "300", "--batch-size", "64", "--no-progress"]


def _train(out: Path, *flags: str, epochs: int = 2) -> int:
    return main(["train", "--epochs", str(epochs), "--out", str(out), *SMALL, *flags])


def _weights_and_state(path: Path) -> dict[str, np.ndarray]:
    """Everything in a checkpoint but its config (whose command line differs between runs)."""
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k != "meta.config"}


def _assert_same(a: Path, b: Path) -> None:
    wa, wb = _weights_and_state(a), _weights_and_state(b)
    assert sorted(wa) == sorted(wb)
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)  # same code, same order: bit for bit


def _metrics(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("seconds")
    return rows


def test_run_folder_holds_config_checkpoints_and_metrics(tmp_path):
    out = tmp_path / "run"
    assert _train(out, "--seed", "4") == 0
    config = json.loads((out / "config.json").read_text())
    for key in ("model", "kind", "latent_dim", "loss", "beta", "binarize", "dataset", "image_shape", "seed",
                "workers", "epochs", "batch_size", "lr", "kl_warmup"):
        assert key in config, key
    assert config["seed"] == 4 and config["image_shape"] == [1, 28, 28] and config["latent_dim"] == 20
    assert config["command"][:2] == ["scratchvae", "train"] or config["command"][0] == "scratchvae"
    assert set(config["versions"]) >= {"scratchvae", "numpy", "numba", "python"}
    with np.load(out / "last.npz", allow_pickle=False) as npz:
        keys = set(npz.files)
        assert {"encoder.1.weight", "decoder.2.bias", "optimizer.t", "optimizer.m.0", "optimizer.v.7",
                "rng.train", "rng.model", "meta.epoch", "meta.best_loss", "meta.config"} <= keys
        assert int(npz["meta.epoch"]) == 2 and int(npz["optimizer.t"]) == 2 * 5  # 300 images in batches of 64
        assert json.loads(str(npz["meta.config"]))["seed"] == 4
    best = load_checkpoint(out / "best.npz")
    rows = _metrics(out)
    assert best.best_loss == min(r["test_loss"] for r in rows) and best.epoch == 2
    model, _ = load_model(out / "last.npz")
    assert model.num_parameters() > 0 and not model.training


def test_same_seed_same_workers_same_run(tmp_path):
    assert _train(tmp_path / "a", "--seed", "7") == 0
    assert _train(tmp_path / "b", "--seed", "7") == 0
    _assert_same(tmp_path / "a" / "last.npz", tmp_path / "b" / "last.npz")
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")


@pytest.mark.parametrize("flags", [[], ["--model", "conv", "--workers", "2", "--binarize", "dynamic",
                                        "--latent-dim", "4"],
                                   ["--model", "conv", "--workers", "2", "--objective", "iwae", "--iw-samples", "3",
                                    "--latent-dim", "4"]], ids=["mlp", "conv-2-workers", "iwae-2-workers"])
def test_resume_after_an_epoch_ends_bit_for_bit_where_the_whole_run_ends(tmp_path, flags):
    assert _train(tmp_path / "whole", *flags, epochs=3) == 0
    assert _train(tmp_path / "parts", *flags, epochs=1) == 0
    assert main(["train", "--out", str(tmp_path / "parts"), "--resume", "--epochs", "3", "--no-progress"]) == 0
    _assert_same(tmp_path / "whole" / "last.npz", tmp_path / "parts" / "last.npz")
    assert _metrics(tmp_path / "whole") == _metrics(tmp_path / "parts")  # appended, epochs 1, 2, 3


def _stop_after(calls: int):
    """A StopOnCtrlC whose Ctrl-C arrives after ``calls`` steps (as if pressed then)."""
    class Stop(train_command.StopOnCtrlC):
        def __call__(self) -> bool:
            self.count = getattr(self, "count", 0) + 1
            return self.count >= calls
    return Stop


def test_a_stop_inside_an_epoch_saves_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    assert _train(tmp_path / "whole", epochs=2) == 0
    monkeypatch.setattr(train_command, "StopOnCtrlC", _stop_after(9))  # 1 + 5 calls in epoch 1, 1 + 2 in epoch 2
    assert _train(tmp_path / "parts", epochs=2) == 130
    err = capsys.readouterr().err
    assert "stopped in epoch 2, after step 2" in err and f"--out {tmp_path / 'parts'} --resume" in err
    stopped = load_checkpoint(tmp_path / "parts" / "last.npz")
    assert stopped.epoch == 1 and int(stopped.progress["step"]) == 2
    monkeypatch.undo()
    assert main(["train", "--out", str(tmp_path / "parts"), "--resume", "--no-progress"]) == 0
    _assert_same(tmp_path / "whole" / "last.npz", tmp_path / "parts" / "last.npz")
    assert _metrics(tmp_path / "whole") == _metrics(tmp_path / "parts")


def test_ctrl_c_in_a_real_process_exits_130_and_the_run_resumes_exactly(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "scratchvae.cli", "train", "--epochs", "3", "--out", str(out),
               "--train-size", "3000", "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}   # each epoch line reaches us as it is printed
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=CHILD_CWD)
    for line in proc.stdout:
        if line.startswith("epoch   1"):   # epoch 1 done: Ctrl-C lands in epoch 2 or between epochs
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Go on with: scratchvae train --out" in err and "Traceback" not in err
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert main(["train", "--epochs", "3", "--out", str(tmp_path / "whole"), "--train-size", "3000",
                 "--no-progress"]) == 0
    _assert_same(tmp_path / "whole" / "last.npz", out / "last.npz")


#: a training run whose first step of epoch 2 says so on stdout and then waits (at most 60 s, for the
#: Ctrl-Cs), so the test's two signals land inside that step whatever the machine's speed
SLOW_STEP = """
import sys, time
import scratchvae.train as train_module
from scratchvae.cli import main
real_step, calls = train_module._step, []
def step(*args, **kwargs):
    calls.append(1)
    if len(calls) == 6:                      # 300 images in batches of 64: 5 steps per epoch
        print("in the step", flush=True)
        time.sleep(60)                       # a Ctrl-C's handler runs, then the sleep goes on
    return real_step(*args, **kwargs)
train_module._step = step
sys.exit(main(sys.argv[1:]))
"""


def test_a_second_ctrl_c_abandons_the_step_and_last_npz_still_loads(tmp_path):
    """Ctrl-C asks for a stop after the step; a second Ctrl-C in that step abandons it: exit 130, and
    last.npz is the end of epoch 1, from which the run resumes to the uninterrupted run's weights."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_STEP, "train", "--epochs", "2", "--out", str(out), *SMALL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=CHILD_CWD,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
        if line.startswith("in the step"):
            break
    proc.send_signal(signal.SIGINT)
    assert "stopping after this step" in proc.stderr.readline() + proc.stderr.readline()  # a blank line first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "abandoned the step" in err and "holds epoch 1" in err and "Traceback" not in err, err
    abandoned = load_checkpoint(out / "last.npz")
    assert abandoned.epoch == 1 and abandoned.progress is None
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert _train(tmp_path / "whole", epochs=2) == 0
    _assert_same(tmp_path / "whole" / "last.npz", out / "last.npz")


def test_a_write_killed_halfway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert _train(out, epochs=1) == 0
    before = _weights_and_state(out / "last.npz")

    def dies_halfway(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("killed")
    monkeypatch.setattr(ckpt_module.np, "savez", dies_halfway)
    with pytest.raises(OSError):
        ckpt_module.save_checkpoint(out / "last.npz", load_checkpoint(out / "last.npz"))
    monkeypatch.undo()
    after = _weights_and_state(out / "last.npz")
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == []  # no temp file left


def test_a_nan_stops_training_with_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_step = train_module._step
    calls = []

    def poisoned(model, optimizer, parallel, xb, *rest):
        calls.append(1)
        if len(calls) == 8:                       # epoch 2, step 2: a NaN pixel makes a NaN loss
            xb = xb.copy()
            xb[0, 0, 0, 0] = np.nan
        return real_step(model, optimizer, parallel, xb, *rest)
    monkeypatch.setattr(train_module, "_step", poisoned)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a RuntimeWarning on the way would raise here
        assert _train(out, epochs=3) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("scratchvae: error: non-finite loss")
    assert "epoch 2, step 2" in err and "last good checkpoint" in err
    assert load_checkpoint(out / "last.npz").epoch == 1         # the last good one, loadable


def test_a_nan_gradient_is_named(tmp_path):
    import scratchvae as sv
    from scratchvae.train import TrainingFault, check_finite_gradients
    model = sv.build_model("mlp", latent_dim=2)
    model.parameters()[3].grad[0] = np.inf
    with pytest.raises(TrainingFault, match=r"non-finite gradient of encoder.3.bias at epoch 4, step 9"):
        check_finite_gradients(model, "epoch 4, step 9")


def test_kl_warmup_raises_the_weight_linearly_to_beta(tmp_path):
    out = tmp_path / "run"
    assert _train(out, "--kl-warmup", "3", "--beta", "2", epochs=4) == 0
    rows = _metrics(out)
    np.testing.assert_allclose([r["kl_weight"] for r in rows], [2 / 3, 4 / 3, 2, 2], rtol=1e-12)
    for r in rows:  # the held-out loss is always recon + beta * kl, whatever the weight in training
        assert r["test_loss"] == pytest.approx(r["test_recon"] + 2 * r["test_kl"], rel=1e-6)


def test_the_default_run_folder_never_overwrites_a_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert main(["train", "--epochs", "1", *SMALL]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mlp-vae", "mlp-vae-2"]


def test_a_path_dataset_trains_the_mlp_at_its_size(tmp_path):
    images = (np.random.default_rng(0).random((60, 12, 10)) < 0.5).astype(np.uint8) * 255
    np.save(tmp_path / "data.npy", images)
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(tmp_path / "data.npy"), "--epochs", "1", "--out", str(out),
                 "--batch-size", "16", "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["image_shape"] == [1, 12, 10]
    model, _ = load_model(out / "best.npz")
    assert model.sample(2).shape == (2, 1, 12, 10)


@pytest.mark.parametrize("argv, message", [
    (["--resume"], "--resume needs --out DIR"),
    (["--resume", "--out", "{tmp}/nothing"], "no such checkpoint file"),
    (["--model", "conv", "--dataset", "olivetti"], "model 'conv' takes images of shape (1, 28, 28)"),
    (["--dataset", "{tmp}/missing.npy"], "no such file or folder"),
    (["--dataset", "{tmp}/empty"], "empty"),
    (["--dataset", "{tmp}/nan.npy"], "nan.npy"),
    (["--dataset", "{tmp}/notes.txt"], "notes.txt"),
])
def test_train_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "nan.npy", np.full((10, 28, 28), np.nan, np.float32))
    (tmp_path / "notes.txt").write_text("not images")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["train", "--epochs", "1", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("scratchvae: error:") and message in err


def test_resume_takes_the_runs_own_command_line_again(tmp_path, capsys):
    """A script re-runs the line it ran with --resume added: the flags it repeats say what the
    config says, so nothing is refused, and the run ends where the uninterrupted one does."""
    line = ["--seed", "1", "--lr", "0.002", "--model", "mlp", "--binarize", "dynamic"]
    assert _train(tmp_path / "whole", *line, epochs=2) == 0
    assert _train(tmp_path / "parts", *line, epochs=1) == 0
    assert _train(tmp_path / "parts", *line, "--resume", epochs=2) == 0
    _assert_same(tmp_path / "whole" / "last.npz", tmp_path / "parts" / "last.npz")
    capsys.readouterr()


@pytest.mark.parametrize("flags, words", [
    (["--seed", "2"], ["--seed 2 differs from the run's 1"]),
    (["--seed", "0"], ["--seed 0 differs from the run's 1"]),              # the default, given: still a change
    (["--lr", "0.1", "--binarize", "none"], ["--lr 0.1 differs from the run's 0.002",
                                             "--binarize none differs from the run's dynamic"]),
])
def test_resume_refuses_a_setting_that_differs_naming_old_and_new(tmp_path, capsys, flags, words):
    assert _train(tmp_path / "run", "--seed", "1", "--lr", "0.002", "--binarize", "dynamic", epochs=1) == 0
    before = _weights_and_state(tmp_path / "run" / "last.npz")
    capsys.readouterr()
    assert _train(tmp_path / "run", "--resume", *flags, epochs=2) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("scratchvae: error:") and "only --epochs may change" in err
    assert all(w in err for w in words), err
    after = _weights_and_state(tmp_path / "run" / "last.npz")
    assert all(np.array_equal(before[k], after[k]) for k in before)  # refused before any step


def test_a_folder_holding_a_run_needs_resume(tmp_path, capsys):
    assert _train(tmp_path / "run", epochs=1) == 0
    capsys.readouterr()
    assert _train(tmp_path / "run", epochs=1) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_a_foreign_or_truncated_checkpoint_is_refused(tmp_path):
    assert _train(tmp_path / "run", epochs=1) == 0
    data = (tmp_path / "run" / "last.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.npz: not a readable .npz checkpoint"):
        load_checkpoint(tmp_path / "cut.npz")
    np.savez(tmp_path / "bare.npz", weight=np.zeros(3))
    with pytest.raises(CheckpointError, match="bare.npz: not a scratchvae checkpoint"):
        load_checkpoint(tmp_path / "bare.npz")
    checkpoint = load_checkpoint(tmp_path / "run" / "last.npz")
    checkpoint.config["model"] = "keras"                        # mlp weights, a keras config
    ckpt_module.save_checkpoint(tmp_path / "other.npz", checkpoint)
    with pytest.raises(CheckpointError, match="other.npz: weights do not fit the 'keras' architecture"):
        load_model(tmp_path / "other.npz")
