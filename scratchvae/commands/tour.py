"""``scratchvae tour``: walk the backward pass of a tiny VAE from the loss down to the input, one
step a line, each step's formula with its derivation id and its check against finite differences
(scratchvae/tour.py)."""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import UsageError
from ..tour import MODELS, format_tour, run_tour
from ..tour_iwae import DEFAULT_K, run_iwae_tour
from .argtypes import non_negative_int, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tour", help="walk a tiny VAE's backward pass (ELBO or IWAE) step by step, each step checked by finite "
                     "differences",
        description="Build a tiny float64 VAE (mlp: 1x4x4 images, hidden 6, latent 2; conv: 1x6x6 images "
                    "through Conv2d and ConvTranspose2d) and one batch of 3 images with eps held fixed, "
                    "then run VAE.backward one call at a time, from the loss down to the input. For each "
                    "step print the gradient formula with its id in docs/derivations, the shapes of dout and "
                    "of every gradient the step produces, and the relative error of each against central "
                    "finite differences of that step alone. Last, check that the unrolled chain gives the "
                    "same gradients as model.backward(). --objective iwae walks IWAE.backward instead: K samples "
                    "per image, their normalised importance weights (shown per image), the loss's backward "
                    "weighted by them, the prior's term and the sums over the samples "
                    "(docs/derivations/iwae_gradient.md). Exit status 0 when every check passes, 1 if not, 2 on "
                    "bad arguments. "
                    "Takes well under a second.")
    p.add_argument("--model", choices=MODELS, default="mlp", help="which tiny VAE (default: %(default)s)")
    p.add_argument("--objective", choices=("elbo", "iwae"), default="elbo",
                   help="whose backward: the ELBO's or the importance-weighted bound's (default: %(default)s)")
    p.add_argument("--iw-samples", type=positive_int, metavar="K", default=None,
                   help=f"importance samples per image, with --objective iwae (default: {DEFAULT_K})")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seeds the initial weights, the images and eps (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of step objects instead of the text (the last: the "
                        "unrolled chain vs model.backward() check)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.objective == "iwae":
        tour = run_iwae_tour(args.model, args.seed, DEFAULT_K if args.iw_samples is None else args.iw_samples)
    elif args.iw_samples is not None:
        raise UsageError(f"--iw-samples {args.iw_samples} needs --objective iwae (the ELBO draws one z per image)")
    else:
        tour = run_tour(args.model, args.seed)
    if args.json:
        print(json.dumps(tour.as_json(), allow_nan=False))
    else:
        print(format_tour(tour))
    sys.stdout.flush()
    return 0 if tour.ok else 1
