"""The library's layering: each module imports only from its own layer or the layers below it, and modules
import each other without cycles. Every import counts: lazy ones inside functions are dependencies all the
same, and relative imports are resolved (ruff bans them too, but a banned import must not hide an arrow)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

# Bottom first. An entry names a module or a package (with everything under it); the longest entry that
# matches decides a module's layer. workflow holds the stages the KFP components call; the modules that build,
# compile, submit and run the pipelines sit above the pipelines they drive.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "modelopsx",  # the package itself: its version only
        "modelopsx.errors",
        "modelopsx.settings",
        "modelopsx.jsonfile",
        "modelopsx.retry",
        "modelopsx.hash_labels",
        "modelopsx.netcheck",
        "modelopsx.tensorflow_logging",
        "modelopsx.metric_spec",  # the metrics' names and directions: the gate's vocabulary too
    ),
    ("modelopsx.data",),
    ("modelopsx.storage",),
    ("modelopsx.basin",),
    ("modelopsx.gate",),
    ("modelopsx.evaluation",),
    ("modelopsx.model",),
    ("modelopsx.registry",),
    ("modelopsx.workflow",),
    ("modelopsx.components",),
    ("modelopsx.pipelines",),
    ("modelopsx.workflow.compile", "modelopsx.workflow.submit", "modelopsx.workflow.local_run"),
    ("modelopsx.workflow.cli",),
    ("modelopsx.cli",),  # mounts every area's commands
)
ROOTS = ("modelopsx", "modelopsx.components", "modelopsx.pipelines")  # the installed packages


def layer_of(name: str) -> int | None:
    """The index in LAYERS of the longest entry naming `name` or a package above it; None if undeclared."""
    best: tuple[int, int] | None = None
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            covers = name == entry or (entry != "modelopsx" and name.startswith(entry + "."))
            if covers and (best is None or len(entry) > best[0]):
                best = (len(entry), index)
    return None if best is None else best[1]


def sources() -> dict[str, tuple[str, bool]]:
    """Every module of the installed packages: name -> (source, is a package's __init__)."""
    found: dict[str, tuple[str, bool]] = {}
    for root in ROOTS:
        spec = importlib.util.find_spec(root)
        assert spec is not None and spec.submodule_search_locations, root
        folder = Path(next(iter(spec.submodule_search_locations)))
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if root == "modelopsx" and parts[0] in ("components", "pipelines"):
                continue  # installed from their own folders
            is_package = parts[-1] == "__init__"
            name = ".".join((root, *(parts[:-1] if is_package else parts)))
            found[name] = (path.read_text(encoding="utf-8"), is_package)
    return found


def imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every name an import statement in `source` may load, relative ones resolved against `module`."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def graph(modules: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (`from a import b` counts as a.b when b is a module)."""
    edges: dict[str, set[str]] = {}
    for name, (source, is_package) in modules.items():
        targets = set()
        for target in imports(source, name, is_package):
            while target and target not in modules:  # an attribute of a module: the module itself
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def upward_imports(modules: dict[str, tuple[str, bool]]) -> list[str]:
    """Each import of a module in a higher layer, as `importer -> imported`."""
    found = []
    for name, targets in graph(modules).items():
        for target in sorted(targets):
            mine, theirs = layer_of(name), layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(f"{name} -> {target}")
    return sorted(found)


def test_every_module_has_a_declared_layer() -> None:
    assert [name for name in sorted(sources()) if layer_of(name) is None] == []


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    assert upward_imports(sources()) == []


def test_a_relative_upward_import_fails_the_guard() -> None:
    planted = {
        "modelopsx.data": ("", True),
        "modelopsx.data.split": ("def split():\n    from ..workflow import stages\n", False),
        "modelopsx.data.paths": ("from . import split\n", False),
        "modelopsx.workflow": ("", True),
        "modelopsx.workflow.stages": ("from modelopsx.data import split\n", False),
    }
    assert upward_imports(planted) == [  # the package and its module: importing one runs both
        "modelopsx.data.split -> modelopsx.workflow",
        "modelopsx.data.split -> modelopsx.workflow.stages",
    ]


def test_relative_imports_resolve_against_the_importing_module() -> None:
    assert imports("from .. import gate", "modelopsx.data.split") >= {"modelopsx", "modelopsx.gate"}
    assert imports("from .paths import x", "modelopsx.data", is_package=True) >= {"modelopsx.data.paths"}
    assert imports("from . import y", "modelopsx.data.split") == {"modelopsx.data", "modelopsx.data.y"}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert cycles(graph(sources())) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
