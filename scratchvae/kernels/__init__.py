"""The kernels the layers call by name, each with a plain NumPy twin a debugger can step through.

    name                      SCRATCHVAE_KERNELS=numba (default)   SCRATCHVAE_KERNELS=reference
    im2col, col2im            im2col.py, *_numba                   reference.py, *_reference
    adam_update               fused.py, *_numba                    optim.py, Adam.update (fused=False)
    relu_backward(_inplace)   fused.py, *_numba                    fused.py, *_reference
    leaky_relu(_backward)     fused.py, *_numba                    fused.py, *_reference
    add_matmul                blas.py, add_matmul_blas             blas.py, add_matmul_reference
    batchnorm_stats, _forward, _backward   batchnorm.py, *_numba   batchnorm.py, *_reference
    bce_logits_sum, _grad     bce.py, *_numba                      bce.py, *_reference

(batchnorm.py and bce.py are imported by the layer and the loss that call them, not here.)
mode.py reads the variable once, when this package is first imported; each module binds its
public names at its end. matmul_nogil and sum_axis0 (blas.py) are NumPy calls in both modes.
reference.py also holds conv2d_naive and conv2d_backward_naive, the loops the tests hold
the conv layers to.
"""
from .mode import KERNELS
from .blas import add_matmul, matmul_nogil, sum_axis0
from .fused import adam_update, leaky_relu, leaky_relu_backward, relu_backward, relu_backward_inplace
from .im2col import col2im, im2col
from .reference import col2im_reference, conv2d_backward_naive, conv2d_naive, im2col_reference
from .shapes import Pair, channels_last, conv_output_size, conv_transpose_output_size, pair, pixel_rows

__all__ = [
    "KERNELS", "Pair", "adam_update", "add_matmul", "channels_last", "col2im", "col2im_reference",
    "conv2d_backward_naive", "conv2d_naive", "conv_output_size", "conv_transpose_output_size", "im2col",
    "im2col_reference", "leaky_relu", "leaky_relu_backward", "matmul_nogil", "pair", "pixel_rows",
    "relu_backward", "relu_backward_inplace", "sum_axis0",
]
