"""Every lesson's code runs, in order, and prints what the lesson says it prints; every
block pastes into the plain Python REPL; every lesson's worked solutions run.

One test per lessons/NN-*.md; the conventions are in lessons/run_lessons.py and at the top
of lessons/README.md. Figures go to a temporary folder, so the repository stays clean;
`python lessons/run_lessons.py --write-figures` regenerates the committed ones.
"""
import code
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

LESSONS = Path(__file__).resolve().parent.parent / "lessons"

_spec = importlib.util.spec_from_file_location("run_lessons", LESSONS / "run_lessons.py")
run_lessons = importlib.util.module_from_spec(_spec)
sys.modules["run_lessons"] = run_lessons  # dataclasses look their module up there
_spec.loader.exec_module(run_lessons)


@pytest.mark.parametrize("path", run_lessons.lesson_files(LESSONS), ids=lambda p: p.stem)
def test_lesson(path, tmp_path):
    run_lessons.run_lesson(path, figures_dir=tmp_path / "figures", workdir=tmp_path)


def test_extract_blocks_conventions():
    text = ("# t\n```python\na = 1\n```\n```output\n1\n```\n"
            "```python skip-test\nb = 2\n```\n<!-- skip-test -->\n```python\nc = 3\n```\n"
            "```bash\nls\n```\n")
    blocks = run_lessons.extract_blocks(text)
    assert [(b.lang, b.skip) for b in blocks] == [
        ("python", False), ("output", False), ("python", True), ("python", True), ("bash", False)]
    assert blocks[0].code == "a = 1\n"


def test_output_mismatch_is_reported(tmp_path):
    lesson = tmp_path / "99-check.md"
    lesson.write_text("```python\nprint(1 + 1)\n```\n```output\n3\n```\n")
    with pytest.raises(run_lessons.LessonError, match="differs"):
        run_lessons.run_lesson(lesson, workdir=tmp_path)


def test_figures_go_where_LESSON_FIGURES_points(tmp_path):
    lesson = tmp_path / "99-fig.md"
    lesson.write_text("```python\nimport os\nFIGURES = os.environ.get('LESSON_FIGURES', "
                      "'figures')\nopen(os.path.join(FIGURES, 'x.txt'), 'w').write('hi')\n```\n")
    run_lessons.run_lesson(lesson, figures_dir=tmp_path / "out", workdir=tmp_path)
    assert (tmp_path / "out" / "x.txt").read_text() == "hi"


@pytest.mark.parametrize("path", sorted(LESSONS.glob("*.md")), ids=lambda p: p.stem)
def test_relative_links_resolve(path):
    """Every relative link and image of a lesson (figures, ../tinygan/... files) exists."""
    import re
    text = path.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    missing = [t for t in targets if not re.match(r"[a-z]+:|#", t)
               and not (path.parent / t.split("#")[0]).exists()]
    assert not missing, f"{path.name}: links to missing files: {missing}"


# ------------------------------------------------------------- pasting into the REPL


@pytest.mark.parametrize("path", run_lessons.lesson_files(LESSONS), ids=lambda p: p.stem)
def test_every_block_pastes_into_the_python_repl(path):
    """Fed line by line to code.InteractiveConsole, as a paste into `python` is, no block
    (skipped ones included) meets a syntax error."""
    errors = [f"block at line {b.line}: {e}"
              for b in run_lessons.extract_blocks(path.read_text(encoding="utf-8"))
              if b.lang in ("python", "py") for e in run_lessons.paste_errors(b.code)]
    assert not errors, f"{path.name}: " + "; ".join(errors)


def test_paste_errors_finds_what_the_repl_refuses():
    method_after_blank = "class A:\n    x = 1\n\n    def f(self):\n        return 1\n"
    statement_after_loop = "for i in range(2):\n    pass\nprint(i)\n"
    assert run_lessons.paste_errors(method_after_blank)[0] == (
        "pasted line 4: IndentationError: unexpected indent")
    assert run_lessons.paste_errors(statement_after_loop) == [
        "pasted line 3: SyntaxError: invalid syntax"]
    assert run_lessons.paste_errors("for i in range(2):\n    pass\n\nprint(i)\n") == []


class _PasteAndRun(code.InteractiveConsole):
    """A REPL session: runs what is pasted and keeps the first error."""

    def __init__(self):
        super().__init__()
        self.failure = None

    def showtraceback(self):
        self.failure = self.failure or repr(sys.exc_info()[1])

    def showsyntaxerror(self, filename=None, **kwargs):
        self.failure = self.failure or repr(sys.exc_info()[1])


#: the run folders each skipped block reads, as the commands the lessons give write them
RUN_FILES = {
    "09": ["runs/vanilla-mnist/samples/step_0002000.png", "runs/vanilla-mnist/losses.png"],
    "10": ["runs/ring8-vanilla/samples/step_0001000.png",
           "runs/ring8-pack2/samples/step_0001000.png"],
    "11": [f"runs/dcgan-mnist/samples/step_{s:07d}.png" for s in range(0, 301, 100)],
}


@pytest.mark.parametrize("number", sorted(RUN_FILES))
def test_skipped_blocks_work_when_pasted_after_their_command(number, tmp_path, monkeypatch):
    """A fresh REPL in the folder where the lesson's command ran: the block that turns the
    run's files into the lesson's pictures runs, and writes them to the learner's folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LESSON_FIGURES", raising=False)
    for name in RUN_FILES[number]:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((16, 24), np.uint8)).save(name)
    lesson = run_lessons.lesson_path(number)
    skipped = [b for b in run_lessons.extract_blocks(lesson.read_text(encoding="utf-8"))
               if b.lang == "python" and b.skip]
    assert skipped
    for block in skipped:
        console = _PasteAndRun()
        for line in block.code.splitlines() + [""]:
            console.push(line)
        assert console.failure is None, f"{lesson.name}:{block.line}: {console.failure}"
    pictures = re.findall(r"\(figures/([^)]+)\)", lesson.read_text(encoding="utf-8"))
    made = {p.name for p in (tmp_path / "my-figures").iterdir()}
    assert made and made <= set(pictures)


def test_lessons_never_write_into_the_committed_figures():
    """Pasted anywhere, a lesson writes its pictures to my-figures/ (or LESSON_FIGURES)."""
    for path in run_lessons.lesson_files(LESSONS):
        for block in run_lessons.extract_blocks(path.read_text(encoding="utf-8")):
            if block.lang != "python":
                continue
            assert not re.search(r"""["']figures[/"']""", block.code), (
                f"{path.name}:{block.line} writes to figures/, the committed pictures")
            if "LESSON_FIGURES" in block.code:
                assert 'os.environ.get("LESSON_FIGURES", "my-figures")' in block.code
                assert "os.makedirs(FIGURES, exist_ok=True)" in block.code


# ---------------------------------------------------- building it, and the solutions


@pytest.mark.parametrize("path", run_lessons.lesson_files(LESSONS)[:8], ids=lambda p: p.stem)
def test_lessons_01_to_08_build_it_yourself_first(path):
    """The thread: the learner writes the op, checks it against tinygan's, then moves on."""
    headings = re.findall(r"^### (.*)$", path.read_text(encoding="utf-8"), re.M)
    build = next(i for i, h in enumerate(headings) if h.startswith("Build it yourself"))
    assert any(h.startswith("Check it against tinygan")
               or h.startswith("Build it yourself, checked against tinygan")
               for h in headings[build:]), path.name


@pytest.mark.parametrize("path", run_lessons.lesson_files(LESSONS), ids=lambda p: p.stem)
def test_every_lesson_has_its_worked_solutions(path):
    solution = LESSONS / "solutions" / (path.stem + ".py")
    assert solution.exists(), f"{solution.name} is missing"
    assert f"](solutions/{solution.name})" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", run_lessons.solution_files(), ids=lambda p: p.stem)
def test_solution_runs(path, tmp_path):
    """Each solution file runs to the end: its asserts check what its comments claim (the
    ones that train run shorter here, with LESSON_QUICK=1)."""
    run_lessons.run_solution(path, workdir=tmp_path, quick=True)
