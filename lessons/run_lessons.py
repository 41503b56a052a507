"""Run the code of the lessons, so that a lesson can never drift from the engine.

    python lessons/run_lessons.py                   # run every lesson, figures to a temp dir
    python lessons/run_lessons.py 03 09             # only lessons 03 and 09
    python lessons/run_lessons.py --write-figures   # regenerate lessons/figures/*.png, *.svg
    python lessons/run_lessons.py --solutions       # run lessons/solutions/*.py instead

The conventions (also at the top of lessons/README.md):

- A lesson is `lessons/NN-name.md`. Its ```python blocks run in order, in one namespace
  per lesson, as if pasted into one Python session.
- A block is left out of the run when its fence says ```python skip-test, or when the
  line just before the fence is `<!-- skip-test -->`. Use that for long runs whose result
  is a committed file. Blocks in any other language (```bash, ```text) never run.
- A ```output block right after a python block is what that block prints; the runner
  compares it with the real stdout (trailing spaces ignored), so a number in the text is
  checked. Print rounded numbers, so the check holds on every machine.
- The working directory is a fresh temporary folder. Figures go to
  `os.environ.get("LESSON_FIGURES", "my-figures")`: the runner points LESSON_FIGURES at a
  temp folder (under pytest) or at lessons/figures/ (with --write-figures); a reader who
  pastes the code writes into my-figures/ wherever Python runs, never over the committed
  pictures.
- Every python block pastes into the plain Python REPL: no blank line inside a def, class
  or loop (the REPL ends the statement there), and a blank line after one before the next
  statement. `paste_errors` checks that, as `code.InteractiveConsole` reads a paste.
- MPLBACKEND=Agg; numpy's global seed and tinygan.manual_seed are set to 0 before a
  lesson starts (lessons still seed explicitly where it matters, for the reader).
- OpenBLAS runs on one thread while a lesson runs (restored afterwards): the lessons'
  matrices are small, and on a shared machine threads that wait for a core made the
  lessons five times slower than one thread.
"""
from __future__ import annotations

import argparse
import code
import contextlib
import io
import os
import re
import runpy
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LESSONS_DIR = Path(__file__).resolve().parent
FIGURES_DIR = LESSONS_DIR / "figures"
SOLUTIONS_DIR = LESSONS_DIR / "solutions"
LESSON_GLOB = "[0-9][0-9]-*.md"
SKIP_COMMENT = "<!-- skip-test -->"

_FENCE = re.compile(r"^(```+|~~~+)\s*(.*)$")


@dataclass
class Block:
    """One fenced code block: its language, flags from the info string, code, line."""
    lang: str
    flags: tuple
    code: str
    line: int  # 1-based line of the opening fence
    skip: bool = False


def lesson_files(directory: Path = LESSONS_DIR) -> list[Path]:
    return sorted(directory.glob(LESSON_GLOB))


def solution_files(directory: Path = SOLUTIONS_DIR) -> list[Path]:
    return sorted(directory.glob("[0-9][0-9]-*.py"))


def lesson_path(number: str) -> Path:
    """lessons/NN-*.md for a lesson number such as "09"."""
    found = [p for p in lesson_files() if p.name[:2] == f"{int(number):02d}"]
    if len(found) != 1:
        raise LessonError(f"no lesson numbered {number} in {LESSONS_DIR}")
    return found[0]


def extract_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, in order."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = _FENCE.match(lines[i].strip())
        if not m:
            i += 1
            continue
        fence, info = m.group(1), m.group(2).split()
        lang, flags = (info[0].lower() if info else ""), tuple(f.lower() for f in info[1:])
        prev = lines[i - 1].strip() if i > 0 else ""
        start, body, i = i, [], i + 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"unclosed code fence opened at line {start + 1}")
        i += 1
        blocks.append(Block(lang, flags, "\n".join(body) + "\n", start + 1,
                            skip="skip-test" in flags or prev == SKIP_COMMENT))
    return blocks


class _Paste(code.InteractiveConsole):
    """Reads a paste line by line as the plain REPL does, and compiles it; runs nothing."""

    def __init__(self):
        super().__init__()
        self.errors, self.line = [], 0

    def runcode(self, compiled):
        pass

    def showsyntaxerror(self, filename=None, **kwargs):
        error = sys.exc_info()[1]
        self.errors.append(f"pasted line {self.line}: {type(error).__name__}: {error.msg}")


def paste_errors(source: str) -> list[str]:
    """The syntax errors that pasting `source` into the Python REPL gives (then Enter)."""
    console = _Paste()
    for console.line, line in enumerate(source.splitlines() + [""], 1):
        console.push(line)
    return console.errors


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


class LessonError(AssertionError):
    pass


def run_lesson(path: Path, figures_dir: Path | None = None, workdir: Path | None = None,
               verbose: bool = False) -> dict:
    """Run the python blocks of one lesson; raise LessonError naming the failing block.
    Returns the counts of blocks that ran and were skipped, and the lesson's namespace."""
    path = Path(path)
    blocks = extract_blocks(path.read_text(encoding="utf-8"))
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lesson-")))
        if figures_dir is None:
            figures_dir = workdir / "figures"
        figures_dir = Path(figures_dir).resolve()
        figures_dir.mkdir(parents=True, exist_ok=True)

        old_env = {k: os.environ.get(k) for k in ("LESSON_FIGURES", "MPLBACKEND")}
        old_cwd = os.getcwd()
        os.environ["LESSON_FIGURES"] = str(figures_dir)
        os.environ["MPLBACKEND"] = "Agg"
        stack.callback(_restore, old_env, old_cwd)
        os.chdir(workdir)

        import numpy as np
        import tinygan
        stack.enter_context(one_blas_thread())
        np.random.seed(0)
        tinygan.manual_seed(0)

        namespace = {"__name__": "__lesson__", "__file__": str(path)}
        ran, skipped, last_stdout = 0, 0, None
        for block in blocks:
            if block.lang == "output":
                if last_stdout is None:
                    raise LessonError(f"{path.name}:{block.line}: an ```output block must "
                                      "follow a python block that ran")
                want, got = _normalise(block.code), _normalise(last_stdout)
                if want != got:
                    raise LessonError(f"{path.name}:{block.line}: the output shown differs "
                                      f"from what the code prints.\n--- shown ---\n{want}\n"
                                      f"--- printed ---\n{got}")
                last_stdout = None
                continue
            last_stdout = None
            if block.lang not in ("python", "py"):
                continue
            if block.skip:
                skipped += 1
                continue
            buffer = io.StringIO()
            t0 = time.perf_counter()
            try:
                code = compile(block.code, f"{path.name}:{block.line}", "exec")
                with contextlib.redirect_stdout(buffer):
                    exec(code, namespace)
            except Exception as exc:
                raise LessonError(f"{path.name}: the python block at line {block.line} "
                                  f"failed: {type(exc).__name__}: {exc}\n{buffer.getvalue()}"
                                  ) from exc
            finally:
                _close_figures()
            last_stdout = buffer.getvalue()
            if verbose:
                sys.stdout.write(last_stdout)
                print(f"  [{path.name}:{block.line}] {time.perf_counter() - t0:.2f} s",
                      file=sys.stderr)
            ran += 1
    return {"ran": ran, "skipped": skipped, "namespace": namespace}


def lesson_namespace(number: str) -> dict:
    """What pasting lesson `number` leaves defined (its figures go to a temp folder): a
    solution builds on the lesson's code with `Value = lesson_namespace("01")["Value"]`."""
    with tempfile.TemporaryDirectory(prefix="lesson-") as tmp:
        return run_lesson(lesson_path(number), workdir=Path(tmp))["namespace"]


def run_solution(path: Path, figures_dir: Path | None = None, workdir: Path | None = None,
                 quick: bool = True) -> None:
    """Run one solutions/NN-*.py as `python` would, in a temp folder (or `workdir`);
    quick=True sets LESSON_QUICK=1, which the solutions that train read to train less."""
    path = Path(path).resolve()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="solution-")))
        figures_dir = Path(figures_dir or Path(workdir) / "figures").resolve()
        figures_dir.mkdir(parents=True, exist_ok=True)
        old_env = {k: os.environ.get(k) for k in ("LESSON_FIGURES", "MPLBACKEND", "LESSON_QUICK")}
        stack.callback(_restore, old_env, os.getcwd())
        os.environ.update(LESSON_FIGURES=str(figures_dir), MPLBACKEND="Agg",
                          LESSON_QUICK="1" if quick else "0")
        os.chdir(workdir)
        stack.enter_context(one_blas_thread())
        import numpy as np
        import tinygan
        np.random.seed(0)
        tinygan.manual_seed(0)
        try:
            runpy.run_path(str(path), run_name="__main__")
        except Exception as exc:
            raise LessonError(f"{path.name} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            _close_figures()


_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                 "openblas_set_num_threads64_", "openblas_set_num_threads")


@contextlib.contextmanager
def one_blas_thread():
    """Run OpenBLAS (NumPy's BLAS) on one thread inside the block, if it can be found."""
    import ctypes
    setter = getter = None
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
        for path in paths:
            lib = ctypes.CDLL(path)
            for name in _BLAS_SETTERS:
                if hasattr(lib, name) and hasattr(lib, name.replace("set", "get")):
                    setter, getter = getattr(lib, name), getattr(lib, name.replace("set", "get"))
                    break
            if setter is not None:
                break
    except OSError:  # no /proc (macOS, Windows) or a library that will not load: leave it
        pass
    if setter is None:
        yield
        return
    before = getter()
    setter(1)
    try:
        yield
    finally:
        setter(before)


def _restore(old_env, old_cwd):
    os.chdir(old_cwd)
    for k, v in old_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _close_figures():
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers or files (default: all)")
    parser.add_argument("--write-figures", action="store_true",
                        help=f"write figures into {FIGURES_DIR} instead of a temp folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what blocks print")
    parser.add_argument("--solutions", action="store_true",
                        help="run the worked solutions (lessons/solutions/) in full")
    args = parser.parse_args(argv)

    paths = solution_files() if args.solutions else lesson_files()
    if args.lessons:
        wanted = set(args.lessons)
        paths = [p for p in paths if p.name[:2] in wanted or str(p) in wanted or p.name in wanted]
    failures = 0
    for path in paths:
        t0 = time.perf_counter()
        try:
            if args.solutions:
                run_solution(path, quick=False)
                print(f"ok    {path.name}: {time.perf_counter() - t0:.1f} s")
                continue
            result = run_lesson(path, FIGURES_DIR if args.write_figures else None,
                                verbose=args.verbose)
            print(f"ok    {path.name}: {result['ran']} blocks, {result['skipped']} skipped, "
                  f"{time.perf_counter() - t0:.1f} s")
        except LessonError as exc:
            failures += 1
            print(f"FAIL  {path.name}: {exc}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
