"""The training loop: minibatches, one optimizer step per batch, per-epoch evaluation.

Kept model-agnostic: anything with ``loss(x, target)`` returning Losses and a
``backward()`` trains here, the VAE and the Autoencoder alike. A DataParallel
(parallel.py) runs each batch, on one worker or split over several.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from .data import binarize
from .models import Losses
from .nn.module import Module
from .optim import Optimizer, clip_grad_norm
from .parallel import DataParallel


@dataclass
class EpochMetrics:
    epoch: int
    train: Losses
    test: Losses
    seconds: float

    def as_json(self) -> dict:
        row = {"epoch": self.epoch}
        for split, losses in (("train", self.train), ("test", self.test)):
            row[f"{split}_loss"] = losses.total
            row[f"{split}_recon"] = losses.recon
            row[f"{split}_kl"] = losses.kl
        row["seconds"] = round(self.seconds, 3)
        return row

    def __str__(self) -> str:
        def fmt(l: Losses) -> str:
            return f"{l.total:8.2f} (recon {l.recon:7.2f}, kl {l.kl:6.2f})"
        return f"epoch {self.epoch:3d}  train {fmt(self.train)}  test {fmt(self.test)}  {self.seconds:6.1f} s"


def minibatches(n: int, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Index arrays covering range(n) once: shuffled when an rng is given; the last may be short."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _mean_losses(totals: np.ndarray, count: int) -> Losses:
    return Losses(*(float(t / count) for t in totals))


def check_finite(losses: Losses, where: str) -> None:
    """NaN guard: stop with a clear message instead of training on garbage."""
    if not losses.finite():
        raise FloatingPointError(f"non-finite loss {losses} at {where}; try a lower --lr or --clip")


def train_epoch(model: Module, optimizer: Optimizer, x: np.ndarray, batch_size: int, rng: np.random.Generator,
                binarize_mode: str = "none", clip: float | None = None, epoch: int = 1,
                progress: bool = True, parallel: DataParallel | None = None) -> Losses:
    """One pass over x (N, C, H, W); returns the image-weighted mean losses.

    ``parallel`` (a DataParallel of this model) splits each batch over its workers;
    without it the model runs the batch itself.
    """
    parallel = parallel or DataParallel(model, workers=1)
    model.train()
    totals, seen = np.zeros(3), 0
    bar = tqdm(total=x.shape[0], desc=f"epoch {epoch}", unit="img", leave=False, disable=not progress,
               dynamic_ncols=True)
    for step, idx in enumerate(minibatches(x.shape[0], batch_size, rng)):
        if len(idx) == 1 and x.shape[0] > 1:
            bar.update(1)
            continue  # a lone leftover image: BatchNorm cannot normalise a batch of one
        xb = x[idx]                                              # (B, C, H, W)
        if binarize_mode == "dynamic":
            xb = binarize(xb, rng)                               # a fresh draw every time it is seen
        if clip:  # clipping needs the whole gradient before any update
            model.zero_grad()
            # model.loss(xb), then model.backward(input_grad=False): the data needs no gradient
            losses = parallel.loss_and_backward(xb)
            check_finite(losses, f"epoch {epoch}, step {step}")
            clip_grad_norm(model.parameters(), clip)
            optimizer.step()
        else:
            # zero_grad, loss, backward and step in one call, the update made by the workers
            # (DataParallel.train_step); a non-finite loss leaves the weights untouched, and
            # check_finite stops here
            losses = parallel.train_step(xb, optimizer)
            check_finite(losses, f"epoch {epoch}, step {step}")
        totals += np.array(losses) * len(idx)
        seen += len(idx)
        bar.update(len(idx))
        bar.set_postfix(loss=f"{totals[0] / seen:.2f}", refresh=False)
    bar.close()
    return _mean_losses(totals, seen)


def evaluate(model: Module, x: np.ndarray, batch_size: int = 1000, parallel: DataParallel | None = None) -> Losses:
    """Mean losses over x in eval mode (a VAE still draws one z per image: the single-sample ELBO)."""
    parallel = parallel or DataParallel(model, workers=1)
    model.eval()
    totals = np.zeros(3)
    for idx in minibatches(x.shape[0], batch_size):
        totals += np.array(parallel.loss(x[idx])) * len(idx)
    model.train()
    return _mean_losses(totals, x.shape[0])


def fit(model: Module, optimizer: Optimizer, x_train: np.ndarray, x_test: np.ndarray, epochs: int,
        batch_size: int, rng: np.random.Generator, binarize_mode: str = "none", clip: float | None = None,
        metrics_path: Path | None = None, progress: bool = True,
        on_epoch: Callable[[EpochMetrics], None] | None = None, workers: int | None = None) -> list[EpochMetrics]:
    """Train for ``epochs``, printing a line per epoch and appending it to ``metrics_path`` (JSON lines).

    ``workers`` threads each take a share of every batch (see parallel.py); None picks
    default_workers(model): one per core for the conv models.
    """
    parallel = DataParallel(model, workers)
    history = []
    if metrics_path is not None:
        Path(metrics_path).write_text("")
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_losses = train_epoch(model, optimizer, x_train, batch_size, rng, binarize_mode, clip, epoch,
                                   progress, parallel)
        seconds = time.perf_counter() - start
        test_losses = evaluate(model, x_test, parallel=parallel)
        check_finite(test_losses, f"epoch {epoch}, test set")
        row = EpochMetrics(epoch, train_losses, test_losses, seconds)
        history.append(row)
        tqdm.write(str(row))
        if metrics_path is not None:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row.as_json()) + "\n")
        if on_epoch is not None:
            on_epoch(row)
    return history
