"""Small fixes of the book's HTML (loaded by _config.yml: sphinx.local_extensions)."""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    # Sphinx < 8.2.2 writes an inline script registered with add_js_file(None, body=...) twice
    # (sphinx-doc/sphinx#13402); sphinx-thebe's `const THEBE_JS_URL = ...` then throws
    # "Identifier 'THEBE_JS_URL' has already been declared" on every page.
    seen, scripts = set(), []
    for js in context.get("script_files", []):
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted((getattr(js, "attributes", {}) or {}).items())))
        if key not in seen:
            seen.add(key)
            scripts.append(js)
    context["script_files"] = scripts


def _language_switch(app, pagename, templatename, context, doctree):
    # The two editions (tools/i18n.py): English at the site's root, Chinese under zh/, page for
    # page. Each page links to its twin from the article header (book/_templates/
    # segedu-language-switch.html). Off unless the configuration's html_context names the edition
    # ("en" or "zh"), so a build without the twin has no dead link.
    edition = context.get("segedu_edition")
    if edition not in ("en", "zh"):
        return
    up = "../" * pagename.count("/")
    if edition == "en":
        context.update(segedu_language_href=f"{up}zh/{pagename}.html", segedu_language_label="中文版",
                       segedu_language_lang="zh-CN", segedu_language_title="这一页的中文版")
    else:
        context.update(segedu_language_href=f"../{up}{pagename}.html", segedu_language_label="English",
                       segedu_language_lang="en", segedu_language_title="This page in English")


# Glue inside translated messages. Sphinx's i18n transform (sphinx.transforms.i18n.Locale) parses
# each translated message as a little document of its own; myst-nb's glue roles look their keys up
# in the notebook renderer that the notebook's parser keeps on its document while it parses
# (document["nb_renderer"], removed when parsing ends), which that little document never had, so
# every {glue:text} in a Chinese paragraph failed with "No key ... found in glue data for this
# document". Below, the parser's renderer is remembered per page as it is made, and the lookup
# falls back to it for a translated message only (its source path ends in "<translated>").
_RENDERERS: dict = {}


# Glued words in translated messages. A glued value can be a word or a phrase ("above", "lower",
# "unresolved at this budget", "+0.046 [+0.013, +0.079], 7/8 seeds"): inside a Chinese sentence it
# must be Chinese too. The Chinese edition translates such values with the catalogue
# locales/zh_CN/LC_MESSAGES/glue.po (extracted from the notebooks' glued values by
# `tools/i18n.py update`) and a few patterns (tools/i18n.py GLUE_PATTERNS); a value with no
# translation stays as it is. English paragraphs (untranslated messages) keep English values.
_GLUE_WORDS: dict = {}


def _load_glue_words(app):
    _GLUE_WORDS.clear()
    language = app.config.language or "en"
    if language == "en":
        return
    from pathlib import Path

    from babel.messages.pofile import read_po

    for folder in app.config.locale_dirs:
        path = Path(app.srcdir, folder, language, "LC_MESSAGES", "glue.po")
        if path.is_file():
            with open(path, "rb") as f:
                _GLUE_WORDS.update({m.id: m.string for m in read_po(f) if m.id and m.string and not m.fuzzy})


#: Glued values made by code from numbers, translated by pattern rather than one by one (their
#: numbers change with every run): (regular expression, replacement), the first match wins.
GLUE_PATTERNS = [
    # a paired verdict: "+0.046 [+0.013, +0.079], 7/8 seeds"
    (r"^([+-]\d[\d.]* \[[+-]\d[\d.]*, [+-]\d[\d.]*\]), (\d+)/(\d+) seeds$", r"\1，\2/\3 个种子"),
    # which side of a comparison is higher: "UNet-L3 higher", "BCE + Dice (batch) higher"
    (r"^(.+) higher$", r"\1 更高"),
    # "A {1.92 times faster than} B" -> "A 速度为 1.92 倍于 B" ("A 耗时为 1.11 倍于 B" for slower)
    (r"^(\d[\d.]*) times faster than$", r"速度为 \1 倍于"),
    (r"^(\d[\d.]*) times slower than$", r"耗时为 \1 倍于"),
    (r"^more than (\d+)$", r"超过 \1"),
]


def translate_glued(text: str) -> str:
    """The Chinese of a glued English value: the catalogue's, else a pattern's, else the value itself."""
    import re

    if text in _GLUE_WORDS:
        return _GLUE_WORDS[text]
    for pattern, replacement in GLUE_PATTERNS:
        if re.match(pattern, text):
            return re.sub(pattern, replacement, text)
    return text


def _glue_in_translations(app):
    from myst_nb import sphinx_ as nb_sphinx
    from myst_nb.ext.glue import directives, roles, utils

    if getattr(utils.retrieve_glue_data, "_segedu", False):
        return
    make_renderer, retrieve = nb_sphinx.load_renderer, utils.retrieve_glue_data

    def load_renderer(name):
        cls = make_renderer(name)

        def remembered(*args, **kwargs):
            renderer = cls(*args, **kwargs)
            _RENDERERS[app.env.docname] = renderer  # pages are read one at a time (parallel_read_safe: False)
            return renderer

        return remembered

    def retrieve_glue_data(document, key):
        if "nb_renderer" in document or not str(document.current_source or "").endswith("<translated>"):
            return retrieve(document, key)
        document["nb_renderer"] = _RENDERERS.get(app.env.docname)
        try:
            result = retrieve(document, key)
        finally:  # the message's nodes join the page's doctree, which is pickled: leave no renderer behind
            del document["nb_renderer"]
        return _translated_value(result)

    def _translated_value(result):
        import dataclasses
        from ast import literal_eval

        text = result.data.get("text/plain")
        try:
            value = literal_eval(text) if isinstance(text, str) else None
        except (SyntaxError, ValueError):
            value = None
        if not isinstance(value, str) or not _GLUE_WORDS and app.config.language in (None, "en"):
            return result
        translated = translate_glued(value)
        if translated == value:
            return result
        return dataclasses.replace(result, data={**result.data, "text/plain": repr(translated)})

    retrieve_glue_data._segedu = True
    nb_sphinx.load_renderer = load_renderer
    for module in (utils, roles, directives):
        module.retrieve_glue_data = retrieve_glue_data


def setup(app):
    _glue_in_translations(app)
    app.connect("builder-inited", _load_glue_words)
    app.connect("html-page-context", _dedupe_scripts)
    app.connect("html-page-context", _language_switch)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
