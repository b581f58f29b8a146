"""BCE from logits (kernels/bce.py): the compiled passes against the NumPy formulas, and the loss
class that runs them."""
import numpy as np
import pytest

import scratchvae as sv
from scratchvae.kernels.bce import (RUN, bce_logits_grad_numba, bce_logits_grad_reference, bce_logits_rows,
                                    bce_logits_rows_e_reference, bce_logits_rows_numba, bce_logits_rows_reference,
                                    bce_logits_sum_numba, bce_logits_sum_reference)
from scratchvae.kernels.bce import _rows_numba


def _case(dtype, n=7, d=3 * RUN + 5, seed=0):
    """Logits of every size, saturated ones (|a| = 60: e underflows towards 0) and exact zeros;
    binary and grey targets. d spans several runs of the product and a partial one."""
    rng = np.random.default_rng(seed)
    a = (4 * rng.standard_normal((n, d))).astype(dtype)
    a[0, :5] = [60, -60, 0, 1e-30, -1e-30]
    t = (rng.random((n, d)) < 0.3).astype(dtype)
    t[1] = rng.random(d)
    return a, t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_kernel_matches_reference(dtype):
    """Both sum in float64: they differ by the reference's per-pixel rounding in a's dtype (float32:
    ~6e-8 of each of 5,400 terms of ~1, so a few 1e-4 at most) and by the kernel's products
    (1e-16 per factor)."""
    a, t = _case(dtype)
    (got, e_got), (want, e_want) = bce_logits_sum_numba(a, t), bce_logits_sum_reference(a, t)
    np.testing.assert_array_equal(e_got, e_want)                 # the same NumPy passes
    assert got == pytest.approx(want, rel=1e-7 if dtype == np.float32 else 1e-13)
    per_pixel = np.maximum(a.astype(np.float64), 0) - a * t.astype(np.float64) + np.log1p(np.exp(-np.abs(a.astype(np.float64))))
    assert got == pytest.approx(per_pixel.sum(), rel=1e-7 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_kernel_matches_reference(dtype):
    """sigmoid as 1/(1+e) or e/(1+e) against the library's tanh form: a few ulps apart."""
    a, t = _case(dtype, seed=1)
    _, e = bce_logits_sum_reference(a, t)
    got = bce_logits_grad_numba(a, t, e, 0.25)
    assert got.dtype == dtype and got.shape == a.shape
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got, bce_logits_grad_reference(a, t, e, 0.25), rtol=tol, atol=tol)


def test_a_nan_logit_makes_the_loss_nan():
    a, t = _case(np.float32)
    a[3, 100] = np.nan
    assert np.isnan(bce_logits_sum_numba(a, t)[0]) and np.isnan(bce_logits_sum_reference(a, t)[0])


def test_loss_class_runs_the_kernels_on_any_layout():
    """forward on (N, C, H, W) images and a non-contiguous target; backward in pred's shape."""
    rng = np.random.default_rng(2)
    pred = rng.standard_normal((4, 1, 6, 6)).astype(np.float32)
    target = (rng.random((4, 1, 6, 12)) < 0.5).astype(np.float32)[..., ::2]
    loss = sv.BCEWithLogits()
    value = loss.forward(pred, target)
    assert value == pytest.approx(loss.per_image(pred.reshape(4, -1), target.reshape(4, -1)).mean(), rel=1e-6)
    dpred = loss.backward(2.0)
    assert dpred.shape == pred.shape
    sig = 1 / (1 + np.exp(-pred.astype(np.float64)))
    np.testing.assert_allclose(dpred, 2.0 * (sig - target) / 4, rtol=1e-5, atol=1e-7)


def test_a_nan_logit_gives_nan_gradients_where_it_is_and_nowhere_else():
    a, t = _case(np.float32)
    a[3, 100] = np.nan
    _, e = bce_logits_sum_numba(a, t)
    dpred = bce_logits_grad_numba(a, t, e, 1.0)
    assert np.isnan(dpred[3, 100]) and np.isfinite(np.delete(dpred.ravel(), 3 * a.shape[1] + 100)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_kernel_matches_reference_row_by_row(dtype):
    """Each row's loss (what the log-likelihood sums), against the NumPy rows, for the same reason
    and tolerance as the whole sum; and the rows add up to the sum kernel's total."""
    a, t = _case(dtype, seed=3)
    got = bce_logits_rows_numba(a, t)
    assert got.dtype == np.float64 and got.shape == (a.shape[0],)
    rel = 1e-7 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, bce_logits_rows_reference(a, t), rtol=rel)
    assert got.sum() == pytest.approx(bce_logits_sum_numba(a, t)[0], rel=rel)
    # the loss class runs the rows kernel the mode binds (SCRATCHVAE_KERNELS): the same call, the same bits
    np.testing.assert_array_equal(sv.BCEWithLogits().per_image(a, t), bce_logits_rows(a, t))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_with_e_for_a_weighted_backward(dtype):
    """What the importance-weighted bound calls (forward_rows): each row's loss and the e its
    backward reuses, from the kernel and from the NumPy lines; the rows as the rows kernel's, for
    the same tolerance; e bit for bit (the same NumPy passes). backward with per-row weights is
    each row's dpred times its weight."""
    a, t = _case(dtype, seed=4)
    (rows, e), (rows_ref, e_ref) = _rows_numba(a, t), bce_logits_rows_e_reference(a, t)
    np.testing.assert_allclose(rows, rows_ref, rtol=1e-7 if dtype == np.float32 else 1e-13)
    np.testing.assert_array_equal(e, e_ref)
    loss = sv.BCEWithLogits()
    np.testing.assert_allclose(loss.forward_rows(a, t), rows_ref, rtol=1e-7 if dtype == np.float32 else 1e-13)
    w = np.linspace(0.1, 2.0, a.shape[0])
    want = bce_logits_grad_reference(a, t, e_ref, 1.0) * w[:, None].astype(dtype)
    # sigmoid as 1/(1+e) against the reference's tanh form: float32 values ~1 apart by 2.4e-7 at most (measured)
    np.testing.assert_allclose(loss.backward(w), want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-15)
