"""``scratchvae train``: a run folder with its config, checkpoints, metrics and figures.

    DIR/config.json     every setting, the package versions and the command line
    DIR/last.npz        the state after the latest epoch (or where Ctrl-C stopped it)
    DIR/best.npz        the state at the best held-out loss
    DIR/metrics.jsonl   one JSON line per epoch
    DIR/*.png           reconstructions, samples, loss curves
    DIR/gradflow.npz    with --trace-grads: gradient norms per step and KL per latent per epoch
    DIR/gradflow.png    (scratchvae/gradflow.py)

``--resume`` goes on from DIR/last.npz with the settings of DIR's config (``--epochs``
may raise the total), to bit-for-bit the weights the run would have reached uninterrupted. The
run's own flags may be given again (a script re-running its command line with ``--resume``);
a value that differs from the config is refused, naming both.
"""
from __future__ import annotations

import argparse
import json
import platform
import signal
import sys
from pathlib import Path

import numpy as np

from ..checkpoint import Checkpoint, CheckpointError, load_checkpoint, model_from_config, restore_rng, rng_state, \
    save_checkpoint
from ..data import check_model_fits, load_dataset, prepare
from ..distributions import prior_label
from ..errors import UsageError, make_folder
from ..gradflow import GradTracer, save_gradflow_figure
from ..models import ARCHITECTURES, objective_refusal, prior_refusal
from ..nn.init import manual_seed
from ..nn.module import batch_coupling
from ..optim import Adam
from ..parallel import DataParallel, default_workers
from ..plots import save_grid, save_loss_curves, save_reconstructions
from ..train import EpochProgress, TrainingFault, TrainingInterrupted, fit
from .argtypes import refuse_workers
from .train_flags import DEFAULTS, PRESETS, SETTINGS, add_arguments



def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a VAE or autoencoder into a run folder (checkpoints, metrics, figures)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=cmd_train)


class StopOnCtrlC:
    """The first Ctrl-C asks the loop to stop after the step it is in; a second abandons the step."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step, then saving (Ctrl-C again to abandon the step)", file=sys.stderr)

    def __enter__(self) -> "StopOnCtrlC":
        self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._old)


def _versions() -> dict:
    import numba

    from .. import __version__
    return {"scratchvae": __version__, "numpy": np.__version__, "numba": numba.__version__,
            "python": platform.python_version()}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _new_config(args: argparse.Namespace) -> dict:
    """Each setting from its flag, else from --preset's recipe, else DEFAULTS."""
    preset = PRESETS[args.preset] if args.preset else {}
    config = {key: preset.get(key, DEFAULTS[key]) if getattr(args, key) is None else getattr(args, key)
              for key in SETTINGS}
    config["dataset"] = config["dataset"] or ("olivetti" if config["model"] == "faces" else "mnist")
    config["latent_dim"] = config["latent_dim"] or ARCHITECTURES[config["model"]][2]
    return config


def _check_prior(config: dict) -> None:
    """Refuse a prior the run cannot train (UsageError, before any work)."""
    prior = config.get("prior", "normal")
    if (why := prior_refusal(config["model"], prior)) is not None:
        raise UsageError(why)
    if prior != "normal" and config.get("trace_grads"):
        raise UsageError(f"--trace-grads splits dh into the closed-form KL's part, which --prior {prior} has not; "
                         f"use --prior normal")


def _run_folder(args: argparse.Namespace, config: dict) -> Path:
    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"{args.out}: a file, not a folder (--out takes the run folder)")
        if (args.out / "last.npz").exists():
            raise UsageError(f"{args.out} already holds a run (last.npz): --resume to go on with it, "
                             f"or choose another --out")
        return args.out
    base = Path("runs") / f"{config['model']}-{config['kind']}"
    out, n = base, 1
    while (out / "last.npz").exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _resumed_config(args: argparse.Namespace) -> tuple[dict, Checkpoint]:
    """The run's config and last checkpoint. A flag given again must say what the config says
    (a script re-runs its own command line with --resume); only --epochs may differ."""
    if args.out is None:
        raise UsageError("--resume needs --out DIR, the run folder to go on with")
    checkpoint = load_checkpoint(args.out / "last.npz")
    config = dict(checkpoint.config)
    changed = [f"{_flag(k)} {given} differs from the run's {config.get(k, DEFAULTS[k])}" for k in SETTINGS
               if k != "epochs" and (given := getattr(args, k)) is not None and given != config.get(k, DEFAULTS[k])]
    if changed:
        raise UsageError(f"--resume goes on with the settings in {args.out / 'config.json'}, and only --epochs "
                         f"may change: {'; '.join(changed)}")
    if args.epochs is not None:
        config["epochs"] = args.epochs
    return config, checkpoint


def cmd_train(args: argparse.Namespace) -> int:
    config, checkpoint = _resumed_config(args) if args.resume else (_new_config(args), None)
    out = args.out if args.resume else _run_folder(args, config)
    rng = np.random.default_rng(config["seed"] + 1)              # shuffling and binarization
    dataset = load_dataset(config["dataset"], image_size=config["image_size"], seed=config["seed"],
                           train_size=config["train_size"])
    check_model_fits(config["model"], dataset.image_shape)
    _check_prior(config)
    config["image_shape"] = list(dataset.image_shape)
    x_train, x_test = prepare(dataset, config["binarize"], rng)
    _refuse_objective(config)
    manual_seed(config["seed"])                                  # weight init
    model = model_from_config(config, rng=np.random.default_rng(config["seed"] + 2))
    trace = config.get("trace_grads", False)
    if trace and config["kind"] != "vae":
        raise UsageError("--trace-grads traces a VAE's gradients (--kind vae)")
    if trace and (config["workers"] or 1) > 1:
        raise UsageError("--trace-grads runs on one worker; use --workers 1")
    refuse_workers(model, config["workers"])
    if (why := objective_refusal(model, config["model"], config["objective"])) is not None:
        raise UsageError(why)
    if config["batch_size"] < 2 and batch_coupling(model) is not None:
        raise UsageError(f"--batch-size 1: the '{config['model']}' model has BatchNorm, which needs at least 2 "
                         f"images per batch (a lone image has no batch statistics)")
    config["workers"] = config["workers"] or (1 if trace else default_workers(model))
    parallel = DataParallel(model, config["workers"])            # draws the replicas' seeds from model.rng
    optimizer = Adam(model.parameters(), lr=config["lr"])
    generators = {"train": rng, **({"model": model.rng} if hasattr(model, "rng") else {}),
                  **{f"replica.{k}": r.rng for k, r in enumerate(parallel.replicas) if hasattr(r, "rng")}}
    run = _Run(out, config, model, optimizer, generators)
    if trace:
        run.tracer = GradTracer(model, x_test)
        run.tracer.install()
    resume = None
    if checkpoint is not None:
        resume = run.restore(checkpoint)
    else:
        make_folder(out, "run folder")
        config["versions"], config["command"] = _versions(), ["scratchvae", *sys.argv[1:]]
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (out / "metrics.jsonl").write_text("")
    print(f"{config['kind'].upper()} '{config['model']}': {model.num_parameters():,} parameters, latent "
          f"{model.latent_dim}, loss {config['loss']}, beta {config['beta']}, binarize {config['binarize']}; "
          f"{dataset.name}: {len(x_train):,} train / {len(x_test):,} test images -> {out}/")
    print(f"{config['workers']} worker{'s' if config['workers'] > 1 else ''} (--workers)"
          + (f"; resuming after epoch {run.epoch}" if checkpoint is not None else ""))
    try:
        with StopOnCtrlC() as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            history = fit(model, optimizer, x_train, x_test, config["epochs"], config["batch_size"], rng,
                          config["binarize"], config["clip"], metrics_path=out / "metrics.jsonl",
                          progress=not args.no_progress, on_epoch=run.end_of_epoch, parallel=parallel,
                          start_epoch=run.epoch + 1, resume=resume, should_stop=stop,
                          kl_warmup=config["kl_warmup"], tracer=run.tracer,
                          lr_schedule=config.get("lr_schedule", "constant"))
    except TrainingInterrupted as stopped:
        where = f"after epoch {run.epoch}"
        if stopped.progress is not None:
            run.save("last.npz", stopped.progress)
            where = f"in epoch {stopped.epoch}, after step {stopped.progress.step}"
        print(f"stopped {where}; {out / 'last.npz'} holds it. Go on with: "
              f"scratchvae train --out {out} --resume", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"abandoned the step; {out / 'last.npz'} holds epoch {run.epoch}. Go on with: "
              f"scratchvae train --out {out} --resume", file=sys.stderr)
        return 130
    except TrainingFault as fault:
        print(f"scratchvae: error: {fault}; the last good checkpoint is {out / 'last.npz'} "
              f"(epoch {run.epoch})", file=sys.stderr)
        return 1
    _figures(model, x_test, out, config, _read_metrics(out), history)
    if run.tracer is not None:
        print(f"wrote {save_gradflow_figure(run.tracer.arrays(), out / 'gradflow.png')}, {out / 'gradflow.npz'}")
    return 0


def _refuse_objective(config: dict) -> None:
    """The settings the importance-weighted bound cannot take, as one-line errors."""
    if config["objective"] == "elbo" and config["iw_samples"] != 1:
        raise UsageError(f"--iw-samples {config['iw_samples']} needs --objective iwae (the ELBO draws one z per image)")
    if config["objective"] == "iwae" and config["kind"] != "vae":
        raise UsageError("--objective iwae trains a VAE (--kind vae): an autoencoder has no q(z|x) to sample")


class _Run:
    """The state a run saves: model, Adam, generators, epochs done, the best held-out loss."""

    def __init__(self, out: Path, config: dict, model, optimizer: Adam, generators: dict) -> None:
        self.out, self.config, self.model, self.optimizer, self.generators = out, config, model, optimizer, generators
        self.epoch, self.best_loss = 0, float("inf")
        self.tracer: GradTracer | None = None          # --trace-grads

    def checkpoint(self, progress: EpochProgress | None = None) -> Checkpoint:
        return Checkpoint(self.config, self.model.state_dict(), self.optimizer.state_dict(),
                          {k: rng_state(g) for k, g in self.generators.items()}, self.epoch, self.best_loss,
                          None if progress is None else progress.as_arrays())

    def save(self, name: str, progress: EpochProgress | None = None) -> None:
        if self.tracer is not None and name == "last.npz":
            self.tracer.save(self.out / "gradflow.npz")  # first: a resume drops steps past last.npz
        save_checkpoint(self.out / name, self.checkpoint(progress))

    def end_of_epoch(self, row) -> None:
        self.epoch = row.epoch
        if row.test.total < self.best_loss:
            self.best_loss = row.test.total
            self.save("best.npz")
        self.save("last.npz")

    def restore(self, checkpoint: Checkpoint) -> EpochProgress | None:
        """Load weights, Adam and generators; keep metrics.jsonl's epochs up to the checkpoint's."""
        try:
            self.model.load_state_dict(checkpoint.model_state)
            self.optimizer.load_state_dict(checkpoint.optimizer_state)
        except (KeyError, ValueError) as err:
            raise CheckpointError(f"{checkpoint.path}: does not fit its own config ({err})") from None
        missing = sorted(set(self.generators) - set(checkpoint.rng_states))
        if missing:
            raise CheckpointError(f"{checkpoint.path}: no state for the generators {missing}")
        for name, g in self.generators.items():
            restore_rng(g, checkpoint.rng_states[name])
        self.epoch, self.best_loss = checkpoint.epoch, checkpoint.best_loss
        if self.tracer is not None:
            step = 0 if checkpoint.progress is None else int(checkpoint.progress["step"])
            self.tracer.load(self.out / "gradflow.npz", self.epoch, step)
        rows = [r for r in _read_metrics(self.out) if r["epoch"] <= self.epoch]
        (self.out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return None if checkpoint.progress is None else EpochProgress.from_arrays(checkpoint.progress)


def _read_metrics(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _figures(model, x_test: np.ndarray, out: Path, config: dict, rows: list[dict], history) -> None:
    model.eval()
    shown = x_test[:50]
    figures = [save_reconstructions(shown, model.reconstruct(shown), out / "reconstructions.png"),
               save_loss_curves(rows, out / "loss.png")]
    if config["kind"] == "vae":
        figures.append(save_grid(model.sample(100, np.random.default_rng(config["seed"])), out / "samples.png",
                                 title=f"decoded z ~ {prior_label(model.prior)}"))
    if history:
        final = history[-1].test
        print(f"final test loss {final.total:.2f} (recon {final.recon:.2f}, kl {final.kl:.2f})")
    print("wrote " + ", ".join(str(f) for f in figures) + f", {out / 'metrics.jsonl'}, {out / 'last.npz'}, "
          f"{out / 'best.npz'}")
