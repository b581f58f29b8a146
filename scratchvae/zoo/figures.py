"""The figure of a zoo run: samples of the correct and the buggy model, and the numbers that tell them apart.

Left and middle: decoded draws from each model's prior (the buggy one read honestly,
bugs.honest_view). Right, by bug: the estimate against K (a bug in the estimator); the held-out
loss per epoch with the NaN stop marked (a run that stopped); the histogram of the pseudo-inputs'
pixel values against the image range (a VampPrior bug); else the loss the code reports
against the -ELBO evaluation.py measures (the K-sample bound for an IWAE bug), recon and KL stacked,
for both models.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..distributions import VampPrior, prior_label  # noqa: E402
from ..plots import draw_mosaic  # noqa: E402
from .runner import ZooRun, reference_name  # noqa: E402

GRID = 6  # samples per row and column of each panel


def _samples(ax, samples: np.ndarray, title: str) -> None:
    draw_mosaic(ax, samples[:GRID * GRID], GRID, title, fontsize=9)


def _k_curve(ax, run: ZooRun) -> None:
    c = run.curve
    ax.semilogx(c["k"], c["log_of_mean"], "o-", label="-log mean_k w_k (right)")
    ax.semilogx(c["k"], c["mean_of_logs"], "s-", label="-mean_k log w_k (the bug)")
    ax.axhline(c["elbo"], color="gray", ls="--", lw=1, label="-ELBO")
    ax.set_xlabel("K, importance samples per image")
    ax.set_ylabel("nll estimate, nats per image")
    ax.set_title("the estimate against K", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _loss_curves(ax, run: ZooRun) -> None:
    for t, label, mark in ((run.correct, "correct", "o-"), (run.buggy, "buggy", "s-")):
        ax.plot([m.epoch for m in t.history], [m.test.total for m in t.history], mark, label=label)
    stop = len(run.buggy.history) + 1
    ax.axvline(stop, color="red", ls=":", lw=1)
    ax.text(stop, ax.get_ylim()[1], " NaN", color="red", va="top", fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out loss, nats per image")
    ax.set_title(f"buggy run stopped in epoch {stop}", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _loss_vs_elbo(ax, run: ZooRun) -> None:
    ref = reference_name(run.bug).replace(" (", "\n(")
    bars = [("correct\nits loss", run.correct.own), (f"correct\n{ref}", run.correct.reference),
            ("buggy\nits loss", run.buggy.own), (f"buggy\n{ref}", run.buggy.reference)]
    x = np.arange(len(bars))
    total = np.array([b[1][0].mean() for b in bars])
    kl = np.array([b[1][1].mean() for b in bars])
    ax.bar(x, total - kl, color="tab:blue", label="recon")
    ax.bar(x, kl, bottom=total - kl, color="tab:orange", label="KL")
    for i, v in enumerate(total):
        ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, 1.15 * total.max())                          # room for the labels under the title
    ax.set_xticks(x, [b[0] for b in bars], fontsize=7)
    ax.set_ylabel("nats per image (held out)")
    ax.set_title("what the loss says vs evaluation.py", fontsize=9)
    ax.legend(fontsize=7)


def _pseudo_pixels(ax, run: ZooRun) -> None:
    """Where the pseudo-inputs' pixels lie, both models, against the image range [0, 1] [VAMP-1]."""
    values = [np.asarray(t.model.prior.pseudo_inputs(), dtype=np.float64).ravel() for t in (run.correct, run.buggy)]
    bins = np.linspace(min(v.min() for v in values + [np.zeros(1)]), max(v.max() for v in values + [np.ones(1)]), 60)
    for v, label, colour in zip(values, ("correct: sigmoid(a)", f"{run.bug.name}: a"), ("tab:blue", "tab:orange")):
        ax.hist(v, bins=bins, histtype="step", lw=1.5, color=colour, label=label)
    ax.set_yscale("log")
    ax.axvspan(0, 1, color="gray", alpha=0.15, lw=0, label="image range [0, 1]")
    ax.set_xlabel("pseudo-input pixel value")
    ax.set_ylabel("pixels (log scale)")
    outside = int(np.sum((values[1] < 0) | (values[1] > 1)))
    ax.set_title(f"pseudo-inputs: {outside} of {values[1].size} buggy pixels outside", fontsize=9)
    ax.legend(fontsize=7)


def _prior_title(t) -> str:
    return f"decoded z ~ {prior_label(t.model.prior)}"


def save_zoo_figure(run: ZooRun, path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    _samples(axes[0], run.correct.samples, f"correct:\n{_prior_title(run.correct)}")
    stopped = run.buggy.fault is not None
    buggy_title = "its last weights" if stopped else "\n" + _prior_title(run.buggy)
    _samples(axes[1], run.buggy.samples, f"{run.bug.name}: {buggy_title}")
    if run.bug.in_estimator:
        _k_curve(axes[2], run)
    elif isinstance(run.buggy.model.prior, VampPrior):
        _pseudo_pixels(axes[2], run)
    elif stopped:
        _loss_curves(axes[2], run)
    else:
        _loss_vs_elbo(axes[2], run)
    fig.suptitle(f"scratchvae zoo {run.bug.name}: {run.bug.summary}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
