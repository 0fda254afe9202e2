"""Results collection and rendering: the leaderboard, the paper tables, intervals and paired tests.

`taiyi leaderboard` (see `cli.py`) is the command line; the names below are the library API.
They are loaded on first use (PEP 562) so that `taiyi --help`, which imports `cli.py` and hence
this package, does not pay for numpy, yaml or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "BootstrapResult": "bootstrap",
    "PairedResult": "bootstrap",
    "Units": "bootstrap",
    "bootstrap_ci": "bootstrap",
    "paired_bootstrap": "bootstrap",
    "read_units": "bootstrap",
    "compare_table": "build",
    "leaderboard_table": "build",
    "paired_report": "build",
    "paper_tables": "build",
    "Collection": "collect",
    "RunFile": "collect",
    "RunVariant": "collect",
    "TaskResult": "collect",
    "build_run_columns": "collect",
    "collect_runs": "collect",
    "atomic_write_bytes": "files",
    "atomic_write_text": "files",
    "PublishedTable": "published",
    "load_published": "published",
    "published_columns": "published",
    "ALL_FORMATS": "render",
    "render_csv": "render",
    "render_html": "render",
    "render_latex": "render",
    "render_markdown": "render",
    "render_terminal": "render",
    "write_table": "render",
    "write_plot": "plot",
    "Cell": "table",
    "Column": "table",
    "Table": "table",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
