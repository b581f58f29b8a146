"""The decoder as data a web page can run: one JSON object per layer, weights as float32 base64.

    export_decoder(model) -> [{"type": "Linear", "weight": {...}, "bias": {...}}, {"type": "ReLU"}, ...]

Each layer spec names the NumPy layer it comes from and carries what that layer's forward()
reads: settings as JSON numbers, arrays as {"shape": [...], "b64": ...}, the array's float32
bytes in little-endian order (the order of every browser's typed arrays on x86 and ARM) and C
order, exactly as ``np.ndarray.tobytes`` writes them. decoder.js runs the list in order.

decode_mean (models/vae.py) is the image the page shows: the decoder's output, then its sigmoid
when the loss takes logits (bce). That sigmoid is appended as one more layer, so the page runs
exactly the function ``model.decode_mean`` computes.

A BatchNorm exports its running statistics: the page decodes in eval mode, as every command
does (checkpoint.load_model puts the model in eval mode). Layers the JavaScript does not
implement are refused with one line naming them (ExportError, a ValueError).
"""
from __future__ import annotations

import base64

import numpy as np

from ..nn import BatchNorm1d, BatchNorm2d, ConvTranspose2d, LeakyReLU, Linear, ReLU, Reshape, Sigmoid
from ..nn.module import Module, Sequential

SUPPORTED = ("Linear", "ReLU", "LeakyReLU", "Sigmoid", "Reshape", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d")


class ExportError(ValueError):
    """A model the page cannot run (one-line message)."""


def float32_b64(a: np.ndarray) -> dict:
    """{"shape", "b64"}: the array as little-endian float32 bytes, C order, base64 text."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def uint8_b64(a: np.ndarray) -> dict:
    """{"shape", "b64"}: a uint8 array (images) as base64 text."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    return {"shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def _optional(p) -> dict | None:
    return None if p is None else float32_b64(p.data)


def layer_spec(layer: Module) -> dict:
    """One layer as the JSON object decoder.js runs (module docstring); ExportError for others."""
    if isinstance(layer, Linear):
        return {"type": "Linear", "weight": float32_b64(layer.weight.data), "bias": _optional(layer.bias)}
    if isinstance(layer, ReLU):
        return {"type": "ReLU"}
    if isinstance(layer, LeakyReLU):
        return {"type": "LeakyReLU", "negative_slope": float(layer.negative_slope)}
    if isinstance(layer, Sigmoid):
        return {"type": "Sigmoid"}
    if isinstance(layer, Reshape):
        return {"type": "Reshape", "shape": list(layer.shape)}
    if isinstance(layer, ConvTranspose2d):
        return {"type": "ConvTranspose2d", "stride": list(layer.stride), "padding": list(layer.padding),
                "output_padding": list(layer.output_padding), "dilation": list(layer.dilation),
                "weight": float32_b64(layer.weight.data), "bias": _optional(layer.bias)}
    if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
        return {"type": "BatchNorm", "eps": float(layer.eps),
                "running_mean": float32_b64(layer.running_mean.data),
                "running_var": float32_b64(layer.running_var.data),
                "weight": _optional(layer.weight), "bias": _optional(layer.bias)}
    raise ExportError(f"the page cannot run a {type(layer).__name__} layer in the decoder "
                      f"(it runs {', '.join(SUPPORTED)})")


def export_decoder(model: Module) -> list[dict]:
    """The layers of ``model.decode_mean`` (module docstring) as JSON-ready specs."""
    decoder = getattr(model, "decoder", None)
    if decoder is None:
        raise ExportError(f"a {type(model).__name__} has no decoder to export")
    layers = list(decoder) if isinstance(decoder, Sequential) else [decoder]
    specs = [layer_spec(layer) for layer in layers]
    if model.recon_loss.takes_logits:
        specs.append({"type": "Sigmoid"})                       # decode_mean: pixels = sigmoid(logits)
    return specs
