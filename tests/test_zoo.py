"""The bug zoo: every wrong piece is consistent (it passes the gradient check, which is the point),
the meaning tests catch exactly the bugs docs/zoo.md says they catch, the trained detectors
catch what they are claimed to, and `scratchvae zoo` refuses bad input with one line.

The trained verdicts are asserted only where the quick run (seconds, 3 epochs on 2000 images)
decides them by a wide margin: its float32 training differs in rounding between machines, so a
verdict near its threshold could flip. docs/zoo.md has the default runs' tables.
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

import pngs
from scratchvae import cli
from scratchvae.evaluation import importance_sampled_nll
from scratchvae.gradcheck import check_loss, gradcheck
from scratchvae.nn.activations import sigmoid
from scratchvae.objective import BCE
from scratchvae.zoo import BUGS, get_bug
from scratchvae.zoo import detectors as det
from scratchvae.zoo.bugs import tiny_model
from scratchvae.zoo.pieces import (KLMeanOverDims, LogstdFedAsLogvar, PixelMeanBCE, StdIsExpLogvar, UnclampedBCE,
                                   log_weights, nll_log_of_mean, nll_mean_of_logs)

ROOT = Path(__file__).resolve().parent.parent
ID = re.compile(r"\[([A-Z]+-\d+)\]")
DEFINITION = re.compile(r"^\[([A-Z]+-\d+)\]", re.MULTILINE)   # as tests/test_derivations.py

#: which meaning test catches which bug: (std of z, KL vs Monte Carlo, recon = -log p(x|z))
MEANING = {
    "std-exp-logvar": (True, True, False),
    "logstd-mixup": (True, True, False),
    "pixel-mean": (False, False, True),
    "kl-dim-mean": (False, True, False),
    "bce-unclamped": (False, False, False),
    "iwae-mean-log": (False, False, False),
}


def test_every_bug_is_claimed():
    assert set(MEANING) == set(BUGS)


# -- the wrong pieces are consistent: each backward is the derivative of its own wrong forward -------------
@pytest.mark.parametrize("sampler", [StdIsExpLogvar, LogstdFedAsLogvar])
def test_wrong_samplers_pass_their_gradient_check(sampler, rng):
    mu, logvar, eps = rng.standard_normal((3, 4, 5))
    r = rng.standard_normal((4, 5))
    rep = sampler()
    rep.forward(mu, logvar, eps)
    dmu, dlogvar = rep.backward(r)
    report = gradcheck(lambda: float(np.sum(rep.forward(mu, logvar, eps) * r)),
                       {"mu": (mu, dmu), "logvar": (logvar, dlogvar)})
    assert report.ok, f"\n{report}"


def test_kl_mean_over_dims_passes_its_gradient_check(rng):
    mu, logvar = rng.standard_normal((2, 4, 3))
    kl = KLMeanOverDims()
    kl.forward(mu, logvar)
    dmu, dlogvar = kl.backward()
    report = gradcheck(lambda: kl.forward(mu, logvar), {"mu": (mu, dmu), "logvar": (logvar, dlogvar)})
    assert report.ok, f"\n{report}"


@pytest.mark.parametrize("loss", [PixelMeanBCE, UnclampedBCE])
def test_wrong_losses_pass_their_gradient_check(loss, rng):
    target = (rng.random((3, 8)) < 0.5).astype(np.float64)
    pred = rng.standard_normal((3, 8)) if loss is PixelMeanBCE else rng.uniform(0.05, 0.95, (3, 8))
    report = check_loss(loss(), pred, target)
    assert report.ok, f"\n{report}"


@pytest.mark.parametrize("name", list(BUGS))
def test_the_gradient_check_of_the_whole_buggy_model_passes(name):
    verdict = det.gradient_check(get_bug(name))
    assert verdict.caught is False and verdict.numbers["ok"], verdict.measured


# -- the meaning tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(BUGS))
def test_the_meaning_tests_catch_what_is_claimed(name):
    bug = get_bug(name)
    got = (det.std_of_z(bug).caught, det.kl_vs_monte_carlo(bug).caught, det.recon_is_log_likelihood(bug).caught)
    assert got == MEANING[name]


def test_kl_mean_over_dims_is_the_monte_carlo_kl_over_L():
    v = det.kl_vs_monte_carlo(get_bug("kl-dim-mean"))
    latent = len(det.FIXED_MU)
    # the Monte Carlo mean of 200,000 draws: within 5 standard errors of the closed form times L
    assert abs(v.numbers["closed_form"] * latent - v.numbers["monte_carlo"]) < det.MC_SIGMAS * v.numbers["stderr"] * latent


def test_std_bugs_sample_the_spread_they_claim_not():
    """std-exp-logvar draws with exp(logvar) where exp(logvar / 2) is declared; logstd-mixup draws with
    exp(a / 2) = exp(logvar / 4) where exp(a) is declared; 1% is 6 standard errors of a 200,000-draw std."""
    for name, power in (("std-exp-logvar", 2.0), ("logstd-mixup", 0.5)):
        v = det.std_of_z(get_bug(name))
        np.testing.assert_allclose(v.numbers["std"], np.array(v.numbers["expected"]) ** power, rtol=0.01)


def test_unclamped_bce_is_nan_once_a_float32_sigmoid_rounds_to_0_or_1():
    p = sigmoid(np.array([[-20.0, 20.0, 0.0]], dtype=np.float32))      # 0.5 + 0.5 tanh(a / 2) rounds
    assert p[0, 0] == 0.0 and p[0, 1] == 1.0
    t = np.array([[0.0, 1.0, 1.0]], dtype=np.float32)                    # the right answers, even
    assert np.isnan(UnclampedBCE().forward(p, t))
    assert np.isfinite(BCE().forward(p, t))                              # the clamp [BCE-3] keeps it finite


def test_mean_of_logs_never_falls_below_log_of_mean():
    """Jensen: the mean of the log-weights is at most the log of their mean, for every image and K, with
    equality at K = 1; the right reduction of the zoo's log-weights is evaluation.py's estimate."""
    model = tiny_model(get_bug("iwae-mean-log"))
    x = (np.random.default_rng(0).random((5, 1, 3, 3)) < 0.5).astype(np.float64)
    log_w = log_weights(model, x, 50, np.random.default_rng(1))          # (5, 50)
    reference = importance_sampled_nll(model, x, 50, rng=np.random.default_rng(1), progress=False)
    # the same draws in float64 through the same functions: only the summation order of the
    # log-sum-exp differs (one pass here, a running one there): ~1e-15 of ~10 nats
    np.testing.assert_allclose(nll_log_of_mean(log_w), reference, rtol=1e-12)
    np.testing.assert_array_equal(nll_mean_of_logs(log_w[:, :1]), nll_log_of_mean(log_w[:, :1]))
    for k in (2, 10, 50):
        assert np.all(nll_mean_of_logs(log_w[:, :k]) > nll_log_of_mean(log_w[:, :k]))


# -- the command: trained verdicts (quick runs), the figure, bad input --------------------------------------
def zoo_json(capsys, tmp_path, *argv):
    assert cli.main(["zoo", *argv, "--quick", "--json", "--no-progress", "--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    # samples of the correct and of the buggy model (6 x 6 each), and the plot that tells them apart;
    # a buggy model's samples may all be one image (pixel-mean's collapse), the correct one's differ
    png = tmp_path / f"zoo-{out['bug']}.png"
    pngs.assert_plots(png, 1, mosaic_count=2, min_span=0)
    pngs.assert_mosaic(png, 6, 6, count=2, index=0, min_distinct=18)
    pngs.assert_mosaic(png, 6, 6, count=2, index=1, min_distinct=1)
    return {v["detector"]: v for v in out["verdicts"]}


def test_pixel_mean_collapses_the_posterior_and_its_loss_misreports(capsys, tmp_path):
    v = zoo_json(capsys, tmp_path, "pixel-mean")
    assert v["gradient check"]["caught"] is False
    assert v["ELBO: the loss vs evaluated"]["caught"] is True
    assert v["ELBO: the loss vs evaluated"]["loss"] < 1.0 < 100 < v["ELBO: the loss vs evaluated"]["evaluated"]


def test_kl_mean_over_dims_trains_a_worse_model(capsys, tmp_path):
    v = zoo_json(capsys, tmp_path, "kl-dim-mean")
    assert v["ELBO: the loss vs evaluated"]["caught"] is True
    assert v["ELBO vs correct model"]["caught"] is True and v["nll vs correct model"]["caught"] is True
    assert v["training: NaN stop"]["caught"] is False


def test_unclamped_bce_stops_training_on_a_nan(capsys, tmp_path):
    """At lr 1e-2 a logit passes -17 within two epochs of the quick run (the default run, lr 1e-3,
    gets there in epoch 8); the clamped BCE trains on (run_bug raises if the correct model stops)."""
    v = zoo_json(capsys, tmp_path, "bce-unclamped", "--lr", "1e-2")
    assert v["training: NaN stop"]["caught"] is True and "nan" in v["training: NaN stop"]["measured"]
    assert v["nll vs correct model"]["caught"] is None


def test_mean_of_logs_estimate_does_not_tighten(capsys, tmp_path):
    v = zoo_json(capsys, tmp_path, "iwae-mean-log")
    assert v["nll below the -ELBO"]["caught"] is True and v["nll vs correct model"]["caught"] is True
    assert v["ELBO vs correct model"]["caught"] is False and v["samples: diversity"]["caught"] is False


def test_no_bug_lists_them_all(capsys):
    assert cli.main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == list(BUGS)
    assert cli.main(["zoo", "--list"]) == 0
    assert capsys.readouterr().out == out


def exit_code(argv) -> int:
    """cli.main's status: argparse exits 2 itself (SystemExit); a ValueError is returned as 2."""
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("argv", [["zoo", "no-such-bug"], ["zoo", "pixel-mean", "--epochs", "0"],
                                  ["zoo", "pixel-mean", "--lr", "-1"], ["zoo", "pixel-mean", "--frobnicate"]])
def test_bad_input_is_one_line_and_exit_2(capsys, argv):
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


# -- the docs --------------------------------------------------------------------------------------------
def test_docs_have_a_section_and_a_small_figure_per_bug():
    text = (ROOT / "docs" / "zoo.md").read_text()
    for name in BUGS:
        assert f"## `{name}`" in text, f"docs/zoo.md has no section for {name}"
        png = ROOT / "docs" / "figures" / f"zoo-{name}.png"
        assert f"figures/zoo-{name}.png" in text and png.is_file()
        assert png.stat().st_size < 300_000
    assert "](../zoo.md)" in (ROOT / "docs" / "derivations" / "README.md").read_text()


def test_every_id_the_zoo_cites_is_defined():
    defined = set()
    for page in (ROOT / "docs" / "derivations").glob("*.md"):
        defined |= set(DEFINITION.findall(page.read_text()))
    cited = set(ID.findall((ROOT / "docs" / "zoo.md").read_text()))
    cited |= {i for bug in BUGS.values() for i in ID.findall(bug.right)}
    assert cited and cited <= defined, cited - defined
