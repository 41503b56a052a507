"""Feature networks for FID & co.: classifiers trained with tinygan itself.

The Frechet Inception Distance (Heusel et al. 2017) compares Gaussians fitted to the
features a trained network gives real and generated images. Inception-v3 is far too big
to ship or run here, and meaningless on 28x28 digits, so tinygan scores with small
classifiers it trains itself:

  lenet       28x28 gray (MNIST, Fashion-MNIST): LeNet-5 (LeCun et al. 1998) with 16/32-channel
              convolutions and BatchNorm; the features are its 84-unit layer.
  cifar-cnn   32x32 colour (CIFAR-10): a small VGG-style CNN; features: its 128-unit layer.

The weights for MNIST (trained on the bundled 10k sample: first 9,000 train, last 1,000
held out) and Fashion-MNIST (60k train, 10k test) ship in tinygan/metrics/weights/. The
CIFAR-10 network is trained on the user's copy on first use and cached in the tinygan
cache folder. Every weight file is `tinygan.save({"state": ..., "meta": ...})`, the meta
recording the test accuracy, the data and the command that reproduces it:

    python -m tinygan.metrics.features train mnist --epochs 8 --seed 0 --shift 2
    python -m tinygan.metrics.features train fashion-mnist --epochs 4 --seed 0
    python -m tinygan.metrics.features train cifar10 --epochs 15 --seed 0 --out FILE

Scores computed on these features are *not* Inception FIDs and are not comparable with
published numbers; tinygan names them after the network, e.g. "FID (tinygan LeNet-84
features)". Inputs are float32 images in [-1, 1], exactly what a tanh generator emits.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import backend, serialization
from .. import functional as F
from .. import nn
from .._tensor import Tensor
from ..autograd import no_grad
from ..creation import manual_seed
from ..data import load
from ..data.paths import cache_dir
from ..data.transforms import to_signed_unit
from ..optim import Adam

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
BATCH_SIZE = 500  # images through a network (or out of a generator) at a time

# dataset name -> (architecture, weight file shipped in WEIGHTS_DIR or None: trained on use)
NETWORKS = {
    "mnist": ("lenet", "lenet-mnist.npz"),
    "mnist-10k": ("lenet", "lenet-mnist.npz"),
    "fashion-mnist": ("lenet", "lenet-fashion-mnist.npz"),
    "cifar10": ("cifar-cnn", None),
}
# The data a shipped network was trained on: mnist means the bundled sample, whose split
# is fixed (train = first 9,000, test = last 1,000) whether or not full MNIST is present.
TRAINING_DATA = {"mnist": "mnist-10k", "mnist-10k": "mnist-10k",
                 "fashion-mnist": "fashion-mnist", "cifar10": "cifar10"}
DEFAULT_EPOCHS = {"lenet": 5, "cifar-cnn": 15}


class FeatureNetworkError(RuntimeError):
    """No feature network for a dataset, or a weight file that does not fit."""


# ------------------------------------------------------------------------------ networks


class LeNet(nn.Module):
    """conv5-pool-conv5-pool-fc120-fc84-fc10 (LeCun et al. 1998, LeNet-5), widened to 16/32
    channels with BatchNorm so that Fashion-MNIST clears 90% in a few CPU epochs."""

    name = "LeNet-84"
    feature_dim = 84

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width=(16, 32)):
        super().__init__()
        c1, c2 = width
        self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=2)   # c1 x 28 x 28
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 5)                       # c2 x 10 x 10
        self.bn2 = nn.BatchNorm2d(c2)
        self.fc1 = nn.Linear(c2 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The 84-unit layer, before its ReLU (a full-rank covariance for the Frechet distance)."""
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)   # c1 x 14 x 14
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)   # c2 x 5 x 5
        x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))
        return self.fc2(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(F.relu(self.features(x)))


class CifarCNN(nn.Module):
    """(conv3-BN-ReLU x2, pool) at 32, 64, 128 channels, then fc 128 -> 10: a small VGG."""

    name = "CNN-128"
    feature_dim = 128

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width=(32, 64, 128)):
        super().__init__()
        layers, c_in = [], in_channels
        for c in width:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c_in = c
        self.body = nn.Sequential(*layers)                       # c x 4 x 4
        self.fc1 = nn.Linear(c_in * 4 * 4, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The 128-unit layer, before its ReLU."""
        x = self.body(x)
        return self.fc1(x.reshape(x.shape[0], -1))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.relu(self.features(x)))


ARCHITECTURES = {"lenet": LeNet, "cifar-cnn": CifarCNN}


def build(arch: str, in_channels: int, num_classes: int = 10) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise FeatureNetworkError(f"unknown feature architecture {arch!r}; "
                                  f"known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](in_channels, num_classes)


# ---------------------------------------------------------------------- the trained network


class FeatureNetwork:
    """A trained classifier in eval mode: `features(images)` and `predict(images)`.

    images: float32 (N, C, H, W) in [-1, 1] (NumPy or CuPy), or uint8 (scaled here).
    Both return NumPy arrays; the work runs in batches on `device`.
    """

    def __init__(self, model: nn.Module, meta: dict, device: str = "cpu"):
        self.model = model.to(device) if device != "cpu" else model
        self.model.eval()
        self.meta = dict(meta)
        self.device = device

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def accuracy(self) -> float:
        return float(self.meta.get("test_accuracy", float("nan")))

    def _run(self, images, head: bool, batch_size: int = BATCH_SIZE) -> np.ndarray:
        out = []
        with no_grad():
            for i in range(0, len(images), batch_size):
                x = images[i:i + batch_size]
                if x.dtype == np.uint8:
                    x = to_signed_unit(x)
                x = Tensor(backend.to_device(np.asarray(x, dtype=np.float32)
                                             if isinstance(x, np.ndarray) else x, self.device))
                y = self.model(x) if head else self.model.features(x)
                out.append(backend.to_numpy(y.data))
        if not out:
            return np.zeros((0, self.model.feature_dim if not head else 10), np.float32)
        return np.concatenate(out).astype(np.float32)

    def features(self, images, batch_size: int = BATCH_SIZE) -> np.ndarray:
        """(N, feature_dim) activations of the feature layer."""
        return self._run(images, head=False, batch_size=batch_size)

    def logits(self, images, batch_size: int = BATCH_SIZE) -> np.ndarray:
        return self._run(images, head=True, batch_size=batch_size)

    def predict(self, images, batch_size: int = BATCH_SIZE) -> np.ndarray:
        """(N,) int64 predicted classes."""
        return self.logits(images, batch_size).argmax(1).astype(np.int64)

    def describe(self) -> str:
        """e.g. "tinygan LeNet-84 (fashion-mnist test accuracy 91.2%)"."""
        return (f"tinygan {self.name} ({self.meta.get('dataset', '?')} "
                f"{self.meta.get('test_split', 'test')} accuracy {100 * self.accuracy:.2f}%)")


def save_network(model: nn.Module, meta: dict, path) -> None:
    serialization.save({"state": model.state_dict(), "meta": dict(meta)}, path)


def load_network(path, device: str = "cpu") -> FeatureNetwork:
    """A FeatureNetwork from a weight file written by `save_network`."""
    path = Path(path)
    if not path.is_file():
        raise FeatureNetworkError(f"feature network weights not found: {path}")
    saved = serialization.load(path, device="cpu")
    if not isinstance(saved, dict) or "state" not in saved or "meta" not in saved:
        raise FeatureNetworkError(f"{path}: not a tinygan feature network (expected the keys "
                                  "'state' and 'meta')")
    meta = saved["meta"]
    model = build(meta["arch"], int(meta["in_channels"]), int(meta.get("num_classes", 10)))
    try:
        model.load_state_dict(saved["state"])
    except (KeyError, ValueError) as e:
        raise FeatureNetworkError(f"{path}: the weights do not fit {meta['arch']}: {e}") from e
    return FeatureNetwork(model, meta, device)


# ------------------------------------------------------------------------------- training


def random_shift(images: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each image by (dy, dx) uniform in [-shift, shift]^2, filling with background.

    One pass per offset, not per image: at most (2 shift + 1)^2 vectorised copies.
    """
    if shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (shift, shift), (shift, shift)))
    offsets = rng.integers(0, 2 * shift + 1, size=(n, 2))
    out = np.empty_like(images)
    for dy, dx in np.unique(offsets, axis=0):
        rows = np.flatnonzero((offsets[:, 0] == dy) & (offsets[:, 1] == dx))
        out[rows] = padded[rows, :, dy:dy + h, dx:dx + w]
    return out


def train_classifier(arch: str, train_images: np.ndarray, train_labels: np.ndarray,
                     test_images: np.ndarray, test_labels: np.ndarray, epochs: int,
                     seed: int = 0, batch_size: int = 128, lr: float = 2e-3,
                     shift: int = 0, device: str = "cpu", log=print) -> tuple[nn.Module, dict]:
    """Train `arch` with Adam on uint8 NCHW images (scaled to [-1, 1]); returns it and its meta.

    The learning rate follows a cosine from lr to 0 over all steps. shift > 0 translates
    each training image by up to `shift` pixels: on the 9,000 digits of the MNIST sample
    this is what takes held-out accuracy from ~97.3% to past 98%.
    """
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    num_classes = int(max(train_labels.max(), test_labels.max()) + 1)
    model = build(arch, train_images.shape[1], max(num_classes, 10))
    if device != "cpu":
        model.to(device)
    optimizer = Adam(model.parameters(), lr=lr)
    steps_per_epoch = -(-len(train_images) // batch_size)
    total, step = epochs * steps_per_epoch, 0
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train_images))
        running, seen = 0.0, 0
        for i in range(0, len(order), batch_size):
            idx = np.sort(order[i:i + batch_size])
            batch = random_shift(train_images[idx], shift, rng)
            x = Tensor(backend.to_device(to_signed_unit(batch), device))
            y = Tensor(backend.to_device(train_labels[idx], device))
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / total))
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += float(loss.item()) * len(idx)
            seen += len(idx)
            step += 1
        accuracy = evaluate_accuracy(model, test_images, test_labels, device)
        log(f"epoch {epoch + 1}/{epochs}: train loss {running / seen:.4f}, "
            f"test accuracy {100 * accuracy:.2f}% ({time.perf_counter() - start:.0f} s)")
    model.eval()
    meta = {"arch": arch, "in_channels": int(train_images.shape[1]),
            "num_classes": max(num_classes, 10), "feature_dim": model.feature_dim,
            "network": model.name, "test_accuracy": float(accuracy), "epochs": int(epochs),
            "seed": int(seed), "batch_size": int(batch_size), "lr": float(lr),
            "shift": int(shift),
            "n_train": int(len(train_images)), "n_test": int(len(test_images)),
            "train_seconds": round(time.perf_counter() - start, 1)}
    return model, meta


def evaluate_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray,
                      device: str = "cpu") -> float:
    """Fraction of `images` that `model` (switched to eval mode) labels correctly."""
    network = FeatureNetwork(model, {}, device)
    accuracy = float((network.predict(images) == labels).mean())
    return accuracy


def _training_data(dataset: str, root=None):
    name = TRAINING_DATA.get(dataset, dataset)
    train, test = load(name, "train", root=root), load(name, "test", root=root)
    if train.labels is None or test.labels is None:
        raise FeatureNetworkError(f"{dataset}: a feature classifier needs labelled data")
    return name, train, test


def train_for_dataset(dataset: str, epochs: int | None = None, seed: int = 0,
                      out=None, root=None, device: str = "cpu", shift: int = 0,
                      log=print) -> FeatureNetwork:
    """Train the feature network of `dataset` on its train split, score it on its test split,
    and write it to `out` (default: the shipped file for mnist / fashion-mnist)."""
    arch, shipped = NETWORKS.get(dataset, ("lenet", None))
    if dataset not in NETWORKS:
        raise FeatureNetworkError(f"no feature network is defined for {dataset!r}; "
                                  f"known: {', '.join(NETWORKS)}")
    epochs = epochs or DEFAULT_EPOCHS[arch]
    name, train, test = _training_data(dataset, root)
    log(f"training {arch} on {name}: {len(train)} train / {len(test)} test images, "
        f"{epochs} epochs, seed {seed}")
    model, meta = train_classifier(arch, train.images, train.labels, test.images, test.labels,
                                   epochs, seed, shift=shift, device=device, log=log)
    command = f"python -m tinygan.metrics.features train {dataset} --epochs {epochs} --seed {seed}"
    if shift:
        command += f" --shift {shift}"
    meta.update(dataset=name, test_split="held-out" if name == "mnist-10k" else "test",
                command=command)
    out = Path(out) if out is not None else WEIGHTS_DIR / shipped
    out.parent.mkdir(parents=True, exist_ok=True)
    save_network(model, meta, out)
    log(f"wrote {out}: test accuracy {100 * meta['test_accuracy']:.2f}%, "
        f"{meta['train_seconds']:.0f} s")
    return FeatureNetwork(model, meta, "cpu")


# ------------------------------------------------------------------------ finding a network


_LOADED: dict = {}


def cached_weights_path(dataset: str) -> Path:
    """Where a network trained on first use is kept: <cache>/metrics/<arch>-<dataset>.npz."""
    arch = NETWORKS[dataset][0]
    return cache_dir() / "metrics" / f"{arch}-{dataset}.npz"


def feature_network(dataset: str, device: str = "cpu", train_if_missing: bool = True,
                    root=None, log=print) -> FeatureNetwork:
    """The feature network for `dataset`: shipped, cached, or (CIFAR-10) trained now and cached.

    Loaded once per process and device, beside the caller's random numbers: building
    (or training) it draws none of them, so scoring a GAN as it trains changes nothing.
    """
    if dataset not in NETWORKS:
        raise FeatureNetworkError(
            f"no tinygan feature network for {dataset!r}; FID & co. are available for "
            f"{', '.join(NETWORKS)} (mode coverage for ring8 and grid25)")
    key = (dataset, device)
    if key in _LOADED:
        return _LOADED[key]
    _, shipped = NETWORKS[dataset]
    path = WEIGHTS_DIR / shipped if shipped else cached_weights_path(dataset)
    if not path.is_file():
        if shipped or not train_if_missing:
            raise FeatureNetworkError(
                f"feature network weights for {dataset} not found at {path}; make them with "
                f"python -m tinygan.metrics.features train {dataset}")
        log(f"no feature network for {dataset} yet: training one on your copy "
            f"(once; cached at {path})")
        with backend.fork_rng():
            train_for_dataset(dataset, out=path, root=root, log=log)
    with backend.fork_rng():  # its layers draw initial weights before the saved ones load
        network = load_network(path, device)
    _LOADED[key] = network
    return network


if __name__ == "__main__":
    from .cli import main  # the commands live apart: `floor` needs evaluate.py, which needs this
    raise SystemExit(main())
