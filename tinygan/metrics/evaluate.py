"""Scoring a GAN: FID & co. on a tinygan feature network, or mode coverage on 2D mixtures.

    scores = evaluate_gan(gan, dataset, config)        # ordered dict of floats
    meta = describe_scores(dataset, n_samples)          # what the numbers mean

Images (MNIST, Fashion-MNIST, CIFAR-10): G's samples and the real train split go through
the dataset's feature classifier (features.py), then
  fid              Frechet distance of the two fitted Gaussians (Heusel et al. 2017, eq. 6)
  kid_mean/_std    kernel distance, unbiased MMD^2, cubic kernel (Binkowski et al. 2018)
  precision, recall, density, coverage   k-NN manifolds, k = 5 (Kynkaanniemi et al. 2019;
                   Naeem et al. 2020)
  classes_covered, class_kl   the classifier's labels of the samples: how many classes
                   appear and KL(histogram || uniform)
The first entry is the headline (fid) that train.py plots. These are *not* Inception FIDs:
`metric_name()` says which network they come from, and `describe_scores` adds its test
accuracy, the real-data floor (real train vs real test through the same network, at the
test split's sample count) and the sample counts.

Stacked MNIST: modes_covered (of 1,000) and stacked_kl on 26,000 samples (stacked.py).

2D mixtures (ring8, grid25): the VEEGAN / PacGAN protocol (Srivastava et al. 2017; Lin et al.
2018) on 2,500 samples: modes_covered, high_quality_fraction, reverse_kl.

The real side (features, mu, sigma, floor) is computed once per dataset and network, kept
in memory and on disk under <cache>/metrics/, so evaluating every few hundred steps costs
only the generated side.

Under a process group of N ranks (a data-parallel run), evaluate_gan is a collective:
each rank draws and measures its share of the samples (the same z as one process draws,
rows [r n/N, (r + 1) n/N)), the measurements are gathered in order, and every rank
computes the scores of them all, the numbers one process would give.
"""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

import numpy as np

from .. import distributed, serialization
from ..data import load
from ..data.paths import cache_dir
from .coverage import class_coverage
from .features import BATCH_SIZE, FeatureNetwork, feature_network
from .frechet import feature_statistics, frechet_distance
from .kid import kernel_inception_distance
from .manifolds import prdc
from .mixtures import mixture_metrics
from .stacked import STACKED_SAMPLES, evaluate_stacked

DEFAULT_SAMPLES = 10_000      # generated images, and real reference images at most
MIXTURE_SAMPLES = 2_500       # the VEEGAN / PacGAN protocol
PRDC_K = 5
KID_SUBSET = 1_000
IMAGE_KEYS = ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage",
              "classes_covered", "class_kl")
POINT_KEYS = ("modes_covered", "high_quality_fraction", "reverse_kl")


class EvaluationError(ValueError):
    """A dataset or GAN that cannot be scored; the message says why."""


# ------------------------------------------------------------------------ the real side


def dataset_key(dataset) -> str:
    """The feature network's key for a dataset: "mnist" that fell back is "mnist-10k"."""
    return getattr(dataset, "name", str(dataset))


def metric_name(network: FeatureNetwork) -> str:
    """e.g. "FID (tinygan LeNet-84 features)": never to be read as an Inception FID."""
    return f"FID (tinygan {network.name} features)"


_REAL: dict = {}


def _network_id(network: FeatureNetwork) -> str:
    blob = json.dumps(network.meta, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _reference_sets(name: str, root=None):
    """(reference images = the train split, floor images = the test split) as uint8."""
    return load(name, "train", root=root), load(name, "test", root=root)


def real_statistics(name: str, network: FeatureNetwork, n_reference: int = DEFAULT_SAMPLES,
                    root=None, use_disk: bool = True) -> dict:
    """The real side of dataset `name`: reference features, mu, sigma, and the floor.

    Reference: the first min(n_reference, |train|) images of the train split. Floor:
    FID(reference, test split), the test split capped at n_reference images: the FID that
    a generator which reproduced the data perfectly would still get at that sample count.
    """
    key = (name, _network_id(network), int(n_reference))
    if key in _REAL:
        return _REAL[key]
    path = cache_dir() / "metrics" / f"real-{name}-{key[1]}-{n_reference}.npz"
    stats = None
    if use_disk and path.is_file():
        try:
            stats = serialization.load(path)
        except (serialization.CheckpointError, OSError, ValueError):
            stats = None  # a damaged cache is recomputed, and rewritten below
    if stats is None:
        train, test = _reference_sets(name, root)
        reference = train.images[:n_reference]
        held_out = test.images[:n_reference]
        features = network.features(reference)
        test_features = network.features(held_out)
        mu, sigma = feature_statistics(features)
        test_mu, test_sigma = feature_statistics(test_features)
        test_accuracy = (float((network.predict(held_out) == test.labels[:n_reference]).mean())
                         if test.labels is not None else float("nan"))
        stats = {"features": features.astype(np.float32), "mu": mu, "sigma": sigma,
                 "floor_fid": frechet_distance(test_mu, test_sigma, mu, sigma),
                 "n_reference": int(len(reference)), "n_floor": int(len(held_out)),
                 "floor_split": "test", "accuracy_here": test_accuracy}
        if use_disk:
            path.parent.mkdir(parents=True, exist_ok=True)
            serialization.save(stats, path)
    _REAL[key] = stats
    return stats


# ---------------------------------------------------------------------------- scoring


def score_images(fake: np.ndarray, network: FeatureNetwork, real: dict,
                 num_classes: int = 10) -> "OrderedDict[str, float]":
    """The image scores of float32 samples in [-1, 1] against a real_statistics() dict."""
    if not np.all(np.isfinite(fake)):
        raise EvaluationError("the generated samples contain NaN or infinity")
    return score_features(network.features(fake), network.predict(fake), real, num_classes)


def score_features(features: np.ndarray, predicted: np.ndarray, real: dict,
                   num_classes: int = 10) -> "OrderedDict[str, float]":
    """score_images from the samples' features and predicted classes."""
    mu, sigma = feature_statistics(features)
    scores = OrderedDict(fid=frechet_distance(mu, sigma, real["mu"], real["sigma"]))
    subset = min(KID_SUBSET, len(features), len(real["features"]))
    kid_mean, kid_std = kernel_inception_distance(real["features"], features, n_subsets=100,
                                                  subset_size=subset, seed=0)
    scores["kid_mean"], scores["kid_std"] = float(kid_mean), float(kid_std)
    scores.update({k: float(v) for k, v in prdc(real["features"], features, k=PRDC_K).items()
                   if k in ("precision", "recall", "density", "coverage")})
    classes = class_coverage(predicted, max(num_classes, 1))
    scores["classes_covered"] = float(classes["classes_covered"])
    scores["class_kl"] = float(classes["kl_to_uniform"])
    return scores


def score_points(samples: np.ndarray, dataset) -> "OrderedDict[str, float]":
    """The mixture scores of (N, 2) samples of a ring8 / grid25 dataset."""
    result = mixture_metrics(samples, dataset.centers, dataset.std)
    return OrderedDict((k, float(result[k])) for k in POINT_KEYS)


def _n_samples(config, n_samples, default):
    if n_samples is None:
        n_samples = (config or {}).get("eval_samples") or default
    n_samples = int(n_samples)
    if n_samples < 2:
        raise EvaluationError(f"need at least 2 samples to score, got {n_samples}")
    return n_samples


def evaluate_gan(gan, dataset, config: dict | None = None, n_samples: int | None = None,
                 seed: int = 0) -> "OrderedDict[str, float]":
    """Score G: an ordered dict of floats whose first entry is the headline.

    Images: fid, kid_mean, kid_std, precision, recall, density, coverage, classes_covered,
    class_kl on n_samples (default 10,000, or config["eval_samples"]) generated images.
    Points: modes_covered, high_quality_fraction, reverse_kl on 2,500 samples.
    What the numbers are measured with is in describe_scores(dataset, n_samples).
    """
    if gan.info.kind == "points":
        n = _n_samples(config, n_samples, MIXTURE_SAMPLES)
        points, = _measured_in_shares(gan, n, seed, lambda x: (x,))
        return score_points(points, dataset)
    name = dataset_key(dataset)
    if name == "stacked-mnist":  # every rank scores all of them: the same numbers
        return evaluate_stacked(gan, _n_samples(config, n_samples, STACKED_SAMPLES), seed)
    n = _n_samples(config, n_samples, DEFAULT_SAMPLES)
    root = (config or {}).get("data_dir")
    network = feature_network(name, device=getattr(gan, "device", "cpu") or "cpu", root=root)
    real = real_statistics(name, network, DEFAULT_SAMPLES, root=root)
    features, predicted, finite = _measured_in_shares(
        gan, n, seed, lambda fake: (network.features(fake), network.predict(fake),
                                    np.isfinite(fake).reshape(len(fake), -1).all(1)))
    if not finite.all():
        raise EvaluationError("the generated samples contain NaN or infinity")
    return score_features(features, predicted, real, network.meta.get("num_classes", 10))


def _measured_in_shares(gan, n: int, seed: int, measure) -> tuple:
    """measure(samples) -> a tuple of arrays with a row per sample, for n samples of G
    from `seed`: each rank measures its share, and every rank gets all rows in order."""
    rank, world = distributed.get_rank(), distributed.get_world_size()
    if world == 1:
        return measure(gan.samples(n, seed, batch_size=BATCH_SIZE))
    rows = slice(n * rank // world, n * (rank + 1) // world)
    mine = measure(gan.samples(n, seed, batch_size=BATCH_SIZE, rows=rows))
    shares = [None] * world
    distributed.all_gather_object(shares, mine)
    return tuple(np.concatenate(columns) for columns in zip(*shares))


def describe_scores(dataset, n_samples: int | None = None, config: dict | None = None) -> dict:
    """What evaluate_gan's numbers mean for `dataset`: the metric's name, the feature
    network and its test accuracy, the real-data floor and the sample counts (JSON-ready)."""
    if getattr(dataset, "centers", None) is not None:
        n = _n_samples(config, n_samples, MIXTURE_SAMPLES)
        return {"kind": "points", "dataset": dataset_key(dataset),
                "protocol": "VEEGAN/PacGAN: nearest centre, high quality within 3 std",
                "modes": int(len(dataset.centers)), "std": float(dataset.std),
                "generated_samples": n}
    name = dataset_key(dataset)
    if name == "stacked-mnist":
        network = feature_network("mnist-10k")
        return {"kind": "stacked-mnist", "dataset": name,
                "protocol": "each channel labelled by the tinygan MNIST classifier; mode = "
                            "100 d0 + 10 d1 + d2 of 1,000 (Metz et al. 2017)",
                "feature_network": f"tinygan {network.name}",
                "classifier_test_accuracy": network.accuracy,
                "generated_samples": _n_samples(config, n_samples, STACKED_SAMPLES)}
    n = _n_samples(config, n_samples, DEFAULT_SAMPLES)
    root = (config or {}).get("data_dir")
    network = feature_network(name, root=root)
    real = real_statistics(name, network, DEFAULT_SAMPLES, root=root)
    meta = network.meta
    notes = []
    if real["n_floor"] < n:
        notes.append(f"the {meta.get('dataset', name)} test split has only {real['n_floor']} "
                     f"images, so the floor is measured at {real['n_floor']} samples, fewer "
                     f"than the {n} generated; FID falls as samples grow, so the floor is "
                     f"an upper estimate")
    if real["n_reference"] < DEFAULT_SAMPLES:
        notes.append(f"the reference is the whole train split: {real['n_reference']} images")
    return {
        "kind": "image",
        "dataset": name,
        "metric": metric_name(network),
        "not_inception": "these scores use a small tinygan classifier, not Inception-v3; "
                         "they are not comparable with published FIDs",
        "feature_network": f"tinygan {network.name}",
        "feature_dim": int(meta.get("feature_dim", 0)),
        "classifier_dataset": meta.get("dataset"),
        "classifier_test_accuracy": float(meta.get("test_accuracy", float("nan"))),
        "classifier_command": meta.get("command"),
        "real_floor_fid": float(real["floor_fid"]),
        "reference_samples": int(real["n_reference"]),
        "floor_samples": int(real["n_floor"]),
        "generated_samples": n,
        "kid_subset_size": min(KID_SUBSET, n, int(real["n_reference"])),
        "prdc_k": PRDC_K,
        "notes": notes,
    }
