"""Collect run results: lm-eval's `results_*.json` files (and BERT baselines written in the same layout).

Layout written by `lm_eval ... --output_path results/runs/<model_slug> --log_samples` (0.4.13,
`EvaluationTracker.save_results_aggregated` / `save_results_samples`):

    results/runs/<model_slug>/<model_name_sanitized>/results_<date_id>.json
    results/runs/<model_slug>/<model_name_sanitized>/samples_<task>_<date_id>.jsonl

The collector walks folders recursively, so any depth works. Bad input never stops the
collection: every problem becomes a warning that names the file, and the rest still renders.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.leaderboard.table import Cell, Column
from harness.registry import PAPER_ORDER, REGISTRY, DatasetSpec

# Headline metric per registry metric: the key our tasks log (lm-eval appends ",<filter>").
HEADLINE_METRIC = {"f1": "micro_f1", "acc": "acc"}
# Keys accepted from older result files without the ",none" suffix, in order of preference.
LEGACY_KEYS = {"f1": ("micro_f1", "f1"), "acc": ("acc",)}
DEFAULT_FILTER = "none"
RESULTS_GLOB = "results_*.json"


@dataclass
class TaskResult:
    """One set's headline number in one results file, with what is needed to judge and redo it."""

    key: str  # registry key
    value: float | None  # percent
    metric_key: str | None  # the key read, e.g. "micro_f1,none"
    version: str | None  # prompt/task version
    n_shot: int | None
    data_source: str  # "data" | "samples" | "unknown"
    limit: float | None
    n_original: int | None
    n_effective: int | None
    samples_path: Path | None
    run: RunFile = field(repr=False)

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
    def partial_kind(self) -> str | None:
        """Why this is not a full official-data result: "samples", "limit", or None."""
        if self.data_source == "samples":
            return "samples"
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

    @property
    def partial_kind(self) -> str | None:
        """A run is partial as a whole when any of its sets is: a `--limit` run that happened to
        cover a small set completely is still a limited run, and must not leak that set into the
        model's full column."""
        kinds = {result.partial_kind for result in self.tasks.values()}
        if "samples" in kinds:
            return "samples"
        if "limit" in kinds:
            return "limit"
        return None

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


def find_result_files(paths: Iterable[str | os.PathLike], warnings: list[str]) -> list[Path]:
    """`results_*.json` files: the paths themselves if files, else found recursively below them."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            hits = sorted(p for p in path.rglob(RESULTS_GLOB) if p.is_file())
            if not hits:
                warnings.append(f"{display_path(path)}: no {RESULTS_GLOB} files found below this folder")
            found.extend(hits)
        else:
            warnings.append(f"{display_path(path)}: no such file or folder; skipped")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def collect_runs(paths: Iterable[str | os.PathLike]) -> Collection:
    """Read every results file under `paths`; unreadable files become warnings, not errors."""
    warnings: list[str] = []
    runs = []
    for path in find_result_files(paths, warnings):
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
    # lm-eval writes `date` as time.time() at the start of the run.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
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
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        warnings.append(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); file skipped")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        warnings.append(f"{where}: cannot be read ({exc}); file skipped")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        warnings.append(f"{where}: no 'results' mapping (not an lm-eval results file?); file skipped")
        return None

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
    limit = config.get("limit")
    run = RunFile(
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
    )

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
        if legacy and not legacy_reported:
            run.legacy_layout = True
            legacy_reported = True
            warnings.append(
                f"{where}: older lm-eval layout (metric keys without the ',none' filter suffix); read {metric_key!r} for {task} and the like"
            )
        task_config = configs.get(task) if isinstance(configs.get(task), dict) else {}
        metadata = task_config.get("metadata") if isinstance(task_config.get("metadata"), dict) else {}
        counts = n_samples.get(task) if isinstance(n_samples.get(task), dict) else {}
        samples_path = path.with_name(f"samples_{task}_{date_id}.jsonl") if date_id else None
        if samples_path is not None and not samples_path.is_file():
            samples_path = None
        version = versions.get(task, metadata.get("version"))
        n_shot = n_shots.get(task, task_config.get("num_fewshot"))
        run.tasks[spec.key] = TaskResult(
            key=spec.key,
            value=value,
            metric_key=metric_key,
            version=None if version is None else str(version),
            n_shot=int(n_shot) if isinstance(n_shot, (int, float)) and not isinstance(n_shot, bool) else None,
            data_source=_data_source(metadata, samples_path),
            limit=float(limit) if isinstance(limit, (int, float)) and not isinstance(limit, bool) else None,
            n_original=_int_or_none(counts.get("original")),
            n_effective=_int_or_none(counts.get("effective")),
            samples_path=samples_path,
            run=run,
        )
    return run


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


def _column_key(result: TaskResult) -> tuple[str, str, int]:
    return (result.run.model, result.run.partial_kind or "full", result.n_shot or 0)


def build_run_columns(
    collection: Collection,
    *,
    include_partial: bool = False,
    warnings: list[str] | None = None,
) -> list[RunColumn]:
    """One column per (model, full/samples/limited, n-shot); per set the newest result wins.

    Partial results (bundled samples, or a limit that dropped units) are left out unless
    `include_partial`; then they get their own marked columns, never merged into a full run's.
    """
    sink = collection.warnings if warnings is None else warnings
    groups: dict[tuple[str, str, int], dict[str, list[TaskResult]]] = {}
    skipped_partial: dict[Path, str] = {}
    for run in collection.runs:
        for result in run.tasks.values():
            if run.partial_kind and not include_partial:
                skipped_partial.setdefault(run.path, _partial_reason([result]))
                continue
            groups.setdefault(_column_key(result), {}).setdefault(result.key, []).append(result)
    for path, reason in skipped_partial.items():
        sink.append(
            f"{display_path(path)}: partial run ({reason}); left out of the leaderboard (pass --include-partial to show it, marked)"
        )

    columns: list[RunColumn] = []
    # Columns in order of their shown name (a local path sorts by its folder name, not by "/").
    ordered_groups = sorted(groups.items(), key=lambda item: (_short_model(item[0][0]).lower(), item[0][1], item[0][2]))
    for (model, kind, n_shot), per_set in ordered_groups:
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
                f"{display_path(old)}: duplicate run of {model} ({names}); kept the newest, {display_path(new)}"
            )
        header = _short_model(model) + (f" ({n_shot}-shot)" if n_shot else "")
        partial = _partial_reason(list(chosen.values())) if kind != "full" else None
        cells = {key: Cell(result.value) for key, result in chosen.items()}
        column = Column(
            key=f"run:{model}:{kind}:{n_shot}",
            header=header,
            kind="run",
            cells=cells,
            provenance=_provenance(model, chosen),
            partial=partial,
        )
        missing = [REGISTRY[k].task_name for k in PAPER_ORDER if chosen.get(k) is None or chosen[k].value is None]
        if missing:
            files = ", ".join(sorted({display_path(r.run.path) for r in chosen.values()}))
            sink.append(
                f"{files}: {column.display_header} has no usable result for {len(missing)} of {len(PAPER_ORDER)} sets "
                f"({', '.join(missing)}); those cells and their averages are left empty"
            )
        columns.append(RunColumn(column, chosen))
    headers = [rc.column.display_header for rc in columns]
    for rc in columns:
        if headers.count(rc.column.display_header) > 1:
            rc.column.header = f"{rc.column.header} ({rc.column.key.split(':')[-2]})"
    return columns


def _partial_reason(results: Sequence[TaskResult]) -> str:
    """The marker of a partial column: "samples", "limit=N" (lm-eval's --limit), or "subset"."""
    kinds = {r.run.partial_kind for r in results}
    if "samples" in kinds:
        return "samples"
    limits = sorted({r.limit for r in results if r.limit is not None})
    if limits:
        return "limit=" + "/".join(f"{v:g}" for v in limits)
    return "subset"  # fewer units than the set has, without a recorded limit (lm-eval --samples)


def _fmt_date(date: datetime | None, date_id: str | None) -> str:
    if date is not None:
        return date.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return date_id or "unknown date"


def _provenance(model: str, chosen: dict[str, TaskResult]) -> list[str]:
    lines: list[str] = []
    by_run: dict[Path, list[TaskResult]] = {}
    for key in PAPER_ORDER:
        if key in chosen:
            by_run.setdefault(chosen[key].run.path, []).append(chosen[key])
    lines.append(f"Run of {model}.")
    for results in by_run.values():
        run = results[0].run
        sets = "all 13 sets" if len(results) == len(PAPER_ORDER) else ", ".join(REGISTRY[r.key].display_name for r in results)
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
        versions = sorted({r.version or "?" for r in results})
        parts.append("prompt version " + "/".join(versions))
        shots = sorted({r.n_shot or 0 for r in results})
        parts.append("/".join(str(s) for s in shots) + "-shot")
        sources = sorted({r.data_source for r in results})
        data_text = {"data": "official data", "samples": "BUNDLED SAMPLES, not the test sets", "unknown": "data source not recorded"}
        parts.append("data: " + ", ".join(data_text[s] for s in sources))
        limited = [r for r in results if r.limited]
        if limited:
            parts.append("LIMITED: " + ", ".join(f"{r.task} {r.n_effective}/{r.n_original}" for r in limited))
        elif run.tasks and any(r.limit is not None for r in results):
            parts.append("limit set but no units dropped")
        else:
            parts.append("no limit")
        if run.legacy_layout:
            parts.append("older lm-eval layout")
        lines.append(f"{display_path(run.path)} ({sets}): " + "; ".join(parts) + ".")
    return lines
