"""`taiyi rescore PATH... [--check]`: score logged model outputs again under the current rules.

A parser or scorer fix changes what some outputs score, and `SCORING_RULES_VERSION` goes up; the
leaderboard then keeps runs scored under different versions apart. A run whose samples file was
kept (`--log_samples`) need not be generated again to catch up: its outputs are in that file.
This command parses every logged output again, scores it, rewrites the per-unit values (and
verdicts) in the samples file, recomputes the aggregates in the results file the way lm-eval
does (the task's aggregation; the standard error of a mean as `lm_eval.api.metrics.mean_stderr`),
and records the new version with a `rescored` entry (from which version, at which commit, how many
units moved). The generating commit and everything else in the provenance stay as they were.

Both files are rewritten atomically, samples first: an interruption leaves a run that the next
`taiyi rescore` completes. A samples file that is not the run's own (fewer or more units than the
results file counts, a unit twice, other hashes than lm-eval recorded) is refused, naming it.
`--check` changes nothing and exits 1 when some run is not scored
under the current rules (for CI over committed runs). Runs without a samples file, and
discriminative runs (their samples hold predictions, not outputs to parse), are listed and left
alone.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taiyi_bench.harness.apps.leaderboard.parse import display_path
from taiyi_bench.harness.registry import REGISTRY, DatasetSpec
from taiyi_bench.harness.results_io import (
    find_results_files,
    iter_jsonl,
    read_results,
    samples_beside,
    samples_problem,
    write_run_files,
)
from taiyi_bench.harness.scoring import (
    SCORING_RULES_VERSION,
    aggregation_of,
    headline_metric_name,
    mean,
    metric_of,
)
from taiyi_bench.harness.verdicts import ANALYSIS_AGGREGATIONS

_BY_TASK = {spec.task_name: spec for spec in REGISTRY.values()}


@dataclass
class TaskRescore:
    """What rescoring one task of one results file did (or, with --check, would do)."""

    results_path: Path
    task: str
    status: str  # "rescored" | "current" | "no samples" | "discriminative"
    from_version: Any = None
    units: int = 0
    units_changed: int = 0
    headline_before: float | None = None
    headline_after: float | None = None


def _aggregation(spec: DatasetSpec, metric: str):
    """lm-eval's aggregation for a per-unit value of this set (as the task templates name it)."""
    if metric in ANALYSIS_AGGREGATIONS:
        return ANALYSIS_AGGREGATIONS[metric]
    try:
        return aggregation_of(spec, metric)
    except KeyError:
        raise ValueError(f"{spec.task_name}: no aggregation known for the per-unit value {metric!r}") from None


def _read_rows(samples: Path) -> list[dict[str, Any]]:
    def refuse(number: int, why: str) -> None:
        raise ValueError(f"{samples}, line {number}: {why}")

    rows = []
    for number, row in iter_jsonl(samples, refuse):
        if not (isinstance(row, dict) and isinstance(row.get("doc"), dict) and isinstance(row.get("metrics"), list)):
            raise ValueError(f"{samples}, line {number}: not an lm-eval sample (expected 'doc' and 'metrics')")
        rows.append(row)
    if not rows:
        raise ValueError(f"{samples}: no samples in it")
    return rows


def _generated_texts(row: dict[str, Any]) -> list[str] | None:
    texts = row.get("filtered_resps")
    return texts if isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts) else None


def _rescore_rows(spec: DatasetSpec, rows: Sequence[dict[str, Any]], samples: Path) -> int:
    """Re-parse and re-score each row in place; the number of rows whose values moved."""
    from taiyi_bench.harness.lmeval.tasks import process_results

    changed = 0
    for number, row in enumerate(rows, start=1):
        try:
            now = process_results(row["doc"], _generated_texts(row) or [""], spec)
        except (KeyError, TypeError, ValueError) as exc:  # a doc that is not one of our units
            raise ValueError(f"{samples}, sample {number}: its doc cannot be read as a {spec.task_name} unit ({exc})") from None
        # The current metric list: a metric added to the table since the run is computed, one
        # dropped is removed, so the rescored file is what a fresh run would log.
        if list(row["metrics"]) != list(now) or any(row.get(name) != value for name, value in now.items()):
            changed += 1
        for name in row["metrics"]:
            if name not in now:
                row.pop(name, None)
        row.update(now)
        row["metrics"] = list(now)
    return changed


def _aggregate_into(block: dict[str, Any], spec: DatasetSpec, rows: Sequence[dict[str, Any]], filter_name: str, samples: Path) -> None:
    from lm_eval.api.metrics import mean_stderr

    for metric in rows[0]["metrics"]:
        values = [row.get(metric) for row in rows]
        try:
            block[f"{metric},{filter_name}"] = _aggregation(spec, metric)(values)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{samples}: the per-unit values of {metric!r} cannot be aggregated ({exc})") from None
        stderr_key = f"{metric}_stderr,{filter_name}"
        if metric not in ANALYSIS_AGGREGATIONS and _aggregation(spec, metric) is mean:
            stderr = mean_stderr(values) if len(values) > 1 else "N/A"
            block[stderr_key] = stderr if isinstance(stderr, str) or math.isfinite(stderr) else "N/A"
        else:
            block[stderr_key] = "N/A"
    for key in [k for k in block if "," in k]:  # metrics the current table no longer has
        name = key.split(",", 1)[0].removesuffix("_stderr")
        if name not in rows[0]["metrics"]:
            del block[key]


def _record_metric_list(data: dict[str, Any], config: Any, task: str, spec: DatasetSpec, names: Sequence[str]) -> None:
    """The results file's metric list and higher_is_better as a fresh run would record them."""
    import inspect

    from taiyi_bench.harness.lmeval.tasks import analysis_higher_is_better

    analysis = analysis_higher_is_better(spec)
    better = {name: analysis[name] if name in analysis else metric_of(spec, name).higher_is_better for name in names}
    if isinstance(config, dict):
        config["metric_list"] = [
            {"metric": name, "aggregation": inspect.getsource(_aggregation(spec, name)), "higher_is_better": better[name]}
            for name in names if name not in analysis
        ]
    if isinstance(data.get("higher_is_better"), dict):
        data["higher_is_better"][task] = better


def rescore_results_file(results_path: Path, *, check: bool = False, commit: str | None = None) -> list[TaskRescore]:
    """Rescore every taiyi task of one results file whose samples were logged; write unless `check`."""
    data = read_results(results_path)
    results, configs = data.get("results"), data.setdefault("configs", {})
    if not isinstance(results, dict) or not isinstance(configs, dict):
        raise ValueError(f"{results_path}: 'results' and 'configs' must be mappings keyed by task (an lm-eval results file)")
    outcomes: list[TaskRescore] = []
    new_samples: dict[str, list[dict[str, Any]]] = {}
    for task, block in results.items():
        spec = _BY_TASK.get(task)
        if spec is None or not isinstance(block, dict):
            continue
        config = configs.setdefault(task, {})
        metadata = config.setdefault("metadata", {}) if isinstance(config, dict) else None
        provenance = metadata.setdefault("provenance", {}) if isinstance(metadata, dict) else None
        if not isinstance(provenance, dict):
            raise ValueError(f"{results_path}: configs.{task}.metadata.provenance is not a mapping")
        before = provenance.get("scoring_rules_version")
        outcome = TaskRescore(results_path, task, "current", from_version=before)
        outcomes.append(outcome)
        samples = samples_beside(results_path, task)
        if samples is None:
            outcome.status = "no samples" if before != SCORING_RULES_VERSION else "current"
            continue
        rows = _read_rows(samples)
        # A samples file cut at a line or with lines twice rescored to 100.0 from 1 unit of 5 while
        # n-samples still said 5: rescoring trusts the samples only where they are the run's own.
        problem = samples_problem(results_path, data, task, samples)
        if problem:
            raise ValueError(f"{problem}; nothing rescored (rerun {task}, or restore its samples file)")
        if any(_generated_texts(row) is None for row in rows):
            outcome.status = "discriminative"
            continue
        filter_name = rows[0].get("filter", "none")
        headline_key = f"{headline_metric_name(spec)},{filter_name}"
        outcome.units, outcome.headline_before = len(rows), block.get(headline_key)
        outcome.units_changed = _rescore_rows(spec, rows, samples)
        if before == SCORING_RULES_VERSION and outcome.units_changed == 0:
            outcome.headline_after = outcome.headline_before
            continue
        _aggregate_into(block, spec, rows, filter_name, samples)
        _record_metric_list(data, config, task, spec, rows[0]["metrics"])
        outcome.status, outcome.headline_after = "rescored", block.get(headline_key)
        provenance["scoring_rules_version"] = SCORING_RULES_VERSION
        metadata["rescored"] = {
            "from_scoring_rules_version": before, "to_scoring_rules_version": SCORING_RULES_VERSION,
            "units_changed": outcome.units_changed, "git_commit": commit,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        new_samples[task] = rows
    if new_samples and not check:
        write_run_files(results_path, data, new_samples)
    return outcomes


def rescore(paths: Iterable[str | Path], *, check: bool = False) -> tuple[list[TaskRescore], list[str]]:
    from taiyi_bench.harness.provenance import git_commit

    warnings: list[str] = []
    files = find_results_files(paths, warnings)
    if not files:
        raise FileNotFoundError(f"no results_*.json under {', '.join(str(p) for p in paths)}")
    return [outcome for path in files for outcome in rescore_results_file(path, check=check, commit=git_commit())], warnings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "rescore", help="score logged outputs again under the current parsing and scoring rules",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="results files or folders holding them")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any run is not current")
    parser.set_defaults(func=run)
    return parser


def _fmt(value: Any) -> str:
    return f"{value * 100:.1f}" if isinstance(value, (int, float)) else "-"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    console = Console()
    outcomes, warnings = rescore(args.paths, check=args.check)
    for warning in warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
    console.print(Text(f"scoring rules v{SCORING_RULES_VERSION}" + (" (check only: nothing written)" if args.check else ""),
                       style="bold"))
    for o in outcomes:
        status = "needs rescoring" if args.check and o.status == "rescored" else o.status
        headline = _fmt(o.headline_before)
        if o.headline_after is not None and o.headline_after != o.headline_before:
            headline += f" -> {_fmt(o.headline_after)}"
        moved = f"{o.units_changed}/{o.units} units moved" if o.units else ""
        line = f"{_BY_TASK[o.task].key:<13} v{o.from_version}  {status:<15} {moved:<18} {headline:<13} {display_path(o.results_path)}"
        console.print(Text(line, style="yellow" if status in ("needs rescoring", "no samples") else ""), soft_wrap=True)
    stale = [o for o in outcomes if o.status in ("rescored", "no samples")]
    if args.check and stale:
        console.print(Text(f"{len(stale)} task result(s) are not scored under v{SCORING_RULES_VERSION}: run `taiyi rescore` "
                           "(or rerun those without samples)", style="bold red"), soft_wrap=True)
        return 1
    return 0
