"""`taiyi compare RUN_A RUN_B [--task T]`: where two runs differ, unit by unit.

On the units both runs scored (matched by unit id, so LLM vs LLM, LLM vs BERT and base vs
fine-tuned all pair up; two runs whose same id holds different documents, lm-eval's `doc_hash`,
evaluated different data and are refused), per set:

- each unit's own score in A and in B (the unit's F1 from its tp/fp/fn, or 1/0 where the set marks
  an answer right or wrong; output that could not be parsed scores 0), counted as: A higher, B
  higher, both 1 (answered exactly), tied below 1. The four add up to the units compared.
- the same per entity type / relation / label, on the units whose gold has the type (the type's
  F1 on the unit). A type predicted on a unit whose gold lacks it is counted apart, as that run's
  spurious unit: a run that predicted nothing then wins no type only the other run predicted.
  Labels outside the set's label set (an echoed query, say) are one group, never a type.
- the paired bootstrap test of the headline metric (`taiyi leaderboard --paired`); on fewer than
  MIN_UNITS_FOR_INFERENCE units its p-value and interval are withheld, with the reason.
- the units where the runs differ: largest score gap first, then those with the same score but
  different predictions (largest gap in fp + fn first; ties keep A's unit order), each with the
  text, both outputs, both parsed predictions with their errors, and the gold.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from taiyi_bench.harness.apps.cli import add_bootstrap_options, errors_in_one_line, whole_number_at_least
from taiyi_bench.harness.apps.run_views import RunView, TaskSamples, UnitView, load_run
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY, DatasetSpec, get_spec
from taiyi_bench.harness.scoring import prf

DEFAULT_TOP = 3
OUTSIDE_SHOWN = 5  # labels outside the label set named on screen (the JSON lists them all)

# The definitions the tables are captioned with, and the JSON carries.
SCORE_CAPTION = (
    "A>B, B>A: units where that run's own score is higher (the unit's F1 from its tp/fp/fn, or 1/0 for a "
    "right/wrong answer; unparsable output scores 0). both 1: both answered exactly. tied: the same score below 1."
)
TYPE_CAPTION = (
    "On the units whose gold has the type, that type's F1 on the unit, counted as above. A, B spur.: units "
    "whose gold lacks the type where that run predicted it (outside the comparison)."
)
RANKING_CAPTION = (
    "the largest score gap (A's score - B's) first, then units with the same score but different predictions, "
    "the largest gap in fp + fn first; ties keep A's unit order"
)
STATS_CAPTION = "A, B: headline metric (micro-F1 or accuracy, percent); p: paired bootstrap"
_NO_COUNTS = (0, 0, 0)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


@dataclass
class Tally:
    """Units by their score in A and in B; the four counts add up to the units compared."""

    a_higher: int = 0
    b_higher: int = 0
    both_right: int = 0  # both scored 1: answered exactly
    tied_below: int = 0  # the same score below 1

    @property
    def units(self) -> int:
        return self.a_higher + self.b_higher + self.both_right + self.tied_below

    def add(self, score_a: float, score_b: float) -> None:
        if score_a > score_b:
            self.a_higher += 1
        elif score_b > score_a:
            self.b_higher += 1
        elif score_a == 1:
            self.both_right += 1
        else:
            self.tied_below += 1

    def to_dict(self) -> dict[str, int]:
        return {"units": self.units, **asdict(self)}


@dataclass
class TypeTally(Tally):
    """One type's tally on the units whose gold has it, and apart, the units whose gold lacks it
    where each run predicted it."""

    a_spurious: int = 0
    b_spurious: int = 0

    def add_spurious(self, a_predicted: bool, b_predicted: bool) -> None:
        self.a_spurious += a_predicted
        self.b_spurious += b_predicted

    @property
    def differs(self) -> bool:
        return bool(self.a_higher or self.b_higher or self.a_spurious != self.b_spurious)


@dataclass
class UnitDiff:
    """A unit the runs answered differently: in score, or in prediction at the same score."""

    id: str
    a: UnitView
    b: UnitView

    @property
    def gap(self) -> float:
        return self.a.score - self.b.score

    @property
    def rank(self) -> tuple[float, int]:
        """Sort key: the largest score gap first, then the largest gap in errors (fp + fn)."""
        return -abs(self.gap), -abs(_error_count(self.a) - _error_count(self.b))


def _error_count(unit: UnitView) -> int:
    return unit.verdicts["counts"]["fp"] + unit.verdicts["counts"]["fn"]


@dataclass
class TaskComparison:
    spec: DatasetSpec
    tally: Tally
    per_type: dict[str, TypeTally]  # the set's own labels, in the registry's order
    outside: TypeTally  # labels outside the label set, as one group: its spurious counts only
    outside_labels: list[str]  # those labels as written, sorted
    differing: list[UnitDiff]  # ranked by `UnitDiff.rank`
    only_in_a: int
    only_in_b: int
    paired: Any = None  # taiyi_bench.harness.apps.leaderboard.bootstrap.PairedResult, when both have samples


@dataclass
class Comparison:
    a: RunView
    b: RunView
    tasks: dict[str, TaskComparison]
    n_resamples: int
    seed: int
    warnings: list[str] = field(default_factory=list)


def _predicted(per_type: Mapping[str, Any], keys: Collection[str]) -> bool:
    """Whether the run predicted any of `keys` on the unit (a false positive of that type)."""
    return any(per_type.get(key, _NO_COUNTS)[1] for key in keys)


def compare_tasks(a: TaskSamples, b: TaskSamples) -> TaskComparison:
    """Tally two runs' samples of one set over the units both scored. Units pair by id only where
    their documents agree: a run on the bundled samples and one on the real data both have a
    MedQA `test-0`, and pairing those compares different questions (`DifferentDataError`)."""
    from taiyi_bench.harness.apps.leaderboard.bootstrap import check_same_data

    check_same_data({uid: u.doc_hash for uid, u in a.units.items()}, {uid: u.doc_hash for uid, u in b.units.items()},
                    a.path, b.path)
    shared = [uid for uid in a.units if uid in b.units]
    labels = set(a.spec.labels)
    tally, per_type, outside, outside_labels = Tally(), {key: TypeTally() for key in a.spec.labels}, TypeTally(), set()
    differing = []
    for uid in shared:
        ua, ub = a.units[uid], b.units[uid]
        tally.add(ua.score, ub.score)
        if ua.score != ub.score or ua.verdicts["prediction"] != ub.verdicts["prediction"]:
            differing.append(UnitDiff(uid, ua, ub))
        types_a, types_b = ua.verdicts["per_type"], ub.verdicts["per_type"]
        keys = set(types_a) | set(types_b)
        if strays := keys - labels:  # never in the gold: only a spurious prediction can name one
            outside_labels |= strays
            outside.add_spurious(_predicted(types_a, strays), _predicted(types_b, strays))
        for key in keys & labels:
            counts_a, counts_b = types_a.get(key, _NO_COUNTS), types_b.get(key, _NO_COUNTS)
            if counts_a[0] + counts_a[2]:  # the gold has the type (one gold: tp + fn is the same in B)
                per_type[key].add(prf(*counts_a)[2], prf(*counts_b)[2])
            else:
                per_type[key].add_spurious(counts_a[1] > 0, counts_b[1] > 0)
    differing.sort(key=lambda diff: diff.rank)  # stable: ties keep A's order
    return TaskComparison(
        a.spec, tally, {key: t for key, t in per_type.items() if t.units or t.a_spurious or t.b_spurious}, outside,
        sorted(outside_labels), differing,
        only_in_a=len(a.units) - len(shared), only_in_b=sum(1 for uid in b.units if uid not in a.units),
    )


def compare_runs(
    run_a: str | os.PathLike, run_b: str | os.PathLike, *, task: str | None = None, n_resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Compare two runs on every set both have samples for (or only `task`)."""
    from taiyi_bench.harness.apps.leaderboard.bootstrap import DifferentDataError
    from taiyi_bench.harness.apps.leaderboard.build import paired_report

    warnings: list[str] = []
    tasks = [task] if task else None
    a, b = load_run(run_a, warnings, tasks=tasks), load_run(run_b, warnings, tasks=tasks)
    comparisons = {}
    for key in PAPER_ORDER:
        if key in a.tasks and key in b.tasks:
            try:  # runs on different data are refused here, before any test is run
                comparison = compare_tasks(a.tasks[key], b.tasks[key])
            except DifferentDataError as exc:
                raise DifferentDataError(f"{REGISTRY[key].task_name}: {exc}") from None
            if comparison.tally.units == 0:
                warnings.append(f"{REGISTRY[key].task_name}: the two runs share no unit ids")
            comparisons[key] = comparison
    paired = paired_report(run_a, run_b, n_resamples=n_resamples, seed=seed, tasks=list(comparisons))
    warnings += [w for w in paired.warnings if w not in warnings]
    for key, comparison in comparisons.items():
        comparison.paired = paired.rows.get(key)
    if task and not comparisons:
        raise ValueError(f"{get_spec(task).task_name}: not in both runs (with samples); nothing to compare")
    if not comparisons:
        warnings.append("the two runs have no set in common (with samples); nothing compared")
    return Comparison(a, b, comparisons, n_resamples, seed, list(dict.fromkeys(warnings)))


def describe_prediction(verdicts: dict[str, Any]) -> str:
    """A unit's parsed prediction as written, in one line."""
    if verdicts.get("parse_fail"):
        return f"(parse failure: {verdicts['parse_fail']})"
    prediction = verdicts["prediction"]
    value = next(v for k, v in prediction.items() if k != "parse_failed")
    if value is None or value == []:
        return "(nothing)"
    if isinstance(value, str):
        return value
    return "; ".join(": ".join(x) if len(x) == 2 and verdicts["rule"] == "mention_set" else
                     (f"[{', '.join(x)}]" if isinstance(x, list) else str(x)) for x in value)


def error_items(verdicts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The unit's predicted items not matched, then its gold items missed, as logged."""
    return [item for item in verdicts["predicted"] if item["verdict"] != "matched"] + \
        [item for item in verdicts["gold"] if item["verdict"] == "missed"]


def describe_errors(verdicts: dict[str, Any]) -> str:
    """The unit's items that are not matched, each with its verdict."""
    from taiyi_bench.harness.apps.run_views import item_text, verdict_text
    from taiyi_bench.harness.verdicts import grounded_flags as _grounded_flags

    items = [
        f"{item_text(verdicts['rule'], item)} → {verdict_text(item)}"
        + ("" if all(_grounded_flags(item)) else ", not in the text")
        for item in error_items(verdicts)
    ]
    return "; ".join(items) if items else "(none)"


def describe_gold(verdicts: dict[str, Any]) -> str:
    from taiyi_bench.harness.apps.run_views import item_text

    items = [item_text(verdicts["rule"], item) for item in verdicts["gold"]]
    return "; ".join(items) if items else "(nothing)"


def _run_json(unit: UnitView) -> dict[str, Any]:
    verdicts = unit.verdicts
    return {"score": unit.score, **verdicts["counts"], "output": unit.output, "prediction": verdicts["prediction"],
            "parse_fail": verdicts["parse_fail"], "errors": error_items(verdicts)}


def _paired_json(paired: Any) -> dict[str, Any] | None:
    from taiyi_bench.harness.apps.leaderboard.bootstrap import too_few_units

    if paired is None:
        return None
    withheld = too_few_units(paired.n_units)
    return {"a": paired.point_a, "b": paired.point_b, "delta": paired.delta, "units": paired.n_units,
            "ci": None if withheld else [paired.low, paired.high], "p_value": None if withheld else paired.p_value,
            "withheld": withheld}


def comparison_json(comparison: Comparison, top: int = DEFAULT_TOP) -> dict[str, Any]:
    """Everything `taiyi compare` shows, as plain JSON (`--json`)."""
    tasks = {}
    for task in comparison.tasks.values():
        tasks[task.spec.task_name] = {
            **task.tally.to_dict(),
            "units_only_in_a": task.only_in_a,
            "units_only_in_b": task.only_in_b,
            "per_type": {key: t.to_dict() for key, t in task.per_type.items()},
            "outside_label_set": {"a_units": task.outside.a_spurious, "b_units": task.outside.b_spurious,
                                  "labels": task.outside_labels},
            "paired_bootstrap": _paired_json(task.paired),
            "differing_units": [
                {"id": d.id, "gap": d.gap, "text": d.a.text, "a": _run_json(d.a), "b": _run_json(d.b),
                 "gold": d.a.verdicts["gold"]}
                for d in task.differing[:top]
            ],
        }
    return {
        "a": comparison.a.label, "b": comparison.b.label, "resamples": comparison.n_resamples, "seed": comparison.seed,
        "definitions": {"units": SCORE_CAPTION, "per_type": TYPE_CAPTION, "differing_units": RANKING_CAPTION},
        "tasks": tasks, "warnings": comparison.warnings,
    }


def _printable(text: str) -> str:
    """Control characters a model wrote (an escape sequence would restyle the terminal) as escapes."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], text)


def _short(text: str | None, limit: int = 400) -> str:
    """One line: line breaks shown as " ⏎ ", long texts cut."""
    if text is None:
        return "(not recorded)"
    text = " ⏎ ".join(line.strip() for line in text.strip().splitlines()) or "(empty)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _score_text(unit: UnitView) -> str:
    if "correct" in unit.verdicts:
        return "right" if unit.score else "wrong"
    counts = unit.verdicts["counts"]
    unparsable = ", unparsable" if unit.verdicts["parse_fail"] else ""
    return f"F1 {unit.score:.2f} (tp {counts['tp']}, fp {counts['fp']}, fn {counts['fn']}{unparsable})"


def _table(title: str, caption: str, headers: tuple[str, ...]) -> Any:
    """A table of names and numbers, none wrapped, in 80 columns: rules under the header only and
    no edge padding leave the width to the numbers (only a header may wrap)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), caption=Text(caption), caption_justify="left", box=box.SIMPLE_HEAVY,
                  show_edge=False, pad_edge=False)
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if i else "left", no_wrap=True)
    return table


def render_terminal(comparison: Comparison, console: Any, top: int = DEFAULT_TOP) -> None:
    from rich.text import Text

    from taiyi_bench.harness.apps.leaderboard.bootstrap import too_few_units
    from taiyi_bench.harness.apps.leaderboard.table import MISSING, fmt_pct

    def counts(t: Tally) -> list[str]:
        return [str(t.units), str(t.a_higher), str(t.b_higher), str(t.both_right), str(t.tied_below)]

    # The run labels stand above the tables, whole, so that the tables' columns fit 80 characters.
    console.print(Text(f"A = {_printable(comparison.a.label)}\nB = {_printable(comparison.b.label)}", style="bold"),
                  soft_wrap=True)
    table = _table(
        "Units by their score in A and in B, on the units both scored",
        f"{SCORE_CAPTION} {STATS_CAPTION}, {comparison.n_resamples} resamples, seed {comparison.seed}.",
        ("Set", "units", "A>B", "B>A", "both 1", "tied", "A", "B", "Δ", "p"),
    )
    withheld = []
    for task in comparison.tasks.values():
        paired = task.paired
        stats = [MISSING] * 4
        if paired is not None:
            if reason := too_few_units(paired.n_units):
                withheld.append(f"{task.spec.display_name}: {reason}")
            stats = [fmt_pct(paired.point_a * 100), fmt_pct(paired.point_b * 100), fmt_pct(paired.delta * 100, signed=True),
                     MISSING if reason else f"{paired.p_value:.3f}"]
        table.add_row(task.spec.display_name, *counts(task.tally), *stats)
    console.print(table)
    for line in withheld:
        console.print(Text(f"p {MISSING} {line}", style="dim"), soft_wrap=True)
    for task in comparison.tasks.values():
        shown = {key: t for key, t in task.per_type.items() if t.differs}
        if shown or task.outside_labels:
            types = _table(f"{task.spec.display_name}: per type", TYPE_CAPTION,
                           ("Type", "units", "A>B", "B>A", "both 1", "tied", "A spur.", "B spur."))
            for key, t in shown.items():
                types.add_row(task.spec.label_name(key), *counts(t), str(t.a_spurious), str(t.b_spurious))
            if task.outside_labels:
                types.add_row("outside the label set", *[""] * 5, str(task.outside.a_spurious),
                              str(task.outside.b_spurious), style="yellow")
            console.print(types)
        if task.outside_labels:
            named = ", ".join(repr(_short(label, 40)) for label in task.outside_labels[:OUTSIDE_SHOWN])
            more = len(task.outside_labels) - OUTSIDE_SHOWN
            console.print(Text(f"outside the label set: {named}{f' and {more} more' if more > 0 else ''}",
                               style="yellow"), soft_wrap=True)
        for diff in task.differing[:top]:
            same = "" if diff.gap else "; the same score, different predictions"
            console.print(Text(f"{task.spec.task_name} unit {diff.id}: A {_score_text(diff.a)}, B {_score_text(diff.b)}{same}",
                               style="bold cyan"), soft_wrap=True)
            for label, value in (
                ("text", _short(diff.a.text)),
                ("A output", _short(diff.a.output)), ("A parsed", describe_prediction(diff.a.verdicts)),
                ("A errors", describe_errors(diff.a.verdicts)),
                ("B output", _short(diff.b.output)), ("B parsed", describe_prediction(diff.b.verdicts)),
                ("B errors", describe_errors(diff.b.verdicts)), ("gold", describe_gold(diff.a.verdicts)),
            ):
                console.print(Text(f"  {label:<9} {_printable(value)}"), soft_wrap=True)
    for warning in comparison.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare",
        help="two runs unit by unit: whose score is higher on which units, per type, paired test, the differing units",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_a", metavar="RUN_A", help="results file (or a folder with one model's run)")
    parser.add_argument("run_b", metavar="RUN_B", help="results file (or a folder with one model's run)")
    parser.add_argument("--task", help="only this set (key or task name)")
    parser.add_argument("--top", type=whole_number_at_least(0), default=DEFAULT_TOP,
                        help="differing units shown per set, largest score gap first (default %(default)s)")
    add_bootstrap_options(parser, "paired bootstrap resamples")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the comparison as JSON")
    parser.set_defaults(func=run)
    return parser


@errors_in_one_line("taiyi compare: ")
def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from taiyi_bench.harness.atomic_files import atomic_write_text

    comparison = compare_runs(args.run_a, args.run_b, task=args.task, n_resamples=args.resamples, seed=args.seed)
    console = Console()
    render_terminal(comparison, console, top=args.top)
    if args.json:
        atomic_write_text(args.json, json.dumps(comparison_json(comparison, args.top), indent=2, ensure_ascii=False) + "\n")
        console.print(Text(f"wrote {args.json}", style="green"), soft_wrap=True)
    return 0
