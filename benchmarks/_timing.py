"""Helpers shared by the benchmark scripts (run as `python benchmarks/NAME.py`, which puts this
folder on sys.path)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose --help shows the script's docstring as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def timed(
    fn: Callable[[], T],
    repeat: int = 1,
    before: Callable[[], object] | None = None,
    stat: Callable[[list[float]], float] = min,
) -> tuple[float, T]:
    """(`stat` of the seconds of `repeat` calls of `fn`, the last call's result); `before` runs
    untimed ahead of each call (to clear caches or copy a model)."""
    seconds = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return stat(seconds), result
