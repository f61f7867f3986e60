"""The library's shape: no import cycles, small modules, an honest ``__all__``, public names in tests.

Every import is read from the source (module level *and* inside functions), so an import hidden
in a function to dodge a cycle is still a cycle here. The cycle check is Tarjan's strongly
connected components over the graph "module A imports module B": a component of more than one
module (or a module importing itself) is a cycle.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "segedu"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str) -> set[str]:
    """The segedu modules ``module`` imports, anywhere in its source."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node.level, node.module)
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # `import segedu.models.unet as u` -> that module
                t = t.rpartition(".")[0]
            if t.startswith("segedu"):
                found.add(t)
    return found


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the maximal sets of modules that all reach each other."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    comps = strongly_connected_components(graph)
    assert ["a", "b", "c"] in comps and ["d"] in comps


def test_imports_are_read_inside_functions_too():
    assert "segedu.runtime" in GRAPH["segedu.train"]
    assert "segedu.models.utils" in GRAPH["segedu.experiments"]


def test_no_import_cycle_inside_segedu():
    cycles = [c for c in strongly_connected_components(GRAPH) if len(c) > 1 or c[0] in GRAPH[c[0]]]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_models_never_import_training_code():
    for module, imported in GRAPH.items():
        if module.startswith("segedu.models"):
            bad = {m for m in imported if m.split(".")[1] in ("train", "experiments", "bench", "cli", "viz")}
            assert not bad, f"{module} imports {sorted(bad)}"


LEAVES = ["segedu.runtime", "segedu.checks", "segedu.checkpoint", "segedu.summary", "segedu.metrics"]


@pytest.mark.parametrize("module", LEAVES)
def test_leaf_modules_import_nothing_above_them(module):
    assert GRAPH[module] <= {"segedu.runtime"}, f"{module} imports {sorted(GRAPH[module])}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_600_lines(module):
    n = len(MODULES[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines; split it (one idea per module)"


def test_infrastructure_is_packages():
    for name in ("bench", "cli", "data", "widgets"):
        assert (PACKAGE / name / "__init__.py").exists(), f"segedu/{name} should be a package"


def _public_definitions(mod) -> set[str]:
    return {n for n, v in vars(mod).items() if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
            and getattr(v, "__module__", None) == mod.__name__}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_all_lists_exactly_the_public_api(module):
    mod = importlib.import_module(module)
    if module.endswith("__main__"):
        return
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{module} has no __all__"
    missing = [n for n in exported if not hasattr(mod, n)]
    assert not missing, f"{module}.__all__ names what it does not have: {missing}"
    assert len(set(exported)) == len(exported), f"{module}.__all__ repeats a name"
    unlisted = _public_definitions(mod) - set(exported)
    assert not unlisted, f"{module} defines public {sorted(unlisted)} but its __all__ omits them"
    if MODULES[module].name == "__init__.py":
        return  # a package's __all__ re-exports what its modules define
    foreign = [n for n in exported if (inspect.isfunction(getattr(mod, n)) or inspect.isclass(getattr(mod, n)))
               and not getattr(getattr(mod, n), "__module__", "").startswith(module)]
    assert not foreign, f"{module}.__all__ lists names defined elsewhere: {foreign}"


PRIVATE_ACCESS = re.compile(r"\b(segedu(?:\.\w+)*)\.(_[a-z]\w*)")


def test_tests_use_public_names_only():
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text())
        aliases = {}  # local name -> segedu module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segedu"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        offenders.append(f"{path.name}: from {node.module} import {a.name}")
                    full = f"{node.module}.{a.name}"
                    if full in MODULES:
                        aliases[a.asname or a.name] = full
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("segedu"):
                        aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or "segedu"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offenders.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                # monkeypatch.setattr("segedu.x._y", ...) reaches a private name through a string
                offenders += [f"{path.name}:{node.lineno}: {m.group(0)}" for m in PRIVATE_ACCESS.finditer(node.value)]
    assert not offenders, "tests reach private names: " + ", ".join(offenders)


def test_old_import_paths_keep_working():
    from segedu.bench import peak_memory_bytes
    from segedu.experiments import count_parameters, format_table, pareto_front, summarize
    from segedu.memory import peak_memory_bytes as moved
    from segedu.train import load_checkpoint, resolve_amp, resolve_channels_last, resolve_device, save_checkpoint

    assert peak_memory_bytes is moved
    assert all(callable(f) for f in (count_parameters, format_table, pareto_front, summarize, load_checkpoint,
                                     resolve_amp, resolve_channels_last, resolve_device, save_checkpoint))


def test_train_step_is_public_and_is_what_fit_runs():
    from segedu import train

    assert "train_step" in train.__all__
    assert "train_step(" in inspect.getsource(train.fit)


# Data flows one way. A module may import modules of its own layer or of a lower one, never of a
# higher one: the layers are the design's "leaf modules first" order made checkable.
LAYERS = [
    ("runtime", "checks"),                                                  # leaves
    ("checkpoint", "summary", "metrics", "memory", "layers", "transposed", "sizes", "tiling", "losses",
     "models"),                                                             # the course
    ("data", "viz", "distributed", "glue"),
    ("loading", "train"),
    ("inference", "experiments", "pretrained"),
    ("widgets",),
    ("cli", "bench", "__main__"),                                           # tools around the course
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return LAYER_OF.get(top, -1)


def test_every_module_has_a_layer():
    assert not [m for m in MODULES if m != "segedu" and _layer(m) < 0]


def test_imports_point_down_the_layers():
    upward = [f"{a} -> {b}" for a, bs in GRAPH.items() for b in bs if a != "segedu" and _layer(b) > _layer(a)]
    assert not upward, "imports against the flow of data: " + ", ".join(sorted(upward))
