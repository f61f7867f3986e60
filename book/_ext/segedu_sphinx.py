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


def setup(app):
    app.connect("html-page-context", _dedupe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
