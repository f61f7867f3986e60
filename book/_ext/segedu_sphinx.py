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
    # page. Each page links to its twin at the top of its body. Off unless the configuration's
    # html_context names the edition ("en" or "zh"), so a build without the twin has no dead link.
    edition = context.get("segedu_edition")
    if edition not in ("en", "zh") or "body" not in context:
        return
    up = "../" * pagename.count("/")
    if edition == "en":
        href, label, lang = f"{up}zh/{pagename}.html", "中文版", "zh-CN"
    else:
        href, label, lang = f"../{up}{pagename}.html", "English", "en"
    link = (f'<p class="segedu-language-switch"><a href="{href}" hreflang="{lang}" lang="{lang}">{label}</a></p>')
    context["body"] = link + context["body"]


def setup(app):
    app.connect("html-page-context", _dedupe_scripts)
    app.connect("html-page-context", _language_switch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
