"""``scratchvae latent | interpolate | feature CHECKPOINT``: figures of a saved model's latent space,
computed on the held-out images of its run (binarized as in training); see scratchvae/latent/."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..checkpoint import Checkpoint, load_model
from ..data.folder import read_image
from ..data.resize import resize_square
from ..distributions import prior_label, prior_of
from ..errors import UsageError
from ..latent.features import (estimate_feature_vector, in_batches, ink, labels_from_file, shift_codes, slant,
                               split_at_median)
from ..latent.figures import save_histograms, save_manifold, save_scatter, save_strip
from ..latent.grid import manifold_codes
from ..latent.interpolate import interpolation_path
from ..latent.projection import encode_means
from .argtypes import non_negative_float, positive_int
from .evaluate import held_out_with_labels
from .images import _OUT_HELP, _decode_mean, _grey, output_path

_CKPT_HELP = "a .npz written by scratchvae train"
_MU_NOTE = ("Codes are the encoder's mean mu = E[z|x] (a VAE; an autoencoder's z), never a sampled z.")


def _alpha_range(text: str) -> tuple[float, float]:
    """'A,B' -> (A, B) with A < B (an argparse type)."""
    try:
        a, b = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be two numbers A,B, got {text}") from None
    if not (np.isfinite(a) and np.isfinite(b) and a < b):
        raise argparse.ArgumentTypeError(f"must be two finite numbers A,B with A < B, got {text}")
    return a, b


def _at_least_two(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "latent", help="PNGs of the held-out codes: scatter, histograms, manifold grid (2-D latent)",
        description="Encode the held-out images of the checkpoint's run and write latent-scatter-<stem>.png "
                    "(the codes coloured by label; above 2 dimensions their first two principal components, "
                    "with the explained variance in the title), latent-hist-<stem>.png (each dimension's "
                    "histogram over the N(0, 1) prior density) and, for a 2-D latent, latent-grid-<stem>.png "
                    "(images decoded on a grid of N(0, 1) quantiles Phi^-1((i + 0.5) / n)). " + _MU_NOTE)
    p.add_argument("checkpoint", type=Path, help=_CKPT_HELP)
    p.add_argument("--out", type=Path, default=None, help="an existing folder (default: the checkpoint's)")
    p.add_argument("--grid", type=positive_int, default=None,
                   help="images per side of the manifold grid (default: 20 for a 2-D latent, none otherwise; "
                        "asking for it with another latent size is an error)")
    p.set_defaults(func=run_latent)

    p = sub.add_parser(
        "interpolate", help="a PNG strip decoding the path between two held-out images' codes",
        description="Decode S codes on the path from the code of held-out image I to that of image J: "
                    "z = zI (1 - alpha) + zJ alpha (or slerp with --slerp), alpha from 0 to 1. The strip "
                    "shows image I, the S decodings and image J. " + _MU_NOTE)
    p.add_argument("checkpoint", type=Path, help=_CKPT_HELP)
    p.add_argument("--from", dest="start", required=True,
                   help="held-out index I, or an image file (PNG/JPEG; made gray and resized to the model's size)")
    p.add_argument("--to", dest="end", required=True, help="held-out index J, or an image file")
    p.add_argument("--steps", type=_at_least_two, default=10, help="codes on the path, ends included "
                                                                    "(default: %(default)s)")
    p.add_argument("--slerp", action="store_true", help="spherical interpolation instead of a straight line")
    p.add_argument("--out", type=Path, default=None,
                   help=_OUT_HELP.format(name="interpolate") + "; the default name also says I, J and slerp: "
                        "interpolate-<stem>-I-to-J[-slerp].png (an image file by its stem)")
    p.set_defaults(func=run_interpolate)

    p = sub.add_parser(
        "feature", help="a feature vector v = mean mu with - mean mu without, and strips of z + alpha v",
        description="Estimate a feature vector v = mean of mu over the held-out items WITH the feature minus "
                    "the mean over those WITHOUT it (mu averaged, not a sampled z), as running means over "
                    "batches in a seeded shuffled order, stopping once max_d |v_t - v_(t-1)| between two "
                    "batches is below --tolerance (all batches if never). A batch with no positive (or no "
                    "negative) item updates only the side it has; no change is measured, so nothing "
                    "converges, until both sides have been seen. Then decode z + alpha v for the first N "
                    "held-out images (one row each) over the --alpha range (columns). Prints the batches "
                    "used and the final change. Features: --label D (the dataset's label == D), --attribute "
                    "ink (mean intensity above the median) or slant (mu11/mu02 image moment above the "
                    "median, > 0 leaning right '/'), or --labels FILE (a .npy of bools or 0/1, one per "
                    "held-out image, or a CSV of index,label lines).")
    p.add_argument("checkpoint", type=Path, help=_CKPT_HELP)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--label", type=int, help="items whose dataset label is this one")
    which.add_argument("--attribute", choices=("ink", "slant"), help="a pixel attribute above its median")
    which.add_argument("--labels", type=Path, help="a .npy of booleans / 0-1, or a CSV of index,label lines")
    p.add_argument("--alpha", type=_alpha_range, default=(-3.0, 3.0),
                   help="range A,B of alpha (default: -3,3; write a negative start as --alpha=-2,2)")
    p.add_argument("--steps", type=_at_least_two, default=7, help="alpha values, columns (default: %(default)s)")
    p.add_argument("--n", type=positive_int, default=8, help="held-out images shown, rows (default: %(default)s)")
    p.add_argument("--tolerance", type=non_negative_float, default=1e-3,
                   help="stop when max |change of v| between batches is below this (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=100, help="items per batch (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seeds the order of the batches (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None,
                   help=_OUT_HELP.format(name="feature") + "; the default name also says which feature: "
                        "feature-<stem>-label<D>.png, -ink, -slant, or -labels-<FILE stem>")
    p.set_defaults(func=run_feature)


def _describe(checkpoint: Checkpoint) -> str:
    c = checkpoint.config
    return f"{c.get('model')} {c.get('kind')}, L={c.get('latent_dim')}, epoch {checkpoint.epoch}"


def run_latent(args: argparse.Namespace) -> int:
    folder = args.out if args.out is not None else args.checkpoint.parent
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder (--out takes an existing folder)")
    model, checkpoint = load_model(args.checkpoint)
    if args.grid is not None and model.latent_dim != 2:          # refused before any work
        raise UsageError(f"--grid: the manifold grid needs a 2-D latent space, this model's has "
                         f"{model.latent_dim} dimension{'s' if model.latent_dim != 1 else ''}")
    x, labels = held_out_with_labels(args.checkpoint, checkpoint)
    codes = encode_means(model, x)                               # (N, L)
    stem, what = args.checkpoint.stem, _describe(checkpoint)
    written = [save_scatter(codes, labels, folder / f"latent-scatter-{stem}.png",
                            f"{what}: held-out means ({len(x)} images)"),
               _histograms(model, codes, folder / f"latent-hist-{stem}.png", what)]
    if model.latent_dim == 2:
        prior = prior_of(model)
        z, q = manifold_codes(2, args.grid or 20, prior.quantile)  # (n*n, 2), (n,) or (n, 2)
        images = _grey(_decode_mean(model, z))
        written.append(save_manifold(images, q, folder / f"latent-grid-{stem}.png",
                                     f"{what}: decoded quantile grid of p(z) = {prior_label(prior)}"))
    for path in written:
        print(path)
    return 0


def _histograms(model, codes: np.ndarray, path: Path, what: str) -> Path:
    """The held-out means' histograms over the prior's marginal densities (N(0, 1)'s for N(0, I))."""
    prior = prior_of(model)
    if not hasattr(prior, "marginal_density"):
        return save_histograms(codes, path, f"{what}: held-out means vs N(0, 1)")
    grid = np.linspace(min(-4.0, codes.min()), max(4.0, codes.max()), 300)  # (300,)
    label = prior_label(prior)
    return save_histograms(codes, path, f"{what}: held-out means vs the marginals of p(z) = {label}",
                           prior=(grid, prior.marginal_density(grid), "p(z_d)"))


def _check_index(i: int, n: int, flag: str) -> None:
    if i >= n:
        raise UsageError(f"{flag} {i} is out of range: the held-out set has {n} images (0..{n - 1})")


def _endpoint(text: str, x: np.ndarray, flag: str) -> tuple[np.ndarray, str]:
    """The image (C, H, W) an interpolation starts or ends at, and its label: a held-out index,
    or an image file brought to the held-out images' shape (channels averaged to gray, resized)."""
    if text.isdigit():
        _check_index(int(text), len(x), flag)
        return x[int(text)], f"x_{text}"
    path = Path(text)
    if not path.is_file():
        raise UsageError(f"{flag} {text}: neither a held-out index nor an image file")
    image = read_image(path)                                     # (C', H', W')
    C, H, W = x.shape[1:]
    if image.shape[0] != C:
        image = image.mean(axis=0, keepdims=True)                # (1, H', W'): gray
    if image.shape[1:] != (H, W):
        if H != W:
            raise UsageError(f"{path}: {image.shape[1:]} pixels, and the model takes {H}x{W}")
        image = resize_square(image[None], H)[0]                 # (C, H, W)
    if image.shape != (C, H, W):
        raise UsageError(f"{path}: shape {image.shape}, the model takes {(C, H, W)}")
    return image.astype(x.dtype), path.stem


def _end_name(text: str) -> str:
    """How the default file name calls an end: its held-out index, or the image file's stem."""
    return text if text.isdigit() else Path(text).stem


def run_interpolate(args: argparse.Namespace) -> int:
    detail = f"{_end_name(args.start)}-to-{_end_name(args.end)}" + ("-slerp" if args.slerp else "")
    out = output_path(args.out, args.checkpoint, "interpolate", detail=detail)
    model, checkpoint = load_model(args.checkpoint)
    x, _ = held_out_with_labels(args.checkpoint, checkpoint)
    (start, start_name), (end, end_name) = _endpoint(args.start, x, "--from"), _endpoint(args.end, x, "--to")
    ends = np.stack([start, end])                                # (2, C, H, W)
    za, zb = encode_means(model, ends)                           # (L,) each
    path = interpolation_path(za, zb, args.steps, spherical=args.slerp)  # (S, L)
    decoded = _grey(_decode_mean(model, path))                   # (S, 1, H, W)
    row = np.concatenate([_grey(ends[:1]), decoded, _grey(ends[1:])])[None]  # (1, S + 2, 1, H, W)
    alphas = np.linspace(0, 1, args.steps)
    labels = [start_name] + [f"{a:.2f}" for a in alphas] + [end_name]
    kind = "slerp" if args.slerp else "lerp"
    print(save_strip(row, labels, out, f"{_describe(checkpoint)}: {kind} of mu from {start_name} to "
                                       f"{end_name} (columns: alpha)"))
    return 0


def _feature(args: argparse.Namespace, x: np.ndarray, labels: np.ndarray | None,
             dataset: str) -> tuple[np.ndarray, str]:
    """(has_feature (N,) bool, its name) from --label, --attribute or --labels."""
    if args.label is not None:
        if labels is None:
            raise UsageError(f"dataset '{dataset}' has no labels: use --attribute or --labels FILE")
        present = np.unique(labels)
        if args.label not in present:
            raise UsageError(f"label {args.label} is not among the held-out labels of '{dataset}' "
                             f"({present.min()}..{present.max()})")
        return labels == args.label, f"label == {args.label}"
    if args.attribute is not None:
        values = ink(x) if args.attribute == "ink" else slant(x)  # (N,)
        return split_at_median(values), f"{args.attribute} above its median"
    return labels_from_file(args.labels, len(x)), f"labels of {args.labels.name}"


def _feature_name(args: argparse.Namespace) -> str:
    """How the default file name calls the feature: label7, ink, slant, labels-<file stem>."""
    if args.label is not None:
        return f"label{args.label}"
    return args.attribute if args.attribute is not None else f"labels-{args.labels.stem}"


def run_feature(args: argparse.Namespace) -> int:
    out = output_path(args.out, args.checkpoint, "feature", detail=_feature_name(args))
    model, checkpoint = load_model(args.checkpoint)
    x, labels = held_out_with_labels(args.checkpoint, checkpoint)
    has, name = _feature(args, x, labels, str(checkpoint.config.get("dataset")))
    if has.all() or not has.any():
        raise UsageError(f"the feature '{name}' holds for {'every' if has.all() else 'no'} held-out image: "
                         f"no difference of means to take")
    order = np.random.default_rng(args.seed).permutation(len(x))
    estimate = estimate_feature_vector(
        in_batches(lambda xb: encode_means(model, xb), x, has, args.batch_size, order), args.tolerance)
    stop = "converged" if estimate.converged else "not converged, all data used"
    print(f"feature '{name}': {estimate.batches} batches of {args.batch_size} "
          f"({estimate.n_with} with, {estimate.n_without} without), final change {estimate.change:.3g} "
          f"(tolerance {args.tolerance:g}, {stop}); |v| = {np.linalg.norm(estimate.vector):.3f}")
    shown = x[:min(args.n, len(x))]
    alphas = np.linspace(args.alpha[0], args.alpha[1], args.steps)  # (A,)
    codes = shift_codes(encode_means(model, shown), estimate.vector, alphas)  # (N, A, L)
    decoded = _grey(_decode_mean(model, codes.reshape(-1, codes.shape[-1])))  # (N*A, 1, H, W)
    rows = decoded.reshape(len(shown), len(alphas), *decoded.shape[1:])       # (N, A, 1, H, W)
    print(save_strip(rows, [f"{a:+.2g}" for a in alphas], out,
                     f"{_describe(checkpoint)}: z = mu + alpha v, v of '{name}' (columns: alpha)",
                     row_labels=[str(i) for i in range(len(shown))]))
    return 0
