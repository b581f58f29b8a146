"""Optimizers against hand-computed updates (and torch.optim when installed)."""
import numpy as np
import pytest

import scratchvae as sv


def param(values):
    p = sv.Parameter(np.array(values, dtype=np.float64), dtype=np.float64)
    return p


# Checks [ADAM-2], [ADAM-3], [ADAM-4] (docs/derivations).
def test_adam_matches_hand_computed_first_two_steps():
    p = param([1.0, -2.0])
    opt = sv.Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    g1 = np.array([0.5, -1.0])
    p.grad[...] = g1
    opt.step()
    # step 1: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps) = lr * sign(g)
    np.testing.assert_allclose(p.data, [1.0 - 0.1, -2.0 + 0.1], rtol=1e-7)
    p1 = np.array([1.0, -2.0]) - 0.1 * g1 / (np.abs(g1) + 1e-8)
    np.testing.assert_allclose(p.data, p1, rtol=1e-15)
    g2 = np.array([0.1, 0.3])
    p.grad[...] = g2
    opt.step()
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1 ** 2 + 0.001 * g2 ** 2
    m_hat, v_hat = m / (1 - 0.9 ** 2), v / (1 - 0.999 ** 2)
    np.testing.assert_allclose(p.data, p1 - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-12)


# Checks [ADAM-1], [ADAM-2], [ADAM-3], [ADAM-4] (docs/derivations).
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_torch(weight_decay):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 4))
    grads = rng.standard_normal((5, 3, 4))
    p = param(w0)
    opt = sv.Adam([p], lr=1e-2, weight_decay=weight_decay)
    tp = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.Adam([tp], lr=1e-2, weight_decay=weight_decay)
    for g in grads:
        p.grad[...] = g
        opt.step()
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_sgd_momentum_matches_formula():
    p = param([1.0])
    opt = sv.SGD([p], lr=0.1, momentum=0.9)
    for g, expected in [(1.0, 0.9), (1.0, 0.9 - 0.1 * 1.9), (0.0, 0.9 - 0.19 - 0.1 * 1.71)]:
        p.grad[...] = g
        opt.step()
        assert p.data[0] == pytest.approx(expected)


def test_clip_grad_norm_scales_globally():
    a, b = param([3.0]), param([4.0])
    a.grad[...], b.grad[...] = 3.0, 4.0
    norm = sv.clip_grad_norm([a, b], 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose([a.grad[0], b.grad[0]], [0.6, 0.8], rtol=1e-5)
    assert sv.clip_grad_norm([a, b], 10.0) == pytest.approx(1.0, rel=1e-5)  # below max: untouched


def test_optimizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="empty parameter list"):
        sv.Adam([])
    with pytest.raises(ValueError, match="learning rate"):
        sv.SGD([param([1.0])], lr=0)


def test_adam_allows_beta1_zero_like_torch():
    p = param([1.0, 2.0])
    opt = sv.Adam([p], lr=0.1, betas=(0.0, 0.5))
    p.grad[...] = [1.0, -1.0]
    opt.step()
    np.testing.assert_allclose(p.data, [0.9, 2.1], rtol=1e-6)


def test_adam_state_dict_is_a_snapshot():
    p = param([1.0])
    opt = sv.Adam([p])
    p.grad[...] = 1.0
    opt.step()
    state = opt.state_dict()
    opt.step()
    assert state["m.0"][0] == pytest.approx(0.1) and int(state["t"]) == 1


def test_adam_refuses_moments_of_another_dtype():
    model = sv.Linear(2, 2)
    opt = sv.Adam(model.parameters())
    model.to(np.float64)
    with pytest.raises(TypeError, match="build the optimizer after model.to"):
        opt.step()


# Checks [ADAM-3] against [ADAM-4]: the two forms of one update (docs/derivations/adam.md).
@pytest.mark.parametrize("dtype,tol_update,tol_moments", [
    # float32: p (~1) rounds to ~6e-8 at every step, against updates of ~1e-2, so the updates
    # differed by up to 4.1e-6 of the largest one (measured over 80 seeded cases like this one);
    # m and v by about one rounding (1.4e-7 of the largest)
    (np.float32, 2e-5, 1e-6),
    # float64: the same, 1.5e-14 and 2.7e-16 measured
    (np.float64, 1e-13, 2e-15)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_written_out_is_the_fused_kernel(dtype, tol_update, tol_moments, weight_decay):
    """Adam(fused=False) runs the docstring's lines (the default with SCRATCHVAE_KERNELS=reference),
    Adam(fused=True) the kernel with the bias corrections folded: the same update, to rounding."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((7, 5)).astype(dtype)
    ref, fast = (sv.Parameter(w0.copy(), dtype=dtype) for _ in range(2))
    opt_ref = sv.Adam([ref], lr=1e-2, weight_decay=weight_decay, fused=False)
    opt_fast = sv.Adam([fast], lr=1e-2, weight_decay=weight_decay, fused=True)
    for _ in range(3):                                 # the bias corrections change with the step
        ref.grad[...] = fast.grad[...] = rng.standard_normal(w0.shape)
        opt_ref.step()
        opt_fast.step()
    update = ref.data - w0
    assert (update != 0).all() and np.abs(update).max() > 1e-2    # every element moved, some by ~lr
    assert np.abs((fast.data - w0) - update).max() <= tol_update * np.abs(update).max()
    for a, b in ((opt_fast.m[0], opt_ref.m[0]), (opt_fast.v[0], opt_ref.v[0])):
        assert np.abs(a - b).max() <= tol_moments * np.abs(b).max()


def test_fused_adam_refuses_non_contiguous_arrays():
    """The compiled pass needs C-contiguous arrays (its plain-NumPy reference takes any), in either mode."""
    from scratchvae.kernels.fused import adam_update_numba
    a = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        adam_update_numba(a[:, ::2], a[:, ::2].copy(), a[:, ::2].copy(), a[:, ::2].copy(), 0.1, 0.9, 0.999, 1e-8, 1)


def test_clip_grad_norm_rejects_non_positive_max():
    with pytest.raises(ValueError, match="max_norm must be positive"):
        sv.clip_grad_norm([param([1.0])], -1.0)


@pytest.mark.parametrize("make", [
    lambda ps: sv.Adam(ps, lr=0.1, weight_decay=0.01),
    lambda ps: sv.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: sv.SGD(ps, lr=0.1)])
def test_an_update_in_parts_is_the_whole_step(make):
    """begin_step() and update(i, k, parts) for every part: what DataParallel.step does in the reduce."""
    rng = np.random.default_rng(0)
    shapes = [(7, 5), (2,), (3, 1, 2, 2)]          # sizes 35, 2 (fewer than parts: an empty part), 12
    whole = [param(rng.standard_normal(s)) for s in shapes]
    in_parts = [param(p.data.copy()) for p in whole]
    initial = [p.data.copy() for p in whole]
    opt_whole, opt_parts = make(whole), make(in_parts)
    for _ in range(3):
        for a, b in zip(whole, in_parts):
            a.grad[...] = b.grad[...] = rng.standard_normal(a.data.shape)
        opt_whole.step()
        opt_parts.begin_step()
        for k in reversed(range(3)):               # any order: the parts are disjoint
            for i in range(len(in_parts)):
                opt_parts.update(i, k, 3)
        for a, b in zip(whole, in_parts):
            np.testing.assert_allclose(b.data, a.data, rtol=1e-13)
    for a, before in zip(whole, initial):
        assert np.abs(a.data - before).min() > 1e-6  # every element moved


def test_flat_part_cuts_near_equal_runs_that_cover_the_array():
    from scratchvae.optim import flat_part
    a = np.arange(10.0).reshape(2, 5)
    runs = [flat_part(a, k, 3) for k in range(3)]
    assert [r.tolist() for r in runs] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    runs[1][...] = -1                              # views: writes reach a
    assert a[0, 3] == -1 and a[1, 0] == -1
    with pytest.raises(ValueError, match="C-contiguous"):
        flat_part(a.T, 0, 2)
