"""Results collection and rendering: the leaderboard, the paper tables, intervals and paired tests.

`taiyi leaderboard` (see `cli.py`) is the command line; the names below are the library API.
They are loaded on first use (PEP 562) so that `taiyi --help`, which imports `cli.py` and hence
this package, does not pay for numpy, yaml or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {  # name -> module
    **dict.fromkeys(("Units", "bootstrap_ci", "paired_bootstrap"), "bootstrap"),
    **dict.fromkeys(("compare_table", "leaderboard_table", "paper_tables"), "build"),
    "load_published": "published",
    **dict.fromkeys(("render_csv", "render_html", "render_latex", "render_markdown", "write_table"), "render"),
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
