"""Where things are: the user's data directory, the bundled samples, task YAMLs and published numbers."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "TAIYI_DATA_DIR"

_HARNESS_DIR = Path(__file__).resolve().parent
SAMPLES_DIR = _HARNESS_DIR / "samples"


def bundled_dir(name: str) -> Path:
    """A project folder shipped with the package (`tasks`, `results/published`): a sibling of
    `harness/`, inside `taiyi_bench/` in a wheel and at the repository root in a checkout."""
    return _HARNESS_DIR.parent / name


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data directory for this run: the explicit argument, else $TAIYI_DATA_DIR, else None (samples)."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(DATA_DIR_ENV) or None
    return Path(chosen).expanduser() if chosen else None
