"""The layers the tree shows: the library never imports the lm-eval glue or the applications, and
the glue never imports the applications. Checked on the source, import by import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HARNESS = REPO_ROOT / "harness"

APPS = ("taiyi_bench.harness.apps", "taiyi_bench.baselines", "taiyi_bench.finetune")
GLUE = ("taiyi_bench.harness.lmeval", "lm_eval")


def _modules(folder: Path, *, exclude: tuple[Path, ...] = ()) -> list[Path]:
    return sorted(
        path for path in folder.rglob("*.py")
        if not any(path.is_relative_to(skip) for skip in exclude)
    )


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in _imports(path) if any(name == f or name.startswith(f + ".") for f in forbidden))


LIBRARY = _modules(HARNESS, exclude=(HARNESS / "apps", HARNESS / "lmeval"))
GLUE_MODULES = [*_modules(HARNESS / "lmeval"), REPO_ROOT / "tasks" / "utils.py"]


def test_the_layers_exist():
    assert len(LIBRARY) > 10 and len(GLUE_MODULES) >= 4


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_library_imports_neither_glue_nor_apps(path):
    assert _offending(path, APPS + GLUE) == []


@pytest.mark.parametrize("path", GLUE_MODULES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_glue_never_imports_the_apps(path):
    assert _offending(path, APPS) == []


BASELINES = _modules(REPO_ROOT / "baselines")


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_baselines_never_import_the_apps(path):
    assert _offending(path, ("taiyi_bench.harness.apps",)) == []


# --------------------------------------------------------------------------- no import circles

PROJECT_FILES = [
    *_modules(HARNESS),
    *_modules(REPO_ROOT / "baselines"),
    *_modules(REPO_ROOT / "finetune"),
    REPO_ROOT / "tasks" / "utils.py",
]


def _module_name(path: Path) -> str:
    parts = ["taiyi_bench", *path.relative_to(REPO_ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _project_edges(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports, at module level or inside functions alike; imports under
    `if TYPE_CHECKING:` are left out (they never run: type hints only)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            edges.update(filter(None, (resolve(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                target = resolve(f"{base}.{alias.name}")
                edges.add(target if target == f"{base}.{alias.name}" else resolve(base))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    edges.discard(None)
    edges.discard(module)
    return edges


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (`a -> b -> a`), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_reports_the_path():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_among_the_project_modules():
    known = {_module_name(path) for path in PROJECT_FILES}
    graph = {_module_name(path): _project_edges(path, known) for path in PROJECT_FILES}
    assert sum(map(len, graph.values())) > 100  # the scan sees the imports
    cycle = _find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


# --------------------------------------------------------------------------- one installed package

UNINSTALLED_NAMES = ("harness", "baselines", "finetune", "tasks")


@pytest.mark.parametrize("path", PROJECT_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_modules_import_the_project_through_its_installed_name(path):
    """`harness`, `baselines` and `finetune` exist only as `taiyi_bench.*` once installed: a bare
    `import harness...` works from a checkout and breaks (or imports someone else's) elsewhere."""
    assert _offending(path, UNINSTALLED_NAMES) == []
