"""The layers the tree shows: the library never imports the lm-eval glue or the applications, and
the glue never imports the applications. Checked on the source, import by import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HARNESS = REPO_ROOT / "harness"

APPS = ("harness.apps", "baselines", "finetune")
GLUE = ("harness.lmeval", "lm_eval")


def _modules(folder: Path, *, exclude: tuple[Path, ...] = ()) -> list[Path]:
    return sorted(
        path for path in folder.rglob("*.py")
        if not any(path.is_relative_to(skip) for skip in exclude) and "_bundled" not in path.parts
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
