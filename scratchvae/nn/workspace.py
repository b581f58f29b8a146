"""Scratch arrays a layer reuses from one step to the next.

A conv layer's column matrix is megabytes (7 MB for the reference model's second
conv at batch 128). Allocating it fresh every step costs more than filling it: the
OS hands out new pages that must be faulted in and zeroed. A Workspace keeps one
array per name and hands it back while the shape and dtype stay the same.

Only arrays that never leave the layer live here: what forward or backward returns
is always a fresh array (the GEMM or col2im allocates it), so a caller can
keep it as long as it likes; the tests check exactly that.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class Workspace:
    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised array of this shape and dtype, the same one as last time if it fits."""
        a = self._arrays.get(name)
        if a is None or a.shape != tuple(shape) or a.dtype != np.dtype(dtype):
            a = np.empty(shape, dtype=dtype)
            self._arrays[name] = a
        return a

    def clear(self) -> None:
        self._arrays.clear()
