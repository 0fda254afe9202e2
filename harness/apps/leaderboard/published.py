"""The published numbers (`results/published/*.yaml`) as leaderboard columns and tables.

The YAML files are data transcribed from the sources (see `results/README.md`). This module
validates them against the registry, turns them into `Column`s, and recomputes every average;
the averages the sources print are only compared with the recomputation, and disagreements or
known stale values (the Taiyi1 README's 64.8) become notes.

Every published number records the rule it was computed by (a key of `taiyi_bench.harness.scoring.RULES`)
and its source: a column's `rule` and `source` are the defaults of its cells, a row's
`<column>_rule` and `<column>_source` override them for one cell. A `rule` is a rule id, or a
mapping from task type (`NER`, `RE`, `TC`, `QA`) or set key to a rule id (a set key wins). The
leaderboard sets beside a published cell only a run's metric by that same rule.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taiyi_bench.harness.apps.leaderboard.rules import BY_RULE_CAPTION
from taiyi_bench.harness.apps.leaderboard.table import Cell, Column, Table, fmt_pct, round_half_up, rule_notes
from taiyi_bench.harness.errors import DataFormatError
from taiyi_bench.harness.paths import bundled_dir
from taiyi_bench.harness.registry import PAPER_ORDER, PAPER_SETS, REGISTRY, TASK_TYPE_NAMES


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
    # column id -> set -> the rule its number was computed by / where the number (and rule) come from.
    cell_rules: dict[str, dict[str, str]] = field(default_factory=dict)
    cell_sources: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def column_ids(self) -> tuple[str, ...]:
        return tuple(str(c["id"]) for c in self.columns)

    def rule(self, column_id: str, key: str) -> str:
        """The rule (`taiyi_bench.harness.scoring.RULES`) of one published cell."""
        return self.cell_rules[column_id][key]

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
        cells = {row["set"]: Cell(float(row[column_id]), note=str(row[f"{column_id}_model"]) if row.get(f"{column_id}_model") else None,
                                  rule=self.rule(column_id, row["set"])) for row in self.rows}
        provenance = [f"Published: {self.title}. Sources: " + "; ".join(filter(None, (self.paper, *self.sources))) + "."]
        if spec.get("model"):
            provenance.append(f"Model: {spec['model']}.")
        if spec.get("cited_sources"):
            provenance.append("Numbers taken from: " + "; ".join(str(s).rstrip(".") for s in spec["cited_sources"]) + ".")
        provenance.append(_rules_text(self.cell_rules[column_id], self.cell_sources[column_id]))
        provenance += [f"{REGISTRY[row['set']].display_name}: {row[f'{column_id}_note']}." for row in self.rows
                       if row.get(f"{column_id}_note")]
        provenance.extend(str(note) for note in spec.get("notes", ()))
        return Column(
            key=f"published:{self.id}:{column_id}", header=str(spec["header"]), kind="published", cells=cells,
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
            if reported is None:
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
        return notes + [flag_note(self, flag) for flag in self.flags]

    def to_table(self) -> Table:
        """The table as published: its own columns, averages recomputed, flags as notes."""
        columns = [self.column(column_id) for column_id in self.column_ids]
        notes = self.average_notes()
        dev_sets = [REGISTRY[key].display_name for key in PAPER_ORDER if REGISTRY[key].eval_split == "dev"]
        notes.append(f"{', '.join(dev_sets)} are scored on their dev splits (CBLUE test labels are hidden).")
        # By rule, as every table beside runs: the paper's rows mix rules (SOTA's strict NER beside
        # the Taiyi column's mention sets); here each (set, rule) is a row of its own.
        table = Table(title=self.title, slug=f"paper_table_{self.letter.lower()}", columns=columns, notes=notes,
                      by_rule=True, caption=BY_RULE_CAPTION)
        table.notes += rule_notes(table)
        return table


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


def _rules_text(rules: Mapping[str, str], sources: Mapping[str, str]) -> str:
    """A column's rules and sources in one sentence: "Rules of the cells: mention set (BC5CDR-Chem,
    ...); macro-F1 classes (KUAKE-QIC; source: PromptCBLUE). Source of the other cells: ..."."""
    from collections import Counter

    from taiyi_bench.harness.apps.leaderboard.rules import short_name

    keys = [key for key in PAPER_ORDER if key in rules]
    # The source most cells share is said once at the end; a cell with another one says it itself.
    common = Counter(sources[key] for key in keys).most_common(1)[0][0]
    groups: dict[tuple[str, str], list[str]] = {}
    for key in keys:
        own = sources[key] if sources[key] != common else ""
        groups.setdefault((rules[key], own), []).append(REGISTRY[key].display_name)
    parts = [f"{short_name(rule)} ({', '.join(names)}{f'; source: {source}' if source else ''})"
             for (rule, source), names in groups.items()]
    every = all(sources[key] == common for key in keys)
    return f"Rules of the cells: {'; '.join(parts)}. Source of {'every cell' if every else 'the other cells'}: {common}."


def _rule_default(path: Path, where: str, raw: Any) -> str | dict[str, str] | None:
    """A column's or anchor's `rule`: a rule id, or a mapping of task type or set key to rule id."""
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        known = set(TASK_TYPE_NAMES.values()) | set(REGISTRY)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DataFormatError(path, where, f"rule keys that are task types or set keys ({', '.join(sorted(known))})",
                                  ", ".join(unknown))
        return dict(raw)
    raise DataFormatError(path, where, "a rule id, or a mapping of task type or set key to rule id", repr(raw))


def _cell_rule(path: Path, where: str, key: str, override: Any, default: str | dict[str, str] | None) -> str:
    """The rule of one published number: the row's override, else the set's or its type's default;
    a missing or unknown rule is one error naming the file and the cell."""
    from taiyi_bench.harness.scoring import RULES

    rule = override
    if rule is None and isinstance(default, dict):
        rule = default.get(key, default.get(TASK_TYPE_NAMES[REGISTRY[key].task_type]))
    elif rule is None:
        rule = default
    if rule is None:
        raise DataFormatError(path, where, "the rule the number was computed by (a column or anchor 'rule', or a row "
                              "'<column>_rule')", "none")
    if rule not in RULES:
        raise DataFormatError(path, where, f"a rule id of taiyi_bench.harness.scoring.RULES ({', '.join(RULES)})", repr(rule))
    return str(rule)


def _cell_source(path: Path, where: str, override: Any, default: Any) -> str:
    source = override if override is not None else default
    if not isinstance(source, str) or not source.strip():
        raise DataFormatError(path, where, "where the number comes from (a column 'source' or a row '<column>_source')",
                              repr(source))
    return " ".join(source.split())


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
    cell_rules: dict[str, dict[str, str]] = {}
    cell_sources: dict[str, dict[str, str]] = {}
    for column in data["columns"]:
        column_id = column.get("id")
        default = _rule_default(path, f"column {column_id}, 'rule'", column.get("rule"))
        for index, row in enumerate(rows, start=1):
            where = f"row {index} ({row['set']}), column {column_id}"
            cell_rules.setdefault(column_id, {})[row["set"]] = _cell_rule(
                path, where, row["set"], row.get(f"{column_id}_rule"), default)
            cell_sources.setdefault(column_id, {})[row["set"]] = _cell_source(
                path, where, row.get(f"{column_id}_source"), column.get("source"))
    return PublishedTable(
        id=str(data["id"]), letter=str(data["table"]), title=str(data["title"]), path=path,
        paper=str(data.get("paper", "")), sources=tuple(str(s) for s in data.get("sources", ())),
        columns=tuple(data["columns"]), rows=tuple(rows),
        reported_averages=dict(data.get("reported_averages") or {}), flags=tuple(data.get("flags") or ()),
        cell_rules=cell_rules, cell_sources=cell_sources,
    )


@dataclass(frozen=True)
class Anchor:
    """Another paper's numbers on some of the sets (`kind: anchors`), each with its rule."""

    source: str
    model: str
    values: dict[str, float]
    rules: dict[str, str]  # set -> rule
    split: str | None = None
    notes: tuple[str, ...] = ()
    # Numbers of the source kept out because they are not like ours: {"sets", "rule", "why"}.
    left_out: tuple[dict[str, Any], ...] = ()


def _validate_anchors(path: Path, data: dict[str, Any]) -> list[Anchor]:
    anchors = data.get("anchors")
    if not isinstance(anchors, list):
        raise DataFormatError(path, None, "an 'anchors' list", type(anchors).__name__)
    out: list[Anchor] = []
    for index, anchor in enumerate(anchors, start=1):
        where = f"anchor {index}"
        if not isinstance(anchor, dict) or not isinstance(anchor.get("values"), dict):
            raise DataFormatError(path, where, "a mapping with 'source', 'model', 'rule' and 'values'")
        default = _rule_default(path, f"{where}, 'rule'", anchor.get("rule"))
        values: dict[str, float] = {}
        rules: dict[str, str] = {}
        for key, value in anchor["values"].items():
            if key not in REGISTRY:
                raise DataFormatError(path, f"{where}, values", "registry keys", repr(key))
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 100:
                raise DataFormatError(path, f"{where}, {key}", "a percent in [0, 100]", repr(value))
            values[key] = float(value)
            rules[key] = _cell_rule(path, f"{where}, {key}", key, None, default)
        left_out = tuple(anchor.get("left_out") or ())
        for item in left_out:
            sets = item.get("sets") if isinstance(item, dict) else None
            if not isinstance(sets, list) or not all(s in REGISTRY for s in sets):
                raise DataFormatError(path, f"{where}, left_out", "'sets' as a list of registry keys", repr(sets))
            _cell_rule(path, f"{where}, left_out {', '.join(sets)}", sets[0], item.get("rule"), None)
        out.append(Anchor(
            source=_cell_source(path, f"{where}, 'source'", anchor.get("source"), None),
            model=str(anchor.get("model", "")), values=values, rules=rules,
            split=str(anchor["split"]) if anchor.get("split") else None,
            notes=tuple(str(n) for n in anchor.get("notes") or ()), left_out=left_out,
        ))
    return out


def _read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_anchors(directory: str | os.PathLike | None = None) -> list[Anchor]:
    """Every anchor of the `kind: anchors` files (other papers' numbers), validated."""
    root = Path(directory) if directory is not None else published_dir()
    anchors: list[Anchor] = []
    for path in sorted(root.glob("*.yaml")):
        data = _read_yaml(path)
        if isinstance(data, dict) and data.get("kind") == "anchors":
            anchors += _validate_anchors(path, data)
    return anchors


def load_published(directory: str | os.PathLike | None = None) -> dict[str, PublishedTable]:
    """All published tables (`kind: table` YAML files), keyed by table letter (`A`, `B`)."""
    root = Path(directory) if directory is not None else published_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"published numbers folder {root} not found (expected results/published in the checkout or wheel)")
    tables: dict[str, PublishedTable] = {}
    for path in sorted(root.glob("*.yaml")):
        data = _read_yaml(path)
        if isinstance(data, dict) and data.get("kind") == "anchors":
            _validate_anchors(path, data)  # not rendered, but a bad rule there is an error all the same
            continue
        if not isinstance(data, dict) or data.get("kind") != "table":
            continue  # other non-table data
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
    picked: list[tuple[str, str]] = []  # (table letter, column id)
    if selection.lower() in ("", "none"):
        return []
    for item in selection.split(","):
        item = item.strip()
        if item.lower() == "all":
            picked.extend((t.letter, c) for t in tables.values() for c in t.column_ids)
            continue
        letter, _, column_id = item.partition(":")
        table = tables.get(letter.upper())
        if table is None:
            raise KeyError(f"unknown published table {letter!r}; known: {', '.join(tables)}")
        if column_id and column_id not in table.column_ids:
            raise KeyError(f"table {table.letter} has no column {column_id!r}; columns: {', '.join(table.column_ids)}")
        picked.extend((table.letter, c) for c in ([column_id] if column_id else table.column_ids))
    picked = list(dict.fromkeys(picked))
    columns = [tables[letter].column(column_id) for letter, column_id in picked]
    headers = [c.header for c in columns]
    for column, (letter, _) in zip(columns, picked, strict=True):
        if headers.count(column.header) > 1:
            column.header = f"{column.header} ({letter})"
    return columns
