"""BatchNorm's kernels (kernels/batchnorm.py): the Numba passes against their NumPy references,
and the layer on every input layout it meets."""
import numpy as np
import pytest

from scratchvae.kernels import channels_last
from scratchvae.kernels.batchnorm import (batchnorm_backward_numba, batchnorm_backward_reference,
                                          batchnorm_stats_numba, batchnorm_stats_reference,
                                          batchnorm_forward_numba, batchnorm_forward_reference)
from scratchvae.nn.batchnorm import BatchNorm1d, BatchNorm2d, channel_rows, from_channel_rows

# float32 rows: the element passes round in float32, and the kernels fold the constants in
# another order than the references' lines (x * scale + shift against gamma * (x - mean) *
# inv_std + beta), so they differ by a few float32 ulps of the values (|y| ~ 5): rtol 1e-5,
# atol 1e-5. float64: the same folding, ulps of 1e-16: 1e-10 leaves room for M = 600 sums.
TOL = {np.float32: 1e-5, np.float64: 1e-10}


def _case(dtype, seed, M=600, C=7):
    rng = np.random.default_rng(seed)
    rows = (3.0 + 2.0 * rng.standard_normal((M, C))).astype(dtype)   # mean 3: centring matters
    dy = rng.standard_normal((M, C)).astype(dtype)
    gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
    return rows, dy, gamma, beta


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stats_kernel_matches_reference(dtype):
    rows, *_ = _case(dtype, 0)
    for got, want in zip(batchnorm_stats_numba(rows), batchnorm_stats_reference(rows)):
        assert got.dtype == np.float64 and got.shape == (rows.shape[1],)
        np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


def test_stats_kernel_keeps_its_digits_when_the_mean_dwarfs_the_spread():
    """One pass with squares about 0 would lose the variance of 1e4 + N(0, 1e-2) in float32 data."""
    rows = (1e4 + 1e-2 * np.random.default_rng(1).standard_normal((5000, 3))).astype(np.float32)
    _, var = batchnorm_stats_numba(rows)
    np.testing.assert_allclose(var, batchnorm_stats_reference(rows)[1], rtol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_kernel_matches_reference(dtype):
    rows, _, gamma, beta = _case(dtype, 2)
    mean, var = batchnorm_stats_reference(rows)
    inv_std = 1 / np.sqrt(var + 1e-5)
    got = batchnorm_forward_numba(rows, mean, inv_std, gamma, beta)
    assert got.dtype == dtype and got.shape == rows.shape
    np.testing.assert_allclose(got, batchnorm_forward_reference(rows, mean, inv_std, gamma, beta),
                               rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("batch_stats", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_kernel_matches_reference(dtype, batch_stats):
    rows, dy, gamma, _ = _case(dtype, 3)
    mean, var = batchnorm_stats_reference(rows)
    inv_std = 1 / np.sqrt(var + 1e-5)
    got = batchnorm_backward_numba(dy, rows, mean, inv_std, gamma, batch_stats)
    want = batchnorm_backward_reference(dy, rows, mean, inv_std, gamma, batch_stats)
    # dgamma and dbeta are sums of 600 terms of size ~1: float32 rounding of the terms grows to ~1e-4
    sums_tol = 1e-4 if dtype == np.float32 else 1e-10
    for name, g, w, tol in zip(("dx", "dgamma", "dbeta"), got, want, (TOL[dtype], sums_tol, sums_tol)):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=name)
    assert got[0].dtype == dtype


def test_kernels_refuse_anything_but_rows():
    x = np.zeros((2, 3, 4))
    for call in (lambda: batchnorm_stats_numba(x), lambda: batchnorm_stats_reference(x)):
        with pytest.raises(ValueError, match=r"\(M, C\)"):
            call()


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2), (3, 2, 3, 4)])
def test_channel_rows_round_trip(shape):
    x = np.arange(np.prod(shape), dtype=float).reshape(shape)
    rows = channel_rows(x)
    assert rows.shape == (x.size // shape[1], shape[1])
    for c in range(shape[1]):                            # column c holds channel c's values
        np.testing.assert_array_equal(np.sort(rows[:, c]), np.sort(np.take(x, c, axis=1).ravel()))
    np.testing.assert_array_equal(from_channel_rows(rows, shape), x)


def test_channels_last_input_is_not_copied():
    x = channels_last(np.random.default_rng(4).standard_normal((2, 3, 4, 5)))
    assert np.shares_memory(channel_rows(x), x)


@pytest.mark.parametrize("training", [True, False])
def test_layer_gives_the_same_output_and_gradients_in_either_memory_layout(training):
    """A conv layer hands BatchNorm2d channels-last arrays, a user C-order ones: same numbers."""
    rng = np.random.default_rng(5)
    x = 1 + rng.standard_normal((4, 3, 5, 6))
    dy = rng.standard_normal(x.shape)
    outs = []
    for layout in (lambda a: a, channels_last):
        layer = BatchNorm2d(3)
        layer.weight.data[...] = [0.5, 1.0, 2.0]
        layer.train(training)
        y = layer.forward(layout(x))
        dx = layer.backward(layout(dy))
        outs.append((y, dx, layer.weight.grad.copy(), layer.running_mean.data.copy()))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)  # float64, sums in another order only


def test_batchnorm1d_on_2d_input_returns_the_same_layout():
    x = np.random.default_rng(6).standard_normal((8, 4)).astype(np.float32)
    y = BatchNorm1d(4).forward(x)
    assert y.shape == x.shape and y.dtype == np.float32 and y.flags.c_contiguous
