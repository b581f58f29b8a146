"""The Numba im2col/col2im kernels against the plain NumPy references, and the algebra of both.

The kernels are named explicitly (im2col_numba, im2col_reference), so these tests check
the same functions whatever SCRATCHVAE_KERNELS says.
"""
import importlib

import numpy as np
import pytest

from scratchvae.kernels import (channels_last, col2im_reference, conv_output_size, conv_transpose_output_size,
                                im2col_reference, pair, pixel_rows)
from scratchvae.kernels.im2col import col2im_numba, im2col_numba
from scratchvae.kernels.shapes import ConvGeometry, conv_geometry

# (N, C, H, W), kernel_size, stride, padding, dilation
CONFIGS = [
    ((2, 3, 5, 5), (3, 3), (1, 1), (0, 0), (1, 1)),
    ((2, 3, 6, 6), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((1, 1, 7, 7), (3, 3), (3, 3), (2, 2), (1, 1)),   # batch 1, one channel, stride 3, padding 2
    ((2, 3, 7, 7), (3, 3), (1, 1), (2, 2), (2, 2)),   # dilation 2
    ((2, 1, 6, 7), (2, 3), (2, 1), (1, 0), (1, 2)),   # everything non-square
    ((1, 3, 5, 4), (1, 2), (3, 2), (2, 1), (2, 1)),   # padding wider than the kernel reach
    ((2, 2, 4, 4), (4, 4), (1, 1), (0, 0), (1, 1)),   # kernel covers the whole input: 1x1 output
    ((2, 3, 3, 3), (1, 1), (1, 1), (0, 0), (1, 1)),   # 1x1 kernel: im2col is a reshape
    ((2, 2, 8, 5), (3, 2), (3, 2), (0, 2), (2, 1)),   # stride 3 leaves rows unused at the bottom
    ((3, 1, 8, 8), (3, 3), (1, 1), (1, 1), (1, 1)),   # one channel, 'same' padding (a decoder's last layer)
    ((2, 1, 7, 6), (3, 3), (2, 2), (1, 1), (1, 1)),   # one channel, stride 2 (an encoder's first layer)
    ((1, 1, 5, 4), (1, 2), (3, 2), (2, 1), (2, 1)),   # one channel, padding wider than the kernel reach
]
IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}" for c in CONFIGS]
DTYPES = [np.float32, np.float64]
# The package re-exports the function im2col, which hides the module of the same name.
im2col_module = importlib.import_module("scratchvae.kernels.im2col")
# (im2col, col2im) pairs: every algebraic property must hold for both
IMPLEMENTATIONS = pytest.mark.parametrize("im2col, col2im", [(im2col_numba, col2im_numba),
                                                             (im2col_reference, col2im_reference)],
                                          ids=["numba", "reference"])


@pytest.fixture(params=["serial", "parallel"])
def driver(request, monkeypatch):
    """Run a test through the one-thread driver, then through the prange driver."""
    monkeypatch.setattr(im2col_module, "PARALLEL_MIN_SIZE", 0 if request.param == "parallel" else 1 << 62)
    return request.param


def _out_hw(shape, k, s, p, d):
    return conv_output_size(shape[2], k[0], s[0], p[0], d[0]), conv_output_size(shape[3], k[1], s[1], p[1], d[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, s, p, d", CONFIGS, ids=IDS)
def test_im2col_matches_reference(shape, k, s, p, d, dtype, driver):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    cols = im2col_numba(x, k, s, p, d)
    H_out, W_out = _out_hw(shape, k, s, p, d)
    assert cols.dtype == dtype
    tasks = shape[0] * H_out  # one task per row of windows
    assert im2col_module._use_parallel(tasks, cols) == (driver == "parallel" and tasks > 1)
    assert cols.shape == (shape[0] * H_out * W_out, k[0] * k[1] * shape[1])
    np.testing.assert_array_equal(cols, im2col_reference(x, k, s, p, d))  # pure copies: exact


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k, s, p, d", CONFIGS, ids=IDS)
def test_col2im_matches_reference(shape, k, s, p, d, dtype, driver):
    H_out, W_out = _out_hw(shape, k, s, p, d)
    cols_shape = (shape[0] * H_out * W_out, k[0] * k[1] * shape[1])
    cols = np.random.default_rng(1).standard_normal(cols_shape).astype(dtype)
    x = col2im_numba(cols, shape, k, s, p, d)
    assert x.dtype == dtype and x.shape == shape
    assert x.transpose(0, 2, 3, 1).flags.c_contiguous  # channels-last memory
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(x, col2im_reference(cols, shape, k, s, p, d), rtol=tol, atol=tol)
    bias = np.arange(shape[1], dtype=dtype) - 1.5
    np.testing.assert_allclose(col2im_numba(cols, shape, k, s, p, d, bias=bias),
                               x + bias[:, None, None], rtol=tol, atol=tol)
    np.testing.assert_allclose(col2im_reference(cols, shape, k, s, p, d, bias=bias),
                               x + bias[:, None, None], rtol=tol, atol=tol)


@IMPLEMENTATIONS
@pytest.mark.parametrize("shape, k, s, p, d", CONFIGS, ids=IDS)
def test_col2im_is_the_adjoint_of_im2col(shape, k, s, p, d, im2col, col2im):
    """<im2col(x), c> == <x, col2im(c)> for all x, c: the definition of the transpose."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    cols = im2col(x, k, s, p, d)
    c = rng.standard_normal(cols.shape)
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, col2im(c, shape, k, s, p, d)), rel=1e-12, abs=1e-12)


@IMPLEMENTATIONS
def test_col2im_counts_overlapping_windows(im2col, col2im):
    # 1x5 input, kernel 3, stride 1: pixels are covered by 1, 2, 3, 2, 1 windows.
    ones = np.ones((1, 1, 1, 5))
    counts = col2im(im2col(ones, (1, 3), (1, 1), (0, 0), (1, 1)), ones.shape, (1, 3), (1, 1), (0, 0), (1, 1))
    np.testing.assert_array_equal(counts.ravel(), [1, 2, 3, 2, 1])


def test_out_buffer_is_filled_and_reused(driver):
    rng = np.random.default_rng(3)
    shape, args = (2, 3, 6, 6), ((3, 3), (2, 2), (1, 1), (1, 1))
    x = rng.standard_normal(shape)
    H_out, W_out = _out_hw(shape, *args)
    buf = np.full((2 * H_out * W_out, 27), np.nan)
    cols = im2col_numba(x, *args, out=buf)
    assert cols is buf
    np.testing.assert_array_equal(cols, im2col_reference(x, *args))  # padding entries were written too
    with pytest.raises(ValueError, match="out must be"):
        im2col_numba(x, *args, out=np.empty((2, 27)))
    with pytest.raises(ValueError, match="out must be"):
        im2col_numba(x, *args, out=np.empty(buf.shape, dtype=np.float32))
    buf[...] = np.nan
    assert im2col_reference(x, *args, out=buf) is buf                   # the reference keeps that promise too
    np.testing.assert_array_equal(buf, cols)


@IMPLEMENTATIONS
def test_col2im_returns_a_new_array_every_call(driver, im2col, col2im):
    shape, args = (2, 3, 6, 6), ((3, 3), (2, 2), (1, 1), (1, 1))
    cols = np.random.default_rng(4).standard_normal((2 * 9, 27))
    first = col2im(cols, shape, *args)
    kept = first.copy()
    second = col2im(2 * cols, shape, *args)
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, kept)


def test_channels_last_and_pixel_rows():
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5))         # C-order (NCHW) memory
    cl = channels_last(x)
    assert cl.shape == x.shape and not np.shares_memory(cl, x)
    np.testing.assert_array_equal(cl, x)                               # same values, other strides
    assert channels_last(cl) is not cl and np.shares_memory(channels_last(cl), cl)  # already so: no copy
    rows = pixel_rows(cl)
    assert rows.shape == (2 * 4 * 5, 3) and np.shares_memory(rows, cl)
    np.testing.assert_array_equal(rows[(1 * 4 + 2) * 5 + 3], x[1, :, 2, 3])  # row of pixel (n=1, h=2, w=3)
    np.testing.assert_array_equal(pixel_rows(x), rows)                 # from NCHW memory: a copy, same values


@IMPLEMENTATIONS
def test_int_arguments_mean_square_pairs(im2col, col2im):
    x = np.random.default_rng(5).standard_normal((2, 2, 5, 5))
    np.testing.assert_array_equal(im2col(x, 3, 2, 1, 1), im2col(x, (3, 3), (2, 2), (1, 1), (1, 1)))
    cols = im2col(x, 3, 2, 1, 1)
    np.testing.assert_array_equal(col2im(cols, x.shape, 3, 2, 1, 1),
                                  col2im(cols, x.shape, (3, 3), (2, 2), (1, 1), (1, 1)))


def test_non_contiguous_input():
    x = np.random.default_rng(4).standard_normal((5, 5, 3, 2)).transpose(3, 2, 0, 1)  # (2, 3, 5, 5) view
    args = ((3, 3), (1, 1), (1, 1), (1, 1))
    np.testing.assert_array_equal(im2col_numba(x, *args), im2col_reference(x, *args))


def test_rejects_other_dtypes_and_bad_shapes():
    with pytest.raises(TypeError, match="float32 or float64"):
        im2col_numba(np.zeros((1, 1, 3, 3), dtype=np.int64), (2, 2), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="expected cols of shape"):
        col2im_numba(np.zeros((4, 5)), (1, 1, 3, 3), (2, 2), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="bias must have shape"):
        col2im_numba(np.zeros((4, 4)), (1, 1, 3, 3), (2, 2), (1, 1), (0, 0), (1, 1), bias=np.zeros(2))
    for im2col in (im2col_numba, im2col_reference):
        with pytest.raises(ValueError, match="empty output"):
            im2col(np.zeros((1, 1, 2, 2)), (3, 3), (1, 1), (0, 0), (1, 1))


def test_geometry_names_its_fields():
    g = conv_geometry(7, 6, (3, 2), (2, 1), (1, 0), (1, 2), "test")
    assert isinstance(g, ConvGeometry)
    assert g._asdict() == dict(kH=3, kW=2, sH=2, sW=1, pH=1, pW=0, dH=1, dW=2, H_out=4, W_out=4)


@pytest.mark.parametrize("size", [1, 2, 5, 8, 13])
@pytest.mark.parametrize("k, s, p, d", [
    (1, 1, 0, 1), (3, 1, 1, 1), (3, 2, 1, 1), (2, 3, 2, 1), (3, 2, 0, 2), (4, 3, 1, 2),
])
def test_conv_output_size_counts_the_windows(size, k, s, p, d):
    # Brute force: window o starts at o*s in the padded input and spans d*(k-1)+1 values.
    n = sum(1 for o in range(size + 2 * p + 1) if o * s + d * (k - 1) + 1 <= size + 2 * p)
    if n > 0:
        assert conv_output_size(size, k, s, p, d) == n
    else:  # no window fits: the formula must say so, never a positive size
        assert conv_output_size(size, k, s, p, d) < 1


@pytest.mark.parametrize("size", [1, 4, 7])
@pytest.mark.parametrize("k, s, p, d", [(3, 1, 0, 1), (3, 2, 1, 1), (4, 2, 1, 1), (3, 3, 1, 2), (2, 2, 0, 3)])
def test_conv_transpose_output_size_inverts_conv(size, k, s, p, d):
    """Every output_padding < stride gives an input size that the conv maps back to `size`."""
    for op in range(s):
        big = conv_transpose_output_size(size, k, s, p, d, op)
        if big >= 1:
            assert conv_output_size(big, k, s, p, d) == size
    assert conv_transpose_output_size(3, 4, 2, 1, 1, 1) == 7   # (3-1)*2 - 2 + 3 + 1 + 1


def test_pair():
    assert pair(3, "stride") == (3, 3)
    assert pair((2, 5), "stride") == (2, 5)
    assert pair([np.int64(1), 2], "stride") == (1, 2)
    for bad in [(1, 2, 3), 1.5, "3", (1.0, 2), True, None]:
        with pytest.raises(ValueError, match="stride must be an int or a pair of ints"):
            pair(bad, "stride")
