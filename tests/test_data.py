"""Bundled data: the IDX reader's checks, checksums, binarization."""
import gzip
import shutil

import numpy as np
import pytest

from scratchvae.data import DataFileError, binarize, load_faces, load_split, read_idx, static_test_binarization
from scratchvae.data.mnist import data_dir


def test_bundled_mnist_loads_and_verifies():
    test = load_split("test")
    assert test.images.shape == (10000, 1, 28, 28) and test.images.dtype == np.float32
    assert 0.0 <= test.images.min() and test.images.max() == 1.0
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test labels
    assert np.bincount(test.labels).tolist()[:3] == [980, 1135, 1032]


def test_bundled_faces_load():
    faces = load_faces()
    assert faces.images.shape == (400, 1, 64, 64)
    assert np.bincount(faces.subject).tolist() == [10] * 40


def write_idx(path, magic, dims, payload_len):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(gzip.compress(header + bytes(payload_len)))


def test_idx_reader_accepts_a_good_file(tmp_path):
    write_idx(tmp_path / "ok.gz", 2051, (2, 3, 4), 24)
    assert read_idx(tmp_path / "ok.gz", 2051, 3).shape == (2, 3, 4)


@pytest.mark.parametrize("magic, dims, payload, message", [
    (2049, (2, 3, 4), 24, "magic number 2049, expected 2051"),
    (2051, (2, 3, 4), 20, "payload is 20 bytes"),
    (2051, (2, 3, 4), 30, "payload is 30 bytes"),
])
def test_idx_reader_rejects_bad_files(tmp_path, magic, dims, payload, message):
    write_idx(tmp_path / "bad.gz", magic, dims, payload)
    with pytest.raises(DataFileError, match=message) as err:
        read_idx(tmp_path / "bad.gz", 2051, 3)
    assert "bad.gz" in str(err.value) and "\n" not in str(err.value)


def test_idx_reader_rejects_wrong_dims_and_garbage(tmp_path):
    write_idx(tmp_path / "dims.gz", 2051, (2, 3, 4), 24)
    with pytest.raises(DataFileError, match=r"dims \(2, 3, 4\), expected \(2, 28, 28\)"):
        read_idx(tmp_path / "dims.gz", 2051, 3, expected_shape=(2, 28, 28))
    (tmp_path / "junk.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataFileError, match="junk.gz: not a valid gzip file"):
        read_idx(tmp_path / "junk.gz", 2051, 3)


def test_truncated_or_modified_mnist_is_caught(tmp_path):
    for f in data_dir().iterdir():
        shutil.copy(f, tmp_path / f.name)
    target = tmp_path / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-1000])
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte.gz: sha256 mismatch"):
        load_split("test", tmp_path)
    # without the checksum, the truncated gzip itself is still rejected
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte.gz"):
        load_split("test", tmp_path, verify=False)
    shutil.copy(data_dir() / target.name, target)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataFileError, match="file not found"):
        load_split("test", tmp_path)


def test_binarization_is_bernoulli_with_pixel_probability():
    x = np.full((200, 1, 10, 10), 0.3, dtype=np.float32)
    b = binarize(x, np.random.default_rng(0))
    assert set(np.unique(b)) == {0.0, 1.0}
    assert abs(b.mean() - 0.3) < 0.01
    fixed = static_test_binarization(x, seed=0)
    np.testing.assert_array_equal(fixed, static_test_binarization(x, seed=0))
    # the reference recipe's exact draw
    u = np.random.default_rng(0).random((200, 100))
    np.testing.assert_array_equal(fixed.reshape(200, 100), (u < x.reshape(200, 100)).astype(np.float32))
