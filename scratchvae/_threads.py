"""Keep the two thread pools of a training step from fighting over the cores.

A step alternates between NumPy's BLAS (the GEMMs, on OpenBLAS's threads) and the
Numba kernels (im2col, col2im, on Numba's threads). By default both pools spin for
a while after finishing, waiting for more work, so each steals the cores the other
needs next: on 2 cores this made a conv VAE step ~2x slower (docs/performance.md,
"Thread pools").

- OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when NumPy is first imported: after a GEMM
  its threads spin for 2**n clock ticks before they sleep. Its default, n = 28
  (~0.1 s here), spins through the Numba kernels that follow, and through the other
  library's turns in `benchmarks/bench.py --vs-torch` (PyTorch's MLP step took 2x longer). n = 4,
  which we used first, sleeps at once, so every GEMM pays to wake the threads: ~7% of
  an MLP step (a dozen GEMMs in ~5 ms). n = 20 (2**20 ticks, ~0.5 ms at 2.3 GHz) keeps
  them awake between the GEMMs of one step and asleep soon after it. Measured: MLP step
  5.78 -> 5.14 ms (medians of 8 alternating process pairs, faster in 7 of them), conv
  steps unchanged within the noise. Set here, before NumPy loads, it works for the
  command line and for any program that imports scratchvae first; otherwise OpenBLAS
  keeps its default.
- Numba runs its parallel loops on its own 'workqueue' pool, which sleeps when idle
  and, unlike the OpenMP layer, does not share an OpenMP runtime with other
  libraries in the process (PyTorch, in the benchmark).
Both are defaults: an environment variable the user set wins.
"""
import contextlib
import ctypes
import functools
import os
from typing import Iterator, NamedTuple

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")


# -- BLAS threads at run time (for data parallelism, see parallel.py) ------------------------------
# OpenBLAS reads OPENBLAS_NUM_THREADS only at load; changing it later takes its C API. NumPy's
# wheels bundle OpenBLAS under a prefixed name (scipy_openblas_set_num_threads64_), system
# builds export the plain one. Other BLAS libraries (MKL, Accelerate) are not handled: then
# blas_thread_control() is None and scratchvae does not run its own threads next to them.
_SET_GET_NAMES = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                  ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                  ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                  ("openblas_set_num_threads", "openblas_get_num_threads"))


class BlasThreads(NamedTuple):
    set: ctypes._CFuncPtr
    get: ctypes._CFuncPtr
    library: str


def loaded_blas_libraries() -> Iterator[tuple[str, ctypes.CDLL]]:
    """(path, opened library) of each shared library in this process with 'blas' in its
    name (Linux; elsewhere none), skipping any ctypes cannot open."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if ".so" in line}
    except OSError:  # not Linux
        return
    for path in sorted(p for p in paths if "blas" in p.lower()):
        try:
            yield path, ctypes.CDLL(path)
        except OSError:
            continue


@functools.cache
def blas_thread_control() -> BlasThreads | None:
    """The set/get-number-of-threads functions of the OpenBLAS NumPy uses, or None if not found."""
    import numpy  # noqa: F401  (loads the BLAS library, after the environment above is set)
    for path, lib in loaded_blas_libraries():
        for set_name, get_name in _SET_GET_NAMES:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                return BlasThreads(setter, getter, path)
    return None


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with BLAS on n threads, then restore the old number (needs blas_thread_control())."""
    control = blas_thread_control()
    if control is None:
        raise RuntimeError("cannot set the BLAS thread count: NumPy's OpenBLAS was not found in this process")
    old = control.get()
    control.set(n)
    try:
        yield
    finally:
        control.set(old)
