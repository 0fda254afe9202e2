"""The rules of the leaderboard's cells, as a reader sees them: short names, the legend, notes.

Every number in a leaderboard table is computed by one rule (`taiyi_bench.harness.scoring.RULES`): a run's
metric by the rule `scoring.rule_of` gives it, a published number by the rule its YAML file
records. A table that is `by_rule` gives each (set, rule) a row of its own, so that only numbers
by the same rule stand side by side (`table.rule_rows`); this module names the rules in those
rows and explains the layout in every output format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY

if TYPE_CHECKING:  # table.py imports this module: no import cycle at run time
    from taiyi_bench.harness.apps.leaderboard.table import Column, Table

# What a Rule column prints: short, but never ambiguous between two rules.
RULE_SHORT: dict[str, str] = {
    "mention_set": "mention set",
    "mention_overlap": "lenient overlap",
    "occurrence_strict": "strict spans",
    "concept_pairs": "CID pairs",
    "ordered_triples": "triples",
    "label_set": "unit labels",
    "abstract_label_set": "abstract labels",
    "accuracy": "accuracy",
    "macro_over_classes": "macro-F1 classes",
    "macro_over_types": "macro-F1 types",
    "macro_over_labels": "macro-F1 labels",
    "parse_failures": "parse failures",
}

# A run cell by a rule the run has no number for. Two reasons, one words: the set has no metric of
# that rule at all, or the results file was written before the metric existed.
NO_LIKE_METRIC = "no like metric"
NOT_IN_FILE = "no like metric in file"
# The mark of an average over cells of which some are by a rule other than the set's headline.
MIXED = "mixed"
# The caption of a by-rule table (a row's numbers are all by its rule, not all micro-F1/accuracy).
BY_RULE_CAPTION = "Percent, each row by the rule in its Rule column (listed below). Averages recomputed from the cells."
# The same in the terminal's narrow layout, where the rules are rows under their set, not a column.
BY_RULE_CAPTION_NARROW = ("Percent; a set's first row is by its headline rule, an indented row by the rule it names (listed "
                          "below). Averages recomputed from the cells.")


def short_name(rule: str | None) -> str:
    """The Rule column's text for a rule id (the id itself for a rule this module does not know)."""
    return "" if rule is None else RULE_SHORT.get(rule, rule)


def headline_rule(key: str) -> str:
    """The rule of the set's headline metric (the first row of the set in a by-rule table)."""
    from taiyi_bench.harness.scoring import headline_metric_name, rule_of

    spec = REGISTRY[key]
    return rule_of(spec, headline_metric_name(spec))


def run_metrics(rule: str) -> list[str]:
    """The results keys that implement `rule` on the paper's sets (empty: no metric of ours)."""
    from taiyi_bench.harness.scoring import metric_for_rule

    names = (metric_for_rule(REGISTRY[key], rule) for key in PAPER_ORDER)
    return list(dict.fromkeys(name for name in names if name))


def legend(rules: Sequence[str]) -> list[str]:
    """One line per rule: its short name, what it is (with the official script it matches), and the
    run metric that implements it."""
    from taiyi_bench.harness.scoring import RULES

    lines = []
    for rule in rules:
        metrics = run_metrics(rule)
        implemented = f"run metric {'/'.join(metrics)}" if metrics else "no metric of ours: runs show no number beside it"
        lines.append(f"{short_name(rule)} ({rule}): {RULES.get(rule, 'unknown rule')}; {implemented}.")
    return lines


def rules_shown(table: Table) -> list[str]:
    """The rules of the table's rows, in first-seen order (what its legend lists)."""
    return list(dict.fromkeys(row.rule for row in table.rule_rows()))


def mixes_rules(column: Column, keys: Sequence[str]) -> bool:
    """Whether the cells averaged over `keys` include one by a rule other than its set's headline
    rule: such an average is not like a run's average of its headline metrics."""
    return column.kind == "published" and any(
        (cell := column.cells.get(key)) is not None and cell.rule is not None and cell.rule != headline_rule(key) for key in keys
    )
