"""`python -m tinygan.study mode-collapse`: does a remedy really cover more modes?

Trains the vanilla GAN and each remedy for mode collapse on the 2D mixtures ring8 and
grid25, over several seeds, with the very GAN classes that `python -m tinygan.train` uses,
and scores every run with the protocol of VEEGAN (Srivastava et al. 2017, sec. 5.1) and
PacGAN (Lin et al. 2018, sec. 5.1):

  draw 2,500 samples from G; a sample is high quality when it lies within 3 std of its
  nearest centre; a mode is covered when at least one high-quality sample is nearest to
  it; reverse KL compares the modes' histogram of high-quality samples with uniform.

The out folder gets
  results.json     every run's numbers (and the settings), then mean and std per method
  results.md       the table: modes covered, high-quality %, reverse KL (mean +- std)
  METHOD.png       one figure per method: generated points over the real mixture,
                   a row per dataset, a column per seed
  METHOD-trajectory.png   with --log-every: modes covered and high-quality % over
                   training, a line per seed
  runs/            each finished run (METHOD-DATASET-seedN.json, its samples too), and a
                   checkpoint of each run in progress every 5,000 steps (.npz)

A study stopped midway (killed, or the machine's session over) carries on where it was
when the same command is given again: finished runs are read back, not trained again,
and a run in progress resumes from its last checkpoint bit-identically. A run is reused
only when its settings are exactly those asked for (`--fresh` trains everything anew).

By default every run uses its variant's 2D defaults (steps and learning rates included);
`--steps`, `--lr` and `--lr-decay linear` trade length for a larger learning rate that
falls to 0 by the end (benchmarks/mode-collapse/README.md shows what each protocol gives).
`--batch-size` is what D judges per step, as in PacGAN's paper: samples for the unpacked
methods, packs of m samples for PacGAN. `--log-every N` scores every run every N steps
as well (printed as it trains, and kept as each run's trajectory in results.json), which
shows when a run finds its modes and when it sharpens them.

`mpiexec -n N python -m tinygan.study ...` deals the runs out to N processes (OUT on a
filesystem they all see): each run is trained whole by one, to the same bits as alone
(a batch of 100 points split N ways would spend its step averaging gradients).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import os
import signal
import sys
import time

import numpy as np

from . import distributed, launch, threads
from .data import load as load_data
from .files import atomic_path
from .gans import DataInfo, defaults
from .metrics import mixture_metrics
from .plots import save_mixture_scatters, save_score_trajectories
from .serialization import load, save
from .study_table import N_SAMPLES, SCORES, run_line, scores_line, summarise, table
from .training import Training, TrainingDiverged

#: method -> (variant, the remedy's settings on top of the variant's 2D defaults)
METHODS = {
    "vanilla": ("vanilla", {}),
    "feature-matching": ("vanilla", {"feature_matching": True}),
    "minibatch-discrimination": ("vanilla", {"minibatch_discrimination": True}),
    "pacgan2": ("vanilla", {"pack": 2}),
    "pacgan4": ("vanilla", {"pack": 4}),
    "wgan-gp": ("wgan-gp", {}),
}
DATASETS = ("ring8", "grid25")
CHECKPOINT_EVERY = 5000  # steps between the checkpoints of a run in progress


# ------------------------------------------------------------------------ one run


def run_config(method: str, dataset: str, seed: int, steps: int | None,
               lr: float | None = None, lr_decay: str | None = None,
               batch_size: int | None = None) -> dict:
    """The settings `python -m tinygan.train VARIANT DATASET --REMEDY` would use.

    PacGAN's protocol for the batch: D judges as many packs as the unpacked D judges
    samples, so packing m draws m x batch_size samples (`--batch-size 200 --pack 2` to
    `python -m tinygan.train`), and the comparison with vanilla is at equal D batches.
    """
    variant, remedy = METHODS[method]
    config = defaults(variant, DataInfo.of(load_data(dataset)))
    config.update(remedy)
    if steps is not None:
        config["steps"] = int(steps)
    if lr is not None:  # as --lr-g LR --lr-d LR
        config["lr_g"] = config["lr_d"] = float(lr)
    if lr_decay is not None:  # as --lr-decay
        config["lr_decay"] = lr_decay
    if batch_size is not None:
        config["batch_size"] = int(batch_size)
    config["batch_size"] *= int(config.get("pack", 1))
    config.update(variant=variant, method=method, dataset=dataset, seed=int(seed),
                  device="cpu")
    return config


def run_path(folder: str, config: dict, ext: str) -> str:
    """Where a run's result (".json") or checkpoint (".npz") lives in the study's runs/."""
    return os.path.join(folder, f"{config['method']}-{config['dataset']}-seed{config['seed']}"
                        f"{ext}")


def _plain(config: dict) -> dict:
    """The config as it reads back from JSON (tuples become lists), to compare settings."""
    return json.loads(json.dumps(config))


def finished_run(folder: str | None, config: dict) -> dict | None:
    """The run of these exact settings that a study already finished in `folder`, if any."""
    if not folder:
        return None
    path = run_path(folder, config, ".json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            stored = json.load(f)
        if stored["config"] != _plain(config):
            return None  # other settings: trained again, and the file replaced
        return stored["run"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a finished study run ({type(e).__name__}: {e}); "
                         "delete it or give --fresh") from e


def _save_checkpoint(path: str, state: dict) -> None:
    """A run in progress: the training's one checkpoint format, plus the time it has taken
    and its trajectory so far."""
    save(state, path)


def train_and_score(config: dict, folder: str | None = None, fresh: bool = False,
                    threads_setting: int | str | None = None, most_threads: int | None = None
                    ) -> dict:
    """Train one GAN with tinygan.train's loop, then score 2,500 of its samples.

    With a `folder` (the study's runs/), the run is checkpointed every CHECKPOINT_EVERY
    steps and resumes from the checkpoint of the same settings there (unless `fresh`);
    the finished run is written there too, and its checkpoint removed. It computes on
    `threads_setting` threads (a number, or "auto": a ThreadTuner over 1, 2, 4, ... up
    to `most_threads`, default the cores); the count changes no result.
    """
    tuner = None
    setting = threads.setting(threads_setting)
    if setting == "auto":
        tuner = threads.ThreadTuner(threads.candidate_counts(most_threads),
                                    report=lambda line: None)
    else:
        threads.set_num_threads(setting)
    start = time.perf_counter()
    training = Training(config)
    dataset = training.dataset

    def score():
        # from a generator of their own: scoring on the way moves no training randomness
        samples = training.gan.samples(N_SAMPLES, config["seed"] + 1).astype(np.float64)
        samples[~np.isfinite(samples)] = 1e6  # far from every mode
        return samples, mixture_metrics(samples, dataset.centers, dataset.std)

    trajectory = []  # the scores every `log_every` steps
    log_every = int(config.get("log_every") or 0)
    seconds_before = 0.0
    checkpoint = run_path(folder, config, ".npz") if folder else None
    if checkpoint and not fresh and os.path.exists(checkpoint):
        state = load(checkpoint)
        if json.loads(state["config"]) == _plain(config):
            training.load_state_dict(state)
            seconds_before, trajectory = float(state["seconds"]), json.loads(state["trajectory"])
            print(f"  {config['method']} {config['dataset']} seed {config['seed']}: resumed "
                  f"at step {training.step} from {checkpoint}", flush=True)

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - start

    def log_scores(training, losses):
        if log_every and training.step % log_every == 0 and not training.finished:
            scores = score()[1]
            trajectory.append({"step": training.step, **{k: scores[k] for k in SCORES}})
            print(f"  {config['method']} {config['dataset']} seed {config['seed']} step "
                  f"{training.step}: {scores_line(scores)} ({elapsed():.0f} s)", flush=True)

    def save_checkpoint(training, losses):
        if checkpoint and training.step % CHECKPOINT_EVERY == 0 and not training.finished:
            _save_checkpoint(checkpoint, {**training.state_dict(), "seconds": elapsed(),
                                          "trajectory": json.dumps(trajectory)})

    diverged = None
    try:
        training.fit([tuner, log_scores, save_checkpoint] if tuner else
                     [log_scores, save_checkpoint])
    except TrainingDiverged:  # a diverged run is a result too: its samples score 0 modes
        diverged = training.step
    seconds = elapsed()

    samples, scores = score()
    run = {"method": config["method"], "dataset": config["dataset"],
           "seed": config["seed"], "steps": training.steps,
           "seconds": round(seconds, 2), "diverged_at": diverged, **scores,
           # 9 digits hold a float32 exactly; the scores above come from the full values
           "samples": [[float(f"{v:.9g}") for v in row] for row in samples]}
    if log_every:
        run["trajectory"] = trajectory
    if folder:
        _write_text(run_path(folder, config, ".json"),
                    json.dumps({"config": _plain(config), "run": run}) + "\n")
        if os.path.exists(checkpoint):
            os.remove(checkpoint)
    return run


def _die_with_parent(parent: int) -> None:
    """A worker's initializer: on Linux, ask the kernel for SIGTERM when the study dies.

    Killing the study (`kill PID`) signals only the parent process; without this its
    workers would train on for an hour with nobody to hand their results to.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return  # no prctl: workers end with their current run instead
    if os.getppid() != parent:  # the study died before the request was made
        os._exit(1)


def _indexed(job):
    i, config, folder, fresh, setting, most = job
    return i, train_and_score(config, folder, fresh, setting, most)


# ------------------------------------------------------------------------ the study


def mode_collapse(methods, datasets, seeds: int, steps: int | None, out: str,
                  workers: int = 2, lr: float | None = None, lr_decay: str | None = None,
                  batch_size: int | None = None, log_every: int | None = None,
                  log=print, fresh: bool = False, threads_setting: int | str | None = None
                  ) -> dict:
    """Train every (method, dataset, seed), write results.json/.md and the figures.

    Runs finished before in `out`/runs with the same settings are read back (unless
    `fresh`), and runs in progress there resume from their checkpoints. Under a process
    group the ranks are the workers, and rank 0 writes the results (the others get None).
    Each run computes on `threads_setting` threads, or with "auto" (the default unless
    the environment gives a number) tunes its count up to its share of the cores.
    """
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; valid: {', '.join(METHODS)}")
    for d in datasets:
        if d not in DATASETS:
            raise ValueError(f"unknown dataset {d!r}; valid: {', '.join(DATASETS)}")
    configs = [run_config(m, d, s, steps, lr, lr_decay, batch_size)
               for d in datasets for m in methods for s in range(seeds)]
    if log_every:
        for c in configs:
            c["log_every"] = int(log_every)
    folder = os.path.join(out, "runs")
    os.makedirs(folder, exist_ok=True)
    start = time.perf_counter()
    runs = [None] * len(configs)
    rank, world = distributed.get_rank(), distributed.get_world_size()
    for i, c in enumerate(configs):
        runs[i] = None if fresh else finished_run(folder, c)
        if runs[i] is not None and rank == 0:
            log(run_line(runs[i], 0.0) + f", finished before: {run_path(folder, c, '.json')}")
    # longest first, so that the workers (or ranks) end together
    order = sorted((i for i in range(len(configs)) if runs[i] is None),
                   key=lambda i: -_cost(configs[i]))
    parallel = world if world > 1 else min(workers, len(order)) if len(order) > 1 else 1
    setting, most = threads.setting(threads_setting), max(1, threads.cores() // parallel)
    if world > 1:  # dealt round the ranks, longest first; each rank's runs come back to all
        for i in order[rank::world]:
            runs[i] = train_and_score(configs[i], folder, fresh, setting, most)
            log(run_line(runs[i], time.perf_counter() - start))
        shares = [None] * world
        distributed.all_gather_object(shares, {i: runs[i] for i in order[rank::world]})
        for i, run in ((i, run) for share in shares for i, run in share.items()):
            runs[i] = run
        if rank != 0:
            return None
    elif workers > 1 and len(order) > 1:
        # spawn, not fork: each worker imports NumPy afresh and reads OPENBLAS_NUM_THREADS
        # then; one BLAS thread per worker, since two workers' threads on two cores only
        # fight each other
        saved = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(workers, len(order)), initializer=_die_with_parent,
                              initargs=(os.getpid(),)) as pool:
                jobs = [(i, configs[i], folder, fresh, setting, most) for i in order]
                for i, run in pool.imap_unordered(_indexed, jobs):
                    runs[i] = run
                    log(run_line(run, time.perf_counter() - start))
        finally:
            if saved is None:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = saved
    else:
        for i in order:
            runs[i] = train_and_score(configs[i], folder, fresh, setting, most)
            log(run_line(runs[i], time.perf_counter() - start))
    wall = time.perf_counter() - start

    os.makedirs(out, exist_ok=True)
    summary = summarise(runs, methods, datasets)
    settings = {m: {} for m in methods}  # method -> dataset -> seed 0's settings
    for c in configs:
        if c["seed"] == 0:
            settings[c["method"]][c["dataset"]] = {
                k: v for k, v in c.items()
                if k not in ("seed", "device", "method", "dataset", "log_every")}
    result = {"protocol": {"samples": N_SAMPLES, "high_quality_within_std": 3.0,
                           "seeds": seeds, "steps": steps, "lr": lr, "lr_decay": lr_decay,
                           "batch_size": batch_size, "log_every": log_every},
              "settings": settings, "wall_seconds": round(wall, 1),
              "summary": summary,
              "runs": [{k: v for k, v in r.items() if k != "samples"} for r in runs]}
    _write_text(os.path.join(out, "results.json"), json.dumps(result, indent=1) + "\n")
    length = (f"{steps} generator steps" if steps else "each variant's default steps") + (
        f", lr {lr:g}" if lr else "") + (f", lr decay {lr_decay}" if lr_decay else "") + (
        f", batch {batch_size} (packs for PacGAN)" if batch_size else "")
    _write_text(os.path.join(out, "results.md"),
                table(summary, methods, datasets, seeds, length))
    for m in methods:
        save_mixture_scatters([r for r in runs if r["method"] == m], m, datasets, seeds,
                              os.path.join(out, f"{m}.png"), N_SAMPLES)
        if log_every:
            save_score_trajectories([r for r in runs if r["method"] == m], m, datasets,
                                   os.path.join(out, f"{m}-trajectory.png"))
    return result


def _cost(config: dict) -> float:
    # measured on CPU: a WGAN-GP step (5 critic updates, each with a double backward)
    # costs about 2 vanilla steps, minibatch discrimination's (N, N, 50, 5) tensor about 5
    units = 2.2 if config.get("n_critic", 1) > 1 else 1.0
    units *= 5.0 if config.get("minibatch_discrimination") else 1.0
    return config["steps"] * units * config["batch_size"]


def _write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


# ------------------------------------------------------------------------ the CLI


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tinygan.study",
                                description="Studies that train many GANs and compare them.")
    sub = p.add_subparsers(dest="study", required=True)
    mc = sub.add_parser("mode-collapse", help="vanilla vs remedies on ring8 and grid25")
    mc.add_argument("--seeds", type=int, default=5, help="seeds per method and dataset")
    mc.add_argument("--steps", type=int, default=None,
                    help="generator steps per run (default: each variant's 2D default)")
    mc.add_argument("--lr", type=float, default=None,
                    help="lr of G and D for every method (default: each variant's own)")
    mc.add_argument("--lr-decay", choices=("none", "linear"), default=None,
                    help="linear: learning rates fall to 0 over each run (default: none)")
    mc.add_argument("--batch-size", type=int, default=None,
                    help="samples per batch; packs per batch for PacGAN, as in its paper "
                    "(default: each variant's own, 100 in 2D)")
    mc.add_argument("--log-every", type=int, default=None, metavar="N",
                    help="score every run every N steps too: printed as it trains, kept as "
                    "each run's trajectory in results.json (default: only at the end)")
    mc.add_argument("--out", default=os.path.join("benchmarks", "mode-collapse"),
                    help="folder for results.md, results.json and METHOD.png")
    mc.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    mc.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    mc.add_argument("--fresh", action="store_true",
                    help="train every run anew, ignoring finished runs and checkpoints in "
                    "OUT/runs (default: reuse those of the same settings)")
    mc.add_argument("--threads", type=threads.thread_flag, default=None, metavar="N|auto",
                    help="threads each run computes on; auto (the default unless "
                    "$TINYGAN_NUM_THREADS, $OMP_NUM_THREADS or $OPENBLAS_NUM_THREADS gives a "
                    "number) times 1, 2, 4, ... up to each worker's share of the cores and "
                    "keeps the fastest (the fewest threads within 5%% of it). The results "
                    "are the same bits on any count")
    mc.add_argument("--workers", type=int, default=None,
                    help="parallel processes (default 2; 2 at most is sensible on a small "
                    "machine); under mpiexec the processes it started are the workers")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    launch.init_from_launcher()  # under mpiexec: the processes share the runs out
    with distributed.abort_on_error():  # one failing ends them all
        return _main(args)


def _main(args) -> int:
    leader = distributed.get_rank() == 0  # what every rank would say, rank 0 says
    for flag, value in (("--seeds", args.seeds), ("--batch-size", args.batch_size),
                        ("--log-every", args.log_every), ("--workers", args.workers)):
        if value is not None and value < 1:
            print(f"error: {flag} must be at least 1, got {value}", file=sys.stderr)
            return 2
    if args.workers is not None and distributed.get_world_size() > 1:
        if leader:
            print(f"error: --workers: the {distributed.get_world_size()} processes that "
                  "mpiexec started are the workers; leave --workers out", file=sys.stderr)
        return 2
    try:
        result = mode_collapse(args.methods, args.datasets, args.seeds, args.steps, args.out,
                               workers=args.workers or 2, lr=args.lr, lr_decay=args.lr_decay,
                               batch_size=args.batch_size, log_every=args.log_every,
                               fresh=args.fresh, threads_setting=args.threads)
    except ValueError as e:  # a damaged file in OUT/runs (CheckpointError is one too)
        if leader:  # every rank read the same file
            print(f"error: {e}", file=sys.stderr)
        return 2
    if not leader:
        return 0
    with open(os.path.join(args.out, "results.md")) as f:
        print(f.read())
    print(f"wall time {result['wall_seconds']:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
