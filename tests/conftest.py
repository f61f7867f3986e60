"""Shared fixtures.

``built_book``: the book, both editions, is built once per test session (``tools/i18n.py book``:
``jupyter-book build -W -n --keep-going`` for the English, then the Chinese edition into ``zh/``)
and shared by tests/test_book.py (the build itself) and tests/test_browser.py (the rendered pages).
Under pytest-xdist every worker is its own process, so the build goes to a folder shared by all
workers of the run and a file lock makes the first worker build it while the others wait for it.

Set ``SEGEDU_REUSE_BOOK=path`` to skip the build and test an existing ``path/_build/html``
(a shortcut when iterating on the browser test; never set it in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build(out: Path) -> tuple[int, str]:
    # both editions, as `make book`: English in out/_build/html, Chinese in out/_build/html/zh
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "i18n.py"), "book", "--path-output", str(out)],
                          capture_output=True, text=True, timeout=1500)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """``(html folder, return code, build log)`` of one build of the book for the whole session."""
    reuse = os.environ.get("SEGEDU_REUSE_BOOK")
    if reuse:
        html = Path(reuse) / "_build" / "html"
        assert (html / "index.html").exists(), f"SEGEDU_REUSE_BOOK={reuse}: no built book in {html}"
        return html, 0, f"reused the build in {reuse} (SEGEDU_REUSE_BOOK)"
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.mktemp("book")
        rc, log = _build(out)
        return out / "_build" / "html", rc, log

    from filelock import FileLock  # a dependency of torch, so always installed

    out = tmp_path_factory.getbasetemp().parent / "segedu-book"  # shared by the workers of this run
    result = out / "result.json"
    with FileLock(str(out) + ".lock"):
        if not result.exists():
            out.mkdir(exist_ok=True)
            rc, log = _build(out)
            result.write_text(json.dumps({"rc": rc, "log": log}))
    r = json.loads(result.read_text())
    return out / "_build" / "html", r["rc"], r["log"]
