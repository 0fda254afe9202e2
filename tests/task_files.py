"""The task YAMLs as lm-eval reads them: `include`s resolved (the included file first, the
including file's keys winning, one level of keys deep, as lm-eval merges them) and `!function`
tags kept as their text, so the tests need not import the hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def read_task_yaml(path: str | Path) -> dict[str, Any]:
    """One YAML file, includes resolved relative to it (or absolute)."""
    path = Path(path)
    config = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    includes = config.pop("include", [])
    merged: dict[str, Any] = {}
    for include in [includes] if isinstance(includes, str) else includes:
        target = Path(include) if Path(include).is_absolute() else path.parent / include
        merged.update(read_task_yaml(target))
    merged.update(config)
    return merged


def metric_list_names(config: dict[str, Any]) -> list[str]:
    return [entry["metric"] for entry in config.get("metric_list", [])]
