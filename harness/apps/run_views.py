"""Runs and their samples, loaded for analysis: every unit with its prompt, output and verdicts,
and how a predicted or gold item and its verdict read.

Shared by `taiyi compare`, `taiyi report` and the leaderboard's paired view; it sits below all
three (it imports none of them) so that they can use it without importing one another.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taiyi_bench.harness.records import Example
from taiyi_bench.harness.registry import PAPER_ORDER, DatasetSpec, get_spec
from taiyi_bench.harness.results_io import iter_jsonl, record_example, record_output, record_verdicts
from taiyi_bench.harness.scoring import prf
from taiyi_bench.harness.verdicts import VERDICT_TEXT, unit_is_right, verdicts_problem


@dataclass
class UnitView:
    """One scored unit of one run: what it was asked, what it answered, how that was judged."""

    id: str
    example: Example
    prompt: str | None
    output: str | None
    verdicts: dict[str, Any]
    doc_hash: str | None = None  # lm-eval's hash of the doc: two runs pair a unit only where it is equal

    @property
    def right(self) -> bool:
        return unit_is_right(self.verdicts)

    @property
    def score(self) -> float:
        """The unit's own headline score: 1/0 for an option, else the unit's F1 (1.0 when there
        was nothing to find and nothing was found, 0.0 when the output could not be parsed)."""
        if "correct" in self.verdicts:
            return float(bool(self.verdicts["correct"]))
        counts = self.verdicts["counts"]
        if not (counts["tp"] or counts["fp"] or counts["fn"]):
            return float(self.right)  # a parse failure finds nothing too, but is no right answer
        return prf(counts["tp"], counts["fp"], counts["fn"])[2]

    @property
    def text(self) -> str:
        example = self.example
        if example.text:
            return example.text
        options = "\n".join(f"{letter}. {text}" for letter, text in example.options.items())
        return "\n".join(part for part in (" ".join(example.contexts), example.question, options) if part)


@dataclass
class TaskSamples:
    spec: DatasetSpec
    path: Path
    units: dict[str, UnitView]


@dataclass
class RunView:
    """One run column (a model and variant) with the samples of each of its sets."""

    label: str
    column: Any  # taiyi_bench.harness.apps.leaderboard.table.Column
    results: dict[str, Any]  # registry key -> TaskResult
    tasks: dict[str, TaskSamples] = field(default_factory=dict)


def item_text(rule: str, item: Mapping[str, Any]) -> str:
    """One predicted or gold item as a reader writes it."""
    if rule == "mention_set":
        return f"{item['type']}: {item['mention']}"
    if rule == "ordered_triples":
        return f"[{item['head']}, {item['relation']}, {item['tail']}]"
    if rule == "concept_pairs":
        if "head_names" in item:  # a gold concept pair
            return f"[{item['head_names'][0]} ({item['head']}), {item['tail_names'][0]} ({item['tail']})]"
        return f"[{item['head']}, {item['tail']}]"
    if rule == "label_set":
        return str(item["label"])
    return f"{item.get('option')}. {item.get('text', '')}".strip()


def verdict_text(item: Mapping[str, Any]) -> str:
    """The item's verdict in words, with what it was mistaken for."""
    verdict = item["verdict"]
    text = VERDICT_TEXT.get(verdict, verdict)
    if verdict == "wrong_type":
        other = item.get("gold_type") or item.get("predicted_type")
        text += f" ({'gold' if 'gold_type' in item else 'predicted'}: {other})"
    elif verdict in ("boundary", "lenient_refused"):
        other = item.get("gold_mention") or item.get("predicted_mention")
        text += f" ({'gold' if 'gold_mention' in item else 'predicted'}: {other})"
    elif verdict in ("reversed", "wrong_relation", "wrong_relation_reversed") and isinstance(item.get("gold"), list):
        text += f" (gold: [{', '.join(item['gold'])}])"
    if item.get("counted") is False:
        text += "; counted once with an earlier pair"
    return text


def _prompt(record: dict[str, Any]) -> str | None:
    arguments = record.get("arguments")
    if isinstance(arguments, dict):  # lm-eval 0.4.13: {"gen_args_0": {"arg_0": prompt, "arg_1": kwargs}}
        first = next(iter(arguments.values()), None)
        if isinstance(first, dict) and isinstance(first.get("arg_0"), str):
            return first["arg_0"]
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], list) and arguments[0]:
        return arguments[0][0] if isinstance(arguments[0][0], str) else None
    return None


def load_task_samples(spec: DatasetSpec, path: Path, warnings: list[str]) -> TaskSamples:
    """Every unit of a samples file, with its verdicts (recomputed for files written before
    verdicts were logged). A repeated unit keeps its last line, as the leaderboard does. A logged
    `verdicts` entry that is malformed is a `ValueError` naming the file and line: everything
    downstream (the report, the comparison) reads its fields."""
    units: dict[str, UnitView] = {}

    def skip(line_no: int, why: str) -> None:
        warnings.append(f"{path}, line {line_no}: {why}; line skipped")

    for line_no, record in iter_jsonl(path, skip):
        if not isinstance(record, dict) or record.get("filter", "none") != "none":
            continue
        example = record_example(record)
        if example is None:
            continue
        if "verdicts" in record and (problem := verdicts_problem(record["verdicts"])):
            raise ValueError(f"{path}, line {line_no}: malformed 'verdicts' ({problem})")
        verdicts = record_verdicts(spec, record)
        if verdicts is None:
            continue
        doc_hash = record.get("doc_hash")
        units[example.id] = UnitView(example.id, example, _prompt(record), record_output(record), verdicts,
                                     doc_hash if isinstance(doc_hash, str) and doc_hash else None)
    if not units:
        warnings.append(f"{path}: no readable units")
    return TaskSamples(spec, path, units)


def run_views(paths: Sequence[str | os.PathLike], warnings: list[str], *, tasks: Iterable[str] | None = None) -> list[RunView]:
    """Every run column under `paths` (partial runs included: this is analysis, not a ranking),
    with the samples of its sets (`tasks`: registry keys or task names, default all)."""
    from taiyi_bench.harness.apps.leaderboard.columns import build_run_columns
    from taiyi_bench.harness.apps.leaderboard.parse import collect_runs

    collection = collect_runs(paths)
    warnings.extend(collection.warnings)
    # The leaderboard's own remarks (partial runs, sets without a result) concern rankings, not analysis.
    columns = build_run_columns(
        collection, include_partial=True, include_budget_cut=True, include_incomplete=True, warnings=[]
    )
    wanted = None if tasks is None else {get_spec(t).key for t in tasks}
    views = []
    for run_column in columns:
        view = RunView(run_column.column.display_header, run_column.column, dict(run_column.results))
        for key in PAPER_ORDER:
            result = run_column.results.get(key)
            if result is None or (wanted is not None and key not in wanted):
                continue
            if result.samples_path is None:
                warnings.append(f"{result.run.path}: no samples file for {result.task} (run lm_eval with --log_samples)")
                continue
            view.tasks[key] = load_task_samples(result.spec, result.samples_path, warnings)
        views.append(view)
    return views


def load_run(run: str | os.PathLike, warnings: list[str], *, tasks: Iterable[str] | None = None) -> RunView:
    """Exactly one run (a results file, or a folder holding one model's run)."""
    views = run_views([run], warnings, tasks=tasks)
    if len(views) != 1:
        found = ", ".join(v.label for v in views) or "none"
        raise ValueError(f"{run}: expected exactly one model run, found {len(views)} ({found}); name a results file")
    return views[0]
