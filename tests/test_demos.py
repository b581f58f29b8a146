"""Every demo runs with --quick and writes every figure it promises, each showing what it should
(tests/pngs.py: its image mosaics' tiles, its plots' curves; demo 09's explorer page is an HTML file,
tested in tests/test_explore.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

import pngs

DEMOS = Path(__file__).resolve().parent.parent / "demos"


def mosaic(rows: int, cols: int, min_distinct: int) -> tuple:
    """A figure of one rows x cols image mosaic, at least min_distinct tiles different."""
    return ("mosaic", rows, cols, min_distinct)


def mosaics(count: int, rows: int, cols: int, min_distinct: int) -> tuple:
    """A figure of ``count`` rows x cols image mosaics side by side, each at least min_distinct tiles different."""
    return ("mosaics", count, rows, cols, min_distinct)


def plots(count: int, mosaics: int = 0) -> tuple:
    """A figure of ``count`` plots with curves, points or bars in each (and ``mosaics`` image mosaics)."""
    return ("plots", count, mosaics)


#: figure -> what it shows after --quick (1-3 epochs on a few hundred images). min_distinct sits
#: below what the quick runs gave here (e.g. 38 of 40 tiles): their float32 training rounds
#: differently on other machines, and a briefly trained decoder draws some near-equal tiles
FIGURES = {
    "02_mlp_vae.py": {"loss": plots(1), "reconstructions": mosaic(4, 10, 25), "samples": mosaic(10, 10, 60),
                      "scatter": plots(1), "manifold": mosaic(20, 20, 200)},
    "03_conv_vae.py": {"loss": plots(1), "reconstructions": mosaic(4, 10, 20), "samples": mosaic(10, 10, 60),
                       "scatter": plots(1), "histograms": plots(32)},   # a histogram per latent dimension
    "04_ae_vs_vae.py": {"ae-vs-vae": plots(2, mosaics=4), "reconstructions": mosaic(3, 10, 20)},
    "05_beta_sweep.py": {"rate-distortion": plots(1), "beta-samples": mosaic(2, 10, 12),
                         "beta-recons": mosaic(3, 10, 12)},
    "06_latent_arithmetic.py": {"interpolation": mosaic(2, 10, 5), "morphs": mosaic(4, 10, 15),
                                "feature-digit": mosaic(4, 9, 15), "feature-ink": mosaic(4, 9, 15),
                                "feature-slant": mosaic(4, 9, 15)},
    "07_faces.py": {"loss": plots(1), "samples": mosaic(4, 8, 16), "reconstructions": mosaic(8, 10, 40),
                    "morph": mosaic(2, 8, 4), "feature-person": mosaic(4, 7, 10), "feature-bright": mosaic(4, 7, 10)},
    "10_bug_zoo.py": {f"zoo-{bug}": plots(1, mosaics=2) for bug in ("std-exp-logvar", "logstd-mixup", "pixel-mean",
                                                                   "kl-dim-mean", "bce-unclamped", "iwae-mean-log",
                                                                   "iwae-unnormalised", "iwae-uniform",
                                                                   "vamp-unbounded")},
    # --quick: M = 20 pseudo-inputs (2 x 10), their change and their decoded components: 20, 20 and 16 of 20
    # distinct here, the decoded components of a 2-epoch model differing by little, so 5 leaves room for other
    # machines' rounding; samples of three briefly trained models: 36 of 36 distinct for each prior here
    "11_learned_priors.py": {"pseudo-inputs": mosaics(3, 2, 10, 5), "samples": mosaics(3, 6, 6, 12)},
}


def test_every_demo_is_listed():
    scripts = {p.name for p in DEMOS.glob("[0-9][0-9]_*.py")}
    # these print, no figures (08: tests/test_tour.py); 09 writes the explorer page (tests/test_explore.py)
    assert scripts - {"01_one_step_by_hand.py", "08_gradient_tour.py", "09_explorer.py"} == set(FIGURES)


def check_figure(path: Path, spec: tuple) -> None:
    if spec[0] == "mosaic":
        _, rows, cols, min_distinct = spec
        pngs.assert_mosaic(path, rows, cols, min_distinct=min_distinct)
    elif spec[0] == "mosaics":
        _, count, rows, cols, min_distinct = spec
        for index in range(count):
            pngs.assert_mosaic(path, rows, cols, count=count, index=index, min_distinct=min_distinct)
    else:
        _, count, mosaics = spec
        # one epoch draws a loss curve as a single point: no width to span
        pngs.assert_plots(path, count, mosaic_count=mosaics, min_span=0)


@pytest.mark.parametrize("script", sorted(FIGURES))
def test_demo_quick(script, tmp_path):
    out = tmp_path / script[:2]
    done = subprocess.run([sys.executable, str(DEMOS / script), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(FIGURES[script])
    for name, spec in FIGURES[script].items():
        check_figure(out / f"{name}.png", spec)


def test_the_explorer_demo_writes_its_page(tmp_path):
    done = subprocess.run([sys.executable, str(DEMOS / "09_explorer.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "explorer.html").read_bytes()[:15] == b"<!DOCTYPE html>"


def test_one_step_by_hand_runs(tmp_path):
    done = subprocess.run([sys.executable, str(DEMOS / "01_one_step_by_hand.py"), "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "finite differences" in done.stdout
    assert "(by hand " in done.stdout          # the demo asserts the update equals the formula itself
    assert "rel. error" in (tmp_path / "gradcheck.txt").read_text()
