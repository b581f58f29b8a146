"""scratchvae tour: the backward pass of a tiny VAE walked step by step (scratchvae/tour.py).

Each step's gradients are checked against finite differences of that step alone, the unrolled
chain must be model.backward() itself, and every derivation id the tour prints must be defined
in docs/derivations. All of it runs in well under a second per model.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchvae import tour_iwae
from scratchvae.cli import main
from scratchvae.distributions import StandardNormal
from scratchvae.objective import IWAE
from scratchvae.tour import TOLERANCE, run_tour, tiny_vae
from scratchvae.tour_iwae import run_iwae_tour

DOCS = Path(__file__).resolve().parent.parent / "docs" / "derivations"
DEFINITION = re.compile(r"^\[([A-Z]+-\d+)\]", re.MULTILINE)  # as tests/test_derivations.py: defined at a line start
ID = re.compile(r"\[([A-Z]+-\d+)\]")


def backward_order(model):
    """(name, type name) of every layer, in the order the backward pass visits them."""
    vae, _, _ = tiny_vae(model)
    decoder = [(f"decoder.{i}", type(m).__name__) for i, m in enumerate(vae.decoder)]
    encoder = [(f"encoder.{i}", type(m).__name__) for i, m in enumerate(vae.encoder)]
    return decoder[::-1], encoder[::-1]


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_tour_prints_every_layer_in_backward_order_with_its_id(model, capsys):
    assert main(["tour", "--model", model]) == 0
    out = capsys.readouterr().out
    decoder, encoder = backward_order(model)
    names = ["loss -> dpred"] + [f"{n} {t}" for n, t in decoder] + ["reparameterize", "KL", "concat -> dh"] \
        + [f"{n} {t}" for n, t in encoder]
    positions = [out.find(name) for name in names]
    assert -1 not in positions, [n for n, p in zip(names, positions) if p == -1]
    assert positions == sorted(positions), "steps out of backward order"
    vae, _, _ = tiny_vae(model)
    for (name, kind), layer in zip(decoder + encoder, [*vae.decoder][::-1] + [*vae.encoder][::-1]):
        block = out[out.find(f"{name} {kind}"):].split("\n")
        dx_formula = layer.FORMULAS["x"].split(";  ")[0]
        assert dx_formula in block[1], (name, block[1])
        assert ID.search(block[1]), f"{name}: no derivation id on its dx line"
    if model == "conv":
        assert "[CONV-7]" in out and "[CONVT-5]" in out
    assert out.strip().splitlines()[-1].startswith("OK: 12 steps")


@pytest.mark.parametrize("model", ["mlp", "conv"])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_step_agrees_with_finite_differences(model, seed):
    tour = run_tour(model, seed)
    errors = {f"{s.name}: {g.name}": g.rel_error for s in tour.steps for g in s.grads}
    assert len(errors) >= 20
    assert all(e < TOLERANCE for e in errors.values()), {k: e for k, e in errors.items() if e >= TOLERANCE}
    assert tour.ok


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_unrolled_chain_is_model_backward(model):
    tour = run_tour(model)
    vae, _, _ = tiny_vae(model)
    assert set(tour.unrolled) == {"input"} | {n for n, _ in vae.named_parameters()}
    for name, grad in tour.unrolled.items():
        # The unrolled chain calls the very layer.backward / loss / KL / reparam methods model.backward()
        # calls, on the same arrays in the same order, so the two agree to the last bit (they do here);
        # rtol 1e-12 leaves room only for a BLAS splitting a product differently between two calls, while
        # a missing or extra term (a dropped beta * KL part, a skipped layer) moves gradients by >= 1e-3.
        np.testing.assert_allclose(grad, tour.model_backward[name], rtol=1e-12, atol=0, err_msg=name)
        assert np.linalg.norm(grad) > 0, f"{name}: a zero gradient checks nothing"
    assert tour.chain_equal


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_every_printed_id_is_defined_in_docs_derivations(model, capsys):
    defined = {i for page in DOCS.glob("*.md") for i in DEFINITION.findall(page.read_text())}
    assert main(["tour", "--model", model]) == 0
    printed = set(ID.findall(capsys.readouterr().out))
    assert {"BCE-2", "RELU-1", "LIN-2", "REP-2", "KL-2", "ELBO-6", "SHAPE-1"} <= printed
    assert printed <= defined, f"printed but defined nowhere in docs/derivations: {sorted(printed - defined)}"
    assert set(run_tour(model).ids()) == printed


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_json_is_a_list_of_steps(model, capsys):
    assert main(["tour", "--model", model, "--seed", "3", "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)
    assert isinstance(steps, list) and len(steps) == 13  # 12 steps, then the chain == model.backward() check
    assert steps[0]["step"].startswith("loss -> dpred") and steps[0]["dout_shape"] is None
    for s in steps[:-1]:
        assert s["ok"] and s["grads"]
        for g in s["grads"]:
            assert g["rel_error"] < TOLERANCE and ID.search(g["formula"]) and isinstance(g["shape"], list)
    assert steps[-1]["ok"] and steps[-1]["seed"] == 3 and steps[-1]["max_rel_diff"] <= 1e-12


def test_unknown_model_exits_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's choices refuse it
        main(["tour", "--model", "resnet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "invalid choice: 'resnet'" in err[-1]
    with pytest.raises(ValueError, match="unknown tour model 'resnet', choose from mlp, conv") as info:
        run_tour("resnet")  # the library refuses it too, in one line
    assert "\n" not in str(info.value)


def test_the_installed_command_runs_the_tour(tmp_path):
    """`scratchvae tour` as a user types it: the console script pip installed, in a process of its own."""
    beside = Path(sys.executable).with_name("scratchvae")       # a venv's bin/, else wherever PATH finds it
    script = str(beside) if beside.is_file() else shutil.which("scratchvae")
    assert script, "no scratchvae command installed (pip install . puts one beside python)"
    done = subprocess.run([script, "tour", "--model", "conv", "--json"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = json.loads(done.stdout)
    assert len(steps) == 13 and all(s["ok"] for s in steps) and "Conv2d" in json.dumps(steps)


def test_demo_prints_both_tours(tmp_path):
    demo = Path(__file__).resolve().parent.parent / "demos" / "08_gradient_tour.py"
    done = subprocess.run([sys.executable, str(demo), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("OK: 12 steps") == 2 and "encoder.0 Conv2d" in done.stdout
    assert (tmp_path / "tour-mlp.txt").read_text().strip().splitlines()[-1].startswith("OK")
    assert (tmp_path / "tour-conv.txt").is_file()


# -- the importance-weighted bound's backward: scratchvae tour --objective iwae (scratchvae/tour_iwae.py) -------
class UnnormalisedWeights(IWAE):
    """WRONG: backward weights each sample by w = exp(log w) instead of w / sum_j w_j [IWG-3]."""

    def _run(self, vae, x, target, eps):
        loss, recon, kl = super()._run(vae, x, target, eps)
        self.cache = self.cache._replace(weights=np.exp(-recon - vae.beta * kl))
        return loss, recon, kl


class UniformWeights(IWAE):
    """WRONG: backward weights each sample by 1/K: the gradient of the mean of the K ELBOs, not of the bound."""

    def _run(self, vae, x, target, eps):
        out = super()._run(vae, x, target, eps)
        self.cache = self.cache._replace(weights=np.full_like(self.cache.weights, 1 / self.k))
        return out


class PriorSignFlipped(IWAE):
    """WRONG: the prior's term [IWG-5] enters dz with the wrong sign."""

    def backward(self, vae, dloss=1.0):
        flip = vae.prior.log_prob_backward
        vae.prior.log_prob_backward = lambda z, dlogp: flip(z, -dlogp)
        try:
            return super().backward(vae, dloss)
        finally:
            del vae.prior.log_prob_backward


def iwae_backward_order(model, k=3):
    decoder, encoder = backward_order(model)
    return (["loss -> log w", "recon rows -> dpred"] + [f"{n} {t}" for n, t in decoder]
            + ["prior log p(z)", "sum over the K samples", "posterior.params_backward -> dh"]
            + [f"{n} {t}" for n, t in encoder])


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_iwae_tour_walks_iwae_backward_in_order_and_shows_the_weights(model, capsys):
    assert main(["tour", "--model", model, "--objective", "iwae"]) == 0
    out = capsys.readouterr().out
    names = iwae_backward_order(model)
    positions = [out.find(name) for name in names]
    assert -1 not in positions, [n for n, p in zip(names, positions) if p == -1]
    assert positions == sorted(positions), "steps out of backward order"
    assert out.splitlines()[0].startswith(f"backward tour: {model} VAE, IWAE K = 3,")
    assert out.strip().splitlines()[-1].startswith(f"OK: {len(names)} steps")
    # the weights of each image, as the objective's cache holds them after model.loss()
    vae, x, eps = tiny_vae(model, 0, "iwae", 3)
    vae.loss(x, eps=eps)
    shown = re.search(r"w~, each image's K weights: (.*)\)", out)[1]
    for i, row in enumerate(vae.objective.cache.weights):
        assert f"image {i}: " + " ".join(f"{w:.3f}" for w in row) in shown
    assert "sum over k, per image: 1.000, 1.000, 1.000" in out
    assert max(vae.objective.cache.weights.max(axis=1)) > 0.45   # far from uniform 1/3: the weights matter here
    defined = {i for page in DOCS.glob("*.md") for i in DEFINITION.findall(page.read_text())}
    printed = set(ID.findall(out))
    assert {"IWG-2", "IWG-3", "IWG-4", "IWG-5", "IWG-6", "PRIOR-2", "ELBO-6"} <= printed <= defined


@pytest.mark.parametrize("model, seed, k", [("mlp", 0, 3), ("mlp", 1, 1), ("conv", 0, 3), ("conv", 2, 5)])
def test_every_iwae_step_agrees_with_finite_differences_and_is_model_backward(model, seed, k):
    tour = run_iwae_tour(model, seed, k)
    errors = {f"{s.name}: {g.name}": g.rel_error for s in tour.steps for g in s.grads}
    assert len(errors) >= 20
    assert all(e < TOLERANCE for e in errors.values()), {n: e for n, e in errors.items() if e >= TOLERANCE}
    vae, _, _ = tiny_vae(model, seed, "iwae", k)
    assert set(tour.unrolled) == {"input"} | {n for n, _ in vae.named_parameters()}
    for name, grad in tour.unrolled.items():
        # the same calls on the same arrays as IWAE.backward (see test_unrolled_chain_is_model_backward):
        # a dropped prior term or a 1/K for w~ moves gradients by >= 1e-3
        np.testing.assert_allclose(grad, tour.model_backward[name], rtol=1e-12, atol=0, err_msg=name)
        assert np.linalg.norm(grad) > 0, f"{name}: a zero gradient checks nothing"
    assert tour.ok and tour.iw_samples == k


def test_iwae_tour_at_k_1_weights_each_image_by_1_over_n(capsys):
    """At K = 1 the bound is the single-sample ELBO [IWG-2]: w~ = 1, g = 1/N."""
    assert main(["tour", "--objective", "iwae", "--iw-samples", "1", "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)
    assert steps[0]["grads"][0]["shape"] == [3, 1] and "image 0: 1.000;" in steps[0]["note"]
    assert steps[-1]["objective"] == "iwae" and steps[-1]["iw_samples"] == 1 and steps[-1]["ok"]


class FlippedPrior(StandardNormal):
    """WRONG: d log p / dz = +z [PRIOR-2] (the prior's own backward, which the tour calls too)."""

    def log_prob_backward(self, z, dlogp):
        return -super().log_prob_backward(z, dlogp)


def _flip_prior(vae):
    vae.prior = FlippedPrior(vae.latent_dim)


def _unnormalised_weights(vae):
    vae.objective = UnnormalisedWeights(vae.objective.k)


def _uniform_weights(vae):
    vae.objective = UniformWeights(vae.objective.k)


@pytest.mark.parametrize("install, step", [(_unnormalised_weights, "loss -> log w"),
                                           (_uniform_weights, "loss -> log w"),
                                           (_flip_prior, "prior log p(z)")], ids=["unnormalised", "uniform", "prior"])
def test_a_wrong_iwae_step_makes_the_tour_fail(install, step, monkeypatch, capsys):
    """The tour checks the library's own pieces: a wrong formula in one fails the step that computes it,
    first in the walk, and the command exits 1."""
    def with_a_wrong_piece(*args):
        vae, x, eps = tiny_vae(*args)
        install(vae)
        return vae, x, eps
    monkeypatch.setattr(tour_iwae, "tiny_vae", with_a_wrong_piece)
    assert main(["tour", "--objective", "iwae"]) == 1
    out = capsys.readouterr().out
    block = out[out.find(step):].split("\n")
    assert "above tolerance" in block[1], block[1]
    assert out.strip().splitlines()[-1].startswith("FAIL")
    tour = run_iwae_tour()
    assert next(s.name for s in tour.steps if not s.ok).startswith(step)
    weights = re.search(r"w~, each image's K weights: (.*)\)", out)[1]
    sums = re.search(r"sum over k, per image: (.*)\)", out)[1]
    if install is _unnormalised_weights:            # exp(log w) of about -12 nats: far below 1, what the tour shows
        assert all(float(v) < 0.01 for v in sums.split(", ")), sums
    elif install is _uniform_weights:
        assert weights.count("0.333 0.333 0.333") == 3 and sums == "1.000, 1.000, 1.000"


def test_a_wrong_line_in_iwae_backward_alone_fails_the_chain_check(monkeypatch, capsys):
    """A wrong line in IWAE.backward that the tour's unrolled lines do not share (the prior's term with
    its sign flipped there): every step passes, the unrolled chain differs from model.backward()."""
    def with_a_wrong_backward(*args):
        vae, x, eps = tiny_vae(*args)
        vae.objective = PriorSignFlipped(vae.objective.k)
        return vae, x, eps
    monkeypatch.setattr(tour_iwae, "tiny_vae", with_a_wrong_backward)
    assert main(["tour", "--objective", "iwae"]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("FAIL") and last.endswith("(DIFFERENT)")
    tour = run_iwae_tour()
    assert all(s.ok for s in tour.steps) and tour.chain_max_rel_diff > 1e-3


@pytest.mark.parametrize("argv, words", [(["--iw-samples", "2"], "--iw-samples 2 needs --objective iwae"),
                                         (["--objective", "iwae", "--iw-samples", "0"], "must be a positive integer"),
                                         (["--objective", "vamp"], "invalid choice: 'vamp'")])
def test_iwae_tour_bad_input_exits_2_with_one_line(argv, words, capsys):
    try:
        code = main(["tour", *argv])
    except SystemExit as stop:          # argparse's own refusals
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err.strip().splitlines()[-1]
    assert len([line for line in err.splitlines() if "error" in line]) == 1
    with pytest.raises(ValueError, match="at least 1 importance sample") as info:
        run_iwae_tour(k=0)
    assert "\n" not in str(info.value)
