"""The explorer with a learned prior (issue 31): a mixture of Gaussians (--prior mog) and a VampPrior
(--prior vamp), each a tiny trained run (300 images, 1 epoch, L = 2, M = 5) and its page in headless
Chromium (tests/chromium.py; skipped without it).

The page's numbers are checked against the library's on the page's own draws, as tests/test_explore.py
does for N(0, I), with its tolerances (TOL32 against the float32 model, TOL64 against float64; its
docstring). The float64 reference of a VampPrior model is the float64 model with the prior replaced by
the mixture of the components the page holds: the page holds the components the float32 encoder gave
the pseudo-inputs at export (refresh_prior), which the float64 encoder would give 1e-7 apart.
"""
import base64
import copy
import json
from importlib.resources import files

import numpy as np
import pytest

import scratchvae as sv
from chromium import chromium, require_chromium
from scratchvae.checkpoint import load_model
from scratchvae.cli import main
from scratchvae.distributions import MixtureOfGaussians, make_kl
from scratchvae.distributions.mixture import mixture_log_prob
from scratchvae.explore.export import export_model
from scratchvae.nn.activations import sigmoid
from test_explore import TOL32, TOL64, _assert_same, _at_values, _PageDraws

M = 5
TINY = ["--epochs", "1", "--train-size", "300", "--batch-size", "64", "--no-progress", "--latent-dim", "2",
        "--binarize", "dynamic", "--prior-components", str(M)]


# the pad's contours (pad.js contourLines), its 81 x 81 grid and the segments' ends as codes z, and the
# pad canvas's alpha at each segment's middle (drawn: > 0)
CONTOURS = """(() => {
  const c = PAD.contourLines(MODEL.prior.logDensity), s = 400 / 80, pad = document.getElementById('pad').getContext('2d');
  const grid = [];
  for (let i = 0; i <= 80; i++) for (let j = 0; j <= 80; j++) grid.push(PAD.fromPad(j * s, i * s));
  const ends = c.segments.map((q) => [PAD.fromPad(q[0], q[1]), PAD.fromPad(q[2], q[3])]);
  const inked = c.segments.map((q) => pad.getImageData(Math.floor((q[0] + q[2]) / 2), Math.floor((q[1] + q[3]) / 2), 1, 1).data[3]);
  return { ...c, grid, ends, inked };
})()"""


@pytest.fixture(scope="module", params=["mog", "vamp"])
def run(request, tmp_path_factory):
    """(prior, checkpoint, page): a tiny trained run with the learned prior, and its page."""
    out = tmp_path_factory.mktemp(request.param)
    assert main(["train", "--out", str(out / "run"), "--prior", request.param, *TINY]) == 0
    ckpt = out / "run" / "best.npz"
    assert main(["explore", str(ckpt), "--out", str(out / "page.html")]) == 0
    return request.param, ckpt, out / "page.html"


def _components(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    arrays = [np.frombuffer(base64.b64decode(spec[k]["b64"]), dtype="<f4").reshape(spec[k]["shape"])
              for k in ("means", "logvars")]
    return arrays[0], arrays[1]


def _float64_reference(model):
    """The float64 model whose prior is the mixture of the components the page holds (module docstring)."""
    model64 = copy.deepcopy(model).to(np.float64)
    means, logvars = _components(export_model(model)["prior"])
    if isinstance(model.prior, sv.distributions.VampPrior):
        model64.prior = MixtureOfGaussians(model.latent_dim, M).to(np.float64)
        model64.prior.means.data[...], model64.prior.logvars.data[...] = means, logvars
        model64.kl = make_kl(model64.posterior, model64.prior)
    return model64


def test_export_holds_the_learned_prior(run):
    """A mog exports its Parameters' bits; a vamp the components refresh_prior gives now, and u = sigmoid(a)."""
    prior, ckpt, _ = run
    model, _ = load_model(ckpt)
    spec = export_model(model)["prior"]
    means, logvars = _components(spec)
    if prior == "mog":
        assert spec["type"] == "MixtureOfGaussians" and "pseudo_inputs" not in spec
        assert np.array_equal(means, model.prior.means.data) and np.array_equal(logvars, model.prior.logvars.data)
        return
    assert spec["type"] == "VampPrior"
    model.refresh_prior()
    now = model.prior.components
    assert np.array_equal(means, now.means) and np.array_equal(logvars, now.logvars)
    u = np.frombuffer(base64.b64decode(spec["pseudo_inputs"]["b64"]), dtype="<f4")
    assert np.array_equal(u.reshape(M, 1, 28, 28), sigmoid(model.prior.pseudo_logits.data))


def test_page_follows_the_learned_prior(run):
    """A clicked thumbnail: its one-sample KL log q - log p at the page's z, the ELBO and the nll's log
    weights under the learned prior (K = 10), equal the library's on the page's eps; new eps moves the
    KL (no closed form) and it still equals the library's; a draw from the prior is the library's
    mixture_sample on the page's component and eps, and its decode NumPy's."""
    require_chromium()
    prior, ckpt, page = run
    model, _ = load_model(ckpt)
    model64 = _float64_reference(model)
    with chromium(page) as tab:
        assert tab.evaluate("document.querySelectorAll('#pseudo canvas').length") == (M if prior == "vamp" else 0)
        tab.press("#k", "ArrowUp")                                               # K = 10
        tab.click("#strip canvas:nth-child(3)")
        tab.wait_for("explorerState().at.nll.done")
        state = tab.state()
        at = state["at"]
        assert at["klPerDim"] is None and at["nll"]["K"] == 10
        _assert_same(_at_values(state), model, at, z=state["z"], model64=model64)
        text = tab.evaluate("document.getElementById('elbo').textContent")
        assert f"log q - log p at z{at['kl']:9.2f} nats" in text and "one-sample estimate" in text

        tab.click("#neweps")
        moved = tab.state()["at"]
        assert moved["kl"] != at["kl"] and moved["eps"] != at["eps"]
        moved["nll"] = None                                                      # still running
        _assert_same({k: moved[k] for k in ("recon", "kl")}, model, moved, model64=model64)

        tab.click("#sample")
        state = tab.state()
        drawn = state["sampled"]
        assert state["z"] == drawn["z"] and 0 <= drawn["component"] < M

        class Draws(_PageDraws):                                                 # the page's component, then its eps
            def integers(self, high, size):
                assert high == M and size == 1
                return np.array([drawn["component"]])
        for reference, tol in ((model, TOL32), (model64, TOL64)):              # float32's exp(logvar / 2): TOL32
            reference.refresh_prior()
            want = reference.prior.sample(1, Draws([drawn["eps"]]))[0]
            assert np.abs(np.array(drawn["z"]) - want).max() <= tol * max(1.0, np.abs(want).max())
        _assert_same({"pixels": state["shown"]["pixels"]}, model, z=state["z"], model64=model64)
        assert tab.errors() == []


def test_contours_are_the_learned_prior_s(run):
    """L = 2: the pad's contours are drawn on the canvas and lie on the library's log p = top - 0.5, 2, 4.5,
    top the library's largest log p on the page's grid; N(0, I)'s log p would put them far off. The library's
    log p in float64 on the page's components (its float32 run rounds exp(-logvar) to 6e-8)."""
    require_chromium()
    _, ckpt, page = run
    prior = _float64_reference(load_model(ckpt)[0]).prior
    with chromium(page) as tab:
        lines = tab.evaluate(CONTOURS)
    top = prior.log_prob(np.array(lines["grid"])).max()
    assert abs(lines["top"] - top) <= TOL64 * max(1.0, abs(top))                 # the same grid, the same maximum
    level = np.array([lines["levels"][int(s[4])] for s in lines["segments"]])    # (S,)
    ends = np.array(lines["ends"])                                               # (S, 2, 2)
    off = np.abs(prior.log_prob(ends) - level[:, None])                    # (S, 2) nats
    print(f"{len(level)} segments; |log p - level| at their ends: max {off.max():.2e}, median {np.median(off):.2e}")
    # the ends are linear interpolations along grid edges h apart: off by at most h^2 / 8 times the log
    # density's curvature along the edge, 1 / sigma^2 for one component (sigma: the narrowest component's);
    # 3 times that for the mixture's responsibilities bending it between components
    # (measured: 9.7e-4 nats for mog, 6.7e-4 for vamp; bounds 3.0e-3 and 2.2e-3)
    h = np.abs(np.subtract(lines["grid"][1], lines["grid"][0])).max()           # latent units per grid step
    tol = 3 * h * h / 8 * np.exp(-prior.logvars.data.min())
    print(f"bound {tol:.1e}")
    assert {int(s[4]) for s in lines["segments"]} == {0, 1, 2} and off.max() <= tol
    normal = sv.distributions.StandardNormal(2).log_prob                         # N(0, I)'s contours would not pass
    standard = np.abs(normal(ends) - (normal(np.array(lines["grid"])).max() - (top - level[:, None])))
    assert np.mean(standard > tol) > 0.5
    assert np.mean(np.array(lines["inked"]) > 0) > 0.9                           # and they are on the canvas


@pytest.mark.parametrize("run", ["vamp"], indirect=True)
def test_pseudo_inputs_encode_to_the_prior_s_components(run):
    """A vamp page shows its pseudo-inputs; a click encodes one, and its mu and logvar are the exported
    component's (the page's float64 encoder against the float32 one at export: TOL32)."""
    require_chromium()
    _, ckpt, page = run
    model, _ = load_model(ckpt)
    means, logvars = _components(export_model(model)["prior"])
    with chromium(page) as tab:
        assert tab.evaluate("document.querySelectorAll('#pseudo canvas').length") == M
        tab.click("#pseudo canvas:nth-child(4)")
        at = tab.state()["at"]
    assert at["source"] == {"kind": "pseudo-input", "index": 3}
    for got, want in ((at["mu"], means[3]), (at["logvar"], logvars[3])):
        assert np.abs(np.array(got) - want).max() <= TOL32 * max(1.0, np.abs(want).max())


def test_mixture_log_density_is_the_library_s():
    """distributions.js's mixture against mixture_log_prob far from every component, where a log-sum-exp
    that did not subtract the largest term would underflow to -inf."""
    require_chromium()
    rng = np.random.default_rng(0)
    means, logvars = rng.standard_normal((7, 3)), rng.uniform(-3, 0, (7, 3))
    zs = np.concatenate([rng.standard_normal((5, 3)), np.full((1, 3), 60.0)])   # log N about -1e4 at 60
    prior = MixtureOfGaussians(3, 7)
    prior.means.data[...], prior.logvars.data[...] = means, logvars               # float32, as exported
    with chromium() as tab:
        for name in ("layers.js", "distributions.js"):
            tab.evaluate(files("scratchvae.explore").joinpath(name).read_text())
        got = tab.evaluate(f"(() => {{ const p = PRIORS.MixtureOfGaussians({json.dumps(prior.page_spec())});"
                           f" return {json.dumps(zs.tolist())}.map(p.logDensity); }})()")
    want = mixture_log_prob(zs, prior.means.data.astype(np.float64), prior.logvars.data.astype(np.float64))
    assert np.isfinite(got).all() and want[-1] < -1e3
    np.testing.assert_allclose(got, want, rtol=TOL64, atol=0)
