"""Numbers in the chapters' prose come from the computation.

A measured number typed into a Markdown cell goes stale the next time the notebook runs (the
evidence issue found conclusions that flipped with rounding while the prose stayed the same). So
every chapter glues what it measured (``segedu.glue.glue`` in a code cell, ``{glue:text}`name:.3f```
in the prose) and this test reads every Markdown cell of ``notebooks/src/*.py`` for numbers that
look measured:

* decimals (``0.873``, ``1.5``), percentages (``12%``) and ratios (``1.7×``, ``2×`` too);

outside the places where a typed number is right:

* math (``$\\sigma = 5$``) and code (```lr=1e-3```): definitions and settings;
* a glue role: the computed value;
* a paragraph that cites its source (``{cite}``...): a quote from a paper.

Integers in words (572, 3×3, "8 seeds") are left alone: sizes and counts of the architectures.
The test also checks the other direction: every ``{glue:...}`name`` a chapter pastes is glued
by one of its code cells, so the book build never shows an empty gap.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks" / "src").glob("[0-9]*.py"))

MEASURED = re.compile(r"(?<![\w.\-/])(\d+\.\d+\s?(?:%|×|x\b)?|\d+\s?%|\d+(?:\.\d+)?\s?×(?!\s?\d))(?![\w.]*\d)")
STRIP = [re.compile(p, re.S) for p in (
    r"\$\$.*?\$\$", r"\$[^$\n]+\$",              # math
    r"```.*?```", r"`[^`\n]*`",                  # code (and what is left of a glue role)
    r"\{glue(?::\w+)?\}", r"\{(?:doc|ref|numref|eq)\}",  # role names
    r"\]\([^)]*\)", r"<!--.*?-->", r"<[^>]+>",   # link targets, comments, HTML tags
)]
GLUE_ROLE = re.compile(r"\{glue(?::(\w+))?\}`([^`]+)`")
GLUE_CALL = re.compile(r"""glue(?:_verdict)?\(\s*f?["']([^"']+)["']""")


def _cells(path: Path):
    """(kind, text) for each cell of a percent-format notebook source."""
    for chunk in re.split(r"^# %%", path.read_text(), flags=re.M)[1:]:
        head, _, body = chunk.partition("\n")
        if "[markdown]" in head:
            yield "markdown", "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
        else:
            yield "code", body


def typed_numbers(markdown: str) -> list[tuple[str, str]]:
    """The measured-looking numbers typed in ``markdown``, with the paragraph each is in."""
    found = []
    for para in re.split(r"\n\s*\n", markdown):
        if "{cite" in para:
            continue
        text = para
        for pattern in STRIP:
            text = pattern.sub(" ", text)
        found += [(m.group(1).strip(), " ".join(para.split())[:160]) for m in MEASURED.finditer(text)]
    return found


def test_the_pattern_finds_measured_numbers_and_spares_the_rest():
    assert [n for n, _ in typed_numbers("Dice rose from 0.62 to 0.70, 12% more, 1.7× faster, 2× the memory.")] == \
        ["0.62", "0.70", "12%", "1.7×", "2×"]
    assert typed_numbers("A 3×3 kernel, 572 → 388, 8 seeds, $\\sigma = 5$, `lr=1e-3`, section 2.1 of the notes.") == \
        [("2.1", "A 3×3 kernel, 572 → 388, 8 seeds, $\\sigma = 5$, `lr=1e-3`, section 2.1 of the notes.")]
    assert typed_numbers("Glued: {glue:text}`loss_dice:+.3f` is the difference.") == []
    assert typed_numbers("The paper reports 0.92 {cite}`ronneberger2015unet`.") == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_measured_number_is_typed_in_the_prose(chapter):
    typed = [hit for kind, text in _cells(chapter) if kind == "markdown" for hit in typed_numbers(text)]
    assert not typed, (
        f"{chapter.name} types {len(typed)} measured-looking number(s) in its prose. Glue each one from the cell "
        "that computes it (segedu.glue.glue('name', value), then {glue:text}`name:.3f`), write a setting or a "
        "definition as math or code, or cite the source in the paragraph:\n"
        + "\n".join(f"  {n!r} in: {p}" for n, p in typed))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_pasted_name_is_glued(chapter):
    cells = list(_cells(chapter))
    pasted = {m.group(2).split(":")[0] for kind, text in cells if kind == "markdown" for m in GLUE_ROLE.finditer(text)}
    code = "\n".join(text for kind, text in cells if kind == "code")
    glued = set(GLUE_CALL.findall(code))
    # glue_verdict("x", v) glues x and x_diff, x_lo, x_hi, x_wins, x_n, x_verdict, x_words, x_seeds_needed;
    # an f-string name ("{prefix}_...") is checked by its literal prefix
    def covered(name):
        return any(name == g or (name.startswith(g) and name[len(g)] == "_") or ("{" in g and name.startswith(g.split("{")[0]))
                   for g in glued)
    missing = sorted(n for n in pasted if not covered(n))
    assert not missing, f"{chapter.name} pastes names no code cell glues: {missing}"
