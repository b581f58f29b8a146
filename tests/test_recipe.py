"""The recipe's flags: the cosine learning-rate schedule and --preset (docs/recipes.md)."""
import json
import math

import numpy as np
import pytest

from scratchvae.cli import main
from scratchvae.commands.train_flags import DEFAULTS, PRESETS
from scratchvae.train import learning_rate

SMALL = ["--train-size", "256", "--batch-size", "64", "--no-progress"]


def test_the_cosine_schedule_falls_from_lr_towards_zero():
    lrs = [learning_rate(e, 1e-3, "cosine", 10) for e in range(1, 11)]
    assert lrs[0] == 1e-3 and all(a > b for a, b in zip(lrs, lrs[1:])) and 0 < lrs[-1] < 0.03e-3
    assert learning_rate(6, 1e-3, "cosine", 10) == pytest.approx(0.5e-3)      # half-way: cos(pi/2) = 0
    assert learning_rate(7, 2e-3, "constant", 10) == 2e-3
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        learning_rate(1, 1e-3, "step", 10)


def _rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_run_steps_adam_with_each_epochs_rate(tmp_path, monkeypatch):
    """The rate Adam uses in each step is the schedule's for that epoch (recorded from inside
    Adam.step, not from the row), and the rows say so."""
    from scratchvae import optim
    seen = []
    original = optim.Adam.begin_step
    monkeypatch.setattr(optim.Adam, "begin_step", lambda self: (seen.append(self.lr), original(self))[1])
    out = tmp_path / "run"
    assert main(["train", "--epochs", "3", "--lr-schedule", "cosine", "--lr", "0.002", "--out", str(out), *SMALL]) == 0
    want = [learning_rate(e, 0.002, "cosine", 3) for e in (1, 2, 3)]
    assert sorted(set(seen), reverse=True) == pytest.approx(want) and len(seen) == 3 * 4   # 4 steps an epoch
    assert [r["lr"] for r in _rows(out)] == pytest.approx(want)
    assert json.loads((out / "config.json").read_text())["lr_schedule"] == "cosine"


def test_without_a_schedule_the_rows_are_as_before(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out), *SMALL]) == 0
    assert "lr" not in _rows(out)[0]


def test_a_preset_fills_the_settings_and_a_flag_given_wins(tmp_path, monkeypatch):
    monkeypatch.setitem(PRESETS, "best", {**PRESETS["best"], "epochs": 1})   # the recipe, one epoch long
    out = tmp_path / "run"
    assert main(["train", "--preset", "best", "--model", "mlp", "--out", str(out), *SMALL]) == 0
    config = json.loads((out / "config.json").read_text())
    for key, value in PRESETS["best"].items():
        assert config[key] == ("mlp" if key == "model" else value), key
    assert config["preset"] == "best" and config["batch_size"] == 64
    # resuming repeats the command line: the preset's settings are the run's own
    assert main(["train", "--preset", "best", "--model", "mlp", "--out", str(out), "--resume", "--epochs", "2",
                 *SMALL]) == 0
    assert [r["epoch"] for r in _rows(out)] == [1, 2]


def test_the_best_preset_is_the_recipe_docs_recipes_describes():
    """docs/recipes.md quotes the preset's settings; this keeps the two from drifting apart."""
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "recipes.md").read_text()
    for key, value in PRESETS["best"].items():
        assert f"--{key.replace('_', '-')} {value}" in text, key
    assert set(PRESETS["best"]) <= set(DEFAULTS)


def test_an_unknown_preset_is_a_one_line_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--preset", "fastest", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "invalid choice: 'fastest'" in err.splitlines()[-1]


def _fake_run(root, name: str, epochs: int, nll: float, **config) -> "Path":
    run = root / name
    run.mkdir()
    cfg = {"model": "conv", "kind": "vae", "latent_dim": 32, "binarize": "dynamic", "seed": 1, "epochs": epochs,
           "lr": 1e-3, "lr_schedule": "constant", **config}
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "eval.json").write_text(json.dumps({"nll": nll, "nll_stderr": 0.2, "elbo": nll + 4, "k": 100,
                                               "n": 10000}))
    return run


def test_the_recipes_table_and_figure_read_the_runs(tmp_path, capsys):
    """benchmarks/recipes.py table: minutes = epochs x the measured epoch time; the recipe column
    shows only the flags that differ from train's defaults; the figure plots every run."""
    import sys
    from pathlib import Path
    import pngs
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import recipes
    a = _fake_run(tmp_path, "a", 30, 89.1)
    b = _fake_run(tmp_path, "b", 12, 87.7, prior="vamp", lr_schedule="cosine")
    timings = tmp_path / "t.json"
    timings.write_text(json.dumps({str(a): 10.0, str(b): 15.0}))
    figure = tmp_path / "f.png"
    assert recipes.main(["table", str(a), str(b), "--timings", str(timings), "--figure", str(figure)]) == 0
    out = capsys.readouterr().out
    assert "| a | `--model conv --binarize dynamic` | 30 | 10.0 | 5.0 | 89.10 ± 0.20 | 93.10 |" in out
    assert "| b | `--model conv --binarize dynamic --lr-schedule cosine --prior vamp` | 12 | 15.0 | 3.0 |" in out
    pngs.assert_plots(figure, 1, min_span=0.6)   # two points at the x extremes: ~90% of the axis apart
