"""``scratchvae evaluate | sample | reconstruct`` on small checkpoints made without a training run.

Each checkpoint holds a 2-latent MLP (a few Adam steps on a tiny .npy dataset, so the numbers mean
something) and a config naming that .npy, whose 90/10 split leaves 12 held-out images.
"""
import functools
import json
import warnings

import numpy as np
import pytest

import pngs
import scratchvae as sv
from conftest import adam_steps
from scratchvae.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from scratchvae.cli import main
from scratchvae.commands.evaluate import _finite_or_none, _kl_dims
from scratchvae.commands.images import output_path
from scratchvae._threads import blas_thread_control

N_IMAGES, N_HELD_OUT = 120, 12
JSON_KEYS = {"elbo", "recon", "kl", "nll", "nll_stderr", "k", "n", "active_units", "seconds", "kl_per_dim",
             "checkpoint", "likelihood", "binarized", "nll_is_likelihood", "note"}


def _config(dataset, kind="vae", binarize="dynamic", model="mlp", loss="bce"):
    return {"model": model, "kind": kind, "latent_dim": 2, "loss": loss, "beta": 1.0, "binarize": binarize,
            "dataset": str(dataset), "image_shape": [1, 28, 28], "image_size": None, "seed": 0, "workers": 1,
            "epochs": 1, "batch_size": 32, "lr": 1e-3, "clip": None, "train_size": None, "kl_warmup": 0,
            "versions": {}, "command": ["test"]}


@pytest.fixture(scope="module")
def grey_npy(tmp_path_factory):
    """120 grey-level 28x28 'images' (uint8): blobs at random places, so an encoder has something to code."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    cy, cx = rng.uniform(6, 22, (2, N_IMAGES, 1, 1))
    images = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)    # (N, 28, 28)
    path = tmp_path_factory.mktemp("data") / "blobs.npy"
    np.save(path, images.astype(np.uint8))
    return path


@functools.cache
def _trained_state(dataset, kind, loss, steps=20):
    """A 2-latent MLP trained `steps` Adam steps on the dataset's first 64 images (cached: built once)."""
    sv.manual_seed(0)
    model = sv.build_model("mlp", kind, latent_dim=2, loss=loss, rng=np.random.default_rng(0))
    x = np.load(dataset)[:64, None].astype(np.float32) / 255
    return adam_steps(model, x, steps)


def _write(path, config, weights_of=None):
    """A checkpoint of config with trained MLP weights (those of the dataset `weights_of`, default its own)."""
    state = _trained_state(str(weights_of or config["dataset"]), config["kind"], config["loss"])
    save_checkpoint(path, Checkpoint(config, state, epoch=1))
    return path


@pytest.fixture
def vae_ckpt(tmp_path, grey_npy):
    return _write(tmp_path / "vae.npz", _config(grey_npy))


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_line_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scratchvae: error:"), err
    for word in words:
        assert str(word) in lines[0]


# -- evaluate ----------------------------------------------------------------------------------------------
def test_evaluate_table(capsys, vae_ckpt):
    code, out, err = _run(capsys, "evaluate", vae_ckpt, "--k", 20, "--no-progress")
    assert code == 0 and err == ""
    for text in ("-ELBO", "recon", "KL", "nll (k=20)", "+-", "active units", "/ 2", "KL per dim", "z0", "z1",
                 f"n = {N_HELD_OUT}", "seconds"):
        assert text in out, text
    assert "note" not in out                         # binarized: a true likelihood


def test_evaluate_json(capsys, vae_ckpt):
    code, out, err = _run(capsys, "evaluate", vae_ckpt, "--k", 30, "--n", 5, "--json", "--no-progress")
    assert code == 0 and err == ""
    result = json.loads(out)                         # one JSON object and nothing else
    assert JSON_KEYS <= set(result)
    assert (result["n"], result["k"], result["checkpoint"]) == (5, 30, str(vae_ckpt))
    assert result["binarized"] is True and result["nll_is_likelihood"] is True and result["note"] is None
    assert result["likelihood"] == "bernoulli"
    assert result["elbo"] == pytest.approx(result["recon"] + result["kl"])
    # the same closed form [KL-1] of the same float64 mu, logvar, summed per dimension first: 1e-16
    # apart as measured; a dimension dropped or counted twice moves it by its share (> 1e-3)
    assert sum(result["kl_per_dim"]) == pytest.approx(result["kl"], rel=1e-9)
    assert 0 <= result["active_units"] <= 2 and len(result["kl_per_dim"]) == 2
    assert result["nll"] <= result["elbo"] + 3 * result["nll_stderr"] + 1.0


def test_evaluate_is_seeded_and_batch_size_free(capsys, vae_ckpt):
    runs = [json.loads(_run(capsys, "evaluate", vae_ckpt, "--k", 7, "--json", "--no-progress", *extra)[1])
            for extra in ([], ["--batch-size", 3], ["--seed", 1])]
    # The same draws; only the decoder's product shapes change with the batch size, and float32
    # BLAS may then add in another order (~1e-7 relative per output): far inside rel=1e-5.
    assert runs[0]["nll"] == pytest.approx(runs[1]["nll"], rel=1e-5)
    assert runs[0]["elbo"] == pytest.approx(runs[1]["elbo"], rel=1e-5)
    assert runs[0]["nll"] != runs[2]["nll"]


@pytest.mark.skipif(blas_thread_control() is None, reason="two workers need an OpenBLAS whose threads can be set")
def test_evaluate_workers_never_change_the_draws(capsys, vae_ckpt):
    """The nll's chunks on one worker or two: the same draws, so the same estimate; float32 decoders,
    whose products may add in another order on one BLAS thread than on two: rel=1e-5 as above."""
    runs = [json.loads(_run(capsys, "evaluate", vae_ckpt, "--k", 7, "--json", "--no-progress", "--workers", w)[1])
            for w in (1, 2)]
    assert runs[0]["nll"] == pytest.approx(runs[1]["nll"], rel=1e-5)


def test_grey_bce_says_not_a_likelihood_without_warning_noise(capsys, tmp_path, grey_npy):
    ckpt = _write(tmp_path / "grey.npz", _config(grey_npy, binarize="none"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = _run(capsys, "evaluate", ckpt, "--k", 5, "--no-progress")
        code_json, out_json, _ = _run(capsys, "evaluate", ckpt, "--k", 5, "--json", "--no-progress")
    assert code == code_json == 0 and err == ""
    assert not [w for w in caught if issubclass(w.category, UserWarning)]
    assert "NOT -log p(x)" in out and "grey levels" in out
    result = json.loads(out_json)
    assert result["binarized"] is False and result["nll_is_likelihood"] is False and "NOT" in result["note"]


def test_autoencoder_evaluates_recon_only(capsys, tmp_path, grey_npy):
    ckpt = _write(tmp_path / "ae.npz", _config(grey_npy, kind="ae"))
    code, out, _ = _run(capsys, "evaluate", ckpt, "--k", 5, "--json", "--no-progress")
    result = json.loads(out)
    assert code == 0 and result["recon"] > 0
    assert result["elbo"] is None and result["nll"] is None and "autoencoder" in result["note"]


def test_finite_or_none_keeps_json_valid():
    assert _finite_or_none(float("inf")) is None and _finite_or_none([1.0, float("nan")]) == [1.0, None]
    assert _finite_or_none(2.5) == 2.5 and _finite_or_none("x") == "x"


def test_kl_dims_largest_first_and_elided():
    assert _kl_dims([0.5, 2.0, 1.0]) == "z1 2.00, z2 1.00, z0 0.50"
    long = _kl_dims(list(np.arange(20.0)), show=3)
    assert long.startswith("z19 19.00, z18 18.00, z17 17.00") and "17 more, each <= 16.00" in long


# -- errors: one line, exit 2, naming the file ------------------------------------------------------------
def test_missing_checkpoint(capsys, tmp_path):
    missing = tmp_path / "nope.npz"
    for command in ("evaluate", "sample", "reconstruct"):
        _assert_one_line_error(*_run(capsys, command, missing)[::2], missing)


def test_truncated_checkpoint(capsys, vae_ckpt):
    data = vae_ckpt.read_bytes()
    vae_ckpt.write_bytes(data[:len(data) // 2])
    _assert_one_line_error(*_run(capsys, "evaluate", vae_ckpt)[::2], vae_ckpt)


def test_foreign_files(capsys, tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("not a checkpoint\n")
    plain = tmp_path / "plain.npz"
    np.savez(plain, weight=np.zeros(3))
    for path in (text, plain):
        _assert_one_line_error(*_run(capsys, "evaluate", path)[::2], path)
    _assert_one_line_error(*_run(capsys, "sample", plain)[::2], plain, "meta.config")


def test_checkpoint_of_another_architecture(capsys, tmp_path, grey_npy):
    ckpt = _write(tmp_path / "liar.npz", _config(grey_npy, model="conv"))   # mlp weights, conv config
    for command in ("evaluate", "sample", "reconstruct"):
        _assert_one_line_error(*_run(capsys, command, ckpt)[::2], ckpt, "conv")


def test_dataset_gone(capsys, tmp_path, grey_npy):
    data = tmp_path / "gone.npy"
    ckpt = _write(tmp_path / "orphan.npz", _config(data), weights_of=grey_npy)
    _assert_one_line_error(*_run(capsys, "evaluate", ckpt)[::2], ckpt, data)


@pytest.mark.parametrize("argv", [["--k", "0"], ["--k", "-3"], ["--n", "0"], ["--batch-size", "0"], ["--k", "x"],
                                  ["--workers", "0"]])
def test_bad_numbers_are_argparse_errors(capsys, vae_ckpt, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(vae_ckpt), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}: must be a positive integer" in err and "Traceback" not in err


def test_n_beyond_the_held_out_set(capsys, vae_ckpt):
    _assert_one_line_error(*_run(capsys, "evaluate", vae_ckpt, "--n", 999)[::2], "999", str(N_HELD_OUT))


# -- sample and reconstruct ----------------------------------------------------------------------------------
def test_sample_default_path(capsys, vae_ckpt):
    code, out, err = _run(capsys, "sample", vae_ckpt, "--n", 9)
    expected = vae_ckpt.parent / "samples-vae.png"
    assert code == 0 and err == "" and out.strip() == str(expected)
    pngs.assert_mosaic(expected, 3, 3, min_distinct=9)          # 9 draws of z, 9 different decodes


def test_sample_out_file_and_folder(capsys, tmp_path, vae_ckpt):
    target = tmp_path / "figs"
    target.mkdir()
    code, out, _ = _run(capsys, "sample", vae_ckpt, "--n", 4, "--seed", 3, "--out", target / "s.png")
    assert code == 0
    seeded = pngs.assert_mosaic(target / "s.png", 2, 2, min_distinct=4)
    code, out, _ = _run(capsys, "sample", vae_ckpt, "--n", 4, "--out", target)
    assert code == 0 and out.strip() == str(target / "samples-vae.png")
    unseeded = pngs.assert_mosaic(target / "samples-vae.png", 2, 2, min_distinct=4)
    assert np.abs(unseeded - seeded).max() > 0.05                 # seed 0 and seed 3 draw other z


def test_autoencoder_sample_allowed_with_a_note(capsys, tmp_path, grey_npy):
    ckpt = _write(tmp_path / "ae.npz", _config(grey_npy, kind="ae"))
    code, out, err = _run(capsys, "sample", ckpt, "--n", 4)
    assert code == 0
    pngs.assert_mosaic(tmp_path / "samples-ae.png", 2, 2, min_distinct=4)
    assert "not a generative model" in err and "error" not in err


def test_reconstruct_default_and_n(capsys, vae_ckpt, tmp_path):
    code, out, err = _run(capsys, "reconstruct", vae_ckpt)            # default 32 > 12 held out: all of them
    expected = vae_ckpt.parent / "reconstructions-vae.png"
    assert code == 0 and err == "" and out.strip() == str(expected)
    # rows of 8: images 0-7, their reconstructions, images 8-11, theirs (4 blank tiles after each)
    tiles = pngs.assert_mosaic(expected, 4, 8, blanks=8, min_distinct=20)
    assert pngs.blank(tiles[2:, 4:]).all()
    held_out, recons = (tiles[rows].reshape(16, 8, 8)[:12] for rows in ([0, 2], [1, 3]))
    # binarized images above the blurred decodes of 20 Adam steps: none is a copy of its image
    assert np.abs(recons - held_out).mean(axis=(1, 2)).min() > 0.02
    code, out, _ = _run(capsys, "reconstruct", vae_ckpt, "--n", 3, "--out", tmp_path / "r3")
    assert code == 0 and out.strip() == str(tmp_path / "r3.png")
    pngs.assert_mosaic(tmp_path / "r3.png", 2, 3, min_distinct=6)
    _assert_one_line_error(*_run(capsys, "reconstruct", vae_ckpt, "--n", 50)[::2], "50")


@pytest.mark.parametrize("command", ["sample", "reconstruct"])
def test_out_folder_missing(capsys, tmp_path, vae_ckpt, command):
    bad = tmp_path / "no" / "such" / "x.png"
    _assert_one_line_error(*_run(capsys, command, vae_ckpt, "--out", bad)[::2], tmp_path / "no" / "such")
    assert not bad.parent.exists()


def test_output_path_rules(tmp_path):
    ckpt = tmp_path / "run" / "best.npz"
    assert output_path(None, ckpt, "samples") == tmp_path / "run" / "samples-best.png"
    assert output_path(tmp_path, ckpt, "samples") == tmp_path / "samples-best.png"
    assert output_path(tmp_path / "a", ckpt, "samples") == tmp_path / "a.png"
    assert output_path(tmp_path / "a.jpg", ckpt, "samples") == tmp_path / "a.jpg"
    with pytest.raises(ValueError, match="does not exist"):
        output_path(tmp_path / "missing" / "a.png", ckpt, "samples")


def test_checkpoints_written_here_round_trip(vae_ckpt):
    assert load_checkpoint(vae_ckpt).config["latent_dim"] == 2
