"""What a reader of the notebooks needs: exercises with solutions, and a notebook that runs on Colab.

* Every chapter ends with ``## Exercises``: a numbered list of at least three, and a solution
  for each, in a code cell tagged ``hide-cell`` + ``solution`` (hidden behind a toggle in the
  book; tests/test_browser.py checks the toggle) or a ``{admonition} Solution`` dropdown. The
  solution cells are stored executed, without error (nbval re-runs them).
* The first code cell installs segedu only when it is missing, from the repository of
  ``_config.yml``, with IPython's ``%pip`` (it installs into the kernel's own environment).
* Notebooks import only the standard library, segedu, segedu's dependencies, or packages that
  Colab ships.
* ``test_setup_cell_installs_segedu_in_a_fresh_environment`` runs a chapter's setup cell in a
  fresh virtual environment, no network, and the chapter's first cells after it (see there).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"].get("branch", "main")

# Top-level modules a chapter may import besides the standard library, segedu and segedu's
# declared dependencies: what Google Colab has pre-installed.
COLAB_PREINSTALLED = {"IPython", "ipywidgets", "numpy", "scipy", "matplotlib", "torch", "torchvision", "PIL",
                      "tqdm", "pandas", "sklearn", "skimage", "sympy", "yaml", "requests", "pooch"}
# import name of a distribution, where it differs
IMPORT_NAME = {"pillow": "PIL", "scikit-learn": "sklearn", "scikit-image": "skimage", "pyyaml": "yaml"}


def cells(nb_path: Path) -> list[dict]:
    nb = json.loads(nb_path.read_text())
    for c in nb["cells"]:
        if isinstance(c["source"], list):
            c["source"] = "".join(c["source"])
    return nb["cells"]


def code_cells(nb_path: Path) -> list[dict]:
    return [c for c in cells(nb_path) if c["cell_type"] == "code"]


def strip_magics(source: str) -> str:
    """Python source of a cell with IPython magics / shell escapes replaced by ``pass``."""
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.splitlines())


def exercises(nb_path: Path) -> tuple[int, list[str]]:
    """(index of the first cell after the ``Exercises`` heading, the numbered items under it)."""
    cs = cells(nb_path)
    for i, c in enumerate(cs):
        if c["cell_type"] != "markdown":
            continue
        m = re.search(r"^(#{1,6})\s+Exercises\b.*$", c["source"], re.M)
        if not m:
            continue
        level = len(m.group(1))
        text = c["source"][m.end():]
        for nxt in cs[i + 1:]:  # the section may go on in the next markdown cells
            if nxt["cell_type"] != "markdown":
                continue
            h = re.search(rf"^#{{1,{level}}}\s", nxt["source"], re.M)
            if h:
                text += "\n" + nxt["source"][: h.start()]
                break
            text += "\n" + nxt["source"]
        end = re.search(rf"^#{{1,{level}}}\s", text, re.M)
        text = text[: end.start()] if end else text
        items = re.findall(r"^ {0,3}\d+[.)]\s+(.+)$", text, re.M)
        return i + 1, items
    return -1, []


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_exercises_with_solutions(nb_path):
    start, items = exercises(nb_path)
    assert start >= 0, f"{nb_path.name} has no 'Exercises' heading"
    assert len(items) >= 3, f"{nb_path.name}: 'Exercises' lists {len(items)} numbered exercises, at least 3 are required"
    cs = cells(nb_path)
    solutions = [c for c in cs if "solution" in c.get("metadata", {}).get("tags", [])]
    dropdowns = sum(len(re.findall(r"\{admonition\}\s*Solution", c["source"])) for c in cs if c["cell_type"] == "markdown")
    assert len(solutions) + dropdowns >= len(items), (
        f"{nb_path.name}: {len(items)} exercises but {len(solutions)} solution cells and {dropdowns} solution dropdowns")
    for c in solutions:
        tags = c["metadata"]["tags"]
        first = c["source"].splitlines()[0] if c["source"] else "(empty)"
        assert cs.index(c) >= start, f"{nb_path.name}: solution cell {first!r} comes before the exercises"
        assert c["cell_type"] == "code", f"{nb_path.name}: a markdown cell is tagged 'solution': use an admonition"
        assert "hide-cell" in tags, f"{nb_path.name}: solution {first!r} is not tagged hide-cell (it would show)"
        assert c.get("execution_count") is not None, (
            f"{nb_path.name}: solution {first!r} has no stored execution (run `make notebooks`)")
        errors = [o for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{nb_path.name}: solution {first!r} fails: {errors[0].get('ename')}: {errors[0].get('evalue')}"


SETUP_PIP = re.compile(r'^\s*%pip install (?:-q )?"segedu @ git\+(?P<url>https://github\.com/[\w.-]+/[\w.-]+?)(?:\.git)?'
                       r'(?:@(?P<ref>[\w./-]+))?"\s*$', re.M)


@pytest.mark.parametrize("nb_path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_setup_cell_installs_segedu_only_when_missing(nb_path):
    code = code_cells(nb_path)
    assert code, f"{nb_path.name} has no code cell"
    setup = code[0]["source"]
    tree = ast.parse(strip_magics(setup))
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Try), (
        f"{nb_path.name}: the first code cell must be exactly `try: import segedu / except ImportError: %pip install ...`")
    t = tree.body[0]
    assert [ast.dump(s) for s in t.body] == [ast.dump(ast.parse("import segedu").body[0])], (
        f"{nb_path.name}: the setup cell must try `import segedu` and nothing else")
    assert len(t.handlers) == 1 and isinstance(t.handlers[0].type, ast.Name) and t.handlers[0].type.id == "ImportError", (
        f"{nb_path.name}: the setup cell must catch ImportError only")
    assert not t.orelse and not t.finalbody
    m = SETUP_PIP.search(setup)
    assert m, (f"{nb_path.name}: the except branch must be `%pip install -q \"segedu @ git+{REPO_URL}\"` "
               "(%pip installs into the running kernel's environment; !pip may not)")
    assert m.group("url") == REPO_URL, f"{nb_path.name}: installs from {m.group('url')}, _config.yml names {REPO_URL}"
    assert m.group("ref") in (None, BRANCH), f"{nb_path.name}: installs ref {m.group('ref')}, _config.yml names {BRANCH}"
    assert "!pip" not in setup


def _allowed_modules() -> set[str]:
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    deps = {Requirement(r).name.lower() for r in requires("segedu") or [] if "extra ==" not in r}
    return {"segedu"} | COLAB_PREINSTALLED | {IMPORT_NAME.get(d, d.replace("-", "_")) for d in deps} | set(sys.stdlib_module_names)


@pytest.mark.parametrize("nb_path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_imports_only_what_colab_or_segedu_provides(nb_path):
    allowed = _allowed_modules()
    used = set()
    for c in code_cells(nb_path):
        for node in ast.walk(ast.parse(strip_magics(c["source"]))):
            if isinstance(node, ast.Import):
                used |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                used.add(node.module.split(".")[0])
    assert used <= allowed, (f"{nb_path.name} imports {sorted(used - allowed)}: neither Colab nor segedu's "
                             "dependencies provide it (add it to pyproject's dependencies, or do without)")


# --- Colab readiness ---------------------------------------------------------------------------

COLAB_NOTEBOOK = ROOT / "notebooks" / "01_sliding_window.ipynb"  # the cheapest chapter
COLAB_CELLS = 8  # setup, imports, config, data, figures, the model and its patches: ~15 s on 2 CPU cores


def _release_files() -> list[Path]:
    """What a clone of the repository holds: the files git tracks, plus new ones it does not ignore."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode()
        return [ROOT / f for f in out.split("\0") if f and (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the package and its metadata
        keep = ("segedu/", "pyproject.toml", "README.md", "LICENSE")
        return [p for p in ROOT.rglob("*") if p.is_file() and str(p.relative_to(ROOT)).startswith(keep)
                and "__pycache__" not in p.parts]


def _colab_like_environment(tmp: Path) -> Path:
    """A fresh venv that sees every package of this one (as Colab ships torch, numpy, ...) except segedu."""
    import sysconfig

    env = tmp / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env)
    python = env / "bin" / "python"
    site_packages = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    preinstalled = tmp / "preinstalled"  # this venv's site-packages without segedu
    preinstalled.mkdir()
    for entry in ours.iterdir():
        if "segedu" not in entry.name.lower():
            (preinstalled / entry.name).symlink_to(entry)
    (site_packages / "_preinstalled.pth").write_text(f"import site; site.addsitedir({str(preinstalled)!r})\n")
    return python


@pytest.mark.slow
def test_setup_cell_installs_segedu_in_a_fresh_environment(tmp_path):
    """Colab readiness, without network.

    A fresh virtual environment sees every package of the test environment (the way Colab ships
    torch, numpy, matplotlib, ipykernel, ...) except segedu. A Jupyter kernel in it runs the
    chapter's own setup cell, with one change: the source `git+REPO_URL` becomes a copy of the
    files a clone of the repository would hold, and pip gets `--no-index --no-build-isolation`
    (no network). This proves that
      * `import segedu` fails there, so the cell takes its install branch;
      * `%pip` installs into the kernel's environment, from a source like the repository, through
        the package's own build metadata (pyproject.toml), with its declared dependencies resolved;
      * the installed package, not the checkout, is what the notebook then imports, and it holds
        every module of the checkout's segedu (no sub-package forgotten by the build metadata);
      * the chapter's first cells run with it, and their checked outputs (NBVAL_CHECK_OUTPUT) are
        the stored ones.
    """
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    python = _colab_like_environment(tmp_path)
    probe = subprocess.run([python, "-c", "import segedu"], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": ""})
    assert probe.returncode != 0 and "No module named 'segedu'" in probe.stderr, "the fresh environment already has segedu"

    clone = tmp_path / "segedu-clone"
    for f in _release_files():
        dest = clone / f.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)

    kernels = tmp_path / "kernels" / "colab-like"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "colab-like",
        "language": "python", "env": {"PYTHONPATH": "", "PYTHONNOUSERSITE": "1", "PIP_NO_INPUT": "1"}}))
    km = KernelManager(kernel_name="colab-like", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels.parent)]))

    stored = nbformat.read(COLAB_NOTEBOOK, as_version=4)
    code = [c for c in stored.cells if c.cell_type == "code"][:COLAB_CELLS]
    setup = code[0].source
    spec = f"git+{REPO_URL}"
    assert setup.count(spec) == 1 and setup.count("%pip install") == 1, "unexpected setup cell (see test above)"
    local = setup.replace(spec, clone.as_uri()).replace("%pip install", "%pip install --no-index --no-build-isolation")
    check = ("import importlib.metadata, pathlib, segedu\n"
             "print(pathlib.Path(segedu.__file__).resolve().parent)\n"
             "print(sorted(str(p.relative_to(pathlib.Path(segedu.__file__).parent)) "
             "for p in pathlib.Path(segedu.__file__).parent.rglob('*.py')))\n"
             "print(importlib.metadata.version('segedu'))")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(local), nbformat.v4.new_code_cell(check)]
                                  + [nbformat.v4.new_code_cell(c.source) for c in code[1:]])
    workdir = tmp_path / "work"  # not the checkout: its segedu/ folder must not be importable
    workdir.mkdir()
    NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": str(workdir)}}).execute()

    for i, c in enumerate(nb.cells):
        errors = [o for o in c.outputs if o.output_type == "error"]
        assert not errors, f"cell {i}: {errors[0].ename}: {errors[0].evalue}\n{c.source[:300]}"
    log = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    location, modules, version = "".join(o.get("text", "") for o in nb.cells[1].outputs).strip().splitlines()
    site_packages = Path(location).parent
    print(f"setup cell output:\n{log}\nsegedu imported from {location}, version {version}")
    assert site_packages.is_relative_to(tmp_path / "venv"), f"the notebook imported segedu from {location}, not the fresh venv\n{log}"
    checkout_modules = sorted(str(p.relative_to(clone / "segedu")) for p in (clone / "segedu").rglob("*.py"))
    assert ast.literal_eval(modules) == checkout_modules, "the installed package lacks modules of the repository"
    assert f'version = "{version}"' in (ROOT / "pyproject.toml").read_text(), f"installed version {version}"
    # the cells the chapter checks with nbval print what the stored notebook shows
    for ran, ref in zip(nb.cells[2:], code[1:]):
        if ref.source.lstrip().startswith("# NBVAL_CHECK_OUTPUT"):
            got = "".join(o.get("text", "") for o in ran.outputs if o.output_type == "stream")
            want = "".join(o.get("text", "") for o in ref.outputs if o.output_type == "stream")
            assert got == want, f"checked cell differs in the fresh environment:\n{ref.source[:200]}\n{got!r} != {want!r}"
