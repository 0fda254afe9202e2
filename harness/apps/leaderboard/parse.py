"""Read lm-eval's `results_*.json` files (and BERT baselines written in the same layout) into
`RunFile`s and `TaskResult`s.

Layout written by `lm_eval ... --output_path results/runs/<model_slug> --log_samples` (0.4.13):

    results/runs/<model_slug>/<model_name_sanitized>/results_<date_id>.json
    results/runs/<model_slug>/<model_name_sanitized>/samples_<task>_<date_id>.jsonl

Folders are walked recursively, so any depth works. Bad input never stops the collection: every
problem becomes a warning that names the file, and the rest still renders. Files written before a
setting was recorded read as its default (demonstrations from the data, format from
`chat_template`, budget not recorded).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taiyi_bench.harness.apps.leaderboard.identity import RunVariant, run_variant
from taiyi_bench.harness.lmeval.cost import COST_KEY, cost_summary
from taiyi_bench.harness.provenance import COMPLETENESS_VALUES, DATA_PROBLEMS
from taiyi_bench.harness.registry import REGISTRY, DatasetSpec
from taiyi_bench.harness.results_io import (
    SKIPPED_SETS_KEY,
    claimed_counts_problem,
    date_id_of,
    find_results_files,
    read_results,
    recorded_identity,
    samples_beside,
)

# Keys accepted from older result files without the ",none" suffix, in order of preference.
LEGACY_KEYS = {"f1": ("micro_f1", "f1"), "acc": ("acc",)}
DEFAULT_FILTER = "none"


@dataclass
class TaskResult:
    """One set's headline number in one results file, with what is needed to judge and redo it."""

    key: str  # registry key
    value: float | None  # percent
    metric_key: str | None  # the key read, e.g. "micro_f1,none"
    version: str | None  # prompt version
    n_shot: int | None
    data_source: str  # "data" | "samples" | "unknown"
    limit: float | None
    n_original: int | None
    n_effective: int | None
    samples_path: Path | None
    run: RunFile = field(repr=False)
    fewshot_source: str | None = None  # "data" | "samples"; None at zero shots
    variant_value: Any = None  # the value of the set's registry `variant_option`; None without variants
    prompt_format: str | None = None  # None for discriminative models (no prompt)
    # The generation budget: the set's own, the one used, and whether it was cut (None: not recorded).
    budget_task: int | None = None
    budget_effective: int | None = None
    budget_source: str | None = None
    budget_cut: bool | None = None
    thinking_allowance: int = 0
    eval_units: int | None = None
    expected_units: int | None = None
    # `taiyi_bench.harness.provenance.Completeness`; "unknown" when not recorded.
    completeness: str = "unknown"
    # {"taiyi_bench_version", "git_commit", "git_dirty", "scoring_rules_version", "data_files"}.
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)
    # Every other metric of the set the file holds, in percent: a published number by another rule
    # than the headline's is set beside one of these. A metric the file lacks is absent, never 0.
    metrics: dict[str, float] = field(default_factory=dict, repr=False)
    # What the fine-tuning mixture of the evaluated adapter held of the set
    # (`taiyi_bench.harness.provenance.contamination_record`); None when not recorded.
    contamination: dict[str, Any] | None = field(default=None, repr=False)
    # --untouched-only (`build.keep_untouched_units`): the units left out of the recomputed values
    # (None: the values are the file's), and what was done, for the cell's mark.
    left_out: frozenset[str] | None = None
    untouched_note: str | None = None

    @property
    def touched_units(self) -> frozenset[str]:
        """The ids of the set's evaluation units the fine-tuning mixture holds (none when unchecked)."""
        return frozenset((self.contamination or {}).get("touched_units") or ())

    @property
    def task(self) -> str:
        return REGISTRY[self.key].task_name

    @property
    def spec(self) -> DatasetSpec:
        """The set in the form it ran (a variant where one was recorded)."""
        spec = REGISTRY[self.key]
        if spec.variant_option and self.variant_value is not None:
            with contextlib.suppress(ValueError):  # a value the registry does not know: the default form
                return spec.with_variant(self.variant_value)
        return spec

    @property
    def filter_name(self) -> str:
        return self.metric_key.split(",", 1)[1] if self.metric_key and "," in self.metric_key else DEFAULT_FILTER

    @property
    def limited(self) -> bool:
        """A limit that actually dropped units (a limit above the set size changes nothing)."""
        if self.n_original is not None and self.n_effective is not None:
            return self.n_effective < self.n_original
        return self.limit is not None

    @property
    def data_problem(self) -> str | None:
        """"incomplete" or "modified data" when the data read was not the official split."""
        return self.completeness if self.completeness in DATA_PROBLEMS else None

    @property
    def budget_overridden(self) -> bool:
        """A budget other than the set's own (plus its thinking allowance), e.g. a global max_gen_toks."""
        if self.budget_source == "gen_kwargs":
            return True
        if self.budget_task is None or self.budget_effective is None:
            return False
        return self.budget_effective != self.budget_task + self.thinking_allowance

    @property
    def partial_kind(self) -> str | None:
        """Why this is not a full official-data result: "samples" (run on the bundled samples),
        "demos" (demonstrations from the bundled samples), "limit", or None."""
        if self.data_source == "samples":
            return "samples"
        if self.fewshot_source == "samples":
            return "demos"
        if self.limited:
            return "limit"
        return None


@dataclass
class RunFile:
    """One results file and its provenance."""

    path: Path
    model: str
    backend: str | None
    model_args: str
    date: datetime | None
    date_id: str | None
    lm_eval_version: str | None
    transformers_version: str | None
    git_hash: str | None
    model_revision: str | None = None
    legacy_layout: bool = False
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    chat_template: bool = False
    # `max_gen_toks` of lm-eval's --gen_kwargs, applied to every set (read from config.gen_kwargs).
    gen_kwargs_max_gen_toks: int | None = None
    # Sets the runner skipped (registry key -> why), shown as missing, never as zero.
    skipped: dict[str, str] = field(default_factory=dict)
    # What the run cost per task (`taiyi_bench.harness.lmeval.cost.cost_summary`), and the price table
    # it was priced by; None for a file written before runs recorded their cost.
    cost: dict[str, dict[str, Any]] | None = field(default=None, repr=False)
    price: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def partial_kind(self) -> str | None:
        """Partial as a whole when any set is: a `--limit` run that covered a small set completely
        is still limited and must not leak that set into the model's full column. Kinds combine
        ("demos+limit"), except that a run on the samples is simply "samples"."""
        kinds = {kind for result in self.tasks.values() if (kind := result.partial_kind)}
        if "samples" in kinds:
            return "samples"
        return "+".join(sorted(kinds)) or None

    @property
    def variant(self) -> RunVariant:
        return run_variant(self)

    @property
    def sort_time(self) -> float:
        """Newest-first ordering: the run's own date, else the file name's timestamp, else mtime."""
        if self.date is not None:
            return self.date.timestamp()
        if self.date_id:
            with contextlib.suppress(ValueError):
                return datetime.strptime(self.date_id, "%Y-%m-%dT%H-%M-%S.%f").timestamp()
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0


@dataclass
class Collection:
    runs: list[RunFile]
    warnings: list[str]


def display_path(path: Path) -> str:
    """Path relative to the working directory when inside it (shorter, and stable across machines)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def collect_runs(paths: Iterable[str | os.PathLike]) -> Collection:
    """Read every results file under `paths`; unreadable files become warnings, not errors."""
    warnings: list[str] = []
    runs = [run for path in find_results_files(paths, warnings) if (run := read_results_file(path, warnings))]
    return Collection(runs, warnings)


def read_results_file(path: Path, warnings: list[str]) -> RunFile | None:
    """Parse one results file; None (with a warning naming the file) when it cannot be used."""
    where = display_path(path)
    data = _load(path, where, warnings)
    if data is None:
        return None
    run = _run_file(path, data)
    if data.get("date") is not None and run.date is None:
        warnings.append(f"{where}: 'date' {data.get('date')!r} is not a time stamp; the file name's time is used instead")
    known = _known_tasks(data, where, warnings)
    if not known:
        return None
    run.tasks = {result.key: result for task in known if (result := _task_result(task, data, run, where, warnings))}
    run.skipped = _skipped_sets(data.get(SKIPPED_SETS_KEY), run, where, warnings)
    return run


def _load(path: Path, where: str, warnings: list[str]) -> dict[str, Any] | None:
    try:
        data = read_results(path)
    except ValueError as exc:
        warnings.append(f"{where}: {str(exc).removeprefix(f'{path}: ')}; file skipped")
        return None
    except OSError as exc:
        warnings.append(f"{where}: cannot be read ({exc.strerror or exc}); file skipped")
        return None
    if not isinstance(data.get("results"), dict):
        warnings.append(f"{where}: no 'results' mapping (not an lm-eval results file?); file skipped")
        return None
    return data


def _known_tasks(data: dict[str, Any], where: str, warnings: list[str]) -> list[str]:
    """The file's taiyi_* tasks the registry knows; the others, and configured sets without a
    result, are warned about."""
    results = data["results"]
    taiyi_names = [t for t in results if isinstance(t, str) and t.startswith("taiyi_")]
    known = [t for t in taiyi_names if t.removeprefix("taiyi_") in REGISTRY]
    warnings += [f"{where}: task {unknown!r} is not one of the 13 sets; ignored" for unknown in sorted(set(taiyi_names) - set(known))]
    if not known:
        warnings.append(f"{where}: no result for any of the 13 taiyi_* sets; file skipped")
        return []
    warnings += [f"{where}: {task} is configured but has no entry in 'results'; cell left empty"
                 for task in sorted(set(_dict(data.get("configs"))) - set(results))
                 if isinstance(task, str) and task.removeprefix("taiyi_") in REGISTRY]
    return known


def _task_result(task: str, data: dict[str, Any], run: RunFile, where: str, warnings: list[str]) -> TaskResult | None:
    """One set's entry of a results file, checked; None (with a warning) when it cannot be used."""
    spec = REGISTRY[task.removeprefix("taiyi_")]
    entry = data["results"][task]
    if not isinstance(entry, dict):
        warnings.append(f"{where}: results[{task!r}] is not a mapping; set skipped")
        return None
    metric_key, value, legacy = _headline(entry, spec, where, task, warnings)
    if legacy and not run.legacy_layout:
        run.legacy_layout = True
        warnings.append(
            f"{where}: older lm-eval layout (metric keys without the ',none' filter suffix); read {metric_key!r} for {task} and the like"
        )
    task_config = _dict(_dict(data.get("configs")).get(task))
    metadata = _dict(task_config.get("metadata"))
    counts = _dict(_dict(data.get("n-samples")).get(task))
    samples_path = samples_beside(run.path, task)
    eval_units, expected_units = _int_or_none(metadata.get("eval_units")), _int_or_none(metadata.get("expected_units"))
    completeness = _completeness(metadata, eval_units, expected_units)
    # Claimed counts the registry contradicts (-5 units, 9,999 HoC units "full"): refused or marked.
    data_source = _data_source(metadata, samples_path)
    checked = _checked_counts(spec, metadata, counts, completeness, data_source, where, task, warnings)
    if checked is None:
        return None
    if checked == completeness:  # else the check's own warning said why
        _warn_completeness(where, task, completeness, eval_units, expected_units, warnings)
    version = metadata.get("prompt_version", _dict(data.get("versions")).get(task, metadata.get("version")))
    shots = _int_or_none(_dict(data.get("n-shot")).get(task, task_config.get("num_fewshot")))
    budget = _dict(metadata.get("budget"))
    discriminative = task_config.get("output_type") == "discriminative" or budget.get("source") == "none"
    limit = _dict(data.get("config")).get("limit")
    run_format = _str_or_none(_key_values(_dict(data.get("config")).get("model_args")).get("prompt_format"))
    run_format = _same_format(run_format or ("chat_template" if run.chat_template else "plain"))
    return TaskResult(
        key=spec.key, value=value, metric_key=metric_key, version=None if version is None else str(version),
        n_shot=shots, data_source=data_source,
        limit=float(limit) if isinstance(limit, (int, float)) and not isinstance(limit, bool) else None,
        n_original=_int_or_none(counts.get("original")), n_effective=_int_or_none(counts.get("effective")),
        samples_path=samples_path, run=run, fewshot_source=_fewshot_source(metadata, shots),
        variant_value=_variant_value(spec, metadata),
        prompt_format=None if discriminative else _same_format(_str_or_none(metadata.get("prompt_format")) or run_format),
        budget_task=_int_or_none(budget.get("task")), budget_effective=_int_or_none(budget.get("effective")),
        budget_source=_str_or_none(budget.get("source")),
        budget_cut=bool(budget["cut"]) if isinstance(budget.get("cut"), bool) else (False if discriminative else None),
        thinking_allowance=_int_or_none(metadata.get("thinking_allowance")) or 0, eval_units=eval_units,
        expected_units=expected_units, completeness=checked, provenance=dict(_dict(metadata.get("provenance"))),
        metrics=_other_metrics(entry, spec, metric_key),
        contamination=_contamination(metadata.get("contamination"), where, task, warnings),
    )


def _contamination(raw: Any, where: str, task: str, warnings: list[str]) -> dict[str, Any] | None:
    """The task's contamination record when it can be read: a set left unchecked, or a share of
    units in [0, 1] with the touched ids (as strings); anything else is warned about and not shown."""
    if raw is None:
        return None
    record = _dict(raw)
    share, touched = record.get("share"), record.get("touched_units")
    if record.get("checked") is False:
        return record
    is_share = isinstance(share, (int, float)) and not isinstance(share, bool) and 0 <= share <= 1
    if not is_share or not isinstance(touched, list):
        warnings.append(f"{where}: {task} has a malformed 'contamination' record (no share in [0, 1] with its "
                        "touched_units); not shown")
        return None
    return {**record, "touched_units": [str(unit) for unit in touched]}


def _run_file(path: Path, data: dict[str, Any]) -> RunFile:
    """The run-level fields of a results file (model, backend, dates, versions, chat template)."""
    config = _dict(data.get("config"))
    model_args = config.get("model_args")
    identity = recorded_identity(data)
    model = (
        (identity or {}).get("name")  # the portable name the run recorded (`provenance.model_identity`)
        or _str_or_none(data.get("model_name"))
        or _model_from_args(model_args)
        or _str_or_none(config.get("model_name"))
        or path.parent.name  # last resort: the folder the user chose (results/runs/<model_slug>/...)
    )
    return RunFile(
        path=path, model=model, backend=_str_or_none(data.get("model_source")) or _str_or_none(config.get("model")),
        model_args=",".join(f"{k}={v}" for k, v in model_args.items()) if isinstance(model_args, dict)
        else ("" if model_args is None else str(model_args)),
        date=_parse_date(data.get("date")), date_id=date_id_of(path), lm_eval_version=_str_or_none(data.get("lm_eval_version")),
        transformers_version=_str_or_none(data.get("transformers_version")),
        git_hash=_str_or_none(data.get("git_hash")),
        model_revision=_str_or_none(config.get("model_revision")) or _str_or_none(config.get("model_sha")),
        # lm-eval records the template it applied (and its hash); null when none was.
        chat_template=data.get("chat_template") is not None or data.get("chat_template_sha") is not None,
        gen_kwargs_max_gen_toks=_int_or_none(_key_values(config.get("gen_kwargs")).get("max_gen_toks")),
        cost=cost_summary(data), price=_dict(_dict(data.get(COST_KEY)).get("price")) or None,
    )


def _dict(value: Any) -> dict[str, Any]:
    """A section of the file that should be a mapping; anything else reads as empty."""
    return value if isinstance(value, dict) else {}


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _model_from_args(model_args: Any) -> str | None:
    # Same precedence as lm-eval's GeneralConfigTracker._get_model_name: an adapter names the model.
    prefixes = ("peft", "delta", "pretrained", "model", "path", "engine")
    if isinstance(model_args, dict):
        for key in prefixes:
            if model_args.get(key):
                return str(model_args[key])
    elif isinstance(model_args, str):
        for key in prefixes:
            marker = f"{key}="
            if marker in model_args:
                return model_args.split(marker, 1)[1].split(",", 1)[0]
    return None


def _parse_date(value: Any) -> datetime | None:
    # lm-eval writes `date` as time.time() at the start of the run. A number outside the years
    # datetime can hold (1e20) is no date at all: None, like a missing one.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.astimezone()
    return None


def _checked_counts(
    spec: DatasetSpec, metadata: dict[str, Any], counts: dict[str, Any], completeness: str, data_source: str,
    where: str, task: str, warnings: list[str],
) -> str | None:
    """The completeness to show for one set after checking the unit counts its file claims
    (`claimed_counts_problem`); None when the set is refused (a warning says why)."""
    raw = {"n_original": counts.get("original"), "n_effective": counts.get("effective"),
           "eval_units": metadata.get("eval_units"), "expected_units": metadata.get("expected_units")}
    # Only numbers are claims about counts; text where a count belongs is read as "not recorded", as before.
    raw = {name: value for name, value in raw.items() if isinstance(value, (int, float))}
    if spec.variant_option:
        # An option the set does not have keeps its default form's counts.
        with contextlib.suppress(ValueError):
            spec = spec.with_variant(_variant_value(spec, metadata))
    problem = claimed_counts_problem(spec, completeness=completeness, data_source=data_source, counts=raw)
    if problem is None:
        return completeness
    action, why = problem
    if action == "refuse":
        warnings.append(f"{where}: {task} {why}; the file's number cannot be trusted, set skipped")
        return None
    warnings.append(f"{where}: {task} {why}; the cell is marked 'incomplete' and left out of averages")
    return "incomplete"


def _warn_completeness(
    where: str, task: str, completeness: str, eval_units: int | None, expected_units: int | None, warnings: list[str]
) -> None:
    # The bundled samples are small by design; on real data a different count means another file.
    if completeness == "incomplete":
        counts_text = f"read {eval_units} units from its data file, but the official split has {expected_units}"
        warnings.append(
            f"{where}: {task} {counts_text if None not in (eval_units, expected_units) else 'is marked incomplete'}; "
            "the cell is marked 'incomplete' and left out of averages (check the file: `taiyi data check`)"
        )
    elif completeness == "modified data":
        warnings.append(
            f"{where}: {task} read data files whose checksums differ from the official ones; the cell is marked "
            "'modified data' and left out of averages (check the files: `taiyi data check`)"
        )


def _completeness(metadata: dict[str, Any], eval_units: int | None, expected_units: int | None) -> str:
    """The task's recorded `completeness`; for files written before it was recorded, what their
    counts say (a data run whose unit count is not the official split's is incomplete)."""
    recorded = metadata.get("completeness")
    if recorded in COMPLETENESS_VALUES:
        return str(recorded)
    source = metadata.get("data_source")
    if source == "samples":
        return "samples"
    if source == "data" and None not in (eval_units, expected_units) and eval_units != expected_units:
        return "incomplete"
    return "unknown"


def _key_values(value: Any) -> dict[str, Any]:
    """lm-eval's `config.model_args` or `config.gen_kwargs`: a dict, or the `k=v,k=v` string given
    on the command line (each value read as JSON where it is, `max_gen_toks=512` as a number)."""
    if not isinstance(value, str):
        return _dict(value)
    out: dict[str, Any] = {}
    for key, sep, raw in (item.partition("=") for item in value.split(",")):
        if sep:
            try:
                out[key.strip()] = json.loads(raw.strip())
            except json.JSONDecodeError:
                out[key.strip()] = raw.strip()
    return out


def _fewshot_source(metadata: dict[str, Any], n_shot: int | None) -> str | None:
    if not n_shot:
        return None
    source = metadata.get("fewshot_source")
    # Older files recorded nothing: their pool was the data directory's train split.
    return str(source) if source in ("data", "samples") else "data"


def _variant_value(spec: DatasetSpec, metadata: dict[str, Any]) -> Any:
    """The value of the set's registry `variant_option`: the results' variant record, else what
    lm-eval's --metadata put under that name, else the registry default; None for a set without
    variants. Which option a set has is the registry's to say, never this module's."""
    if not spec.variant_option:
        return None
    variant = _dict(metadata.get("variant"))
    for raw in (variant.get(spec.variant_option), metadata.get(spec.variant_option)):
        if isinstance(raw, str) and raw.strip().isdigit():
            raw = int(raw)
        if _int_or_none(raw) is not None:
            return int(raw)
    return spec.variant_value


def _skipped_sets(raw: Any, run: RunFile, where: str, warnings: list[str]) -> dict[str, str]:
    """Registry key -> reason for the sets the runner skipped (see SKIPPED_SETS_KEY)."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        raw = {name: "" for name in raw}
    if not isinstance(raw, dict):
        warnings.append(f"{where}: {SKIPPED_SETS_KEY} is not a mapping of task names; ignored")
        return {}
    out: dict[str, str] = {}
    for name, reason in raw.items():
        key = str(name).removeprefix("taiyi_")
        if key not in REGISTRY:
            warnings.append(f"{where}: {SKIPPED_SETS_KEY} names {name!r}, not one of the 13 sets; ignored")
        elif key in run.tasks:
            warnings.append(f"{where}: {name} is listed as skipped but has a result; the result is shown")
        else:
            out[key] = "" if reason is None else str(reason)
    return out


def _headline(
    entry: dict[str, Any], spec: DatasetSpec, where: str, task: str, warnings: list[str]
) -> tuple[str | None, float | None, bool]:
    """(key read, value in percent, read from the older layout?) for one task entry."""
    metric = spec.headline_metric
    candidates = [f"{metric},{DEFAULT_FILTER}"]
    # Another filter (a task with several filter pipelines) is accepted when "none" is absent.
    candidates += sorted(k for k in entry if isinstance(k, str) and k.startswith(f"{metric},") and k not in candidates)
    legacy_keys = list(LEGACY_KEYS[spec.metric])
    key = next((k for k in candidates + legacy_keys if k in entry), None)
    if key is None:
        metric_keys = sorted(k for k in entry if isinstance(k, str) and "stderr" not in k and k not in ("name", "alias", "sample_len"))
        warnings.append(
            f"{where}: {task} has no {candidates[0]!r} (metric keys found: {', '.join(metric_keys) or 'none'}); cell left empty"
        )
        return None, None, False
    raw = entry[key]
    legacy = key in legacy_keys
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        warnings.append(f"{where}: {task} {key!r} is {raw!r}, not a number; cell left empty")
        return key, None, legacy
    value = float(raw)
    if not math.isfinite(value):
        warnings.append(f"{where}: {task} {key!r} is {raw!r}; cell left empty")
        return key, None, legacy
    if 0.0 <= value <= 1.0:
        return key, value * 100.0, legacy
    if 1.0 < value <= 100.0:
        # lm-eval metrics are fractions; a value above 1 was written as a percent by someone else.
        warnings.append(f"{where}: {task} {key!r} = {value} looks like a percent already; used as is")
        return key, value, legacy
    warnings.append(f"{where}: {task} {key!r} = {value} is outside [0, 1]; cell left empty")
    return key, None, legacy


def _other_metrics(entry: dict[str, Any], spec: DatasetSpec, headline_key: str | None) -> dict[str, float]:
    """The set's non-headline metrics in the entry, in percent, read with the headline's filter (or
    without a suffix where the headline was); values that are not fractions are left out (the cell
    then says the run has no like metric, rather than show a number of unknown meaning)."""
    from taiyi_bench.harness.scoring import metric_names

    suffix = f",{headline_key.split(',', 1)[1]}" if headline_key and "," in headline_key else f",{DEFAULT_FILTER}"
    out: dict[str, float] = {}
    for name in metric_names(spec):
        if name == "score":  # the headline again
            continue
        raw = entry.get(f"{name}{suffix}", entry.get(name) if headline_key and "," not in headline_key else None)
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and 0.0 <= raw <= 1.0:
            out[name] = float(raw) * 100.0
    return out


def _data_source(metadata: dict[str, Any], samples_path: Path | None) -> str:
    """"data" or "samples" as our task configs record it; else the first logged doc's; else unknown."""
    source = metadata.get("data_source")
    if source in ("data", "samples"):
        return str(source)
    if samples_path is not None:
        try:
            with samples_path.open(encoding="utf-8") as handle:
                first = json.loads(handle.readline() or "{}")
            doc_source = first.get("doc", {}).get("data_source") if isinstance(first, dict) else None
            if doc_source in ("data", "samples"):
                return str(doc_source)
        except (OSError, json.JSONDecodeError, AttributeError):
            pass
    return "unknown"


def _same_format(name: str) -> str:
    """One name per wire format (`taiyi1` is `eod`), so aliases never split a model's column;
    an unknown name from some other tool is kept as written."""
    from taiyi_bench.harness.prompt_formats import ALIASES

    return ALIASES.get(name, name)
