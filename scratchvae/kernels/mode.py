"""Which implementation every kernel name stands for, read once from SCRATCHVAE_KERNELS.

    SCRATCHVAE_KERNELS=numba       the compiled kernels (the default)
    SCRATCHVAE_KERNELS=reference   their plain NumPy twins, to step through in a debugger

Both give the same numbers, up to rounding; the references are slower, and the
data-parallel workers share the GIL while they run. The variable is read when the
kernels package is first imported, so set it before the first ``import scratchvae``.
"""
import os

MODES = ("numba", "reference")

KERNELS = os.environ.get("SCRATCHVAE_KERNELS", "numba")
if KERNELS not in MODES:
    raise ValueError(f"SCRATCHVAE_KERNELS must be one of {', '.join(MODES)} (unset means numba), "
                     f"got {KERNELS!r}")
