"""A layer's arrays in the form the explorer page reads them (each layer's ``page_spec``;
scratchvae/explore/, docs/explorer.md).

    page_array(a) -> {"shape": [...], "b64": "..."}: the array's float32 bytes, little-endian (the
                     order of every browser's typed arrays on x86 and ARM) and C order, exactly as
                     ``np.ndarray.tobytes`` writes them, as base64 text
"""
from __future__ import annotations

import base64

import numpy as np


def page_array(a: np.ndarray | None) -> dict | None:
    """{"shape", "b64"} of a float array, a Parameter or a Buffer (its data); None for None (no bias)."""
    if a is None:
        return None
    a = np.ascontiguousarray(getattr(a, "data", a), dtype="<f4")
    return {"shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}
