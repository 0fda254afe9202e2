"""The published numbers (`results/published/*.yaml`) as leaderboard columns and tables.

The YAML files are data transcribed from the sources (see `results/README.md`). This module
validates them against the registry, turns them into `Column`s, and recomputes every average;
the averages the sources print are only compared with the recomputation, and disagreements or
known stale values (the Taiyi1 README's 64.8) become notes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.apps.leaderboard.table import Cell, Column, Table, fmt_pct, round_half_up
from harness.errors import DataFormatError
from harness.paths import bundled_dir
from harness.registry import PAPER_ORDER, PAPER_SETS, REGISTRY, TASK_TYPE_NAMES


def published_dir() -> Path:
    """`results/published` of the checkout, or its copy inside the wheel."""
    return bundled_dir("results/published")


@dataclass(frozen=True)
class PublishedTable:
    """One published table: columns of 13 values each, plus sources, reported averages and flags."""

    id: str
    letter: str
    title: str
    path: Path
    paper: str
    sources: tuple[str, ...]
    columns: tuple[dict[str, Any], ...]
    rows: tuple[dict[str, Any], ...]
    reported_averages: dict[str, dict[str, Any]] = field(default_factory=dict)
    flags: tuple[dict[str, Any], ...] = ()

    @property
    def column_ids(self) -> tuple[str, ...]:
        return tuple(str(c["id"]) for c in self.columns)

    def values(self, column_id: str) -> dict[str, float]:
        """Registry key -> published value (percent) for one column."""
        return {row["set"]: float(row[column_id]) for row in self.rows}

    def own_average(self, column_id: str) -> float:
        """The mean of the table's own rows (the paper's sets), as its source averages them; the
        leaderboard's "All" average also needs any set registered since."""
        values = self.values(column_id)
        return math.fsum(values.values()) / len(values)

    def column(self, column_id: str) -> Column:
        spec = self._column_spec(column_id)
        cells: dict[str, Cell] = {}
        for row in self.rows:
            note = row.get(f"{column_id}_model")
            cells[row["set"]] = Cell(float(row[column_id]), note=str(note) if note else None)
        provenance = [f"Published: {self.title}. Sources: " + "; ".join(filter(None, (self.paper, *self.sources))) + "."]
        if spec.get("model"):
            provenance.append(f"Model: {spec['model']}.")
        if spec.get("cited_sources"):
            provenance.append("Numbers taken from: " + "; ".join(str(s).rstrip(".") for s in spec["cited_sources"]) + ".")
        for row in self.rows:
            if row.get(f"{column_id}_note"):
                provenance.append(f"{REGISTRY[row['set']].display_name}: {row[f'{column_id}_note']}.")
        provenance.extend(str(note) for note in spec.get("notes", ()))
        return Column(
            key=f"published:{self.id}:{column_id}",
            header=str(spec["header"]),
            kind="published",
            cells=cells,
            provenance=provenance,
        )

    def _column_spec(self, column_id: str) -> dict[str, Any]:
        for spec in self.columns:
            if spec["id"] == column_id:
                return spec
        raise KeyError(f"{self.path}: no column {column_id!r}; columns: {', '.join(self.column_ids)}")

    def average_notes(self) -> list[str]:
        """Check the recomputed averages against the reported ones, and render the flags."""
        notes: list[str] = []
        agree, disagree = [], []
        for column_id in self.column_ids:
            header = self._column_spec(column_id)["header"]
            recomputed = self.own_average(column_id)
            reported = self.reported_averages.get(column_id)
            if reported is None or recomputed is None:
                continue
            if round_half_up(recomputed) == round_half_up(float(reported["value"])):
                agree.append(f"{header} {fmt_pct(recomputed)}")
            else:
                disagree.append(
                    f"{header}: recomputed {fmt_pct(recomputed)} but {reported.get('where', 'the source')} "
                    f"reports {fmt_pct(float(reported['value']))}"
                )
        if agree:
            notes.append("Recomputed 13-set averages agree with the averages the sources report: " + ", ".join(agree) + ".")
        notes.extend(f"Average mismatch: {text}." for text in disagree)
        for flag in self.flags:
            notes.append(flag_note(self, flag))
        return notes

    def to_table(self) -> Table:
        """The table as published: its own columns, averages recomputed, flags as notes."""
        columns = [self.column(column_id) for column_id in self.column_ids]
        notes = self.average_notes()
        dev_sets = [REGISTRY[key].display_name for key in PAPER_ORDER if REGISTRY[key].eval_split == "dev"]
        notes.append(f"{', '.join(dev_sets)} are scored on their dev splits (CBLUE test labels are hidden).")
        return Table(title=self.title, slug=f"paper_table_{self.letter.lower()}", columns=columns, notes=notes)


def flag_note(table: PublishedTable, flag: dict[str, Any]) -> str:
    """One flag of a published table as a sentence for the notes."""
    column_id = flag.get("column")
    header = table._column_spec(column_id)["header"] if column_id in table.column_ids else column_id
    explanation = " ".join(str(flag.get("explanation", "")).split())
    if flag.get("kind") == "stale_reported_average":
        recomputed = table.own_average(column_id)
        text = (
            f"Flag ({header}): {flag.get('where', 'a source')} reports the average as {flag['reported']}, "
            f"but the 13 numbers above average {fmt_pct(recomputed)} ({recomputed:.2f}); this table prints the recomputed value."
        )
        earlier = flag.get("earlier_numbers") or {}
        if earlier.get("values"):
            listed = ", ".join(f"{REGISTRY[k].display_name} {v}" for k, v in earlier["values"].items())
            text += f" Earlier numbers ({earlier.get('source', 'earlier source')}): {listed}."
        return f"{text} {explanation}".strip()
    return f"Flag ({header}): {explanation}"


def _validate(path: Path, data: Any) -> PublishedTable:
    if not isinstance(data, dict):
        raise DataFormatError(path, None, "a YAML mapping", type(data).__name__)
    for key in ("id", "table", "title", "columns", "rows"):
        if key not in data:
            raise DataFormatError(path, None, f"a top-level {key!r} key")
    column_ids = [c.get("id") for c in data["columns"]]
    rows = data["rows"]
    sets = [row.get("set") for row in rows]
    if sets != list(PAPER_SETS):  # the paper's sets; a set registered since has no published number
        raise DataFormatError(path, "rows", f"one row per set in paper order {list(PAPER_SETS)}", str(sets))
    for index, row in enumerate(rows, start=1):
        spec = REGISTRY[row["set"]]
        if row.get("type") and row["type"] != TASK_TYPE_NAMES[spec.task_type]:
            raise DataFormatError(path, f"row {index} ({row['set']})", f"type {TASK_TYPE_NAMES[spec.task_type]}", row["type"])
        for column_id in column_ids:
            value = row.get(column_id)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise DataFormatError(path, f"row {index} ({row['set']}), column {column_id}", "a number (percent)", repr(value))
            if not 0 <= value <= 100:
                raise DataFormatError(path, f"row {index} ({row['set']}), column {column_id}", "a percent in [0, 100]", repr(value))
    return PublishedTable(
        id=str(data["id"]),
        letter=str(data["table"]),
        title=str(data["title"]),
        path=path,
        paper=str(data.get("paper", "")),
        sources=tuple(str(s) for s in data.get("sources", ())),
        columns=tuple(data["columns"]),
        rows=tuple(rows),
        reported_averages=dict(data.get("reported_averages") or {}),
        flags=tuple(data.get("flags") or ()),
    )


def load_published(directory: str | os.PathLike | None = None) -> dict[str, PublishedTable]:
    """All published tables (`kind: table` YAML files), keyed by table letter (`A`, `B`)."""
    root = Path(directory) if directory is not None else published_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"published numbers folder {root} not found (expected results/published in the checkout or wheel)")
    tables: dict[str, PublishedTable] = {}
    for path in sorted(root.glob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        if not isinstance(data, dict) or data.get("kind") != "table":
            continue  # anchors and other non-table data
        table = _validate(path, data)
        if table.letter in tables:
            raise DataFormatError(path, None, f"a unique table letter; {table.letter!r} is also used by {tables[table.letter].path}")
        tables[table.letter] = table
    return tables


def published_columns(selection: str, tables: dict[str, PublishedTable] | None = None) -> list[Column]:
    """Columns named by `selection`: `none`, `all`, a table letter (`A`), or `A:taiyi1,B:taiyi2,...`.

    Headers that would clash across tables (both tables have a SOTA column) get the table letter.
    """
    tables = load_published() if tables is None else tables
    selection = selection.strip()
    picked: list[tuple[PublishedTable, str]] = []
    if selection.lower() in ("", "none"):
        return []
    for item in selection.split(","):
        item = item.strip()
        if item.lower() == "all":
            picked.extend((t, c) for t in tables.values() for c in t.column_ids)
            continue
        letter, _, column_id = item.partition(":")
        table = tables.get(letter.upper())
        if table is None:
            raise KeyError(f"unknown published table {letter!r}; known: {', '.join(tables)}")
        if column_id:
            if column_id not in table.column_ids:
                raise KeyError(f"table {table.letter} has no column {column_id!r}; columns: {', '.join(table.column_ids)}")
            picked.append((table, column_id))
        else:
            picked.extend((table, c) for c in table.column_ids)
    columns: list[Column] = []
    seen: set[str] = set()
    for table, column_id in picked:
        column = table.column(column_id)
        if column.key in seen:
            continue
        seen.add(column.key)
        columns.append(column)
    headers = [c.header for c in columns]
    for column in columns:
        if headers.count(column.header) > 1:
            letter = column.key.split(":")[1]
            column.header = f"{column.header} ({next(t.letter for t in tables.values() if t.id == letter)})"
    return columns
