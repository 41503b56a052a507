"""Every lesson as a Jupyter notebook, made from its Markdown (nbformat does the writing).

    python lessons/make_notebooks.py            # (re)write lessons/notebooks/NN-name.ipynb
    python lessons/make_notebooks.py --check    # exit 1 if a notebook is out of date

The lesson (lessons/NN-name.md) is the source; tests/test_notebooks.py fails when a
notebook is not what this script makes of it. What becomes what:

- Markdown between code blocks becomes markdown cells. Relative links gain a "../" (the
  notebooks sit one folder below the lessons), so they still point at the same files.
- A ```python block becomes a code cell. A block the tests skip (a long run's result)
  becomes a code cell tagged "skip-execution" (nbclient skips it), whose first line says
  what it needs.
- A ```output block becomes a markdown cell showing what the cell above prints.
- A picture the lesson's own code draws shows in the notebook where the code makes it: a
  matplotlib figure inline, a draw_graph graph as the cell's value; a picture written to a
  file by other means (PIL, a closed figure) gets a cell that displays the file. A picture
  made by a long run outside the notebook is embedded as an attachment of its markdown
  cell, so the notebook shows it anywhere, Colab included.
"""
from __future__ import annotations

import argparse
import base64
import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from run_lessons import FIGURES_DIR, LESSONS_DIR, SKIP_COMMENT, extract_blocks, lesson_files

NOTEBOOKS_DIR = LESSONS_DIR / "notebooks"
_IMAGE = re.compile(r"!\[([^\]]*)\]\(figures/([^)\s]+)\)")
_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#|/)([^)\s]+)\)")
SKIPPED_NOTE = "# Not run by the tests: it needs the long run described above.\n"
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def notebook_path(lesson: Path) -> Path:
    return NOTEBOOKS_DIR / (lesson.stem + ".ipynb")


def _relink(markdown: str) -> str:
    """Relative links as seen from lessons/notebooks/ (pictures are handled before)."""
    return _LINK.sub(lambda m: f"](../{m.group(1)})", markdown)


def _shown_by_its_cell(code: str) -> bool:
    """Does the code cell that drew a picture show it by itself? A matplotlib figure that
    is saved and left open shows inline; draw_graph's Graph shows itself when it is the
    cell's value (the last line)."""
    last = code.strip().splitlines()[-1]
    return ("savefig(" in code and "close(" not in code) or "draw_graph(" in last or \
        (last.isidentifier() and "draw_graph(" in code)


class _Builder:
    """Cells in order; pictures resolved against the code cells made so far."""

    def __init__(self, lesson: Path):
        self.lesson, self.cells, self.markdown, self.code_run = lesson, [], [], []

    def cell_id(self) -> str:
        return f"{self.lesson.name[:2]}-{len(self.cells):03d}"

    def add(self, cell):
        cell["id"] = self.cell_id()
        self.cells.append(cell)

    def flush_markdown(self):
        text = "\n".join(self.markdown).strip("\n")
        self.markdown = []
        if not text.strip():
            return
        attachments, shows = {}, []

        def picture(m):
            alt, name = m.group(1), m.group(2)
            maker = next((code for code in reversed(self.code_run) if name.rsplit(".", 1)[0]
                          in code), None)
            if maker is None:  # made by a long run outside the notebook: embed it
                data = base64.b64encode((FIGURES_DIR / name).read_bytes()).decode("ascii")
                mime = "image/svg+xml" if name.endswith(".svg") else "image/png"
                attachments[name] = {mime: data}
                return f"![{alt}](attachment:{name})"
            if not _shown_by_its_cell(maker):
                shows.append(name)
            return f"*{alt}*"
        text = _IMAGE.sub(picture, text)
        for name in shows:  # a picture on disk only: show the file the code just wrote
            self.add(new_code_cell("from IPython.display import Image\n"
                                   f'Image(filename=os.path.join(FIGURES, "{name}"))'))
        cell = new_markdown_cell(_relink(text))
        if attachments:
            cell["attachments"] = attachments
        self.add(cell)


def make_notebook(lesson: Path):
    """The notebook of one lesson (an nbformat NotebookNode)."""
    text = lesson.read_text(encoding="utf-8")
    blocks = {b.line: b for b in extract_blocks(text)}
    lines = text.splitlines()
    build = _Builder(lesson)
    i = 0
    while i < len(lines):
        block = blocks.get(i + 1)
        if block is None:
            if lines[i].strip() != SKIP_COMMENT:
                build.markdown.append(lines[i])
            i += 1
            if i == 1:  # after the title: where this notebook comes from
                build.flush_markdown()
                build.add(new_markdown_cell(
                    f"*Made from [the lesson](../{lesson.name}) by `lessons/make_notebooks.py`."
                    " Run it from `lessons/notebooks/` after `pip install -e .` in the "
                    "repository, or in Colab: see [the lessons' README](../README.md#in-colab).*"))
            continue
        end = i + 1 + len(block.code.splitlines()) + 1  # the fence, the code, the fence
        if block.lang in ("python", "py"):
            build.flush_markdown()
            code = block.code.rstrip("\n")
            if block.skip:
                cell = new_code_cell(SKIPPED_NOTE + code)
                cell["metadata"]["tags"] = ["skip-execution"]
            else:
                cell = new_code_cell(code)
                build.code_run.append(code)
            build.add(cell)
        elif block.lang == "output":
            build.flush_markdown()
            build.add(new_markdown_cell("It prints:\n\n```text\n" + block.code.rstrip("\n")
                                        + "\n```"))
        else:
            build.markdown.extend(lines[i:end])
        i = end
    build.flush_markdown()
    nb = new_notebook(cells=build.cells, metadata={
        "kernelspec": KERNEL, "language_info": {"name": "python"}})
    return nb


def notebook_text(lesson: Path) -> str:
    return nbformat.writes(make_notebook(lesson)) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a notebook differs from its lesson")
    args = parser.parse_args(argv)
    NOTEBOOKS_DIR.mkdir(exist_ok=True)
    stale = []
    for lesson in lesson_files():
        path, text = notebook_path(lesson), notebook_text(lesson)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    print(f"{len(stale)} notebook(s) {verb}" + (f": {', '.join(stale)}" if stale else ""))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
