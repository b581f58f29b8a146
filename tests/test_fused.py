"""The fused Adam kernel against its plain NumPy twin."""
import numpy as np
import pytest

from scratchvae.kernels.fused import adam_update, adam_update_reference


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_matches_reference(dtype):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((7, 5)).astype(dtype) for _ in range(3)] + [rng.random((7, 5)).astype(dtype)]
    fast = [a.copy() for a in arrays]
    slow = [a.copy() for a in arrays]
    for _ in range(3):
        adam_update(fast[0], fast[1], fast[2], fast[3], 1e-2, 0.9, 0.999, 1.3, 1e-8)
        adam_update_reference(slow[0], slow[1], slow[2], slow[3], 1e-2, 0.9, 0.999, 1.3, 1e-8)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for f, s in zip(fast, slow):
        np.testing.assert_allclose(f, s, rtol=tol, atol=tol)
    assert not np.allclose(fast[0], arrays[0])  # it did move
