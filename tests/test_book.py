"""The book builds with warnings as errors (-W) and nitpicky references (-n)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """Build the book once for this module into a temporary folder; return the html folder."""
    out = tmp_path_factory.mktemp("book")
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    proc = subprocess.run([jb, "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    return out / "_build" / "html", proc.returncode, log


def test_book_builds_without_warnings(built_book):
    html, rc, log = built_book
    assert rc == 0, log[-5000:]
    assert (html / "index.html").exists()
    for nb in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        assert (html / "notebooks" / (nb.stem + ".html")).exists(), f"{nb.stem} was not rendered"
