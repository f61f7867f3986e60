"""The rendered book in a real browser: what a reader meets must work.

The book is built once (``built_book`` in conftest.py), served on 127.0.0.1 and opened in
Debian's headless Chromium through Selenium (``/usr/bin/chromium`` + ``/usr/bin/chromedriver``,
installed by ``.ci/run`` with apt-get; Selenium Manager is never asked to download anything).
Every host other than 127.0.0.1 is unresolvable in that browser, so the pages are checked the
way an offline reader sees them.

For every page of ``_toc.yml``:

* the page and every request it makes (scripts, styles, fonts, images, the search index) answer
  HTTP 200, and so does every local ``src``/``href`` in its HTML (links to other pages included);
* every ``<img>`` has loaded (natural width > 0);
* the JavaScript console has no SEVERE entry, except failed requests to hosts other than
  127.0.0.1 (CDNs: blocked here on purpose, and reported);
* math renders: a page with Sphinx math markup shows one MathJax ``mjx-container`` per formula
  and no MathJax error; a chapter whose notebook has ``$``-math must have such markup;
* a chapter page has a Colab launch button pointing at that notebook in the repository and
  branch of ``_config.yml``, and every Colab link on it points there;
* solution cells are hidden, and the toggle shows them;
* every kernel-free demo (``segedu.widgets.Explorer``: a ``.segedu-explorer`` block) responds:
  each control is moved through all its values (value set + ``input``/``change`` events) and the
  displayed image must change, decode and not be blank; one step per control is also made with a
  real key press / menu choice. A chapter must show as many demos as its notebook stores;
* a screenshot of the page (and of each demo) is saved in ``$SEGEDU_ARTIFACTS`` (default: a
  temporary folder, printed).

``test_checks_catch_*`` are tests of the test: deliberately broken pages must be reported.
Accessibility (alt text or caption for every figure) is checked by ``test_figures_have_alt_text``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SEGEDU_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SEGEDU_CHROMEDRIVER", "/usr/bin/chromedriver")
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"].get("branch", "main")
COLAB = CONFIG.get("launch_buttons", {}).get("colab_url", "https://colab.research.google.com").rstrip("/")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


PAGES = toc_files()
# The Chinese edition (tools/i18n.py), built beside the English one: the same pages under zh/.
ZH_PAGES = [f"zh/{page}" for page in PAGES]
# Pages whose Chinese translation is complete (tests/test_i18n.py holds them to it).
TRANSLATED = [line.split("#")[0].strip() for line in (ROOT / "locales/zh_CN/PAGES").read_text().splitlines()
              if line.split("#")[0].strip()]


def english(page: str) -> str:
    """The English page of a page of either edition."""
    return page.removeprefix("zh/")


def notebook_of(page: str) -> Path | None:
    nb = ROOT / (english(page) + ".ipynb")
    return nb if nb.exists() else None


def stored_demos(nb_path: Path) -> int:
    """How many Explorer demos the notebook's stored outputs contain."""
    nb = json.loads(nb_path.read_text())
    n = 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            html = out.get("data", {}).get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            n += html.count('class="segedu-explorer"')
    return n


def has_dollar_math(nb_path: Path) -> bool:
    nb = json.loads(nb_path.read_text())
    text = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in nb["cells"] if c["cell_type"] == "markdown")
    text = re.sub(r"`[^`]*`", "", text)  # inline code may contain $
    return bool(re.search(r"\$\$.+?\$\$|\$[^$\s][^$]*\$", text, re.S))


# --- the server --------------------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list  # (path, status) of every request, set per server

    def log_request(self, code="-", size="-"):
        try:
            self.requests.append((self.path, int(code)))
        except (TypeError, ValueError):
            self.requests.append((self.path, code))

    def log_message(self, *args):  # keep the test output clean
        pass


class Server:
    def __init__(self, folder: Path):
        handler = type("Handler", (_Handler,), {"requests": []})
        self.requests = handler.requests
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(handler, directory=str(folder)))
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self._status: dict[str, int] = {}

    def status(self, url: str) -> int:
        """HTTP status of a local URL (without its fragment), cached."""
        url = url.split("#")[0]
        if url not in self._status:
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    self._status[url] = r.status
            except urllib.error.HTTPError as e:
                self._status[url] = e.code
        return self._status[url]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- the browser -------------------------------------------------------------------------------

def make_driver():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        pytest.skip(f"browser test needs Debian's Chromium and its driver ({', '.join(missing)} missing): "
                    "apt-get install chromium chromium-driver (done by .ci/run)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser or driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1",
                "--disable-extensions", "--no-first-run", "--disable-background-networking",
                # an offline reader: every host but this machine is unresolvable
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(120)
    return driver


@pytest.fixture(scope="module")
def server(built_book):
    html, rc, log = built_book
    if not (html / "index.html").exists():
        pytest.fail("the book did not build:\n" + log[-3000:])
    s = Server(html)
    yield s
    s.close()


@pytest.fixture(scope="module")
def driver():
    d = make_driver()
    yield d
    d.quit()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    folder = Path(os.environ.get("SEGEDU_ARTIFACTS") or tmp_path_factory.mktemp("browser-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test screenshots: {folder}")
    return folder


# --- the checks (each returns a list of problems, so that tests of the test can use them) -------

WAIT_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const t0 = Date.now();
  while (document.readyState !== "complete" && Date.now() - t0 < 60000) await new Promise(r => setTimeout(r, 50));
  for (const img of document.images) { if (img.loading === "lazy") img.loading = "eager"; }
  await Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await new Promise(r => setTimeout(r, 200));  // late requests (fonts, search index)
  done(true);
})();
"""


def load(driver, server, page_url: str):
    """Open a page, wait until it has settled; return the server log of the requests it made."""
    driver.get_log("browser")  # clear the console log of the previous page
    start = len(server.requests)
    driver.get(page_url)
    driver.execute_async_script(WAIT_JS)
    return server.requests[start:]


AUTOMATIC = ("/favicon.ico",)  # requested by Chromium itself, not by the page (a declared icon is a link: checked)


def check_requests(requests) -> list[str]:
    return [f"HTTP {code} for {path}" for path, code in requests
            if code not in (200, 304) and path.split("?")[0] not in AUTOMATIC]


def check_local_urls(driver, server) -> list[str]:
    """Every local src/href in the page (assets and links to pages) answers HTTP 200."""
    urls = driver.execute_script("""
      const out = new Set();
      for (const el of document.querySelectorAll("[src], [href]")) {
        for (const a of ["src", "href"]) {
          if (!el.hasAttribute(a)) continue;
          const v = el[a];  // resolved absolute URL
          if (typeof v === "string" && v.startsWith(location.origin)) out.add(v.split("#")[0]);
        }
      }
      for (const e of performance.getEntriesByType("resource"))
        if (e.name.startsWith(location.origin)) out.add(e.name.split("#")[0]);
      return Array.from(out);
    """)
    urls = [u for u in urls if urllib.parse.urlsplit(u).path not in AUTOMATIC]
    return [f"HTTP {server.status(u)} for {u}" for u in sorted(urls) if server.status(u) != 200]


def external_requests(driver) -> list[str]:
    return driver.execute_script("""
      return performance.getEntriesByType("resource").map(e => e.name)
        .filter(n => /^https?:/.test(n) && !n.startsWith(location.origin));""")


def check_images(driver) -> list[str]:
    bad = driver.execute_script("""
      return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
        .map(i => (i.getAttribute("src") || "").slice(0, 120));""")
    return [f"image did not load: {s}" for s in bad]


def _is_external_failure(message: str) -> bool:
    m = re.match(r"\s*(https?://[^\s]+)", message)
    if not m:
        return False
    host = urllib.parse.urlsplit(m.group(1)).hostname
    return host not in LOCAL_HOSTS and "net::ERR_" in message


def check_console(driver) -> tuple[list[str], list[str]]:
    """(errors, tolerated external failures) from the JS console."""
    errors, external = [], []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE" or any(re.match(rf"\s*https?://[^/\s]+{a}\s", entry["message"]) for a in AUTOMATIC):
            continue
        (external if _is_external_failure(entry["message"]) else errors).append(entry["message"][:300])
    return [f"console: {m}" for m in errors], external


def check_math(driver) -> tuple[list[str], int]:
    """Every Sphinx math element is typeset by MathJax, without errors. Returns (problems, count)."""
    r = driver.execute_script("""
      const math = document.querySelectorAll("span.math, div.math");
      return {math: math.length,
              typeset: Array.from(math).filter(m => m.querySelector("mjx-container")).length,
              mathjax: !!(window.MathJax && MathJax.startup),
              errors: Array.from(document.querySelectorAll("[data-mjx-error], mjx-merror"))
                        .map(e => e.getAttribute("data-mjx-error") || e.textContent).slice(0, 5)};""")
    problems = []
    if r["math"]:
        if not r["mathjax"]:
            problems.append("MathJax did not load")
        if r["typeset"] < r["math"]:
            problems.append(f"math not rendered: {r['math'] - r['typeset']} of {r['math']} formulas have no MathJax output")
    problems += [f"MathJax error: {e}" for e in r["errors"]]
    return problems, r["math"]


def expected_colab_url(page: str) -> str:
    path_to_book = CONFIG.get("repository", {}).get("path_to_book", "").strip("/")
    path = "/".join(p for p in (path_to_book, page + ".ipynb") if p)
    return f"{COLAB}/github/{REPO_URL.removeprefix('https://github.com/')}/blob/{BRANCH}/{path}"


def check_colab(driver, page: str) -> list[str]:
    expected = expected_colab_url(english(page))  # the Colab notebooks are the English ones, in both editions
    links = driver.execute_script("""
      const menu = document.querySelector(".dropdown-launch-buttons");
      const toggle = menu && menu.querySelector("button");
      if (toggle) toggle.click();  // open the launch menu as a reader would
      const links = Array.from(document.querySelectorAll("a[href*='colab.research.google.com']"))
        .map(a => ({href: a.href, launch: !!(menu && menu.contains(a)), visible: a.checkVisibility()}));
      if (toggle) toggle.click();
      return links;""")
    problems = []
    launch = [link for link in links if link["launch"]]
    if not any(link["href"] == expected for link in launch):
        problems.append(f"no Colab launch button to {expected} (found {[link['href'] for link in links]})")
    problems += [f"the Colab launch button does not show when the launch menu is opened: {link['href']}"
                 for link in launch if not link["visible"]]
    problems += [f"Colab link to the wrong place: {link['href']} (expected {expected})"
                 for link in links if link["href"] != expected]
    return problems


def check_solutions_hidden(driver) -> list[str]:
    """Solution cells are hidden at first and the toggle shows them."""
    r = driver.execute_script("""
      return Array.from(document.querySelectorAll(".cell.tag_solution")).map((cell, i) => {
        const body = cell.querySelector(".cell_input") || cell;
        const hidden = !body.checkVisibility();
        const toggle = cell.querySelector("summary, button.toggle-button");
        if (toggle) toggle.click();
        return {i, hidden, toggle: !!toggle, shown: body.checkVisibility()};
      });""")
    problems = []
    for s in r:
        if not s["hidden"]:
            problems.append(f"solution cell {s['i'] + 1} is not hidden behind a toggle")
        elif not s["toggle"] or not s["shown"]:
            problems.append(f"solution cell {s['i'] + 1}: its toggle does not show it")
    return problems


DEMO_JS = """
const [root, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const img = root.querySelector("img");
  const out = {steps: [], controls: 0, start: null};
  async function look() {
    // the displayed picture: its source, and whether it decodes to a non-blank image
    const src = img ? img.src : null;
    let ok = false, blank = true;
    if (img) {
      try { await img.decode(); ok = img.naturalWidth > 0; } catch (e) { ok = false; }
      if (ok) {
        const c = document.createElement("canvas");
        const w = c.width = Math.min(img.naturalWidth, 400), h = c.height = Math.min(img.naturalHeight, 400);
        const g = c.getContext("2d");
        g.drawImage(img, 0, 0, w, h);
        const d = g.getImageData(0, 0, w, h).data;
        for (let k = 4; k < d.length; k += 4)
          if (d[k] !== d[0] || d[k + 1] !== d[1] || d[k + 2] !== d[2] || d[k + 3] !== d[3]) { blank = false; break; }
      }
    }
    return {src, ok, blank};
  }
  const label = c => { const o = c.nextElementSibling; return o && o.tagName === "OUTPUT" ? o.textContent : null; };
  out.start = await look();
  const ctls = Array.from(root.querySelectorAll("input, select"));
  out.controls = ctls.length;
  for (const [ci, c] of ctls.entries()) {
    const name = c.dataset.control || c.getAttribute("aria-label") || c.name || ("control " + ci);
    const original = c.value;
    let values;
    if (c.tagName === "SELECT") values = Array.from(c.options).map(o => o.value);
    else if (c.type === "range") {
      values = [];
      const lo = +c.min || 0, hi = c.max === "" ? 100 : +c.max, st = +c.step || 1;
      for (let v = lo; v <= hi + 1e-9; v += st) values.push(String(v));
    } else if (c.type === "checkbox") values = ["toggle"];
    else continue;
    let before = await look(), beforeLabel = label(c);
    for (const v of values) {
      if (v === c.value) continue;
      if (v === "toggle") c.checked = !c.checked; else c.value = v;
      c.dispatchEvent(new Event("input", {bubbles: true}));
      c.dispatchEvent(new Event("change", {bubbles: true}));
      const now = await look(), nowLabel = label(c);
      out.steps.push({control: name, value: v, changed: now.src !== before.src, ok: now.ok, blank: now.blank,
                      label: beforeLabel === null || nowLabel !== beforeLabel});
      before = now; beforeLabel = nowLabel;
    }
    c.value = original;
    c.dispatchEvent(new Event("input", {bubbles: true}));
    c.dispatchEvent(new Event("change", {bubbles: true}));
  }
  out.end = await look();
  done(out);
})();
"""


def check_demo(driver, demo, name: str, shot: Path | None = None) -> list[str]:
    """Move every control of one demo; the displayed image must change, decode and not be blank."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    r = driver.execute_async_script(DEMO_JS, demo)
    problems = []
    if not r["start"]["src"]:
        return [f"{name}: shows no image"]
    if not r["start"]["ok"] or r["start"]["blank"]:
        problems.append(f"{name}: its first picture is {'blank' if r['start']['ok'] else 'broken'}")
    if not r["controls"]:
        problems.append(f"{name}: has no controls")
    if r["controls"] and not r["steps"]:
        problems.append(f"{name}: its controls offer only one value")
    for s in r["steps"]:
        where = f"{name}: {s['control']} -> {s['value']}"
        if not s["changed"]:
            problems.append(f"{where}: the picture did not change")
        elif not s["ok"]:
            problems.append(f"{where}: the new picture does not load")
        elif s["blank"]:
            problems.append(f"{where}: the new picture is blank")
        if not s["label"]:
            problems.append(f"{where}: the value shown next to the slider did not change")
    if r["end"]["src"] != r["start"]["src"]:
        problems.append(f"{name}: restoring the controls does not restore the first picture")

    # one real interaction per control (trusted events, as from a reader's keyboard / mouse)
    img = demo.find_element(By.TAG_NAME, "img")
    for c in demo.find_elements(By.CSS_SELECTOR, "input[type=range], select"):
        before = img.get_attribute("src")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", c)
        if c.tag_name == "select":
            sel = Select(c)
            current = sel.first_selected_option.get_attribute("value")
            other = next((o.get_attribute("value") for o in sel.options if o.get_attribute("value") != current), None)
            if other is None:
                continue
            sel.select_by_value(other)
        else:
            at_max = c.get_attribute("value") == c.get_attribute("max")
            c.send_keys(Keys.ARROW_LEFT if at_max else Keys.ARROW_RIGHT)
        if img.get_attribute("src") == before:
            problems.append(f"{name}: {c.get_attribute('aria-label') or c.tag_name}: a real key press / "
                            "menu choice does not change the picture")
    if shot is not None:
        try:
            demo.screenshot(str(shot))
        except Exception:  # a screenshot is an artifact, not a check
            pass
    return problems


def check_demos(driver, page: str, shots: Path | None = None) -> tuple[list[str], int]:
    from selenium.webdriver.common.by import By

    demos = driver.find_elements(By.CSS_SELECTOR, ".segedu-explorer")
    problems = []
    for i, demo in enumerate(demos):
        title = demo.get_attribute("id") or f"#{i + 1}"
        shot = shots / f"{page.replace('/', '__')}__demo{i + 1}.png" if shots else None
        problems += check_demo(driver, demo, f"demo {i + 1} ({title})", shot)
    return problems, len(demos)


def figures_without_alt(driver) -> list[str]:
    """Images with neither a real alt text nor a caption (Sphinx uses the file name as a stand-in
    alt when there is none; that counts as missing)."""
    return driver.execute_script("""
      return Array.from(document.querySelectorAll("article img, main img, .bd-article img")).filter(img => {
        if (img.closest("header, nav, .bd-header, .header-article-items, .dropdown-menu")) return false;
        const alt = (img.getAttribute("alt") || "").trim();
        const src = img.getAttribute("src") || "";
        const fake = !alt || alt === src || /\\.(png|jpe?g|svg|gif)$/i.test(alt);
        const fig = img.closest("figure");
        const caption = fig && fig.querySelector("figcaption") && fig.querySelector("figcaption").textContent.trim();
        return fake && !caption;
      }).map(img => (img.getAttribute("src") || "").slice(0, 100));""")


# --- the tests ---------------------------------------------------------------------------------

def page_url(server, page: str) -> str:
    return server.base + page + ".html"


@pytest.mark.parametrize("page", PAGES + ZH_PAGES)
def test_page_works_offline(page, server, driver, artifacts):
    requests = load(driver, server, page_url(server, page))
    problems = check_requests(requests)
    if not requests or requests[0][0].split("?")[0] != "/" + page + ".html":
        problems.append(f"the browser did not request /{page}.html first: {requests[:3]}")
    problems += check_local_urls(driver, server)
    problems += check_images(driver)
    errors, external = check_console(driver)
    problems += errors
    math_problems, n_math = check_math(driver)
    problems += math_problems
    nb = notebook_of(page)
    if nb is not None:
        problems += check_colab(driver, page)
        if has_dollar_math(nb) and not n_math:
            problems.append("the notebook has $-math but the page shows none")
        problems += check_solutions_hidden(driver)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(artifacts / (page.replace("/", "__") + ".png")))
    if external:
        print(f"{page}: blocked external requests (tolerated): {external[:5]}")
    extern = external_requests(driver)
    if extern:
        print(f"{page}: requests to other hosts (the page must work without them): {extern[:5]}")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_demos_respond_without_a_kernel(page, server, driver, artifacts):
    load(driver, server, page_url(server, page))
    problems, n = check_demos(driver, page, artifacts)
    nb = notebook_of(page)
    if nb is not None:
        stored = stored_demos(nb)
        if n != stored:
            problems.append(f"the notebook stores {stored} kernel-free demos, the page shows {n}")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def test_every_chapter_is_checked():
    """The pages above come from _toc.yml; every chapter notebook must be one of them."""
    chapters = {f"notebooks/{p.stem}" for p in (ROOT / "notebooks").glob("[0-9]*.ipynb")}
    assert chapters <= set(PAGES), f"chapters missing from _toc.yml: {sorted(chapters - set(PAGES))}"


FIGURES_WITHOUT_ALT: dict[str, list[str]] = {}


@pytest.mark.parametrize("page", PAGES + ZH_PAGES)
def test_figures_have_alt_text(page, server, driver):
    """Accessibility: every figure has alt text or a caption."""
    load(driver, server, page_url(server, page))
    missing = figures_without_alt(driver)
    FIGURES_WITHOUT_ALT[page] = missing
    assert not missing, (f"{len(missing)} figures on {page} have neither alt text nor a caption: {missing[:3]} "
                         "(give the cell that draws them an alt=\"...\" in its notebooks/src/ header)")


def language_switch(driver) -> dict:
    return driver.execute_script("""
      const a = document.querySelector("a.segedu-language-switch");
      return {lang: document.documentElement.lang, href: a && a.href, label: a && a.textContent.trim(),
              visible: !!a && a.checkVisibility()};""")


PROSE_JS = """
  // the prose of the article: paragraphs, headings, list items and table cells, but not code,
  // outputs, math or the bibliography's entries (those are the English edition's in both editions)
  const skip = "pre, code, .cell_output, .highlight, .math, mjx-container, .MathJax, .output, .citation-list";
  const text = Array.from(document.querySelectorAll("article p, article h1, article h2, article h3, article li, article td"))
    .filter(el => !el.closest(skip))
    .map(el => { const c = el.cloneNode(true); c.querySelectorAll(skip).forEach(x => x.remove()); return c.textContent; })
    .join(" ");
  return {cjk: (text.match(/[\u4e00-\u9fff]/g) || []).length, latin: (text.match(/[A-Za-z]/g) || []).length};
"""


def prose_share_chinese(driver) -> float:
    """Chinese characters / (Chinese characters + Latin letters) in the page's prose. A Chinese
    sentence is about a third as long in characters as its English, so a fully translated page with
    English terms, names and glued numbers in its text still scores well above one half."""
    counts = driver.execute_script(PROSE_JS)
    return counts["cjk"] / max(1, counts["cjk"] + counts["latin"])


@pytest.mark.parametrize("page", PAGES)
def test_editions_are_twins(page, server, driver):
    """Each page links to its twin in the other edition from its header, both ways, and declares its
    language; a page whose translation is complete reads in Chinese."""
    load(driver, server, page_url(server, page))
    en = language_switch(driver)
    problems = []
    if en["lang"] != "en":
        problems.append(f"<html lang> is {en['lang']!r}, expected 'en'")
    if en["href"] != page_url(server, "zh/" + page) or not en["visible"]:
        problems.append(f"no visible switch to the Chinese twin {page_url(server, 'zh/' + page)}: {en}")
    load(driver, server, page_url(server, "zh/" + page))
    zh = language_switch(driver)
    if zh["lang"] != "zh-CN":
        problems.append(f"the Chinese page's <html lang> is {zh['lang']!r}, expected 'zh-CN'")
    if zh["href"] != page_url(server, page) or not zh["visible"]:
        problems.append(f"no visible switch back to {page_url(server, page)}: {zh}")
    share = prose_share_chinese(driver)
    if page in TRANSLATED and share < 0.5:
        problems.append(f"listed as translated, but only {share:.0%} of the prose letters are Chinese")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


SEARCH_JS = """
  const done = arguments[arguments.length - 1];
  const start = Date.now();
  (function poll() {
    const links = Array.from(document.querySelectorAll("#search-results li a")).map(a => a.getAttribute("href"));
    const status = (document.querySelector("#search-results p.search-summary") || {}).textContent || "";
    if (links.length || status.trim() || Date.now() - start > 60000) done({links: links, status: status.trim()});
    else setTimeout(poll, 250);
  })();
"""


@pytest.mark.parametrize("edition, query, page", [("", "transposed convolution", "notebooks/04_transposed_conv"),
                                                  ("zh/", "转置卷积", "notebooks/04_transposed_conv"),
                                                  ("zh/", "跳跃连接", "notebooks/05_unet")])
def test_search_finds_a_chapter_in_each_edition(edition, query, page, server, driver):
    """The search box works offline in both editions; in Chinese the words are cut by jieba with
    the glossary's terms as its dictionary, so a compound term like 转置卷积 is one search word."""
    driver.get(server.base + edition + "search.html?q=" + urllib.parse.quote(query))
    found = driver.execute_async_script(SEARCH_JS)
    assert any(page in (href or "") for href in found["links"]), (query, found["status"], found["links"][:8])


def test_the_language_checks_see_english_prose(server, driver):
    """Test of the test: an English page's prose is not counted as Chinese."""
    load(driver, server, page_url(server, PAGES[1]))
    assert prose_share_chinese(driver) < 0.05


# --- tests of the test: deliberately broken pages must be reported ------------------------------

BROKEN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>broken</title>
<script src="missing.js"></script></head><body>
<img src="missing.png" alt="a missing figure">
<a href="no-such-page.html">a broken link</a>
<div class="dropdown-launch-buttons"><button>launch</button>
<a class="dropdown-item" title="Launch on Colab" href="https://colab.research.google.com/github/someone/else/blob/main/x.ipynb">Colab</a></div>
<span class="math notranslate nohighlight">\\(x^2\\)</span>
<script>undefinedFunction();</script>
{demos}
</body></html>"""


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    """A page with every fault the browser test must catch, and demos that are dead, blank or fine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segedu.widgets import Explorer

    def render(k, colour):
        fig, ax = plt.subplots(figsize=(1.5, 1))
        ax.text(0.5, 0.5, f"{k} {colour}", color=colour)
        return fig

    def blank(k):
        return plt.figure(figsize=(1.5, 1))

    good = Explorer(render, {"k": [1, 2, 3], "colour": ["red", "blue"]}, title="good").to_html()
    dead = re.sub(r"<script>\s*\(function.*?</script>", "", good, flags=re.S)  # the same demo without its script
    dead = re.sub(r'id="segedu-\w+"', 'id="segedu-dead"', dead)
    same = Explorer(lambda k: render(1, "red"), {"k": [1, 2]}, title="unchanged").to_html()
    empty = Explorer(blank, {"k": [1, 2]}, title="blank").to_html()
    folder = tmp_path_factory.mktemp("broken-site")
    (folder / "broken.html").write_text(BROKEN_PAGE.replace("{demos}", good + dead + same + empty))
    s = Server(folder)
    yield s
    s.close()


def test_checks_catch_a_broken_page(broken_site, driver):
    requests = load(driver, broken_site, broken_site.base + "broken.html")
    problems = check_requests(requests) + check_local_urls(driver, broken_site) + check_images(driver)
    text = "\n".join(problems)
    assert "missing.js" in text and "missing.png" in text and "no-such-page.html" in text, text
    assert any("image did not load" in p for p in problems), text
    errors, _ = check_console(driver)
    assert any("undefinedFunction" in e for e in errors), errors
    math, _ = check_math(driver)
    assert any("MathJax did not load" in p for p in math), math
    colab = check_colab(driver, "notebooks/01_sliding_window")
    assert any("no Colab launch button" in p for p in colab) and any("wrong place" in p for p in colab), colab


def test_checks_catch_dead_unchanged_and_blank_demos(broken_site, driver):
    load(driver, broken_site, broken_site.base + "broken.html")
    problems, n = check_demos(driver, "broken")
    assert n == 4
    by_demo = {i: [p for p in problems if p.startswith(f"demo {i} ")] for i in range(1, 5)}
    assert by_demo[1] == [], by_demo[1]  # the working demo passes
    assert any("did not change" in p for p in by_demo[2]), by_demo[2]  # no script: dead
    assert any("did not change" in p for p in by_demo[3]), by_demo[3]  # every frame the same
    assert any("blank" in p for p in by_demo[4]), by_demo[4]  # blank frames
