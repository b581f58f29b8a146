"""Every demo runs with --quick and writes every figure it promises (a PNG header on each; demo 09's
explorer page is an HTML file)."""
import subprocess
import sys
from pathlib import Path

import pytest

DEMOS = Path(__file__).resolve().parent.parent / "demos"
PNG = b"\x89PNG\r\n\x1a\n"

FIGURES = {
    "02_mlp_vae.py": ["loss", "reconstructions", "samples", "scatter", "manifold"],
    "03_conv_vae.py": ["loss", "reconstructions", "samples", "scatter", "histograms"],
    "04_ae_vs_vae.py": ["ae-vs-vae", "reconstructions"],
    "05_beta_sweep.py": ["rate-distortion", "beta-samples", "beta-recons"],
    "06_latent_arithmetic.py": ["interpolation", "morphs", "feature-digit", "feature-ink", "feature-slant"],
    "07_faces.py": ["loss", "samples", "reconstructions", "morph", "feature-person", "feature-bright"],
    "09_explorer.py": ["explorer.html"],
    "10_bug_zoo.py": ["zoo-std-exp-logvar", "zoo-logstd-mixup", "zoo-pixel-mean", "zoo-kl-dim-mean",
                      "zoo-bce-unclamped", "zoo-iwae-mean-log"],
}


def test_every_demo_is_listed():
    scripts = {p.name for p in DEMOS.glob("[0-9][0-9]_*.py")}
    assert scripts - {"01_one_step_by_hand.py", "08_gradient_tour.py"} == set(FIGURES)  # these print, no figures (08: tests/test_tour.py)


@pytest.mark.parametrize("script", sorted(FIGURES))
def test_demo_quick(script, tmp_path):
    out = tmp_path / script[:2]
    done = subprocess.run([sys.executable, str(DEMOS / script), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in FIGURES[script]:
        path = out / (name if "." in name else f"{name}.png")
        assert path.is_file(), f"{script} did not write {path.name}"
        header = b"<!DOCTYPE html>" if path.suffix == ".html" else PNG
        assert path.read_bytes()[:len(header)] == header, f"{path} is not a {path.suffix[1:]} file"


def test_one_step_by_hand_runs(tmp_path):
    done = subprocess.run([sys.executable, str(DEMOS / "01_one_step_by_hand.py"), "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "finite differences" in done.stdout
    assert "(by hand " in done.stdout          # the demo asserts the update equals the formula itself
    assert "rel. error" in (tmp_path / "gradcheck.txt").read_text()
