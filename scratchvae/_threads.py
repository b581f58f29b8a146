"""Keep the two thread pools of a training step from fighting over the cores.

A step alternates between NumPy's BLAS (the GEMMs, on OpenBLAS's threads) and the
Numba kernels (im2col, col2im, on Numba's threads). By default both pools spin for
a while after finishing, waiting for more work, so each steals the cores the other
needs next: on 2 cores this made a conv VAE step ~2x slower (measured: 122 ms
default vs 64 ms with spinning cut; see the closing notes of the speed issue).

- OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when NumPy is first imported: 4 (its
  minimum, 2**4 cycles) sends idle BLAS threads to sleep almost at once. Set here,
  before NumPy loads, it works for the command line and for any program that imports
  scratchvae first; otherwise OpenBLAS keeps its default.
- Numba runs its parallel loops on its own 'workqueue' pool, which sleeps when idle
  and, unlike the OpenMP layer, does not share an OpenMP runtime with other
  libraries in the process (PyTorch, in the benchmark).
Both are defaults: an environment variable the user set wins.
"""
import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
