"""The leaderboard's table model, shared by every renderer.

Rows are the 13 sets in the paper's order (`taiyi_bench.harness.registry.PAPER_ORDER`), grouped by task type;
columns are published tables' columns, runs, or deltas between two columns. Every value is a
percent. Averages are always recomputed here from the cells, never copied from a source.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, NamedTuple

from taiyi_bench.harness.apps.leaderboard.bootstrap import MIN_UNITS_FOR_INFERENCE
from taiyi_bench.harness.apps.leaderboard.rules import (
    MIXED,
    NO_LIKE_METRIC,
    NOT_IN_FILE,
    headline_rule,
    mixes_rules,
    short_name,
)
from taiyi_bench.harness.registry import PAPER_ORDER, PAPER_SETS, REGISTRY, TASK_TYPE_NAMES, DatasetSpec

ColumnKind = Literal["published", "run", "delta"]

# Average rows: one per task type (in registry order), then the overall average.
TYPE_ORDER: tuple[str, ...] = tuple(dict.fromkeys(REGISTRY[key].task_type for key in PAPER_SETS))
ALL = "all"
AVERAGE_KEYS: tuple[str, ...] = (*TYPE_ORDER, ALL)
MISSING = "—"


# Said once under a table whose cells or rows withhold an interval or p-value (`bootstrap.too_few_units`).
FEW_UNITS_NOTE = (
    f"Marked (N units): fewer than {MIN_UNITS_FOR_INFERENCE} units, so no bootstrap interval or p-value is shown, for "
    "the value nor for an average over it: on so few units the bootstrap's interval is too narrow and its p-value too "
    "small to report (README, Leaderboard)."
)


def few_units_flag(n_units: int) -> str:
    """The mark of a value computed on too few units for an interval: its count."""
    return f"{n_units} units"


def sets_of(group: str) -> tuple[str, ...]:
    """Registry keys averaged in `group` (a task type, or `all`): the paper's sets only. A set
    registered since is a row of its own but in no average, so that a run's averages stay
    comparable with the published ones (which cannot cover it)."""
    return tuple(key for key in PAPER_ORDER if key in PAPER_SETS and group in (ALL, REGISTRY[key].task_type))


def row_label(spec: DatasetSpec) -> str:
    """Row name: the display name, marked `(dev)` for sets scored on dev (as the paper does)."""
    return f"{spec.display_name} (dev)" if spec.eval_split == "dev" else spec.display_name


def average_label(group: str) -> str:
    if group == ALL:
        return f"Average ({len(sets_of(ALL))} sets)"
    return f"{TASK_TYPE_NAMES[group]} average ({len(sets_of(group))} sets)"


def round_half_up(value: float, digits: int = 1) -> Decimal:
    """Round as people do on paper (65.05 -> 65.1); `repr` avoids binary-float surprises."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def fmt_pct(value: float | None, *, signed: bool = False) -> str:
    """One decimal, or the missing marker."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    rounded = round_half_up(value)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0.0"
    text = f"{rounded:.1f}"
    return f"+{text}" if signed and rounded > 0 else text


def fmt_ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{fmt_pct(ci[0])}, {fmt_pct(ci[1])}]"


@dataclass
class Cell:
    """One value in percent; `note` is shown next to it (e.g. the SOTA model's name).

    `flag` marks a run cell that is not like the others ("budget cut", "skipped"); a cell with
    `in_averages` false keeps every average over it empty, as a missing cell does. `rule` is the
    rule (`taiyi_bench.harness.scoring.RULES`) the value was computed by: in a by-rule table the cell stands
    only in its rule's row. None: not bound to a rule (shown in the set's first row).
    """

    value: float | None
    note: str | None = None
    ci: tuple[float, float] | None = None
    flag: str | None = None
    in_averages: bool = True
    rule: str | None = None


@dataclass
class Column:
    """A leaderboard column and where its numbers come from."""

    key: str
    header: str
    kind: ColumnKind
    cells: dict[str, Cell]
    provenance: list[str] = field(default_factory=list)
    # Why the column is not a full run on the official data ("samples", "slice of 50"), or None.
    partial: str | None = None
    # Bootstrap intervals of the averages (same resamples across sets), when computed.
    average_cis: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Recomputed averages override for delta columns (difference of the two columns' averages).
    fixed_averages: dict[str, float | None] | None = None
    # Run columns: the run's value by each rule other than the set's headline (`cells` holds the
    # headline), keyed (set, rule). A published cell by such a rule is set beside this one.
    rule_cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    def value(self, key: str) -> float | None:
        cell = self.cells.get(key)
        return None if cell is None else cell.value

    def cell_by_rule(self, key: str, rule: str) -> Cell | None:
        """A run's cell for the set by `rule`: the headline cell when it is that rule's, else the
        run's metric of that rule; a cell flagged "no like metric" when the run has none; None when
        the run has no result for the set at all. Published and delta columns: their cell when it
        is by `rule`, else None."""
        cell = self.cells.get(key)
        if cell is None:
            return None
        # A run cell built without a rule is its set's headline metric.
        own = cell.rule or (headline_rule(key) if self.kind == "run" else None)
        if own is None or own == rule:
            return cell
        if self.kind != "run" or cell.flag == "skipped":
            return None
        return self.rule_cells.get((key, rule)) or Cell(None, flag=NO_LIKE_METRIC, rule=rule)

    def averages(self) -> dict[str, float | None]:
        """Per-type and overall means of the cells; None unless every set of the group has a value
        that counts (`Cell.in_averages`).

        A mean over a subset of sets is not comparable with a published mean over all of them, so a
        group with a missing set gets no average at all rather than a misleading one.
        """
        if self.fixed_averages is not None:
            return dict(self.fixed_averages)
        out: dict[str, float | None] = {}
        for group in AVERAGE_KEYS:
            cells = [self.cells.get(key) for key in sets_of(group)]
            values = [cell.value if cell is not None and cell.in_averages else None for cell in cells]
            out[group] = None if any(v is None for v in values) else math.fsum(values) / len(values)  # type: ignore[arg-type]
        return out

    @property
    def has_notes(self) -> bool:
        return any(cell.note for cell in self.cells.values())

    @property
    def has_flags(self) -> bool:
        return any(cell.flag for cell in self.cells.values())

    @property
    def has_ci(self) -> bool:
        return any(cell.ci for cell in self.cells.values())

    @property
    def display_header(self) -> str:
        """Header as rendered: partial columns carry their reason so they cannot be mistaken."""
        return f"{self.header} [{self.partial}]" if self.partial else self.header


@dataclass
class Table:
    """Everything a renderer needs: title, columns, notes and the warnings met while building it."""

    title: str
    slug: str
    columns: list[Column]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    caption: str = "Micro-F1 (NER, RE, TC) or accuracy (QA), percent. Averages recomputed from the cells."
    # One row per (set, rule) with a Rule column, so that only numbers by the same rule stand side by
    # side (leaderboard, comparison, paper tables); False: one row per set (e.g. the grounding table).
    by_rule: bool = False
    rows: Sequence[str] = field(default_factory=lambda: PAPER_ORDER)  # the sets, in row order (a live view)

    def rule_rows(self) -> list[RuleRow]:
        """The body rows of a by-rule table: per set its headline rule, then each other rule of a
        published or delta cell shown (in column order). One row per set, bound to no rule, when
        not `by_rule`."""
        if not self.by_rule:
            return [RuleRow(key, None, True) for key in self.rows]
        out: list[RuleRow] = []
        for key in self.rows:
            rules = [headline_rule(key), *(c.cells[key].rule for c in self.columns if c.kind != "run" and key in c.cells)]
            out += [RuleRow(key, rule, index == 0) for index, rule in enumerate(dict.fromkeys(r for r in rules if r is not None))]
        return out

    def column(self, key: str) -> Column:
        for column in self.columns:
            if column.key == key:
                return column
        raise KeyError(f"no column {key!r}; columns: {', '.join(c.key for c in self.columns)}")


def delta_column(run: Column, reference: Column) -> Column:
    """`run - reference` per set, both by the reference cell's rule, and the difference of the two
    columns' averages over the same rules.

    A difference between numbers of two rules says nothing about the model, so none is taken:
    where the run has no metric of the reference cell's rule, the delta cell is empty and flagged,
    and so is every average over it. The run's average here is over its values by the reference's
    rules, set by set, which is the run's headline average only where the rules are the headline's.
    """
    cells: dict[str, Cell] = {}
    like: dict[str, float | None] = {}
    for key in PAPER_ORDER:
        ref_cell = reference.cells.get(key)
        rule = ref_cell.rule if ref_cell is not None else None
        run_cell = run.cell_by_rule(key, rule) if rule is not None else run.cells.get(key)
        a = run_cell.value if run_cell is not None else None
        b = ref_cell.value if ref_cell is not None else None
        counted = run_cell is None or run_cell.in_averages
        like[key] = a if counted else None
        flag = run_cell.flag if run_cell is not None and run_cell.value is None and run_cell.flag else None
        cells[key] = Cell(None if a is None or b is None else a - b, flag=flag, rule=rule)
    ref_avg = reference.averages()
    fixed: dict[str, float | None] = {}
    for group in AVERAGE_KEYS:
        values = [like.get(key) for key in sets_of(group)]
        run_mean = None if any(v is None for v in values) else math.fsum(values) / len(values)  # type: ignore[arg-type]
        fixed[group] = None if run_mean is None or ref_avg[group] is None else run_mean - ref_avg[group]  # type: ignore[operator]
    return Column(
        key=f"delta:{run.key}:{reference.key}",
        header=f"Δ vs {reference.header}",
        kind="delta",
        cells=cells,
        provenance=[f"{run.display_header} minus {reference.header}, per set, both by the rule of the {reference.header} "
                    "cell (no delta between two rules); averages are the difference of the two columns' averages over "
                    "those same rules."],
        fixed_averages=fixed,
    )


class RuleRow(NamedTuple):
    """A body row: a set, the rule of its numbers (None in a table that is not by rule: every cell
    of the set), and whether it is the set's first (headline-rule) row."""

    key: str
    rule: str | None
    first: bool


# What a cell shows where its column's number for the set is by another rule (it stands in its
# own rule's row): blank, unlike the missing marker, which says there is no number at all.
OTHER_RULE = ""


def row_cell(column: Column, row: RuleRow) -> Cell | None | str:
    """The cell of `column` in `row`: a Cell, None (missing: no number at all, shown as the missing
    marker), or `OTHER_RULE` (the column's number for the set is by another rule)."""
    cell = column.cells.get(row.key)
    if row.rule is None:
        return cell
    # No result, a skipped set, a cell bound to no rule: said once, in the set's first row.
    if cell is None or cell.flag == "skipped" or (cell.rule is None and column.kind != "run"):
        return cell if row.first else OTHER_RULE
    found = column.cell_by_rule(row.key, row.rule)
    return OTHER_RULE if found is None else found


def row_cell_text(column: Column, row: RuleRow, *, with_ci: bool = True, with_note: bool = True) -> str:
    """A body cell as text: value, then the note and the flag in parentheses, then the interval;
    blank for a number by another rule (by rule), the missing marker where there is no number."""
    cell = row_cell(column, row)
    if isinstance(cell, str):
        return cell
    if cell is None:
        return MISSING
    text = fmt_pct(cell.value, signed=column.kind == "delta")
    if with_note and cell.note and cell.value is not None:
        text += f" ({cell.note})"
    if with_note and cell.flag:
        text += f" ({cell.flag})"
    if with_ci and cell.ci is not None and cell.value is not None:
        text += f" {fmt_ci(cell.ci)}"
    return text


def average_cell_text(table: Table, column: Column, group: str, *, with_ci: bool = True) -> str:
    """An average as text; in a by-rule table, marked when it mixes in rules other than the sets'
    headline rules (the paper's averages keep their definition, the mark says they are not like)."""
    text = average_text(column, group, with_ci=with_ci)
    if table.by_rule and column.averages()[group] is not None and mixes_rules(column, sets_of(group)):
        text += f" ({MIXED})"
    return text


def iter_rule_rows(table: Table) -> Iterable[tuple[str, str, RuleRow]]:
    """(type label, row label, row) for the body rows: one per set, or per (set, rule) in a by-rule
    table (`Table.rule_rows`)."""
    for row in table.rule_rows():
        spec = REGISTRY[row.key]
        yield TASK_TYPE_NAMES[spec.task_type], row_label(spec), row


def iter_average_rows() -> Iterable[tuple[str, str, str]]:
    """(group label, row label, average key) for the per-type and overall average rows."""
    for group in AVERAGE_KEYS:
        yield "All" if group == ALL else TASK_TYPE_NAMES[group], average_label(group), group


def average_text(column: Column, group: str, *, with_ci: bool = True) -> str:
    value = column.averages()[group]
    text = fmt_pct(value, signed=column.kind == "delta")
    ci = column.average_cis.get(group)
    if with_ci and ci is not None and value is not None:
        text += f" {fmt_ci(ci)}"
    return text


def provenance_lines(columns: Sequence[Column]) -> list[tuple[str, list[str]]]:
    """(header, provenance lines) per column, for the provenance section of every format."""
    return [(column.display_header, list(column.provenance) or ["(no provenance recorded)"]) for column in columns]


def rule_notes(table: Table) -> list[str]:
    """The notes that explain a by-rule table: the layout, mixed averages, missing like metrics.

    Here, not in `rules`, because it reads the table: `rules` stays below `table` (no import circle)."""
    notes: list[str] = []
    if any(c.kind != "run" for c in table.columns):
        notes.append(
            "Each row is one rule (the Rule column; the rules are listed below): a number stands only beside numbers "
            "by the same rule. A set's first row is its headline rule; a further row holds the published numbers "
            "computed by another rule, beside the run's metric by that rule. A blank cell: that column's number for "
            "the set is by another rule and stands in that rule's row."
        )
    mixed = []
    for column in table.columns:
        if not mixes_rules(column, sets_of(ALL)):
            continue
        others: dict[str, list[str]] = {}
        for key in sets_of(ALL):
            cell = column.cells.get(key)
            if cell is not None and cell.rule is not None and cell.rule != headline_rule(key):
                others.setdefault(short_name(cell.rule), []).append(REGISTRY[key].display_name)
        listed = "; ".join(f"{rule} on {', '.join(sets)}" for rule, sets in others.items())
        mixed.append(f"{column.display_header} ({listed})")
    if mixed:
        groups = sum(1 for c in table.columns for g in AVERAGE_KEYS if mixes_rules(c, sets_of(g)))
        notes.append(
            "Averages keep the paper's definition: the mean of a column's cells over the paper's sets, each by its "
            f"own rule. {groups} average(s) marked ({MIXED}) include cells by a rule other than the set's headline "
            "rule, so they are not comparable with a run's average of its headline metrics: " + "; ".join(mixed) + "."
        )
    flags = {cell.flag for row in table.rule_rows() for c in table.columns
             if not isinstance(cell := row_cell(c, row), str) and cell is not None}
    if NO_LIKE_METRIC in flags or NOT_IN_FILE in flags:
        notes.append(
            f"Cells marked ({NO_LIKE_METRIC}): the run has no metric computed by that row's rule, so no number of it "
            f"stands beside the published one; ({NOT_IN_FILE}): the set has such a metric but the results file was "
            "scored before it existed (`taiyi rescore` adds it)."
        )
    return notes


COST_HEADERS = ("Run", "Set", "units", "gen. tok/unit", "s/unit", "tokens/s", "est. USD")


@dataclass
class CostTable:
    """What each run cost per set (`taiyi leaderboard --cost`): rows of text cells under
    `COST_HEADERS`, each run named by a short id (R1, R2 ...: the leaderboard's run columns, in
    order) that `legend` spells out."""

    rows: list[list[str]]
    legend: list[str]
    notes: list[str]
    title: str = "taiyi-bench: what each run cost"
    slug: str = "leaderboard_cost"
