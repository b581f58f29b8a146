"""Measuring: medians of repeated timings, the GEMM peak, and GEMM FLOP counts per layer."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .. import nn as snn


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    return float(np.median([_seconds(fn) for _ in range(repeats)]) * 1e3)


def alternating_ms(fns: list[Callable[[], object]], repeats: int, warmup: int = 2,
                   pause: float = 0.02) -> list[float]:
    """Median ms of each fn, timed in turn within every repeat so both see the same machine load.

    Before each timed call we sleep ``pause`` seconds: a thread pool keeps spinning for a
    while after its work (PyTorch's OpenMP threads do), and without the pause those
    spinning threads would steal the cores of whichever library runs next (measured:
    scratchvae's MLP step 6.2 ms alone, 13.1 ms right after a PyTorch step).
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            time.sleep(pause)
            bucket.append(_seconds(fn))
    return [float(np.median(t) * 1e3) for t in times]


def gemm_peak_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Best float32 GEMM rate NumPy's BLAS reaches here on a square product (GFLOP/s)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(_seconds(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def layer_gemm_flops(layer: snn.Module, in_shape: tuple, out_shape: tuple) -> tuple[int, int]:
    """(forward, backward) multiply-add FLOPs of the matrix products of one layer.

    Forward is one GEMM; backward two of the same size (d-weight and d-input). A
    model's first layer skips d-input in training (backward_params; bench's _model_flops).
    """
    if isinstance(layer, snn.Linear):
        f = 2 * in_shape[0] * layer.in_features * layer.out_features
    elif isinstance(layer, snn.Conv2d):
        kH, kW = layer.kernel_size
        f = 2 * int(np.prod(out_shape)) * layer.in_channels * kH * kW
    elif isinstance(layer, snn.ConvTranspose2d):
        kH, kW = layer.kernel_size
        f = 2 * int(np.prod(in_shape)) * layer.out_channels * kH * kW
    else:
        return 0, 0
    return f, 2 * f


def trace_layers(seq: snn.Sequential, x: np.ndarray) -> list[tuple[str, snn.Module, tuple, tuple]]:
    """(name, layer, input shape, output shape) for every layer of a Sequential, running it once."""
    rows = []
    for i, layer in enumerate(seq):
        out = layer.forward(x)
        rows.append((str(i), layer, x.shape, out.shape))
        x = out
    return rows
