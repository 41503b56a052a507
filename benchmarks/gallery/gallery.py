"""The gallery: what each variant's command produces, with its scores and its time.

    python benchmarks/gallery/gallery.py run [NAME ...]   # train (or resume) and evaluate
    python benchmarks/gallery/gallery.py table            # benchmarks/gallery/README.md

Each entry is a real command, `python -m tinygan.train VARIANT DATASET --seed 0 [--steps N]
--out benchmarks/gallery/runs/NAME`, then `python -m tinygan.evaluate RUN` (FID & co. on
tinygan's LeNet features, 10,000 samples). A run stopped halfway continues with --resume
when this is run again; RUN/timing.json adds up the wall and CPU time (user + system, of
the training processes) of every sitting, with the thread settings each one had. Its final
grid is copied to benchmarks/gallery/NAME.png. Checkpoints, the grids along the way, the
GIF and losses.csv stay out of git (see .gitignore).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUNS = os.path.join(HERE, "runs")
THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "TINYGAN_NUM_THREADS")

#: name -> the arguments of `python -m tinygan.train`: the default length unless --steps
#: (shorter, where the default would not fit the sitting the gallery was made in);
#: --eval-every scores the run on its way (scoring moves none of its random numbers)
ENTRIES = {
    "vanilla-mnist": ["vanilla", "mnist-10k"],
    "vanilla-fashion-mnist": ["vanilla", "fashion-mnist"],
    "dcgan-mnist": ["dcgan", "mnist-10k", "--eval-every", "1000"],
    "dcgan-fashion-mnist": ["dcgan", "fashion-mnist", "--eval-every", "1000"],
    "cgan-mnist": ["cgan", "mnist-10k", "--steps", "1500", "--eval-every", "500"],
    "cgan-fashion-mnist": ["cgan", "fashion-mnist", "--steps", "1500", "--eval-every", "500"],
    "wgan-gp-mnist": ["wgan-gp", "mnist-10k", "--steps", "400"],
    "wgan-gp-fashion-mnist": ["wgan-gp", "fashion-mnist", "--steps", "400"],
    "wgan-fashion-mnist": ["wgan", "fashion-mnist", "--steps", "500"],
    "sagan-mnist": ["sagan", "mnist-10k", "--steps", "500"],
    "sagan-fashion-mnist": ["sagan", "fashion-mnist", "--steps", "500"],
}
#: the variants whose defaults take most of an hour on one core, at their default length
#: on a GPU (`--device cuda`: trained on the GPU, evaluated there too)
ENTRIES.update({f"{variant}-{short}-cuda": [variant, data, "--device", "cuda"]
                for variant in ("wgan", "wgan-gp", "sagan", "cgan")
                for data, short in (("mnist-10k", "mnist"), ("fashion-mnist", "fashion-mnist"))})


def command(name: str) -> list[str]:
    """The entry's command, run from the repository's root."""
    return ["python", "-m", "tinygan.train", *ENTRIES[name], "--seed", "0",
            "--out", os.path.relpath(os.path.join(RUNS, name), REPO)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _read_json(path: str, default=None):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def _write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def run(name: str) -> None:
    """Train NAME to its end (resuming a stopped run), time it, evaluate it."""
    folder = os.path.join(RUNS, name)
    timing_path = os.path.join(folder, "timing.json")
    timing = _read_json(timing_path, {"command": " ".join(command(name)), "sittings": []})
    argv = command(name) + ["--no-progress"]
    if os.path.exists(os.path.join(folder, "checkpoints", "latest.npz")):
        argv = ["python", "-m", "tinygan.train", "--resume", os.path.relpath(folder, REPO),
                "--no-progress"]
    config = _read_json(os.path.join(folder, "config.json"), {})
    if not (timing["sittings"] and _finished(folder, config)):
        print(" ".join(argv), flush=True)
        wall, cpu = time.perf_counter(), _children_cpu()
        code = subprocess.call([sys.executable, *argv[1:]], cwd=REPO)
        sitting = {"wall_s": round(time.perf_counter() - wall, 1),
                   "cpu_s": round(_children_cpu() - cpu, 1), "exit": code,
                   "threads": {k: os.environ.get(k) for k in THREADS},
                   "ended": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.makedirs(folder, exist_ok=True)
        timing["sittings"].append(sitting)
        _write_json(timing_path, timing)
        if code != 0:
            raise SystemExit(f"gallery: {name}: the training stopped (exit {code}); run "
                             "again to resume it")
    device = ["--device", "cuda"] if "cuda" in ENTRIES[name] else []
    subprocess.check_call([sys.executable, "-m", "tinygan.evaluate",
                           os.path.relpath(folder, REPO), *device], cwd=REPO)
    config = _read_json(os.path.join(folder, "config.json"))
    shutil.copyfile(_last_grid(folder), os.path.join(HERE, f"{name}.png"))
    print(f"{name}: {_steps(folder)} steps, "
          f"{sum(s['wall_s'] for s in timing['sittings']) / 60:.1f} min wall", flush=True)


def _finished(folder: str, config: dict) -> bool:
    """Whether the run got to its end: its GIF is made after the last checkpoint."""
    return bool(config) and os.path.exists(os.path.join(folder, "training.gif"))


def _steps(folder: str) -> int:
    """The steps the run trained (its last grid's, drawn at the end; where the grids are
    not at hand, the length it was given)."""
    if not os.path.isdir(os.path.join(folder, "samples")):
        return _read_json(os.path.join(folder, "config.json"))["steps"]
    return int(os.path.basename(_last_grid(folder))[len("step_"):-len(".png")])


def _last_grid(folder: str) -> str:
    samples = os.path.join(folder, "samples")
    return os.path.join(samples, max(f for f in os.listdir(samples) if f.startswith("step_")))


# ---------------------------------------------------------------------------- the table


def rows() -> list[dict]:
    out = []
    for name in ENTRIES:
        folder = os.path.join(RUNS, name)
        metrics = _read_json(os.path.join(folder, "metrics.json"))
        timing = _read_json(os.path.join(folder, "timing.json"))
        config = _read_json(os.path.join(folder, "config.json"))
        if not (metrics and timing and config):
            continue
        sittings = timing["sittings"]
        out.append({"name": name, "variant": config["variant"], "dataset": config["dataset"],
                    "command": timing["command"].replace(
                        f" --out {os.path.relpath(folder, REPO)}", ""),
                    "steps": _steps(folder), "batch_size": config["batch_size"],
                    "wall_min": sum(s["wall_s"] for s in sittings) / 60,
                    "cpu_min": sum(s["cpu_s"] for s in sittings) / 60,
                    "sittings": len(sittings),
                    "threads": sorted({str(s["threads"].get("OPENBLAS_NUM_THREADS"))
                                       for s in sittings}),
                    "scores": metrics["scores"], "floor": metrics["about"]["real_floor_fid"]})
    return out


def markdown(entries: list[dict], pictures: str = "") -> str:
    """The table (pictures: the path from the reader to this folder, for the grids)."""
    lines = ["| variant, data | command | steps | wall / CPU min | FID | KID | precision "
             "| recall | classes | class KL |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in entries:
        s = e["scores"]
        lines.append(
            f"| [{e['variant']}, {e['dataset']}]({pictures}{e['name']}.png) | "
            f"`{e['command']}` | {e['steps']} | {e['wall_min']:.1f} / {e['cpu_min']:.1f} | "
            f"{s['fid']:.1f} | {s['kid_mean']:.0f} | {s['precision']:.2f} | "
            f"{s['recall']:.2f} | {s['classes_covered']:.0f} | {s['class_kl']:.3f} |")
    return "\n".join(lines) + "\n"


def write_readme() -> None:
    entries = rows()
    lines = ["# Gallery: what each variant's command produces", "",
             "Written by `python benchmarks/gallery/gallery.py table` from the runs in "
             "[runs/](runs) (each: config.json, metrics.json, timing.json, losses.png). "
             "Every run is `python -m tinygan.train VARIANT DATASET --seed 0` at the "
             "variant's default length (or the `--steps` shown), then "
             "`python -m tinygan.evaluate RUN`. Scores: tinygan's LeNet-84 features, "
             "10,000 samples (not Inception FIDs); real-data floors: 2.56 (mnist-10k), "
             "0.24 (fashion-mnist). Times: training only, on a 2-core machine shared with "
             "other jobs, one thread (OPENBLAS_NUM_THREADS=OMP_NUM_THREADS="
             "TINYGAN_NUM_THREADS=1): wall time is what the run took there, CPU time is "
             "about what it would take alone on one quiet core. Rows whose command has "
             "`--device cuda` trained at the variant's default length on a GPU machine "
             "(one NVIDIA H200, 16 cores; four runs at a time on the one GPU, "
             "`benchmarks/gpu_session.sh` and `gpu_session2.sh`) and were scored there; "
             "their times are that machine's. On one CPU core those defaults take "
             "about an hour each (wgan 2,000 steps, wgan-gp 1,600, sagan 3,000, cgan "
             "5,000: see the README's GAN zoo).", "",
             markdown(entries)]
    for e in entries:
        lines += [f"### {e['variant']}, {e['dataset']}", "",
                  f"`{e['command']}` ({e['steps']} steps)", "",
                  f'<img src="{e["name"]}.png" width="300"> '
                  f'<img src="runs/{e["name"]}/losses.png" width="420">', ""]
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write("\n".join(lines))
    _write_json(os.path.join(HERE, "gallery.json"), entries)
    print(markdown(entries, "benchmarks/gallery/"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train (or resume) and evaluate entries")
    r.add_argument("names", nargs="*", help="entries (default: all): " + ", ".join(ENTRIES))
    sub.add_parser("table", help="write README.md and gallery.json from the runs")
    args = p.parse_args(argv)
    if args.command == "run":
        unknown = [n for n in args.names if n not in ENTRIES]
        if unknown:
            p.error(f"unknown entries {unknown}; valid: {', '.join(ENTRIES)}")
        for name in args.names or ENTRIES:
            run(name)
    write_readme()
    return 0


if __name__ == "__main__":
    sys.exit(main())
