"""The Chinese edition (中文版): one set of sources, two books.

Sphinx's internationalisation does the work: the gettext builder extracts every paragraph,
heading, table cell and caption of the book's Markdown (code cells and outputs never enter), one
catalogue per page; translations live in ``locales/zh_CN/LC_MESSAGES/<page>.po``; a build with
``language: zh_CN`` renders each translated message and falls back to English for a message
without one. When the English changes, ``update`` marks the changed messages *fuzzy*, Sphinx skips
fuzzy translations, and ``check`` (run by ``tests/test_i18n.py``) fails: no English change lands
without its Chinese.

    python tools/i18n.py update   # re-extract the English, refresh the catalogues (make i18n)
    python tools/i18n.py check    # per page: messages, translated, missing, fuzzy (exit 1 if a
                                  # page listed in locales/zh_CN/PAGES is incomplete)
    python tools/i18n.py build    # the Chinese book into _build/html/zh
    python tools/i18n.py book     # both editions: English in _build/html, Chinese in _build/html/zh
                                  # (make book runs it; so does the test suite's built_book)

Jupyter Book 1.x has no language option, so ``build`` writes a second configuration
(``language: zh_CN``, Chinese search with jieba and the glossary as its dictionary) and a second
table of contents (translated part captions) under ``_build/zh-config/`` and builds into its own
output folder, then copies the HTML to ``_build/html/zh/``. ``locales/zh_CN/PAGES`` lists the
pages whose translation is complete; the test holds exactly those to "no message missing or fuzzy".
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
LANG = "zh_CN"
CATALOGUES = LOCALES / LANG / "LC_MESSAGES"
PAGES = LOCALES / LANG / "PAGES"
#: The table of contents' part captions (not Markdown, so not in any catalogue).
CAPTIONS = {"Chapters": "章节", "Appendices": "附录"}
TITLE = "从零开始的语义分割"


def _jupyter_book() -> str:
    return shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}")
    return proc


def extract(out: Path) -> Path:
    """Build the English message templates (.pot) into ``out`` (its own output folder), with the
    glued words' ``glue.pot``; return their folder."""
    _run([_jupyter_book(), "build", ROOT, "--builder", "custom", "--custom-builder", "gettext", "--path-output", out])
    templates = out / "_build" / "gettext"
    _glue_template(templates)  # the glued words: their own catalogue, glue.pot
    return templates


def glued_words() -> list[str]:
    """The glued values that are words, not numbers: every string a notebook glues that has a word in
    it, except those that a pattern of the book's extension translates (``GLUE_PATTERNS``).

    Inside a translated paragraph the Chinese edition shows each such value in Chinese, from the
    catalogue ``glue.po`` (book/_ext/segedu_sphinx.py); a value without a translation stays English.
    """
    import ast
    import json

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        from segedu_sphinx import GLUE_PATTERNS
    finally:
        sys.path.pop(0)
    words = set()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            for output in cell.get("outputs", []):
                meta = output.get("metadata", {}).get("scrapbook")
                if not meta:
                    continue
                text = output["data"].get(meta.get("mime_prefix", "") + "text/plain", "")
                text = "".join(text) if isinstance(text, list) else text
                try:
                    value = ast.literal_eval(text)
                except (SyntaxError, ValueError):
                    continue
                if (isinstance(value, str) and re.search(r"[A-Za-z]{2,}", value)
                        and not any(re.match(p, value) for p, _ in GLUE_PATTERNS)):
                    words.add(value)
    return sorted(words)


def _glue_template(templates: Path) -> Path:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    catalog = Catalog(project="segedu", charset="utf-8")
    for word in glued_words():
        catalog.add(word, auto_comments=["a value glued into the text by a notebook (tools/i18n.py glued_words)"])
    path = templates / "glue.pot"
    with open(path, "wb") as f:
        write_po(f, catalog, width=0, omit_header=False)
    return path


def update(out: Path | None = None) -> None:
    """Re-extract the English and merge it into the catalogues (new messages empty, changed ones fuzzy)."""
    out = out or ROOT / "_build" / "i18n-gettext"
    templates = extract(out)
    _run([Path(sys.executable).parent / "sphinx-intl", "update", "-p", templates, "-l", LANG, "-d", LOCALES])
    print(f"catalogues refreshed in {CATALOGUES}")


def _catalogue(path: Path):
    from babel.messages.pofile import read_po

    with open(path, "rb") as f:
        return read_po(f)


def status(templates: Path | None = None) -> dict:
    """``{page: {"messages", "translated", "missing", "fuzzy", "stale"}}`` for every catalogue.

    With ``templates`` (a fresh extraction), ``stale`` counts English messages of the page that its
    catalogue does not hold at all: the catalogue was not refreshed after an English change.
    """
    result = {}
    for po in sorted(CATALOGUES.rglob("*.po")):
        page = po.relative_to(CATALOGUES).with_suffix("").as_posix()
        cat = _catalogue(po)
        msgs = [m for m in cat if m.id]
        row = {"messages": len(msgs), "translated": sum(1 for m in msgs if m.string and not m.fuzzy),
               "missing": sum(1 for m in msgs if not m.string), "fuzzy": sum(1 for m in msgs if m.string and m.fuzzy),
               "stale": 0}
        if templates is not None:
            pot = templates / f"{page}.pot"
            english = {m.id for m in _catalogue(pot) if m.id} if pot.exists() else set()
            row["stale"] = len(english - {m.id for m in msgs})
        result[page] = row
    return result


def complete_pages() -> list[str]:
    if not PAGES.exists():
        return []
    return [line.split("#")[0].strip() for line in PAGES.read_text().splitlines() if line.split("#")[0].strip()]


def check(templates: Path | None = None) -> int:
    rows = status(templates)
    listed = complete_pages()
    bad = []
    print(f"{'page':36} {'messages':>8} {'translated':>10} {'missing':>7} {'fuzzy':>5} {'stale':>5}  listed")
    for page, r in rows.items():
        mark = "yes" if page in listed else ""
        print(f"{page:36} {r['messages']:8d} {r['translated']:10d} {r['missing']:7d} {r['fuzzy']:5d} {r['stale']:5d}  {mark}")
        if page in listed and (r["missing"] or r["fuzzy"] or r["stale"]):
            bad.append(page)
    for page in listed:
        if page not in rows:
            bad.append(page)
    if bad:
        print(f"incomplete translations of pages listed in {PAGES.relative_to(ROOT)}: {bad}. "
              "Translate the missing and fuzzy messages (python tools/i18n.py update first), or unlist the page.")
    return 1 if bad else 0


def _zh_config(folder: Path) -> tuple[Path, Path]:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = TITLE
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["language"] = LANG
    sphinx["locale_dirs"] = [str(LOCALES)]
    sphinx["html_search_language"] = "zh"
    sphinx["html_search_options"] = {"dict": str(_search_dictionary(folder))}
    sphinx.setdefault("html_context", {})["segedu_edition"] = "zh"
    config["bibtex_bibfiles"] = [str(ROOT / b) for b in config.get("bibtex_bibfiles", [])]
    # paths in the configuration are relative to it: this one lives elsewhere
    config["sphinx"]["local_extensions"] = {k: str(ROOT / v) for k, v in config["sphinx"].get("local_extensions", {}).items()}
    sphinx["html_static_path"] = [str(ROOT / p) for p in sphinx.get("html_static_path", [])]
    sphinx["templates_path"] = [str(ROOT / p) for p in sphinx.get("templates_path", [])]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc.get("parts", []):
        part["caption"] = CAPTIONS.get(part.get("caption"), part.get("caption"))
    config_path, toc_path = folder / "_config.yml", folder / "_toc.yml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    toc_path.write_text(yaml.safe_dump(toc, allow_unicode=True, sort_keys=False))
    return config_path, toc_path


def _search_dictionary(folder: Path) -> Path:
    """A jieba user dictionary: the glossary's Chinese terms, so 转置卷积 is one search word."""
    terms = set()
    for line in (ROOT / "book" / "glossary.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2:
            terms.update(re.findall(r"[\u4e00-\u9fff]{2,}", cells[1]))
    path = folder / "jieba_dict.txt"
    path.write_text("".join(f"{t} 1000 n\n" for t in sorted(terms)))
    return path


def build(html: Path | None = None, out: Path | None = None, strict: bool = True) -> Path:
    """Build the Chinese edition and copy it to ``html``/zh (default ``_build/html/zh``)."""
    html = html or ROOT / "_build" / "html"
    out = out or ROOT / "_build" / "zh"
    config, toc = _zh_config(out / "config")
    cmd = [_jupyter_book(), "build", ROOT, "--config", config, "--toc", toc, "--path-output", out / "book"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-6000:])
        raise SystemExit(f"the Chinese edition failed to build ({proc.returncode})")
    target = html / "zh"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(out / "book" / "_build" / "html", target)
    print(f"Chinese edition: {target / 'index.html'}")
    return target


def book(path_output: Path | None = None, strict: bool = True) -> Path:
    """Both editions: the English book into ``path_output/_build/html``, the Chinese one into its ``zh/``.

    The English build is the plain ``jupyter-book build`` (its configuration's ``html_context``
    names it the "en" edition, so each page links to its ``zh/`` twin); the Chinese one is
    :func:`build`, into ``path_output/_build/zh`` and copied under the English HTML.
    """
    path_output = Path(path_output or ROOT)
    cmd = [_jupyter_book(), "build", ROOT, "--path-output", path_output]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    sys.stdout.write(proc.stdout[-3000:])
    if proc.returncode:
        sys.stderr.write(proc.stderr[-6000:])
        raise SystemExit(f"the English edition failed to build ({proc.returncode})")
    html = path_output / "_build" / "html"
    build(html=html, out=path_output / "_build" / "zh", strict=strict)
    print(f"English edition: {html / 'index.html'}")
    return html


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The Chinese edition: catalogues and build")
    parser.add_argument("command", choices=["update", "check", "build", "book"])
    parser.add_argument("--path-output", type=Path, default=None,
                        help="book: the folder whose _build/ receives both editions (default: the repository)")
    args = parser.parse_args(argv)
    if args.command == "update":
        update()
    elif args.command == "check":
        return check(extract(ROOT / "_build" / "i18n-gettext"))
    elif args.command == "build":
        build()
    else:
        book(args.path_output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
