"""The book builds with warnings as errors (-W) and nitpicky references (-n).

The build itself is the session fixture ``built_book`` (tests/conftest.py), shared with the
browser test so that one test run builds the book once."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_book_builds_without_warnings(built_book):
    html, rc, log = built_book
    assert rc == 0, log[-5000:]
    assert (html / "index.html").exists()
    for nb in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        assert (html / "notebooks" / (nb.stem + ".html")).exists(), f"{nb.stem} was not rendered"
