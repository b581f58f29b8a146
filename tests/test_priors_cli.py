"""The learned priors through the product: train, resume, workers, evaluate, sample, latent, gradcheck,
and the refusals (one line, exit 2)."""
import json
from pathlib import Path

import numpy as np
import pytest

import pngs
import scratchvae as sv
from scratchvae.checkpoint import load_checkpoint, load_model
from scratchvae.cli import main
from scratchvae.evaluation import evaluate_model, importance_sampled_nll
from scratchvae.parallel import DataParallel

SMALL = ["--train-size", "300", "--batch-size", "64", "--no-progress", "--latent-dim", "2", "--binarize", "dynamic"]


def _run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:      # argparse's own refusals (its usage, then one error line)
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith(("scratchvae: error:", "scratchvae train: error:")) and "Traceback" not in err, err
    assert all(w in lines[-1] for w in words), lines[-1]


@pytest.fixture(scope="module", params=["mog", "vamp"])
def run(request, tmp_path_factory):
    """A 2-epoch run with the prior, M = 5."""
    out = tmp_path_factory.mktemp(request.param) / "run"
    assert main(["train", "--epochs", "2", "--out", str(out), "--prior", request.param,
                 "--prior-components", "5", *SMALL]) == 0
    return request.param, out


def test_train_keeps_the_prior_in_config_and_checkpoint(run):
    prior, out = run
    config = json.loads((out / "config.json").read_text())
    assert config["prior"] == prior and config["prior_components"] == 5
    state = load_checkpoint(out / "last.npz").model_state
    learned = {"mog": ("prior.means", (5, 2)), "vamp": ("prior.pseudo_logits", (5, 1, 28, 28))}[prior]
    assert state[learned[0]].shape == learned[1]
    model, _ = load_model(out / "last.npz")
    assert type(model.prior).__name__ == {"mog": "MixtureOfGaussians", "vamp": "VampPrior"}[prior]
    np.testing.assert_array_equal(dict(model.named_parameters())[learned[0]].data, state[learned[0]])


def test_evaluate_reports_no_per_dimension_kl_for_a_learned_prior(run, capsys):
    prior, out = run
    code, table, _ = _run(capsys, "evaluate", out / "best.npz", "--k", 8, "--n", 40, "--no-progress")
    assert code == 0 and "KL per dim" not in table
    assert f"one-sample log q(z|x) - log p(z) under the learned {prior} prior" in table
    code, text, _ = _run(capsys, "evaluate", out / "best.npz", "--k", 8, "--n", 40, "--no-progress", "--json")
    ev = json.loads(text)
    assert ev["kl_per_dim"] is None and np.isfinite(ev["nll"]) and ev["nll"] <= ev["elbo"] + 5 * ev["nll_stderr"]


def test_the_nll_uses_the_model_s_own_prior(run):
    """Swap the learned prior for N(0, I) with the same encoder and decoder: the log-weights change,
    so the nll does (same draws, same images)."""
    _, out = run
    model, checkpoint = load_model(out / "best.npz")
    x = (np.random.default_rng(0).random((20, 1, 28, 28)) < 0.2).astype(np.float32)
    learned = importance_sampled_nll(model, x, 4, rng=np.random.default_rng(1), progress=False, workers=1)
    plain = sv.VAE(model.encoder, model.decoder, 2)
    normal = importance_sampled_nll(plain, x, 4, rng=np.random.default_rng(1), progress=False, workers=1)
    assert np.abs(learned - normal).max() > 1e-3
    # and two workers (each a replica with its own copy of the components) give the same numbers
    two = importance_sampled_nll(model, x, 4, rng=np.random.default_rng(1), progress=False, workers=2)
    np.testing.assert_allclose(two, learned, rtol=1e-6)  # float32 decoders, BLAS order may differ


def test_sample_and_latent_draw_from_the_learned_prior(run, capsys, tmp_path):
    prior, out = run
    code, text, _ = _run(capsys, "sample", out / "best.npz", "--n", 16, "--out", tmp_path / "s.png")
    assert code == 0
    pngs.assert_mosaic(Path(text.strip()), 4, 4, min_distinct=4)
    code, text, _ = _run(capsys, "latent", out / "best.npz", "--out", tmp_path, "--grid", 6)
    assert code == 0
    grid = next(Path(p) for p in text.split() if "latent-grid" in p)
    pngs.assert_mosaic(grid, 6, 6, min_distinct=4)
    # the grid's codes are the prior's per-axis quantiles: a mixture's, not N(0, 1)'s
    model, _ = load_model(out / "best.npz")
    model.refresh_prior()
    q = model.prior.quantile(np.array([0.5]))[0]              # the medians, (2,)
    assert not np.allclose(q, 0.0, atol=1e-3)


def test_resume_with_a_learned_prior_is_bit_exact(tmp_path):
    flags = ["--prior", "vamp", "--prior-components", "4", "--workers", "2", *SMALL]
    assert main(["train", "--epochs", "2", "--out", str(tmp_path / "whole"), *flags]) == 0
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "parts"), *flags]) == 0
    assert main(["train", "--out", str(tmp_path / "parts"), "--resume", "--epochs", "2", "--no-progress"]) == 0
    with np.load(tmp_path / "whole" / "last.npz") as a, np.load(tmp_path / "parts" / "last.npz") as b:
        for key in a.files:
            if key != "meta.config":
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # same code, same order


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_two_workers_give_one_worker_s_gradient(prior, rng):
    """Each worker's replica encodes its share with the pseudo-inputs; the reduce sums the u rows'
    gradients. float64, the same eps: equal to rounding (rtol 1e-10, far below any missing share)."""
    sv.manual_seed(0)
    model = sv.build_model("mlp", latent_dim=2, prior=prior, prior_components=3).to(np.float64)
    x = (rng.random((10, 1, 28, 28)) < 0.3).astype(np.float64)
    eps = rng.standard_normal((10, 2))
    grads = []
    for workers in (1, 2):
        parallel = DataParallel(model, workers, images_per_pass=2 if workers == 2 else None)
        parallel.zero_grad()
        loss = parallel.loss_and_backward(x, eps=eps)
        grads.append((loss.total, {n: p.grad.copy() for n, p in model.named_parameters()}))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-12)
    for name, g in grads[0][1].items():
        np.testing.assert_allclose(grads[1][1][name], g, rtol=1e-10, atol=1e-14, err_msg=name)
        assert np.abs(g).max() > 0, name


@pytest.mark.parametrize("argv, words", [
    (["train", "--prior-components", "0"], ["--prior-components", "positive integer"]),
    (["train", "--prior", "gauss"], ["--prior", "invalid choice"]),
    (["train", "--model", "faces", "--prior", "vamp"], ["--prior vamp", "BatchNorm"]),
    (["train", "--prior", "mog", "--trace-grads"], ["--trace-grads", "--prior mog"]),
    (["gradcheck", "--layer", "linear", "--prior", "mog"], ["--prior does not apply to --layer"]),
    (["gradcheck", "--model", "faces", "--prior", "vamp"], ["--prior vamp", "BatchNorm"]),
    (["gradcheck", "--model", "mlp", "--kind", "ae", "--prior", "mog"], ["apply to a VAE"]),
])
def test_bad_prior_settings_are_one_line_errors(argv, words, capsys, tmp_path):
    code, _, err = _run(capsys, *argv, *(["--out", tmp_path / "r"] if argv[0] == "train" else []))
    _one_line_error(code, err, *words)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_gradcheck_command_checks_the_learned_prior(prior, capsys):
    code, text, _ = _run(capsys, "gradcheck", "--model", "keras", "--prior", prior, "--json", "--max-entries", 8)
    report = json.loads(text)
    names = {row["name"] for row in report["rows"]}
    assert code == 0 and report["ok"] and report["prior"] == prior and report["prior_components"] == 4
    assert names >= ({"prior.means", "prior.logvars"} if prior == "mog" else {"prior.pseudo_logits"})


def test_evaluate_model_on_a_learned_prior_in_float64_matches_float32(run):
    """The components follow the model's dtype (Module.to drops the old ones)."""
    _, out = run
    model, _ = load_model(out / "best.npz")
    x = (np.random.default_rng(3).random((10, 1, 28, 28)) < 0.2).astype(np.float32)
    a = evaluate_model(model, x, k=3, rng=np.random.default_rng(0), progress=False, workers=1)
    b = evaluate_model(model.to(np.float64), x, k=3, rng=np.random.default_rng(0), progress=False, workers=1)
    assert a.nll == pytest.approx(b.nll, rel=1e-4) and a.elbo == pytest.approx(b.elbo, rel=1e-4)
