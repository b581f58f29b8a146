"""Layers that only change an array's shape; backward undoes the reshape."""
from __future__ import annotations

import numpy as np

from .module import Module, no_products


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...);   dx = dy.reshape(x.shape)   [SHAPE-1]."""

    # -- what the tools read (docs/adding-a-layer.md) ------------------------------------------
    NAME, TORCH_NAME = "flatten", "Flatten"
    FORMULAS = {"x": "dx = dy.reshape(x.shape)  [SHAPE-1]"}
    EXAMPLE_SHAPE, EXAMPLE_HELP = (2, 3, 4, 5), "on (2, 3, 4, 5)"
    products = no_products  # a view: no matrix product

    def __init__(self) -> None:
        self.cache: tuple[int, ...] | None = None  # the input shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2:
            raise ValueError(f"Flatten: expected input of shape (N, ...), got {x.shape}")
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)                         # (N, prod(d))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self._require_cache())

    def page_spec(self) -> dict:
        """The JSON object the explorer page runs for this layer (Module.page_spec)."""
        return {"type": "Flatten"}


class Reshape(Module):
    """(N, prod(shape)) -> (N, *shape);   dx = dy.reshape(x.shape)   [SHAPE-1]. The batch axis is kept."""

    # -- what the tools read (docs/adding-a-layer.md) ------------------------------------------
    NAME, TORCH_NAME = "reshape", "Unflatten"
    FORMULAS = {"x": "dx = dy.reshape(x.shape)  [SHAPE-1]"}
    EXAMPLE, EXAMPLE_HELP = {"reshape_to": (2, 3)}, "(4, 6) to (4, 2, 3)"

    @classmethod
    def example(cls, rng: np.random.Generator, shape: tuple[int, ...] | None = None,
                **given) -> tuple[Reshape, np.ndarray]:
        to = cls.example_settings(given, shape)["reshape_to"]
        return cls(to), rng.standard_normal(shape or (4, int(np.prod(to))))
    products = no_products  # a view: no matrix product

    def torch_kwargs(self) -> dict:
        return {"dim": 1, "unflattened_size": self.shape}

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)
        self.cache: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        size = int(np.prod(self.shape))
        if x.ndim < 1 or x[0].size != size:
            raise ValueError(
                f"Reshape: expected input of shape (N, {size}) to reshape to (N, {self.shape}), got {x.shape}"
            )
        self.cache = x.shape
        return x.reshape((x.shape[0],) + self.shape)             # (N, *shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self._require_cache())

    def extra_repr(self) -> str:
        return f"shape={self.shape}"

    def page_spec(self) -> dict:
        """The JSON object the explorer page runs for this layer (Module.page_spec)."""
        return {"type": "Reshape", "shape": list(self.shape)}
