"""Compiled (Numba) kernels, the plain NumPy references they are tested against, and the
accumulating BLAS product (blas.py)."""
from .blas import add_matmul
from .im2col import (channels_last, col2im, conv_output_size, conv_transpose_output_size, im2col, pair,
                     pixel_rows)
from .reference import col2im_reference, conv2d_naive, im2col_reference

__all__ = [
    "add_matmul", "channels_last", "col2im", "col2im_reference", "conv2d_naive", "conv_output_size",
    "conv_transpose_output_size", "im2col", "im2col_reference", "pair", "pixel_rows",
]
