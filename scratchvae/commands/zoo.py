"""``scratchvae zoo BUG``: one of the bug zoo's deliberate mistakes (scratchvae/zoo/), each test the
library has run on it, and a table of what catches it and what does not; a figure in --out."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from ..errors import UsageError, make_folder
from ..zoo import BUGS, Settings, get_bug, run_bug
from ..zoo.detectors import Verdict
from .argtypes import non_negative_int, positive_float, positive_int

_DEFAULT = Settings()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "zoo", help="run a known VAE bug and see which tests catch it",
        description="Put one deliberate, well-known mistake into a VAE and run every detector on it: the "
                    "gradient check and the meaning tests (std of z, the KL against Monte Carlo, recon "
                    "against the Bernoulli likelihood; for the IWAE bugs also the weights the backward uses against "
                    "softmax(log w) and the gradient against the true bound) on a tiny float64 model, then a short "
                    "training of "
                    "the buggy and the correct MLP VAE (same seed, data and order) on binarized MNIST and "
                    "the detectors that need trained models: a NaN stop, the loss against the -ELBO "
                    "evaluation.py measures, the -ELBO and the nll against the correct model's, the nll "
                    "below the -ELBO, the samples' diversity, and for a VampPrior the pseudo-inputs against the image "
                    "range [0, 1]. Prints a table (detector, what it measured, "
                    "caught or not) and writes zoo-BUG.png to --out. The default run took 10-20 s per bug "
                    "on 2 idle cores here (minutes on a busy machine); the IWAE bugs train on 5 samples per image "
                    "and took about 3 minutes each on 2 busy cores, vamp-unbounded (its encoder also runs on 50 "
                    "pseudo-inputs per batch) about 7 minutes on 2 busy cores. Without BUG (or with --list): the bugs, "
                    "one line each. docs/zoo.md explains every bug and every detector.",
        epilog="bugs: " + ", ".join(BUGS))
    p.add_argument("bug", nargs="?", metavar="BUG", help="which bug (see --list)")
    p.add_argument("--list", action="store_true", help="list the bugs, one line each, and exit")
    p.add_argument("--out", type=Path, default=None, help="folder for the figure (default: runs/zoo/BUG)")
    p.add_argument("--quick", action="store_true",
                   help="a seconds-long run for tests: 2000 images, 3 epochs, 200 held-out, K = 20; too "
                        "short a training for the trained rows to mean much")
    p.add_argument("--epochs", type=positive_int, default=None, help=f"(default: {_DEFAULT.epochs})")
    p.add_argument("--train-size", type=positive_int, default=None,
                   help=f"training images (default: {_DEFAULT.train_size})")
    p.add_argument("--lr", type=positive_float, default=None, help=f"Adam's step (default: {_DEFAULT.lr:g})")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seeds everything (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the verdicts as one JSON object, not the table")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def list_bugs() -> str:
    width = max(len(name) for name in BUGS)
    return "\n".join(f"{name:<{width}}  {bug.summary}" for name, bug in BUGS.items())


def _objective(bug) -> str:
    """What the two models train on, when it is not the ELBO."""
    return "" if bug.objective == "elbo" else f" on the importance-weighted bound (K = {bug.iw_samples})"


def format_table(verdicts: list[Verdict]) -> str:
    rows = [("detector", "measured", "verdict")] + [
        (v.detector, v.measured, "n/a" if v.caught is None else ("CAUGHT" if v.caught else "not caught"))
        for v in verdicts]
    w0, w2 = (max(len(r[i]) for r in rows) for i in (0, 2))
    return "\n".join(f"{d:<{w0}}  {verdict:<{w2}}  {m}" for d, m, verdict in rows)


def run(args: argparse.Namespace) -> int:
    if args.list or args.bug is None:
        print(list_bugs())
        return 0
    if args.bug not in BUGS:
        raise UsageError(f"unknown bug '{args.bug}', choose from {', '.join(BUGS)} (scratchvae zoo --list)")
    bug = get_bug(args.bug)
    base = Settings.quick() if args.quick else Settings()
    given = {k: getattr(args, k) for k in ("epochs", "train_size", "lr") if getattr(args, k) is not None}
    settings = Settings(**{**base.__dict__, **given, "seed": args.seed, "progress": not args.no_progress})
    out = args.out if args.out is not None else Path("runs") / "zoo" / bug.name
    make_folder(out, "figure's folder")
    from ..zoo.figures import save_zoo_figure   # matplotlib only when a figure is made
    # the training's epoch lines: on stdout above the table, on stderr under --json (stdout is the JSON)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        zoo_run = run_bug(bug, settings)
    figure = save_zoo_figure(zoo_run, out / f"zoo-{bug.name}.png")
    if args.json:
        print(json.dumps({"bug": bug.name, "summary": bug.summary, "wrong": bug.wrong, "right": bug.right,
                          "settings": settings.__dict__, "figure": str(figure),
                          "verdicts": [v.as_json() for v in zoo_run.verdicts], "k_curve": zoo_run.curve or None},
                         allow_nan=False))
    else:
        s = settings
        print(f"zoo {bug.name}: {bug.summary}\n  wrong: {bug.wrong}\n  right: {bug.right}\n"
              f"trained: MLP VAE{_objective(bug)}, L = {s.latent_dim}, {s.epochs} epochs on {s.train_size} binarized "
              f"MNIST images, "
              f"lr {s.lr:g}, seed {s.seed}; evaluated on {s.n_test} held-out images, nll with K = {s.k}")
        print(format_table(zoo_run.verdicts))
        if zoo_run.curve:
            c = zoo_run.curve
            print(f"the estimate against K, same draws (-ELBO {c['elbo']:.2f}):")
            for label, key in (("K", "k"), ("-log mean_k w_k (right)", "log_of_mean"),
                               ("-mean_k log w_k (wrong)", "mean_of_logs")):
                print(f"  {label:<24}" + "".join(f"{v:>8}" if key == "k" else f"{v:8.2f}" for v in c[key]))
        print(f"figure: {figure}")
    sys.stdout.flush()
    return 0
