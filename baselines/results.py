"""Score a discriminative baseline's predictions with taiyi_bench.harness.scoring and write them in lm-eval's
results layout, so that the leaderboard reads BERT and LLM runs alike.

Mirrors what lm-eval 0.4.13 writes (`evaluator.simple_evaluate`, `EvaluationTracker.
save_results_aggregated` / `save_results_samples`):

    results/runs/<model_slug>/<date_id>/results_<date_id>.json
    results/runs/<model_slug>/<date_id>/samples_<task>_<date_id>.jsonl

with `results[task]["<metric>,none"]`, `configs[task]["metadata"]` (data source and the shared
provenance keys of `taiyi_bench.harness.provenance.task_metadata`, as the taiyi_* tasks write them), `n-samples`,
`config.model` / `model_name` / `limit`, `date`, and per unit `doc_id`, `doc` (the same doc
lm-eval's taiyi_* tasks log), `target`, `resps` (the prediction rendered in Taiyi's answer
format), the per-unit metric values of `taiyi_bench.harness.scoring.unit_metric_values` and hashes. The
layout and the atomic writes are `taiyi_bench.harness.results_io`'s.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taiyi_bench.harness import provenance, scoring
from taiyi_bench.harness.errors import DataNotFoundError
from taiyi_bench.harness.loading import split_files
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.prompts import render_answer
from taiyi_bench.harness.records import Entity, Example, Prediction, Relation
from taiyi_bench.harness.registry import DatasetSpec
from taiyi_bench.harness.results_io import model_slug, new_date_id, results_file, write_run_files
from taiyi_bench.harness.verdicts import (
    ANALYSIS_AGGREGATIONS,
    ANALYSIS_HIGHER_IS_BETTER,
    PER_TYPE_KEY,
    analysis_metric_names,
    per_type_counts,
    per_type_table,
    unit_analysis_values,
)

MODEL_SOURCE = "taiyi-bert"  # plays the part of lm-eval's `--model hf`
FILTER = "none"
# Metrics lm-eval aggregates with its built-in `mean` (the task YAMLs say so) get its standard
# error; the custom micro-F1 aggregations get "N/A", as lm-eval writes for them.


def lm_eval_doc(example: Example, source: str) -> dict[str, Any]:
    """The doc exactly as the taiyi_* lm-eval tasks build it (taiyi_bench.harness.lmeval.tasks), so that
    samples of BERT and LLM runs pair up by doc."""
    return {
        "id": example.id,
        "dataset": example.dataset,
        "split": example.split,
        "data_source": source,
        "example": json.dumps(example.to_dict(), ensure_ascii=False),
    }


def render_prediction(spec: DatasetSpec, example: Example, prediction: Prediction) -> str:
    """The prediction in Taiyi's answer format (what an LLM would have had to write to score
    the same); `taiyi_bench.harness.parsers.parse_output` reads it back to the same Prediction."""
    shadow = Example(id=example.id, dataset=example.dataset, split=example.split, options=dict(example.options))
    if spec.task_type == "ner":
        shadow.entities = [Entity(t, m) for t, m in sorted(prediction.entities)]
    elif spec.task_type == "re":
        shadow.relations = [Relation(h, r, t) for h, r, t in sorted(prediction.relations)]
    elif spec.task_type == "tc":
        shadow.labels = sorted(prediction.labels)
    else:
        shadow.answer = prediction.choice or ""
    return render_answer(spec, shadow)


def _hash(text: str) -> str:
    from lm_eval.utils import hash_string

    return hash_string(text)


def _mean_stderr(values: Sequence[float]) -> float | str:
    n = len(values)
    if n < 2:
        return "N/A"
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def _files_read(spec: DatasetSpec, split: str, data_source: str, data_dir: str | None) -> list[tuple[Path, Path]]:
    # For callers that did not say which files they read: the files of the split under the
    # data directory the metadata names (the samples for a samples run).
    root = SAMPLES_DIR if data_source == "samples" or not data_dir else Path(data_dir)
    try:
        return [(path, root) for path in split_files(spec, split, root)]
    except (DataNotFoundError, KeyError):
        return []


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("transformers", "lm_eval", "torch"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def write_run(
    spec: DatasetSpec,
    examples: Sequence[Example],
    predictions: Sequence[Prediction],
    *,
    model_name: str,
    model_args: dict[str, Any],
    data_source: str,
    results_dir: str | os.PathLike,
    n_original: int,
    split: str,
    limit: float | None = None,
    inputs: Sequence[str] | None = None,
    extra_metrics: dict[str, float] | None = None,
    extra_unit_values: Sequence[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    baseline_info: dict[str, Any] | None = None,
    start_time: float | None = None,
    data_files: Sequence[os.PathLike | str] | None = None,
    data_root: os.PathLike | str | None = None,
) -> Path:
    """Score `predictions` against `examples` (taiyi_bench.harness.scoring) and write the results and samples
    files; returns the results file's path.

    `extra_metrics` (e.g. `seqeval_f1`) go into `results[task]` next to the scorer's metrics
    under their own names; they never replace one. `data_files` (under `data_root`) are the
    evaluation files read, checksummed into the provenance (by default the split's files).
    """
    if len(examples) != len(predictions):
        raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
    started = start_time if start_time is not None else time.time()
    task = spec.task_name
    names = scoring.metric_names(spec)
    unit_scores = [scoring.score_unit(spec, ex, pred) for ex, pred in zip(examples, predictions, strict=True)]
    unit_values = [scoring.unit_metric_values(spec, score) for score in unit_scores]
    # The same verdicts and grounding lm-eval's taiyi_* tasks log (taiyi_bench.harness.verdicts).
    analysis = [
        unit_analysis_values(spec, ex, pred, score) for ex, pred, score in zip(examples, predictions, unit_scores, strict=True)
    ]
    analysis_names = analysis_metric_names(spec)

    entry = _metric_entry(spec, names, unit_values, analysis_names, analysis, extra_metrics)

    date_id = new_date_id()
    results_path = results_file(Path(results_dir) / model_slug(model_name) / date_id, date_id)

    sample_lines = [
        _sample_record(
            spec, index, example, prediction, score, unit_values[index], analysis[index],
            extra_unit_values[index] if extra_unit_values else {}, data_source=data_source,
            prompt=inputs[index] if inputs is not None else example.text or example.question,
            metric_names=[*names, *analysis_names],
        )
        for index, (example, prediction, score) in enumerate(zip(examples, predictions, unit_scores, strict=True))
    ]
    hashes = [line["doc_hash"] + line["prompt_hash"] + line["target_hash"] for line in sample_lines]

    if data_files is not None:
        files = [(Path(path), Path(data_root) if data_root is not None else Path(path).parent) for path in data_files]
    else:
        files = _files_read(spec, split, data_source, (metadata or {}).get("data_dir"))
    task_metadata = _task_metadata(spec, split, data_source, n_original, len(examples), files, metadata)
    metric_list = [{"metric": name, "higher_is_better": name != "parse_fail"} for name in names]
    metric_list += [{"metric": name, "higher_is_better": ANALYSIS_HIGHER_IS_BETTER[name]} for name in analysis_names]
    metric_list += [{"metric": name, "higher_is_better": True} for name in (extra_metrics or {})]
    finished = time.time()
    results: dict[str, Any] = {
        "results": {task: entry},
        "group_subtasks": {task: []},
        "configs": {
            task: {
                "task": task,
                "dataset_kwargs": {"taiyi_set": spec.key},
                "test_split": split,
                "output_type": "discriminative",
                "num_fewshot": 0,
                "metric_list": metric_list,
                "metadata": task_metadata,
            }
        },
        "versions": {task: 1},
        "n-shot": {task: 0},
        "higher_is_better": {task: {m["metric"]: m["higher_is_better"] for m in metric_list}},
        "n-samples": {task: {"original": n_original, "effective": len(examples)}},
        "config": {
            "model": MODEL_SOURCE, "model_args": model_args, "batch_size": None, "batch_sizes": [], "device": None,
            "use_cache": None, "limit": limit, "bootstrap_iters": 0, "gen_kwargs": None, **(config or {}),
        },
        "date": started,
        **_environment(),
        "task_hashes": {task: _hash("".join(hashes))},
        "model_source": MODEL_SOURCE,
        "model_name": model_name,
        "model_name_sanitized": model_slug(model_name),
        "system_instruction": None, "system_instruction_sha": None, "fewshot_as_multiturn": False,
        "chat_template": None, "chat_template_sha": None,
        "start_time": started, "end_time": finished,
        "total_evaluation_time_seconds": str(finished - started),
        "taiyi_baseline": baseline_info or {},
        PER_TYPE_KEY: {task: per_type_table(per_type_counts(a["verdicts"] for a in analysis), spec)},
    }
    return write_run_files(results_path, results, {task: sample_lines})


def _metric_entry(
    spec: DatasetSpec,
    names: Sequence[str],
    unit_values: Sequence[dict[str, Any]],
    analysis_names: Sequence[str],
    analysis: Sequence[dict[str, Any]],
    extra_metrics: dict[str, float] | None,
) -> dict[str, Any]:
    """`results[task]` as lm-eval writes it: each metric aggregated, with its standard error."""
    task = spec.task_name
    entry: dict[str, Any] = {"name": task, "alias": task, "sample_len": len(unit_values)}
    for name in names:
        values = [u[name] for u in unit_values]
        aggregation = scoring.aggregation_of(spec, name)  # "score": the headline's
        entry[f"{name},{FILTER}"] = float(aggregation(values))
        entry[f"{name}_stderr,{FILTER}"] = _mean_stderr([float(v) for v in values]) if aggregation is scoring.mean else "N/A"
    for name in analysis_names:
        entry[f"{name},{FILTER}"] = ANALYSIS_AGGREGATIONS[name]([a[name] for a in analysis])
        entry[f"{name}_stderr,{FILTER}"] = "N/A"
    for name, value in (extra_metrics or {}).items():
        entry[f"{name},{FILTER}"] = float(value)
        entry[f"{name}_stderr,{FILTER}"] = "N/A"
    return entry


def _sample_record(
    spec: DatasetSpec,
    index: int,
    example: Example,
    prediction: Prediction,
    score: Any,
    values: dict[str, Any],
    analysis: dict[str, Any],
    extra: dict[str, Any],
    *,
    data_source: str,
    prompt: str,
    metric_names: Sequence[str],
) -> dict[str, Any]:
    """One samples line: lm-eval's fields, the per-unit metric values, verdicts and the prediction."""
    doc = lm_eval_doc(example, data_source)
    target = render_answer(spec, example)
    response = render_prediction(spec, example, prediction)
    sample = {
        "doc_id": index,
        "doc": doc,
        "target": target,
        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"model_source": MODEL_SOURCE}}},
        "resps": [[response]],
        "filtered_resps": [response],
        "filter": FILTER,
        "metrics": [*metric_names, *extra],
        "doc_hash": _hash(json.dumps(doc, indent=2, ensure_ascii=False)),
        "prompt_hash": _hash(prompt),
        "target_hash": _hash(str(target)),
    }
    sample.update(values)
    sample.update(analysis)
    sample.update(extra)
    sample["prediction"] = {
        "entities": sorted(prediction.entities), "relations": sorted(prediction.relations),
        "labels": sorted(prediction.labels), "choice": prediction.choice,
    }
    if prediction.spans is not None:  # a span model's own offsets: what the occurrence-level rule scored
        sample["prediction"]["spans"] = sorted(prediction.spans)
    sample["score_detail"] = score.detail
    return sample


def _environment() -> dict[str, Any]:
    """The environment fields lm-eval records (commit, platform, library versions)."""
    versions = _versions()
    return {
        "git_hash": provenance.git_commit(),
        "pretty_env_info": f"{platform.platform()}; python {platform.python_version()}; torch {versions['torch']}",
        "transformers_version": versions["transformers"],
        "lm_eval_version": versions["lm_eval"],
        "upper_git_hash": None,
    }


def _task_metadata(
    spec: DatasetSpec, split: str, data_source: str, n_original: int, n_evaluated: int,
    files: list[tuple[Path, Path]], metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    """The shared provenance keys, as lm-eval's taiyi_* tasks record them; a discriminative model
    generates nothing, so there is no budget and no few-shot pool."""
    return {
        "version": 1,
        **provenance.task_metadata(
            spec, split, data_source=data_source, eval_units=n_original, fewshot_source=None,
            files=files, budget=dict(provenance.NO_BUDGET), evaluated_units=n_evaluated,
        ),
        **(metadata or {}),
    }
