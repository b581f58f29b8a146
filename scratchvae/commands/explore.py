"""``scratchvae explore CHECKPOINT``: one self-contained HTML page to walk a model's latent space in a
browser, decoding in plain JavaScript (scratchvae/explore/, docs/explorer.md)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import load_model
from ..errors import UsageError
from ..explore import ExportError, build_page, export_decoder
from .argtypes import positive_int
from .evaluate import held_out_with_labels
from .images import output_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore", help="one self-contained HTML page that decodes the latent space in the browser",
        description="Write one HTML file that needs nothing else (no server, no network: open it as a file): "
                    "the decoder's weights (float32, base64) and its forward pass in plain JavaScript, the "
                    "held-out images' posterior means mu coloured by label on a pad (z itself for a 2-D "
                    "latent, the first two principal directions above), a slider per latent dimension, a "
                    "'sample from N(0, I)' button, an interpolation slider between two held-out images "
                    "picked from a strip, the chosen image's mean and one-sigma ellipse, and a slider per "
                    "label's feature vector (mean mu of the label - mean mu of the rest). Decoders of "
                    "Linear, ReLU, LeakyReLU, Sigmoid, Reshape, ConvTranspose2d and BatchNorm (eval mode) "
                    "layers are exported: every --model of train.")
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
    try:
        export_decoder(model)                                    # refuse a model the page cannot run before any work
    except ExportError as err:                                   # the user's checkpoint: bad input
        raise UsageError(str(err)) from None
    x, labels = held_out_with_labels(args.checkpoint, checkpoint)
    c = checkpoint.config
    about = (f"{c.get('model')} {c.get('kind')}, L={c.get('latent_dim')}, epoch {checkpoint.epoch}, "
             f"{Path(str(c.get('dataset'))).name}")
    page = build_page(model, x, labels, about, n_scatter=args.n)
    out.write_text(page, encoding="utf-8")
    print(f"{out}  ({len(page.encode('utf-8')) / 1e6:.2f} MB; open it in a browser, no server needed)")
    return 0
