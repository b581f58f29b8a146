"""``scratchvae explore``: the page, its data, its errors, and its decoder run in headless Chromium.

Checkpoints are made in-process with a few full-batch Adam steps (conftest.adam_steps): the browser
tests compare the page's decode with NumPy's decode of the same weights, not the model's quality.
Tests that open the page skip without /usr/bin/chromium (.ci/run installs it).

Why 1e-4 is the tolerance of JavaScript against NumPy: NumPy decodes in float32, the page in
float64 from the same float32 weights, so the two differ by NumPy's float32 rounding. Each layer's
output is a sum of at most ~4096 products (the faces decoder's widest), each rounded with relative
error 2^-24 ~ 6e-8; with pre-activations of order 10 that is at most a few 1e-5 in the worst case
and ~1e-6 typically, and the final sigmoid (slope <= 1/4) shrinks it further. 1e-4 (the issue's
bound) keeps a margin over that, while a wrong index, stride or bias in the port moves pixels by
1e-2 or more: each test also checks that another z decodes to pixels differing by far more.
"""
import base64
import functools
import struct

import numpy as np
import pytest

import scratchvae as sv
from chromium import decoded, require_chromium, screenshot
from conftest import adam_steps, blob_images
from scratchvae.checkpoint import Checkpoint, load_model, save_checkpoint
from scratchvae.cli import main
from scratchvae.data.datasets import held_out_images, load_dataset
from scratchvae.explore.content import strip_indices
from scratchvae.explore.export import ExportError, export_decoder
from scratchvae.latent.projection import encode_means
from scratchvae.nn import Linear, Sequential, Tanh

TOL = 1e-4          # module docstring
MAX_MB = 5.0        # the bound on the default MLP's page
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    images, labels = blob_images()
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, images=images, labels=labels)
    return path


@functools.cache
def _train_images(dataset: str) -> np.ndarray:
    if dataset in ("mnist", "olivetti"):
        return load_dataset(dataset, train_size=64 if dataset == "mnist" else None).train[:64]
    return blob_images()[0][:64, None].astype(np.float32) / 255


def _checkpoint(path, arch, dataset, latent_dim=None, kind="vae", steps=5):
    """A checkpoint of ``arch`` after a few Adam steps on a few training images of ``dataset``."""
    latent_dim = latent_dim or sv.models.ARCHITECTURES[arch][2]
    shape = [1, 64, 64] if arch == "faces" else [1, 28, 28]
    config = {"model": arch, "kind": kind, "latent_dim": latent_dim, "loss": "bce", "beta": 1.0,
              "binarize": "none", "dataset": str(dataset), "image_shape": shape, "seed": 0}
    sv.manual_seed(0)
    model = sv.build_model(arch, kind, latent_dim=latent_dim, rng=np.random.default_rng(0))
    x = _train_images("olivetti" if arch == "faces" else "mnist" if dataset == "mnist" else "blobs")
    state = adam_steps(model, x[:16] if arch == "faces" else x, steps)   # BatchNorm: running stats move
    save_checkpoint(path, Checkpoint(config, state, epoch=1))
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(result, *words):
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("scratchvae: error:"), err   # no traceback
    for word in words:
        assert str(word) in lines[0], lines[0]


def _explore(capsys, ckpt, out):
    code, stdout, err = _run(capsys, "explore", ckpt, "--out", out)
    assert code == 0 and err == "" and stdout.startswith(str(out)), err
    return out


@pytest.fixture(scope="module")
def mlp_page(tmp_path_factory):
    """The default MLP (784-400-20, bce) on MNIST and its page."""
    folder = tmp_path_factory.mktemp("mlp")
    ckpt = _checkpoint(folder / "mlp.npz", "mlp", "mnist")
    assert main(["explore", str(ckpt), "--out", str(folder / "mlp.html")]) == 0
    return ckpt, folder / "mlp.html"


# -- the file ---------------------------------------------------------------------------------------------
def test_default_mlp_page_is_one_file_under_5_mb(mlp_page):
    ckpt, page = mlp_page
    text = page.read_text(encoding="utf-8")
    size_mb = page.stat().st_size / 1e6
    assert size_mb <= MAX_MB, f"{size_mb:.2f} MB"
    assert size_mb > 1.0                           # the 314k float32 weights are in it (1.26 MB before base64)
    assert "://" not in text                       # no URL at all: base64 and JSON never hold a ':' after a letter
    assert "default-src 'none'" in text            # and the browser is told to load nothing
    assert "__DATA__" not in text and "__DECODER_JS__" not in text and "__EXPLORER_JS__" not in text


def test_default_name_is_next_to_the_checkpoint(capsys, tmp_path, blobs):
    ckpt = _checkpoint(tmp_path / "m.npz", "mlp", blobs, latent_dim=2, steps=1)
    code, out, _ = _run(capsys, "explore", ckpt)
    assert code == 0 and (tmp_path / "explore-m.html").is_file() and out.startswith(str(tmp_path / "explore-m.html"))


def test_exported_weights_are_the_float32_bits_of_the_checkpoint(mlp_page):
    model, _ = load_model(mlp_page[0])
    specs = export_decoder(model)
    assert [s["type"] for s in specs] == ["Linear", "ReLU", "Linear", "Reshape", "Sigmoid"]  # + decode_mean's sigmoid
    for spec, layer in ((specs[0], model.decoder[0]), (specs[2], model.decoder[2])):
        w = np.frombuffer(base64.b64decode(spec["weight"]["b64"]), dtype="<f4").reshape(spec["weight"]["shape"])
        assert np.array_equal(w, layer.weight.data)
    first = base64.b64decode(specs[0]["weight"]["b64"])[:4]
    assert struct.unpack("<f", first)[0] == model.decoder[0].weight.data.flat[0]   # little-endian, C order


def test_strip_takes_the_labels_in_turn():
    labels = np.array([7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5, 9, 7, 3, 4])
    picked = strip_indices(labels, 20, 12)
    assert labels[picked].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9, 0, 1, 4]   # no 8 among the first 20
    assert picked[0] == 3 and picked[9] == 10                  # the first 0, then the second 0
    assert strip_indices(None, 5, 20).tolist() == [0, 1, 2, 3, 4]


# -- bad input ------------------------------------------------------------------------------------------------
def test_missing_and_foreign_files(capsys, tmp_path):
    _one_line_error(_run(capsys, "explore", tmp_path / "nope.npz"), "nope.npz", "no such checkpoint")
    (tmp_path / "text.npz").write_text("not a checkpoint")
    _one_line_error(_run(capsys, "explore", tmp_path / "text.npz"), "text.npz", "not an .npz")
    np.savez(tmp_path / "bare.npz", w=np.zeros(3))
    _one_line_error(_run(capsys, "explore", tmp_path / "bare.npz"), "bare.npz", "not a scratchvae checkpoint")
    assert not list(tmp_path.glob("*.html"))


def test_out_folder_missing(capsys, tmp_path, blobs):
    ckpt = _checkpoint(tmp_path / "m.npz", "mlp", blobs, latent_dim=2, steps=1)
    _one_line_error(_run(capsys, "explore", ckpt, "--out", tmp_path / "no" / "page.html"), "does not exist")


def _tanh_mlp(latent_dim, enc_out, final_sigmoid):
    """An architecture whose decoder has a layer the page does not run (Tanh)."""
    return (Sequential(sv.nn.Flatten(), Linear(784, enc_out)),
            Sequential(Linear(latent_dim, 784), Tanh(), sv.nn.Reshape((1, 28, 28))))


def test_a_decoder_layer_the_page_cannot_run(capsys, tmp_path, blobs, monkeypatch):
    monkeypatch.setitem(sv.models.ARCHITECTURES, "tanh", (_tanh_mlp, (1, 28, 28), 2))
    config = {"model": "tanh", "kind": "vae", "latent_dim": 2, "loss": "bce", "beta": 1.0, "dataset": str(blobs)}
    sv.manual_seed(0)
    state = sv.build_model("tanh", "vae", 2).state_dict()
    save_checkpoint(tmp_path / "t.npz", Checkpoint(config, state))
    _one_line_error(_run(capsys, "explore", tmp_path / "t.npz", "--out", tmp_path / "t.html"), "Tanh", "ConvTranspose2d")
    assert not (tmp_path / "t.html").exists()
    with pytest.raises(ExportError, match="Tanh"):
        export_decoder(sv.build_model("tanh", "vae", 2))


# -- in the browser -------------------------------------------------------------------------------------------
def _z_query(z):
    return "z=" + ",".join(repr(float(v)) for v in z)


def _check(page_json, model, z, tol=TOL):
    """The page's pixels against NumPy's decode_mean of the same z; returns max |JS - NumPy|."""
    want = model.decode_mean(np.asarray(z, dtype=np.float64)[None])[0]   # (C, H, W)
    got = np.array(page_json["pixels"]).reshape(page_json["shape"])
    assert got.shape == want.shape
    np.testing.assert_allclose(page_json["z"], z, atol=1e-6)             # the page decoded this z
    err = float(np.abs(got - want).max())
    assert err <= tol, err
    return err, got


@pytest.mark.parametrize("arch, dataset", [("mlp", "mnist"), ("conv", "blobs"), ("keras", "blobs"),
                                           ("faces", "olivetti")])
def test_page_decodes_like_numpy(capsys, tmp_path, blobs, arch, dataset):
    """Linear/ReLU (mlp), ConvTranspose2d with output_padding (conv) and stride 1 (keras), BatchNorm in
    eval mode and LeakyReLU (faces): the page's decode of a z is NumPy's."""
    require_chromium()
    ckpt = _checkpoint(tmp_path / f"{arch}.npz", arch, blobs if dataset == "blobs" else dataset)
    page = _explore(capsys, ckpt, tmp_path / f"{arch}.html")
    model, _ = load_model(ckpt)
    rng = np.random.default_rng(1)
    z = (2 * rng.standard_normal(model.latent_dim)).astype(np.float32)   # float32: both sides decode the same z
    err, got = _check(decoded(page, _z_query(z)), model, z)
    other = model.decode_mean(-z[None].astype(np.float64))[0]
    assert np.abs(got - other).max() > 100 * TOL                         # the comparison can fail
    print(f"{arch}: max |JS - NumPy| = {err:.2e}")


def test_interpolation_and_feature_sliders(mlp_page):
    """?mix=0,1,0.25: z = 0.75 mu_A + 0.25 mu_B of the strip's first two images (a 0 and a 1);
    ?feature=8,1.5: z = mu_A + 1.5 v_8, v_8 = mean mu of the 8s - mean mu of the rest (all held out)."""
    require_chromium()
    ckpt, page = mlp_page
    model, checkpoint = load_model(ckpt)
    x, labels = held_out_images(checkpoint.config)
    mu = encode_means(model, x)                                          # (N, 20)
    a, b = np.flatnonzero(labels == 0)[0], np.flatnonzero(labels == 1)[0]
    _check(decoded(page, "mix=0,1,0.25"), model, 0.75 * mu[a] + 0.25 * mu[b])
    v8 = mu[labels == 8].mean(axis=0) - mu[labels != 8].mean(axis=0)
    _check(decoded(page, "feature=8,1.5"), model, mu[a] + 1.5 * v8)


def test_autoencoder_page(capsys, tmp_path, blobs):
    """An AE has codes but no posterior: its page decodes a picked image's code, with no ellipse."""
    require_chromium()
    ckpt = _checkpoint(tmp_path / "ae.npz", "mlp", blobs, latent_dim=2, kind="ae")
    page = _explore(capsys, ckpt, tmp_path / "ae.html")
    assert '"logvars":null' in page.read_text()
    model, checkpoint = load_model(ckpt)
    x, labels = held_out_images(checkpoint.config)
    second = np.flatnonzero(labels == 1)[0]                              # strip: first 0, first 1, ...
    _check(decoded(page, "pick=1"), model, encode_means(model, x[second:second + 1])[0])


def test_screenshot(capsys, tmp_path, blobs):
    """The page as drawn in a 1200x900 window after the pointer is set: a PNG with the pad's colours."""
    require_chromium()
    ckpt = _checkpoint(tmp_path / "m.npz", "mlp", "mnist", latent_dim=2)
    page = _explore(capsys, ckpt, tmp_path / "m.html")
    png = screenshot(page, tmp_path / "shot.png", "z=0.5,-0.5")
    assert png.read_bytes()[:8] == PNG
    import matplotlib.image
    image = matplotlib.image.imread(png)[..., :3]                        # (900, 1200, 3)
    assert image.shape[:2] == (900, 1200)
    colours = {tuple(c) for c in np.round(image.reshape(-1, 3) * 255).astype(int)[::7]}
    assert len(colours) > 50                                             # scatter, digits, controls: not blank
