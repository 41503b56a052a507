"""`python -m tinygan.train VARIANT DATASET`: train a GAN and watch it learn.

A run folder (default runs/VARIANT-DATASET-TIMESTAMP/, named when the run starts) collects
everything:
  config.json          every setting, the versions, the seed
  samples/             a grid from one fixed batch of z every --sample-every steps
                       (for 2D data: generated points over the real mixture)
  training.gif         the grids in order, each labelled with its step
  losses.csv, .png     every loss at every generator step
  checkpoints/latest.npz   models, optimisers, step, random states: at the start, every
                       epoch (or --checkpoint-every N steps), at the end, and on Ctrl-C or
                       SIGTERM. `--resume RUN` continues from it and ends bit-identical to
                       a run that was never interrupted.
What survives a crash is in run_folder.py: the checkpoint and losses.csv always agree.

`mpiexec -n N python -m tinygan.train ...` trains the same GAN on N processes
(data parallelism): --batch-size stays the whole batch, split among them, so the run is
the one a single process would train, up to the order of floating-point sums. Rank 0
writes the run folder; one rank failing stops them all, its error shown.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from . import backend, distributed, launch, threads
from .data import DATASETS, NAMES, DatasetError
from .gans import VARIANTS, DataInfo, defaults
from .run import Interrupted, Run, resume_command
from .run_folder import RunFolder, RunFolderError
from .training import TrainingDiverged, load_dataset

REMEDY_FLAGS = ("feature_matching", "minibatch_discrimination", "pack", "label_smoothing")
TUNABLE = ("batch_size", "lr_g", "lr_d", "lr_decay", "betas", "z_dim", "n_critic")
#: flags a resumed run may change; every other flag given with --resume is refused
RESUMABLE = ("steps", "epochs", "sample_every", "eval_every", "checkpoint_every",
             "doctor_every", "no_progress", "threads")
#: settings whose default is not the variant's (None in the parser: "not given")
DEFAULTS = dict(seed=0, sample_every=500, eval_every=0, doctor_every=500, pack=1,
                label_smoothing=0.0)
#: flag -> smallest value it takes
MINIMUM = dict(epochs=1, steps=1, batch_size=2, z_dim=1, n_critic=1, sample_every=1,
               eval_every=0, checkpoint_every=1, doctor_every=0, pack=1, image_size=4)


def _defaults_table() -> str:
    lines = ["defaults (from each paper; images 28x28 / 2D points):"]
    for name, (module, _) in VARIANTS.items():
        for info in (DataInfo("image", (1, 28, 28), 10), DataInfo("points", (2,), 8)):
            try:
                d = module.defaults(info)
            except ValueError:
                continue
            keys = ", ".join(f"{k}={v}" for k, v in d.items())
            lines.append(f"  {name:8s} {info.kind:6s} {keys}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tinygan.train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a GAN from scratch on real data.",
        epilog=(f"variants: {', '.join(VARIANTS)}\ndatasets: {', '.join(NAMES)}\n\n"
                + _defaults_table()))
    p.add_argument("variant", nargs="?", help="one of: " + ", ".join(VARIANTS)
                   + " (not needed with --resume)")
    p.add_argument("dataset", nargs="?", help="one of: " + ", ".join(NAMES))
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="total length of the run in epochs")
    length.add_argument("--steps", type=int, help="total length in generator steps")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr-g", type=float)
    p.add_argument("--lr-d", type=float)
    p.add_argument("--lr-decay", choices=("none", "linear"),
                   help="linear: both learning rates fall linearly to 0 over the run "
                        "(default none)")
    p.add_argument("--betas", type=float, nargs=2, metavar=("BETA1", "BETA2"))
    p.add_argument("--z-dim", type=int)
    p.add_argument("--n-critic", type=int, help="discriminator updates per generator update")
    p.add_argument("--device", help="cpu or cuda (default $TINYGAN_DEVICE or cpu)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--data-dir", help="where to look for data first")
    p.add_argument("--image-size", type=int,
                   help="image side for folder:, celeba and flowers (default: their own)")
    p.add_argument("--out", help="run folder (default runs/VARIANT-DATASET-TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    p.add_argument("--sample-every", type=int, help="steps between sample grids (default 500)")
    p.add_argument("--eval-every", type=int,
                   help="steps between quality evaluations (FID or mode coverage); 0: off")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="steps between checkpoints (default: at the end of every epoch)")
    p.add_argument("--doctor-every", type=int, metavar="N",
                   help="steps between the doctor's check-ups: per-layer gradient norms "
                        "(gradients.csv), G's mode or class coverage (coverage.csv) and a "
                        "one-line warning when something goes wrong; 0: off (default 500); "
                        "python -m tinygan.doctor RUN reads them")
    p.add_argument("--threads", type=threads.thread_flag, metavar="N|auto",
                   help="threads to compute on (BLAS and tinygan's own, one pool). auto, the "
                        "default unless $TINYGAN_NUM_THREADS, $OMP_NUM_THREADS or "
                        "$OPENBLAS_NUM_THREADS gives a number: time the first steps at 1, "
                        "2, 4, ... threads up to the cores, keep the fastest (the fewest "
                        "within 5%% of it), check again every 500 steps. The results are the "
                        "same bits on any count")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of bars")
    remedies = p.add_argument_group("remedies for mode collapse")
    remedies.add_argument("--feature-matching", action="store_true",
                          help="G matches D's mean features (Salimans et al. 2016)")
    remedies.add_argument("--minibatch-discrimination", action="store_true",
                          help="D sees batch statistics (Salimans et al. 2016)")
    remedies.add_argument("--pack", type=int, metavar="N",
                          help="D judges N samples at once (PacGAN, Lin et al. 2018)")
    remedies.add_argument("--label-smoothing", type=float, nargs="?", const=0.1,
                          metavar="S", help="real targets 1 - S (default S 0.1)")
    options = p.add_argument_group("variant options")
    options.add_argument("--minimax", action="store_true",
                         help="vanilla: the original saturating G loss log(1 - D(G(z)))")
    options.add_argument("--projection", action="store_true",
                         help="cgan: projection discriminator (Miyato & Koyama 2018)")
    return p


def check_arguments(args) -> None:
    """Every number in range, and the device there, before any file is written."""
    for name, least in MINIMUM.items():
        value = getattr(args, name, None)
        if value is not None and value < least:
            raise ValueError(f"--{name.replace('_', '-')} must be at least {least}, "
                             f"got {value}")
    if args.label_smoothing is not None and not 0 <= args.label_smoothing < 1:
        raise ValueError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.device is not None and backend.check_device(args.device) == "cuda":
        backend.cupy_module()  # a RuntimeError that says what to install


def given(args) -> list:
    """The flags given on the command line (for --resume, which takes only some)."""
    return [name for name, value in vars(args).items()
            if name not in ("variant", "dataset", "resume") and value not in (None, False)]


# ------------------------------------------------------------------------ settings


def make_config(args, info: DataInfo) -> dict:
    size = getattr(args, "image_size", None)
    if size is not None and (info.kind != "image" or info.shape[1:] != (size, size)):
        raise ValueError(f"--image-size {size}: {args.dataset} has samples of shape "
                         f"{tuple(info.shape)} (only folder:, celeba and flowers are resized)")
    config = defaults(args.variant, info)
    for key in TUNABLE:
        value = getattr(args, key)
        if value is not None:
            config[key] = tuple(value) if key == "betas" else value
    set_length(config, args)
    config.update(variant=args.variant, dataset=args.dataset,
                  device=backend.check_device(args.device or backend.default_device()),
                  feature_matching=args.feature_matching,
                  minibatch_discrimination=args.minibatch_discrimination,
                  minimax=args.minimax, data_dir=args.data_dir, image_size=args.image_size)
    for key, default in DEFAULTS.items():
        value = getattr(args, key)
        config[key] = default if value is None else value
    config["checkpoint_every"] = args.checkpoint_every
    if args.projection:
        config["projection"] = True
    if config["pack"] > 1 and config["batch_size"] % config["pack"]:
        raise ValueError(f"--pack {config['pack']} must divide the batch size "
                         f"{config['batch_size']}")
    check_processes(config)
    return config


def check_processes(config: dict) -> None:
    """The batch must split into one equal share per process."""
    world = distributed.get_world_size()
    if config["batch_size"] % world:
        raise ValueError(f"--batch-size {config['batch_size']} is the whole batch, split "
                         f"among the {world} processes: give a multiple of {world}")


def set_length(config: dict, args) -> None:
    """--steps or --epochs, if given, replaces the run's length (whichever it had)."""
    if args.steps is not None:
        config.pop("epochs", None)
        config["steps"] = args.steps
    elif args.epochs is not None:
        config.pop("steps", None)
        config["epochs"] = args.epochs


def resume_config(args) -> dict:
    """The config of the run in args.resume, with the flags a resumed run may change."""
    refused = [name for name in given(args) if name not in RESUMABLE]
    if refused:
        flags = ", ".join("--" + name.replace("_", "-") for name in refused)
        kept = ", ".join("--" + name.replace("_", "-") for name in RESUMABLE)
        raise ValueError(f"{flags} cannot change a run in progress (--resume keeps every "
                         f"setting but {kept}); start a new run instead")
    config = RunFolder(args.resume).read_config()
    set_length(config, args)
    for name in ("sample_every", "eval_every", "checkpoint_every", "doctor_every"):
        if getattr(args, name) is not None:
            config[name] = getattr(args, name)
    return config


# ------------------------------------------------------------------------ the command


def _new_run_setup(args):
    """(config, folder, dataset) of a new run, or raise ValueError/DatasetError."""
    if args.variant is None or args.dataset is None:
        raise ValueError("give a VARIANT and a DATASET (or --resume RUN); valid variants: "
                         f"{', '.join(VARIANTS)}")
    if args.variant not in VARIANTS:
        raise ValueError(f"unknown variant {args.variant!r}; valid: {', '.join(VARIANTS)}")
    if args.dataset not in DATASETS and not args.dataset.startswith("folder:"):
        raise ValueError(f"unknown dataset {args.dataset!r}; valid: {', '.join(DATASETS)}, "
                         "folder:PATH")
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a file; give a folder for the run")
    # loaded once here and handed to the run, so that its notices print once
    dataset = load_dataset(vars(args))
    config = make_config(args, DataInfo.of(dataset))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = args.out or os.path.join("runs", f"{args.variant}-{args.dataset}-{stamp}")
    return config, folder, dataset


def main(argv=None) -> int:
    args = parser().parse_args(argv)  # a bad flag stops every rank alike, before MPI starts
    launch.init_from_launcher(args.device)  # under mpiexec: join the other processes
    with distributed.abort_on_error():  # a rank that fails alone ends every rank
        return _main(args)


def _main(args) -> int:
    """The command, on every rank. Where an error may strike some ranks only (a dataset
    missing on one node, rank 0 writing the folder) the ranks agree on it
    (launch.first_error) and all end there; rank 0 says why."""
    try:
        config, folder, dataset = _setup(args)
        if config["device"] == "cuda" and distributed.get_backend() == "mpi":
            raise ValueError("the run trains on cuda: start mpiexec with TINYGAN_DEVICE=cuda, "
                             "so that the processes exchange gradients through NCCL")
    except (DatasetError, RunFolderError, ValueError, RuntimeError) as e:
        where = f"--resume {args.resume}: " if args.resume else ""
        _say(f"error: {where}{e}")
        return 2
    _say(f"tinygan {config['variant']} on {config['dataset']}: "
         + ", ".join(f"{k}={v}" for k, v in config.items() if k not in ("variant", "dataset")),
         sys.stdout)
    _say(f"run folder: {folder}", sys.stdout)
    run = error = None
    try:
        run = Run(config, folder, resume=bool(args.resume), progress=not args.no_progress,
                  dataset=dataset, threads=args.threads)
    except (DatasetError, RunFolderError, ValueError) as e:  # e.g. a remedy this variant
        error = str(e)                                       # does not take
    error = launch.first_error(error)
    if error:
        if run is not None:
            run.store.release()
        _say(f"error: {error}")
        return 2
    try:
        run.train()
    except TrainingDiverged as e:  # the losses are every rank's: all stop here
        _say(f"error: {e}; stopping; {_kept(run)}")
        return 1
    except RunFolderError as e:  # rank 0 alone writes: the others wait for it
        print(f"error: {e}; {_kept(run)}", file=sys.stderr)
        return _alone(1)
    except Interrupted as e:
        if not e.every_rank:
            print(f"\n{e}", file=sys.stderr)
            return _alone(e.code)
        _say(f"\n{e}")
        return e.code
    except KeyboardInterrupt:  # before the loop began: nothing trained, nothing to save
        print(f"\ninterrupted; continue with: {resume_command(folder)}", file=sys.stderr)
        return _alone(130)
    return 0


def _setup(args):
    """(config, folder, dataset): the settings, checked, and the data, on every rank.
    Rank 0 reads a run's config to resume, and names a new run's folder, for all."""
    config = folder = dataset = error = None
    try:
        check_arguments(args)
        if not args.resume:
            config, folder, dataset = _new_run_setup(args)
        elif distributed.get_rank() == 0:
            config, folder = resume_config(args), args.resume
    except (DatasetError, RunFolderError, ValueError, RuntimeError) as e:
        error = e
    _agree(error)
    handed = [config, folder]
    distributed.broadcast_object_list(handed, src=0)
    config, folder = handed
    if args.resume:  # every rank reads the data itself
        try:
            dataset = load_dataset(config)
            check_processes(config)
        except (DatasetError, ValueError) as e:
            error = e
        _agree(error)
    return config, folder, dataset


def _agree(error: Exception | None) -> None:
    """Raise on every rank the first error of any rank (launch.first_error)."""
    message = launch.first_error(None if error is None else str(error))
    if message is not None:
        raise ValueError(message)


def _say(message: str, file=None) -> None:
    """Print what every rank would say alike, once (rank 0)."""
    if distributed.get_rank() == 0:
        print(message, file=file or sys.stderr, flush=True)


def _alone(code: int) -> int:
    """The exit status of a failure of this rank alone. With several ranks the others
    wait for it in a collective: exiting through distributed.abort_on_error ends them."""
    if distributed.get_world_size() > 1:
        sys.exit(code)
    return code


def _kept(run: Run) -> str:
    """Where a stopped run can continue from, for its last message (rank 0's)."""
    if not run.writes:
        return ""
    try:
        step = run._saved_step()
    except RunFolderError:
        return "no checkpoint was written"
    return (f"the last good checkpoint is {run.checkpoint_path} (step {step}); continue "
            f"with: {resume_command(run.folder)}")


if __name__ == "__main__":
    sys.exit(main())
