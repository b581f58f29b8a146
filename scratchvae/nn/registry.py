"""The layers the tools know, by name: ``scratchvae gradcheck --layer NAME`` lists them in this order.

Everything a tool needs to know about a layer, the layer's class declares itself (defaults
and meanings: nn/module.py, Module; the checklist: docs/adding-a-layer.md):

    NAME, EXAMPLE, example()      scratchvae gradcheck --layer NAME (commands/gradcheck.py)
    FORMULAS                      scratchvae tour, a line per gradient (tour.py)
    units_on()                    the gradient checks' kink handling (gradcheck.py)
    gains_from_workers            a worker per core for its models (parallel.default_workers)
    products()                    the benchmark's matrix products (benchmarks/gemms.py)
    TORCH_NAME, torch_kwargs()    its torch.nn twin (tests/torch_twin.py)
    page_spec()                   the browser explorer's decoder export (explore/export.py)

so a new layer is its own file, its derivation page, its tests and one line here.
"""
from __future__ import annotations

from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .linear import Linear
from .module import Module
from .shape import Flatten, Reshape

#: NAME -> layer class (a test registers a layer of its own with monkeypatch.setitem)
LAYERS: dict[str, type[Module]] = {layer.NAME: layer for layer in (
    Linear, Conv2d, ConvTranspose2d, BatchNorm1d, BatchNorm2d, ReLU, LeakyReLU, Sigmoid, Tanh, Flatten, Reshape)}
