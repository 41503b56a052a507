"""The lessons as notebooks: each is what lessons/make_notebooks.py makes of its lesson, and
one runs end to end in a real Jupyter kernel, printing what its lesson says it prints and
showing its figure inline.
"""
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebooks need nbformat: "
                                                  "pip install -e '.[dev]'")

LESSONS = Path(__file__).resolve().parent.parent / "lessons"
sys.path.insert(0, str(LESSONS))
import make_notebooks  # noqa: E402
import run_lessons  # noqa: E402

LESSON_FILES = run_lessons.lesson_files(LESSONS)


@pytest.mark.parametrize("lesson", LESSON_FILES, ids=lambda p: p.stem)
def test_notebook_is_made_from_its_lesson(lesson):
    path = make_notebooks.notebook_path(lesson)
    assert path.exists(), f"{path.name} is missing: run python lessons/make_notebooks.py"
    assert path.read_text(encoding="utf-8") == make_notebooks.notebook_text(lesson), (
        f"{path.name} differs from what {lesson.name} makes: run python "
        "lessons/make_notebooks.py (edit the lesson, not the notebook)")
    nbformat.validate(nbformat.reads(path.read_text(encoding="utf-8"), 4))


def test_every_notebook_has_its_lesson():
    made = {make_notebooks.notebook_path(p).name for p in LESSON_FILES}
    assert {p.name for p in make_notebooks.NOTEBOOKS_DIR.glob("*.ipynb")} == made


def test_cells_follow_the_lessons_conventions(tmp_path, monkeypatch):
    monkeypatch.setattr(make_notebooks, "FIGURES_DIR", LESSONS / "figures")
    lesson = tmp_path / "42-demo.md"
    lesson.write_text(
        "# 42 · Demo\n\nSee [the code](../tinygan/viz.py).\n\n"
        "```python\nimport os\nFIGURES = 'f'\nfig.savefig(os.path.join(FIGURES, '42-a.png'))\n```\n"
        "```output\nhello\n```\n![a](figures/42-a.png)\n\n"
        "```python\nsave_grid(x, os.path.join(FIGURES, '42-b.png'))\n```\n![b](figures/42-b.png)\n\n"
        "```bash\npython -m tinygan.train vanilla ring8\n```\n<!-- skip-test -->\n"
        "```python\ncopy('runs/x.png')\n```\n![c](figures/09-vanilla-mnist-losses.png)\n")
    nb = make_notebooks.make_notebook(lesson)
    kinds = [(c.cell_type, c.source.splitlines()[0] if c.source else "") for c in nb.cells]
    assert kinds == [
        ("markdown", "# 42 · Demo"),
        ("markdown", kinds[1][1]),                                   # where it comes from
        ("markdown", "See [the code](../../tinygan/viz.py)."),       # one folder down
        ("code", "import os"),                                       # its figure shows inline
        ("markdown", "It prints:"),
        ("markdown", "*a*"),
        ("code", "save_grid(x, os.path.join(FIGURES, '42-b.png'))"),
        ("code", "from IPython.display import Image"),               # a file: displayed
        ("markdown", "*b*"),
        ("code", "# Not run by the tests: it needs the long run described above."),
        ("markdown", "![c](attachment:09-vanilla-mnist-losses.png)"),  # embedded
    ]
    assert "```bash" in nb.cells[8].source
    assert nb.cells[9].metadata["tags"] == ["skip-execution"]
    assert "image/png" in nb.cells[10].attachments["09-vanilla-mnist-losses.png"]
    assert len({c.id for c in nb.cells}) == len(nb.cells)


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def test_a_lesson_runs_in_a_real_jupyter_kernel(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="needs nbclient: pip install -e '.[dev]'")
    pytest.importorskip("ipykernel", reason="needs ipykernel: pip install -e '.[dev]'")
    monkeypatch.delenv("MPLBACKEND", raising=False)       # the kernel's inline backend
    monkeypatch.delenv("LESSON_FIGURES", raising=False)   # the learner's default folder
    lesson = run_lessons.lesson_path("03")
    nb = nbformat.reads(make_notebooks.notebook_path(lesson).read_text(encoding="utf-8"), 4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    checked = 0
    for before, cell in zip(nb.cells, nb.cells[1:]):
        if cell.cell_type == "markdown" and cell.source.startswith("It prints:"):
            shown = re.search(r"```text\n(.*)\n```", cell.source, re.S).group(1)
            assert _normalise(_stdout(before)) == _normalise(shown)
            checked += 1
    assert checked == sum(b.lang == "output" for b in run_lessons.extract_blocks(
        lesson.read_text(encoding="utf-8")))
    figure_cells = [c for c in nb.cells if c.cell_type == "code" and "savefig(" in c.source]
    assert figure_cells and all(any("image/png" in o.get("data", {}) for o in c.outputs)
                                for c in figure_cells)
    assert (tmp_path / "my-figures" / "03-finite-difference-error.png").exists()
