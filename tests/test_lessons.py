"""Every lesson's code runs, in order, and prints what the lesson says it prints.

One test per lessons/NN-*.md; the conventions are in lessons/run_lessons.py and at the top
of lessons/README.md. Figures go to a temporary folder, so the repository stays clean;
`python lessons/run_lessons.py --write-figures` regenerates the committed ones.
"""
import importlib.util
import sys
from pathlib import Path

import pytest

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
