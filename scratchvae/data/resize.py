"""Resizing image batches to a square size in NumPy: a center crop, then one linear map per axis.

Resampling an axis of length n to length m is a matrix W (m, n) applied along that axis, so a
whole batch (N, C, H, W) is resized by ``Wh @ x @ Ww.T``. Two choices of W:

* shrinking uses *area* weights: output pixel i covers the input interval [i n/m, (i+1) n/m)
  and averages the input pixels it overlaps, each weighted by the overlap. Every input pixel
  counts, so thin strokes fade instead of vanishing (what plain subsampling would do).
* growing uses *bilinear* weights: output pixel i sits at input coordinate (i + 0.5) n/m - 0.5
  and mixes its two nearest input pixels.

Each row of W is non-negative and sums to 1, so every output is a convex combination of inputs:
images in [0, 1] stay in [0, 1].
"""
from __future__ import annotations

import numpy as np


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) box-filter weights for shrinking: overlap of output and input pixel footprints."""
    edges = np.arange(n_out + 1) * (n_in / n_out)        # output pixel i spans [edges[i], edges[i + 1])
    lo, hi = edges[:-1, None], edges[1:, None]            # (n_out, 1)
    j = np.arange(n_in)[None, :]                          # input pixel j spans [j, j + 1)
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights for growing, pixel centres aligned, edges clamped."""
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    left = np.floor(pos).astype(int)
    right = np.minimum(left + 1, n_in - 1)
    frac = pos - left
    w = np.zeros((n_out, n_in))
    np.add.at(w, (np.arange(n_out), left), 1.0 - frac)
    np.add.at(w, (np.arange(n_out), right), frac)        # add.at: left == right at the last pixel
    return w


def axis_weights(n_in: int, n_out: int) -> np.ndarray:
    if n_out == n_in:
        return np.eye(n_in)
    return area_weights(n_in, n_out) if n_out < n_in else bilinear_weights(n_in, n_out)


def center_crop_square(x: np.ndarray) -> np.ndarray:
    """The largest centred square of each image in a batch (..., H, W): resizing a non-square
    image straight to a square would stretch it, so the longer side is trimmed instead."""
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return x[..., top:top + side, left:left + side]


def resize_square(x: np.ndarray, size: int) -> np.ndarray:
    """Images (N, C, H, W) (or (..., H, W)) as float32 (..., size, size), center-cropped first."""
    if size < 1:
        raise ValueError(f"image size must be at least 1, got {size}")
    x = center_crop_square(x)
    side = x.shape[-1]
    if side == size:
        return x.astype(np.float32, copy=False)
    w = axis_weights(side, size).astype(np.float32)      # the same map serves rows and columns
    out = w @ x.astype(np.float32, copy=False) @ w.T     # (size, side) @ (..., side, side) @ (side, size)
    return np.clip(out, 0.0, 1.0, out=out)               # rounding can step a hair outside [0, 1]
