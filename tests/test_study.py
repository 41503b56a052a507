"""The mode-collapse study, end to end at toy size: the files it writes and their shape.

The scores themselves are tested in test_metrics_math.py; here 50 steps only show that
every piece is wired: the GAN classes train, the protocol scores 2,500 samples, and the
table, JSON and figures come out with one entry per method, dataset and seed.
"""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

import tinygan
from tinygan import study


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("mode-collapse"))
    lines = []
    result = study.mode_collapse(["vanilla", "pacgan2"], ["ring8"], seeds=1, steps=50,
                                 out=out, workers=2, log=lines.append)
    return out, result, lines


def test_writes_the_table_json_and_one_figure_per_method(tiny_study):
    out, _, _ = tiny_study
    assert sorted(os.listdir(out)) == ["pacgan2.png", "results.json", "results.md", "runs",
                                       "vanilla.png"]
    # each finished run, kept so that the same command given again reads it back
    assert sorted(os.listdir(os.path.join(out, "runs"))) == ["pacgan2-ring8-seed0.json",
                                                             "vanilla-ring8-seed0.json"]
    for method in ("vanilla", "pacgan2"):
        with Image.open(os.path.join(out, f"{method}.png")) as picture:
            assert picture.width > 100 and picture.height > 100


def test_json_holds_every_run_and_the_summary(tiny_study):
    out, result, lines = tiny_study
    with open(os.path.join(out, "results.json")) as f:
        saved = json.load(f)
    assert saved["protocol"] == {"samples": 2500, "high_quality_within_std": 3.0,
                                 "seeds": 1, "steps": 50, "lr": None, "lr_decay": None,
                                 "batch_size": None, "log_every": None}
    assert [(r["method"], r["dataset"], r["seed"]) for r in saved["runs"]] == [
        ("vanilla", "ring8", 0), ("pacgan2", "ring8", 0)]
    for run in saved["runs"]:
        assert run["steps"] == 50
        assert 0 <= run["modes_covered"] <= 8
        assert 0.0 <= run["high_quality_fraction"] <= 1.0
        assert len(run["histogram"]) == 8
        assert sum(run["histogram"]) == round(2500 * run["high_quality_fraction"])
        assert "samples" not in run  # the points go into the figures, not the JSON
        assert "trajectory" not in run  # only with --log-every
    assert saved["settings"]["pacgan2"]["ring8"]["pack"] == 2
    assert saved["settings"]["vanilla"]["ring8"]["variant"] == "vanilla"
    for method in ("vanilla", "pacgan2"):
        entry = saved["summary"][method]["ring8"]
        assert entry["seeds"] == 1 and entry["modes"] == 8
        assert entry["modes_covered"]["std"] == 0.0  # one seed
        run = next(r for r in saved["runs"] if r["method"] == method)
        assert entry["modes_covered"]["mean"] == run["modes_covered"]
    assert saved["summary"] == json.loads(json.dumps(result["summary"]))
    assert len(lines) == 2  # one progress line per finished run


def test_markdown_table_has_a_row_per_method(tiny_study):
    out, result, _ = tiny_study
    with open(os.path.join(out, "results.md")) as f:
        text = f.read()
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows[0] == "| method | ring8 modes | ring8 high quality % | ring8 reverse KL |"
    assert [r.split("|")[1].strip() for r in rows[2:]] == ["vanilla", "pacgan2"]
    vanilla = result["summary"]["vanilla"]["ring8"]
    assert f"{vanilla['modes_covered']['mean']:.1f} +- 0.0 / 8" in rows[2]
    kl = vanilla["reverse_kl"]["mean"]
    assert (f"{kl:.3f}" if math.isfinite(kl) else "inf") in rows[2]


def test_unknown_method_or_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'gan'"):
        study.mode_collapse(["gan"], ["ring8"], 1, 1, str(tmp_path))
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        study.mode_collapse(["vanilla"], ["mnist"], 1, 1, str(tmp_path))


def test_cli_parses_the_issue_command():
    args = study.parser().parse_args(["mode-collapse", "--seeds", "3", "--steps", "10",
                                      "--datasets", "grid25", "--methods", "vanilla",
                                      "pacgan4", "--batch-size", "50"])
    assert (args.seeds, args.steps, args.datasets, args.methods, args.batch_size) == (
        3, 10, ["grid25"], ["vanilla", "pacgan4"], 50)
    with pytest.raises(SystemExit):
        study.parser().parse_args(["mode-collapse", "--methods", "nope"])


@pytest.mark.parametrize("flag", ["--seeds", "--batch-size", "--log-every"])
def test_cli_refuses_a_count_below_one(flag, capsys):
    assert study.main(["mode-collapse", flag, "0", "--out", "unused"]) == 2
    assert f"{flag} must be at least 1, got 0" in capsys.readouterr().err


def test_run_config_is_the_train_cli_config_plus_the_remedy():
    config = study.run_config("pacgan4", "grid25", seed=3, steps=10, lr=1e-3)
    assert (config["variant"], config["pack"], config["seed"], config["steps"]) == (
        "vanilla", 4, 3, 10)
    assert config["lr_g"] == config["lr_d"] == 1e-3
    assert config["z_dim"] == 2
    # PacGAN's protocol: D judges as many packs (of 4) as vanilla's D judges samples
    assert config["batch_size"] == 4 * study.run_config("vanilla", "grid25", 3, 10)["batch_size"]
    assert study.run_config("pacgan2", "ring8", 0, 10, batch_size=50)["batch_size"] == 100
    assert study.run_config("vanilla", "ring8", 0, 10, batch_size=50)["batch_size"] == 50
    wgan = study.run_config("wgan-gp", "ring8", seed=0, steps=None)
    assert wgan["n_critic"] == 5 and wgan["steps"] > 0 and "pack" not in wgan


def test_lr_decay_reaches_the_runs(monkeypatch):
    from tinygan.gans.vanilla import VanillaGAN
    config = study.run_config("feature-matching", "grid25", 3, steps=20, lr=1e-3,
                              lr_decay="linear")
    assert (config["lr_decay"], config["lr_g"], config["lr_d"]) == ("linear", 1e-3, 1e-3)
    seen, real_step = [], VanillaGAN.step

    def spy_step(self, next_batch):
        seen.append(self.opt_g.param_groups[0]["lr"])
        return real_step(self, next_batch)
    monkeypatch.setattr(VanillaGAN, "step", spy_step)
    assert study.train_and_score(config)["steps"] == 20
    assert seen[0] == 1e-3 and seen[-1] == pytest.approx(1e-3 / 20)  # 0 after the last
    assert all(a > b for a, b in zip(seen, seen[1:]))


def test_log_every_scores_on_the_way_without_changing_the_run(capsys):
    plain = study.run_config("pacgan2", "grid25", 1, steps=30, lr=1e-3, batch_size=20)
    logged = dict(plain, log_every=10)
    end = study.train_and_score(plain)
    watched = study.train_and_score(logged)
    # scoring draws its z from its own generator and G in eval mode: the training is the same
    assert watched["samples"] == end["samples"]
    assert watched["histogram"] == end["histogram"]
    assert [t["step"] for t in watched["trajectory"]] == [10, 20]  # the end is the run's own
    for t in watched["trajectory"]:
        assert 0 <= t["modes_covered"] <= 25 and 0.0 <= t["high_quality_fraction"] <= 1.0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and "pacgan2 grid25 seed 1 step 10:" in printed[0]
    assert "trajectory" not in end


def test_log_every_reaches_results_json(tmp_path):
    out = str(tmp_path)
    study.mode_collapse(["vanilla"], ["ring8"], seeds=1, steps=20, out=out, workers=1,
                        log_every=10, log=lambda line: None)
    with open(os.path.join(out, "results.json")) as f:
        saved = json.load(f)
    assert saved["protocol"]["log_every"] == 10
    assert [t["step"] for t in saved["runs"][0]["trajectory"]] == [10]
    assert "log_every" not in saved["settings"]["vanilla"]["ring8"]
    assert sorted(os.listdir(out)) == ["results.json", "results.md", "runs",
                                       "vanilla-trajectory.png", "vanilla.png"]
    with Image.open(os.path.join(out, "vanilla-trajectory.png")) as picture:
        assert picture.width > 100 and picture.height > 100


def test_a_stopped_run_resumes_from_its_checkpoint_bit_identically(tmp_path, monkeypatch):
    monkeypatch.setattr(study, "CHECKPOINT_EVERY", 10)
    config = dict(study.run_config("pacgan2", "grid25", 1, steps=30, lr=1e-3, batch_size=20,
                                   lr_decay="linear"), log_every=10)
    whole = study.train_and_score(config)  # no folder: never stopped, nothing written

    folder = str(tmp_path)
    save = study._save_checkpoint

    def stop_after_step_20(path, state):  # the session ends just after the 2nd checkpoint
        save(path, state)
        if state["step"] == 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(study, "_save_checkpoint", stop_after_step_20)
    with pytest.raises(KeyboardInterrupt):
        study.train_and_score(config, folder)
    assert os.listdir(folder) == ["pacgan2-grid25-seed1.npz"]
    monkeypatch.setattr(study, "_save_checkpoint", save)

    resumed = study.train_and_score(config, folder)
    assert resumed["samples"] == whole["samples"]  # bit-identical: schedule, Adam, data, rng
    assert resumed["histogram"] == whole["histogram"]
    assert resumed["trajectory"] == whole["trajectory"]  # steps 10 and 20 kept from before
    assert os.listdir(folder) == ["pacgan2-grid25-seed1.json"]  # the checkpoint is gone
    with open(os.path.join(folder, "pacgan2-grid25-seed1.json")) as f:
        stored = json.load(f)
    assert stored["config"] == json.loads(json.dumps(config))
    assert stored["run"]["samples"] == resumed["samples"]


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path, monkeypatch):
    monkeypatch.setattr(study, "CHECKPOINT_EVERY", 10)
    config = study.run_config("vanilla", "ring8", 0, steps=20, batch_size=20)
    whole = study.train_and_score(config)
    save = study._save_checkpoint

    def stop(path, state):
        save(path, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "_save_checkpoint", stop)
    with pytest.raises(KeyboardInterrupt):
        study.train_and_score(dict(config, lr_g=config["lr_g"] * 2), str(tmp_path))
    monkeypatch.setattr(study, "_save_checkpoint", save)
    assert study.train_and_score(config, str(tmp_path))["samples"] == whole["samples"]


def test_the_same_command_again_reads_finished_runs_back(tmp_path, monkeypatch):
    out = str(tmp_path)
    first = study.mode_collapse(["vanilla"], ["ring8"], seeds=1, steps=20, out=out,
                                workers=1, log=lambda line: None)

    def no_training(*args):
        raise AssertionError("trained again")

    monkeypatch.setattr(study, "train_and_score", no_training)
    lines = []
    again = study.mode_collapse(["vanilla"], ["ring8"], seeds=1, steps=20, out=out,
                                workers=1, log=lines.append)
    assert again["runs"] == first["runs"] and again["summary"] == first["summary"]
    assert len(lines) == 1 and "finished before" in lines[0]
    with pytest.raises(AssertionError, match="trained again"):  # other settings: trained
        study.mode_collapse(["vanilla"], ["ring8"], seeds=1, steps=30, out=out, workers=1,
                            log=lambda line: None)
    with pytest.raises(AssertionError, match="trained again"):  # --fresh: trained
        study.mode_collapse(["vanilla"], ["ring8"], seeds=1, steps=20, out=out, workers=1,
                            log=lambda line: None, fresh=True)


def test_a_damaged_run_file_is_a_clear_error(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "vanilla-ring8-seed0.json").write_text("{not json")
    code = study.main(["mode-collapse", "--seeds", "1", "--steps", "5", "--methods", "vanilla",
                       "--datasets", "ring8", "--out", str(tmp_path), "--workers", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "vanilla-ring8-seed0.json" in err and "--fresh" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_end_when_the_study_is_killed(tmp_path):
    # a study that would run for minutes; kill its parent process only, as `kill PID` does
    study_process = subprocess.Popen(
        [sys.executable, "-m", "tinygan.study", "mode-collapse", "--seeds", "2",
         "--steps", "1000000", "--methods", "vanilla", "--datasets", "ring8",
         "--out", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers = []
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = _children(study_process.pid)
        assert len(workers) >= 2, "the study's two workers never started"
    finally:
        study_process.kill()
        study_process.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [pid for pid in workers if _alive(pid)]
    for pid in survivors:  # a failing test leaves no orphans behind either
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "the workers outlived the study"


def _children(pid: int) -> list[int]:
    """The pool workers of process `pid` (not multiprocessing's resource tracker)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    command = f.read()
            except OSError:
                continue
            if int(fields[1]) == pid and b"spawn_main" in command:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; it waits only for its exit status to be read


def test_threads_flag_and_auto_give_the_same_runs(tmp_path, monkeypatch):
    """--threads N or auto (a tuner per run) changes the speed only."""
    for name in ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tinygan.threads, "cores", lambda: 2)
    argv = ["mode-collapse", "--seeds", "1", "--steps", "30", "--methods", "vanilla",
            "--datasets", "ring8", "--workers", "1"]
    results = []
    for threads in ("1", "auto"):
        out = tmp_path / threads
        assert study.main([*argv, "--threads", threads, "--out", str(out)]) == 0
        [run] = (out / "runs").glob("*.json")
        results.append(json.load(open(run))["run"]["samples"])
    assert results[0] == results[1]
    with pytest.raises(SystemExit):
        study.main([*argv, "--threads", "0"])
