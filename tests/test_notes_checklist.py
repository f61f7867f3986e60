"""Every idea, formula and claim of the study notes points at a chapter section that exists.

The checklist is ``tests/notes_checklist.py`` (one entry per idea of
``../shared/notes/semantic-segmentation-notes.zh.md``, in the notes' order). For each entry the
chapter's source ``notebooks/src/<chapter>.py`` must exist and have a Markdown heading whose text
is the entry's ``section``. Headings are read from the Markdown cells of the percent-format source
(``# %% [markdown]`` cells; a heading is a cell line ``# ## Title``), outside fenced code blocks;
their text is compared without the leading ``#``'s, without a trailing ``{#anchor}`` or closing
``#``'s, with whitespace normalised.

When a chapter renames or removes a section, the failure names the idea that lost its section and
lists the headings the chapter has, so the checklist can be pointed at the new one.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "notebooks" / "src"
STATUSES = {"covered", "corrected"}
KEYS = {"notes", "idea", "chapter", "section", "status"}


def _load_checklist():
    spec = importlib.util.spec_from_file_location("notes_checklist", Path(__file__).with_name("notes_checklist.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MODULE = _load_checklist()
CHECKLIST = _MODULE.CHECKLIST
UNCOVERED = getattr(_MODULE, "UNCOVERED", [])

_CELL = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s|$)")
_HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def normalise(text: str) -> str:
    """Heading text without a trailing ``{#anchor}``/``{.class}`` or closing ``#``'s, whitespace collapsed."""
    text = re.sub(r"\s*\{[#.][^}]*\}\s*$", "", text.strip())
    text = re.sub(r"\s+#+\s*$", "", text)
    return " ".join(text.split())


def _plain(text: str) -> str:
    """A looser form for the second try: inline markup characters dropped."""
    return " ".join(re.sub(r"[*`]", "", normalise(text)).split())


@functools.lru_cache(maxsize=None)
def _cached_headings(path: Path) -> tuple[str, ...]:
    return tuple(markdown_headings(path))


def markdown_headings(path: Path) -> list[str]:
    """The (normalised) text of every Markdown heading in the markdown cells of a percent-format source."""
    headings, in_markdown, in_fence = [], False, False
    for line in path.read_text(encoding="utf-8").splitlines():
        cell = _CELL.match(line)
        if cell:
            in_markdown, in_fence = bool(cell.group("md")), False
            continue
        if not in_markdown:
            continue
        body = line[2:] if line.startswith("# ") else line.lstrip("#")  # as tools/py2nb.py reads it
        if _FENCE.match(body):
            in_fence = not in_fence
            continue
        heading = None if in_fence else _HEADING.match(body)
        if heading:
            headings.append(normalise(heading.group("text")))
    return headings


def _source(chapter: str) -> Path:
    return SRC / f"{chapter}.py"


def _entry_id(i_entry) -> str:
    i, entry = i_entry
    return f"{i:02d}-{entry.get('chapter', '?')}"


def test_checklist_is_not_empty():
    assert len(CHECKLIST) >= 50, f"the notes have more ideas than {len(CHECKLIST)} entries"


@pytest.mark.parametrize("i_entry", list(enumerate(CHECKLIST)), ids=_entry_id)
def test_entry_is_well_formed(i_entry):
    i, entry = i_entry
    assert set(entry) == KEYS, f"entry {i} ({entry.get('idea')!r}) has keys {sorted(entry)}, expected {sorted(KEYS)}"
    for key in KEYS:
        assert isinstance(entry[key], str) and entry[key].strip(), f"entry {i}: {key!r} is empty"
    assert entry["status"] in STATUSES, (
        f"entry {i} ({entry['idea']!r}): status {entry['status']!r} is not one of {sorted(STATUSES)}")


def test_no_duplicate_entries():
    keys = Counter((e["chapter"], normalise(e["section"]), " ".join(e["idea"].split())) for e in CHECKLIST)
    duplicates = [k for k, n in keys.items() if n > 1]
    assert not duplicates, f"duplicate (chapter, section, idea) entries: {duplicates}"


@pytest.mark.parametrize("chapter", sorted({e["chapter"] for e in CHECKLIST}))
def test_every_chapter_named_exists(chapter):
    existing = sorted(p.stem for p in SRC.glob("*.py"))
    assert _source(chapter).is_file(), f"chapter {chapter!r}: no {_source(chapter).relative_to(ROOT)}; chapters: {existing}"


@pytest.mark.parametrize("i_entry", list(enumerate(CHECKLIST)), ids=_entry_id)
def test_section_exists(i_entry):
    i, entry = i_entry
    path = _source(entry["chapter"])
    if not path.is_file():
        pytest.fail(f"entry {i}: idea {entry['idea']!r}: chapter {entry['chapter']!r} does not exist ({path})")
    headings = _cached_headings(path)
    wanted = normalise(entry["section"])
    if wanted in headings or _plain(wanted) in {_plain(h) for h in headings}:
        return
    listing = "\n".join(f"    {h}" for h in headings)
    pytest.fail(
        f"entry {i}: the notes' idea {entry['idea']!r} ({entry['notes']}) names the section "
        f"{entry['section']!r} of chapter {entry['chapter']!r}, which has no such heading.\n"
        f"  Headings of {path.relative_to(ROOT)}:\n{listing}\n"
        f"  Point the entry in tests/notes_checklist.py at the section that now covers the idea."
    )


@pytest.mark.parametrize("i_entry", list(enumerate(UNCOVERED)), ids=lambda ie: f"uncovered-{ie[0]:02d}")
def test_uncovered_entry_is_well_formed(i_entry):
    i, entry = i_entry
    assert {"notes", "idea"} <= set(entry), f"UNCOVERED[{i}] needs 'notes' and 'idea'"
    assert "chapter" not in entry and "section" not in entry, (
        f"UNCOVERED[{i}] ({entry['idea']!r}) names a section: move it to CHECKLIST")


def test_heading_parser():
    """The parser reads markdown cells only, skips fences, and normalises anchors and spacing."""
    import tempfile

    text = "\n".join([
        "# %% [markdown]",
        "# # Title",
        "# ##   Spaced    heading  {#anchor}",
        "# ```python",
        "# # not a heading",
        "# ```",
        "# ### Closed ###",
        "",
        "# %%",
        "# ## a code comment",
        "x = 1",
        "# %% [markdown] tags=[\"hide-cell\"]",
        "# ## Tagged cell heading",
    ])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.py"
        path.write_text(text, encoding="utf-8")
        assert markdown_headings(path) == ["Title", "Spaced heading", "Closed", "Tagged cell heading"]
