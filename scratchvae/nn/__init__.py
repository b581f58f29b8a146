"""Layers: each a class with forward(x) and backward(dout), one concept per file."""
from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .init import manual_seed
from .linear import Linear
from .module import Buffer, Module, Parameter, Sequential
from .shape import Flatten, Reshape

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "Buffer", "Conv2d", "ConvTranspose2d", "Flatten", "LeakyReLU", "Linear",
    "Module", "Parameter", "ReLU", "Reshape", "Sequential", "Sigmoid", "Tanh", "manual_seed",
]
