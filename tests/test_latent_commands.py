"""``scratchvae latent | interpolate | feature`` on small checkpoints made without a training run.

The dataset is an .npz of 120 blob 'images' with labels (0: blob on the left half, 1: right half);
its 90/10 split leaves 12 held-out images. The 2-latent model has a few Adam steps behind it.
"""
import functools
from pathlib import Path

import numpy as np
import pytest

import pngs
import scratchvae as sv
from conftest import adam_steps, blob_images
from scratchvae.checkpoint import Checkpoint, save_checkpoint
from scratchvae.cli import main
from scratchvae.data.datasets import held_out_split

N_IMAGES, N_HELD_OUT = 120, 12


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(labelled .npz, unlabelled .npy) of the same images."""
    images, labels = blob_images(n=N_IMAGES)
    _, test = held_out_split(N_IMAGES, 0)
    assert set(labels[test]) == {0, 1}
    folder = tmp_path_factory.mktemp("data")
    np.savez(folder / "blobs.npz", images=images, labels=labels)
    np.save(folder / "blobs.npy", images)
    return folder / "blobs.npz", folder / "blobs.npy"


def _config(dataset, latent_dim=2, kind="vae"):
    return {"model": "mlp", "kind": kind, "latent_dim": latent_dim, "loss": "bce", "beta": 1.0,
            "binarize": "dynamic", "dataset": str(dataset), "image_shape": [1, 28, 28], "image_size": None,
            "seed": 0, "workers": 1, "epochs": 1, "batch_size": 32, "lr": 1e-3, "clip": None,
            "train_size": None, "kl_warmup": 0, "versions": {}, "command": ["test"]}


@functools.cache
def _state(dataset, latent_dim, kind, steps=10):
    sv.manual_seed(0)
    model = sv.build_model("mlp", kind, latent_dim=latent_dim, rng=np.random.default_rng(0))
    x = blob_images(n=N_IMAGES)[0][:64, None].astype(np.float32) / 255
    return adam_steps(model, x, steps)


def _ckpt(path, dataset, latent_dim=2, kind="vae"):
    save_checkpoint(path, Checkpoint(_config(dataset, latent_dim, kind), _state(str(dataset), latent_dim, kind),
                                     epoch=1))
    return path


@pytest.fixture
def ckpt(tmp_path, data):
    return _ckpt(tmp_path / "m.npz", data[0])


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(result, *words):
    code, _, err = result
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scratchvae: error:"), err
    for word in words:
        assert str(word) in lines[0], lines[0]


# -- latent --------------------------------------------------------------------------------------------------
def test_latent_2d_writes_scatter_histograms_and_grid(capsys, ckpt, tmp_path):
    code, out, err = _run(capsys, "latent", ckpt, "--grid", 6)
    names = [f"latent-{kind}-m.png" for kind in ("scatter", "hist", "grid")]
    assert code == 0 and err == "" and out.split() == [str(tmp_path / n) for n in names]
    pngs.assert_plots(tmp_path / names[0], 1)                    # the codes, a point each
    pngs.assert_plots(tmp_path / names[1], 2, min_span=0)        # a histogram per latent dimension
    # 6 x 6 decodes of a grid spanning the prior: a decoder that ignored z would draw one tile 36 times
    pngs.assert_mosaic(tmp_path / names[2], 6, 6, min_distinct=30)


@pytest.mark.parametrize("latent_dim, kind", [(3, "vae"), (1, "vae"), (3, "ae")])
def test_latent_other_sizes_have_no_grid(capsys, tmp_path, data, latent_dim, kind):
    ckpt = _ckpt(tmp_path / "m.npz", data[1], latent_dim, kind)     # the unlabelled .npy: one colour
    out_dir = tmp_path / "figs"
    out_dir.mkdir()
    code, out, _ = _run(capsys, "latent", ckpt, "--out", out_dir)
    assert code == 0 and len(out.split()) == 2
    pngs.assert_plots(out_dir / "latent-scatter-m.png", 1)
    pngs.assert_plots(out_dir / "latent-hist-m.png", latent_dim, min_span=0)
    assert not (out_dir / "latent-grid-m.png").exists()


def test_latent_grid_of_a_1d_latent_is_an_error(capsys, tmp_path, data):
    ckpt = _ckpt(tmp_path / "one.npz", data[0], latent_dim=1)
    _one_line_error(_run(capsys, "latent", ckpt, "--grid", 5), "2-D latent", "1 dimension")
    assert not list(tmp_path.glob("*.png"))


def test_latent_out_folder_missing(capsys, ckpt, tmp_path):
    _one_line_error(_run(capsys, "latent", ckpt, "--out", tmp_path / "nope"), "nope")


# -- interpolate -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, name, steps", [([], "interpolate-m-0-to-11.png", 10),
                                                 (["--slerp", "--steps", 4], "interpolate-m-0-to-11-slerp.png", 4)])
def test_interpolate_writes_a_strip(capsys, ckpt, tmp_path, extra, name, steps):
    code, out, err = _run(capsys, "interpolate", ckpt, "--from", 0, "--to", N_HELD_OUT - 1, *extra)
    assert code == 0 and err == "" and out.strip() == str(tmp_path / name)
    # the two held-out images and the path between their codes; this briefly trained model's
    # neighbouring decodes differ by only 0.005-0.02 grey levels, so not every tile counts as new
    strip = pngs.assert_mosaic(tmp_path / name, 1, steps + 2, min_distinct=steps // 2 + 2)[0]
    assert np.abs(strip[1] - strip[-2]).max() > 0.03   # the path's two ends differ (0.05-0.09 measured)


def test_interpolations_and_features_never_replace_each_other(capsys, ckpt, tmp_path):
    """Each default file name says what the figure shows, so a second call keeps the first's figure."""
    calls = [(["interpolate", ckpt, "--from", 0, "--to", 5], "interpolate-m-0-to-5.png"),
             (["interpolate", ckpt, "--from", 3, "--to", 7], "interpolate-m-3-to-7.png"),
             (["interpolate", ckpt, "--from", 3, "--to", 7, "--slerp"], "interpolate-m-3-to-7-slerp.png"),
             (["feature", ckpt, "--label", 1], "feature-m-label1.png"),
             (["feature", ckpt, "--label", 0], "feature-m-label0.png"),
             (["feature", ckpt, "--attribute", "ink"], "feature-m-ink.png")]
    for argv, name in calls:
        code, out, _ = _run(capsys, *argv)
        assert code == 0 and out.strip().splitlines()[-1] == str(tmp_path / name)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(name for _, name in calls)


@pytest.mark.parametrize("flag", ["--from", "--to"])
def test_interpolate_index_out_of_range(capsys, ckpt, flag):
    other = "--to" if flag == "--from" else "--from"
    _one_line_error(_run(capsys, "interpolate", ckpt, flag, N_HELD_OUT, other, 0),
                    flag, N_HELD_OUT, "out of range")


def test_interpolate_bad_steps_is_an_argparse_error(capsys, ckpt):
    with pytest.raises(SystemExit) as info:
        main(["interpolate", str(ckpt), "--from", "0", "--to", "1", "--steps", "1"])
    assert info.value.code == 2 and "at least 2" in capsys.readouterr().err


# -- feature -------------------------------------------------------------------------------------------------------
def test_feature_label_prints_batches_and_change(capsys, ckpt, tmp_path):
    code, out, err = _run(capsys, "feature", ckpt, "--label", 1, "--batch-size", 3, "--n", 3,
                          "--alpha=-2,2", "--steps", 5, "--out", tmp_path / "f")
    lines = out.strip().splitlines()
    assert code == 0 and err == "" and len(lines) == 2
    assert "batches of 3" in lines[0] and "final change" in lines[0] and "tolerance 0.001" in lines[0]
    assert lines[1] == str(tmp_path / "f.png")
    rows = pngs.assert_mosaic(tmp_path / "f.png", 3, 5, min_distinct=15)   # 3 images, 5 values of alpha
    assert all(np.abs(row[0] - row[-1]).max() > 0.05 for row in rows)       # alpha moves each image


@pytest.mark.parametrize("argv", [["--attribute", "ink"], ["--attribute", "slant", "--tolerance", "0"]])
def test_feature_attributes(capsys, ckpt, tmp_path, argv):
    code, out, _ = _run(capsys, "feature", ckpt, *argv, "--batch-size", 4)
    assert code == 0 and "above its median" in out
    pngs.assert_mosaic(tmp_path / f"feature-m-{argv[1]}.png", 8, 7, min_distinct=50)  # --n 8 rows, --steps 7
    if "--tolerance" in argv:
        assert "batches of 4" in out and "not converged, all data used" in out   # 12 items: 3 batches
        assert out.startswith("feature 'slant above its median': 3 batches")


def test_feature_labels_files(capsys, ckpt, tmp_path):
    flags = np.arange(N_HELD_OUT) % 3 == 0
    np.save(tmp_path / "ok.npy", flags)
    (tmp_path / "ok.csv").write_text("".join(f"{i},{int(f)}\n" for i, f in enumerate(flags)))
    for name in ("ok.npy", "ok.csv"):
        code, out, _ = _run(capsys, "feature", ckpt, "--labels", tmp_path / name, "--out", tmp_path / f"{name}.png")
        assert code == 0 and f"labels of {name}" in out
        pngs.assert_mosaic(tmp_path / f"{name}.png", 8, 7, min_distinct=50)
    np.save(tmp_path / "short.npy", flags[:-1])
    _one_line_error(_run(capsys, "feature", ckpt, "--labels", tmp_path / "short.npy"),
                    "short.npy", N_HELD_OUT - 1, N_HELD_OUT)
    (tmp_path / "short.csv").write_text("0,1\n1,0\n")
    _one_line_error(_run(capsys, "feature", ckpt, "--labels", tmp_path / "short.csv"), "short.csv", N_HELD_OUT)
    np.save(tmp_path / "none.npy", np.zeros(N_HELD_OUT, bool))
    _one_line_error(_run(capsys, "feature", ckpt, "--labels", tmp_path / "none.npy"), "no held-out image")


def test_feature_unknown_label_and_no_labels(capsys, ckpt, tmp_path, data):
    _one_line_error(_run(capsys, "feature", ckpt, "--label", 7), "label 7", "0..1")
    unlabelled = _ckpt(tmp_path / "u.npz", data[1])
    _one_line_error(_run(capsys, "feature", unlabelled, "--label", 1), "has no labels")
    assert not list(tmp_path.glob("*.png"))


def test_feature_help_says_mu_and_empty_batches(capsys):
    with pytest.raises(SystemExit) as info:
        main(["feature", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "mu averaged, not a sampled z" in text
    assert "A batch with no positive (or no negative) item updates only the side it has" in text


@pytest.mark.parametrize("argv", [["--alpha=3,-3"], ["--alpha", "x"], [], ["--label", "1", "--attribute", "ink"]])
def test_feature_bad_arguments_are_argparse_errors(capsys, ckpt, argv):
    with pytest.raises(SystemExit) as info:
        main(["feature", str(ckpt), *(argv if len(argv) != 1 else ["--label", "1", *argv])])
    assert info.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_interpolate_from_an_image_file(capsys, ckpt, tmp_path):
    """An RGB 56x56 PNG: made gray and resized to the model's 28x28, then encoded like a held-out image."""
    import matplotlib.image
    rgb = np.zeros((56, 56, 3), np.float32)
    rgb[10:46, 24:32] = 1.0                                       # a white bar, a "1"
    matplotlib.image.imsave(tmp_path / "bar.png", rgb)
    code, out, err = _run(capsys, "interpolate", ckpt, "--from", tmp_path / "bar.png", "--to", 0)
    assert code == 0 and err == "" and out.strip() == str(tmp_path / "interpolate-m-bar-to-0.png")
    first = pngs.assert_mosaic(Path(out.strip()), 1, 12, min_distinct=7)[0, 0]   # (8, 8) pooled grey levels
    assert first[:, 3:5].mean() > 0.5 > 0.1 > first[:, :2].mean()          # the white bar, black around it


def test_interpolate_from_a_missing_file_is_one_line(capsys, ckpt, tmp_path):
    _one_line_error(_run(capsys, "interpolate", ckpt, "--from", tmp_path / "none.png", "--to", 0),
                    "neither a held-out index nor an image file")
