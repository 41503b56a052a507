"""`python -m tinygan.evaluate RUN [--samples N] [--device cuda]`

Scores a run's generator (its checkpoints/latest.npz): FID & co. on a tinygan feature
network for images, mode coverage for 2D mixtures, Stacked MNIST modes for stacked-mnist.
Writes RUN/metrics.json (scores and what they were measured with) and prints a table.
The FIDs here come from small tinygan classifiers, not Inception-v3: they compare runs of
tinygan with each other, not with published numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from .files import atomic_write
from .metrics.evaluate import describe_scores, evaluate_gan
from .sample import load_gan


def evaluate_run(run: str, n_samples: int | None = None, device: str | None = None,
                 seed: int = 0) -> dict:
    """Load RUN, score it, write RUN/metrics.json atomically; returns what was written."""
    gan, config, dataset = load_gan(run, device)
    start = time.perf_counter()
    scores = evaluate_gan(gan, dataset, config, n_samples=n_samples, seed=seed)
    meta = describe_scores(dataset, n_samples, config)
    report = {"run": os.path.abspath(run), "variant": config.get("variant"),
              "dataset": config.get("dataset"), "seed": seed,
              "seconds": round(time.perf_counter() - start, 1),
              "scores": dict(scores), "about": meta}
    folder = run if os.path.isdir(run) else os.path.dirname(os.path.abspath(run))
    text = json.dumps(report, indent=2, allow_nan=True) + "\n"
    atomic_write(os.path.join(folder, "metrics.json"), lambda f: f.write(text.encode()))
    return report


def format_report(report: dict) -> str:
    """A readable table of the scores, then the lines that say what they mean."""
    about = report["about"]
    lines = [f"{report['variant']} on {report['dataset']}"]
    if about.get("metric"):
        lines.append(f"{about['metric']}; {about['not_inception']}")
    width = max(len(k) for k in report["scores"])
    for key, value in report["scores"].items():
        shown = (f"{value:.0f}" if key in ("classes_covered", "modes_covered") and
                 math.isfinite(value) else f"{value:.4g}")
        lines.append(f"  {key:<{width}}  {shown:>10}")
    if about.get("kind") == "image":
        lines += [f"feature network   {about['feature_network']}, "
                  f"{100 * about['classifier_test_accuracy']:.2f}% on "
                  f"{about['classifier_dataset']} test",
                  f"real-data floor   FID {about['real_floor_fid']:.4g} (real train vs "
                  f"real test, {about['floor_samples']} test images)",
                  f"samples           {about['generated_samples']} generated vs "
                  f"{about['reference_samples']} real train images"]
        lines += [f"note              {n}" for n in about.get("notes", [])]
    else:
        if about.get("protocol"):
            lines.append(f"protocol          {about['protocol']}")
        lines.append(f"samples           {about['generated_samples']} generated")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinygan.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a run folder (or a checkpoint .npz)")
    p.add_argument("--samples", type=int, default=None,
                   help="generated samples (default 10,000; 2,500 for 2D; 26,000 for "
                        "stacked-mnist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="where G runs: cpu (default) or cuda")
    args = p.parse_args(argv)
    try:
        report = evaluate_run(args.run, args.samples, args.device, args.seed)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    folder = args.run if os.path.isdir(args.run) else os.path.dirname(args.run)
    print(f"wrote {os.path.join(folder, 'metrics.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
