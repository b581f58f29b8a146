"""``scratchvae explore CHECKPOINT``: one self-contained HTML page that runs a model in a browser, in
plain JavaScript: draw or pick an image, see it encoded, sampled and its ELBO computed, walk the latent
space (scratchvae/explore/, docs/explorer.md)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import load_model
from ..explore import build_page, export_model
from .argtypes import positive_int
from .evaluate import held_out_with_labels
from .images import output_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore", help="one self-contained HTML page that runs the model in the browser",
        description="Write one HTML file that needs nothing else (no server, no network: open it as a file): "
                    "the encoder's and decoder's weights (float32, base64), their forward pass and the model's "
                    "prior, posterior and likelihood in plain JavaScript. On it: a drawing canvas (mouse, pen, "
                    "touch; the drawing centred and scaled as MNIST's digits) and a strip of held-out images, "
                    "each encoded in the page: its posterior's mean and one-sigma ellipse on a pad of the "
                    "held-out means mu (z itself for a 2-D latent, with the prior's contours and the decoded "
                    "manifold behind it; the first two principal directions above), a sample z = mu + sigma eps "
                    "('new eps'), the recon and KL terms in nats, the KL of each latent dimension and the "
                    "importance-sampled nll, as `evaluate` computes them; a slider per latent dimension, a "
                    "'sample from the prior' button (the model's prior: N(0, I), or a learned mog or vamp, whose "
                    "KL on the page is then the one-sample log q - log p and whose contours are on the 2-D "
                    "pad), interpolation between two held-out images and a slider "
                    "per label's feature vector. Every --model of train runs in the page (Linear, Conv2d, "
                    "ConvTranspose2d, BatchNorm in eval mode, ReLU, LeakyReLU, Sigmoid, Flatten, Reshape); "
                    "a layer the page cannot run is refused, naming it.")
    p.add_argument("checkpoint", type=Path, help="a .npz written by scratchvae train")
    p.add_argument("--out", type=Path, default=None,
                   help="HTML file to write (default: explore-<checkpoint stem>.html next to the checkpoint); "
                        "an existing folder gets that default name inside it")
    p.add_argument("--n", type=positive_int, default=1000,
                   help="held-out means on the pad (default: %(default)s, or all when there are fewer)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = output_path(args.out, args.checkpoint, "explore", suffix=".html")
    model, checkpoint = load_model(args.checkpoint)
    export_model(model)                                          # refuse a model the page cannot run before any work
    x, labels = held_out_with_labels(args.checkpoint, checkpoint)
    c = checkpoint.config
    about = (f"{c.get('model')} {c.get('kind')}, L={c.get('latent_dim')}, epoch {checkpoint.epoch}, "
             f"{Path(str(c.get('dataset'))).name}")
    page = build_page(model, x, labels, about, n_scatter=args.n)
    out.write_text(page, encoding="utf-8")
    print(f"{out}  ({len(page.encode('utf-8')) / 1e6:.2f} MB; open it in a browser, no server needed)")
    return 0
