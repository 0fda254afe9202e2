"""`taiyi compare RUN_A RUN_B [--task T]`: where two runs differ, unit by unit.

On the units both runs scored (matched by unit id, so LLM vs LLM, LLM vs BERT and base vs
fine-tuned all pair up; two runs whose same id holds different documents, lm-eval's `doc_hash`,
evaluated different data and are refused), per task: how many units both got right, only A, only B, neither (a
unit is right when it is answered exactly: the right option, or no spurious and no missed item;
the four counts add up to the units compared); the same per entity type / predicate / label
(over the units where that type occurs in the gold or in either prediction); the paired
bootstrap test of the headline metric (`taiyi leaderboard --paired`); and the units where one
run is right and the other wrong, with the text, both outputs, both parsed predictions and the gold.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taiyi_bench.harness.apps.cli import add_bootstrap_options, errors_in_one_line, whole_number_at_least
from taiyi_bench.harness.apps.run_views import RunView, TaskSamples, UnitView, load_run
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY, DatasetSpec, get_spec

DEFAULT_TOP = 3


@dataclass
class Tally:
    """Units both runs got right, only A, only B, neither."""

    both_right: int = 0
    only_a: int = 0
    only_b: int = 0
    both_wrong: int = 0

    @property
    def units(self) -> int:
        return self.both_right + self.only_a + self.only_b + self.both_wrong

    def add(self, a_right: bool, b_right: bool) -> None:
        if a_right and b_right:
            self.both_right += 1
        elif a_right:
            self.only_a += 1
        elif b_right:
            self.only_b += 1
        else:
            self.both_wrong += 1

    def to_dict(self) -> dict[str, int]:
        return {"units": self.units, "both_right": self.both_right, "only_a_right": self.only_a,
                "only_b_right": self.only_b, "both_wrong": self.both_wrong}


@dataclass
class UnitDiff:
    id: str
    winner: str  # "A" or "B": the run that got the unit right
    a: UnitView
    b: UnitView


@dataclass
class TaskComparison:
    spec: DatasetSpec
    tally: Tally
    per_type: dict[str, Tally]
    differing: list[UnitDiff]  # every unit one run got right and the other wrong, largest gap first
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


def _type_right(verdicts: dict[str, Any], key: str) -> bool:
    tp, fp, fn = verdicts.get("per_type", {}).get(key, (0, 0, 0))
    return fp == 0 and fn == 0


def compare_tasks(a: TaskSamples, b: TaskSamples) -> TaskComparison:
    """Tally two runs' samples of one set over the units both scored. Units pair by id only where
    their documents agree: a run on the bundled samples and one on the real data both have a
    MedQA `test-0`, and pairing those compares different questions (`DifferentDataError`)."""
    from taiyi_bench.harness.apps.leaderboard.bootstrap import check_same_data

    check_same_data({uid: u.doc_hash for uid, u in a.units.items()}, {uid: u.doc_hash for uid, u in b.units.items()},
                    a.path, b.path)
    shared = [uid for uid in a.units if uid in b.units]
    tally = Tally()
    per_type: dict[str, Tally] = {}
    differing = []
    for uid in shared:
        ua, ub = a.units[uid], b.units[uid]
        tally.add(ua.right, ub.right)
        if ua.right != ub.right:
            differing.append(UnitDiff(uid, "A" if ua.right else "B", ua, ub))
        for key in sorted(set(ua.verdicts.get("per_type", {})) | set(ub.verdicts.get("per_type", {}))):
            per_type.setdefault(key, Tally()).add(_type_right(ua.verdicts, key), _type_right(ub.verdicts, key))
    differing.sort(key=lambda d: -abs(d.a.score - d.b.score))
    return TaskComparison(
        a.spec, tally, dict(sorted(per_type.items())), differing,
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


def describe_errors(verdicts: dict[str, Any]) -> str:
    """The unit's items that are not matched, each with its verdict."""
    from taiyi_bench.harness.apps.report import item_text, verdict_text
    from taiyi_bench.harness.verdicts import grounded_flags as _grounded_flags

    rule = verdicts["rule"]
    items = [
        f"{item_text(rule, item)} → {verdict_text(item)}" + ("" if all(_grounded_flags(item)) else ", not in the text")
        for item in verdicts["predicted"] if item["verdict"] != "matched"
    ]
    items += [f"{item_text(rule, item)} → missed" for item in verdicts["gold"] if item["verdict"] == "missed"]
    return "; ".join(items) if items else "(none)"


def describe_gold(verdicts: dict[str, Any]) -> str:
    from taiyi_bench.harness.apps.report import item_text

    items = [item_text(verdicts["rule"], item) for item in verdicts["gold"]]
    return "; ".join(items) if items else "(nothing)"


def comparison_json(comparison: Comparison, top: int = DEFAULT_TOP) -> dict[str, Any]:
    """Everything `taiyi compare` shows, as plain JSON (`--json`)."""
    tasks = {}
    for task in comparison.tasks.values():
        paired = task.paired
        tasks[task.spec.task_name] = {
            **task.tally.to_dict(),
            "units_only_in_a": task.only_in_a,
            "units_only_in_b": task.only_in_b,
            "per_type": {k: t.to_dict() for k, t in task.per_type.items()},
            "paired_bootstrap": None if paired is None else {
                "a": paired.point_a, "b": paired.point_b, "delta": paired.delta, "ci": [paired.low, paired.high],
                "p_value": paired.p_value, "units": paired.n_units,
            },
            "differing_units": [
                {
                    "id": d.id, "right": d.winner, "text": d.a.text,
                    "a": {"output": d.a.output, "prediction": d.a.verdicts["prediction"], "score": d.a.score},
                    "b": {"output": d.b.output, "prediction": d.b.verdicts["prediction"], "score": d.b.score},
                    "gold": d.a.verdicts["gold"],
                }
                for d in task.differing[:top]
            ],
        }
    return {
        "a": comparison.a.label, "b": comparison.b.label, "resamples": comparison.n_resamples, "seed": comparison.seed,
        "tasks": tasks, "warnings": comparison.warnings,
    }


def _short(text: str | None, limit: int = 400) -> str:
    """One line: line breaks shown as " ⏎ ", long texts cut."""
    if text is None:
        return "(not recorded)"
    text = " ⏎ ".join(line.strip() for line in text.strip().splitlines()) or "(empty)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_terminal(comparison: Comparison, console: Any, top: int = DEFAULT_TOP) -> None:
    from rich.table import Table
    from rich.text import Text

    from taiyi_bench.harness.apps.leaderboard.table import fmt_pct

    console.print(Text(f"A = {comparison.a.label}\nB = {comparison.b.label}", style="bold"))
    table = Table(title=Text("Units right (answered exactly) in A and B, on the units both scored"))
    for header in ("Set", "units", "both right", "A only", "B only", "both wrong", "A", "B", "Δ (A−B)", "p"):
        table.add_column(header, justify="left" if header == "Set" else "right", no_wrap=header == "Set")
    for task in comparison.tasks.values():
        t, paired = task.tally, task.paired
        stats = ["—"] * 4 if paired is None else [
            fmt_pct(paired.point_a * 100), fmt_pct(paired.point_b * 100), fmt_pct(paired.delta * 100, signed=True),
            f"{paired.p_value:.3f}",
        ]
        table.add_row(task.spec.display_name, str(t.units), str(t.both_right), str(t.only_a), str(t.only_b), str(t.both_wrong), *stats)
    console.print(table)
    console.print(Text(
        f"A, B: headline metric (micro-F1 or accuracy, percent); p: paired bootstrap, {comparison.n_resamples} resamples, "
        f"seed {comparison.seed}.", style="dim"), soft_wrap=True)
    for task in comparison.tasks.values():
        differing_types = {k: t for k, t in task.per_type.items() if t.only_a or t.only_b}
        if differing_types:
            types = Table(title=Text(f"{task.spec.display_name}: per type (units where the type occurs)"))
            for header in ("Type", "units", "both right", "A only", "B only", "both wrong"):
                types.add_column(header, justify="left" if header == "Type" else "right", no_wrap=header == "Type")
            for key, t in differing_types.items():
                types.add_row(task.spec.label_name(key), str(t.units), str(t.both_right), str(t.only_a), str(t.only_b), str(t.both_wrong))
            console.print(types)
        for diff in task.differing[:top]:
            console.print(Text(f"{task.spec.task_name} unit {diff.id}: {diff.winner} right, "
                               f"{'B' if diff.winner == 'A' else 'A'} wrong", style="bold cyan"))
            for label, value in (
                ("text", _short(diff.a.text)),
                ("A output", _short(diff.a.output)), ("A parsed", describe_prediction(diff.a.verdicts)),
                ("A errors", describe_errors(diff.a.verdicts)),
                ("B output", _short(diff.b.output)), ("B parsed", describe_prediction(diff.b.verdicts)),
                ("B errors", describe_errors(diff.b.verdicts)), ("gold", describe_gold(diff.a.verdicts)),
            ):
                console.print(Text(f"  {label:<9} {value}"), soft_wrap=True)
    for warning in comparison.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare",
        help="two runs unit by unit: who got which units right, per type, paired test, the differing units",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_a", metavar="RUN_A", help="results file (or a folder with one model's run)")
    parser.add_argument("run_b", metavar="RUN_B", help="results file (or a folder with one model's run)")
    parser.add_argument("--task", help="only this set (key or task name)")
    parser.add_argument("--top", type=whole_number_at_least(0), default=DEFAULT_TOP,
                        help="differing units shown per set (default %(default)s)")
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
