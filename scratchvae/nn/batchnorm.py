"""Batch normalisation over every axis except the channel axis (1)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kernels import pixel_rows
from ..kernels.batchnorm import batchnorm_backward, batchnorm_forward, batchnorm_stats
from .module import Buffer, Module, Parameter, no_products
from .page_arrays import page_array


class _BatchNormCache(NamedTuple):
    rows: np.ndarray      # (M, C): x, one row per position, its channels side by side
    mean: np.ndarray      # (C,) float64, the mean used (the batch's, or the running one in eval)
    inv_std: np.ndarray   # (C,) float64
    batch_stats: bool     # True: mean/var came from this batch (train mode)
    shape: tuple          # x's shape


def channel_rows(x: np.ndarray) -> np.ndarray:
    """x (N, C, ...) -> (M, C): one row per position (n, or n, h, w, ...), its C channels side by
    side. A view for (N, C) and for channels-last (N, C, H, W) (every conv output), else a copy."""
    if x.ndim == 2:
        return x
    if x.ndim == 4:
        return pixel_rows(x)
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])                 # (N*L, C), a copy


def from_channel_rows(rows: np.ndarray, shape: tuple) -> np.ndarray:
    """The inverse of channel_rows: (M, C) -> (N, C, ...), a view (channels-last for 4-D)."""
    if len(shape) == 2:
        return rows
    N, C, *rest = shape
    return np.moveaxis(rows.reshape(N, *rest, C), -1, 1)                 # (N, C, ...)


class _BatchNorm(Module):
    """y = gamma * xhat + beta,   xhat = (x - mean) * inv_std,   inv_std = 1 / sqrt(var + eps)   [BN-1]
    (derivation: docs/derivations/batchnorm.md)

    mean and var are per channel, over every axis but 1 (M = x.size / C values each).
    train: mean, var = the batch's (var biased, i.e. divided by M), and the running stats move
               running = (1 - momentum) * running + momentum * batch   [BN-2]
           with the UNBIASED batch variance (divided by M - 1), as torch does.
    eval:  mean, var = running_mean, running_var (constants).

    backward, train mode (mean and var depend on x, which gives the two extra terms):
        dxhat  = dy * gamma
        dx     = inv_std / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))   [BN-5]
        dgamma = sum(dy * xhat)                                                 [BN-3]
        dbeta  = sum(dy)                    (sums over all axes but the channel axis)   [BN-3]
    backward, eval mode (mean and var are constants):
        dx     = dy * gamma * inv_std       (dgamma, dbeta as above)   [BN-4]

    The passes run on x's channel rows (M, C) (channel_rows: a view of a conv layer's output) as
    the kernels batchnorm_stats, batchnorm_forward and batchnorm_backward (kernels/batchnorm.py,
    each beside its NumPy reference); the cache keeps x's rows, the mean and inv_std.

    gamma, beta are the Parameters ``weight`` and ``bias`` (ones and zeros), absent when
    affine=False. Buffers: running_mean (zeros), running_var (ones), num_batches_tracked.
    """

    couples_batch = True           # training normalises each image by the whole batch's statistics
    _ndims: tuple[int, ...] = ()   # accepted x.ndim values, set by the subclasses
    _layout: str = ""              # shown in error messages

    # -- what the tools read (docs/adding-a-layer.md); NAME, EXAMPLE and example(): the subclasses ------
    FORMULAS = {"x": "dxhat = dy * gamma;  dx = inv_std / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))"
                     "  [BN-5]",
                "weight": "dgamma = sum(dy * xhat)  [BN-3]", "bias": "dbeta = sum(dy)  [BN-3]"}
    products = no_products  # per-channel sums: no matrix product

    def torch_kwargs(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum, "affine": self.affine}

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        self.weight = Parameter(np.ones(num_features)) if affine else None
        self.bias = Parameter(np.zeros(num_features)) if affine else None
        self.running_mean = Buffer(np.zeros(num_features))
        self.running_var = Buffer(np.ones(num_features))
        self.num_batches_tracked = Buffer(0, dtype=np.int64)
        self.cache: _BatchNormCache | None = None

    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            layout = self._layout.replace("C", str(self.num_features))
            raise ValueError(f"{type(self).__name__}: expected input of shape {layout}, got {x.shape}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check_input(x)
        rows = channel_rows(x)                                       # (M, C)
        if self.training:
            M = rows.shape[0]
            if M < 2:
                raise ValueError(f"{type(self).__name__}: training needs more than 1 value per channel, "
                                 f"got input of shape {x.shape}")
            mean, var = batchnorm_stats(rows)                        # (C,) each, var biased: / M
            # In place ([...] =): the buffers keep their dtype whatever the dtype of x.
            m = self.momentum
            self.running_mean.data[...] = (1 - m) * self.running_mean.data + m * mean            # (C,)
            self.running_var.data[...] = (1 - m) * self.running_var.data + m * var * M / (M - 1)  # (C,)
            self.num_batches_tracked.data += 1
        else:
            mean, var = (b.data.astype(np.float64) for b in (self.running_mean, self.running_var))  # (C,)
        inv_std = 1.0 / np.sqrt(var + self.eps)                      # (C,)
        gamma, beta = self._gamma_beta()                             # (C,) each
        y = batchnorm_forward(rows, mean, inv_std, gamma, beta)      # (M, C): gamma * xhat + beta
        self.cache = _BatchNormCache(rows, mean, inv_std, self.training, x.shape)
        return from_channel_rows(y, x.shape)                         # (same as x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        rows, mean, inv_std, batch_stats, shape = self._require_cache()
        gamma, _ = self._gamma_beta()
        dx, dgamma, dbeta = batchnorm_backward(channel_rows(dy), rows, mean, inv_std, gamma, batch_stats)
        if self.affine:
            self.weight.grad += dgamma                               # (C,)
            self.bias.grad += dbeta                                  # (C,)
        return from_channel_rows(dx, shape)                          # (same as x)

    def _gamma_beta(self) -> tuple[np.ndarray, np.ndarray]:
        """gamma and beta as float64 (C,); ones and zeros when affine=False."""
        if not self.affine:
            return np.ones(self.num_features), np.zeros(self.num_features)
        return self.weight.data.astype(np.float64), self.bias.data.astype(np.float64)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"

    def page_spec(self) -> dict:
        """The JSON object the explorer page runs for this layer (Module.page_spec): eval mode, the
        running statistics, as every command runs a model."""
        return {"type": "BatchNorm", "eps": float(self.eps), "running_mean": page_array(self.running_mean),
                "running_var": page_array(self.running_var), "weight": page_array(self.weight),
                "bias": page_array(self.bias)}


class BatchNorm1d(_BatchNorm):
    """Batch norm for (N, C) input (and (N, C, L), as torch allows). See _BatchNorm for the formulas."""

    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"
    NAME, TORCH_NAME = "batchnorm1d", "BatchNorm1d"
    EXAMPLE, EXAMPLE_HELP = {"in_features": 4}, "4 features on (4, 4)"

    @classmethod
    def example(cls, rng: np.random.Generator, shape: tuple[int, ...] | None = None,
                **given) -> tuple[BatchNorm1d, np.ndarray]:
        C = cls.example_settings(given, shape, in_features=1)["in_features"]
        return cls(C), rng.standard_normal(shape or (4, C))


class BatchNorm2d(_BatchNorm):
    """Batch norm for (N, C, H, W) input, statistics over N, H and W. See _BatchNorm for the formulas."""

    _ndims = (4,)
    _layout = "(N, C, H, W)"
    NAME, TORCH_NAME = "batchnorm2d", "BatchNorm2d"
    EXAMPLE, EXAMPLE_HELP = {"in_channels": 3}, "3 channels on (3, 3, 4, 4), on batch statistics"

    @classmethod
    def example(cls, rng: np.random.Generator, shape: tuple[int, ...] | None = None,
                **given) -> tuple[BatchNorm2d, np.ndarray]:
        C = cls.example_settings(given, shape, in_channels=1)["in_channels"]
        return cls(C), rng.standard_normal(shape or (3, C, 4, 4))
