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
under the current rules (for CI over committed runs).

A discriminative (BERT) run is scored again from the predictions it kept, by the BERT writer's own
scoring (`baselines.results.scored_run`), so its files are what a fresh run of the same predictions
would write: from its samples file's `prediction` records, or, where only a span model's
`predicted_spans_<task>_<date>.jsonl` was kept, from those spans against the data the run read
(`--data-dir`, else $TAIYI_DATA_DIR; the files must have the checksums the run recorded and the
units must hash to its `task_hashes`). Its `units_changed` is null there: no per-unit values were
kept to compare. A run with no per-unit file at all is brought to the current version only when no
rules change since its version touches its set for its kind of model (`scoring.RULES_CHANGES`) and
it has every metric the current rules report: its aggregates stay, and the `rescored` entry says
why (`units_changed: 0`, a `reason`). Any other is listed as "needs a re-run", with the reason.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taiyi_bench.baselines.results import (
    predicted_spans_beside,
    read_predicted_spans,
    recorded_prediction,
    scored_run,
)
from taiyi_bench.harness import provenance as provenance_files
from taiyi_bench.harness.apps.leaderboard.parse import display_path
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.paths import DATA_DIR_ENV, SAMPLES_DIR, resolve_data_dir
from taiyi_bench.harness.records import Example, Prediction
from taiyi_bench.harness.registry import REGISTRY, DatasetSpec
from taiyi_bench.harness.results_io import (
    PER_TYPE_KEY,
    find_results_files,
    iter_jsonl,
    read_results,
    samples_beside,
    samples_problem,
    write_run_files,
)
from taiyi_bench.harness.scoring import (
    RULES_CHANGES,
    SCORING_RULES_VERSION,
    aggregation_of,
    headline_metric_name,
    mean,
    metric_names,
    metric_of,
)
from taiyi_bench.harness.verdicts import ANALYSIS_AGGREGATIONS, analysis_metric_names

_BY_TASK = {spec.task_name: spec for spec in REGISTRY.values()}


@dataclass
class TaskRescore:
    """What rescoring one task of one results file did (or, with --check, would do)."""

    results_path: Path
    task: str
    status: str  # "rescored" | "current" | "needs a re-run" | "needs the data"
    from_version: Any = None
    units: int = 0
    units_changed: int | None = 0  # None: no per-unit values were kept to compare
    headline_before: float | None = None
    headline_after: float | None = None
    reason: str | None = None  # why a run needs a re-run, or was brought up without per-unit data
    moved: dict[str, tuple[Any, Any]] | None = None  # other aggregates that moved: before, after


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


def _producer(config: Any) -> str:
    """Who made the run's predictions, as `RULES_CHANGES` names them: the BERT writer's
    "discriminative" output type, else an LLM whose text was parsed ("llm")."""
    return "discriminative" if isinstance(config, dict) and config.get("output_type") == "discriminative" else "llm"


def _why_not_current(spec: DatasetSpec, block: dict[str, Any], producer: str, version: Any) -> str | None:
    """Why a run scored under rules `version` cannot be brought to the current rules from its
    aggregates alone (a change since then touches its set, or added a metric it lacks); None: it can."""
    if not (isinstance(version, int) and 1 <= version <= SCORING_RULES_VERSION):
        return f"its scoring-rules version {version!r} is not one this code knows"
    reported = {key.split(",", 1)[0] for key in block if "," in key}
    for number in range(version + 1, SCORING_RULES_VERSION + 1):
        change = RULES_CHANGES[number]
        if producer in change.producers and change.touches(spec):
            return f"v{number} changed its scores ({change.what})"
        if lacking := [name for name in change.added_metrics if name in metric_names(spec) and name not in reported]:
            return f"v{number} added {', '.join(lacking)}"
    lacking = [name for name in metric_names(spec) if name not in reported]
    return f"it has no {', '.join(lacking)}" if lacking else None


def _extra_names(spec: DatasetSpec, names: Iterable[str]) -> list[str]:
    """The names a baseline family added beside the scorer's (seqeval_f1, candidate_pairs): kept."""
    ours = {*metric_names(spec), *analysis_metric_names(spec)}
    return [name for name in names if name not in ours and not name.endswith("_stderr")]


def _discriminative_units(
    results_path: Path, data: dict[str, Any], task: str, spec: DatasetSpec, per_unit: Path,
    rows: list[dict[str, Any]] | None, data_dir: str | Path | None,
) -> tuple[list[Example], list[Prediction], list[str] | None, list[dict[str, Any]] | None] | None:
    """A BERT run's units, kept predictions, inputs and family values per unit: from its samples
    `rows`, else from a span model's kept spans (`per_unit`) and the data the run read (None: no
    data directory to read it from). ValueError naming the file that is not the run's own."""
    if rows is not None:
        units = [recorded_prediction(row) for row in rows]
        inputs = [((row.get("arguments") or {}).get("gen_args_0") or {}).get("arg_0") for row in rows]
        if bad := next((n for n, (unit, text) in enumerate(zip(units, inputs, strict=True), 1) if unit is None or text is None), None):
            raise ValueError(f"{per_unit}, sample {bad}: not a discriminative run's unit (a taiyi doc, its input and 'prediction')")
        examples, predictions = (list(side) for side in zip(*units, strict=True))
        return examples, predictions, inputs, [{name: row[name] for name in _extra_names(spec, row["metrics"])} for row in rows]
    config, metadata = data["configs"][task], data["configs"][task]["metadata"]
    root = SAMPLES_DIR if metadata.get("data_source") == "samples" else resolve_data_dir(data_dir)
    if root is None:
        return None
    loaded = load_split(spec.key, config.get("test_split") or spec.eval_split, root)
    recorded = metadata["provenance"].get("data_files")
    now = provenance_files.data_files((path, loaded.root) for path in loaded.paths)
    if recorded and recorded != now:
        differing = sorted(name for name in {*recorded, *now} if recorded.get(name) != now.get(name))
        raise ValueError(f"{results_path}: {task} was scored on other data than {', '.join(differing)} under "
                         f"{loaded.root} (checksums differ); nothing rescored")
    effective = (data.get("n-samples") or {}).get(task, {}).get("effective", len(loaded.examples))
    examples = loaded.examples[:effective]  # --limit keeps the first units
    return examples, read_predicted_spans(per_unit, examples), None, None


def _rescore_discriminative(
    results_path: Path, data: dict[str, Any], task: str, spec: DatasetSpec, per_unit: Path,
    units: tuple[list[Example], list[Prediction], list[str] | None, list[dict[str, Any]] | None],
    rows: list[dict[str, Any]] | None, outcome: TaskRescore,
) -> list[dict[str, Any]]:
    """Score a BERT run's kept predictions again into its results file, as `write_run` would (its
    family's own metrics kept); the new samples lines."""
    block, config = data["results"][task], data["configs"][task]
    examples, predictions, inputs, extra_units = units
    extra = {name: block[f"{name},none"] for name in _extra_names(spec, (key.split(",", 1)[0] for key in block if "," in key))}
    scored = scored_run(spec, examples, predictions, data_source=str(config["metadata"].get("data_source")),
                        inputs=inputs, extra_metrics=extra, extra_unit_values=extra_units)
    recorded = (data.get("task_hashes") or {}).get(task)
    if recorded and scored.task_hash != recorded:
        raise ValueError(f"{per_unit}: its units do not hash to the task_hashes {results_path.name} recorded for {task} "
                         "(other data, or another run's file); nothing rescored")
    outcome.units = len(scored.samples)
    outcome.units_changed = None if rows is None else sum(
        any(row.get(name) != new[name] for name in new["metrics"]) for row, new in zip(rows, scored.samples, strict=True))
    block.clear()
    block.update(scored.entry)
    config["metric_list"] = scored.metric_list
    if isinstance(data.get("higher_is_better"), dict):
        data["higher_is_better"][task] = scored.higher_is_better
    data.setdefault(PER_TYPE_KEY, {})[task] = scored.per_type
    return scored.samples


def _moved(before: dict[str, Any], after: dict[str, Any], skip: str) -> dict[str, tuple[Any, Any]]:
    """The numeric aggregates (not their errors, not `skip`) whose value moved: before, after."""
    return {key.split(",", 1)[0]: (before.get(key), value) for key, value in after.items()
            if "," in key and "_stderr," not in key and not key.startswith(f"{skip},") and not key.startswith("score,")
            and isinstance(value, (int, float)) and before.get(key) != value}


def rescore_results_file(
    results_path: Path, *, check: bool = False, commit: str | None = None, data_dir: str | Path | None = None,
) -> list[TaskRescore]:
    """Rescore every taiyi task of one results file from its per-unit file (samples, or a span
    model's predicted spans), or bring it up from its aggregates where no change touches it;
    write unless `check`. `data_dir`: the data a span model's units are read from again."""
    data = read_results(results_path)
    results, configs = data.get("results"), data.setdefault("configs", {})
    if not isinstance(results, dict) or not isinstance(configs, dict):
        raise ValueError(f"{results_path}: 'results' and 'configs' must be mappings keyed by task (an lm-eval results file)")
    outcomes: list[TaskRescore] = []
    new_samples: dict[str, list[dict[str, Any]]] = {}
    for task, block in results.items():
        spec = _BY_TASK.get(task)
        if spec is not None and isinstance(block, dict):
            outcomes.append(_rescore_task(results_path, data, task, spec, new_samples, commit=commit, data_dir=data_dir))
    if not check and any(o.status == "rescored" for o in outcomes):
        write_run_files(results_path, data, new_samples)
    return outcomes


def _rescore_task(
    results_path: Path, data: dict[str, Any], task: str, spec: DatasetSpec, new_samples: dict[str, list[dict[str, Any]]],
    *, commit: str | None, data_dir: str | Path | None,
) -> TaskRescore:
    """Rescore one task of the results file read into `data`, in place: its block, config and
    provenance; its new samples lines go into `new_samples`."""
    block, config = data["results"][task], data["configs"].setdefault(task, {})
    metadata = config.setdefault("metadata", {}) if isinstance(config, dict) else None
    provenance = metadata.setdefault("provenance", {}) if isinstance(metadata, dict) else None
    if not isinstance(provenance, dict):
        raise ValueError(f"{results_path}: configs.{task}.metadata.provenance is not a mapping")
    before, producer = provenance.get("scoring_rules_version"), _producer(config)
    outcome = TaskRescore(results_path, task, "current", from_version=before)
    samples = samples_beside(results_path, task)
    spans = predicted_spans_beside(results_path, task) if producer == "discriminative" and samples is None else None
    rows = _read_rows(samples) if samples is not None else None
    record: dict[str, Any] = {}
    headline_key = f"{headline_metric_name(spec)},{rows[0].get('filter', 'none') if rows else 'none'}"
    outcome.headline_before, block_before = block.get(headline_key), dict(block)
    if before == SCORING_RULES_VERSION and (producer == "discriminative" or rows is None):
        return outcome  # kept predictions score as they did under the same rules
    if rows is None and spans is None:
        if reason := _why_not_current(spec, block, producer, before):
            outcome.status, outcome.reason = "needs a re-run", reason
            return outcome
        outcome.reason = record["reason"] = f"no rule change since v{before} affects this set"
    else:
        # A samples file cut at a line or with lines twice rescored to 100.0 from 1 unit of 5 while
        # n-samples still said 5: rescoring trusts the samples only where they are the run's own.
        problem = samples_problem(results_path, data, task, samples) if samples is not None else None
        if problem:
            raise ValueError(f"{problem}; nothing rescored (rerun {task}, or restore its samples file)")
        per_unit = samples or spans
        assert per_unit is not None
        if producer == "discriminative":
            units = _discriminative_units(results_path, data, task, spec, per_unit, rows, data_dir)
            if units is None:
                outcome.status = "needs the data"
                outcome.reason = f"{per_unit.name} is scored against the data: give --data-dir or set ${DATA_DIR_ENV}"
                return outcome
            written = _rescore_discriminative(results_path, data, task, spec, per_unit, units, rows, outcome)
            if rows is not None:
                new_samples[task] = written
        else:
            assert rows is not None and samples is not None
            if any(_generated_texts(row) is None for row in rows):
                outcome.status, outcome.reason = "needs a re-run", "its samples hold no generated text to parse"
                return outcome
            outcome.units = len(rows)
            outcome.units_changed = _rescore_rows(spec, rows, samples)
            if before == SCORING_RULES_VERSION and outcome.units_changed == 0:
                outcome.headline_after = outcome.headline_before
                return outcome
            _aggregate_into(block, spec, rows, headline_key.split(",", 1)[1], samples)
            _record_metric_list(data, config, task, spec, rows[0]["metrics"])
            new_samples[task] = rows
    outcome.status, outcome.headline_after = "rescored", block.get(headline_key)
    outcome.moved = _moved(block_before, block, headline_metric_name(spec))
    provenance["scoring_rules_version"] = SCORING_RULES_VERSION
    metadata["rescored"] = {
        "from_scoring_rules_version": before, "to_scoring_rules_version": SCORING_RULES_VERSION,
        "units_changed": outcome.units_changed, "git_commit": commit,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), **record,
    }
    return outcome


def rescore(
    paths: Iterable[str | Path], *, check: bool = False, data_dir: str | Path | None = None,
) -> tuple[list[TaskRescore], list[str]]:
    warnings: list[str] = []
    files = find_results_files(paths, warnings)
    if not files:
        raise FileNotFoundError(f"no results_*.json under {', '.join(str(p) for p in paths)}")
    commit = provenance_files.git_commit()
    return [outcome for path in files for outcome in rescore_results_file(path, check=check, commit=commit, data_dir=data_dir)], warnings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "rescore", help="score logged outputs again under the current parsing and scoring rules",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="results files or folders holding them")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any run is not current")
    parser.add_argument("--data-dir", help=f"the data a span model's kept spans are scored against (default ${DATA_DIR_ENV})")
    parser.set_defaults(func=run)
    return parser


def _fmt(value: Any) -> str:
    return f"{value * 100:.1f}" if isinstance(value, (int, float)) else "-"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    console = Console()
    outcomes, warnings = rescore(args.paths, check=args.check, data_dir=args.data_dir)
    for warning in warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
    console.print(Text(f"scoring rules v{SCORING_RULES_VERSION}" + (" (check only: nothing written)" if args.check else ""),
                       style="bold"))
    for o in outcomes:
        status = "needs rescoring" if args.check and o.status == "rescored" else o.status
        headline = _fmt(o.headline_before)
        if o.headline_after is not None and o.headline_after != o.headline_before:
            headline += f" -> {_fmt(o.headline_after)}"
        units = "" if not o.units else f"{o.units} units (spans)" if o.units_changed is None else f"{o.units_changed}/{o.units} units moved"
        line = f"{_BY_TASK[o.task].key:<13} v{o.from_version}  {status:<15} {units:<18} {headline:<13} {display_path(o.results_path)}"
        console.print(Text(line, style="" if status in ("current", "rescored") else "yellow"), soft_wrap=True)
        moved = "; ".join(f"{name} {_fmt(old)} -> {_fmt(new)}" for name, (old, new) in (o.moved or {}).items())
        for note in (f"moved: {moved}" if moved else "", o.reason or ""):
            if note:
                console.print(Text(f"{'':<13} {note}"), soft_wrap=True)
    stale = [o for o in outcomes if o.status != "current"]
    if args.check and stale:
        console.print(Text(f"{len(stale)} task result(s) are not scored under v{SCORING_RULES_VERSION}: run `taiyi rescore` "
                           "(a run that needs a re-run cannot be rescored)", style="bold red"), soft_wrap=True)
        return 1
    return 0
