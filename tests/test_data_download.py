"""Downloads against local HTTP servers: good, corrupt and stalling. No real network."""
import gzip
import hashlib
import http.server
import io
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tinygan.data import DownloadError, load, write_idx
from tinygan.data import cifar, download as download_module, mnist
from tinygan.data.download import download


@pytest.fixture
def env(data_home):
    (data_home / "xdg" / "tinygan").rmdir()  # these tests check that the cache stays empty
    return data_home


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


class Server:
    """http.server on 127.0.0.1 in a thread, serving a dict of path -> bytes.

    mode "good" serves them; "corrupt" flips a byte; "stall" sends the headers and half the
    body, then waits.
    """

    def __init__(self, files: dict, mode: str = "good"):
        self.files, self.mode, self.requests = files, mode, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                if server.mode == "corrupt":
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "stall":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.release.wait(10)
                    return
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.release = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(files, mode="good"):
        servers.append(Server(files, mode))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def mnist_files(tmp_path, n=6):
    """Small MNIST-format files and their MD5s, as a server and the loader would see them."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    src = tmp_path / "src"
    src.mkdir()
    write_idx(src / "train-images-idx3-ubyte.gz", images)
    write_idx(src / "train-labels-idx1-ubyte.gz", labels)
    files = {f"/mnist/{p.name}": p.read_bytes() for p in src.iterdir()}
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in src.iterdir()}
    return files, md5, images, labels


def test_good_download_lands_and_is_reused(env, serve, monkeypatch):
    files, md5, images, labels = mnist_files(env)
    server = serve(files)
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", [server.url + "mnist/"])
    monkeypatch.setattr(mnist, "MNIST_MD5", md5)
    data = load("mnist")
    assert data.name == "mnist"
    np.testing.assert_array_equal(data.images[:, 0], images)
    np.testing.assert_array_equal(data.labels, labels)
    folder = env / "xdg" / "tinygan" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(md5)  # no temp files left
    for name, digest in md5.items():
        assert hashlib.md5((folder / name).read_bytes()).hexdigest() == digest
    asked = len(server.requests)
    load("mnist")
    assert len(server.requests) == asked == 2  # the second load used the cache


def test_second_mirror_is_tried(env, serve, monkeypatch):
    files, md5, images, _ = mnist_files(env)
    server = serve(files)
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ["http://127.0.0.1:9/", server.url + "mnist/"])
    monkeypatch.setattr(mnist, "MNIST_MD5", md5)
    np.testing.assert_array_equal(load("mnist").images[:, 0], images)


def test_download_into_root_when_given(env, serve, monkeypatch):
    files, md5, _, _ = mnist_files(env)
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", [serve(files).url + "mnist/"])
    monkeypatch.setattr(mnist, "MNIST_MD5", md5)
    load("mnist", root=env / "data")
    assert (env / "data" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert snapshot(env / "xdg") == {}


def test_corrupt_download_leaves_nothing(env, serve):
    body = gzip.compress(b"some bytes" * 1000)
    server = serve({"/f.gz": body}, mode="corrupt")
    cache = env / "xdg"
    dest = cache / "tinygan" / "mnist" / "f.gz"
    with pytest.raises(DownloadError, match="MD5 checksum mismatch") as err:
        download([server.url + "f.gz"], dest, hashlib.md5(body).hexdigest(), progress=False)
    assert f"{dest.name} into {dest.parent}" in str(err.value)
    assert snapshot(cache) == {}  # no file, no temp file, no empty folders


def test_corrupt_mnist_falls_back_and_leaves_cache_empty(env, serve, monkeypatch, capsys):
    files, md5, _, _ = mnist_files(env)
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", [serve(files, "corrupt").url + "mnist/"])
    monkeypatch.setattr(mnist, "MNIST_MD5", md5)
    monkeypatch.setattr(mnist, "_NOTES_GIVEN", set())
    assert load("mnist").name == "mnist-10k"
    notice = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert notice.startswith("note: full MNIST could not be downloaded (MD5 checksum mismatch")
    assert "datasets/mnist-10k" in notice
    assert snapshot(env / "xdg") == {}


def test_stalled_download_times_out_and_leaves_nothing(env, serve, monkeypatch):
    body = bytes(200_000)
    server = serve({"/f": body}, mode="stall")
    monkeypatch.setattr(download_module, "READ_TIMEOUT", 0.5)
    dest = env / "xdg" / "tinygan" / "cifar10" / "f"
    start = time.perf_counter()
    with pytest.raises(DownloadError, match="timed out|IncompleteRead") as err:
        download([server.url + "f"], dest, hashlib.md5(body).hexdigest(), progress=False)
    assert time.perf_counter() - start < 5
    assert "f" in str(err.value)
    assert snapshot(env / "xdg") == {}


def test_unreachable_server_fails_fast(env):
    start = time.perf_counter()
    with pytest.raises(DownloadError, match="could not download x"):
        download(["http://127.0.0.1:9/x"], env / "xdg" / "x", "0" * 32, progress=False)
    assert time.perf_counter() - start < 5
    assert snapshot(env / "xdg") == {}


def test_http_error_is_reported(env, serve):
    server = serve({})
    with pytest.raises(DownloadError, match="Not Found"):
        download([server.url + "missing"], env / "xdg" / "x", "0" * 32, progress=False)


def test_cifar_download(env, serve, monkeypatch):
    images = np.random.default_rng(1).integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    labels = np.array([7, 0, 9], np.uint8)
    records = np.concatenate([labels[:, None], images.reshape(3, -1)], axis=1).tobytes()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        info.size = len(records)
        tar.addfile(info, io.BytesIO(records))
    body = archive.getvalue()
    server = serve({"/c.tar.gz": body})
    monkeypatch.setattr(cifar, "CIFAR10_URL", server.url + "c.tar.gz")
    monkeypatch.setattr(cifar, "CIFAR10_MD5", hashlib.md5(body).hexdigest())
    data = load("cifar10", "test")
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert (env / "xdg" / "tinygan" / "cifar10" / "cifar-10-binary.tar.gz").read_bytes() == body
