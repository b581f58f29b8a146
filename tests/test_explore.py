"""``scratchvae explore``: the page, its data, its errors, and the model it runs, in headless Chromium
driven by real input events (tests/chromium.py: strokes by mouse, pen and finger, clicks, slider drags).

Checkpoints are made in-process with a few full-batch Adam steps (conftest.adam_steps): the browser
tests compare the page's numbers with NumPy's for the same weights, not the model's quality. The
references are the library's own functions (model.encode, decode_mean, evaluation.elbo_per_image,
importance_sampled_nll, chunk_log_weights) run on the eps the page drew (_PageDraws). Tests that
open the page skip without /usr/bin/chromium (.ci/run installs it).

Tolerances. The page computes in float64 (a JavaScript number) from the float32 weights, so each
number is checked twice, relative to its scale s = max(1, max |NumPy's value|) over the array:
  TOL64 = 1e-12: against NumPy's float64 run of the same weights (model.to(float64)), the same
         arithmetic in another order. float64 rounds at u = 1.1e-16; a sum of n <= 4096 terms is
         off by at most n u = 4.5e-13 relative to its terms (sqrt(n) u = 7e-15 typically): the bound,
         about twice that. Measured: at most 2e-14 s (a KL per dimension).
  TOL32 = 4e-6: against NumPy's float32 run, what every command (and `evaluate`) prints. float32
         rounds at u = 6e-8; the sums of up to 4096 terms (faces), their errors adding like a random
         walk, are off by about sqrt(4096) u = 4e-6 relative: the bound. Measured: 5e-8 to 6e-7 s
         (pixels, codes, nats; the largest on faces' sums of 4096). A BatchNorm eps 10x off moves
         faces' pixels by 5e-5 and mu by 1.4e-3 (2.6e-4 s): test_batchnorm_eps_slip_is_caught.
The old bound, 1e-4 absolute, was 250x the measured differences and passed that slip.
"""
import base64
import copy
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import scratchvae as sv
from chromium import chromium, require_chromium
from conftest import adam_steps, blob_images
from scratchvae.checkpoint import Checkpoint, load_model, save_checkpoint
from scratchvae.cli import main
from scratchvae.data.datasets import held_out_images, load_dataset
from scratchvae.evaluation import chunk_log_weights, elbo_per_image, evaluate_model, importance_sampled_nll
from scratchvae.explore.content import strip_indices
from scratchvae.explore.export import ExportError, export_model, posterior_param, prior_spec, runnable_layers
from scratchvae.latent.projection import encode_means
from scratchvae.nn import Linear, Module, Sequential, Tanh
from scratchvae.nn.batchnorm import _BatchNorm

TOL64, TOL32 = 1e-12, 4e-6     # module docstring
MAX_MB = 5.0                   # the bound on the default model's page (mlp, L = 20)
EXPLORE = Path(sv.__file__).parent / "explore"
# a 3 in two bowls, as fractions of the drawing canvas (across, down)
THREE = [(0.32, 0.22), (0.42, 0.15), (0.56, 0.14), (0.66, 0.2), (0.68, 0.3), (0.62, 0.4), (0.5, 0.46),
         (0.64, 0.5), (0.7, 0.6), (0.68, 0.72), (0.58, 0.8), (0.44, 0.82), (0.3, 0.76)]


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    images, labels = blob_images()
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, images=images, labels=labels)
    return path


def _checkpoint(path, arch, dataset, latent_dim=None, kind="vae", steps=5, loss="bce", posterior="logvar"):
    """A checkpoint of ``arch`` after a few Adam steps on a few training images of ``dataset``."""
    latent_dim = latent_dim or sv.models.ARCHITECTURES[arch][2]
    shape = [1, 64, 64] if arch == "faces" else [1, 28, 28]
    config = {"model": arch, "kind": kind, "latent_dim": latent_dim, "loss": loss, "beta": 1.0, "binarize": "none",
              "dataset": str(dataset), "image_shape": shape, "seed": 0, "posterior": posterior}
    sv.manual_seed(0)
    model = sv.build_model(arch, kind, latent_dim, loss, rng=np.random.default_rng(0), posterior=posterior)
    if dataset in ("mnist", "olivetti"):
        x = load_dataset(dataset, train_size=64 if dataset == "mnist" else None).train[:16 if arch == "faces" else 64]
    else:
        x = blob_images()[0][:64, None].astype(np.float32) / 255
    save_checkpoint(path, Checkpoint(config, adam_steps(model, x, steps), epoch=1))  # BatchNorm: running stats move
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
    """The default model (mlp 784-400-20, bce) on MNIST and its page."""
    folder = tmp_path_factory.mktemp("mlp")
    ckpt = _checkpoint(folder / "mlp.npz", "mlp", "mnist")
    assert main(["explore", str(ckpt), "--out", str(folder / "mlp.html")]) == 0
    return ckpt, folder / "mlp.html"


# -- the file and the export ---------------------------------------------------------------------------------
def test_default_page_is_one_file_under_5_mb(mlp_page):
    ckpt, page = mlp_page
    text = page.read_text(encoding="utf-8")
    size_mb = page.stat().st_size / 1e6
    assert 2.5 < size_mb <= MAX_MB, f"{size_mb:.2f} MB"   # the 653k float32 weights of both halves: 2.6 MB before base64
    assert "://" not in text                       # no URL at all: base64 and JSON never hold a ':' after a letter
    assert "default-src 'none'" in text            # and the browser is told to load nothing
    assert "__DATA__" not in text and "__SCRIPTS__" not in text


def test_default_name_is_next_to_the_checkpoint(capsys, tmp_path, blobs):
    ckpt = _checkpoint(tmp_path / "m.npz", "mlp", blobs, latent_dim=2, steps=1)
    code, out, _ = _run(capsys, "explore", ckpt)
    assert code == 0 and (tmp_path / "explore-m.html").is_file() and out.startswith(str(tmp_path / "explore-m.html"))


def test_exported_model_is_the_checkpoint(mlp_page):
    model, _ = load_model(mlp_page[0])
    exported = export_model(model)
    assert [s["type"] for s in exported["encoder"]] == ["Flatten", "Linear", "ReLU", "Linear"]
    assert [s["type"] for s in exported["decoder"]] == ["Linear", "ReLU", "Linear", "Reshape"]   # logits: bce
    assert exported["likelihood"] == {"type": "Bernoulli", "logits": True}
    assert exported["prior"] == {"type": "StandardNormal"}
    assert exported["posterior"] == {"type": "DiagonalGaussian", "param": "logvar"}
    for spec, layer in ((exported["encoder"][1], model.encoder[1]), (exported["decoder"][2], model.decoder[2])):
        w = np.frombuffer(base64.b64decode(spec["weight"]["b64"]), dtype="<f4").reshape(spec["weight"]["shape"])
        assert np.array_equal(w, layer.weight.data)                    # the float32 bits, little-endian, C order


def test_every_page_spec_has_its_javascript():
    """Each layer class with a page_spec names a function of layers.js, and layers.js runs nothing else."""
    js = set(re.findall(r"^  (\w+)\(layer, x\) \{", (EXPLORE / "layers.js").read_text(), re.MULTILINE))
    layers = {"Linear": Linear(3, 2), "Conv2d": sv.nn.Conv2d(1, 2, 3), "ConvTranspose2d": sv.nn.ConvTranspose2d(2, 1, 3),
              "BatchNorm1d": sv.nn.BatchNorm1d(2), "BatchNorm2d": sv.nn.BatchNorm2d(2), "ReLU": sv.nn.ReLU(),
              "LeakyReLU": sv.nn.LeakyReLU(0.2), "Sigmoid": sv.nn.Sigmoid(), "Flatten": sv.nn.Flatten(),
              "Reshape": sv.nn.Reshape((1, 2))}
    assert sorted(layers) == runnable_layers()
    types = {json.loads(json.dumps(layer.page_spec()))["type"] for layer in layers.values()}   # JSON as it is
    assert types == js
    assert Module().page_spec() is None and Tanh().page_spec() is None


def test_prior_and_posterior_are_read_from_the_model():
    model = sv.build_model("mlp", "vae", 2, posterior="logstd")
    assert posterior_param(model) == "logstd"
    model.posterior.param = "softplus"                                   # one distributions.js lacks
    with pytest.raises(ExportError, match="softplus"):
        posterior_param(model)
    assert prior_spec(model) == {"type": "StandardNormal"}                # the model's N(0, I)

    class MixturePrior(Module):                                          # a prior the page cannot run
        pass
    model.prior = MixturePrior()
    with pytest.raises(ExportError, match="MixturePrior"):
        prior_spec(model)
    assert prior_spec(sv.build_model("mlp", "ae", 2)) == {"type": "StandardNormal"}   # no prior: N(0, I)


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


@pytest.mark.parametrize("part", ["decoder", "encoder"])
def test_a_layer_the_page_cannot_run(capsys, tmp_path, blobs, monkeypatch, part):
    def tanh_mlp(latent_dim, enc_out, final_sigmoid):
        encoder = [sv.nn.Flatten(), Linear(784, enc_out)] + ([Tanh()] if part == "encoder" else [])
        decoder = [Linear(latent_dim, 784)] + ([Tanh()] if part == "decoder" else []) + [sv.nn.Reshape((1, 28, 28))]
        return Sequential(*encoder), Sequential(*decoder)
    monkeypatch.setitem(sv.models.ARCHITECTURES, "tanh", (tanh_mlp, (1, 28, 28), 2))
    config = {"model": "tanh", "kind": "vae", "latent_dim": 2, "loss": "bce", "beta": 1.0, "dataset": str(blobs)}
    save_checkpoint(tmp_path / "t.npz", Checkpoint(config, sv.build_model("tanh", "vae", 2).state_dict()))
    where = "encoder.2" if part == "encoder" else "decoder.1"
    _one_line_error(_run(capsys, "explore", tmp_path / "t.npz", "--out", tmp_path / "t.html"), "Tanh", where, "Conv2d")
    assert not (tmp_path / "t.html").exists()


# -- in the browser: the page's numbers against NumPy's ---------------------------------------------------------
class _PageDraws:
    """A generator whose standard_normal hands out the page's draws in turn: NumPy's own functions then
    run on the eps the page drew."""

    def __init__(self, *draws):
        self._draws = [np.asarray(d, dtype=np.float64) for d in draws]

    def standard_normal(self, shape, dtype=None):
        draw = self._draws.pop(0)
        assert draw.size == np.prod(shape)
        return draw.reshape(shape)


def _numpy(model, dtype, at: dict | None = None, z=None) -> dict:
    """NumPy's values, in the model's dtype, of what the page shows: the decode of z; for the image at
    hand, its posterior, ELBO terms on the page's eps and the nll on the page's K eps."""
    out = {}
    if z is not None:
        out["pixels"] = model.decode_mean(np.asarray(z, dtype=dtype)[None])[0]
    if at is not None:
        x = np.asarray(at["x"]["pixels"], dtype=dtype).reshape(1, *at["x"]["shape"])
        if not isinstance(model, sv.VAE):
            return {**out, "mu": model.encode(x)[0], "recon": evaluate_model(model, x).recon}
        mu, logvar = (a.astype(np.float64) for a in model.encode(x))           # (1, L) each
        out.update(mu=mu[0], logvar=logvar[0], klPerDim=0.5 * (mu * mu + np.exp(logvar) - 1 - logvar)[0])
        out["recon"], out["kl"] = (v[0] for v in elbo_per_image(model, x, rng=_PageDraws([at["eps"]])))
        if at["nll"]:
            eps = np.asarray(at["nll"]["eps"])[None]                             # (1, K, L)
            out["logW"] = chunk_log_weights(model, x, mu[:, None], logvar[:, None], eps)[0]
            with warnings.catch_warnings():                                      # grey levels under a Bernoulli
                warnings.simplefilter("ignore")
                out["nll"] = importance_sampled_nll(model, x, eps.shape[1], rng=_PageDraws(eps), progress=False,
                                                    workers=1)[0]
    return out


def _worst(page: dict, model, at=None, z=None, model64=None) -> tuple[float, float]:
    """max over the page's numbers of |page - NumPy| / (tolerance * scale), against NumPy in float32 and
    in float64 (module docstring): both at most 1 when the page computes what NumPy does. model64: the
    float64 reference (default: the model cast to float64)."""
    worst = []
    for dtype, tol in ((np.float32, TOL32), (np.float64, TOL64)):
        float64 = model64 if model64 is not None else copy.deepcopy(model).to(dtype)
        reference = _numpy(model if dtype == np.float32 else float64, dtype, at, z)
        errors = {}
        for name, got in page.items():
            want = np.ravel(reference[name]).astype(np.float64)
            got = np.ravel(np.asarray(got, dtype=np.float64))
            assert got.shape == want.shape, name
            errors[name] = np.abs(got - want).max() / max(1.0, np.abs(want).max())
        print(np.dtype(dtype).name, "max |page - NumPy| / scale:", ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
        worst.append(max(errors.values()) / tol)
    return worst[0], worst[1]


def _assert_same(page: dict, model, at=None, z=None, model64=None) -> None:
    """The page's numbers are NumPy's, within both tolerances."""
    worst32, worst64 = _worst(page, model, at, z, model64)
    assert worst32 <= 1 and worst64 <= 1, f"{worst32:.2g} and {worst64:.2g} times the float32 and float64 tolerances"


def _at_values(state) -> dict:
    at = state["at"]
    values = {k: at[k] for k in ("mu", "logvar", "klPerDim", "recon", "kl") if at[k] is not None}
    if at["nll"]:
        values.update(logW=at["nll"]["logW"], nll=at["nll"]["value"])
    return {**values, "pixels": state["shown"]["pixels"]}


def _check_image_at_hand(tab, model) -> dict:
    """Wait for the nll, then every number of the image at hand (and the decode of its mean) against NumPy."""
    tab.wait_for("!explorerState().at.nll || explorerState().at.nll.done")
    state = tab.state()
    _assert_same(_at_values(state), model, state["at"], z=state["z"])
    assert state["z"] == state["at"]["mu"]                                       # the code on show: mu
    shown = tab.evaluate("document.getElementById('elbo').textContent")           # and the numbers on the page
    at = state["at"]
    for value in (at["recon"], at["kl"], at["total"], at["nll"] and at["nll"]["value"]):
        assert value is None or f"{value:.2f} nats" in shown, (value, shown)
    return state


def _check_drawing(x: np.ndarray, side: int) -> None:
    """Drawn as MNIST's digits were: the ink's centre of mass at pixel (side/2, side/2), its box 20/28 of the side."""
    ink = x[0]
    rows, cols = np.mgrid[:side, :side]
    assert abs((ink * rows).sum() / ink.sum() - side / 2) < 0.01 and abs((ink * cols).sum() / ink.sum() - side / 2) < 0.01
    extent = [np.flatnonzero(ink.sum(axis=a) > 0) for a in (1, 0)]             # inked rows, columns
    assert max(e[-1] - e[0] + 1 for e in extent) in range(round(20 / 28 * side) - 1, round(20 / 28 * side) + 2)


@pytest.mark.parametrize("arch, dataset, pointer", [("mlp", "mnist", "mouse"), ("conv", "blobs", "pen"),
                                                    ("keras", "blobs", "touch"), ("faces", "olivetti", "mouse")])
def test_page_runs_the_model_like_numpy(capsys, tmp_path, blobs, arch, dataset, pointer):
    """Linear/ReLU (mlp), Conv2d and ConvTranspose2d with output_padding (conv) and stride 1 (keras),
    BatchNorm in eval mode and LeakyReLU (faces): a clicked thumbnail and a drawn 3 are encoded, their
    sample z, ELBO terms and nll (K = 10, chosen by key) computed, new eps drawn, a slider dragged, the
    prior sampled, the pad hovered; every number equals NumPy's (module docstring)."""
    require_chromium()
    ckpt = _checkpoint(tmp_path / f"{arch}.npz", arch, blobs if dataset == "blobs" else dataset)
    model, checkpoint = load_model(ckpt)
    x_held, _ = held_out_images(checkpoint.config)
    with chromium(_explore(capsys, ckpt, tmp_path / f"{arch}.html")) as tab:
        tab.press("#k", "ArrowUp")                                               # K = 10 importance samples, not 100
        assert tab.evaluate("document.getElementById('k').value") == "10"
        tab.click("#strip canvas:nth-child(3)")                                  # a held-out image
        state = _check_image_at_hand(tab, model)
        assert state["at"]["nll"]["K"] == 10 and len(state["at"]["nll"]["logW"]) == 10
        index = state["at"]["source"]["index"]
        assert state["at"]["source"]["kind"] == "held-out" and index == tab.evaluate("STRIP.index[2]")
        page_x = np.array(state["at"]["x"]["pixels"], dtype=np.float32).reshape(x_held.shape[1:])
        assert np.array_equal(page_x, x_held[index])                             # 8-bit pixels: exact

        tab.stroke("#draw", THREE, pointer)                                      # a drawn 3
        drawn = _check_image_at_hand(tab, model)
        assert drawn["at"]["source"]["kind"] == "drawn" and drawn["drawing"]["pointerTypes"] == [pointer]
        _check_drawing(np.array(drawn["at"]["x"]["pixels"]).reshape(drawn["at"]["x"]["shape"]), x_held.shape[-1])

        tab.click("#neweps")                                                     # the recon term moves
        resampled = tab.state()
        assert resampled["at"]["eps"] != drawn["at"]["eps"] and resampled["at"]["recon"] != drawn["at"]["recon"]
        assert resampled["at"]["mu"] == drawn["at"]["mu"] and resampled["at"]["kl"] == drawn["at"]["kl"]
        resampled["at"]["nll"] = None                                            # still running: compared above
        _assert_same({k: resampled["at"][k] for k in ("recon", "kl")}, model, resampled["at"])

        for act in (lambda: tab.drag("#dim0", 0.5, 0.85), lambda: tab.click("#sample"),
                    lambda: tab.hover("#pad", (0.3, 0.7))):
            before = tab.state()["z"]
            act()
            state = tab.state()
            assert state["z"] != before
            _assert_same({"pixels": state["shown"]["pixels"]}, model, z=state["z"])
        assert tab.errors() == []


def test_batchnorm_eps_slip_is_caught(capsys, tmp_path, monkeypatch):
    """The page run with every BatchNorm's eps 10x too large (1e-4 for 1e-5) fails the tolerances by far."""
    require_chromium()
    ckpt = _checkpoint(tmp_path / "faces.npz", "faces", "olivetti")
    model, _ = load_model(ckpt)
    spec = _BatchNorm.page_spec
    monkeypatch.setattr(_BatchNorm, "page_spec", lambda self: {**spec(self), "eps": 10 * self.eps})
    with chromium(_explore(capsys, ckpt, tmp_path / "slip.html")) as tab:
        state = tab.state()
        values = {k: v for k, v in _at_values(state).items() if k in ("mu", "logvar", "pixels")}
        assert _worst(values, model, {**state["at"], "nll": None}, z=state["z"])[0] > 10   # float32's tolerance


def test_interpolation_and_feature_sliders(mlp_page):
    """Dragged: alpha walks z = (1 - alpha) mu_A + alpha mu_B between the strip's first two images (a 0,
    a 1); a feature slider moves z to mu + alpha v_8, v_8 = mean mu of the 8s - mean mu of the rest."""
    ckpt, page = mlp_page
    model, checkpoint = load_model(ckpt)
    x, labels = held_out_images(checkpoint.config)
    mu = encode_means(model, x)                                                  # (N, 20)
    a, b = np.flatnonzero(labels == 0)[0], np.flatnonzero(labels == 1)[0]
    with chromium(page) as tab:
        tab.click("#strip canvas:nth-child(2)")                                  # end B (A: the first, at load)
        tab.drag("#mix", 0.02, 0.3)
        state = tab.state()
        alpha = state["alpha"]
        assert 0.1 < alpha < 0.4 and state["ends"] == [a, b]
        np.testing.assert_allclose(state["z"], (1 - alpha) * mu[a] + alpha * mu[b], rtol=0, atol=1e-6)  # float32 means
        _assert_same({"pixels": state["shown"]["pixels"]}, model, z=state["z"])
        origin = np.array(state["z"])
        tab.drag("#feature8", 0.5, 0.8)
        state = tab.state()
        alpha = state["features"][8]
        v8 = mu[labels == 8].mean(axis=0) - mu[labels != 8].mean(axis=0)
        assert alpha > 0.5
        np.testing.assert_allclose(state["z"], origin + alpha * v8, rtol=0, atol=1e-6)
        _assert_same({"pixels": state["shown"]["pixels"]}, model, z=state["z"])


@pytest.mark.parametrize("kind, loss, posterior", [("vae", "mse", "logstd"), ("ae", "bce-prob", "logvar")])
def test_other_likelihoods_posteriors_and_the_manifold(capsys, tmp_path, blobs, kind, loss, posterior):
    """A 2-D latent with a Gaussian likelihood (mse) and a log-sigma encoder; an autoencoder with a
    Bernoulli on probabilities (bce-prob), whose code is the encoder's output: no posterior, recon only.
    The decoded manifold behind the pad, switched on by a click, is NumPy's decode of its tiles' z."""
    require_chromium()
    ckpt = _checkpoint(tmp_path / "m.npz", "mlp", blobs, latent_dim=2, kind=kind, loss=loss, posterior=posterior)
    model, _ = load_model(ckpt)
    with chromium(_explore(capsys, ckpt, tmp_path / "m.html")) as tab:
        tab.stroke("#draw", THREE)
        state = _check_image_at_hand(tab, model)
        assert (state["at"]["logvar"] is None) == (kind == "ae")
        tab.click("#backdrop")
        tiles = tab.state()["backdrop"]
        assert tiles["n"] == 16 and len(tiles["zs"]) == 256
        zs = np.array(tiles["zs"])                                               # (256, 2)
        assert np.ptp(zs[:, 0]) > 5.5 and np.ptp(zs[:, 1]) > 5.5                  # they span the pad: +-3 and more
        for z, pixels in zip(zs[::37], tiles["images"][::37]):
            _assert_same({"pixels": pixels}, model, z=z)


def test_screenshot_shows_the_drawn_digit_and_its_decode(capsys, tmp_path):
    """In a 1200x900 screenshot, after a 3 is drawn: the x canvas shows the page's drawn image and the
    decoded canvas NumPy's decode of its mu, pixel block by pixel block (grey levels, +-1 for rounding),
    and the two KL bars are as high as the KL of each dimension says."""
    require_chromium()
    import matplotlib.image
    ckpt = _checkpoint(tmp_path / "m.npz", "mlp", "mnist", latent_dim=2)
    model, _ = load_model(ckpt)
    with chromium(_explore(capsys, ckpt, tmp_path / "m.html")) as tab:
        tab.click("#backdrop")
        tab.stroke("#draw", THREE)
        state = tab.state()
        tab.evaluate("window.scrollTo(0, 0)")
        boxes = {name: tab.rect(f"#{name}", scroll=False) for name in ("xat", "decoded", "klbars")}
        shot = matplotlib.image.imread(tab.screenshot(tmp_path / "shot.png"))[..., :3]   # (900, 1200, 3)
    x = np.array(state["at"]["x"]["pixels"]).reshape(28, 28)
    decode = model.decode_mean(np.array(state["at"]["mu"], dtype=np.float32)[None])[0, 0]  # (28, 28)
    assert x.sum() > 50 and decode.std() > 0.05                                  # ink, and a decode that is not flat
    for name, want in (("xat", x), ("decoded", decode)):
        box = boxes[name]
        k = (box["width"] - 2) / 28                                              # screen pixels per image pixel (1px border)
        centres = box["x"] + 1 + k * (np.arange(28) + 0.5), box["y"] + 1 + k * (np.arange(28) + 0.5)
        seen = shot[np.floor(centres[1]).astype(int)][:, np.floor(centres[0]).astype(int)].mean(axis=-1)  # (28, 28)
        assert np.abs(np.round(seen * 255) - np.round(want * 255)).max() <= 1, name
    # the KL bars (explorer.js drawKlBars): bar d, 1 + 40 + (d + 1/2) 150 px across, (110 - 30) * kl_d / max kl high
    box, kl = boxes["klbars"], np.array(state["at"]["klPerDim"])
    blue = np.all(np.abs(np.round(shot * 255) - [31, 119, 180]) <= 1, axis=-1)   # (900, 1200): #1f77b4
    for d in range(2):
        column = blue[int(box["y"]):int(box["y"] + box["height"]), int(box["x"] + 1 + 40 + (d + 0.5) * 150)]
        assert abs(column.sum() - 80 * kl[d] / kl.max()) <= 1.5, (d, column.sum(), kl)
