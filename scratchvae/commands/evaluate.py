"""``scratchvae evaluate CHECKPOINT``: the negative ELBO, the importance-sampled nll and the active
units of a saved model on the held-out images its training run evaluated on (evaluation.py).

Also home of the helpers the image commands share: the held-out images of a checkpoint's run.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from ..checkpoint import Checkpoint, CheckpointError, load_model
from ..data.datasets import held_out_images
from ..errors import UsageError
from ..evaluation import Evaluation, evaluate_model
from .argtypes import positive_int, refuse_workers

# Measured with `python benchmarks/bench.py --nll 100` (K=100 on 1000 binarized MNIST test images,
# untrained weights, two workers) on a 2-core AMD EPYC, otherwise idle: 0.46-0.47 s for mlp and
# 2.9-3.0 s for conv per 100,000 (image, sample) pairs, i.e. about 5 and 30 us each.
_HELP_RATES = ("The cost is linear in K*N: measured here (2 cores, idle), about 5 us per image and sample for "
               "the mlp model, 30 us for conv. So K=1000 on the 10,000 MNIST test images takes about 50 s "
               "for mlp (~5 min for conv: 4.1 min measured for the --preset best model, docs/recipes.md), "
               "K=5000 (Burda et al.) about 4 min (~25 min for conv), the default K=100 ~5 s (mlp); longer on "
               "a busy machine.")
_GREY_BCE_NOTE = ("Bernoulli (bce) likelihood on grey-level images: the nll is NOT -log p(x) of any "
                  "distribution over these images, only a loss; train with --binarize dynamic for a likelihood")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="negative ELBO, importance-sampled nll and active units of a checkpoint",
        description="Evaluate a checkpoint on the held-out images its run was evaluated on (binarized "
                    "as in training): the negative ELBO (recon + KL, one z per image), the nll -log p(x) "
                    "estimated with K importance samples per image (the IWAE bound, Burda et al. 2016; "
                    "it falls towards the true nll as K grows), the active units (Var_x E[z_d|x] > 0.01) "
                    "and the KL of each latent dimension. All in nats per image, lower is better. "
                    + _HELP_RATES)
    p.add_argument("checkpoint", type=Path, help="a .npz written by scratchvae train (e.g. runs/mlp-vae/last.npz)")
    p.add_argument("--k", type=positive_int, default=100,
                   help="importance samples per image (default: %(default)s; papers report 1000 or 5000)")
    p.add_argument("--n", type=positive_int, default=None,
                   help="evaluate the first N held-out images only (default: all)")
    p.add_argument("--batch-size", type=positive_int, default=1000,
                   help="rows the decoder sees at once; changes memory and speed, never the numbers "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seeds the draws of z (default: %(default)s)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="threads the nll's chunks run on, a replica of the model each; never changes the "
                        "draws (default: one per core, one for a model with BatchNorm)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of the table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def held_out_with_labels(path: Path, checkpoint: Checkpoint) -> tuple[np.ndarray, np.ndarray | None]:
    """The held-out images and labels of the checkpoint's run, refusing images of another shape
    than the model was trained on."""
    config = checkpoint.config
    if "dataset" not in config:
        raise CheckpointError(f"{path}: its config names no dataset")
    try:
        x, labels = held_out_images(config)
    except UsageError as err:                                   # DataFileError: gone, moved, corrupt
        raise CheckpointError(f"{path}: cannot load the held-out images of its dataset: {err}") from None
    want = config.get("image_shape")
    if want is not None and tuple(x.shape[1:]) != tuple(want):
        raise CheckpointError(f"{path}: its dataset '{config['dataset']}' now has images of shape "
                              f"{tuple(x.shape[1:])}, the model was trained on {tuple(want)}")
    return x, labels


def held_out(path: Path, checkpoint: Checkpoint, n: int | None, default: int | None = None) -> np.ndarray:
    """The first n held-out images of the checkpoint's run (default: the first ``default``, or all),
    refusing an n beyond the set (and what held_out_with_labels refuses)."""
    config = checkpoint.config
    x, _ = held_out_with_labels(path, checkpoint)
    if n is not None and n > len(x):
        raise UsageError(f"--n {n}, but the held-out set of '{config['dataset']}' has {len(x)} images")
    n = n if n is not None else default
    return x if n is None else x[:n]


def _note(ev: Evaluation, checkpoint: Checkpoint, binary: bool) -> str | None:
    """The one thing to know about what the nll means, or None when it is a plain likelihood."""
    if ev.elbo is None:
        return "autoencoder: no q(z|x), so no ELBO, KL or nll; recon only"
    if ev.likelihood is None:
        return f"the {checkpoint.config.get('loss')} loss is no log-likelihood: nll not defined"
    if ev.likelihood == "bernoulli" and not binary:
        return _GREY_BCE_NOTE
    if ev.likelihood.startswith("gaussian"):
        return "Gaussian likelihood (variance 1/2): a density, comparable only with other Gaussian models"
    return None


def _finite_or_none(value: object) -> object:
    """JSON has no NaN or infinity: such a number becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def as_json(ev: Evaluation, path: Path, checkpoint: Checkpoint, binary: bool) -> dict:
    """evaluate_model's numbers plus what they were computed on."""
    config = checkpoint.config
    out = {key: _finite_or_none(value) for key, value in ev.as_json().items()}
    out.update(checkpoint=str(path), model=config.get("model"), kind=config.get("kind"),
               latent_dim=config.get("latent_dim"), epoch=checkpoint.epoch, dataset=config.get("dataset"),
               loss=config.get("loss"), binarize=config.get("binarize", "none"), binarized=binary,
               nll_is_likelihood=ev.nll is not None and not (ev.likelihood == "bernoulli" and not binary),
               note=_note(ev, checkpoint, binary))
    return out


def _kl_dims(kl: list[float], show: int = 12) -> str:
    """KL of each latent dimension, largest first: 'z3 4.21, z0 3.90, ...' (the smallest elided)."""
    order = np.argsort(kl)[::-1]
    parts = [f"z{d} {kl[d]:.2f}" for d in order[:show]]
    if len(kl) > show:
        parts.append(f"... {len(kl) - show} more, each <= {kl[order[show]]:.2f}")
    return ", ".join(parts)


def format_table(ev: Evaluation, path: Path, checkpoint: Checkpoint, binary: bool) -> str:
    """The evaluation as a few aligned lines for the screen."""
    c = checkpoint.config
    rows = [("checkpoint", f"{path}  ({c.get('model')} {c.get('kind')}, L={c.get('latent_dim')}, "
                           f"epoch {checkpoint.epoch}, {c.get('loss')} loss)"),
            ("held-out", f"n = {ev.n} images of {c.get('dataset')} "
                         f"({'binary' if binary else 'grey levels'}; binarize {c.get('binarize', 'none')})")]
    if ev.elbo is None:
        rows.append(("recon", f"{ev.recon:.2f} nats/image"))
    else:
        rows.append(("-ELBO", f"{ev.elbo:.2f} = recon {ev.recon:.2f} + KL {ev.kl:.2f}   (nats/image, k = 1)"))
        if ev.nll is not None:
            rows.append((f"nll (k={ev.k})", f"{ev.nll:.2f} +- {ev.nll_stderr:.2f}   "
                                            f"(importance sampled, {ev.likelihood} likelihood)"))
        rows.append(("active units", f"{ev.active_units} / {c.get('latent_dim')}   (Var_x E[z_d|x] > 0.01)"))
        if ev.kl_per_dim is not None:
            rows.append(("KL per dim", _kl_dims(ev.kl_per_dim)))
        else:
            rows.append(("KL", f"one-sample log q(z|x) - log p(z) under the learned {c.get('prior')} prior; "
                               f"no per-dimension KL (a mixture couples the dimensions)"))
    rows.append(("seconds", f"{ev.seconds:.1f}"))
    note = _note(ev, checkpoint, binary)
    if note:
        rows.append(("note", note))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in rows)


def run(args: argparse.Namespace) -> int:
    model, checkpoint = load_model(args.checkpoint)
    refuse_workers(model, args.workers)
    x = held_out(args.checkpoint, checkpoint, args.n)
    binary = bool(np.all((x == 0) | (x == 1)))
    with warnings.catch_warnings():
        # evaluation.py warns about a Bernoulli likelihood on grey levels; the note says it once, clearly
        warnings.filterwarnings("ignore", message="Bernoulli likelihood on non-binary", category=UserWarning)
        ev = evaluate_model(model, x, k=args.k, batch_size=args.batch_size,
                            rng=np.random.default_rng(args.seed), progress=not args.no_progress,
                            workers=args.workers)
    if args.json:
        print(json.dumps(as_json(ev, args.checkpoint, checkpoint, binary), allow_nan=False))
    else:
        print(format_table(ev, args.checkpoint, checkpoint, binary))
    sys.stdout.flush()
    return 0
