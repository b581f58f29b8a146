"""The fused kernels (Adam, ReLU backward, LeakyReLU) against their plain NumPy twins, each named explicitly
(Adam's twin is Adam.update with fused=False: tests/test_optim.py)."""
import numpy as np
import pytest

import scratchvae as sv
from scratchvae.kernels import channels_last
from scratchvae.kernels.fused import (adam_update_numba, leaky_relu_backward_numba,
                                      leaky_relu_backward_reference, leaky_relu_numba, leaky_relu_reference,
                                      relu_backward_inplace_numba, relu_backward_inplace_reference,
                                      relu_backward_numba, relu_backward_reference)


def test_adam_kernel_never_leaves_subnormal_moments():
    """Tiny gradients must not push m or v into the subnormal range (a slow path on x86)."""
    tiny = np.finfo(np.float32).tiny
    p = np.ones(6, np.float32)
    g = np.array([1e-20, -1e-25, 1e-17, 0.0, 1e-3, -1e-3], np.float32)
    m = np.array([1e-37, -2e-38, 0.0, 1e-36, 0.0, 0.0], np.float32)
    v = np.array([1e-37, 5e-38, 1e-36, 2e-38, 0.0, 0.0], np.float32)
    for _ in range(50):
        adam_update_numba(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1)
        for a in (m, v):
            assert not np.any((a != 0) & (np.abs(a) < tiny))
    # normal-sized gradients are untouched by the flush: the same as Adam's lines unfused
    ref, fast = (sv.Parameter(np.ones(2, np.float32), dtype=np.float32) for _ in range(2))
    for p, fused in ((ref, False), (fast, True)):
        opt = sv.Adam([p], fused=fused)
        for _ in range(3):
            p.grad[...] = g[4:]
            opt.step()
    np.testing.assert_allclose(fast.data, ref.data, rtol=1e-6)


def _relu_case(dtype, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = max(x, 0) with some exact zeros (the kink gets slope 0), dy, and the reference dx."""
    rng = np.random.default_rng(seed)
    y = np.maximum(rng.standard_normal((3, 4, 5, 6)), 0).astype(dtype)
    y[0, 0, 0, :3] = 0.0
    dy = rng.standard_normal(y.shape).astype(dtype)
    return y, dy, relu_backward_reference(dy, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_kernel_matches_reference(dtype):
    y, dy, expected = _relu_case(dtype, seed=5)
    for y_in, dy_in in ((y, dy),                                  # both NCHW memory
                        (channels_last(y), channels_last(dy)),    # both channels-last
                        (channels_last(y), dy),                   # mixed: dy is brought to y's layout
                        (y, dy.astype(np.float32))):              # mixed dtypes
        dx = relu_backward_numba(dy_in, y_in)
        assert dx.dtype == y.dtype and dx.strides == y_in.strides
        np.testing.assert_array_equal(dx, expected.astype(dx.dtype) if dy_in.dtype == dtype
                                      else relu_backward_reference(dy_in.astype(dtype), y))
    assert not np.shares_memory(relu_backward_numba(dy, y), dy)
    with pytest.raises(ValueError, match="differ"):
        relu_backward_numba(dy[:1], y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_inplace_matches_reference(dtype):
    y, dy, expected = _relu_case(dtype, seed=6)
    for y_in, dy_in in ((y, dy.copy()), (channels_last(y), channels_last(dy))):
        assert relu_backward_inplace_numba(dy_in, y_in) is dy_in
        np.testing.assert_array_equal(dy_in, expected)
    # what it cannot overwrite, it leaves alone: another layout, another dtype, read-only, not dense
    read_only = dy.copy()
    read_only.flags.writeable = False
    for y_in, dy_in in ((channels_last(y), dy.copy()), (y, dy.astype(np.float16)), (y, read_only),
                        (y[:, :, :, ::2], dy.copy()[:, :, :, ::2])):
        before = dy_in.copy()
        assert relu_backward_inplace_numba(dy_in, y_in) is None
        np.testing.assert_array_equal(dy_in, before)
    with pytest.raises(ValueError, match="differ"):
        relu_backward_inplace_numba(dy[:1], y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_inplace_reference_keeps_the_same_promise(dtype):
    """dy overwritten and returned where it can take the result, else None and dy untouched."""
    y, dy, expected = _relu_case(dtype, seed=7)
    for y_in, dy_in in ((y, dy.copy()), (channels_last(y), channels_last(dy))):
        assert relu_backward_inplace_reference(dy_in, y_in) is dy_in
        np.testing.assert_array_equal(dy_in, expected)
    read_only = dy.copy()
    read_only.flags.writeable = False
    for y_in, dy_in in ((y, read_only), (y, dy.astype(np.float16)), (channels_last(y), dy.copy())):
        before = dy_in.copy()
        assert relu_backward_inplace_reference(dy_in, y_in) is None
        np.testing.assert_array_equal(dy_in, before)


def _leaky_case(dtype, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x with some exact zeros (the kink: slope a, as torch's), and dy."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    x[0, 0, 0, :3] = 0.0
    return x, rng.standard_normal(x.shape).astype(dtype)


@pytest.mark.parametrize("slope", [0.2, 0.0, -0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_kernels_match_reference(dtype, slope):
    """Forward and backward, fresh and in place, C-order and channels-last: the same single
    multiplication per element as the reference, so equal to the bit."""
    x, dy = _leaky_case(dtype, seed=8)
    expected_y = leaky_relu_reference(x, slope)
    sign = x if slope < 0 else expected_y                   # > 0 exactly where x > 0
    expected_dx = leaky_relu_backward_reference(dy, sign, slope)
    for layout in (lambda a: a.copy(), channels_last):
        xin, dyin, sin = layout(x), layout(dy), layout(sign)
        y = leaky_relu_numba(xin, slope)
        assert y.strides == xin.strides and not np.shares_memory(y, xin)
        np.testing.assert_array_equal(y, expected_y)
        assert leaky_relu_numba(xin, slope, inplace=True) is xin
        np.testing.assert_array_equal(xin, expected_y)
        dx = leaky_relu_backward_numba(dyin, sin, slope)
        np.testing.assert_array_equal(dx, expected_dx)
        assert not np.shares_memory(dx, dyin)
        assert leaky_relu_backward_numba(dyin, sin, slope, inplace=True) is dyin
        np.testing.assert_array_equal(dyin, expected_dx)


def test_leaky_relu_kernels_leave_what_they_cannot_overwrite():
    x, dy = _leaky_case(np.float64, seed=9)
    y = leaky_relu_reference(x, 0.2)
    read_only = x.copy()
    read_only.flags.writeable = False
    strided = x.copy()[:, :, :, ::2]
    for xin in (read_only, strided):
        before = xin.copy()
        out = leaky_relu_numba(xin, 0.2, inplace=True)
        assert out is not xin
        np.testing.assert_array_equal(xin, before)
        np.testing.assert_array_equal(out, leaky_relu_reference(before, 0.2))
    dy_other = channels_last(dy)                             # another layout than y: a new array
    dx = leaky_relu_backward_numba(dy_other, y, 0.2, inplace=True)
    assert dx is not dy_other and dx.strides == y.strides
    np.testing.assert_array_equal(dx, leaky_relu_backward_reference(dy, y, 0.2))
    with pytest.raises(ValueError, match="differ"):
        leaky_relu_backward_numba(dy[:1], y, 0.2)
