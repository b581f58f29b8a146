"""Command line: ``scratchvae train`` and ``scratchvae bench`` (see the bench package)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .bench import add_bench_parser
from .data import BINARIZE_MODES, binarize, load_faces, load_split, static_test_binarization
from .models import ARCHITECTURES, build_model
from .nn.init import manual_seed
from .objective import LOSSES
from .optim import Adam
from .parallel import default_workers
from .plots import save_grid, save_loss_curves, save_reconstructions
from .train import fit


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text}")
    return value


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=sorted(ARCHITECTURES), default="mlp",
                   help="architecture: mlp (784-400-L), conv (reference conv VAE), keras (keras-io conv VAE), "
                        "faces (64x64 Olivetti, BatchNorm); default: %(default)s")
    p.add_argument("--kind", choices=("vae", "ae"), default="vae", help="VAE or plain autoencoder (default: %(default)s)")
    p.add_argument("--latent-dim", type=positive_int, default=None,
                   help="latent size (default: 20 mlp, 32 conv, 2 keras, 64 faces)")
    p.add_argument("--epochs", type=positive_int, default=10, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="(default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--beta", type=non_negative_float, default=1.0,
                   help="weight of the KL term, beta-VAE (default: %(default)s)")
    p.add_argument("--loss", choices=sorted(LOSSES), default="bce",
                   help="reconstruction loss: bce (from logits), bce-prob (on sigmoid outputs), mse, rmse "
                        "(default: %(default)s)")
    p.add_argument("--binarize", choices=BINARIZE_MODES, default="none",
                   help="dynamic: fresh Bernoulli pixels every epoch; static: binarized once; "
                        "none: grey levels as BCE targets (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seeds init, shuffling, noise and binarization (default: %(default)s)")
    p.add_argument("--clip", type=positive_float, default=None, help="clip the global gradient norm to this value")
    p.add_argument("--train-size", type=positive_int, default=None, help="use only the first N training images")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<model>-<kind>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="threads, each training on its share of every batch (default: one per core for "
                        "the conv models, 1 otherwise; see scratchvae/parallel.py)")


def load_data(model: str, binarize_mode: str, train_size: int | None,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train and test images (N, C, H, W) for an architecture; static binarization applied here."""
    if model == "faces":
        faces = load_faces()
        is_test = np.arange(len(faces.images)) % 10 == 9      # the last photo of each person
        x_train, x_test = faces.images[~is_test], faces.images[is_test]
    else:
        x_train, x_test = load_split("train").images, load_split("test").images
    if train_size is not None:
        x_train = x_train[:train_size]
    if binarize_mode != "none":
        x_test = static_test_binarization(x_test, seed=0)
    if binarize_mode == "static":
        x_train = binarize(x_train, rng)
    return x_train, x_test


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temp file in the same folder, then rename: a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def cmd_train(args: argparse.Namespace) -> int:
    out = args.out or Path("runs") / f"{args.model}-{args.kind}"
    out.mkdir(parents=True, exist_ok=True)
    manual_seed(args.seed)                                       # weight init
    rng = np.random.default_rng(args.seed + 1)                   # shuffling and binarization
    model = build_model(args.model, args.kind, args.latent_dim, args.loss, args.beta,
                        rng=np.random.default_rng(args.seed + 2))
    x_train, x_test = load_data(args.model, args.binarize, args.train_size, rng)
    print(f"{args.kind.upper()} '{args.model}': {model.num_parameters():,} parameters, latent {model.latent_dim}, "
          f"loss {args.loss}, beta {args.beta}, binarize {args.binarize}; "
          f"{len(x_train):,} train / {len(x_test):,} test images -> {out}/")
    workers = args.workers or default_workers(model)
    print(f"{workers} worker{'s' if workers > 1 else ''} (--workers)")
    optimizer = Adam(model.parameters(), lr=args.lr)
    history = fit(model, optimizer, x_train, x_test, args.epochs, args.batch_size, rng, args.binarize, args.clip,
                  metrics_path=out / "metrics.jsonl", progress=not args.no_progress, workers=workers)
    save_npz_atomic(out / "model.npz", model.state_dict())
    model.eval()
    shown = x_test[:50]
    figures = [
        save_reconstructions(shown, model.reconstruct(shown), out / "reconstructions.png"),
        save_loss_curves([h.as_json() for h in history], out / "loss.png"),
    ]
    if args.kind == "vae":
        figures.append(save_grid(model.sample(100, np.random.default_rng(args.seed)), out / "samples.png",
                                 title="decoded z ~ N(0, I)"))
    final = history[-1].test if history else None
    if final is not None:
        print(f"final test loss {final.total:.2f} (recon {final.recon:.2f}, kl {final.kl:.2f})")
    print("wrote " + ", ".join(str(f) for f in figures) + f", {out / 'metrics.jsonl'}, {out / 'model.npz'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratchvae", description="Variational autoencoders in NumPy, "
                                     "every gradient written by hand.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a VAE or autoencoder on the bundled data, then plot")
    add_train_arguments(train)
    train.set_defaults(func=cmd_train)
    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FloatingPointError, OSError) as err:  # DataFileError is a ValueError
        print(f"scratchvae: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
