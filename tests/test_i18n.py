"""The Chinese edition's catalogues (tools/i18n.py): every page listed as translated has every
message of the current English translated, none fuzzy, none missing from its catalogue; and every
translation keeps its message's links, roles, code and math (a dropped link would break the build
or silently lose a reference)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import i18n  # noqa: E402

pytestmark = pytest.mark.slow

ROLE, CODE, MATH, LINK = (re.compile(p) for p in (r"\{[^}\s]+\}`[^`]*`", r"`[^`]+`", r"\$[^$]+\$", r"\]\(([^)\s]+)\)"))


def kept(text: str) -> dict:
    """What a translation must carry over unchanged: roles with their content, inline code, math,
    link targets (each found after removing the kinds before it, so a role is not also code)."""
    found = {}
    for kind, pattern in (("role", ROLE), ("code", CODE), ("math", MATH), ("link", LINK)):
        found[kind] = sorted(pattern.findall(text))
        if kind != "link":
            text = pattern.sub(" ", text)
    return found


def _catalogue(page):
    return i18n._catalogue(i18n.CATALOGUES / f"{page}.po")


def test_the_listed_pages_have_catalogues():
    pages = i18n.complete_pages()
    assert pages, "locales/zh_CN/PAGES lists no page"
    for page in pages:
        assert (i18n.CATALOGUES / f"{page}.po").exists(), page


@pytest.mark.parametrize("page", i18n.complete_pages())
def test_translations_keep_links_roles_code_and_math(page):
    for m in _catalogue(page):
        if not m.id or not m.string:
            continue
        assert kept(m.string) == kept(m.id), (page, m.id[:80])


def test_listed_translations_are_complete_for_the_current_english(tmp_path):
    templates = i18n.extract(tmp_path)  # the gettext build of the English as it is now
    rows = i18n.status(templates)
    bad = {page: rows.get(page) for page in i18n.complete_pages()
           if page not in rows or rows[page]["missing"] or rows[page]["fuzzy"] or rows[page]["stale"]}
    assert not bad, (f"pages listed in locales/zh_CN/PAGES whose translation is incomplete or stale: {bad}; run "
                     "`make i18n`, translate the new (empty) and fuzzy messages, or unlist the page")


def test_the_check_catches_a_stale_catalogue(tmp_path, monkeypatch):
    # a test of the test: a catalogue lacking a message of the English is reported
    page = i18n.complete_pages()[0]
    target = tmp_path / "LC_MESSAGES" / f"{page}.po"
    target.parent.mkdir(parents=True)
    target.write_bytes((i18n.CATALOGUES / f"{page}.po").read_bytes())
    pot = tmp_path / "gettext" / f"{page}.pot"
    pot.parent.mkdir(parents=True)
    pot.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                   'msgid "A paragraph the English gained today."\nmsgstr ""\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "CATALOGUES", tmp_path / "LC_MESSAGES")
    assert i18n.status(tmp_path / "gettext")[page]["stale"] == 1


def test_kept_sees_a_dropped_link_role_code_or_math():
    english = "See [the glossary](../book/glossary.md#fcn), {cite}`long2015fcn`, `fit()` and $x = 16k + 124$."
    good = "见[术语表](../book/glossary.md#fcn)、{cite}`long2015fcn`、`fit()` 和 $x = 16k + 124$。"
    assert kept(good) == kept(english)
    for broken in (good.replace("(../book/glossary.md#fcn)", ""), good.replace("{cite}`long2015fcn`", ""),
                   good.replace("`fit()`", "fit()"), good.replace("$x = 16k + 124$", "x")):
        assert kept(broken) != kept(english)


def _extension():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import segedu_sphinx
    finally:
        sys.path.pop(0)
    return segedu_sphinx


def test_glued_words_are_translated_by_catalogue_then_pattern(monkeypatch):
    ext = _extension()
    monkeypatch.setattr(ext, "_GLUE_WORDS", {"above": "高于"})
    assert ext.translate_glued("above") == "高于"
    assert ext.translate_glued("+0.046 [+0.013, +0.079], 7/8 seeds") == "+0.046 [+0.013, +0.079]，7/8 个种子"
    assert ext.translate_glued("UNet-L3 higher") == "UNet-L3 更高"
    assert ext.translate_glued("1.92 times faster than") == "速度为 1.92 倍于"
    assert ext.translate_glued("no translation yet") == "no translation yet"  # falls back to the English


def test_the_glue_catalogue_holds_the_glued_words_and_no_numbers():
    words = i18n.glued_words()
    assert "above" in words or "below" in words
    assert all(re.search(r"[A-Za-z]{2,}", w) for w in words)
    assert not any(re.search(r"\], \d+/\d+ seeds$", w) for w in words)  # a pattern translates the verdicts
