"""A training run in its folder: the Training, the files it writes as it goes, and stopping.

`python -m tinygan.train` makes one Run and calls `train()`: the loop of training.py, with
a loss row, sample grids, scores and checkpoints written by its callbacks into a
RunFolder (run_folder.py, which says what survives a crash). Ctrl-C and SIGTERM stop it
after the step under way, saved; the run then continues with `--resume`.

Under an MPI launcher every rank makes a Run and trains its share of each batch
(Training's data_parallel); rank 0 alone holds the folder (its lock, logs, samples,
checkpoints, config) and shows progress. What every rank computes together (the
losses' averages, evaluations, whether to stop) is decided collectively, so all ranks
take the same path.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import numpy as np
from tqdm import tqdm

from . import __version__, backend, distributed, launch, threads
from .doctor import Checkup
from .metrics.evaluate import evaluate_gan
from .plots import save_gif, save_grid, save_losses_plot, save_metric_plot, save_scatter
from .run_folder import RunFolder, RunFolderError
from .training import Training

EXIT_SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number
#: settings a resumed run may change (its length and how often it writes)
RESUMABLE_SETTINGS = ("steps", "epochs", "sample_every", "eval_every", "checkpoint_every",
                      "doctor_every")


def describe(config: dict) -> str:
    """'vanilla + pack 2 on ring8': the variant, its remedies and the data, for titles."""
    remedies = [name.replace("_", " ") for name in ("feature_matching",
                                                    "minibatch_discrimination")
                if config.get(name)]
    if config.get("pack", 1) > 1:
        remedies.append(f"pack {config['pack']}")
    if config.get("label_smoothing"):
        remedies.append(f"label smoothing {config['label_smoothing']}")
    return " + ".join([config["variant"], *remedies]) + f" on {config['dataset']}"


def versions(device: str) -> dict:
    v = {"tinygan": __version__, "numpy": np.__version__, "python": sys.version.split()[0]}
    if device == "cuda":
        v["cupy"] = backend.cupy_module().__version__
    return v


class Run:
    """One training run in its folder: the Training, and what is written as it goes."""

    def __init__(self, config: dict, folder: str, resume: bool = False, progress: bool = True,
                 dataset=None, threads: int | str | None = None):
        self.config, self.folder = config, folder
        self.writes = distributed.get_rank() == 0  # the one writer of the folder
        self.progress = progress and self.writes
        self.store = RunFolder(folder)
        state = self._open(resume)
        try:
            self.training = Training(config, dataset, data_parallel=True)
            self.tuner = self._thread_tuner(threads)
            self.grid_size, self.grid_labels = self._grid()
            if resume:
                self._resume(state)
            else:  # saved before config.json: a folder with a config always has a checkpoint
                self.save_checkpoint()
            if self.writes:  # on resume too: the run's length may have changed (--steps)
                self.store.write_config(config, versions(config["device"]))
        except BaseException:
            self.store.release()
            raise

    def _open(self, resume: bool):
        """Take the folder (rank 0) and, to resume, read its checkpoint (rank 0, which hands
        it to every rank); the other ranks wait to hear that rank 0 could."""
        state, error = None, None
        if self.writes:
            try:
                note = self.store.acquire()
                if note:
                    print(f"note: {note}", file=sys.stderr)
                self.store.remove_temp_files()
                if not resume and self.store.has_run():  # checked under the lock: never mix
                    raise RunFolderError(f"{self.folder} already holds a run; continue it "
                                         f"with --resume {self.folder} or choose another --out")
                state = self._checkpoint() if resume else None
            except RunFolderError as e:
                self.store.release()
                error = str(e)
        error = launch.first_error(error)
        if error:
            raise RunFolderError(error)
        if resume:
            handed = [state]
            distributed.broadcast_object_list(handed, src=0)
            state = handed[0]
        return state

    def _thread_tuner(self, flag):
        """A number of threads is set now; "auto" is a ThreadTuner, called after every step
        (each process tunes its share of the cores). The count changes no result."""
        setting = threads.setting(flag)
        if setting != "auto":
            threads.set_num_threads(setting)
            return None
        most = max(1, threads.cores() // self.training.world)
        say = (lambda line: tqdm.write(line, file=sys.stderr)) if self.writes else (
            lambda line: None)
        return threads.ThreadTuner(threads.candidate_counts(most), report=say)

    def _grid(self):
        """How many samples a grid shows, and their labels for a conditional G: a row of
        8 per class for images, classes in turn for points."""
        n = 2500 if self.info.kind == "points" else 64
        if not self.gan.conditional:
            return n, None
        k = self.info.num_classes
        labels = (np.repeat(np.arange(k), 8) if self.info.kind == "image" and k <= 16
                  else np.arange(n) % k)
        return len(labels), labels

    def _checkpoint(self) -> dict:
        """The checkpoint to resume from, checked to be this run's."""
        state = self.store.load_checkpoint(self.config["device"])
        saved, mine = settings(state["config"]), settings(self.config)
        if saved != mine:
            key = sorted(k for k in saved.keys() | mine.keys() if saved.get(k) != mine.get(k))[0]
            raise RunFolderError(
                f"{self.checkpoint_path} was written with {key}={saved.get(key)!r}, but "
                f"{self.store.file('config.json')} says {key}={mine.get(key)!r}: the "
                "checkpoint belongs to another run")
        return state

    def _resume(self, state: dict) -> None:
        before, now = int(state.get("processes", 1)), self.training.world
        if before != now and self.writes:
            print(f"note: this run was trained on {_processes(before)} and continues on "
                  f"{_processes(now)}: the same training up to the order of floating-point "
                  f"sums (a resume on {_processes(before)} would be bit-identical)",
                  file=sys.stderr)
        try:
            self.training.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError) as e:
            first = str(e).splitlines()[-1].strip()
            raise RunFolderError(f"{self.checkpoint_path} does not fit a "
                                 f"{describe(self.config)} GAN ({first})") from None
        if self.tuner is not None and "threads" in state:  # the count it chose, at once
            self.tuner.load_state_dict(json.loads(str(state["threads"])))
        if self.writes:
            self.store.restore_logs(state)

    # -- what the Training holds
    gan = property(lambda self: self.training.gan)
    info = property(lambda self: self.training.info)
    loader = property(lambda self: self.training.loader)
    dataset = property(lambda self: self.training.dataset)
    step = property(lambda self: self.training.step)
    checkpoint_path = property(lambda self: self.store.checkpoint_path)

    @property
    def steps(self) -> int:
        return self.training.steps

    @steps.setter
    def steps(self, value: int) -> None:
        self.training.steps = value

    # -- after each step (on every rank: each writes only if it is the writer)
    def log_losses(self, training, losses) -> None:
        if self.writes:
            self.store.log("losses.csv", ["step", "epoch", *losses],
                           [training.step, training.loader.epoch,
                            *(f"{v:.6g}" for v in losses.values())])

    def every_few_steps(self, training, losses) -> None:
        step = training.step
        if self.writes and (step % self.config["sample_every"] == 0 or step == training.steps):
            self.store.flush_logs()
            self.take_samples()
        if self.config.get("eval_every") and step % self.config["eval_every"] == 0:
            self.evaluate()
        every = self.config.get("checkpoint_every")
        if (step % every == 0) if every else training.epochs_done > self._epochs_saved:
            self.save_checkpoint()  # every N steps, or when an epoch has just ended

    def save_checkpoint(self) -> None:
        """Rank 0 writes the state, which is every rank's: the weights stay equal on every
        rank (each takes the same averaged step), and so do the random and loader states."""
        self.training.check_finite()
        if self.writes:
            state = self.training.state_dict()
            if self.tuner is not None:  # reused on resume; what it timed, for the curious
                state["threads"] = json.dumps(self.tuner.state_dict())
            self.store.save_checkpoint(state)
        self._epochs_saved = self.training.epochs_done

    # -- pictures
    def take_samples(self) -> None:
        fake = self.gan.samples(self.grid_size, self.config["seed"] + 1, self.grid_labels)
        path = self.store.file("samples", f"step_{self.step:07d}.png")
        try:
            if self.info.kind == "points":
                real = self.dataset.sample(len(fake), np.random.default_rng(0))[0]
                save_scatter(fake, real, path, f"{describe(self.config)}, step {self.step}",
                             centers=np.asarray(self.dataset.centers))
            else:
                save_grid(fake, path, nrow=8)
        except OSError as e:
            raise RunFolderError(f"cannot write {path}: {e.strerror or e}") from e

    def evaluate(self) -> None:
        """Score G now (FID & co. for images, mode coverage for 2D); append to metrics.csv.
        Every rank scores its share of the samples (evaluate_gan gathers them)."""
        scores = evaluate_gan(self.gan, self.dataset, self.config)
        if not self.writes:
            return
        self.store.log("metrics.csv", ["step", *scores], [self.step, *scores.values()])
        self.store.flush_logs()
        save_metric_plot(self.store.file("metrics.csv"), self.store.file("fid.png"),
                         describe(self.config))

    def finish_pictures(self) -> None:
        """The GIF and the loss curves; a failure is a warning: the training is saved."""
        try:
            samples = self.store.file("samples")
            frames = sorted(os.path.join(samples, f) for f in os.listdir(samples)
                            if f.startswith("step_") and f.endswith(".png"))
            save_gif(frames, self.store.file("training.gif"))
            if os.path.exists(self.store.file("losses.csv")):
                save_losses_plot(self.store.file("losses.csv"),
                                 self.store.file("losses.png"), describe(self.config))
        except Exception as e:  # noqa: BLE001  (a picture is never worth the run)
            print(f"warning: the run is saved, but its pictures failed: "
                  f"{type(e).__name__}: {e}", file=sys.stderr)

    # -- the loop
    def train(self) -> None:
        """Train to the end (or to a stop request), saving as it goes; always lets go of
        the folder."""
        try:
            self._train()
        finally:
            self.store.release()

    def _train(self) -> None:
        training, start_step = self.training, self.step
        if training.finished and start_step > 0:
            if self.writes:
                print(f"{self.folder} is finished ({self.step} of {self.steps} steps); to "
                      "train longer, give --steps or --epochs with --resume")
                if not os.path.exists(self.store.file("training.gif")):
                    self.finish_pictures()  # a run stopped after its last checkpoint
            return
        self._epochs_saved = training.epochs_done
        if start_step == 0 and self.writes:
            self.take_samples()
        bar = self._bar()
        start = time.perf_counter()
        stop = _StopRequests()
        callbacks = [self.log_losses, self.every_few_steps,
                     lambda t, losses: self._report(bar, losses, start, start_step)]
        if self.tuner is not None:  # first: it times a step from one call to the next
            callbacks.insert(0, self.tuner)
        if self.config.get("doctor_every") and self.writes:
            # before every_few_steps: a checkpoint at step N holds step N's rows already
            callbacks.insert(1, Checkup(training, self.store.log, self.config["doctor_every"],
                                        warn=lambda line: tqdm.write(line, file=sys.stderr)))
        try:
            with stop:
                training.fit(callbacks, stop=stop.requested)
        except KeyboardInterrupt:  # a second Ctrl-C: the step under way is no step's state
            kept = f"step {self._saved_step()}" if self.writes else "the last step saved"
            raise Interrupted(f"interrupted during step {self.step + 1}; not saved (the "
                              f"checkpoint of {kept} is kept); continue with: "
                              f"{resume_command(self.folder)}", 130, every_rank=False) from None
        finally:
            if bar is not None:
                bar.close()
        self.save_checkpoint()  # before any picture: a failing plot loses nothing
        if stop.signal is not None:
            raise Interrupted(f"interrupted at step {self.step}; saved {self.checkpoint_path}; "
                              f"continue with: {resume_command(self.folder)}",
                              EXIT_SIGNALS[stop.signal])
        if not self.writes:
            return
        self.finish_pictures()
        seconds = time.perf_counter() - start
        print(f"done: {self.step - start_step} steps in {seconds:.1f} s "
              f"({(self.step - start_step) / max(seconds, 1e-9):.1f} steps/s); "
              f"run folder {self.folder}")

    def _saved_step(self) -> int:
        return int(self.store.load_checkpoint("cpu")["step"])

    def _bar(self):
        if not self.progress:
            return None
        return tqdm(total=self.steps, initial=self.step, unit="step", dynamic_ncols=True,
                    desc=f"{self.config['variant']} {self.config['dataset']}")

    def _report(self, bar, losses, start, start_step):
        short = {k: f"{v:.3f}" for k, v in losses.items() if k in ("d_loss", "g_loss",
                                                                     "wasserstein")}
        if bar is not None:
            bar.set_postfix(epoch=self.loader.epoch, **short, refresh=False)
            bar.update(1)
        elif self.writes and (self.step % 100 == 0 or self.step == self.steps):
            rate = (self.step - start_step) / max(time.perf_counter() - start, 1e-9)
            print(f"step {self.step}/{self.steps} epoch {self.loader.epoch} "
                  + " ".join(f"{k} {v}" for k, v in short.items()) + f" ({rate:.1f} step/s)",
                  flush=True)


class Interrupted(Exception):
    """The run was stopped by a signal; `code` is the exit status (130 SIGINT, 143 SIGTERM).
    `every_rank`: every rank stopped after the same step (not so for a second Ctrl-C)."""

    def __init__(self, message: str, code: int, every_rank: bool = True):
        super().__init__(message)
        self.code, self.every_rank = code, every_rank


class _StopRequests:
    """Ctrl-C (SIGINT) and SIGTERM ask the run to stop after the step under way.

    A step interrupted halfway has updated D but not G: a checkpoint of that would not be
    any step's state. So the first signal is only noted (the loop stops after the step and
    saves); a second Ctrl-C stops at once, unsaved. Off the main thread, where Python
    cannot catch signals, nothing changes.
    """

    def __init__(self):
        self.signal = None
        self._previous = {}

    def requested(self) -> bool:
        """Whether to stop after this step. Ranks agree (on the largest signal number any
        of them got), so that all stop after the same step, with the same exit status."""
        if distributed.get_world_size() > 1:
            got = np.array([self.signal or 0], dtype=np.int64)
            distributed.all_reduce(got, distributed.ReduceOp.MAX)
            self.signal = int(got[0]) or None
        return self.signal is not None

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = self.signal or signum
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        if distributed.get_rank() == 0:  # a launcher passes a signal on to every rank
            print(f"\n{name}: stopping after this step and saving (Ctrl-C again to stop at "
                  "once, unsaved)", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in EXIT_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False


def resume_command(folder: str) -> str:
    """The command that continues the run in `folder` on as many processes as this one."""
    world = distributed.get_world_size()
    launcher = f"mpiexec -n {world} " if world > 1 else ""
    return f"{launcher}python -m tinygan.train --resume {folder}"


def _processes(n: int) -> str:
    return f"{n} process" + ("es" if n > 1 else "")


def settings(config) -> dict:
    """A config (or its JSON) without what a resume may change: two runs whose settings
    are equal trained the same GAN the same way."""
    config = json.loads(config) if isinstance(config, str) else json.loads(json.dumps(config))
    return {k: v for k, v in config.items() if k not in RESUMABLE_SETTINGS + ("versions",)}
