"""The products the layers call by name, for the BLAS calls NumPy's operators do not make.

add_matmul(out, a, b) is out += a @ b in one BLAS call. Every backward ADDS its gradients
into Parameter.grad, and a Linear layer's dweight = dy.T @ x is a whole (out, in) matrix;
``weight.grad += dy.T @ x`` writes the product into a new array and then reads it back to
add it. BLAS's gemm computes C = alpha * A @ B + beta * C, and with beta = 1 it adds the
product into C as it goes (NumPy's matmul always passes beta = 0), so add_matmul_blas calls
the gemm of the OpenBLAS that NumPy loaded, through ctypes (which lets go of the GIL during
the call, as np.dot does). Where that is not possible (another BLAS, an integer dtype, a
layout BLAS cannot read, out overlapping a or b) it is ``out += a @ b``, the same sum.
With SCRATCHVAE_KERNELS=reference (mode.py), add_matmul is that line, add_matmul_reference.

matmul_nogil and sum_axis0 are one NumPy call each, in both modes; their names say why
they are not ``@`` and ``.sum(axis=0)``.
"""
from __future__ import annotations

import ctypes
import functools
from typing import Callable

import numpy as np

from .._threads import loaded_blas_libraries
from .mode import KERNELS

# NumPy's wheels carry OpenBLAS with 64-bit integers under a prefixed name; system builds
# export the plain CBLAS names. Every integer is passed as a 64-bit value: on x86-64 and
# arm64 each argument has its own 8-byte register or stack slot, so a library that reads
# 32-bit ints reads the same (small) numbers. A self-test on first use decides anyway.
_GEMM_NAMES = {np.dtype(np.float32): ("scipy_cblas_sgemm64_", "scipy_cblas_sgemm", "cblas_sgemm64_", "cblas_sgemm"),
               np.dtype(np.float64): ("scipy_cblas_dgemm64_", "scipy_cblas_dgemm", "cblas_dgemm64_", "cblas_dgemm")}
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112   # CBLAS's enum values


def _bind(function: ctypes._CFuncPtr, scalar: type) -> Callable:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    function.argtypes = [i64, i64, i64, i64, i64, i64, scalar, ptr, i64, ptr, i64, scalar, ptr, i64]
    function.restype = None
    return function


@functools.cache
def _gemm(dtype: np.dtype) -> Callable | None:
    """The CBLAS gemm for dtype in the loaded OpenBLAS, if one is found and passes a self-test."""
    scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    for _, lib in loaded_blas_libraries():
        for name in _GEMM_NAMES[dtype]:
            if hasattr(lib, name):
                gemm = _bind(getattr(lib, name), scalar)
                if _passes_self_test(gemm, dtype):
                    return gemm
    return None


def _passes_self_test(gemm: Callable, dtype: np.dtype) -> bool:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)).astype(dtype)       # (3, 4) each
    out = rng.standard_normal((4, 4)).astype(dtype)            # (4, 4)
    expected = out + a.T @ b
    if not _call(gemm, out, a.T, b):
        return False
    return bool(np.allclose(out, expected, rtol=1e-5, atol=1e-5))


def _operand(m: np.ndarray) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of a 2-D array BLAS can read in place, else None.

    Row-major rows may be spaced wider than they are long (a column slice such as
    h[:, :L]); a transposed view of such an array is read with the transpose flag.
    """
    item = m.itemsize
    rows, cols = m.shape
    s0, s1 = m.strides
    if s1 == item and s0 % item == 0 and s0 // item >= max(cols, 1):
        return _NO_TRANS, s0 // item
    if s0 == item and s1 % item == 0 and s1 // item >= max(rows, 1):
        return _TRANS, s1 // item
    return None


def _call(gemm: Callable, out: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """out += a @ b through gemm, if the layouts allow it; returns whether it ran."""
    layout_a, layout_b = _operand(a), _operand(b)
    if layout_a is None or layout_b is None or not out.flags.c_contiguous:
        return False
    (m, k), n = a.shape, b.shape[1]
    gemm(_ROW_MAJOR, layout_a[0], layout_b[0], m, n, k, 1.0, a.ctypes.data, layout_a[1],
         b.ctypes.data, layout_b[1], 1.0, out.ctypes.data, max(n, 1))
    return True


def add_matmul_reference(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """out += a @ b."""
    out += a @ b


def add_matmul_blas(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """out += a @ b for 2-D arrays, without a temporary (gemm with beta = 1) where BLAS allows.

    a (M, K), b (K, N), out (M, N) C-contiguous, all of one float dtype; a and b may be
    transposed views (dy.T) or column slices. Anything else falls back to out += a @ b.
    """
    if a.ndim != 2 or b.ndim != 2 or out.shape != (a.shape[0], b.shape[1]) or a.shape[1] != b.shape[0]:
        raise ValueError(f"add_matmul: out {out.shape} += a {a.shape} @ b {b.shape} does not fit")
    dtype = out.dtype
    fast = (dtype in _GEMM_NAMES and a.dtype == dtype and b.dtype == dtype and min(out.shape) > 0
            and a.shape[1] > 0 and not np.may_share_memory(out, a) and not np.may_share_memory(out, b))
    gemm = _gemm(dtype) if fast else None
    if gemm is None or not _call(gemm, out, a, b):
        out += a @ b


add_matmul = add_matmul_blas if KERNELS == "numba" else add_matmul_reference  # the name the layers call


def matmul_nogil(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b as np.dot, which lets go of the GIL for every output size (``@`` keeps it for
    outputs of up to 500 elements, however long the product, so the data-parallel workers
    would take turns on a thin layer's dweight)."""
    return np.dot(a, b)


def sum_axis0(a2d: np.ndarray) -> np.ndarray:
    """a2d (M, C) -> (C,), a2d.sum(axis=0) as the product ones(M) @ a2d: BLAS reads a tall
    array in blocks where NumPy's axis-0 sum walks it row by row (np.dot: see matmul_nogil)."""
    return np.dot(np.ones(a2d.shape[0], dtype=a2d.dtype), a2d)      # (C,)
