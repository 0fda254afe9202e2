"""Collect run results: lm-eval's `results_*.json` files (and BERT baselines written in the same layout).

Layout written by `lm_eval ... --output_path results/runs/<model_slug> --log_samples` (0.4.13,
`EvaluationTracker.save_results_aggregated` / `save_results_samples`):

    results/runs/<model_slug>/<model_name_sanitized>/results_<date_id>.json
    results/runs/<model_slug>/<model_name_sanitized>/samples_<task>_<date_id>.jsonl

The collector walks folders recursively, so any depth works. Bad input never stops the
collection: every problem becomes a warning that names the file, and the rest still renders.

A run's identity is its model plus every setting that changes its numbers (`RunVariant`: few-shot
K and where the demonstrations came from, the form of a set with variants, prompt format and version, chat
template, generation budget, thinking allowance). Runs that differ in any of them are never
merged; each variant gets its own column. Files written before these settings were recorded
read as the defaults (4 options, demonstrations from the data, format from `chat_template`,
budget not recorded).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taiyi_bench.harness.apps.leaderboard.rules import NOT_IN_FILE, headline_rule
from taiyi_bench.harness.apps.leaderboard.table import Cell, Column
from taiyi_bench.harness.provenance import COMPLETENESS_VALUES, DATA_PROBLEMS
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY, DatasetSpec
from taiyi_bench.harness.results_io import (
    SKIPPED_SETS_KEY,
    find_results_files,
    read_results,
    samples_beside,
)

# Headline metric per registry metric: the key our tasks log (lm-eval appends ",<filter>").
HEADLINE_METRIC = {"f1": "micro_f1", "acc": "acc"}
# Keys accepted from older result files without the ",none" suffix, in order of preference.
LEGACY_KEYS = {"f1": ("micro_f1", "f1"), "acc": ("acc",)}
DEFAULT_FILTER = "none"
# Formats a model may be evaluated in (set by `prompt_format=<name>` in lm-eval's --model_args).
# The first two are what a run without the key gets; the others are never a silent default.
DEFAULT_PROMPT_FORMATS = ("chat_template", "plain")


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
    # Where the few-shot demonstrations came from: "data" | "samples"; None at zero shots.
    fewshot_source: str | None = None
    # The value of the set's registry `variant_option` (e.g. 5 options for MCMLE); None
    # for a set without variants.
    variant_value: Any = None
    prompt_format: str | None = None  # None for discriminative models (no prompt)
    # The generation budget: the set's own, the one used, and whether it was cut (None: not recorded).
    budget_task: int | None = None
    budget_effective: int | None = None
    budget_source: str | None = None
    budget_cut: bool | None = None
    thinking_allowance: int = 0
    eval_units: int | None = None
    expected_units: int | None = None
    # `taiyi_bench.harness.provenance.Completeness`: "full", "incomplete" (another unit count than the official
    # split), "modified data" (another checksum), "limited", "samples"; "unknown" when not recorded.
    completeness: str = "unknown"
    # {"taiyi_bench_version", "git_commit", "git_dirty", "scoring_rules_version", "data_files"}.
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)
    # Every other metric of the set the file holds, in percent (`taiyi_bench.harness.scoring.metric_names`):
    # a published number by another rule than the headline's is set beside one of these. A metric
    # the file lacks (scored before it existed) is absent, never 0.
    metrics: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def task(self) -> str:
        return REGISTRY[self.key].task_name

    @property
    def metric(self) -> str:
        return HEADLINE_METRIC[REGISTRY[self.key].metric]

    @property
    def filter_name(self) -> str:
        if self.metric_key and "," in self.metric_key:
            return self.metric_key.split(",", 1)[1]
        return DEFAULT_FILTER

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
        """Why this is not a full official-data result: "samples" (evaluated on the bundled samples),
        "demos" (few-shot demonstrations from the bundled samples), "limit", or None."""
        if self.data_source == "samples":
            return "samples"
        if self.fewshot_source == "samples":
            return "demos"
        if self.limited:
            return "limit"
        return None


@dataclass(frozen=True)
class RunVariant:
    """Every setting of a run, besides its model, that changes its numbers.

    Run-level (one value set per results file), so one run is never split over several columns:
    a 5-option MCMLE run of the whole suite is a column of its own, with its own averages.
    """

    shots: tuple[int, ...] = (0,)
    # (registry key, value) for every set evaluated in a form other than its default one, read
    # from the variant record the results carry. A set in its default form, or absent, adds
    # nothing: the other sets do not depend on it, so a rerun of some sets still merges.
    set_forms: tuple[tuple[str, Any], ...] = ()
    prompt_formats: tuple[str, ...] = ()  # empty for discriminative models
    prompt_versions: tuple[str, ...] = ()
    chat_template: bool = False
    # ("task",): each set's own budget; ("gen_kwargs", 512, ...): a global override (the budgets
    # used); ("unknown",): not recorded (files from before budgets were stored).
    # Whether a budget was actually cut depends on the set, so it is a property of the column's
    # cells, not of the variant: a full run and a rerun of a few sets under the same override
    # are the same variant.
    budget: tuple[Any, ...] = ("task",)
    thinking_allowance: int = 0
    # The scoring-rules version(s) recorded (parsers and scorers): outputs scored under other rules
    # are other numbers. Empty when the files do not record it.
    scoring_rules: tuple[str, ...] = ()

    def sort_key(self) -> tuple:
        return (
            self.shots, tuple((key, str(value)) for key, value in self.set_forms), self.prompt_formats, self.prompt_versions,
            # Each set's own budget first, then unrecorded, then overrides by value.
            self.chat_template, ("task", "unknown", "gen_kwargs").index(self.budget[0]), self.budget_overrides,
            self.thinking_allowance, self.scoring_rules,
        )

    @property
    def budget_overrides(self) -> tuple[int, ...]:
        """The global max_gen_toks value(s) the run used, if any."""
        return tuple(self.budget[self.budget.index("gen_kwargs") + 1 :]) if "gen_kwargs" in self.budget else ()

    def mismatches_published(self, *, budget_cut: bool) -> list[str]:
        """Why numbers of this variant cannot be set against the published ones (zero-shot, each
        set in its default form, each set's own budget); an empty list when they can."""
        reasons = []
        if self.shots != (0,):
            reasons.append(f"{_shots_text(self.shots)} (the published numbers are zero-shot)")
        for key, value in self.set_forms:
            spec = REGISTRY[key]
            reasons.append(f"{spec.display_name} {_form_name(key, value)} (the published numbers are "
                           f"on its default form, {spec.variant_option}={spec.variant_value})")
        if budget_cut:
            reasons.append("budget cut (the published numbers had each set's full answer length)")
        return reasons


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

    @property
    def skipped_sets(self) -> set[str]:
        return set(self.skipped)

    @property
    def partial_kind(self) -> str | None:
        """A run is partial as a whole when any of its sets is: a `--limit` run that happened to
        cover a small set completely is still a limited run, and must not leak that set into the
        model's full column. Kinds combine ("demos+limit"), except that a run on the samples is
        simply "samples"."""
        kinds = {kind for result in self.tasks.values() if (kind := result.partial_kind)}
        if "samples" in kinds:
            return "samples"
        return "+".join(sorted(kinds)) or None

    @property
    def variant(self) -> RunVariant:
        results = list(self.tasks.values())
        generative = [r for r in results if r.prompt_format is not None]
        if any(r.budget_cut is None for r in generative):
            budget: tuple[Any, ...] = ("unknown",)
            if self.gen_kwargs_max_gen_toks is not None:
                budget = ("unknown", "gen_kwargs", self.gen_kwargs_max_gen_toks)
        elif any(r.budget_overridden for r in generative):
            budget = ("gen_kwargs", *sorted({r.budget_effective or 0 for r in generative if r.budget_overridden}))
        else:
            budget = ("task",)
        return RunVariant(
            shots=tuple(sorted({r.n_shot or 0 for r in results})) or (0,),
            set_forms=tuple(sorted(
                (r.key, r.variant_value) for r in results
                if r.variant_value is not None and r.variant_value != REGISTRY[r.key].variant_value
            )),
            prompt_formats=tuple(sorted({r.prompt_format for r in generative if r.prompt_format})),
            prompt_versions=tuple(sorted({_version_text(r.version) for r in results})),
            chat_template=self.chat_template,
            budget=budget,
            thinking_allowance=max((r.thinking_allowance for r in results), default=0),
            scoring_rules=tuple(sorted({str(v) for r in results if (v := r.provenance.get("scoring_rules_version")) is not None})),
        )

    @property
    def sort_time(self) -> float:
        """Newest-first ordering: the run's own date, else the file name's timestamp, else mtime."""
        if self.date is not None:
            return self.date.timestamp()
        if self.date_id:
            try:
                return datetime.strptime(self.date_id, "%Y-%m-%dT%H-%M-%S.%f").timestamp()
            except ValueError:
                pass
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0


def _version_text(version: str | None) -> str:
    """A prompt version as one form: lm-eval's `versions` says 1.0 where the metadata says 1."""
    if version is None:
        return "?"
    try:
        number = float(version)
    except ValueError:
        return version
    return str(int(number)) if number.is_integer() else version


def _shots_text(shots: Sequence[int]) -> str:
    return "/".join(str(k) for k in shots) + "-shot"


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
    runs = []
    for path in find_results_files(paths, warnings):
        run = read_results_file(path, warnings)
        if run is not None:
            runs.append(run)
    return Collection(runs, warnings)


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


def _args_text(model_args: Any) -> str:
    if isinstance(model_args, dict):
        return ",".join(f"{k}={v}" for k, v in model_args.items())
    return "" if model_args is None else str(model_args)


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


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def read_results_file(path: Path, warnings: list[str]) -> RunFile | None:
    """Parse one results file; None (with a warning naming the file) when it cannot be used."""
    where = display_path(path)
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

    run = _run_file(path, data)
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    model_args = config.get("model_args")
    limit = config.get("limit")
    if data.get("date") is not None and run.date is None:
        warnings.append(f"{where}: 'date' {data.get('date')!r} is not a time stamp; the file name's time is used instead")
    run_format = _same_format(_model_arg(model_args, "prompt_format") or ("chat_template" if run.chat_template else "plain"))

    results: dict[str, Any] = data["results"]
    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
    n_shots = data.get("n-shot") if isinstance(data.get("n-shot"), dict) else {}
    n_samples = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
    taiyi_names = [t for t in results if isinstance(t, str) and t.startswith("taiyi_")]
    known = [t for t in taiyi_names if t.removeprefix("taiyi_") in REGISTRY]
    for unknown in sorted(set(taiyi_names) - set(known)):
        warnings.append(f"{where}: task {unknown!r} is not one of the 13 sets; ignored")
    if not known:
        warnings.append(f"{where}: no result for any of the 13 taiyi_* sets; file skipped")
        return None
    for task in sorted(set(configs) - set(results)):
        if isinstance(task, str) and task.removeprefix("taiyi_") in REGISTRY:
            warnings.append(f"{where}: {task} is configured but has no entry in 'results'; cell left empty")

    legacy_reported = False
    for task in known:
        spec = REGISTRY[task.removeprefix("taiyi_")]
        entry = results[task]
        if not isinstance(entry, dict):
            warnings.append(f"{where}: results[{task!r}] is not a mapping; set skipped")
            continue
        metric_key, value, legacy = _headline(entry, spec, where, task, warnings)
        metrics = _other_metrics(entry, spec, metric_key)
        if legacy and not legacy_reported:
            run.legacy_layout = True
            legacy_reported = True
            warnings.append(
                f"{where}: older lm-eval layout (metric keys without the ',none' filter suffix); read {metric_key!r} for {task} and the like"
            )
        task_config = configs.get(task) if isinstance(configs.get(task), dict) else {}
        metadata = task_config.get("metadata") if isinstance(task_config.get("metadata"), dict) else {}
        counts = n_samples.get(task) if isinstance(n_samples.get(task), dict) else {}
        samples_path = samples_beside(path, task)
        version = metadata.get("prompt_version", versions.get(task, metadata.get("version")))
        n_shot = n_shots.get(task, task_config.get("num_fewshot"))
        shots = int(n_shot) if isinstance(n_shot, (int, float)) and not isinstance(n_shot, bool) else None
        budget = metadata.get("budget") if isinstance(metadata.get("budget"), dict) else {}
        discriminative = task_config.get("output_type") == "discriminative" or budget.get("source") == "none"
        eval_units, expected_units = _int_or_none(metadata.get("eval_units")), _int_or_none(metadata.get("expected_units"))
        completeness = _completeness(metadata, eval_units, expected_units)
        # Claimed counts the registry contradicts (-5 units, 9,999 HoC units "full"): refused or marked.
        data_source = _data_source(metadata, samples_path)
        checked = _checked_counts(spec, metadata, counts, completeness, data_source, where, task, warnings)
        if checked is None:
            continue
        if checked == completeness:  # else the check's own warning said why
            _warn_completeness(where, task, completeness, eval_units, expected_units, warnings)
        completeness = checked
        run.tasks[spec.key] = TaskResult(
            key=spec.key,
            value=value,
            metric_key=metric_key,
            version=None if version is None else str(version),
            n_shot=shots,
            data_source=data_source,
            limit=float(limit) if isinstance(limit, (int, float)) and not isinstance(limit, bool) else None,
            n_original=_int_or_none(counts.get("original")),
            n_effective=_int_or_none(counts.get("effective")),
            samples_path=samples_path,
            run=run,
            fewshot_source=_fewshot_source(metadata, shots),
            variant_value=_variant_value(spec, metadata),
            prompt_format=None if discriminative else _same_format(_str_or_none(metadata.get("prompt_format")) or run_format),
            budget_task=_int_or_none(budget.get("task")),
            budget_effective=_int_or_none(budget.get("effective")),
            budget_source=_str_or_none(budget.get("source")),
            budget_cut=bool(budget["cut"]) if isinstance(budget.get("cut"), bool) else (False if discriminative else None),
            thinking_allowance=_int_or_none(metadata.get("thinking_allowance")) or 0,
            eval_units=eval_units,
            expected_units=expected_units,
            completeness=completeness,
            provenance=dict(metadata["provenance"]) if isinstance(metadata.get("provenance"), dict) else {},
            metrics=metrics,
        )
    run.skipped = _skipped_sets(data.get(SKIPPED_SETS_KEY), run, where, warnings)
    return run


def _run_file(path: Path, data: dict[str, Any]) -> RunFile:
    """The run-level fields of a results file (model, backend, dates, versions, chat template)."""
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    model_args = config.get("model_args")
    model = (
        _str_or_none(data.get("model_name"))
        or _model_from_args(model_args)
        or _str_or_none(config.get("model_name"))
        # Last resort: the folder the user chose (results/runs/<model_slug>/...).
        or path.parent.name
    )
    name = path.name
    date_id = name[len("results_") : -len(".json")] if name.startswith("results_") and name.endswith(".json") else None
    return RunFile(
        path=path,
        model=model,
        backend=_str_or_none(data.get("model_source")) or _str_or_none(config.get("model")),
        model_args=_args_text(model_args),
        date=_parse_date(data.get("date")),
        date_id=date_id,
        lm_eval_version=_str_or_none(data.get("lm_eval_version")),
        transformers_version=_str_or_none(data.get("transformers_version")),
        git_hash=_str_or_none(data.get("git_hash")),
        model_revision=_str_or_none(config.get("model_revision")) or _str_or_none(config.get("model_sha")),
        # lm-eval records the template it applied (and its hash); null when none was.
        chat_template=data.get("chat_template") is not None or data.get("chat_template_sha") is not None,
        gen_kwargs_max_gen_toks=_int_or_none(_gen_kwargs(config.get("gen_kwargs")).get("max_gen_toks")),
    )


def _checked_counts(
    spec: DatasetSpec, metadata: dict[str, Any], counts: dict[str, Any], completeness: str, data_source: str,
    where: str, task: str, warnings: list[str],
) -> str | None:
    """The completeness to show for one set after checking the unit counts its file claims
    (`taiyi_bench.harness.results_io.claimed_counts_problem`); None when the set is refused (a warning says why)."""
    from taiyi_bench.harness.results_io import claimed_counts_problem

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


def _model_arg(model_args: Any, name: str) -> str | None:
    """One key of lm-eval's --model_args, recorded as a dict or as the `k=v,k=v` string."""
    if isinstance(model_args, dict):
        return _str_or_none(model_args.get(name))
    if isinstance(model_args, str):
        for item in model_args.split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip() == name:
                return _str_or_none(value.strip())
    return None


def _gen_kwargs(value: Any) -> dict[str, Any]:
    """lm-eval's `config.gen_kwargs`: a dict, or the `k=v,k=v` string given on the command line."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        pairs = (item.partition("=") for item in value.split(","))
        out: dict[str, Any] = {}
        for key, sep, raw in pairs:
            if sep:
                try:
                    out[key.strip()] = json.loads(raw.strip())
                except json.JSONDecodeError:
                    out[key.strip()] = raw.strip()
        return out
    return {}


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
    variant = metadata.get("variant") if isinstance(metadata.get("variant"), dict) else {}
    for raw in (variant.get(spec.variant_option), metadata.get(spec.variant_option)):
        if isinstance(raw, str) and raw.strip().isdigit():
            raw = int(raw)
        if _int_or_none(raw) is not None:
            return int(raw)
    return spec.variant_value


def _form_name(key: str, value: Any, *, short: bool = False) -> str:
    """How a set's non-default form is named: the registry Variant's name ("5 options") or its
    header label ("MCMLE 5-opt"); `option=value` for a value the registry does not know."""
    spec = REGISTRY[key]
    variant = spec.variants.get(value)
    if variant is None:
        return f"{spec.variant_option}={value}"
    return variant.label if short else variant.name


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


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _headline(
    entry: dict[str, Any], spec: DatasetSpec, where: str, task: str, warnings: list[str]
) -> tuple[str | None, float | None, bool]:
    """(key read, value in percent, read from the older layout?) for one task entry."""
    metric = HEADLINE_METRIC[spec.metric]
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


# --- from runs to columns -------------------------------------------------------------------


@dataclass
class RunColumn:
    """A run column and the task results it was built from (for intervals and paired tests)."""

    column: Column
    results: dict[str, TaskResult]
    model: str = ""
    kind: str = "full"  # "full" or the partial kind
    variant: RunVariant = field(default_factory=RunVariant)

    @property
    def budget_cut(self) -> bool:
        return any(result.budget_cut for result in self.results.values())

    def mismatches_published(self) -> list[str]:
        return self.variant.mismatches_published(budget_cut=self.budget_cut)


def _short_model(model: str) -> str:
    # Local checkpoints are long absolute paths; hub ids ("org/name") are kept whole.
    if model.startswith(("/", "./", "../", "~")) or "\\" in model:
        path = Path(model)
        # A fine-tuning run's adapter (`<run>/stage2/adapter`, finetune/README.md) is named by
        # its run: "adapter" alone would say nothing.
        if path.name in ("adapter", "merged") and path.parent.name.startswith("stage"):
            return f"{path.parent.parent.name} ({path.parent.name} {path.name})"
        return path.name or model
    return model


GroupKey = tuple[str, str, RunVariant]


def _column_key(result: TaskResult) -> GroupKey:
    return (result.run.model, result.run.partial_kind or "full", result.run.variant)


# Variant parts that get a label only when a model's columns differ in them (the rest always do
# when not the default): a column label names what sets it apart, the provenance says the rest.
_CONTEXTUAL_PARTS = ("format", "version", "budget", "scoring")


def _variant_parts(variant: RunVariant) -> dict[str, Any]:
    return {"format": (variant.prompt_formats, variant.chat_template), "version": variant.prompt_versions,
            "budget": variant.budget, "scoring": variant.scoring_rules}


def _label_suffixes(variant: RunVariant, *, budget_cut: bool, varies: set[str]) -> list[str]:
    """Short variant labels for a column header, e.g. ["1-shot", "MCMLE 5-opt", "eod", "budget cut"]."""
    parts: list[str] = []
    if variant.shots != (0,):
        parts.append(_shots_text(variant.shots))
    parts.extend(_form_name(key, value, short=True) for key, value in variant.set_forms)
    for name in variant.prompt_formats:
        if name not in DEFAULT_PROMPT_FORMATS or "format" in varies:
            parts.append(name.replace("_", " "))
    if variant.chat_template and variant.prompt_formats and "chat_template" not in variant.prompt_formats:
        parts.append("+ chat template")
    if "version" in varies:
        parts.append("prompt v" + "/".join(variant.prompt_versions))
    overrides = "/".join(str(v) for v in variant.budget_overrides)
    if budget_cut:
        parts.append(f"budget cut to {overrides}" if "override" in varies and overrides else "budget cut")
    elif overrides:
        parts.append(f"max_gen_toks {overrides}")
    elif variant.budget == ("unknown",) and "budget" in varies:
        parts.append("budget not recorded")
    if variant.thinking_allowance:
        parts.append(f"+{variant.thinking_allowance} thinking")
    if "scoring" in varies:
        parts.append("scoring rules v" + "/".join(variant.scoring_rules) if variant.scoring_rules else "scoring rules not recorded")
    return parts


def _variant_id(variant: RunVariant) -> str:
    return ";".join([
        _shots_text(variant.shots), "forms=" + ",".join(f"{k}:{v}" for k, v in variant.set_forms), "format=" + "/".join(variant.prompt_formats),
        f"chat={int(variant.chat_template)}", "prompt=" + "/".join(variant.prompt_versions),
        "budget=" + "/".join(str(b) for b in variant.budget), f"thinking={variant.thinking_allowance}",
        "scoring=" + "/".join(variant.scoring_rules),
    ])


def build_run_columns(
    collection: Collection,
    *,
    include_partial: bool = False,
    include_budget_cut: bool = False,
    include_incomplete: bool = False,
    warnings: list[str] | None = None,
    partial_shown_under: Sequence[str | os.PathLike] = (),
) -> list[RunColumn]:
    """One column per (model, full/partial kind, variant); per set the newest result wins.
    Partial runs below a folder of `partial_shown_under` (the reference slices) are always shown.

    Partial results (bundled samples, demonstrations from the samples, or a limit that dropped
    units) are left out unless `include_partial`; then they get their own marked columns, never
    merged into a full run's. Cells whose generation budget was cut are marked and left out of
    the averages unless `include_budget_cut`; so are cells read from data that is not the official
    split ("incomplete", "modified data") unless `include_incomplete`. Sets the runner skipped are
    marked, never zero.
    """
    sink = collection.warnings if warnings is None else warnings
    groups: dict[GroupKey, dict[str, list[TaskResult]]] = {}
    group_runs: dict[GroupKey, dict[Path, RunFile]] = {}
    skipped_partial: dict[Path, str] = {}
    for run in collection.runs:
        shown = any(Path(run.path).resolve().is_relative_to(Path(d).resolve()) for d in partial_shown_under)
        if run.partial_kind and not include_partial and not shown:
            skipped_partial.setdefault(run.path, _partial_reason(list(run.tasks.values())))
            continue
        for result in run.tasks.values():
            key = _column_key(result)
            groups.setdefault(key, {}).setdefault(result.key, []).append(result)
            group_runs.setdefault(key, {})[run.path] = run
    for path, reason in skipped_partial.items():
        sink.append(
            f"{display_path(path)}: partial run ({reason}); left out of the leaderboard (pass --include-partial to show it, marked)"
        )

    chosen_by_group = _newest_per_set(groups, sink)

    # Which contextual parts differ among each model's columns (those get labels).
    varies: dict[str, set[str]] = {}
    for model in {k[0] for k in groups}:
        parts = [_variant_parts(k[2]) for k in groups if k[0] == model]
        varies[model] = {name for name in _CONTEXTUAL_PARTS if len({repr(p[name]) for p in parts}) > 1}
        # Files from before the version was recorded differ in that alone: labelled only when two
        # recorded versions differ (their other labels, such as "budget not recorded", tell them apart).
        if len({p["scoring"] for p in parts if p["scoring"]}) < 2:
            varies[model].discard("scoring")
        if len({k[2].budget_overrides for k in groups if k[0] == model and k[2].budget_overrides}) > 1:
            varies[model].add("override")  # two overrides of one model: the labels say which

    columns: list[RunColumn] = []
    # Columns in order of their shown name (a local path sorts by its folder name, not by "/").
    ordered_groups = sorted(groups, key=lambda k: (_short_model(k[0]).lower(), k[0], k[1] != "full", k[1], k[2].sort_key()))
    for group_key in ordered_groups:
        model, kind, variant = group_key
        chosen = chosen_by_group[group_key]
        budget_cut = any(r.budget_cut for r in chosen.values())
        suffixes = _label_suffixes(variant, budget_cut=budget_cut, varies=varies[model])
        header = _short_model(model) + (f" ({', '.join(suffixes)})" if suffixes else "")
        partial = _partial_reason(list(chosen.values())) if kind != "full" else None
        cells: dict[str, Cell] = {}
        rule_cells: dict[tuple[str, str], Cell] = {}
        for key, result in chosen.items():
            cut = bool(result.budget_cut)
            flags = ["budget cut"] if cut else []
            if result.data_problem:
                flags.append(result.data_problem)
            counted = (include_budget_cut or not cut) and (include_incomplete or not result.data_problem)
            cells[key] = Cell(result.value, flag=", ".join(flags) or None, in_averages=counted,
                              rule=headline_rule(key))
            rule_cells.update(_rule_cells(result, ", ".join(flags) or None, counted))
        skipped: dict[str, str] = {}
        for run in group_runs[group_key].values():
            for key, reason in run.skipped.items():
                if key not in chosen:
                    skipped.setdefault(key, reason)
                    cells[key] = Cell(None, flag="skipped", rule=headline_rule(key))
        provenance = _provenance(model, chosen, skipped)
        provenance += _exclusion_notes(chosen, budget_cut, include_budget_cut, include_incomplete)
        column = Column(
            key=f"run:{model}:{kind}:{_variant_id(variant)}",
            header=header,
            kind="run",
            cells=cells,
            provenance=provenance,
            partial=partial,
            rule_cells=rule_cells,
        )
        missing = [REGISTRY[k].task_name for k in PAPER_ORDER if k not in skipped and (chosen.get(k) is None or chosen[k].value is None)]
        if missing:
            paths = sorted({display_path(r.run.path) for r in chosen.values()})
            # A column gathered from one file per set names their folder, not a wall of paths.
            files = ", ".join(paths) if len(paths) <= 2 else f"{len(paths)} results files under {os.path.commonpath(paths)}"
            sink.append(
                f"{files}: {column.display_header} has no usable result for {len(missing)} of {len(PAPER_ORDER)} sets "
                f"({', '.join(missing)}); those cells and their averages are left empty"
            )
        columns.append(RunColumn(column, chosen, model=model, kind=kind, variant=variant))
    _disambiguate_headers(columns)
    return columns


def _rule_cells(result: TaskResult, flag: str | None, counted: bool) -> dict[tuple[str, str], Cell]:
    """The run's value by each rule of the set other than the headline's, (set, rule) -> Cell,
    flagged as the headline cell is; a metric the file lacks gives a cell that says so."""
    from taiyi_bench.harness.scoring import RULES, metric_for_rule

    spec = REGISTRY[result.key]
    own = headline_rule(result.key)
    out: dict[tuple[str, str], Cell] = {}
    for rule in RULES:
        name = metric_for_rule(spec, rule)
        if name is None or rule == own:
            continue
        value = result.metrics.get(name)
        out[(result.key, rule)] = Cell(value, flag=flag if value is not None else NOT_IN_FILE, in_averages=counted, rule=rule)
    return out


def _newest_per_set(groups: dict[GroupKey, dict[str, list[TaskResult]]], sink: list[str]) -> dict[GroupKey, dict[str, TaskResult]]:
    """Per column and set the newest result; each older one of the same variant is named as a duplicate."""
    chosen_by_group: dict[GroupKey, dict[str, TaskResult]] = {}
    for group_key, per_set in groups.items():
        model = group_key[0]
        chosen: dict[str, TaskResult] = {}
        superseded: dict[tuple[Path, Path], list[str]] = {}
        for key, results in per_set.items():
            ordered = sorted(results, key=lambda r: r.run.sort_time, reverse=True)
            chosen[key] = ordered[0]
            for older in ordered[1:]:
                superseded.setdefault((older.run.path, ordered[0].run.path), []).append(key)
        for (old, new), keys in superseded.items():
            names = ", ".join(REGISTRY[k].task_name for k in sorted(keys, key=PAPER_ORDER.index))
            sink.append(
                f"{display_path(old)}: duplicate run of {model} ({names}, same variant); kept the newest, {display_path(new)}"
            )
        chosen_by_group[group_key] = chosen

    return chosen_by_group


def _exclusion_notes(
    chosen: dict[str, TaskResult], budget_cut: bool, include_budget_cut: bool, include_incomplete: bool
) -> list[str]:
    """Why some cells of a column are (or, when asked, are not) left out of its averages."""
    notes = []
    data_problems = sorted({r.data_problem for r in chosen.values() if r.data_problem})
    if data_problems:
        notes.append(
            f"Cells marked ({') or ('.join(data_problems)}) were read from data files that are not the official split "
            "(another unit count, or another checksum); "
            + ("they are counted in the averages (--include-incomplete)." if include_incomplete
               else "averages over them are left empty (--include-incomplete counts them).")
        )
    if budget_cut:
        notes.append(
            "Cells marked (budget cut) were generated with less than their set's own budget; "
            + ("they are counted in the averages (--include-budget-cut)." if include_budget_cut
               else "averages over them are left empty (--include-budget-cut counts them).")
        )
    return notes


def _disambiguate_headers(columns: Sequence[RunColumn]) -> None:
    """Two models with the same short name (local folders `a/model`, `b/model`) show in full;
    whatever still collides gets a number, so no two columns ever look alike."""
    def collisions() -> list[RunColumn]:
        headers = [rc.column.display_header for rc in columns]
        return [rc for rc in columns if headers.count(rc.column.display_header) > 1]

    for rc in collisions():
        short = _short_model(rc.model)
        if short != rc.model:
            rc.column.header = rc.model + rc.column.header[len(short):]
    seen: dict[str, int] = {}
    for rc in collisions():
        seen[rc.column.display_header] = seen.get(rc.column.display_header, 0) + 1
        if seen[rc.column.display_header] > 1:
            rc.column.header += f" #{seen[rc.column.display_header]}"


def _partial_reason(results: Sequence[TaskResult]) -> str:
    """The marker of a partial column: "samples", "demos from samples", "slice of N" (the first N
    units, lm-eval's --limit N; "slice of 10%" for --limit 0.1) or "subset" (fewer units without a recorded limit); a limited run with sample
    demonstrations carries both."""
    kinds = {r.partial_kind for r in results} | {r.run.partial_kind for r in results}
    if "samples" in kinds:
        return "samples"
    reasons = []
    if any(kind and "demos" in kind for kind in kinds):
        reasons.append("demos from samples")
    if any(kind and "limit" in kind for kind in kinds):
        limits = sorted({r.limit for r in results if r.limit is not None})
        # "subset": fewer units than the set has, without a recorded limit (lm-eval --samples).
        reasons.append("slice of " + "/".join(_limit_text(v) for v in limits) if limits else "subset")
    return ", ".join(reasons) or "subset"


def _limit_text(limit: float) -> str:
    # lm-eval reads a --limit below 1 as a fraction of the set.
    return f"{limit * 100:g}%" if limit < 1 else f"{limit:g}"


def _fmt_date(date: datetime | None, date_id: str | None) -> str:
    if date is not None:
        return date.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return date_id or "unknown date"


def _provenance(model: str, chosen: dict[str, TaskResult], skipped: dict[str, str] | None = None) -> list[str]:
    lines: list[str] = []
    by_run: dict[Path, list[TaskResult]] = {}
    for key in PAPER_ORDER:
        if key in chosen:
            by_run.setdefault(chosen[key].run.path, []).append(chosen[key])
    lines.append(f"Run of {model}.")
    for results in by_run.values():
        run = results[0].run
        sets = "all sets" if len(results) == len(PAPER_ORDER) else ", ".join(REGISTRY[r.key].display_name for r in results)
        parts = [
            f"date {_fmt_date(run.date, run.date_id)}",
            f"lm-eval {run.lm_eval_version or 'version not recorded'}",
        ]
        if run.transformers_version:
            parts.append(f"transformers {run.transformers_version}")
        if run.git_hash:
            parts.append(f"git {run.git_hash}")
        if run.backend:
            parts.append(f"backend {run.backend}")
        if run.model_args:
            args = run.model_args if len(run.model_args) <= 160 else run.model_args[:157] + "..."
            parts.append(f"model_args {args}")
        if run.model_revision:
            parts.append(f"revision {run.model_revision}")
        parts.append(_scorer_text(results))
        formats = sorted({r.prompt_format for r in results if r.prompt_format})
        if formats:
            parts.append("prompt format " + "/".join(formats) + (" (chat template applied)" if run.chat_template else ""))
        versions = sorted({r.version or "?" for r in results})
        parts.append("prompt version " + "/".join(versions))
        shots = sorted({r.n_shot or 0 for r in results})
        demos = sorted({r.fewshot_source for r in results if r.fewshot_source})
        demo_text = {"data": "demonstrations from the train split of the data", "samples": "demonstrations from the BUNDLED SAMPLES, not official data"}
        parts.append(_shots_text(shots) + "".join(f", {demo_text[d]}" for d in demos))
        parts.extend(f"{REGISTRY[r.key].display_name} {_form_name(r.key, r.variant_value)}"
                     for r in results if r.variant_value is not None)
        sources = sorted({r.data_source for r in results})
        data_text = {"data": "official data", "samples": "BUNDLED SAMPLES, not the test sets", "unknown": "data source not recorded"}
        not_official = [r for r in results if r.data_problem]
        if not_official:
            data_text["data"] = "data directory, NOT the official split for " + ", ".join(
                f"{REGISTRY[r.key].display_name} ({r.data_problem}"
                + (f": {r.eval_units} of {r.expected_units} units" if r.data_problem == "incomplete"
                   and None not in (r.eval_units, r.expected_units) else "") + ")"
                for r in not_official
            )
        parts.append("data: " + ", ".join(data_text[s] for s in sources))
        parts.append(_budget_text(run, results))
        limited = [r for r in results if r.limited]
        if limited:
            parts.append("LIMITED: " + ", ".join(f"{r.task} {r.n_effective}/{r.n_original}" for r in limited))
        elif run.tasks and any(r.limit is not None for r in results):
            parts.append("limit set but no units dropped")
        else:
            parts.append("no limit")
        files = _data_files_text(results)
        if files:
            parts.append(files)
        if run.legacy_layout:
            parts.append("older lm-eval layout")
        lines.append(f"{display_path(run.path)} ({sets}): " + "; ".join(parts) + ".")
    if skipped:
        listed = ", ".join(
            REGISTRY[k].display_name + (f" ({skipped[k]})" if skipped[k] else "") for k in PAPER_ORDER if k in skipped
        )
        lines.append(f"Skipped when run (shown as missing, not as zero): {listed}.")
    return lines


def _scorer_text(results: Sequence[TaskResult]) -> str:
    """Which taiyi-bench scored the run: version, commit, scoring rules version."""
    seen: list[str] = []
    for result in results:
        prov = result.provenance
        if not prov:
            continue
        text = f"taiyi-bench {prov.get('taiyi_bench_version') or 'version not recorded'}"
        commit = prov.get("git_commit")
        if commit:
            text += f" (commit {str(commit)[:12]}{', uncommitted changes' if prov.get('git_dirty') else ''})"
        if prov.get("scoring_rules_version") is not None:
            text += f", scoring rules v{prov['scoring_rules_version']}"
        if text not in seen:
            seen.append(text)
    return " / ".join(seen) if seen else "taiyi-bench version and scoring rules not recorded"


def _budget_text(run: RunFile, results: Sequence[TaskResult]) -> str:
    generative = [r for r in results if r.prompt_format is not None]
    if not generative:
        return "no generation budget (discriminative model)"
    thinking = max((r.thinking_allowance for r in generative), default=0)
    allowance = f", plus a thinking allowance of {thinking} tokens" if thinking else ""
    if any(r.budget_cut is None for r in generative):
        if run.gen_kwargs_max_gen_toks is not None:
            return f"generation budget not recorded per set; gen_kwargs max_gen_toks={run.gen_kwargs_max_gen_toks} applied to every set"
        return "generation budget not recorded"
    cut = [r for r in generative if r.budget_cut]
    if cut:
        listed = ", ".join(f"{REGISTRY[r.key].display_name} {r.budget_effective} of {r.budget_task}" for r in cut)
        return f"BUDGET CUT (max_gen_toks used of the set's own): {listed}{allowance}"
    overridden = sorted({r.budget_effective for r in generative if r.budget_overridden and r.budget_effective is not None})
    if overridden:
        return "max_gen_toks " + "/".join(map(str, overridden)) + f" on every set (no set's own budget cut){allowance}"
    return f"each set's own generation budget{allowance}"


def _data_files_text(results: Sequence[TaskResult]) -> str:
    """The data files read and the first 12 hex digits of their sha256."""
    files: dict[str, str] = {}
    for result in results:
        recorded = result.provenance.get("data_files")
        if isinstance(recorded, dict):
            for name, digest in recorded.items():
                files[str(name)] = str(digest)[:12] if digest else "unreadable"
    if not files:
        return ""
    return "data files (sha256): " + ", ".join(f"{name} {digest}" for name, digest in sorted(files.items()))


def _same_format(name: str) -> str:
    """One name per wire format (`taiyi1` is `eod`), so aliases never split a model's column;
    an unknown name from some other tool is kept as written."""
    from taiyi_bench.harness.prompt_formats import ALIASES

    return ALIASES.get(name, name)
