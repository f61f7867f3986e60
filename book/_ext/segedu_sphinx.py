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
            return retrieve(document, key)
        finally:  # the message's nodes join the page's doctree, which is pickled: leave no renderer behind
            del document["nb_renderer"]

    retrieve_glue_data._segedu = True
    nb_sphinx.load_renderer = load_renderer
    for module in (utils, roles, directives):
        module.retrieve_glue_data = retrieve_glue_data


def setup(app):
    _glue_in_translations(app)
    app.connect("html-page-context", _dedupe_scripts)
    app.connect("html-page-context", _language_switch)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
