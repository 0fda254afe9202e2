"""The static parts of the HTML pages (styles, the report's filter script), kept as files so that
they read and diff as CSS and JavaScript; each page inlines them, so it needs no network."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def asset(name: str) -> str:
    return (Path(__file__).parent / name).read_text(encoding="utf-8")
