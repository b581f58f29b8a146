"""latent/compare.py: the box sampling, and the AE-vs-VAE and beta-sweep figures."""
import numpy as np
import pytest

import pngs
import scratchvae as sv
from scratchvae.latent import compare
from scratchvae.latent import (BetaResult, bounding_box, box_samples, save_ae_vs_vae, save_beta_samples,
                               save_rate_distortion)

def test_box_samples_stay_in_the_box():
    rng = np.random.default_rng(0)
    codes = rng.normal([3.0, -5.0, 0.0], [1.0, 0.1, 10.0], (50, 3))
    low, high = bounding_box(codes)
    z = box_samples(codes, 2000, rng)
    assert z.shape == (2000, 3)
    assert np.all(z >= low) and np.all(z <= high)
    # uniform: the samples reach close to every face of the box
    assert np.allclose(z.min(axis=0), low, atol=0.02 * (high - low).max())
    assert np.allclose(z.max(axis=0), high, atol=0.02 * (high - low).max())


def test_box_samples_bad_input():
    with pytest.raises(ValueError):
        box_samples(np.zeros(5), 3, np.random.default_rng(0))
    with pytest.raises(ValueError):
        box_samples(np.zeros((4, 2)), 0, np.random.default_rng(0))


def _models(latent_ae=2, latent_vae=2):
    sv.manual_seed(0)
    ae = sv.build_model("mlp", "ae", latent_ae)
    vae = sv.build_model("mlp", "vae", latent_vae, rng=np.random.default_rng(0))
    return ae, vae


def test_ae_vs_vae_figure(tmp_path):
    ae, vae = _models()
    x = np.random.default_rng(0).uniform(0, 1, (30, 1, 28, 28)).astype(np.float32)
    labels = np.arange(30) % 10
    # a row per model: the codes (a plot), decodes of the box and of N(0, I) (two 4 x 4 mosaics)
    path = save_ae_vs_vae(ae, vae, x, labels, tmp_path / "cmp.png", n=16)
    pngs.assert_plots(path, 2, mosaic_count=4, min_span=0)    # codes of random images may sit close together
    for index in range(4):
        pngs.assert_mosaic(path, 4, 4, count=4, index=index, min_distinct=8)
    path = save_ae_vs_vae(ae, vae, x, None, tmp_path / "nolabels.png", n=9)
    for index in range(4):
        pngs.assert_mosaic(path, 3, 3, count=4, index=index, min_distinct=5)


@pytest.mark.parametrize("latents", [(3, 2), (2, 5)])
def test_ae_vs_vae_needs_a_2d_latent(tmp_path, latents):
    ae, vae = _models(*latents)
    x = np.zeros((4, 1, 28, 28), np.float32)
    with pytest.raises(ValueError, match="2-D"):
        save_ae_vs_vae(ae, vae, x, None, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("prior, label", [("normal", "N(0, I)"), ("mog", "MixtureOfGaussians, M=3"),
                                          ("vamp", "VampPrior, M=3")])
def test_ae_vs_vae_names_the_prior_it_samples(tmp_path, monkeypatch, prior, label):
    """The prior panel's title names the prior the draws really come from (the VAE's own), the
    autoencoder's N(0, I); it once said N(0, I) for every VAE."""
    sv.manual_seed(0)
    ae = sv.build_model("mlp", "ae", 2)
    vae = sv.build_model("mlp", "vae", 2, rng=np.random.default_rng(0), prior=prior, prior_components=3)
    titles = []
    real = compare.draw_mosaic
    monkeypatch.setattr(compare, "draw_mosaic", lambda ax, images, ncols, title: (titles.append(title),
                                                                                   real(ax, images, ncols, title)))
    x = np.random.default_rng(0).uniform(0, 1, (10, 1, 28, 28)).astype(np.float32)
    save_ae_vs_vae(ae, vae, x, None, tmp_path / "cmp.png", n=4)
    assert [t for t in titles if " ~ " in t] == ["autoencoder: z ~ N(0, I)", f"VAE: z ~ {label}"]


def test_ae_vs_vae_label_count(tmp_path):
    ae, vae = _models()
    with pytest.raises(ValueError):
        save_ae_vs_vae(ae, vae, np.zeros((4, 1, 28, 28), np.float32), np.arange(3), tmp_path / "bad.png")


def _results(k=5):
    rng = np.random.default_rng(0)
    return [BetaResult(b, 100 + 10 * b, 30 / (1 + b), rng.uniform(0, 1, (k, 1, 28, 28))) for b in (4, 0.5, 1, 2)]


def test_beta_sweep_figures(tmp_path):
    pngs.assert_plots(save_rate_distortion(_results(), tmp_path / "rd.png"), 1)
    pngs.assert_plots(save_rate_distortion(_results()[:1], tmp_path / "rd1.png"), 1, min_span=0)  # one beta, one point
    # a row per beta, its 5 samples (uniform noise: every tile differs)
    pngs.assert_mosaic(save_beta_samples(_results(), tmp_path / "samples.png"), 4, 5, min_distinct=20)


def test_beta_sweep_bad_input(tmp_path):
    with pytest.raises(ValueError):
        save_rate_distortion([], tmp_path / "rd.png")
    with pytest.raises(ValueError):
        save_beta_samples([], tmp_path / "s.png")
    uneven = _results()
    uneven[0].samples = uneven[0].samples[:2]
    with pytest.raises(ValueError, match="same number"):
        save_beta_samples(uneven, tmp_path / "s.png")
