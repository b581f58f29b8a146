"""Parameter, Buffer, Module and Sequential: the whole module system.

A Module finds its parameters by walking its own attributes, the way
``torch.nn.Module`` does, so a new layer needs no registration:

    self.weight = Parameter(...)     -> found as "weight"
    self.encoder = Sequential(...)   -> its parameters found as "encoder.0.weight", ...

Names follow PyTorch's dotted convention, so ``state_dict()`` keys line up one to
one with the keys of the equivalent ``torch.nn`` model.

The contract every layer keeps:
    forward(x)     -> out, and stores on the layer what backward needs (``self.cache``)
    backward(dout) -> dx, and ADDS (+=) into each ``Parameter.grad``
Accumulating (not overwriting) is what lets a parameter used twice, or two
backward calls before one optimizer step, get the sum of its gradients.

A layer also declares what the tools need to know about it (its gradient formulas, a
tiny example, its matrix products, its torch twin, ...): the defaults below say what
each means, docs/adding-a-layer.md lists them, and nn/registry.py names the layers.

``backward_params(dout)`` is backward without dx, for the first layer of a model:
its input is the data, which needs no gradient (PyTorch skips it the same way,
since the input tensor has requires_grad=False). By default it runs backward and
drops dx; layers whose dx costs a matrix product override it to skip that product.
"""
from __future__ import annotations

from typing import Any, Iterator, NamedTuple

import numpy as np

DEFAULT_DTYPE = np.float32


class Parameter:
    """A trainable array and its gradient: ``data`` and ``grad`` have the same shape."""

    def __init__(self, data: np.ndarray, dtype: Any = None) -> None:
        dtype = DEFAULT_DTYPE if dtype is None else dtype
        self.data = np.ascontiguousarray(data, dtype=dtype)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def zero_grad(self) -> None:
        self.grad[...] = 0.0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Buffer:
    """State that is saved with the model but not trained (e.g. BatchNorm's running mean)."""

    def __init__(self, data: np.ndarray, dtype: Any = None) -> None:
        self.data = np.array(data, dtype=DEFAULT_DTYPE if dtype is None else dtype)

    def __repr__(self) -> str:
        return f"Buffer(shape={self.data.shape}, dtype={self.data.dtype})"


class Product(NamedTuple):
    """One matrix product a layer runs: op(A) @ op(B) with op(A) (m, k) and op(B) (k, n).

    a_t: A is stored (k, m), C-contiguous, and read as A.T (a view: BLAS reads it
    transposed, no copy); b_t likewise for B. role: "forward", "dweight" or "dx".
    """

    role: str
    m: int
    k: int
    n: int
    a_t: bool = False
    b_t: bool = False


def no_products(layer: "Module", in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[Product]:
    """``products = no_products``: the declaration of a layer that runs no matrix product."""
    return []


class Module:
    """Base class of every layer and model.

    Subclasses set Parameters, Buffers and sub-Modules as attributes and write
    ``forward`` and ``backward``; everything else here is bookkeeping.
    """

    training: bool = True
    #: True for a layer whose output for one image depends on the other images of the batch
    #: (BatchNorm's batch statistics): such a model cannot split a batch over workers
    #: (parallel.py), since each share would be normalised by its own statistics.
    couples_batch: bool = False
    #: True for a layer whose model trains faster on a worker per core (parallel.default_workers)
    gains_from_workers: bool = False

    # -- what the tools read about a layer (docs/adding-a-layer.md); each layer sets its own -------
    #: its name in ``scratchvae gradcheck --layer`` (None: not one of nn/registry.py's layers)
    NAME: str | None = None
    #: "x" and each parameter's name -> the formula of its gradient, with derivation ids (``scratchvae tour``)
    FORMULAS: dict[str, str] = {}
    #: the settings ``gradcheck --layer NAME`` takes (named as its options), each with its tiny default
    EXAMPLE: dict[str, Any] = {}
    EXAMPLE_SHAPE: tuple[int, ...] = ()  # example()'s input shape, for a layer whose settings do not size it
    EXAMPLE_HELP: str = ""               # the example in words, for ``gradcheck --help``
    #: its twin is torch.nn.<TORCH_NAME>(**self.torch_kwargs()) (tests/torch_twin.py; None: it has none)
    TORCH_NAME: str | None = None

    @classmethod
    def example(cls, rng: np.random.Generator, shape: tuple[int, ...] | None = None,
                **given: Any) -> tuple["Module", np.ndarray]:
        """A tiny layer and a random input for a gradient check: EXAMPLE's settings with the given
        ones over them, on an input of ``shape`` (default: EXAMPLE_SHAPE). A layer whose settings
        size its input overrides this (Linear's reads in_features off the shape)."""
        return cls(**cls.example_settings(given, shape)), rng.standard_normal(shape or cls.EXAMPLE_SHAPE)

    @classmethod
    def example_settings(cls, given: dict[str, Any], shape: tuple[int, ...] | None,
                         **sizes: int) -> dict[str, Any]:
        """EXAMPLE's settings with the given ones over them; each setting in ``sizes`` (name=axis)
        that was not given is read off a given input shape (in_channels=1: its axis 1)."""
        settings = {**cls.EXAMPLE, **given}
        if shape is not None and len(shape) >= 2:
            settings.update((key, shape[axis]) for key, axis in sizes.items() if key not in given)
        return settings

    def products(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[Product] | None:
        """The matrix products of forward and backward on an input of in_shape ([] for none);
        None: not declared (benchmarks/gemms.py refuses to count such a layer)."""
        return None

    def torch_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the torch.nn.<TORCH_NAME> twin."""
        return {}

    def units_on(self) -> np.ndarray | None:
        """For a layer with a kink at x = 0 (ReLU): which units had x > 0 in the last forward,
        so a gradient check can skip a step across the kink; None for a smooth layer."""
        return None

    # -- the two methods a layer writes -------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def backward_params(self, dout: np.ndarray) -> None:
        """Add into each Parameter.grad what backward would, without returning dx."""
        self.backward(dout)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- walking the attribute tree ---------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """Sub-modules held as attributes, or in a list/tuple attribute (named "attr.i")."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def _named(self, kind: type, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for name, value in vars(self).items():
            if isinstance(value, kind):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child._named(kind, prefix + name + ".")

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs, e.g. ("encoder.0.weight", p), as in PyTorch."""
        return self._named(Parameter)

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Buffer]]:
        return self._named(Buffer)

    def modules(self) -> Iterator["Module"]:
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by PyTorch-style name (arrays are copies)."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: b.data.copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into this model; names and shapes must match exactly."""
        own = dict(self.named_parameters())
        own.update(self.named_buffers())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
        for name, holder in own.items():
            value = np.asarray(state[name])
            if value.shape != holder.data.shape:
                raise ValueError(
                    f"state_dict['{name}'] has shape {value.shape}, "
                    f"the model expects {holder.data.shape}"
                )
            holder.data[...] = value

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def to(self, dtype: Any) -> "Module":
        """Cast every parameter, gradient and buffer (float64 is for gradient checks)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = p.grad.astype(dtype)
        for _, b in self.named_buffers():
            if np.issubdtype(b.data.dtype, np.floating):
                b.data = b.data.astype(dtype)
        for m in self.modules():
            m._cast_hook(dtype)
        return self

    def _cast_hook(self, dtype: Any) -> None:
        """Called by ``to``: layers that keep dtype-specific buffers (the conv workspaces) drop them."""

    @property
    def dtype(self) -> np.dtype:
        params = self.parameters()
        return params[0].data.dtype if params else np.dtype(DEFAULT_DTYPE)

    def num_parameters(self) -> int:
        return int(sum(p.data.size for p in self.parameters()))

    # -- helpers for layers -------------------------------------------------------------------
    def _require_cache(self) -> Any:
        cache = getattr(self, "cache", None)
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return cache

    def extra_repr(self) -> str:
        return ""

    def page_spec(self) -> dict | None:
        """The JSON object the explorer page runs for this layer (explore/layers.js), or None: the
        page cannot run it (explore/export.py refuses it, naming it)."""
        return None

    def __repr__(self) -> str:
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return head + "\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Layers applied in order; backward visits them in reverse.

    forward:  out = layer_k(...layer_1(layer_0(x)))
    backward: dx  = layer_0.backward(...layer_k.backward(dout))   (chain rule)
    Children are named "0", "1", ... as in ``torch.nn.Sequential``.
    """

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def backward_params(self, dout: np.ndarray) -> None:
        """Parameter gradients only: the layers in front of the first one with parameters
        (e.g. a Flatten) need no backward at all, and that first one no dx."""
        first = self.first_with_parameters()
        for layer in reversed(self.layers[first + 1:]):
            dout = layer.backward(dout)
        if first < len(self.layers):
            self.layers[first].backward_params(dout)

    def first_with_parameters(self) -> int:
        """Index of the first layer that has parameters (len(self) if none has)."""
        return next((i for i, layer in enumerate(self.layers) if layer.parameters()), len(self.layers))

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)


def batch_coupling(module: Module) -> str | None:
    """The layers of module whose output for one image depends on the others of its batch
    (couples_batch: BatchNorm), named; None when it has none."""
    coupled = sorted({type(m).__name__ for m in module.modules() if m.couples_batch})
    return ", ".join(coupled) or None


def per_image_scale(dloss: float | np.ndarray, n: int, dtype: Any = None) -> float | np.ndarray:
    """The factor each image's gradient gets from the upstream gradient of a batch-mean loss:
    dloss / n for a float (d (dloss * mean_n l_n) / d l_n), or dloss[:, None] for an (n,) array of
    per-image upstream gradients (d (sum_n dloss_n l_n) / d l_n), shaped to scale (n, D) rows
    (in ``dtype``, so float64 weights do not promote a float32 model's gradients)."""
    if np.ndim(dloss) == 0:
        return float(dloss) / n
    dloss = np.asarray(dloss)
    if dloss.shape != (n,):
        raise ValueError(f"per-image dloss must have shape ({n},), got {dloss.shape}")
    return dloss[:, None].astype(dtype or dloss.dtype, copy=False)  # (n, 1)


def check_shape(layer: Module, x: np.ndarray, expected: tuple, what: str = "input") -> None:
    """Raise a ValueError naming the layer, the expected and the actual shape.

    ``expected`` holds ints, or None for "any size" (e.g. the batch axis).
    """
    ok = x.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, x.shape))
    if not ok:
        want = "(" + ", ".join("N" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{type(layer).__name__}: expected {what} of shape {want}, got {x.shape}")
