"""Build the chapter notebooks from their reviewable sources.

Each chapter is written as a plain Python file in ``notebooks/src/`` using the "percent" cell
format (the one Jupytext, VS Code and Spyder understand)::

    # %% [markdown]
    # # A heading
    # Some *markdown*.

    # %%
    x = 1 + 1

    # %% tags=["hide-cell", "solution"]
    solution_code()

    # %% alt="Two panels: the loss falls from 1.2 to 0.3 over ten epochs."
    fig = plot_something()

``alt`` is the text alternative of the figures the cell draws (screen readers, and the book when
an image fails to load); it becomes the cell's ``mystnb.image.alt`` metadata.

This script turns ``notebooks/src/NN_name.py`` into ``notebooks/NN_name.ipynb``, keeping the
outputs already stored in the notebook for every code cell whose source did not change (so
re-building never throws away a clean run; ``make notebooks`` re-executes anyway).

Usage: ``python tools/py2nb.py [notebooks/src/01_sliding_window.py ...]`` (default: all).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CELL = re.compile(r'^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*?\]))?(?:\s+alt=(?P<alt>".*"))?\s*$')


def parse(text: str):
    """Return ``(kind, source, metadata)`` for every cell of a percent-format file."""
    cells, kind, meta, lines = [], None, {}, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.splitlines())
        cells.append((kind, body, meta))

    for line in text.splitlines():
        m = CELL.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            meta = {}
            if m.group("tags"):
                meta["tags"] = json.loads(m.group("tags"))
            if m.group("alt"):
                meta["mystnb"] = {"image": {"alt": json.loads(m.group("alt"))}}
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def build(src: Path) -> Path:
    dst = ROOT / "notebooks" / (src.stem + ".ipynb")
    old_outputs = {}
    if dst.exists():
        old = nbformat.read(dst, as_version=4)
        for c in old.cells:
            if c.cell_type == "code":
                old_outputs[c.source] = (c.outputs, c.execution_count)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
        "accelerator": "GPU",
    }
    for kind, body, meta in parse(src.read_text()):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
            if body in old_outputs:
                cell.outputs, cell.execution_count = old_outputs[body]
        cell.metadata.update(meta)
        cell.pop("id", None)
        nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"{src.stem[:2]}-{i:03d}"
    nbformat.validator.normalize(nb)
    nbformat.write(nb, dst)
    return dst


def main(argv):
    sources = [Path(a) for a in argv] or sorted((ROOT / "notebooks" / "src").glob("[0-9]*.py"))
    for src in sources:
        print(f"{src.relative_to(ROOT) if src.is_absolute() else src} -> {build(src.resolve()).relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
