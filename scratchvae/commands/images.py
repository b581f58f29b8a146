"""``scratchvae sample CHECKPOINT`` and ``scratchvae reconstruct CHECKPOINT``: PNG grids of a saved model's
samples from the prior and of its reconstructions of held-out images."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from ..checkpoint import load_model
from ..distributions import prior_label, prior_of
from ..errors import UsageError
from ..models import VAE
from ..nn.module import Module
from ..plots import save_grid, save_reconstructions
from .argtypes import positive_int
from .evaluate import held_out

_BATCH = 1000  # images decoded at once
_OUT_HELP = ("PNG to write (default: {name}-<checkpoint stem>.png next to the checkpoint); an existing "
             "folder gets that default name inside it")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample", help="a PNG grid of images decoded from z ~ p(z), the model's prior",
        description="Decode N draws z ~ p(z) from the model's prior (N(0, I), or the learned mixture of "
                    "--prior mog or vamp) with a checkpoint's decoder (the mean image, sigmoid of the "
                    "logits for bce) into a PNG grid, and print the path written. An autoencoder (--kind ae) "
                    "checkpoint is allowed, with a note: it is not a generative model, nothing made its codes "
                    "follow N(0, I), so its 'samples' show what the prior misses rather than what it learnt.")
    p.add_argument("checkpoint", type=Path, help="a .npz written by scratchvae train")
    p.add_argument("--n", type=positive_int, default=64, help="images to draw (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seeds the draws of z (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help=_OUT_HELP.format(name="samples"))
    p.set_defaults(func=run_sample)

    p = sub.add_parser(
        "reconstruct", help="a PNG of held-out images above their reconstructions",
        description="Encode the first N held-out images of the checkpoint's run (binarized as in training) "
                    "and decode the posterior mean (no sampling); write originals and reconstructions in "
                    "alternating rows to a PNG and print the path written.")
    p.add_argument("checkpoint", type=Path, help="a .npz written by scratchvae train")
    p.add_argument("--n", type=positive_int, default=None,
                   help="held-out images to show (default: 32, or all when there are fewer)")
    p.add_argument("--out", type=Path, default=None, help=_OUT_HELP.format(name="reconstructions"))
    p.set_defaults(func=run_reconstruct)


def output_path(out: Path | None, checkpoint: Path, name: str, suffix: str = ".png", detail: str = "") -> Path:
    """Where to write: --out, or <name>-<stem>[-<detail>]<suffix> beside the checkpoint (or inside --out
    if it is a folder); ``detail`` names what the figure shows when the same command makes different
    ones (interpolate's ends, feature's feature), so a second call never replaces the first's file.
    A folder that does not exist is refused here, before any work is done."""
    default = f"{name}-{checkpoint.stem}{'-' + detail if detail else ''}{suffix}"
    if out is None:
        return checkpoint.parent / default
    if out.is_dir():
        return out / default
    if not out.parent.is_dir():
        raise UsageError(f"{out}: folder {out.parent} does not exist")
    return out if out.suffix else out.with_suffix(suffix)


def _decode_mean(model: Module, z: np.ndarray) -> np.ndarray:
    """decode_mean in batches, (N, C, H, W) in [0, 1]."""
    return np.concatenate([model.decode_mean(z[i:i + _BATCH]) for i in range(0, len(z), _BATCH)])


def _reconstruct(model: Module, x: np.ndarray) -> np.ndarray:
    """model.reconstruct (posterior mean decoded) in batches, (N, C, H, W)."""
    return np.concatenate([model.reconstruct(x[i:i + _BATCH].astype(model.dtype, copy=False))
                           for i in range(0, len(x), _BATCH)])


def _grey(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, 1, H, W): save_grid draws one channel, so colour is shown as its mean."""
    return images.mean(axis=1, keepdims=True) if images.shape[1] != 1 else images


def _columns(n: int) -> int:
    """A near-square grid: 64 images -> 8 columns."""
    return max(1, min(n, math.ceil(math.sqrt(n))))


def run_sample(args: argparse.Namespace) -> int:
    out = output_path(args.out, args.checkpoint, "samples")
    model, checkpoint = load_model(args.checkpoint)
    prior = prior_of(model)
    z = prior.sample(args.n, np.random.default_rng(args.seed))  # (N, L): z ~ p(z)
    images = _grey(_decode_mean(model, z))
    c = checkpoint.config
    title = f"{c.get('model')} {c.get('kind')}, epoch {checkpoint.epoch}: z ~ {prior_label(prior)}"
    if not isinstance(model, VAE):
        print("scratchvae: note: an autoencoder is not a generative model; these are decodings of "
              "N(0, I) draws its codes were never made to follow", file=sys.stderr)
        title += " (not generative)"
    print(save_grid(images, out, ncols=_columns(args.n), title=title))
    return 0


def run_reconstruct(args: argparse.Namespace) -> int:
    out = output_path(args.out, args.checkpoint, "reconstructions")
    model, checkpoint = load_model(args.checkpoint)
    x = held_out(args.checkpoint, checkpoint, args.n, default=32)
    recons = _reconstruct(model, x)
    c = checkpoint.config
    title = f"{c.get('model')} {c.get('kind')}, epoch {checkpoint.epoch}: held-out / reconstructed rows"
    print(save_reconstructions(_grey(x), _grey(recons), out, ncols=min(len(x), 8), title=title))
    return 0
