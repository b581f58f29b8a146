"""Elementwise activations. Each caches only what its derivative needs."""
from __future__ import annotations

import numpy as np

from ..kernels import leaky_relu, leaky_relu_backward, relu_backward, relu_backward_inplace
from .module import Module, no_products


class ReLU(Module):
    """y = max(x, 0);   dx = dy * (y > 0)   [RELU-1]   (the kink at 0 gets slope 0, as in torch).

    y > 0 exactly where x > 0, so the cache is y itself: no mask to write in forward.
    backward runs as one compiled pass (kernels/fused.py, relu_backward).

    inplace=True (torch's argument): forward writes y over x, and backward writes dx over
    dy, so neither allocates (fresh arrays cost page faults and cache misses on top of the
    pass itself). Use it where nothing else reads x after forward, e.g. right after a
    Linear or conv layer (their backward needs their input, never their output); the
    model builders do. Where x or dy cannot be overwritten (read-only, or dy in another
    memory layout than y) it makes a new array.
    """

    # -- what the tools read (docs/adding-a-layer.md) ------------------------------------------
    NAME, TORCH_NAME = "relu", "ReLU"
    FORMULAS = {"x": "dx = dy * (y > 0)  [RELU-1]"}
    EXAMPLE_SHAPE, EXAMPLE_HELP = (3, 6), "on (3, 6)"
    products = no_products  # elementwise: no matrix product

    def torch_kwargs(self) -> dict:
        return {"inplace": self.inplace}

    def units_on(self) -> np.ndarray:
        return self._require_cache() > 0                        # y > 0 exactly where x > 0

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace
        self.cache: np.ndarray | None = None  # y

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = x if self.inplace and x.flags.writeable else None
        self.cache = np.maximum(x, 0, out=out, dtype=x.dtype)    # (same as x)
        return self.cache

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self._require_cache()
        if self.inplace and (dx := relu_backward_inplace(dy, y)) is not None:
            return dx                                            # dy itself, now dy * (y > 0)
        return relu_backward(dy, y)                              # (same as x): dy * (y > 0)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""

    def page_spec(self) -> dict:
        """The JSON object the explorer page runs for this layer (Module.page_spec)."""
        return {"type": "ReLU"}


class LeakyReLU(Module):
    """y = x if x > 0 else a * x   (a = negative_slope);   dx = dy if x > 0 else a * dy   [LRELU-1].

    For a >= 0, y > 0 exactly where x > 0, so the cache is y itself, as ReLU's; a negative
    slope flips the sign, and then the cache is (a copy of) x. Both passes run as one compiled
    loop each (kernels/fused.py, leaky_relu and leaky_relu_backward).

    inplace=True (torch's argument) writes y over x and dx over dy, as ReLU's does: use it where
    nothing else reads x after forward (right after a BatchNorm or a Linear or conv layer, none of
    whose backward reads its output; the faces model does). A negative slope never works in place.
    """

    # -- what the tools read (docs/adding-a-layer.md) ------------------------------------------
    NAME, TORCH_NAME = "leaky_relu", "LeakyReLU"
    FORMULAS = {"x": "dx = dy * (1 if x > 0 else slope)  [LRELU-1]"}
    EXAMPLE, EXAMPLE_SHAPE, EXAMPLE_HELP = {"negative_slope": 0.2}, (3, 6), "on (3, 6)"
    products = no_products  # elementwise: no matrix product

    def torch_kwargs(self) -> dict:
        return {"negative_slope": self.negative_slope, "inplace": self.inplace}

    def units_on(self) -> np.ndarray:
        return self._require_cache() > 0                        # y or x: > 0 exactly where x > 0

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        self.negative_slope = negative_slope
        self.inplace = inplace and negative_slope >= 0
        self.cache: np.ndarray | None = None  # y (a >= 0) or x (a < 0): > 0 exactly where x > 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        sign = None if self.negative_slope >= 0 else x.copy(order="K")
        y = leaky_relu(x, self.negative_slope, inplace=self.inplace)  # (same as x)
        self.cache = y if sign is None else sign
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        sign = self._require_cache()
        return leaky_relu_backward(dy, sign, self.negative_slope, inplace=self.inplace)  # (same as x)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")

    def page_spec(self) -> dict:
        """The JSON object the explorer page runs for this layer (Module.page_spec)."""
        return {"type": "LeakyReLU", "negative_slope": float(self.negative_slope)}


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed as 0.5 + 0.5 * tanh(x / 2) (the same function)   [SIG-1].

    tanh never overflows, so this is stable for any x, and it is one SIMD ufunc where
    the stable exp form, np.where(x >= 0, 1 / (1 + e), e / (1 + e)) with e = exp(-|x|),
    takes several passes and two branches.
    """
    y = np.multiply(x, 0.5, dtype=x.dtype)                       # (same as x)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x));   dx = dy * y * (1 - y)   [SIG-2]   (caches y, not x)."""

    # -- what the tools read (docs/adding-a-layer.md) ------------------------------------------
    NAME, TORCH_NAME = "sigmoid", "Sigmoid"
    FORMULAS = {"x": "dx = dy * y * (1 - y)  [SIG-2]"}
    EXAMPLE_SHAPE, EXAMPLE_HELP = (3, 6), "on (3, 6)"
    products = no_products  # elementwise: no matrix product

    def __init__(self) -> None:
        self.cache: np.ndarray | None = None  # y

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cache = sigmoid(x)
        return self.cache

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self._require_cache()
        return dy * y * (1 - y)

    def page_spec(self) -> dict:
        """The JSON object the explorer page runs for this layer (Module.page_spec)."""
        return {"type": "Sigmoid"}


class Tanh(Module):
    """y = tanh(x);   dx = dy * (1 - y**2)   [TANH-1]   (caches y, not x)."""

    # -- what the tools read (docs/adding-a-layer.md) ------------------------------------------
    NAME, TORCH_NAME = "tanh", "Tanh"
    FORMULAS = {"x": "dx = dy * (1 - y**2)  [TANH-1]"}
    EXAMPLE_SHAPE, EXAMPLE_HELP = (3, 6), "on (3, 6)"
    products = no_products  # elementwise: no matrix product

    def __init__(self) -> None:
        self.cache: np.ndarray | None = None  # y

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cache = np.tanh(x)
        return self.cache

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self._require_cache()
        return dy * (1 - y * y)
