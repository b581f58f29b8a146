"""tests/pngs.py, the figure checks every figure test uses, fails the figures it is there to catch:
an image grid of NaN or of one repeated image, the wrong number of tiles, a plot of NaN."""
import numpy as np
import pytest

import pngs
from scratchvae.latent.figures import save_histograms
from scratchvae.plots import save_grid, save_loss_curves, save_reconstructions


def _images(n, seed=0):
    """n different 28x28 'images': a bright square at a random place on black, (n, 1, 28, 28)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 28, 28))
    for img, (r, c) in zip(x, rng.integers(2, 18, (n, 2))):
        img[0, r:r + 8, c:c + 8] = rng.uniform(0.5, 1.0)
    return x


def test_a_grid_of_different_images_passes(tmp_path):
    pooled = pngs.assert_mosaic(save_grid(_images(12), tmp_path / "g.png", ncols=4), 3, 4, min_distinct=12)
    assert pooled.shape == (3, 4, 8, 8)


def test_the_wrong_tile_count_fails(tmp_path):
    path = save_grid(_images(12), tmp_path / "g.png", ncols=4)
    for rows, cols in ((4, 4), (2, 4), (3, 6)):
        with pytest.raises(AssertionError, match="rows of"):
            pngs.assert_mosaic(path, rows, cols)


@pytest.mark.parametrize("fill", [np.nan, 0.0, 0.5])
def test_a_grid_of_nan_or_of_one_repeated_image_fails(tmp_path, fill):
    path = save_grid(np.full((9, 1, 28, 28), fill), tmp_path / "g.png", ncols=3, title="title")
    with pytest.raises(AssertionError, match="mosaics|different tiles|one colour"):
        pngs.assert_mosaic(path, 3, 3)


def test_padding_tiles_are_counted_as_blank(tmp_path):
    path = save_grid(_images(10), tmp_path / "g.png", ncols=4)
    pngs.assert_mosaic(path, 3, 4, blanks=2, min_distinct=10)
    with pytest.raises(AssertionError, match="blank tiles"):
        pngs.assert_mosaic(path, 3, 4)


def test_reconstructions_alternate_rows_even_for_a_short_last_pair(tmp_path):
    """12 images in rows of 8: originals 0-7, their reconstructions, originals 8-11 and 4 blank
    tiles, then reconstructions 8-11 and 4 blank tiles (before the fix the last row mixed both)."""
    x = _images(12)
    path = save_reconstructions(x, x / 2, tmp_path / "r.png", ncols=8)   # 'reconstructions': half as bright
    pooled = pngs.assert_mosaic(path, 4, 8, blanks=8, min_distinct=24)
    brightness = pooled.mean(axis=(2, 3))                                  # (4, 8)
    # each reconstruction under its image (a tile's edge pixels may fall into the next pooled cell: 0.01)
    np.testing.assert_allclose(brightness[1], brightness[0] / 2, atol=0.01)
    np.testing.assert_allclose(brightness[3, :4], brightness[2, :4] / 2, atol=0.01)
    assert pngs.blank(pooled[2:, 4:]).all()


def test_a_plot_of_finite_numbers_passes_and_one_of_nan_fails(tmp_path):
    rows = [{"epoch": e, "train_loss": 200.0 / e, "test_loss": 210.0 / e} for e in (1, 2, 3)]
    pngs.assert_plots(save_loss_curves(rows, tmp_path / "ok.png"), 1)
    nan_rows = [{**r, "train_loss": float("nan"), "test_loss": float("nan")} for r in rows]
    with pytest.raises(AssertionError, match="no curve"):
        pngs.assert_plots(save_loss_curves(nan_rows, tmp_path / "nan.png"), 1)


def test_panels_are_counted(tmp_path):
    codes = np.random.default_rng(0).standard_normal((200, 6))
    pngs.assert_plots(save_histograms(codes, tmp_path / "h.png"), 6, min_span=0)
    with pytest.raises(AssertionError, match="plots, expected"):
        pngs.assert_plots(tmp_path / "h.png", 5, min_span=0)
