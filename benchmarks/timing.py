"""Measuring: medians of repeated timings, turns between libraries, the GEMM peak."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    return float(np.median([_seconds(fn) for _ in range(repeats)]) * 1e3)


PAUSE_S = 0.05  # idle time before each turn of alternating_ms


def alternating_ms(fns: list[Callable[[], object]], repeats: int, warmup: int = 2, block: int = 5,
                   pause: float = PAUSE_S) -> list[float]:
    """Median ms per call of each fn; the fns take turns, ``block`` calls at a time.

    Within a block the calls run back to back, as the steps of a training loop do, so
    each library is timed in its steady state. Before every block we sleep ``pause``
    seconds: a thread pool keeps spinning for a while after its work (PyTorch's
    OpenMP threads burn ~7 ms of CPU after each call, measured), and that spinning
    must not steal the cores of the library that runs next. Then one untimed call
    wakes the threads and refills the caches, and ``block`` timed calls follow.
    block=1 times single calls after an idle pause instead, which charges every
    call the wake-up of sleeping threads (measured here, one process: scratchvae's
    MLP step 5.6 and 6.2 ms in blocks of 5, 8.2 and 17.8 ms as single calls).
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    while len(times[0]) < repeats:
        n = min(block, repeats - len(times[0]))
        for fn, bucket in zip(fns, times):
            time.sleep(pause)
            fn()
            bucket.extend(_seconds(fn) for _ in range(n))
    return [float(np.median(t) * 1e3) for t in times]


def minor_faults_per_call(fn: Callable[[], object], calls: int = 5) -> float | None:
    """Minor page faults per call of fn, in all threads of this process (None where getrusage
    is missing). Each is a page the OS had to map and zero because malloc handed out memory
    fresh from the OS instead of reusing what the process had freed (see malloc.py)."""
    try:
        import resource
    except ImportError:  # not Unix
        return None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


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

