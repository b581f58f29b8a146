"""Scratch arrays a layer reuses from one step to the next.

A conv layer's column matrix is megabytes (7 MB for the reference model's second
conv at batch 128). Allocating it fresh every step costs more than filling it: the
OS hands out new pages that must be faulted in and zeroed. Two kinds of reuse:

- Workspace: one array per name, kept by ONE layer, for an array that lives from
  its forward to its backward (Conv2d's cols, which dweight reads again).
- scratch(): one buffer per THREAD, shared by all layers, for an array that dies
  within the call that made it (a ConvTranspose2d's cols, every dcols). The next
  layer writes its column matrix into memory the previous layer has just touched,
  so it is still in cache; a buffer per layer was last touched a whole step ago.
  It also shrinks what a step touches, which matters once a step's arrays outgrow
  the cache.

Only arrays that never leave the layer live in either: what forward or backward
returns is always a fresh array (the GEMM or col2im allocates it), so a caller can
keep it as long as it likes; the tests check exactly that.
"""
from __future__ import annotations

import sys
import threading
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


_thread = threading.local()  # .buffer: this thread's scratch bytes


def scratch(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array in the calling thread's scratch buffer.

    Use it only for an array that is dead when the call that asked for it returns.
    Every array handed out keeps the buffer referenced, so while one is still alive
    (say, held by a traceback) the next request gets a new buffer instead of sharing
    memory with it: reuse is an optimisation, never a way to alias two arrays.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buffer = getattr(_thread, "buffer", None)
    # 3 references when nobody else holds it: _thread.buffer, the local name, getrefcount's argument
    if buffer is None or buffer.size < nbytes or sys.getrefcount(buffer) > 3:
        buffer = _thread.buffer = np.empty(nbytes, dtype=np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)
