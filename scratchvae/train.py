"""The training loop: minibatches, one optimizer step per batch, per-epoch evaluation.

Kept model-agnostic: anything with ``loss(x, target)`` returning Losses and a
``backward()`` trains here, the VAE and the Autoencoder alike. A DataParallel
(parallel.py) runs each batch, on one worker or split over several.

Everything random a run draws comes from generators a checkpoint can save (the ``rng``
passed in shuffles and binarizes; the model and each worker draw their own eps), and an
epoch's position is an EpochProgress, so a run stopped anywhere, even inside an epoch, can
go on to bit-for-bit the weights it would have reached uninterrupted.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from .data import binarize
from .objective import Losses
from .nn.module import Module
from .optim import Optimizer, clip_grad_norm
from .parallel import DataParallel


class TrainingFault(FloatingPointError):
    """Training stopped on a NaN or infinity: which quantity, at which epoch and step."""


class TrainingInterrupted(Exception):
    """should_stop() said stop: ``progress`` is where the epoch stood (None between epochs)."""

    def __init__(self, epoch: int, progress: "EpochProgress | None") -> None:
        super().__init__(f"stopped in epoch {epoch}")
        self.epoch, self.progress = epoch, progress


@dataclass
class EpochProgress:
    """Where an epoch stands: its shuffled order, the next step, and the loss totals so far."""

    order: np.ndarray            # (N,) the epoch's permutation of the training images
    step: int = 0                # batches done
    totals: np.ndarray | None = None  # (T,) sums of the objective's total and terms, weighted by images
    seen: int = 0                # images trained on (a skipped lone leftover is not counted)

    def add(self, losses: Losses, images: int) -> None:
        """Count a step's losses, weighted by its images."""
        self.totals += np.array(list(losses)) * images
        self.seen += images

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"order": self.order, "step": np.array(self.step), "totals": self.totals, "seen": np.array(self.seen)}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "EpochProgress":
        return cls(a["order"], int(a["step"]), a["totals"].astype(np.float64), int(a["seen"]))


@dataclass
class EpochMetrics:
    epoch: int
    train: Losses
    test: Losses
    seconds: float
    kl_weight: float = 1.0
    extra: dict = field(default_factory=dict)    # more columns, e.g. kl_per_dim when tracing

    def as_json(self) -> dict:
        row = {"epoch": self.epoch}
        for split, losses in (("train", self.train), ("test", self.test)):
            row[f"{split}_loss"] = losses.total
            row.update((f"{split}_{name}", value) for name, value in losses.terms.items())
        row["kl_weight"] = self.kl_weight
        row["seconds"] = round(self.seconds, 3)
        row.update(self.extra)
        return row

    def __str__(self) -> str:
        def fmt(l: Losses) -> str:
            terms = ", ".join(f"{name} {value:{TERM_WIDTHS.get(name, 7)}.2f}" for name, value in l.terms.items())
            return f"{l.total:8.2f} ({terms})"
        return f"epoch {self.epoch:3d}  train {fmt(self.train)}  test {fmt(self.test)}  {self.seconds:6.1f} s"


def minibatches(n: int, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Index arrays covering range(n) once: shuffled when an rng is given; the last may be short."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


#: how wide each term prints in the epoch line (others: 7)
TERM_WIDTHS = {"recon": 7, "kl": 6}


def _mean_losses(names: tuple[str, ...], totals: np.ndarray, count: int) -> Losses:
    return Losses.from_values(names, [float(t / count) for t in totals])


def check_finite(losses: Losses, where: str) -> None:
    """NaN guard: stop with a clear message instead of training on garbage."""
    if not losses.finite():
        raise TrainingFault(f"non-finite loss ({_name_bad(losses)}) at {where}; try a lower --lr, "
                            f"--clip or --kl-warmup")


def _name_bad(losses: Losses) -> str:
    return ", ".join(f"{name} {value}" for name, value in losses.as_dict().items() if not np.isfinite(value))


def check_finite_gradients(model: Module, where: str) -> None:
    """The gradient guard: a NaN or inf gradient with a finite loss (an overflow in backward)."""
    for name, p in model.named_parameters():
        if not np.isfinite(p.grad).all():
            raise TrainingFault(f"non-finite gradient of {name} at {where}; try a lower --lr or --clip")


def kl_weight(epoch: int, beta: float, warmup_epochs: int) -> float:
    """The KL term's weight in an epoch (1-based): beta * min(1, epoch / warmup_epochs), rising
    linearly to beta over the warm-up (a known remedy for posterior collapse); beta without one."""
    return beta if warmup_epochs <= 0 else beta * min(1.0, epoch / warmup_epochs)


#: --lr-schedule names
LR_SCHEDULES = ("constant", "cosine")


def learning_rate(epoch: int, lr: float, schedule: str, epochs: int) -> float:
    """The learning rate of an epoch (1-based) of ``epochs``: lr throughout ('constant'), or
    lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2 ('cosine', Loshchilov and Hutter 2017), from lr in
    the first epoch down towards 0 in the last, so the final epochs average out Adam's noise."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}, choose from {', '.join(LR_SCHEDULES)}")


def set_kl_weight(parallel: DataParallel, weight: float) -> None:
    """The model's beta and every replica's (each copied it when the DataParallel was built)."""
    for m in [parallel.model, *parallel.replicas]:
        if hasattr(m, "beta"):
            m.beta = weight


def train_epoch(model: Module, optimizer: Optimizer, x: np.ndarray, batch_size: int, rng: np.random.Generator,
                binarize_mode: str = "none", clip: float | None = None, epoch: int = 1,
                progress: bool = True, parallel: DataParallel | None = None,
                state: EpochProgress | None = None, should_stop: Callable[[], bool] | None = None,
                tracer=None) -> Losses:
    """One pass over x (N, C, H, W); returns the image-weighted mean losses.

    ``parallel`` (a DataParallel of this model) splits each batch over its workers; without
    it the model runs the batch itself. ``state`` resumes an epoch where it stopped (else the
    epoch draws its order from rng). After every step ``should_stop()`` may end the epoch
    early: TrainingInterrupted then carries where it stood. ``tracer`` (gradflow.GradTracer)
    gets ``on_grads(model, epoch, step)`` after each backward, before clipping and the update.
    """
    parallel = parallel or DataParallel(model, workers=1)
    state = state or EpochProgress(rng.permutation(x.shape[0]))
    if state.totals is None:
        state.totals = np.zeros(len(model.loss_names))           # one sum per name: total, then the terms
    model.train()
    bar = tqdm(total=x.shape[0], initial=min(state.step * batch_size, x.shape[0]), desc=f"epoch {epoch}", unit="img",
               leave=False, disable=not progress, dynamic_ncols=True)
    steps = range(0, x.shape[0], batch_size)
    for step in range(state.step, len(steps)):
        idx = state.order[steps[step]:steps[step] + batch_size]
        if len(idx) > 1 or x.shape[0] == 1:  # a lone leftover image: BatchNorm cannot normalise a batch of one
            on_grads = None if tracer is None else (lambda m, s=step: tracer.on_grads(m, epoch, s))
            losses = _step(model, optimizer, parallel, x[idx], rng, binarize_mode, clip, f"epoch {epoch}, step {step}",
                           on_grads)
            state.add(losses, len(idx))
        state.step = step + 1
        bar.update(len(idx))
        bar.set_postfix(loss=f"{state.totals[0] / max(state.seen, 1):.2f}", refresh=False)
        if should_stop is not None and should_stop() and state.step < len(steps):
            bar.close()
            raise TrainingInterrupted(epoch, state)
    bar.close()
    return _mean_losses(model.loss_names, state.totals, state.seen)


def _step(model: Module, optimizer: Optimizer, parallel: DataParallel, xb: np.ndarray, rng: np.random.Generator,
          binarize_mode: str, clip: float | None, where: str,
          on_grads: Callable[[Module], None] | None = None) -> Losses:
    """One optimizer step on the batch xb (B, C, H, W), the same lines on every path:
    zero the gradients, loss, backward, (clip), step.

    ``parallel`` is the model with its batch split over the workers behind these calls (one
    worker: the model's own); with several, step() sums their gradients and makes Adam's
    update inside that sum (parallel.py, reduce.py). ``on_grads(model)`` (one worker only)
    sees the gradient before clipping and the update.
    """
    if binarize_mode == "dynamic":
        xb = binarize(xb, rng)                                   # a fresh draw every time it is seen
    if on_grads is not None and parallel.workers > 1:
        raise ValueError("tracing gradients needs one worker (--workers 1)")
    parallel.zero_grad()                                         # backward adds into .grad
    losses = parallel.loss(xb)                                   # forward and the negative ELBO
    check_finite(losses, where)                                  # a NaN loss stops the run; no weight moved
    parallel.backward(input_grad=False)                          # every Parameter.grad; the data needs none
    if on_grads is not None:
        on_grads(model)
    if clip:
        clip_grad_norm(parallel.parameters(), clip)              # needs the whole gradient before any update
    # the update; a NaN gradient stops the run before any checkpoint holds it (checked before
    # the update, or, when the workers make it inside their sum, just after it)
    parallel.step(optimizer, check=lambda: check_finite_gradients(model, where))
    return losses


def evaluate(model: Module, x: np.ndarray, batch_size: int = 1000, parallel: DataParallel | None = None) -> Losses:
    """Mean losses over x in eval mode (a VAE still draws one z per image: the single-sample ELBO)."""
    parallel = parallel or DataParallel(model, workers=1)
    model.eval()
    totals = np.zeros(len(model.loss_names))
    for idx in minibatches(x.shape[0], batch_size):
        totals += np.array(list(parallel.loss(x[idx]))) * len(idx)
    model.train()
    return _mean_losses(model.loss_names, totals, x.shape[0])


def fit(model: Module, optimizer: Optimizer, x_train: np.ndarray, x_test: np.ndarray, epochs: int,
        batch_size: int, rng: np.random.Generator, binarize_mode: str = "none", clip: float | None = None,
        metrics_path: Path | None = None, progress: bool = True,
        on_epoch: Callable[[EpochMetrics], None] | None = None, workers: int | None = None, *,
        parallel: DataParallel | None = None, start_epoch: int = 1, resume: EpochProgress | None = None,
        should_stop: Callable[[], bool] | None = None, kl_warmup: int = 0, tracer=None,
        lr_schedule: str = "constant") -> list[EpochMetrics]:
    """Train epochs start_epoch..epochs, printing a line per epoch and appending it to
    ``metrics_path`` (JSON lines), then calling ``on_epoch`` (where a run saves its checkpoint).

    ``workers`` threads each take a share of every batch (see parallel.py); None picks
    default_workers(model): one per core for the conv models. ``resume`` continues the
    start epoch where it stopped. ``kl_warmup`` > 0 weights the KL by kl_weight(epoch) in
    training; the test loss always uses the model's own beta, so epochs compare. ``tracer``
    (gradflow.GradTracer) sees every step's gradients, and its ``epoch_extras(epoch)`` columns
    join each epoch's metrics row. ``lr_schedule`` sets the optimizer's learning rate at the
    start of each epoch from the rate it was built with (learning_rate); rows then carry "lr".
    """
    parallel = parallel or DataParallel(model, workers)
    beta = getattr(model, "beta", 1.0)
    base_lr = optimizer.lr
    history = []
    for epoch in range(start_epoch, epochs + 1):
        if should_stop is not None and should_stop():
            raise TrainingInterrupted(epoch, None)
        start = time.perf_counter()
        weight = kl_weight(epoch, beta, kl_warmup)
        set_kl_weight(parallel, weight)
        optimizer.lr = learning_rate(epoch, base_lr, lr_schedule, epochs)
        try:
            train_losses = train_epoch(model, optimizer, x_train, batch_size, rng, binarize_mode, clip, epoch,
                                       progress, parallel, resume if epoch == start_epoch else None, should_stop,
                                       tracer)
        finally:
            set_kl_weight(parallel, beta)
            optimizer.lr = base_lr
        seconds = time.perf_counter() - start
        test_losses = evaluate(model, x_test, parallel=parallel)
        check_finite(test_losses, f"epoch {epoch}, test set")
        extra = {} if tracer is None else tracer.epoch_extras(epoch)
        if lr_schedule != "constant":
            extra["lr"] = learning_rate(epoch, base_lr, lr_schedule, epochs)
        row = EpochMetrics(epoch, train_losses, test_losses, seconds, weight, extra)
        history.append(row)
        tqdm.write(str(row))
        if metrics_path is not None:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row.as_json()) + "\n")
        if on_epoch is not None:
            on_epoch(row)
    return history
