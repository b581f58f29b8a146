"""Fashion-MNIST download: checksums, retries, atomic writes and the cache, against a local server.

Nothing here reaches the internet or ~/.cache: the server runs on 127.0.0.1 in a thread, the cache
is tmp_path, and the real checksums are swapped for those of small files made in the test.
"""
import gzip
import hashlib
import http.server
import socket
import threading
import urllib.request

import numpy as np
import pytest

from scratchvae.data import DataFileError, load_dataset
from scratchvae.data import download
from scratchvae.data.download import FASHION_MNIST_SHA256, fetch_fashion_mnist, load_fashion_mnist

SIZES = {"train": 12, "t10k": 5}


def idx_gz(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def fake_files(seed: int = 0) -> dict[str, bytes]:
    """Small valid IDX .gz files under the four real names."""
    rng = np.random.default_rng(seed)
    files = {}
    for prefix, n in SIZES.items():
        files[f"{prefix}-images-idx3-ubyte.gz"] = idx_gz(2051, rng.integers(0, 256, (n, 28, 28)))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = idx_gz(2049, rng.integers(0, 10, n))
    return files


def sha256s(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(body).hexdigest() for name, body in files.items()}


class Server:
    """A tiny HTTP server; ``routes[name]`` is a list of behaviours, one used per request (the
    last one repeats): ("ok", body), ("status", code) or ("cut", body) -- the last announces
    more bytes than it sends, then hangs up."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                server.hits[name] = server.hits.get(name, 0) + 1
                plan = server.routes.get(name, [("status", 404)])
                kind, arg = plan[min(server.hits[name], len(plan)) - 1]
                if kind == "status":
                    self.send_error(arg)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(arg) + (1000 if kind == "cut" else 0)))
                self.end_headers()
                self.wfile.write(arg if kind == "ok" else arg[: len(arg) // 2])
                self.close_connection = True

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def serve(self, files: dict[str, bytes]) -> None:
        for name, body in files.items():
            self.routes[name] = [("ok", body)]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def no_real_cache(tmp_path, monkeypatch):
    """The cache and home both point into tmp_path, and no mirror is set from outside."""
    monkeypatch.setenv("SCRATCHVAE_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SCRATCHVAE_FASHION_MNIST_URL", raising=False)


def leftovers(folder):
    """Anything in the folder besides finished files: temporary parts of a download."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.exists() else []


def test_good_files_download_verify_and_load(server, tmp_path):
    files = fake_files()
    server.serve(files)
    split = load_fashion_mnist("train", base_url=server.url, checksums=sha256s(files), backoff=0)
    assert split.images.shape == (12, 1, 28, 28) and split.images.dtype == np.float32
    assert 0.0 <= split.images.min() and split.images.max() <= 1.0
    folder = tmp_path / "cache" / "fashion-mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)   # all four, nothing else
    assert (folder / "train-labels-idx1-ubyte.gz").read_bytes() == files["train-labels-idx1-ubyte.gz"]
    assert load_fashion_mnist("test", base_url=server.url, checksums=sha256s(files)).labels.shape == (5,)


def test_second_call_uses_the_cache_without_network(server, tmp_path, monkeypatch):
    files = fake_files()
    server.serve(files)
    first = load_fashion_mnist("train", base_url=server.url, checksums=sha256s(files), backoff=0)
    hits = dict(server.hits)
    assert sum(hits.values()) == 4

    def no_network(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    again = load_fashion_mnist("train", base_url=server.url, checksums=sha256s(files))
    assert server.hits == hits
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)


def test_wrong_checksum_is_an_error_and_leaves_no_file(server, tmp_path):
    files = fake_files()
    server.serve(files)
    checksums = sha256s(files) | {"train-images-idx3-ubyte.gz": "0" * 64}
    with pytest.raises(DataFileError, match="sha256 mismatch") as err:
        fetch_fashion_mnist(base_url=server.url, checksums=checksums, backoff=0)
    assert "train-images-idx3-ubyte.gz" in str(err.value) and "\n" not in str(err.value)
    folder = tmp_path / "cache" / "fashion-mnist"
    assert not (folder / "train-images-idx3-ubyte.gz").exists() and leftovers(folder) == []
    assert server.hits["train-images-idx3-ubyte.gz"] == 1     # the same bytes would come again


def test_a_cut_transfer_is_retried_and_never_left_half_written(server, tmp_path):
    files = fake_files()
    server.serve(files)
    name = "train-images-idx3-ubyte.gz"
    server.routes[name] = [("cut", files[name]), ("ok", files[name])]
    folder = fetch_fashion_mnist(base_url=server.url, checksums=sha256s(files), backoff=0)
    assert server.hits[name] == 2
    assert (folder / name).read_bytes() == files[name] and leftovers(folder) == []


def test_a_transfer_cut_every_time_fails_cleanly(server, tmp_path):
    files = fake_files()
    server.serve(files)
    name = "train-images-idx3-ubyte.gz"
    server.routes[name] = [("cut", files[name])]
    with pytest.raises(DataFileError, match="cut short") as err:
        fetch_fashion_mnist(base_url=server.url, checksums=sha256s(files), attempts=3, backoff=0)
    assert "\n" not in str(err.value) and server.hits[name] == 3
    folder = tmp_path / "cache" / "fashion-mnist"
    assert not (folder / name).exists() and leftovers(folder) == []


def test_a_server_error_is_retried_then_reported_in_one_line(server, tmp_path):
    files = fake_files()
    server.serve(files)
    name = "train-labels-idx1-ubyte.gz"
    server.routes[name] = [("status", 500)]
    with pytest.raises(DataFileError) as err:
        fetch_fashion_mnist(base_url=server.url, checksums=sha256s(files), attempts=3, backoff=0)
    message = str(err.value)
    assert "\n" not in message and "HTTP 500" in message and "after 3 attempts" in message
    assert server.hits[name] == 3
    # the files still missing are named, with their checksums and the folder to put them in
    folder = tmp_path / "cache" / "fashion-mnist"
    assert f"{name} (sha256 {sha256s(files)[name]})" in message and str(folder) in message
    assert "train-images-idx3-ubyte.gz (sha256" not in message      # that one did arrive


def test_a_server_error_that_clears_up_is_survived(server):
    files = fake_files()
    server.serve(files)
    name = "t10k-images-idx3-ubyte.gz"
    server.routes[name] = [("status", 503), ("status", 500), ("ok", files[name])]
    folder = fetch_fashion_mnist(base_url=server.url, checksums=sha256s(files), attempts=3, backoff=0)
    assert (folder / name).read_bytes() == files[name]


def test_not_found_is_not_retried(server):
    with pytest.raises(DataFileError, match="HTTP 404"):
        fetch_fashion_mnist(base_url=server.url, checksums=sha256s(fake_files()), backoff=0)
    assert server.hits == {"train-images-idx3-ubyte.gz": 1}


def test_offline_error_names_files_checksums_and_folder(tmp_path):
    with socket.socket() as s:             # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataFileError) as err:
        fetch_fashion_mnist(base_url=f"http://127.0.0.1:{port}", attempts=2, backoff=0)
    message = str(err.value)
    assert "\n" not in message and "could not download" in message
    assert str(tmp_path / "cache" / "fashion-mnist") in message
    for name, sha in FASHION_MNIST_SHA256.items():   # the real table: what to fetch by hand
        assert f"{name} (sha256 {sha})" in message


def test_a_bad_file_already_in_the_cache_is_reported(tmp_path):
    folder = tmp_path / "cache" / "fashion-mnist"
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not it")
    with pytest.raises(DataFileError, match="delete it to download it again") as err:
        fetch_fashion_mnist(base_url="http://127.0.0.1:9/")
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_the_url_comes_from_the_environment_and_load_dataset_uses_it(server, monkeypatch):
    files = fake_files(seed=3)
    server.serve(files)
    monkeypatch.setenv("SCRATCHVAE_FASHION_MNIST_URL", server.url)
    for name, sha in sha256s(files).items():
        monkeypatch.setitem(download.FASHION_MNIST_SHA256, name, sha)
    data = load_dataset("fashion-mnist", train_size=10)
    assert data.name == "fashion-mnist" and data.image_shape == (1, 28, 28)
    assert data.train.shape == (10, 1, 28, 28) and data.test.shape == (5, 1, 28, 28)
    assert data.train_labels.shape == (10,) and data.test_labels.dtype == np.int64
    assert sum(server.hits.values()) == 4


def test_the_default_base_url_is_the_projects_server(monkeypatch, tmp_path):
    seen = []

    def record(url, timeout):
        seen.append(url)
        raise OSError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", record)
    with pytest.raises(DataFileError):
        fetch_fashion_mnist(attempts=1)
    assert seen == ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz"]
