"""Search for default recipes: train candidate recipes over seeds and score them alike.

    python benchmarks/recipes.py list                          # the candidates
    python benchmarks/recipes.py run CANDIDATE [...] --datasets mnist-10k fashion-mnist \\
        --seeds 0 1 2                                          # train and score (resumable)
    python benchmarks/recipes.py table                         # results.md and results.json

A candidate is a variant with recipe settings (learning rates, dropout, BatchNorm, ...)
over the settings that `python -m tinygan.train VARIANT DATASET --seed S` builds (its own
make_config), trained by the one loop (tinygan.training.Training) and scored by
evaluate_gan (FID & co. on tinygan's LeNet features, 10,000 samples) at every step of its
`scores_at`: the first N steps of a longer run are an N-step run (no schedule depends on
the length), so one run scores every length on its way.

Resumable: each score is appended to benchmarks/recipes/results.jsonl as it is made, with
the run's training time so far (wall and process CPU, evaluation excluded) and its full
config; a run in progress keeps a checkpoint under benchmarks/recipes/runs/ (every
--checkpoint-every steps and after each score) and continues from it when run again.
Each scored length also leaves its grid and its checkpoint there (NAME-DATASET-seedS-STEP
.png / .npz, a run of that length that benchmarks/quality_vs_torch.py can read).
Run one training at a time on a shared machine, with its threads pinned, e.g.
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 TINYGAN_NUM_THREADS=1.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

from tinygan import serialization
from tinygan.gans import DataInfo, defaults
from tinygan.metrics.evaluate import evaluate_gan
from tinygan.plots import save_grid
from tinygan.train import make_config, parser as train_parser
from tinygan.training import Training, load_dataset

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")
RESULTS = os.path.join(HERE, "results.jsonl")
RUNS = os.path.join(HERE, "runs")
#: the settings a candidate may set and the table shows (the variant's recipe)
RECIPE_KEYS = ("z_dim", "lr_g", "lr_d", "betas", "batch_size", "n_critic", "g_batchnorm",
               "d_dropout", "clip", "gp_lambda", "embed_dim")
SCORES = ("fid", "kid_mean", "precision", "recall", "classes_covered", "class_kl")

# The candidates. `settings` replace what the variant's defaults() gives at the time of the
# run (each result stores its full config, so the table never depends on today's defaults).
MLP = dict(g_batchnorm=False, d_dropout=0.0)  # the vanilla-mnist benchmark's MLPs as they are
CANDIDATES = {
    "vanilla-mlp": dict(
        variant="vanilla", settings=dict(MLP), scores_at=(4200, 8400),
        about="the vanilla-mnist benchmark's MLPs (no dropout, no BatchNorm), "
              "Adam(2e-4, (0.5, 0.999)), batch 64: the defaults before this search"),
    "vanilla-d-dropout": dict(
        variant="vanilla", settings=dict(MLP, d_dropout=0.3), scores_at=(4200, 8400),
        about="+ Dropout(0.3) after each of D's hidden layers (Goodfellow et al. 2014's "
              "MNIST D was trained with dropout; 0.3 as in TensorFlow's DCGAN tutorial)"),
    "vanilla-g-batchnorm": dict(
        variant="vanilla", settings=dict(MLP, g_batchnorm=True), scores_at=(4200, 8400),
        about="+ BatchNorm1d after each of G's hidden Linear layers (PyTorch-GAN's "
              "implementations/gan/gan.py)"),
    "vanilla-bn-dropout": dict(
        variant="vanilla", settings=dict(g_batchnorm=True, d_dropout=0.3),
        scores_at=(4200, 8400, 12600),
        about="both: BatchNorm1d in G's hidden layers, Dropout(0.3) in D's"),
    "dcgan-paper": dict(
        variant="dcgan", settings=dict(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
        scores_at=(1500, 3000, 5000),
        about="TensorFlow's DCGAN tutorial's networks (dcgan-mnist) with Radford et al. "
              "2016's Adam(2e-4, beta1 0.5), batch 64"),
    "dcgan-tf-tutorial": dict(
        variant="dcgan", settings=dict(lr_g=1e-4, lr_d=1e-4, betas=(0.9, 0.999)),
        scores_at=(1500, 3000, 4500, 6000),
        about="the same networks with the TensorFlow tutorial's own Adam(1e-4), default "
              "betas (0.9, 0.999)"),
    "dcgan-ttur": dict(
        variant="dcgan", settings=dict(lr_g=1e-4, lr_d=4e-4, betas=(0.5, 0.999)),
        scores_at=(1500, 3000, 4500, 6000),
        about="the same networks, two time-scale learning rates (Heusel et al. 2017): "
              "G 1e-4, D 4e-4, as SAGAN's (Zhang et al. 2019), beta1 0.5"),
}


# ---------------------------------------------------------------------------- running


def candidate_config(name: str, dataset: str, seed: int, info: DataInfo) -> dict:
    """The config `python -m tinygan.train VARIANT DATASET --seed S` builds, with the
    candidate's settings and its longest length."""
    c = CANDIDATES[name]
    args = train_parser().parse_args([c["variant"], dataset, "--seed", str(seed),
                                      "--steps", str(max(c["scores_at"]))])
    config = make_config(args, info)
    config.update(c["settings"])
    return config


def read_results() -> list[dict]:
    if not os.path.exists(RESULTS):
        return []
    with open(RESULTS) as f:
        return [json.loads(line) for line in f if line.strip()]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_one(name: str, dataset: str, seed: int, checkpoint_every: int,
            until: int | None = None) -> None:
    """Train one candidate on one dataset with one seed, scoring it at each scores_at step
    (up to `until`) not yet in results.jsonl; continue from its checkpoint if it has one."""
    done = {r["step"] for r in read_results()
            if (r["candidate"], r["dataset"], r["seed"]) == (name, dataset, seed)}
    wanted = sorted(s for s in set(CANDIDATES[name]["scores_at"]) - done
                    if until is None or s <= until)
    if not wanted:
        print(f"{name} {dataset} seed {seed}: done", flush=True)
        return
    data = load_dataset({"dataset": dataset})
    config = candidate_config(name, dataset, seed, DataInfo.of(data))
    config["steps"] = wanted[-1]
    training = Training(config, data)
    path = os.path.join(RUNS, f"{name}-{dataset}-seed{seed}.npz")
    clock = {"wall": 0.0, "cpu": 0.0}
    if os.path.exists(path):
        state = serialization.load(path)
        training.load_state_dict(state)
        clock = dict(state["clock"])
        print(f"{name} {dataset} seed {seed}: continuing from step {training.step}",
              flush=True)
    os.makedirs(RUNS, exist_ok=True)

    def save():
        serialization.save(dict(training.state_dict(), clock=dict(clock)), path)

    started = [time.perf_counter(), _cpu_seconds()]

    def tick():  # the training time since the last tick, into the clock
        now = [time.perf_counter(), _cpu_seconds()]
        clock["wall"] += now[0] - started[0]
        clock["cpu"] += now[1] - started[1]
        return now

    def callback(t, losses):
        if t.step in wanted:
            tick()
            scores = evaluate_gan(t.gan, data, config)
            row = {"candidate": name, "variant": config["variant"], "dataset": dataset,
                   "seed": seed, "step": t.step, "train_wall_s": round(clock["wall"], 1),
                   "train_cpu_s": round(clock["cpu"], 1),
                   "threads": {k: os.environ.get(k) for k in
                               ("OPENBLAS_NUM_THREADS", "TINYGAN_NUM_THREADS")},
                   "scores": {k: round(float(v), 5) for k, v in scores.items()},
                   "config": {k: v for k, v in config.items() if k != "steps"}}
            with open(RESULTS, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{name} {dataset} seed {seed} step {t.step}: "
                  + ", ".join(f"{k} {row['scores'][k]:.4g}" for k in SCORES)
                  + f"; {row['train_wall_s']:.0f} s wall, {row['train_cpu_s']:.0f} s CPU",
                  flush=True)
            here = os.path.join(RUNS, f"{name}-{dataset}-seed{seed}-{t.step}")
            save_grid(t.gan.samples(64, seed + 1), here + ".png", nrow=8)
            # a checkpoint of this length as a run of it (quality_vs_torch.py can read it)
            serialization.save(dict(t.state_dict(), config=json.dumps(dict(config,
                                                                           steps=t.step))),
                               here + ".npz")
            save()
            started[:] = [time.perf_counter(), _cpu_seconds()]
        elif t.step % checkpoint_every == 0:
            save()
        if t.step % 500 == 0:
            print(f"  step {t.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in losses.items()),
                  flush=True)

    training.fit([callback])
    os.remove(path)  # every score is in results.jsonl


# ---------------------------------------------------------------------------- the table


def _mean_sd(values):
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(rows: list[dict]) -> list[dict]:
    """One entry per (dataset, candidate, step): seed means (and spreads) of the scores,
    and whether that recipe at that length is the variant's default today."""
    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["candidate"], r["step"]), []).append(r)
    out = []
    for (dataset, name, step), rs in sorted(groups.items(),
                                            key=lambda kv: (kv[0][0], _order(kv[0][1]),
                                                            kv[0][2])):
        config = dict(rs[0]["config"], steps=step)
        entry = {"dataset": dataset, "candidate": name, "variant": rs[0]["variant"],
                 "step": step, "seeds": sorted(r["seed"] for r in rs),
                 "recipe": {k: config[k] for k in RECIPE_KEYS if k in config},
                 "is_default": _is_default(config),
                 "train_cpu_s_mean": round(statistics.fmean(r["train_cpu_s"] for r in rs), 1),
                 "train_wall_s_mean": round(statistics.fmean(r["train_wall_s"] for r in rs), 1)}
        for k in SCORES:
            mean, sd = _mean_sd([r["scores"][k] for r in rs])
            entry[k] = {"mean": round(mean, 5), "sd": round(sd, 5),
                        "per_seed": [r["scores"][k] for r in sorted(rs, key=lambda r: r["seed"])]}
        out.append(entry)
    return out


def _order(name):
    return list(CANDIDATES).index(name) if name in CANDIDATES else len(CANDIDATES)


def _is_default(config: dict) -> bool:
    """The candidate at this length is what `python -m tinygan.train VARIANT DATASET`
    trains today: the same recipe and the same number of steps."""
    info = DataInfo("image", (1, 28, 28), 10)
    d = defaults(config["variant"], info)
    if "steps" not in d:
        return False
    return all(_same(config.get(k), v) for k, v in d.items())


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a or []) == list(b or [])
    return a == b


def markdown(summary: list[dict]) -> str:
    lines = ["# Recipe search: candidates, seeds, scores",
             "",
             "Written by `python benchmarks/recipes.py table` from "
             "[results.jsonl](results.jsonl) (one line per score, as it was made).",
             "Scores: tinygan's own metrics on 10,000 samples (FID and KID on its "
             "LeNet-84 features, KID unscaled, k-NN precision/recall, classes the classifier sees, and "
             "KL of its class histogram to uniform); mean over the seeds listed, "
             "(min-max) beside FID. CPU: the process's CPU time to train that far, one "
             "thread, on a shared 2-core machine (evaluation excluded). **bold**: the "
             "variant's default today.", ""]
    for name, c in CANDIDATES.items():
        lines.append(f"- `{name}` ({c['variant']}): {c['about']}")
    datasets = sorted({e["dataset"] for e in summary})
    for dataset in datasets:
        lines += ["", f"## {dataset}", "",
                  "| candidate | steps | seeds | FID (min-max) | KID | precision | recall "
                  "| classes | class KL | CPU min |",
                  "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
        for e in (e for e in summary if e["dataset"] == dataset):
            fid = e["fid"]
            name = f"**{e['candidate']}**" if e["is_default"] else e["candidate"]
            lines.append(
                f"| {name} | {e['step']} | {','.join(map(str, e['seeds']))} | "
                f"{fid['mean']:.1f} ({min(fid['per_seed']):.1f}-{max(fid['per_seed']):.1f}) | "
                f"{e['kid_mean']['mean']:.0f} | {e['precision']['mean']:.3f} | "
                f"{e['recall']['mean']:.3f} | {e['classes_covered']['mean']:.1f} | "
                f"{e['class_kl']['mean']:.3f} | {e['train_cpu_s_mean'] / 60:.1f} |")
    return "\n".join(lines) + "\n"


def write_table() -> None:
    summary = summarise(read_results())
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(markdown(summary))
    print(markdown(summary))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the candidates")
    run = sub.add_parser("run", help="train and score candidates (resumable)")
    run.add_argument("candidates", nargs="+", choices=list(CANDIDATES))
    run.add_argument("--datasets", nargs="+", default=["mnist-10k"])
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    run.add_argument("--checkpoint-every", type=int, default=500)
    run.add_argument("--until", type=int, metavar="STEP",
                     help="score (and train) no further than this step")
    sub.add_parser("table", help="write results.md and results.json from results.jsonl")
    args = p.parse_args(argv)
    if args.command == "list":
        for name, c in CANDIDATES.items():
            print(f"{name:22s} {c['variant']:8s} scores at {list(c['scores_at'])}: "
                  f"{c['settings']}")
    elif args.command == "run":
        os.makedirs(HERE, exist_ok=True)
        for dataset in args.datasets:
            for name in args.candidates:
                for seed in args.seeds:
                    run_one(name, dataset, seed, args.checkpoint_every, args.until)
        write_table()
    else:
        write_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
