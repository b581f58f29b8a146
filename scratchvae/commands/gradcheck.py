"""``scratchvae gradcheck``: every hand-written gradient against central finite differences.

One of: a whole model (``--model``, fresh seeded weights, or ``--checkpoint``, trained ones) on a few
random binary images with the VAE's eps held fixed; one layer with chosen settings (``--layer``);
or one loss (``--loss``) on tiny random data. All in float64, via scratchvae/gradcheck.py (its
docstring explains the step h, the relative error and the ReLU kinks).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

from .. import nn
from ..checkpoint import load_model
from ..distributions import PRIORS
from ..errors import UsageError
from ..gradcheck import DEFAULT_TOLERANCE, GradCheckReport, check_kl, check_loss, check_model, check_module
from ..models import ARCHITECTURES, build_model, objective_refusal, prior_refusal
from ..nn.registry import LAYERS  # --layer name -> the class (tests swap in a broken one to see the check fail)
from ..objective import LOSSES, OBJECTIVES, IWAE, make_loss
from .argtypes import non_negative_int, positive_float, positive_int

#: the finite-difference step per model (tests/test_models.py, SAMPLED_CHECK_STEP: a loss of
#: hundreds to thousands of nats needs a larger h than a tiny layer's loss of ~1)
MODEL_STEP = {"mlp": 1e-4, "conv": 1e-3, "keras": 1e-3, "faces": 1e-4}
LAYER_STEP = 1e-6
DEFAULT_BATCH, DEFAULT_MODEL_ENTRIES = 3, 40
DEFAULT_CHECK_COMPONENTS = 4
#: --objective iwae: enough samples that the weights w~ differ, few enough decoder rows for a quick check
DEFAULT_IW_SAMPLES = 3
_MODEL_ONLY = ["kind", "latent_dim", "recon_loss", "prior", "prior_components", "objective", "iw_samples"]

_LOSS_NAMES = sorted(LOSSES) + ["kl"]

_EPILOG = ("exit status: 0 when every row passes, 1 when any fails (relative error at or above the "
           "tolerance, or no entry checkable because every draw sat at a ReLU kink), 2 on bad arguments.")


def _shape(text: str) -> tuple[int, ...]:
    """'2,3,7,7' -> (2, 3, 7, 7), every size positive."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be positive sizes separated by commas, e.g. 2,3,7,7, got {text}") \
            from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"must be positive sizes separated by commas, e.g. 2,3,7,7, got {text}")
    return shape


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradcheck", help="check the hand-written gradients against finite differences",
        description="Compare every analytic gradient (backward) with central finite differences "
                    "(L(a + h e_i) - L(a - h e_i)) / 2h, in float64, and print one row per array: the input "
                    "and each parameter. Give one of --model, --checkpoint, --layer or --loss. A model is "
                    "checked on its training loss (negative ELBO, or with --objective iwae the negative K-sample "
                    "importance-weighted bound, eps held fixed; recon for --kind ae), in "
                    "training mode (BatchNorm on batch statistics), on --batch random binary images; a "
                    "layer on L = sum(out * R) with a fixed random R; a loss on random pred and target. "
                    "Arrays larger than --max-entries are checked on that many random entries. An entry "
                    "whose +-h step carries some ReLU input across 0 is retried at h/4, h/16, h/64, else "
                    "skipped and counted under 'kinks'. rel. error = ||analytic - numeric|| / max of the "
                    "two norms, over the checked entries.",
        epilog=_EPILOG)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--model", metavar="ARCH", help=f"a fresh model: {', '.join(ARCHITECTURES)}")
    what.add_argument("--checkpoint", type=Path, help="a trained model: a .npz written by scratchvae train")
    what.add_argument("--layer", metavar="TYPE", help=f"one layer: {', '.join(LAYERS)}")
    what.add_argument("--loss", metavar="NAME", help=f"one loss: {', '.join(_LOSS_NAMES)} (kl: GaussianKL "
                                                     "on random mu, logvar)")
    m = p.add_argument_group("model (--model, --checkpoint)")
    m.add_argument("--kind", choices=("vae", "ae"), default=None, help="VAE or plain autoencoder (default: vae)")
    m.add_argument("--latent-dim", type=positive_int, default=None,
                   help="latent size (default: the architecture's, as scratchvae train)")
    m.add_argument("--recon-loss", choices=sorted(LOSSES), default=None, help="the model's loss (default: bce)")
    m.add_argument("--prior", choices=sorted(PRIORS), default=None,
                   help="the VAE's prior (default: normal); mog and vamp check the learned prior's parameters "
                        "too, through the one-sample KL with eps fixed")
    m.add_argument("--prior-components", type=positive_int, default=None, metavar="M",
                   help=f"components of --prior mog or vamp (default: {DEFAULT_CHECK_COMPONENTS}: tiny, as the images)")
    m.add_argument("--objective", choices=sorted(OBJECTIVES), default=None,
                   help="the training loss checked: elbo, or iwae, the importance-weighted bound of --iw-samples z "
                        "per image with eps (N, K, L) fixed (default: elbo; a checkpoint's own)")
    m.add_argument("--iw-samples", type=positive_int, default=None, metavar="K",
                   help=f"importance samples per image for --objective iwae (default: {DEFAULT_IW_SAMPLES})")
    m.add_argument("--batch", type=positive_int, default=DEFAULT_BATCH,
                   help="random binary images in the batch (default: %(default)s)")
    l_ = p.add_argument_group(
        "layer (--layer)", f"Tiny defaults per layer: {_layer_examples()}. A given --input-shape sets the "
        "layer's input size (--in-features, --in-channels) unless that is given too.")
    for name in ("in_channels", "out_channels", "kernel_size", "in_features", "out_features"):
        l_.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    for name in ("stride", "padding", "output_padding", "dilation"):
        l_.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    l_.add_argument("--bias", action=argparse.BooleanOptionalAction, default=None,
                    help="linear, conv, conv_transpose: with a bias (default: yes)")
    l_.add_argument("--negative-slope", type=float, default=None, help="leaky_relu (default: 0.2)")
    l_.add_argument("--reshape-to", type=_shape, default=None, metavar="D1,D2,...",
                    help="reshape: the shape per item (default: 2,3)")
    l_.add_argument("--input-shape", type=_shape, default=None, metavar="N,C,H,W",
                    help="the layer's input (or the loss's pred) shape, batch first (default: tiny, per layer)")
    c = p.add_argument_group("check")
    c.add_argument("--h", type=positive_float, default=None,
                   help="finite-difference step (default: per model, " + ", ".join(f"{k} {v:g}" for k, v in
                        MODEL_STEP.items()) + f" (a loss of hundreds of nats wants a larger step); {LAYER_STEP:g} "
                        "for a layer or a loss)")
    c.add_argument("--tolerance", type=positive_float, default=DEFAULT_TOLERANCE,
                   help="largest relative error that passes (default: %(default)g)")
    c.add_argument("--max-entries", type=positive_int, default=None,
                   help=f"entries checked per array, drawn at random from larger ones (default: "
                        f"{DEFAULT_MODEL_ENTRIES} for a model, all for a layer)")
    c.add_argument("--seed", type=non_negative_int, default=0,
                   help="seeds the weights, the data, eps, R and the entries drawn (default: %(default)s)")
    c.add_argument("--json", action="store_true", help="print one JSON object with the rows instead of the table")
    p.set_defaults(func=run)


# -- what to check -----------------------------------------------------------------------------------------
def _layer_examples() -> str:
    """Each layer's EXAMPLE_HELP, layers with the same one (the activations) named together."""
    groups = itertools.groupby(LAYERS.items(), key=lambda item: item[1].EXAMPLE_HELP)
    return "; ".join(f"{', '.join(name for name, _ in group)} {text}" for text, group in groups)


def _layer_option_names() -> list[str]:
    """Every setting some layer takes (its EXAMPLE), and --input-shape."""
    return sorted({k for layer in LAYERS.values() for k in layer.EXAMPLE} | {"input_shape"})


def _given(args: argparse.Namespace, names) -> list[str]:
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n, None) is not None]


def _check_layer(args: argparse.Namespace, rng: np.random.Generator) -> tuple[GradCheckReport, dict, float]:
    name = args.layer
    if name not in LAYERS:
        raise UsageError(f"unknown layer '{name}', choose from {', '.join(LAYERS)}")
    _reject(args, "--layer", _MODEL_ONLY)
    cls = LAYERS[name]
    stray = _given(args, [n for n in _layer_option_names() if n not in cls.EXAMPLE and n != "input_shape"])
    if stray:
        raise UsageError(f"{', '.join(stray)} does not apply to --layer {name}; it takes "
                         f"{', '.join('--' + n.replace('_', '-') for n in cls.EXAMPLE) or 'only --input-shape'}")
    given = {k: getattr(args, k) for k in cls.EXAMPLE if getattr(args, k, None) is not None}
    nn.manual_seed(args.seed)
    try:    # the layer and its input are the user's design: the layer refusing either is bad input
        layer, x = cls.example(rng, args.input_shape, **given)   # its settings, the given ones over its defaults
        layer.forward(x)
    except ValueError as err:
        raise UsageError(str(err)) from None
    h = LAYER_STEP if args.h is None else args.h
    report = check_module(layer, x, seed=args.seed, h=h, tolerance=args.tolerance, max_entries=args.max_entries)
    return report, {"layer": name, "module": repr(layer), "input_shape": list(x.shape)}, h


def _check_loss(args: argparse.Namespace, rng: np.random.Generator) -> tuple[GradCheckReport, dict, float]:
    name = args.loss
    if name not in _LOSS_NAMES:
        raise UsageError(f"unknown loss '{name}', choose from {', '.join(_LOSS_NAMES)}")
    _reject(args, "--loss", _MODEL_ONLY + ["max_entries"]
            + [n for n in _layer_option_names() if n != "input_shape"])
    shape = args.input_shape or ((3, 4) if name == "kl" else (3, 8))
    h = LAYER_STEP if args.h is None else args.h
    if name == "kl":
        if len(shape) != 2:
            raise UsageError(f"--loss kl: --input-shape is (N, L), mu's and logvar's shape; got {shape}")
        report = check_kl(rng.standard_normal(shape), rng.standard_normal(shape), h, args.tolerance)
        return report, {"loss": "kl", "input_shape": list(shape)}, h
    loss = make_loss(name)
    target = (rng.random(shape) < 0.5).astype(np.float64)
    if loss.takes_logits or name in ("mse", "rmse"):
        pred = rng.standard_normal(shape)
    else:                                   # probabilities, away from the clamp at 0 and 1
        pred = rng.uniform(0.05, 0.95, shape)
    report = check_loss(loss, pred, target, h, args.tolerance)
    return report, {"loss": name, "input_shape": list(shape)}, h


def _objective(args: argparse.Namespace, kind: str) -> tuple[str, int]:
    """(objective, K) for a fresh model; a UsageError for --iw-samples without --objective iwae or
    an importance-weighted autoencoder."""
    objective = args.objective or "elbo"
    if objective == "elbo":
        if args.iw_samples is not None:
            raise UsageError(f"--iw-samples {args.iw_samples} needs --objective iwae (the ELBO draws one z per image)")
        return objective, 1
    if kind != "vae":
        raise UsageError("--objective iwae checks a VAE (--kind vae): an autoencoder has no q(z|x) to sample")
    return objective, DEFAULT_IW_SAMPLES if args.iw_samples is None else args.iw_samples


def _reject(args: argparse.Namespace, mode: str, names) -> None:
    stray = _given(args, names)
    if stray:
        raise UsageError(f"{', '.join(stray)} does not apply to {mode}")


def _check_model(args: argparse.Namespace, rng: np.random.Generator) -> tuple[GradCheckReport, dict, float]:
    _reject(args, "--checkpoint" if args.checkpoint else "--model", _layer_option_names())
    if args.checkpoint is not None:
        _reject(args, "--checkpoint (its config says)", _MODEL_ONLY)
        model, checkpoint = load_model(args.checkpoint)
        config = checkpoint.config
        arch, kind = config["model"], config["kind"]
        shape = tuple(config.get("image_shape") or ARCHITECTURES[arch][1])
        what = {"checkpoint": str(args.checkpoint), "model": arch, "kind": kind,
                "latent_dim": config["latent_dim"], "loss": config["loss"], "epoch": checkpoint.epoch}
    else:
        arch = args.model
        if arch not in ARCHITECTURES:
            raise UsageError(f"unknown model '{arch}', choose from {', '.join(ARCHITECTURES)}")
        kind, loss = args.kind or "vae", args.recon_loss or "bce"
        prior, components = args.prior or "normal", args.prior_components or DEFAULT_CHECK_COMPONENTS
        if kind == "ae" and (args.prior or args.prior_components):
            raise UsageError("--prior and --prior-components apply to a VAE (--kind vae)")
        if (why := prior_refusal(arch, prior)) is not None:
            raise UsageError(why)
        objective, k = _objective(args, kind)
        nn.manual_seed(args.seed)
        model = build_model(arch, kind, args.latent_dim, loss, rng=np.random.default_rng(args.seed),
                            prior=prior, prior_components=components, objective=objective, iw_samples=k)
        if (why := objective_refusal(model, arch, objective)) is not None:
            raise UsageError(why)
        shape = ARCHITECTURES[arch][1]
        what = {"model": arch, "kind": kind, "latent_dim": model.latent_dim, "loss": loss, "seed": args.seed,
                **({"prior": prior, "prior_components": components} if kind == "vae" else {})}
    model.train()
    x = (rng.random((args.batch,) + tuple(shape)) < 0.3).astype(np.float64)
    samples = (model.objective.k,) if isinstance(getattr(model, "objective", None), IWAE) else ()
    eps = rng.standard_normal((args.batch, *samples, model.latent_dim)) if kind == "vae" else None  # (N, [K,] L)
    if samples:
        what.update(objective="iwae", iw_samples=samples[0])
    h = MODEL_STEP[arch] if args.h is None else args.h
    entries = DEFAULT_MODEL_ENTRIES if args.max_entries is None else args.max_entries
    report = check_model(model, x, eps, h=h, tolerance=args.tolerance, max_entries=entries, seed=args.seed)
    what["input_shape"] = list(x.shape)
    return report, what, h


# -- output --------------------------------------------------------------------------------------------------
def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _describe(what: dict) -> str:
    if "layer" in what:
        return f"layer {what['module']} on input {tuple(what['input_shape'])}, L = sum(out * R)"
    if "loss" in what and "model" not in what:
        arrays = "mu, logvar" if what["loss"] == "kl" else "pred"
        return f"loss {what['loss']} on random {arrays} {tuple(what['input_shape'])}"
    source = f"checkpoint {what['checkpoint']} (epoch {what['epoch']})" if "checkpoint" in what \
        else f"fresh weights, seed {what['seed']}"
    prior = f", prior {what['prior']} (M={what['prior_components']})" if what.get("prior", "normal") != "normal" else ""
    bound = f", IWAE bound K = {what['iw_samples']}" if "iw_samples" in what else ""
    return (f"model {what['model']} {what['kind']}, L={what['latent_dim']}, {what['loss']} loss{prior}{bound}, "
            f"{source}; "
            f"{what['input_shape'][0]} random binary images" + (", eps fixed" if what["kind"] == "vae" else ""))


def format_table(report: GradCheckReport, what: dict, h: float) -> str:
    rows = report.rows()
    head = ("array", "shape", "checked", "kinks", "|analytic|", "|numeric|", "max |diff|", "rel. error", "")
    body = [(r["name"], "(" + ", ".join(map(str, r["shape"])) + ("," if len(r["shape"]) == 1 else "") + ")",
             f"{r['checked']} of {r['size']}", str(r["kinks"]), f"{r['analytic_norm']:.3e}",
             f"{r['numeric_norm']:.3e}", f"{r['max_abs_diff']:.1e}", f"{r['rel_error']:.1e}",
             "ok" if r["ok"] else ("FAIL (all at kinks)" if r["checked"] == 0 else "FAIL")) for r in rows]
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    left = {0, 1}

    def line(row):
        return "  ".join(c.ljust(w) if i in left or i == len(row) - 1 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    lines = [f"gradcheck: {_describe(what)}; float64, h = {h:g}", line(head)] + [line(r) for r in body]
    failed = [r["name"] for r in rows if not r["ok"]]
    checked, kinks = sum(r["checked"] for r in rows), sum(r["kinks"] for r in rows)
    counts = f"{checked} entries checked, {kinks} skipped at kinks; max rel. error {report.max_error:.1e}"
    if failed:
        lines.append(f"FAIL: {len(failed)} of {len(rows)} arrays fail (tolerance {report.tolerance:g}): "
                     f"{', '.join(failed)}; {counts}")
    else:
        lines.append(f"PASS: all {len(rows)} arrays within tolerance {report.tolerance:g}; {counts}")
    return "\n".join(lines)


def as_json(report: GradCheckReport, what: dict, h: float) -> dict:
    rows = [{k: _finite(v) for k, v in r.items()} for r in report.rows()]
    return {**what, "h": h, "tolerance": report.tolerance, "dtype": "float64", "ok": report.ok,
            "max_rel_error": _finite(report.max_error), "rows": rows}


def run(args: argparse.Namespace) -> int:
    # the data's own stream: check_module draws R from default_rng(seed), and an input drawn from the
    # same stream would equal R (BatchNorm's L = sum(x_hat * x) then has a near-zero input gradient)
    rng = np.random.default_rng([args.seed, 1])
    if args.layer is not None:
        report, what, h = _check_layer(args, rng)
    elif args.loss is not None:
        report, what, h = _check_loss(args, rng)
    elif args.model is not None or args.checkpoint is not None:
        report, what, h = _check_model(args, rng)
    else:
        raise UsageError("give one of --model, --checkpoint, --layer or --loss")
    if args.json:
        print(json.dumps(as_json(report, what, h), allow_nan=False))
    else:
        print(format_table(report, what, h))
    sys.stdout.flush()
    return 0 if report.ok else 1
