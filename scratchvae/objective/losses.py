"""Reconstruction losses: BCE (from logits, or on probabilities), MSE and RMSE.

Every loss here is summed over the pixels of an image and averaged over the
batch, so BCE reads as nats per image, comparable with published VAE numbers.
``forward(pred, target)`` returns that float; ``backward(dloss=1)`` returns dpred,
the gradient of dloss * the returned number (hence the 1/N in every formula; the
formulas below are for dloss = 1, and every one is multiplied by dloss)   [LOSS-1].
Derivations: docs/derivations/losses.md.
Inputs are flattened to (N, D) views; dpred has pred's shape.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kernels.bce import bce_logits_grad, bce_logits_rows, bce_logits_rows_e, bce_logits_sum
from ..nn.module import per_image_scale


class _LossCache(NamedTuple):
    pred: np.ndarray    # (N, D)
    target: np.ndarray  # (N, D)
    shape: tuple        # pred's original shape


class ReconstructionLoss:
    """Shared plumbing: flatten, cache, and the batch mean of ``per_image``."""

    #: True when ``pred`` is a logit and the decoder must NOT end with a Sigmoid
    takes_logits = False

    def __init__(self) -> None:
        self.cache: _LossCache | None = None

    def per_pixel(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Loss of each pixel, (N, D), for the losses that are a sum over pixels."""
        raise NotImplementedError(f"{type(self).__name__} is not a sum over pixels")

    def per_image(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Loss of each image, (N,) float64: the sum over its pixels (what an importance-sampled
        likelihood needs: float64 whatever pred's dtype, so the log-weights keep their digits)."""
        return np.sum(self.per_pixel(pred, target), axis=1, dtype=np.float64)  # (N,)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        return float(self.forward_rows(pred, target).mean())

    def forward_rows(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The loss of each image, (N,) float64, caching for backward: an objective that weights
        the images' losses (the importance-weighted bound) calls this, then backward(dloss=(N,))."""
        cache = self._keep(pred, target)
        return self.per_image(cache.pred, cache.target)          # (N,)

    def _keep(self, pred: np.ndarray, target: np.ndarray) -> _LossCache:
        """Check the shapes and cache pred and target as (N, D) views."""
        if pred.shape != target.shape:
            raise ValueError(f"{type(self).__name__}: pred {pred.shape} and target {target.shape} differ")
        n = pred.shape[0]
        self.cache = _LossCache(pred.reshape(n, -1), target.reshape(n, -1), pred.shape)  # (N, D) views
        return self.cache

    def backward(self, dloss: float | np.ndarray = 1.0) -> np.ndarray:
        """dpred, pred's shape. dloss is the gradient arriving at the loss (1 for a plain step;
        parallel.py passes a share's n_k / n), so the chain rule starts with dloss * d loss / d pred;
        an (N,) dloss is the gradient arriving at each image's loss l_n: the gradient of
        sum_n dloss_n * l_n, each row of the formulas below times dloss_n instead of dloss / N."""
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        pred, target, shape = self.cache
        scale = per_image_scale(dloss, pred.shape[0], pred.dtype)  # dloss / N, or (N, 1)
        if np.ndim(scale) == 0:
            return self._dpred(pred, target, scale).reshape(shape)
        return (self._dpred(pred, target, 1.0) * scale).reshape(shape)  # row n times dloss_n

    def _dpred(self, pred: np.ndarray, target: np.ndarray, scale: float) -> np.ndarray:
        """dpred (N, D) with the 1/N of the batch mean given as scale = dloss / N."""
        raise NotImplementedError


class BCEWithLogits(ReconstructionLoss):
    """Binary cross-entropy on logits a, targets t in [0, 1] (nats per image).

    per pixel:  l = -t log sigmoid(a) - (1 - t) log(1 - sigmoid(a))
                  = max(a, 0) - a t + log(1 + exp(-|a|))      (never overflows)   [BCE-1]
    backward:   da = (sigmoid(a) - t) / N                                      [BCE-2]
    Training runs both as the kernels bce_logits_sum and bce_logits_grad, per_image as
    bce_logits_rows (kernels/bce.py: one pass each after NumPy's exp(-|a|), which forward keeps
    for backward's sigmoid).
    """

    takes_logits = True

    def __init__(self) -> None:
        super().__init__()
        self.exp_neg_abs: np.ndarray | None = None   # e = exp(-|a|), (N, D), from forward

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        a, t, _ = self._keep(pred, target)                       # (N, D) each
        total, self.exp_neg_abs = bce_logits_sum(a, t)           # the loss summed over the batch; e
        return total / a.shape[0]

    def per_pixel(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        a, t = pred, target
        e = np.exp(-np.abs(a))                                   # (N, D), in (0, 1]: never overflows
        return np.maximum(a, 0) - a * t + np.log1p(e)            # (N, D)

    def forward_rows(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        a, t, _ = self._keep(pred, target)                       # (N, D) each
        rows, self.exp_neg_abs = bce_logits_rows_e(a, t)         # (N,) float64; e (N, D)
        return rows

    def per_image(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        return bce_logits_rows(pred, target)                     # (N,) float64: per_pixel summed

    def _dpred(self, pred: np.ndarray, target: np.ndarray, scale: float) -> np.ndarray:
        return bce_logits_grad(pred, target, self.exp_neg_abs, scale)  # (N, D): (sigmoid(a) - t) * scale


class BCE(ReconstructionLoss):
    """Binary cross-entropy on probabilities p (a decoder ending in Sigmoid), as the seed writes it.

    per pixel:  l = -t log p - (1 - t) log(1 - p),   log clamped at -100 as torch's BCELoss does   [BCE-3]
    backward:   dp = (p - t) / (p (1 - p)) / N   (p (1 - p) floored at tiny)   [BCE-4]
    Less stable than BCEWithLogits: once sigmoid saturates, p(1-p) underflows.
    """

    def per_pixel(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(pred), -100.0)
            log_1mp = np.maximum(np.log1p(-pred), -100.0)
        return -(target * log_p + (1 - target) * log_1mp)        # (N, D)

    def _dpred(self, pred: np.ndarray, target: np.ndarray, scale: float) -> np.ndarray:
        tiny = np.finfo(pred.dtype).tiny
        return (pred - target) / np.maximum(pred * (1 - pred), tiny) * scale  # (N, D)


class MSE(ReconstructionLoss):
    """Squared error summed over pixels, averaged over images.

    per image:  l = sum_i (p_i - t_i)**2
    backward:   dp = 2 (p - t) / N   [MSE-1]
    """

    def per_pixel(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        diff = pred - target
        return diff * diff                                       # (N, D)

    def _dpred(self, pred: np.ndarray, target: np.ndarray, scale: float) -> np.ndarray:
        return (2.0 * scale) * (pred - target)                   # (N, D)


class RMSE(ReconstructionLoss):
    """Root-mean-square error of each image, averaged over images.

    per image:  r = sqrt( sum_i (p_i - t_i)**2 / D )
    backward:   dp = (p - t) / (D r) / N          (undefined at r = 0: r is floored at 1e-12)   [RMSE-1]
    Its scale is ~0.1 per image, far below the KL's, so pair it with a small --beta.
    """

    def per_image(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        diff = pred - target
        return np.sqrt(np.mean(diff * diff, axis=1))             # (N,)

    def _dpred(self, pred: np.ndarray, target: np.ndarray, scale: float) -> np.ndarray:
        d = pred.shape[1]
        r = np.maximum(self.per_image(pred, target), 1e-12)      # (N,)
        return (pred - target) / (d * r[:, None]) * scale        # (N, D)


LOSSES = {"bce": BCEWithLogits, "bce-prob": BCE, "mse": MSE, "rmse": RMSE}


def make_loss(name: str) -> ReconstructionLoss:
    """The loss called ``name``: one of bce (from logits), bce-prob, mse, rmse."""
    try:
        return LOSSES[name]()
    except KeyError:
        raise ValueError(f"unknown reconstruction loss '{name}', choose from {sorted(LOSSES)}") from None
