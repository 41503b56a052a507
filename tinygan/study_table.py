"""The mode-collapse study's numbers in words: a line per run, the summary, the table."""
from __future__ import annotations

import math

import numpy as np

N_SAMPLES = 2500  # VEEGAN's and PacGAN's sample count for the 2D metrics
SCORES = ("modes_covered", "high_quality_fraction", "reverse_kl")  # the table's columns


def scores_line(scores: dict) -> str:
    """'7 modes, 5.0% high quality, reverse KL 0.505'."""
    return (f"{scores['modes_covered']} modes, {100 * scores['high_quality_fraction']:.1f}% "
            f"high quality, reverse KL {_num(scores['reverse_kl'])}")


def run_line(run: dict, elapsed: float) -> str:
    """A finished run, for the study's log."""
    return (f"[{elapsed:7.1f} s] {run['method']:>24s} {run['dataset']:6s} seed {run['seed']}: "
            f"{scores_line(run)} ({run['seconds']:.0f} s)"
            + (f", diverged at step {run['diverged_at']}" if run["diverged_at"] else ""))


def summarise(runs, methods, datasets) -> dict:
    """method -> dataset -> mean and std (over seeds) of each score."""
    summary = {}
    for m in methods:
        summary[m] = {}
        for d in datasets:
            mine = [r for r in runs if r["method"] == m and r["dataset"] == d]
            entry = {}
            for key in SCORES:
                values = np.array([r[key] for r in mine], dtype=np.float64)
                entry[key] = {"mean": float(values.mean()), "std": float(values.std())}
            entry["modes"] = len(mine[0]["histogram"])
            entry["seeds"] = len(mine)
            summary[m][d] = entry
    return summary


def table(summary, methods, datasets, seeds, length: str = "") -> str:
    """The markdown table: one row per method, three columns per dataset."""
    head = "| method |"
    rule = "|---|"
    for d in datasets:
        head += f" {d} modes | {d} high quality % | {d} reverse KL |"
        rule += "---:|---:|---:|"
    lines = [f"Mode collapse on 2D mixtures: mean +- std over {seeds} seed(s), "
             f"{N_SAMPLES} samples per run" + (f"; {length}." if length else "."), "", head, rule]
    for m in methods:
        row = f"| {m} |"
        for d in datasets:
            e = summary[m][d]
            modes, hq, kl = e["modes_covered"], e["high_quality_fraction"], e["reverse_kl"]
            row += (f" {modes['mean']:.1f} +- {modes['std']:.1f} / {e['modes']} |"
                    f" {100 * hq['mean']:.1f} +- {100 * hq['std']:.1f} |"
                    f" {_num(kl['mean'])} +- {_num(kl['std'])} |")
        lines.append(row)
    return "\n".join(lines) + "\n"


def _num(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "inf"
