"""The repository is consistent: one repository URL, notebooks equal their sources, install
metadata agrees across pyproject / environment.yml, CI calls the README's commands."""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import py2nb  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"].get("branch", "main")
OWNER_REPO = REPO_URL.removeprefix("https://github.com/")


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def test_there_are_notebooks():
    assert NOTEBOOKS, "no chapter notebooks found in notebooks/"


def test_toc_lists_every_notebook_and_every_entry_exists():
    files = _toc_files()
    for f in files:
        assert any((ROOT / (f + ext)).exists() for ext in (".md", ".ipynb")), f"_toc.yml names missing file {f}"
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_equals_its_source(nb_path):
    src = ROOT / "notebooks" / "src" / (nb_path.stem + ".py")
    assert src.exists(), f"{nb_path.name} has no source {src.relative_to(ROOT)}"
    cells = py2nb.parse(src.read_text())
    nb = nbformat.read(nb_path, as_version=4)
    assert [(c.cell_type, c.source, c.metadata.get("tags", []), c.metadata.get("mystnb")) for c in nb.cells] == [
        (k, s, m.get("tags", []), m.get("mystnb")) for k, s, m in cells], (
        f"{nb_path.name} differs from {src.name}: run `python tools/py2nb.py {src.relative_to(ROOT)}` "
        "and re-execute it")


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_setup_cell_and_colab_link_use_the_configured_repository(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = code[0].source
    assert "import segedu" in setup and "except ImportError" in setup, "first code cell must install segedu only if missing"
    urls = re.findall(r"git\+(https://github\.com/[\w.-]+/[\w.-]+)", setup)
    assert urls == [REPO_URL], f"setup cell installs from {urls}, _config.yml says {REPO_URL}"
    first_md = next(c.source for c in nb.cells if c.cell_type == "markdown")
    colab = f"https://colab.research.google.com/github/{OWNER_REPO}/blob/{BRANCH}/notebooks/{nb_path.name}"
    assert colab in first_md, f"first markdown cell must link {colab}"
    readme = (ROOT / "README.md").read_text()
    assert colab in readme, f"README's chapter table must link {colab}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_are_stored_clean_and_small(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "notebook must be committed executed (make notebooks)"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), "outputs must come from one clean top-to-bottom run"
    for c in code:
        for o in c.outputs:
            assert o.output_type != "error", f"stored error output: {o.get('ename')}: {o.get('evalue')}"
    assert "widgets" not in nb.metadata, "widget state must not be stored (the book shows static demos)"
    assert nb_path.stat().st_size < 6e6, f"{nb_path.name} is {nb_path.stat().st_size / 1e6:.1f} MB; keep demos small"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_exercises_with_solutions(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Exercises" in text, "each chapter ends with an '## Exercises' section"
    exercises = text.split("## Exercises", 1)[1]
    numbered = re.findall(r"^\s*(\d+)\.\s", exercises, re.M)
    assert len(numbered) >= 3, f"at least three exercises, found {len(numbered)}"
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    md_solutions = exercises.count(":class: dropdown")
    assert len(solutions) + md_solutions >= 3, "every exercise needs a solution (tagged 'solution' or a dropdown)"
    for c in solutions:
        if c.cell_type == "code":
            assert "hide-cell" in c.metadata["tags"] or "hide-input" in c.metadata["tags"], "solutions are hidden behind a toggle"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_marks_deterministic_cells(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    assert any(c.source.startswith("# NBVAL_CHECK_OUTPUT") for c in nb.cells if c.cell_type == "code")


def _pyproject():
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_agrees_with_pyproject():
    project = _pyproject()["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["book"]) | set(
        project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    assert "-e ." in pip


def test_package_does_not_pin_torch_or_numpy_and_supports_colab_python():
    project = _pyproject()["project"]
    for dep in project["dependencies"]:
        name = re.split(r"[<>=!~ ]", dep)[0]
        if name in ("torch", "numpy"):
            assert "==" not in dep and "<" not in dep, f"{dep}: pinning would replace Colab's build"
    assert project["requires-python"] == ">=3.10"
    book = project["optional-dependencies"]["book"]
    assert any(d.replace(" ", "") == "jupyter-book>=1.0.4,<2" for d in book)


def test_ci_and_workflow_call_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec make test\b", ci, re.M) and "torch==2.13.0" in ci and "SEGEDU_DATA" in ci
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    runs = [s.get("run", "") for job in wf["jobs"].values() for s in job["steps"]]
    assert any(r.startswith("make test") for r in runs)
    assert any(r.startswith("make book") for r in runs)
    uses = [s.get("uses", "") for job in wf["jobs"].values() for s in job["steps"]]
    assert any(u.startswith("actions/deploy-pages") for u in uses)
    upload = [s for job in wf["jobs"].values() for s in job["steps"] if s.get("uses", "").startswith("actions/upload-pages")]
    assert upload and upload[0]["with"]["path"] == "_build/html"
    makefile = (ROOT / "Makefile").read_text()
    for target in ("book:", "test:", "notebooks:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), f"Makefile lacks {target}"


def test_licences():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "CC BY 4.0" in CONFIG["html"]["extra_footer"]
    assert "launch_buttons" in CONFIG and CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["execute"]["execute_notebooks"] == "off"


def test_notebook_times_recorded_for_every_notebook():
    times = json.loads((ROOT / "book" / "_data" / "notebook_times.json").read_text())
    for nb in NOTEBOOKS:
        assert nb.name in times, f"{nb.name}: no measured execution time; run make notebooks"


def test_chapter_map_numbers_are_current():
    """The intro's chapter map states parameter counts; they must match the library's models."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("chapter_map", ROOT / "tools" / "chapter_map.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    committed = json.loads((ROOT / "book" / "_static" / "chapter_map.json").read_text())
    current = {num: lines for num, _, lines in mod.chapters()}
    assert committed == current, "run `python tools/chapter_map.py` to redraw book/_static/chapter_map.png"
    assert (ROOT / "book" / "_static" / "chapter_map.png").stat().st_size > 10_000
