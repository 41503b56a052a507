"""Class coverage: how many classes a generator produces, and how evenly.

A classifier labels generated samples; a generator that drops modes leaves classes empty
and skews the histogram. For Stacked MNIST (Metz et al. 2017, "Unrolled GANs", section
3.3.2; also VEEGAN and PacGAN) three digits make one of 1,000 modes.

NumPy only, float64.
"""
from __future__ import annotations

import numpy as np


def kl_to_uniform(counts) -> float:
    """KL(p || U_K) = sum_k p_k log(p_k K), with p = counts / sum(counts) and 0 log 0 = 0."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("kl_to_uniform: the histogram is empty (no samples)")
    p = counts / total
    seen = p > 0  # 0 log 0 = 0: empty classes add nothing
    return float((p[seen] * np.log(p[seen] * counts.size)).sum())


def class_coverage(predicted_labels, num_classes: int) -> dict:
    """histogram_k = #{i: label_i = k}, classes_covered = #{k: histogram_k > 0}, KL(p || uniform)."""
    labels = np.asarray(predicted_labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"class_coverage: expected a non-empty 1-D array of labels, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"class_coverage: labels must be integers, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"class_coverage: labels must lie in [0, {num_classes - 1}], "
                         f"got range [{labels.min()}, {labels.max()}]")
    histogram = np.bincount(labels, minlength=num_classes)
    return {
        "histogram": histogram.tolist(),
        "classes_covered": int((histogram > 0).sum()),
        "kl_to_uniform": kl_to_uniform(histogram),
    }


def stacked_modes(digit_predictions) -> dict:
    """mode = 100 d0 + 10 d1 + d2 of the three stacked digits; modes_covered (of 1,000) and KL to uniform."""
    digits = np.asarray(digit_predictions)
    if digits.ndim != 2 or digits.shape[1] != 3:
        raise ValueError(f"stacked_modes: expected (N, 3) digit predictions, got shape {digits.shape}")
    if not np.issubdtype(digits.dtype, np.integer):
        raise ValueError(f"stacked_modes: digits must be integers, got dtype {digits.dtype}")
    if digits.size and (digits.min() < 0 or digits.max() > 9):
        raise ValueError(f"stacked_modes: digits must lie in [0, 9], got range [{digits.min()}, {digits.max()}]")
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    result = class_coverage(modes, 1000)
    return {"modes_covered": result["classes_covered"], "kl_to_uniform": result["kl_to_uniform"]}
