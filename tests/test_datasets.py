"""load_dataset: the named sets, array files and image folders, the seeded split, every bad input,
the resize, and check_model_fits. Synthetic files live in tmp_path only."""
import numpy as np
import pytest
from PIL import Image

from scratchvae import models
from scratchvae.data import DataFileError, check_model_fits, held_out_split, load_dataset, resize_square


def one_line_naming(err, path):
    message = str(err.value)
    assert "\n" not in message and str(path) in message, message


# ---- the named datasets -------------------------------------------------------------------------

def test_mnist_by_name():
    data = load_dataset("MNIST", train_size=50)
    assert data.name == "mnist" and data.image_shape == (1, 28, 28)
    assert data.train.shape == (50, 1, 28, 28) and data.test.shape == (10000, 1, 28, 28)
    assert data.train.dtype == np.float32 and data.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert data.train_labels.shape == (50,) and data.train_labels.dtype == np.int64


def test_olivetti_holds_out_the_tenth_photo_of_each_person():
    data = load_dataset("olivetti")
    assert data.train.shape == (360, 1, 64, 64) and data.test.shape == (40, 1, 64, 64)
    assert data.image_shape == (1, 64, 64)
    from scratchvae.data import load_faces
    faces = load_faces()
    is_test = np.arange(400) % 10 == 9                    # the rule cli.load_data uses
    np.testing.assert_array_equal(data.test, faces.images[is_test])
    np.testing.assert_array_equal(data.train, faces.images[~is_test])
    assert data.test_labels.tolist() == list(range(40))   # subject ids, one held-out photo each
    assert np.bincount(data.train_labels).tolist() == [9] * 40


def test_olivetti_resized_for_a_28_pixel_model():
    data = load_dataset("olivetti", image_size=28, train_size=20)
    assert data.train.shape == (20, 1, 28, 28) and data.test.shape == (40, 1, 28, 28)
    assert data.image_shape == (1, 28, 28) and 0.0 <= data.train.min() and data.train.max() <= 1.0


# ---- array files --------------------------------------------------------------------------------

def test_npy_uint8_images(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 6), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    data = load_dataset(str(tmp_path / "x.npy"))
    assert data.image_shape == (1, 8, 6) and (len(data.train), len(data.test)) == (18, 2)
    assert data.train_labels is None and data.test_labels is None
    everything = np.concatenate([data.train, data.test])
    assert data.train.dtype == np.float32 and everything.max() <= 1.0
    # the same images, just divided by 255 and split
    assert sorted(map(bytes, everything.reshape(20, -1))) == sorted(map(bytes, (x / np.float32(255)).reshape(20, -1)))


def test_npz_rgb_floats_with_labels_stay_paired(tmp_path):
    n = 30
    x = np.random.default_rng(1).random((n, 3, 5, 5))
    x[:, 0, 0, 0] = np.arange(n) / n                     # a pixel that tells each image apart
    np.savez(tmp_path / "d.npz", images=x, labels=np.arange(n) * 7)
    data = load_dataset(str(tmp_path / "d.npz"), seed=5)
    assert data.image_shape == (3, 5, 5) and data.train.dtype == np.float32
    for images, labels in ((data.train, data.train_labels), (data.test, data.test_labels)):
        np.testing.assert_allclose(images[:, 0, 0, 0] * n * 7, labels, atol=1e-3)


def test_npz_single_array_under_any_name_and_bool(tmp_path):
    np.savez(tmp_path / "one.npz", whatever=np.ones((10, 4, 4), dtype=bool))
    data = load_dataset(str(tmp_path / "one.npz"))
    assert data.image_shape == (1, 4, 4) and data.train.max() == 1.0


def test_array_resized(tmp_path):
    np.save(tmp_path / "x.npy", np.full((10, 1, 40, 30), 0.25, dtype=np.float32))
    data = load_dataset(str(tmp_path / "x.npy"), image_size=16)
    assert data.image_shape == (1, 16, 16)
    np.testing.assert_allclose(data.train, 0.25, atol=1e-6)


# ---- the 90/10 split ----------------------------------------------------------------------------

def test_split_is_seeded_disjoint_and_complete():
    train, test = held_out_split(100, seed=3)
    assert len(train) == 90 and len(test) == 10
    assert set(train).isdisjoint(test) and sorted(np.concatenate([train, test])) == list(range(100))
    again_train, again_test = held_out_split(100, seed=3)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(test, again_test)
    assert not np.array_equal(test, held_out_split(100, seed=4)[1])
    assert len(held_out_split(5, seed=0)[1]) == 1          # always at least one held out


def test_split_of_a_file_follows_the_seed(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(50, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8))
    ids = lambda images: sorted((images[:, 0, 0, 0] * 255).round().astype(int).tolist())
    a, b = load_dataset(str(tmp_path / "x.npy"), seed=1), load_dataset(str(tmp_path / "x.npy"), seed=1)
    c = load_dataset(str(tmp_path / "x.npy"), seed=2)
    assert ids(a.test) == ids(b.test) != ids(c.test)
    assert set(ids(a.train)).isdisjoint(ids(a.test)) and len(ids(a.train)) + len(ids(a.test)) == 50


# ---- image folders ------------------------------------------------------------------------------

def save(path, array, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)


def test_folder_of_gray_png_and_gray_looking_rgb_jpeg_is_one_channel(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        save(tmp_path / "imgs" / f"{i}.png", rng.integers(0, 256, (12, 12), dtype=np.uint8))
    gray = np.full((12, 12), 128, np.uint8)
    save(tmp_path / "imgs" / "sub" / "g.jpg", np.stack([gray] * 3, axis=-1))   # RGB with R = G = B
    (tmp_path / "imgs" / ".DS_Store").write_bytes(b"\0junk")                    # hidden: skipped
    data = load_dataset(str(tmp_path / "imgs"))
    assert data.image_shape == (1, 12, 12) and len(data.train) + len(data.test) == 7
    assert data.train.dtype == np.float32 and 0.0 <= data.train.min() and data.train.max() <= 1.0


def test_folder_with_colour_is_three_channels_and_resized(tmp_path):
    rng = np.random.default_rng(1)
    save(tmp_path / "a.png", rng.integers(0, 256, (30, 20, 3), dtype=np.uint8))
    save(tmp_path / "b.png", rng.integers(0, 256, (16, 16, 4), dtype=np.uint8))  # RGBA: alpha dropped
    save(tmp_path / "c.jpeg", rng.integers(0, 256, (50, 50), dtype=np.uint8), quality=95)
    data = load_dataset(str(tmp_path), image_size=8)
    assert data.image_shape == (3, 8, 8) and len(data.train) + len(data.test) == 3
    again = load_dataset(str(tmp_path), image_size=8)          # the same files, the same arrays
    np.testing.assert_array_equal(data.train, again.train)


def test_folder_of_mixed_sizes_needs_an_image_size(tmp_path):
    save(tmp_path / "a.png", np.zeros((10, 10), np.uint8))
    save(tmp_path / "b.png", np.zeros((12, 10), np.uint8))
    with pytest.raises(DataFileError, match="give an image size") as err:
        load_dataset(str(tmp_path))
    one_line_naming(err, tmp_path / "b.png")
    assert load_dataset(str(tmp_path), image_size=10).image_shape == (1, 10, 10)


# ---- bad input: a DataFileError, one line, naming the file ---------------------------------------

def test_empty_folder(tmp_path):
    with pytest.raises(DataFileError, match="no PNG or JPEG images") as err:
        load_dataset(str(tmp_path))
    one_line_naming(err, tmp_path)


def test_folder_with_a_file_that_is_not_an_image(tmp_path):
    save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataFileError, match="not a PNG or JPEG image") as err:
        load_dataset(str(tmp_path))
    one_line_naming(err, tmp_path / "notes.txt")


def test_folder_with_a_corrupt_image(tmp_path):
    save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "b.png").write_bytes(b"this is not a png")
    with pytest.raises(DataFileError, match="not a readable image") as err:
        load_dataset(str(tmp_path))
    one_line_naming(err, tmp_path / "b.png")


def bad_arrays():
    nan = np.zeros((4, 3, 3))
    nan[1, 1, 1] = np.nan
    return {
        "1d.npy": (np.zeros(10, np.uint8), r"\(10,\) \(1-D\)"),
        "5d.npy": (np.zeros((2, 1, 1, 3, 3), np.uint8), r"5-D"),
        "nan.npy": (nan, "contains NaN"),
        "big.npy": (np.full((4, 3, 3), 1.5), r"values span \[1.5, 1.5\]"),
        "neg.npy": (np.full((4, 3, 3), -0.5, np.float32), r"expected floats in \[0, 1\]"),
        "int.npy": (np.zeros((4, 3, 3), np.int64), "dtype int64"),
        "last.npy": (np.zeros((4, 5, 5, 3), np.uint8), "channels-last"),
        "empty.npy": (np.zeros((0, 3, 3), np.uint8), "holds no pixels"),
        "single.npy": (np.zeros((1, 3, 3), np.uint8), "need at least 2"),
    }


@pytest.mark.parametrize("name", sorted(bad_arrays()))
def test_bad_arrays(tmp_path, name):
    array, message = bad_arrays()[name]
    np.save(tmp_path / name, array)
    with pytest.raises(DataFileError, match=message) as err:
        load_dataset(str(tmp_path / name))
    one_line_naming(err, tmp_path / name)


def test_pickled_array_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="not a readable .npy") as err:
        load_dataset(str(tmp_path / "obj.npy"))
    one_line_naming(err, tmp_path / "obj.npy")


def test_npz_with_no_arrays_or_several(tmp_path):
    np.savez(tmp_path / "none.npz")
    with pytest.raises(DataFileError, match="no arrays") as err:
        load_dataset(str(tmp_path / "none.npz"))
    one_line_naming(err, tmp_path / "none.npz")
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 2, 2)), b=np.zeros((3, 2, 2)))
    with pytest.raises(DataFileError, match=r"holds 2 arrays \(a, b\)") as err:
        load_dataset(str(tmp_path / "two.npz"))
    one_line_naming(err, tmp_path / "two.npz")


def test_npz_with_labels_that_do_not_match(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 2, 2)), labels=np.arange(3))
    with pytest.raises(DataFileError, match="'labels' is") as err:
        load_dataset(str(tmp_path / "d.npz"))
    one_line_naming(err, tmp_path / "d.npz")


def test_garbage_npy_missing_path_and_unknown_file_type(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataFileError, match="not a readable .npy") as err:
        load_dataset(str(tmp_path / "junk.npy"))
    one_line_naming(err, tmp_path / "junk.npy")
    with pytest.raises(DataFileError, match="no such file or folder, and not a dataset name") as err:
        load_dataset(str(tmp_path / "missing.npz"))
    one_line_naming(err, tmp_path / "missing.npz")
    (tmp_path / "data.csv").write_text("1,2,3")
    with pytest.raises(DataFileError, match="not a .npy/.npz file or a folder") as err:
        load_dataset(str(tmp_path / "data.csv"))
    one_line_naming(err, tmp_path / "data.csv")


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("mnist", image_size=0)
    with pytest.raises(ValueError, match="train_size"):
        load_dataset("mnist", train_size=0)


# ---- resize ------------------------------------------------------------------------------------

def test_resize_area_average_crop_and_range():
    x = np.random.default_rng(0).random((2, 1, 8, 8)).astype(np.float32)
    half = resize_square(x, 4)
    np.testing.assert_allclose(half, x.reshape(2, 1, 4, 2, 4, 2).mean(axis=(3, 5)), atol=1e-6)  # 2x2 means
    up = resize_square(x, 19)
    assert up.shape == (2, 1, 19, 19) and 0.0 <= up.min() and up.max() <= 1.0
    wide = np.zeros((1, 1, 4, 8), np.float32)
    wide[..., 2:6] = 1.0                                   # the centred square is all ones
    np.testing.assert_array_equal(resize_square(wide, 4), np.ones((1, 1, 4, 4)))


# ---- check_model_fits --------------------------------------------------------------------------

def test_check_model_fits():
    check_model_fits("conv", (1, 28, 28))
    check_model_fits("faces", (1, 64, 64))
    with pytest.raises(ValueError, match=r"'conv' takes images of shape \(1, 28, 28\).*--image-size 28") as err:
        check_model_fits("conv", (1, 64, 64))
    message = str(err.value)
    assert "\n" not in message and "faces (1, 64, 64)" in message and "keras (1, 28, 28)" in message
    with pytest.raises(ValueError, match="needs 1-channel images"):
        check_model_fits("faces", (3, 64, 64))
    with pytest.raises(ValueError, match="unknown model"):
        check_model_fits("resnet", (1, 28, 28))


def test_check_model_fits_an_architecture_of_any_size(monkeypatch):
    builder, _, latent = models.ARCHITECTURES["mlp"]
    monkeypatch.setitem(models.ARCHITECTURES, "mlp", (builder, None, latent))
    check_model_fits("mlp", (3, 17, 33))
