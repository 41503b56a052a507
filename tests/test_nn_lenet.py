"""Learning on real data: a LeNet-style classifier on the bundled MNIST sample."""
import gzip
import time
from pathlib import Path

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import nn
from tinygan.optim import Adam

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [REPO / "datasets" / "mnist-10k", REPO.parent / "shared" / "datasets" / "mnist-10k"]


def read_idx(path: Path, offset: int) -> np.ndarray:
    """The payload of an IDX file: bytes after a header of `offset` bytes."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_mnist_sample():
    for folder in CANDIDATES:
        images = folder / "train-images-idx3-ubyte.gz"
        labels = folder / "train-labels-idx1-ubyte.gz"
        if images.exists() and labels.exists():
            x = read_idx(images, 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
            y = read_idx(labels, 8).astype(np.int64)
            return x, y
    pytest.skip(f"MNIST sample not found in {[str(c) for c in CANDIDATES]}")


def lenet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),    # 6 x 14 x 14
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),              # 16 x 5 x 5
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


@pytest.mark.slow
def test_lenet_learns_mnist_sample():
    x, y = load_mnist_sample()
    x = x * 2.0 - 1.0                       # pixels in [-1, 1]
    x_train, y_train = x[:9000], y[:9000]
    x_test, y_test = x[-1000:], y[-1000:]
    tinygan.manual_seed(0)
    model = lenet()
    lr, batch_size, epochs = 2e-3, 64, 6
    optimizer = Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        if epoch == epochs - 2:             # a smaller step for the last two epochs
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.2
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(tinygan.tensor(x_train[idx])),
                                   tinygan.tensor(y_train[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with tinygan.no_grad():
        logits = np.concatenate([model(tinygan.tensor(x_test[i:i + 500])).numpy()
                                 for i in range(0, len(x_test), 500)])
    accuracy = float((logits.argmax(1) == y_test).mean())
    wall = time.perf_counter() - start
    print(f"LeNet on the MNIST sample: held-out accuracy {accuracy:.4f} "
          f"({epochs} epochs, {wall:.1f} s)")
    assert accuracy >= 0.97
