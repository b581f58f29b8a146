"""The latent-space maths (scratchvae/latent/): quantiles, grid, interpolation, PCA, feature vectors."""
import math

import numpy as np
import pytest

from scratchvae.latent import (encode_means, estimate_feature_vector, ink, interpolation_path, labels_from_file,
                               lerp, manifold_codes, normal_ppf, pca, quantile_grid, shift_codes, slant, slerp,
                               split_at_median)
from scratchvae.latent.features import in_batches


# -- the normal quantile and the grid -------------------------------------------------------------------
@pytest.mark.parametrize("p, z", [(0.975, 1.959963984540054), (0.5, 0.0), (0.84134474606854293, 1.0),
                                  (0.001, -3.090232306167813), (1e-10, -6.361340902404056),
                                  (0.995, 2.5758293035489004), (0.025, -1.959963984540054), (0.9, 1.2815515655446004)])
def test_normal_ppf_known_values(p, z):
    assert normal_ppf(p) == pytest.approx(z, rel=1e-13, abs=1e-14)


def test_normal_ppf_symmetric_and_inverts_phi():
    p = np.linspace(1e-6, 1 - 1e-6, 301)
    z = normal_ppf(p)
    np.testing.assert_allclose(z, -normal_ppf(1 - p), atol=1e-9)
    phi = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z])
    np.testing.assert_allclose(phi, p, rtol=1e-12, atol=1e-15)
    assert np.all(np.diff(z) > 0)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_normal_ppf_refuses_the_ends(p):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        normal_ppf(p)


@pytest.mark.parametrize("n", [1, 2, 7, 20, 101])
def test_quantile_grid_finite_and_symmetric(n):
    q = quantile_grid(n)
    assert q.shape == (n,) and np.all(np.isfinite(q))
    np.testing.assert_array_equal(q, -q[::-1])
    assert np.all(np.diff(q) > 0)
    assert q[-1] == pytest.approx(normal_ppf((n - 0.5) / n), rel=1e-14, abs=1e-15)


def test_manifold_codes_layout_and_latent_check():
    z, q = manifold_codes(2, 5)
    assert z.shape == (25, 2) and np.all(np.isfinite(z))
    assert z[0].tolist() == [q[0], q[-1]]              # top-left: smallest z_1, largest z_2
    assert z[4].tolist() == [q[-1], q[-1]] and z[-1].tolist() == [q[-1], q[0]]
    with pytest.raises(ValueError, match="2-D latent space, this model's has 1 dimension$"):
        manifold_codes(1, 5)
    with pytest.raises(ValueError, match="has 3 dimensions"):
        manifold_codes(3, 5)


# -- interpolation ------------------------------------------------------------------------------------------
def test_lerp_endpoints_and_midpoint():
    za, zb = np.array([1.0, -2.0, 3.0]), np.array([0.0, 4.0, -1.0])
    path = lerp(za, zb, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(path[0], za)
    np.testing.assert_array_equal(path[-1], zb)
    np.testing.assert_allclose(path[1], (za + zb) / 2)
    with pytest.raises(ValueError):
        lerp(za, zb, 1.5)


def test_slerp_keeps_the_norm_and_ends(rng):
    za = rng.standard_normal(16)
    zb = rng.standard_normal(16)
    zb *= np.linalg.norm(za) / np.linalg.norm(zb)
    path = slerp(za, zb, np.linspace(0, 1, 11))
    np.testing.assert_allclose(path[0], za, atol=1e-12)
    np.testing.assert_allclose(path[-1], zb, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(za), rtol=1e-12)
    lin = lerp(za, zb, 0.5)[0]
    assert np.linalg.norm(lin) < np.linalg.norm(path[5])   # the straight line cuts inside the sphere


def test_slerp_falls_back_to_lerp_for_parallel_codes():
    za = np.array([1.0, 2.0])
    np.testing.assert_allclose(slerp(za, 3 * za, [0.0, 0.5, 1.0]), lerp(za, 3 * za, [0.0, 0.5, 1.0]))
    np.testing.assert_allclose(slerp(np.zeros(2), za, [0.5]), [[0.5, 1.0]])
    path = interpolation_path(za, -za, 5, spherical=True)   # antiparallel: still finite
    assert path.shape == (5, 2) and np.all(np.isfinite(path))
    with pytest.raises(ValueError):
        interpolation_path(za, za, 1)


# -- PCA ----------------------------------------------------------------------------------------------------
def test_pca_recovers_a_known_covariance(rng):
    angle = 0.6
    axis = np.array([math.cos(angle), math.sin(angle), 0.0])
    rot = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    variances = np.array([9.0, 4.0, 1.0])
    x = rng.standard_normal((20000, 3)) * np.sqrt(variances) @ rot.T + [5.0, -1.0, 2.0]
    p = pca(x)
    assert abs(p.components[0] @ axis) == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(p.explained_variance_ratio, variances / variances.sum(), atol=0.01)
    np.testing.assert_allclose(p.explained_variance, variances, rtol=0.05)
    np.testing.assert_allclose(p.mean, [5.0, -1.0, 2.0], atol=0.05)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(3), atol=1e-12)
    proj = p.project(x, 2)
    assert proj.shape == (20000, 2) and proj[:, 0].var() == pytest.approx(9.0, rel=0.05)


def test_pca_exact_on_points_on_a_line():
    x = np.outer(np.arange(-3.0, 4.0), [3.0, 4.0]) / 5.0
    p = pca(x)
    np.testing.assert_allclose(p.components[0], [0.6, 0.8], atol=1e-12)   # the sign is fixed: largest > 0
    np.testing.assert_allclose(p.explained_variance_ratio, [1.0, 0.0], atol=1e-12)


def test_encode_means_is_mu_for_a_vae_and_z_for_an_ae(rng):
    import scratchvae as sv
    x = rng.uniform(0, 1, (5, 1, 28, 28)).astype(np.float32)
    vae = sv.build_model("mlp", "vae", latent_dim=3)
    np.testing.assert_allclose(encode_means(vae, x, batch_size=2), vae.encode(x)[0], rtol=1e-5, atol=1e-6)
    ae = sv.build_model("mlp", "ae", latent_dim=3)
    np.testing.assert_allclose(encode_means(ae, x), ae.encode(x), rtol=1e-5, atol=1e-6)


# -- feature vectors ------------------------------------------------------------------------------------------
def _synthetic(rng, n=6000, latent=4):
    has = rng.uniform(size=n) < 0.3
    shift = np.array([2.0, -1.0, 0.0, 0.5])[:latent]
    mu = rng.standard_normal((n, latent)) + has[:, None] * shift
    return mu, has, shift


def _chunks(mu, has, size):
    return [(mu[i:i + size], has[i:i + size]) for i in range(0, len(mu), size)]


def test_feature_vector_tolerance_zero_is_the_full_data_mean_difference(rng):
    mu, has, _ = _synthetic(rng)
    est = estimate_feature_vector(_chunks(mu, has, 128), tolerance=0.0)
    np.testing.assert_allclose(est.vector, mu[has].mean(0) - mu[~has].mean(0), rtol=1e-12, atol=1e-12)
    assert est.batches == math.ceil(len(mu) / 128) and not est.converged
    assert (est.n_with, est.n_without) == (has.sum(), (~has).sum())


def test_feature_vector_stops_by_the_tolerance(rng):
    mu, has, shift = _synthetic(rng, n=60000)
    est = estimate_feature_vector(_chunks(mu, has, 100), tolerance=1e-3)
    assert est.converged and est.change < 1e-3
    assert 2 <= est.batches < 600                      # stopped before the data ran out
    np.testing.assert_allclose(est.vector, shift, atol=0.15)
    full = mu[has].mean(0) - mu[~has].mean(0)
    np.testing.assert_allclose(est.vector, full, atol=0.15)
    loose = estimate_feature_vector(_chunks(mu, has, 100), tolerance=1e-2)
    assert loose.batches < est.batches


def test_feature_vector_waits_for_both_sides():
    rows = np.array([[1.0, 0.0]] * 3)
    batches = [(rows, np.zeros(3, bool)),              # negatives only: v undefined
               (rows, np.zeros(3, bool)),
               (rows + 2, np.ones(3, bool)),           # both seen: first estimate, nothing to compare
               (rows + 2, np.ones(3, bool))]           # the same v again: change 0 -> converged here
    est = estimate_feature_vector(batches, tolerance=1e-9)
    assert est.converged and est.batches == 4 and est.change == 0.0
    np.testing.assert_allclose(est.vector, [2.0, 2.0])
    with pytest.raises(ValueError, match="no item has the feature"):
        estimate_feature_vector(batches[:2])
    with pytest.raises(ValueError, match="every item"):
        estimate_feature_vector(batches[2:])


def test_in_batches_encodes_lazily():
    calls = []
    x = np.arange(10.0)[:, None]

    def codes_of(xb):
        calls.append(len(xb))
        return xb

    has = np.arange(10) % 2 == 0
    est = estimate_feature_vector(in_batches(codes_of, x, has, 2), tolerance=10.0)   # stops at batch 2
    assert est.batches == 2 and calls == [2, 2]


def test_shift_codes_shape_and_values():
    z = np.zeros((2, 3))
    out = shift_codes(z, np.array([1.0, 0.0, -1.0]), np.array([-1.0, 0.0, 2.0]))
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[1, 2], [2.0, 0.0, -2.0])


# -- pixel attributes -------------------------------------------------------------------------------------------
def _bar(direction: str, size: int = 28) -> np.ndarray:
    img = np.zeros((size, size))
    for row in range(4, size - 4):
        shift = (size - 1 - row) // 3 if direction == "/" else row // 3 if direction == "\\" else 9
        img[row, 5 + shift:8 + shift] = 1.0
    return img


def test_slant_sign_of_bars():
    images = np.stack([_bar("/"), _bar("\\"), _bar("|")])[:, None]   # (3, 1, 28, 28)
    s = slant(images)
    assert s[0] > 0.2 and s[1] < -0.2 and abs(s[2]) < 1e-12
    assert s[0] == pytest.approx(-s[1], rel=0.05)
    assert slant(np.zeros((1, 28, 28)))[0] == 0.0                    # blank: no slant, no NaN
    np.testing.assert_array_equal(split_at_median(s), [True, False, False])


def test_ink_is_the_mean_intensity():
    images = np.zeros((3, 1, 4, 4))
    images[1, 0, :2] = 1.0
    images[2] = 0.5
    np.testing.assert_allclose(ink(images), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(split_at_median(ink(images)), [False, False, False])  # ties: 'without'
    np.testing.assert_array_equal(split_at_median([1.0, 2.0, 3.0, 4.0]), [False, False, True, True])


# -- labels files -------------------------------------------------------------------------------------------------
def test_labels_from_npy_and_csv(tmp_path):
    np.save(tmp_path / "b.npy", np.array([True, False, True]))
    np.save(tmp_path / "i.npy", np.array([0, 1, 1]))
    (tmp_path / "l.csv").write_text("index,label\n2,1\n0,true\n\n# note\n1,0\n")
    np.testing.assert_array_equal(labels_from_file(tmp_path / "b.npy", 3), [True, False, True])
    np.testing.assert_array_equal(labels_from_file(tmp_path / "i.npy", 3), [False, True, True])
    np.testing.assert_array_equal(labels_from_file(tmp_path / "l.csv", 3), [True, False, True])


def test_bad_labels_files(tmp_path):
    np.save(tmp_path / "short.npy", np.array([True, False]))
    np.save(tmp_path / "two.npy", np.array([0, 2, 1]))
    (tmp_path / "short.csv").write_text("0,1\n1,0\n")
    (tmp_path / "dup.csv").write_text("0,1\n0,0\n1,1\n")
    (tmp_path / "range.csv").write_text("0,1\n5,0\n1,1\n")
    (tmp_path / "word.csv").write_text("0,maybe\n1,0\n2,1\n")
    for name, words in [("short.npy", "holds 2 labels"), ("two.npy", "0/1"), ("short.csv", "labels 2 items"),
                        ("dup.csv", "twice"), ("range.csv", "outside"), ("word.csv", "maybe"),
                        ("missing.csv", "no such")]:
        with pytest.raises(ValueError, match=words) as info:
            labels_from_file(tmp_path / name, 3)
        assert "\n" not in str(info.value)
