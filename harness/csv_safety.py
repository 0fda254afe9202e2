"""CSV cells that a spreadsheet cannot run (CSV formula injection, OWASP).

Every CSV taiyi-bench writes goes through `csv_writer` (or `safe_cell`): the leaderboard, the
paired comparison and the per-type tables (`taiyi_bench.harness.apps.leaderboard.render`). Their cells carry
text a model or a user chose: a model name in a header (`=HYPERLINK(...)`), a label a model made
up in a per-type row, a path or a note. A spreadsheet opening the file runs a cell that starts
with `=`, `+`, `-` or `@` (and, in some, a tab or carriage return) as a formula; OWASP's remedy
is to prefix such a cell with `'`, which the spreadsheet shows as text.

Numbers stay numbers: an int or float is written as is, and so is a string that is a plain
number (`-3.5`, `+1.2`, the signed deltas the tables print), so a column of values still sorts and
sums. Only text is neutralised.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

# What a spreadsheet reads as the start of a formula (OWASP "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain decimal number, optionally signed, with an optional exponent: data, not a formula.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """`value` as a CSV cell no spreadsheet runs: text starting like a formula gets a leading
    `'`; numbers (and numeric strings such as "-3.5") and everything else pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(cell) for cell in row]


class SafeWriter:
    """`csv.writer` whose every cell goes through `safe_cell`: a writer cannot forget one."""

    def __init__(self, handle: Any, **options: Any) -> None:
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(handle: Any, **options: Any) -> SafeWriter:
    """The CSV writer for every file the project writes (options as `csv.writer`'s)."""
    return SafeWriter(handle, **options)
