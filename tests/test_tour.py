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

from scratchvae.cli import main
from scratchvae.tour import TOLERANCE, run_tour, tiny_vae

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
