"""The GAN doctor: what a run's logs say is happening, in plain words, with the evidence.

    python -m tinygan.doctor RUN          # reads RUN/losses.csv, gradients.csv, coverage.csv
                                          # and metrics.csv, whichever are there

    checkup = Checkup(training, log=folder.log, every=50)   # during training: logs
    training.fit([checkup])                                 # gradients.csv and coverage.csv,
                                                            # and warns in one line

What it looks for, each from numbers the run logged:

- D wins: D(x) -> 1 and D(G(z)) -> 0 for a long stretch (losses.csv). D is sure of every
  sample, so it tells G little.
- G's gradients vanish: the norm of G's gradient falls a hundredfold from the start of the
  run (gradients.csv). With the minimax loss log(1 - D(G(z))) this is what D winning does
  to G (its gradient with respect to D's logit is D(G(z)); lesson 09).
- Oscillation: D(G(z)) swings again and again between below 0.2 and above 0.6.
- Mode collapse: G's samples crowd onto a few modes or classes: the effective number of
  modes they reach (coverage.csv, exp of the entropy of their shares) is a third of the
  data's or less (for images, whose early samples a classifier labels at random, only
  after it was twice as high), or the modes or classes covered in metrics.csv fall to
  half their best.
- A loss about to blow up: a gradient norm a thousand times its early size and still
  rising, or a loss ten times its usual size and rising.

A run in which none of these shows is called healthy, with the numbers that say so.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from .gradients import GradientNorms
from .metrics.features import FeatureNetworkError, feature_network

COVERAGE_LOG = "coverage.csv"
COVERAGE_SAMPLES = {"points": 1000, "image": 500}  # a few hundredths of a second per check
COVERAGE_SEED = 12345  # G's coverage is measured on the same z every time
LOG_FILES = ("losses.csv", "gradients.csv", COVERAGE_LOG, "metrics.csv")


@dataclass
class Finding:
    """One thing the doctor sees: a title, the numbers behind it, and what to try."""
    key: str
    title: str
    evidence: list = field(default_factory=list)
    advice: str = ""

    def line(self) -> str:
        return f"{self.title}: {'; '.join(self.evidence)}"


# ------------------------------------------------------------------------ the rules


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """The mean of each `width` consecutive values (len(x) - width + 1 of them)."""
    width = max(1, min(width, len(x)))
    return np.convolve(x, np.ones(width) / width, mode="valid")


def _longest_stretch(mask: np.ndarray):
    """(first, last) index of the longest run of True in mask, or None."""
    best, start = None, None
    for i, on in enumerate(list(mask) + [False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            if best is None or i - start > best[1] - best[0] + 1:
                best = (start, i - 1)
            start = None
    return best


#: variants whose D is trained with binary cross-entropy on probabilities D(x)
BCE_VARIANTS = ("vanilla", "dcgan", "cgan")


def d_wins(losses: dict, config: dict | None = None):
    """D(x) > 0.9 and D(G(z)) < 0.1 (means over a few steps) for a quarter of the run. Where
    only D's loss is logged (cgan), its BCE below 0.2, which needs D(x) > 0.82 and
    D(G(z)) < 0.18."""
    n, config, width = len(losses["step"]), config or {}, max(5, len(losses["step"]) // 100)
    if "d_real" in losses and "d_fake" in losses:
        shown = [("d_real", "D(x)"), ("d_fake", "D(G(z))")]
        winning = (_smooth(losses["d_real"], width) > 0.9) & (_smooth(losses["d_fake"], width) < 0.1)
    elif config.get("variant") in BCE_VARIANTS and not config.get("label_smoothing"):
        shown = [("d_loss", "D's loss -log D(x) - log(1 - D(G(z)))")]
        winning = _smooth(losses["d_loss"], width) < 0.2
    else:
        return None
    stretch = _longest_stretch(winning) if n >= 10 else None
    if stretch is None or stretch[1] - stretch[0] + width < max(20, n // 4):
        return None
    a, b = stretch[0], stretch[1] + width - 1  # back to rows of the log
    averages = " and ".join(f"{label} {losses[c][a:b + 1].mean():.2f}" for c, label in shown)
    return Finding("d_wins", "D wins", [
        f"{averages} on average from step {losses['step'][a]:.0f} to {losses['step'][b]:.0f} "
        f"({b - a + 1} of {n} steps): D is sure of every sample, real or fake"],
        "slow D down (a lower --lr-d) or make its task harder (--label-smoothing)")


def _start_and_now(values: np.ndarray):
    """(largest of the first quarter, median of the last quarter) of a logged series."""
    q = max(1, len(values) // 4)
    return float(np.max(values[:q])), float(np.median(values[-max(2, q):]))


def _steps(steps: np.ndarray) -> str:
    """'step 1' or 'steps 40-60'."""
    return (f"step {steps[0]:.0f}" if len(steps) == 1 or steps[0] == steps[-1]
            else f"steps {steps[0]:.0f}-{steps[-1]:.0f}")


def g_vanishes(gradients: dict):
    """G's gradient norm now (median of the last quarter of rows) is a hundredth of its
    largest in the first quarter, or less."""
    if gradients is None or "G" not in gradients or len(gradients["G"]) < 3:
        return None
    start, now = _start_and_now(gradients["G"])
    if not now < start / 100:
        return None
    steps, q = gradients["step"], max(1, len(gradients["step"]) // 4)
    evidence = [f"the norm of G's gradient fell from {start:.2g} ({_steps(steps[:q])}) to "
                f"{now:.2g} ({_steps(steps[-max(2, q):])}), {start / max(now, 1e-300):,.0f} "
                f"times smaller"]
    g_layers = [c for c in gradients if c.startswith("G/")]
    if g_layers:
        weakest = min(g_layers, key=lambda c: gradients[c][-1])
        evidence.append(f"G's layer {weakest[2:]} now gets a gradient of norm "
                        f"{gradients[weakest][-1]:.2g}")
    return Finding("g_vanishes", "G's gradients vanish", evidence,
                   "G is barely told which way to move: look at what D does (D(x), D(G(z)) "
                   "in losses.csv) and at G's loss")


def oscillation(losses: dict):
    """D(G(z)) (smoothed) goes from below 0.2 to above 0.6, or back, six times or more."""
    if "d_fake" not in losses or len(losses["step"]) < 20:
        return None
    n = len(losses["step"])
    fake = _smooth(losses["d_fake"], max(5, n // 100))
    state, swings, first = None, 0, None
    for i, v in enumerate(fake):
        new = "low" if v < 0.2 else "high" if v > 0.6 else state
        if state is not None and new != state:
            swings += 1
            first = i if first is None else first
        state = new
    if swings < 6:
        return None
    return Finding("oscillation", "oscillation", [
        f"D(G(z)) swung {swings} times between below 0.2 and above 0.6 after step "
        f"{losses['step'][first]:.0f}: G fools D, D catches up, and again"],
        "the two players chase each other instead of settling: lower both learning rates, "
        "or let D learn a little faster (TTUR), or constrain D (spectral norm, lesson 15)")


def blow_up(losses: dict, gradients: dict | None):
    """A gradient norm 1000 times its early size and rising over the last three rows, or a
    loss (smoothed) ten times its median, above 10 and rising; or values that are no
    longer finite."""
    evidence = []
    for name, table in (("losses.csv", losses), ("gradients.csv", gradients or {})):
        for column, values in table.items():
            if column != "step" and len(values) and not np.all(np.isfinite(values)):
                bad = int(np.argmin(np.isfinite(values)))
                evidence.append(f"{column} is {values[bad]} at step {table['step'][bad]:.0f} "
                                f"({name})")
    for net in ("G", "D"):
        values = (gradients or {}).get(net)
        if values is None or len(values) < 4:
            continue
        early = float(np.median(values[:len(values) // 2]))
        if values[-1] > 1000 * early and values[-3] < values[-2] < values[-1]:
            evidence.append(f"the norm of {net}'s gradient grew from {early:.2g} to "
                            f"{values[-1]:.2g} and is still rising")
    n = len(losses["step"])
    for column, values in losses.items():
        if column in ("step", "epoch", "d_real", "d_fake") or n < 30:
            continue
        width = max(5, n // 20)
        size = np.abs(_smooth(values, width))
        ends = size[[-1 - 2 * width, -1 - width, -1]] if len(size) > 2 * width else size[-1:]
        if size[-1] > max(10.0, 10 * np.median(size)) and np.all(np.diff(ends) > 0):
            evidence.append(f"|{column}| is {size[-1]:.3g} over the last {width} steps, "
                            f"{size[-1] / np.median(size):.0f} times its usual size, and rising")
    if not evidence:
        return None
    return Finding("blow_up", "a loss about to blow up", evidence,
                   "lower the learning rates; a critic needs its Lipschitz constraint "
                   "(clipping, gradient penalty or spectral norm, lessons 12, 13, 15)")


def coverage_unit(coverage: dict | None):
    """"modes" (2D mixtures) or "classes" (images): what coverage.csv counts, or None."""
    for unit in ("modes", "classes"):
        if coverage is not None and len(coverage.get(f"effective_{unit}", ())):
            return unit
    return None


def collapse(coverage: dict | None, metrics: dict | None):
    """G's samples reach an effective third of the modes or fewer (median of the last third
    of coverage.csv); for images, whose early samples a classifier labels at random, only
    once they reached twice as many classes. Or metrics.csv's modes or classes covered fell
    to half their best."""
    evidence, unit = [], coverage_unit(coverage)
    if unit and len(coverage[f"effective_{unit}"]) >= 3:
        eff, k = coverage[f"effective_{unit}"], int(coverage[unit][-1])
        last = max(2, len(eff) // 3)
        now, best = float(np.median(eff[-last:])), int(np.argmax(eff))
        if now <= k / 3 and (unit == "modes" or now <= eff[best] / 2):
            evidence.append(
                f"G's samples spread over an effective {now:.1f} of {k} {unit} from step "
                f"{coverage['step'][-last]:.0f} on ({COVERAGE_LOG}), "
                f"{100 * float(np.mean(coverage['largest_share'][-last:])):.0f}% of them "
                f"on the most crowded one (at best {eff[best]:.1f}, at step "
                f"{coverage['step'][best]:.0f})")
    for column in ("modes_covered", "classes_covered"):
        values = (metrics or {}).get(column)
        if values is None or len(values) < 3:
            continue
        best = int(np.argmax(values))
        if values[best] >= 2 and values[-1] <= values[best] / 2:
            evidence.append(f"{column} fell from {values[best]:g} (step "
                            f"{metrics['step'][best]:.0f}) to {values[-1]:g} (step "
                            f"{metrics['step'][-1]:.0f}, metrics.csv)")
    if not evidence:
        return None
    return Finding("collapse", "mode collapse", evidence,
                   "G sends most z to a few modes that fool D now; D will chase them and G "
                   "will jump elsewhere (lesson 10): try --pack 2, --minibatch-discrimination "
                   "or --feature-matching, or a lower --lr-g")


def diagnose(losses: dict, gradients: dict | None = None, coverage: dict | None = None,
             metrics: dict | None = None, config: dict | None = None) -> list:
    """Every Finding the logs support ([] for a healthy run). Each log is a dict of
    column -> array with a "step" column, as read_log returns."""
    found = [f for f in (d_wins(losses, config), g_vanishes(gradients), oscillation(losses),
                         blow_up(losses, gradients), collapse(coverage, metrics)) if f]
    keys = {f.key for f in found}
    if {"d_wins", "g_vanishes"} <= keys:  # one story: the saturating game of lesson 09
        wins, vanish = (next(f for f in found if f.key == k) for k in ("d_wins", "g_vanishes"))
        advice = ("G's minimax loss log(1 - D(G(z))) passes back a gradient proportional to "
                  "D(G(z)), which is 0 when D wins (lesson 09): drop --minimax for the "
                  "non-saturating loss -log D(G(z)); and " if (config or {}).get("minimax")
                  else "") + wins.advice
        found = [Finding("d_wins_g_vanishes", "D wins, G's gradients vanish",
                         wins.evidence + vanish.evidence, advice)] + [
            f for f in found if f.key not in ("d_wins", "g_vanishes")]
    return found


def summary(losses: dict, gradients: dict | None, coverage: dict | None) -> list:
    """The numbers of the last quarter of the run that a healthy verdict rests on."""
    n = len(losses["step"])
    tail = slice(n - max(1, n // 4), n)
    lines = []
    if "d_real" in losses and "d_fake" in losses:
        lines.append(f"D(x) {losses['d_real'][tail].mean():.2f} and D(G(z)) "
                     f"{losses['d_fake'][tail].mean():.2f} on average over the last "
                     f"{tail.stop - tail.start} steps: D is not sure, G is still learning")
    if gradients is not None and len(gradients.get("G", ())) >= 2:
        start, now = _start_and_now(gradients["G"])
        lines.append(f"the norm of G's gradient went from {start:.2g} to {now:.2g}")
    unit = coverage_unit(coverage)
    if unit:
        lines.append(f"G's samples spread over an effective "
                     f"{coverage[f'effective_{unit}'][-1]:.1f} of {int(coverage[unit][-1])} "
                     f"{unit}" + (" (as the classifier labels them)" if unit == "classes" else ""))
    return lines


def report(findings: list, losses: dict, gradients=None, coverage=None, missing=()) -> str:
    """The doctor's verdict as text: each finding with its evidence and what to try."""
    steps = losses["step"]
    out = [f"{len(steps)} steps logged (to step {steps[-1]:.0f})" if len(steps) else
           "no steps logged"]
    if not findings:
        out.append("healthy: no sign of D winning, vanishing or exploding gradients, "
                   "oscillation or mode collapse")
        out += [f"  - {line}" for line in summary(losses, gradients, coverage)]
    for f in findings:
        out.append(f"{f.title}:")
        out += [f"  - {line}" for line in f.evidence]
        out.append(f"  what to try: {f.advice}")
    out += [f"(no {name}: {why})" for name, why in missing]
    return "\n".join(out)


# --------------------------------------------------------- watching a run as it trains


def coverage_shares(gan, dataset, n: int | None = None):
    """The share of n samples of G nearest to each mode (2D mixtures), or given each class
    by the dataset's feature classifier (images); None where there is no classifier."""
    n = n or COVERAGE_SAMPLES[gan.info.kind]
    if gan.info.kind == "points":
        x = gan.samples(n, COVERAGE_SEED)
        centers = np.asarray(dataset.centers, dtype=np.float64)
        nearest = ((x[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
        return np.bincount(nearest, minlength=len(centers)) / n
    try:
        network = feature_network(getattr(dataset, "name", ""), device=gan.device,
                                  train_if_missing=False)
    except FeatureNetworkError:
        return None
    labels = network.predict(gan.samples(n, COVERAGE_SEED))
    return np.bincount(labels, minlength=network.meta.get("num_classes", 10)) / n


def effective_modes(shares) -> float:
    """exp(entropy of the shares): K for an even spread over K modes, 1 for one mode."""
    p = np.asarray(shares, dtype=np.float64)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def _table(rows: list) -> dict:
    """A list of {column: value} rows as {column: float array}."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    return {c: np.array([float(row.get(c, math.nan)) for row in rows]) for c in columns}


class Checkup:
    """A training callback: the doctor watching a run as it trains.

    Every `every` steps (and at step 1, for a baseline) it logs G's and D's per-layer
    gradient norms (gradients.csv, tinygan.gradients) and how G's samples spread over the
    modes or classes (coverage.csv: step, effective_modes, modes, largest_share; for
    images effective_classes and classes), and runs the doctor's rules on everything so
    far: when a finding appears, `warn` gets one line.
    Sampling G uses a random generator of its own, so the training is unchanged.
    """

    def __init__(self, training, log=None, every: int = 50, warn=None):
        self.training, self.log = training, log
        self.gradients = GradientNorms(training, log, every)
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self.losses: list = []
        self.coverage: list = []
        self.findings: list = []

    def __call__(self, training, losses) -> None:
        self.losses.append({"step": training.step, **losses})
        self.gradients(training, losses)
        if not self.gradients.due(training.step):
            return
        shares = coverage_shares(training.gan, training.dataset)
        if shares is not None:
            unit = "modes" if training.gan.info.kind == "points" else "classes"
            row = {"step": training.step, f"effective_{unit}": effective_modes(shares),
                   unit: len(shares), "largest_share": float(shares.max())}
            self.coverage.append(row)
            if self.log is not None:
                self.log(COVERAGE_LOG, list(row),
                         [training.step, *(f"{v:.4g}" for v in list(row.values())[1:])])
        before = {f.key for f in self.findings}
        self.findings = self.diagnose()
        for f in self.findings:
            if f.key not in before:
                self.warn(f"doctor, step {training.step}: {f.line()}")

    def diagnose(self) -> list:
        """The doctor's findings on the run so far."""
        gradients = _table([{"step": s, **c} for s, c in self.gradients.rows])
        return diagnose(_table(self.losses), gradients or None,
                        _table(self.coverage) or None, None, self.training.config)

    def remove(self) -> None:
        self.gradients.remove()


# ------------------------------------------------------------------ the command line


def read_log(path: str):
    """A CSV log as {column: float array} (text that is not a number reads as NaN), or
    None when the file is missing or has no rows."""
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row]
    if not rows:
        return None

    def number(text):
        try:
            return float(text)
        except (TypeError, ValueError):
            return math.nan
    return {c: np.array([number(row.get(c)) for row in rows]) for c in rows[0]}


WHY_MISSING = {
    "gradients.csv": "G's and D's gradient norms are logged by tinygan.doctor.Checkup",
    COVERAGE_LOG: "G's spread over the modes or classes is logged by tinygan.doctor.Checkup",
    "metrics.csv": "--eval-every N scores G (FID or mode coverage) every N steps",
}


def examine(folder: str) -> str:
    """The doctor's report on the run in `folder`."""
    logs = {name: read_log(os.path.join(folder, name)) for name in LOG_FILES}
    if logs["losses.csv"] is None:
        raise FileNotFoundError(f"{folder}: no losses.csv with rows (is it a tinygan run "
                                "folder?)")
    config = {}
    if os.path.exists(os.path.join(folder, "config.json")):
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
    losses, gradients, coverage = (logs[n] for n in LOG_FILES[:3])
    findings = diagnose(losses, gradients, coverage, logs["metrics.csv"], config)
    missing = [(name, why) for name, why in WHY_MISSING.items() if logs[name] is None]
    if "d_fake" not in losses:
        missing.append(("D(x), D(G(z)) in losses.csv", "a critic's scores are not "
                        "probabilities, so oscillation is not checked"
                        + ("" if config.get("variant") in BCE_VARIANTS else ", nor D winning")))
    title = (f"{config.get('variant', '?')} on {config.get('dataset', '?')}"
             + (", minimax loss" if config.get("minimax") else ""))
    return f"{folder} ({title})\n" + report(findings, losses, gradients, coverage, missing)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinygan.doctor",
        description="Read a training run's logs and say what is happening, with the evidence.")
    parser.add_argument("run", help="a run folder (python -m tinygan.train --out RUN)")
    args = parser.parse_args(argv)
    try:
        print(examine(args.run))
    except (FileNotFoundError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
