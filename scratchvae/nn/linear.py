"""Linear (fully connected) layer."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..kernels import add_matmul
from .init import uniform_fan_in
from .module import Module, Parameter, Product, check_shape
from .page_arrays import page_array


class _LinearCache(NamedTuple):
    x: np.ndarray  # (N, in_features)


class Linear(Module):
    """y = x @ weight.T + bias   [LIN-1]   (derivation: docs/derivations/linear.md)

    shapes:   x (N, in_features), weight (out_features, in_features) as in torch,
              bias (out_features,), y (N, out_features)
    backward: dx      = dy @ weight            (N, in)      [LIN-2]
              dweight = dy.T @ x               (out, in)    [LIN-3]
              dbias   = dy.sum(axis=0)         (out,)       [LIN-4]
              backward_params: dweight and dbias only (a model's first layer needs no dx)
    init:     weight, bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features)) (PyTorch's default)
    """

    # -- what the tools read (docs/adding-a-layer.md) ------------------------------------------
    NAME, TORCH_NAME = "linear", "Linear"
    FORMULAS = {"x": "dx = dy @ W  [LIN-2]", "weight": "dW = dy.T @ x  [LIN-3]", "bias": "db = dy.sum(axis=0)  [LIN-4]"}
    EXAMPLE = {"in_features": 5, "out_features": 3, "bias": True}
    EXAMPLE_HELP = "5 -> 3 on (4, 5)"

    @classmethod
    def example(cls, rng: np.random.Generator, shape: tuple[int, ...] | None = None,
                **given) -> tuple[Linear, np.ndarray]:
        s = cls.example_settings(given, shape, in_features=-1)
        return cls(**s), rng.standard_normal(shape or (4, s["in_features"]))

    def products(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[Product]:
        P, K, M = in_shape[0], self.in_features, self.out_features   # P: images
        return [Product("forward", P, K, M, b_t=True),          # x @ weight.T
                Product("dweight", M, P, K, a_t=True),          # dy.T @ x
                Product("dx", P, M, K)]                         # dy @ weight

    def torch_kwargs(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None}

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: np.random.Generator | None = None) -> None:
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(uniform_fan_in((out_features, in_features), in_features, rng))
        self.bias = Parameter(uniform_fan_in((out_features,), in_features, rng)) if bias else None
        self.cache: _LinearCache | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_shape(self, x, (None, self.in_features))
        self.cache = _LinearCache(x)
        y = x @ self.weight.data.T                               # (N, out)
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.backward_params(dy)
        dx = dy @ self.weight.data                               # (N, in)
        return dx

    def backward_params(self, dy: np.ndarray) -> None:
        x = self._require_cache().x
        add_matmul(self.weight.grad, dy.T, x)                    # (out, in): weight.grad += dy.T @ x, no temporary
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=0)                     # (out,)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def page_spec(self) -> dict:
        """The JSON object the explorer page runs for this layer (Module.page_spec)."""
        return {"type": "Linear", "weight": page_array(self.weight), "bias": page_array(self.bias)}
