"""PyTorch's default initialisation, and the library-wide random generator.

torch.nn.Linear / Conv2d / ConvTranspose2d all call
``kaiming_uniform_(weight, a=sqrt(5))`` and draw the bias from U(-b, b), which
both work out to the same bound:

    bound = 1 / sqrt(fan_in)
    fan_in = in_features                     (Linear, weight (out, in))
           = C_in * kH * kW                  (Conv2d, weight (C_out, C_in, kH, kW))
           = C_out * kH * kW                 (ConvTranspose2d, weight (C_in, C_out, kH, kW):
                                              torch reads fan_in from dim 1 of the weight)
"""
from __future__ import annotations

import math

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator that layers draw their initial weights from."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def uniform_fan_in(shape: tuple[int, ...], fan_in: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for weights and biases."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return (rng or _rng).uniform(-bound, bound, size=shape)
