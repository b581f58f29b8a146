"""Tell glibc's malloc to keep freed memory, for the benchmark's "malloc tuned" run.

By default glibc serves every allocation above a threshold (128 KB, raised
dynamically to at most 32 MB) with a fresh mmap and gives freed memory at the top
of the heap back to the OS. A training step that allocates its large arrays anew
each time then pays page faults and zero-filling on every step. PyTorch allocates
all its activations and gradients that way; its keras-io step took 73 ms as
installed and 46 ms with MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ set high
(docs/performance.md). mallopt() is the in-process form of those two
environment variables; it applies to the whole process, so in ``--malloc-tuned``
runs both libraries get it.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's documented maximum on 64-bit; larger than any array here
TRIM_THRESHOLD = 1 << 30


def tune_malloc() -> str:
    """Raise glibc's mmap and trim thresholds; returns a line saying what was done."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return "malloc tuning: not available here (needs glibc's mallopt); malloc left as installed"
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not ok:
        return "malloc tuning: mallopt refused the settings; malloc left as installed"
    return (f"malloc tuned for the whole process (both libraries): mmap threshold "
            f"{MMAP_THRESHOLD_MAX >> 20} MiB, trim threshold {TRIM_THRESHOLD >> 30} GiB")
