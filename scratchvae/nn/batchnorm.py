"""Batch normalisation over every axis except the channel axis (1)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .module import Buffer, Module, Parameter


class _BatchNormCache(NamedTuple):
    xhat: np.ndarray      # (same as x), the normalised input
    inv_std: np.ndarray   # (1, C, 1, ...), broadcastable against x
    batch_stats: bool     # True: mean/var came from this batch (train mode)


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

    gamma, beta are the Parameters ``weight`` and ``bias`` (ones and zeros), absent when
    affine=False. Buffers: running_mean (zeros), running_var (ones), num_batches_tracked.
    """

    couples_batch = True           # training normalises each image by the whole batch's statistics
    _ndims: tuple[int, ...] = ()   # accepted x.ndim values, set by the subclasses
    _layout: str = ""              # shown in error messages

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
        axes = (0,) + tuple(range(2, x.ndim))        # every axis but the channel axis
        shape = (1, -1) + (1,) * (x.ndim - 2)        # per-channel vector -> broadcastable
        if self.training:
            M = x.size // self.num_features
            if M < 2:
                raise ValueError(f"{type(self).__name__}: training needs more than 1 value per channel, "
                                 f"got input of shape {x.shape}")
            mean = x.mean(axis=axes)                                 # (C,)
            var = x.var(axis=axes)                                   # (C,) biased: / M
            # In place ([...] =): the buffers keep their dtype whatever the dtype of x.
            m = self.momentum
            self.running_mean.data[...] = (1 - m) * self.running_mean.data + m * mean            # (C,)
            self.running_var.data[...] = (1 - m) * self.running_var.data + m * var * M / (M - 1)  # (C,)
            self.num_batches_tracked.data += 1
        else:
            mean, var = self.running_mean.data, self.running_var.data  # (C,)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype).reshape(shape)  # (1, C, 1, ...)
        xhat = (x - mean.astype(x.dtype).reshape(shape)) * inv_std  # (same as x)
        self.cache = _BatchNormCache(xhat, inv_std, self.training)
        if not self.affine:
            return xhat
        return xhat * self.weight.data.reshape(shape) + self.bias.data.reshape(shape)  # (same as x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        xhat, inv_std, batch_stats = self._require_cache()
        axes = (0,) + tuple(range(2, dy.ndim))
        shape = inv_std.shape
        if self.affine:
            self.weight.grad += (dy * xhat).sum(axis=axes)            # (C,)
            self.bias.grad += dy.sum(axis=axes)                        # (C,)
            dxhat = dy * self.weight.data.reshape(shape)               # (same as x)
        else:
            dxhat = dy
        if not batch_stats:
            return dxhat * inv_std                                     # (same as x)
        M = dy.size // self.num_features
        sum_dxhat = dxhat.sum(axis=axes).reshape(shape)                # (1, C, 1, ...)
        sum_dxhat_xhat = (dxhat * xhat).sum(axis=axes).reshape(shape)  # (1, C, 1, ...)
        dx = inv_std / M * (M * dxhat - sum_dxhat - xhat * sum_dxhat_xhat)  # (same as x)
        return dx

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch norm for (N, C) input (and (N, C, L), as torch allows). See _BatchNorm for the formulas."""

    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm for (N, C, H, W) input, statistics over N, H and W. See _BatchNorm for the formulas."""

    _ndims = (4,)
    _layout = "(N, C, H, W)"
