"""A discriminative baseline's predictions, scored once (taiyi_bench.harness.scoring) and written in the
layout lm-eval 0.4.13 writes (`taiyi_bench.harness.results_io`), so that the leaderboard reads BERT and
LLM runs alike: `results[task]["<metric>,none"]`, `configs[task]["metadata"]` (the provenance keys the
taiyi_* tasks record), `n-samples`, `config`, `date`, and per unit the same `doc` the taiyi_* tasks log,
`target`, `resps` (the prediction in Taiyi's answer format), the per-unit metric values and hashes.
A span model's predicted spans can be kept beside the results without the samples
(`keep_predicted_spans`) and rescored from there (`read_predicted_spans`, `scored_run`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval.api.metrics import mean_stderr
from lm_eval.utils import hash_string

from taiyi_bench.harness import provenance, scoring
from taiyi_bench.harness.atomic_files import atomic_write_text
from taiyi_bench.harness.errors import DataNotFoundError
from taiyi_bench.harness.lmeval.cost import COST_KEY, discriminative_cost
from taiyi_bench.harness.loading import split_files
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.prompts import render_answer
from taiyi_bench.harness.records import Entity, Example, Prediction, Relation
from taiyi_bench.harness.registry import DatasetSpec
from taiyi_bench.harness.results_io import (
    PER_TYPE_KEY,
    date_id_of,
    iter_jsonl,
    model_slug,
    new_date_id,
    portable_results,
    record_example,
    results_file,
    samples_file,
    write_run_files,
)
from taiyi_bench.harness.scoring import UnitScore
from taiyi_bench.harness.verdicts import (
    ANALYSIS_AGGREGATIONS,
    ANALYSIS_HIGHER_IS_BETTER,
    analysis_metric_names,
    per_type_counts,
    per_type_table,
    unit_analysis_values,
)

MODEL_SOURCE = "taiyi-bert"  # plays the part of lm-eval's `--model hf`
FILTER = "none"


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


def score_units(spec: DatasetSpec, examples: Sequence[Example], predictions: Sequence[Prediction]) -> list[UnitScore]:
    """Each prediction scored against its example: the one scoring of a run."""
    return [scoring.score_unit(spec, ex, pred) for ex, pred in zip(examples, predictions, strict=True)]


@dataclass
class ScoredRun:
    """What a run's scoring puts in its files: the samples lines and, for the results file,
    `results[task]`, the metric list, the per-type table and lm-eval's `task_hashes` entry."""

    samples: list[dict[str, Any]]
    entry: dict[str, Any]
    metric_list: list[dict[str, Any]]
    per_type: dict[str, dict[str, float]]
    task_hash: str

    @property
    def higher_is_better(self) -> dict[str, bool | None]:
        return {m["metric"]: m["higher_is_better"] for m in self.metric_list}


def scored_run(
    spec: DatasetSpec, examples: Sequence[Example], predictions: Sequence[Prediction], *, data_source: str,
    unit_scores: Sequence[UnitScore] | None = None, inputs: Sequence[str] | None = None,
    extra_metrics: dict[str, float] | None = None, extra_unit_values: Sequence[dict[str, Any]] | None = None,
) -> ScoredRun:
    """`predictions` scored (`unit_scores`, else `score_units`) into what `write_run` writes, and
    what `taiyi rescore` writes into a run scored under older rules."""
    scores = unit_scores if unit_scores is not None else score_units(spec, examples, predictions)
    samples = _sample_records(spec, examples, predictions, scores, data_source, inputs, extra_unit_values)
    return ScoredRun(
        samples, _metric_entry(spec, samples, extra_metrics), _metric_list(spec, extra_metrics),
        per_type_table(per_type_counts(s["verdicts"] for s in samples), spec),
        hash_string("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples)),
    )


def _predicted_spans_file(samples: Path) -> Path:
    return samples.with_name(samples.name.replace("samples_", "predicted_spans_", 1))


def keep_predicted_spans(samples: Path) -> Path | None:
    """Beside a span model's samples file, `predicted_spans_<task>_<date>.jsonl`: each unit's doc id
    and predicted (type, start, end) spans, the part of a large samples file that the
    occurrence-level strict F1 and a rescore need (kept when the samples are not). None: no spans."""
    def refuse(number: int, why: str) -> None:
        raise ValueError(f"{samples}, line {number}: {why}")

    lines = []
    for number, row in iter_jsonl(samples, refuse):
        spans = (row.get("prediction") or {}).get("spans") if isinstance(row, dict) else None
        if spans is None:
            return None
        lines.append(json.dumps({"doc_id": row.get("doc_id", number - 1), "spans": spans}, ensure_ascii=False))
    target = _predicted_spans_file(samples)
    atomic_write_text(target, "\n".join(lines) + "\n")
    return target


def predicted_spans_beside(results_path: Path, task: str) -> Path | None:
    """The `keep_predicted_spans` file of `task` next to `results_path`, if there is one."""
    date_id = date_id_of(results_path)
    path = _predicted_spans_file(samples_file(results_path.parent, task, date_id)) if date_id else None
    return path if path is not None and path.is_file() else None


def _is_span(span: Any, text_length: int) -> bool:
    if not (isinstance(span, list) and len(span) == 3 and isinstance(span[0], str)):
        return False
    start, end = span[1:]
    return type(start) is int and type(end) is int and 0 <= start < end <= text_length


def read_predicted_spans(path: Path, examples: Sequence[Example]) -> list[Prediction]:
    """The span model's prediction of each of `examples` (the run's units, in order) from its kept
    spans, built as the model built it: each mention is the unit's text at its span. ValueError
    naming the file when it is not one record per unit, in order, of well-formed spans."""
    def refuse(number: int, why: str) -> None:
        raise ValueError(f"{path}, line {number}: {why}")

    predictions: list[Prediction] = []
    for number, row in iter_jsonl(path, refuse):
        index = len(predictions)
        if not (isinstance(row, dict) and row.get("doc_id") == index and isinstance(row.get("spans"), list)):
            refuse(number, f'expected {{"doc_id": {index}, "spans": [...]}}: units missing, repeated or out of order')
        if index >= len(examples):
            refuse(number, f"more units than the {len(examples)} the run scored")
        text, spans = examples[index].text, row["spans"]
        if not all(_is_span(span, len(text)) for span in spans):
            refuse(number, "a span is not [type, start, end] inside the unit's text")
        predictions.append(Prediction(entities={(t, text[start:end]) for t, start, end in spans},
                                      spans=frozenset((t, start, end) for t, start, end in spans)))
    if len(predictions) != len(examples):
        raise ValueError(f"{path}: {len(predictions)} unit(s), but the run scored {len(examples)}: "
                         "the file is truncated or from another run")
    return predictions


def write_run(
    spec: DatasetSpec, examples: Sequence[Example], predictions: Sequence[Prediction], *,
    model_name: str, model_args: dict[str, Any], data_source: str, results_dir: str | os.PathLike,
    n_original: int, split: str, limit: float | None = None, inputs: Sequence[str] | None = None,
    extra_metrics: dict[str, float] | None = None, extra_unit_values: Sequence[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
    baseline_info: dict[str, Any] | None = None, start_time: float | None = None,
    data_files: Sequence[os.PathLike | str] | None = None, data_root: os.PathLike | str | None = None,
    unit_scores: Sequence[UnitScore] | None = None,
) -> Path:
    """Write the results and samples files of `predictions`; returns the results file's path.

    `unit_scores` are the caller's `score_units` of them (scored here when not given).
    `extra_metrics` (e.g. `seqeval_f1`) go into `results[task]` beside the scorer's metrics, never
    replacing one. `data_files` (under `data_root`) are the evaluation files read, checksummed into
    the provenance (by default the split's files).
    """
    if len(examples) != len(predictions):
        raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
    started = start_time if start_time is not None else time.time()
    task = spec.task_name
    scored = scored_run(spec, examples, predictions, data_source=data_source, unit_scores=unit_scores, inputs=inputs,
                        extra_metrics=extra_metrics, extra_unit_values=extra_unit_values)
    files = _data_files(spec, split, data_source, metadata, data_files, data_root)
    finished = time.time()
    results: dict[str, Any] = {
        "results": {task: scored.entry},
        "group_subtasks": {task: []},
        "configs": {
            task: {
                "task": task, "dataset_kwargs": {"taiyi_set": spec.key}, "test_split": split,
                "output_type": "discriminative", "num_fewshot": 0, "metric_list": scored.metric_list,
                # A discriminative model generates nothing: no budget, no few-shot pool.
                "metadata": {
                    "version": 1,
                    **provenance.task_metadata(
                        spec, split, data_source=data_source, eval_units=n_original, fewshot_source=None,
                        files=files, budget=dict(provenance.NO_BUDGET), evaluated_units=len(examples),
                    ),
                    **(metadata or {}),
                },
            }
        },
        "versions": {task: 1},
        "n-shot": {task: 0},
        "higher_is_better": {task: scored.higher_is_better},
        "n-samples": {task: {"original": n_original, "effective": len(examples)}},
        "config": {
            "model": MODEL_SOURCE, "model_args": model_args, "batch_size": None, "batch_sizes": [], "device": None,
            "use_cache": None, "limit": limit, "bootstrap_iters": 0, "gen_kwargs": None, **(config or {}),
        },
        "date": started,
        **_environment(),
        "task_hashes": {task: scored.task_hash},
        "model_source": MODEL_SOURCE,
        "model_name": model_name,
        "model_name_sanitized": model_slug(model_name),
        "system_instruction": None, "system_instruction_sha": None, "fewshot_as_multiturn": False,
        "chat_template": None, "chat_template_sha": None,
        "start_time": started, "end_time": finished,
        "total_evaluation_time_seconds": str(finished - started),
        COST_KEY: discriminative_cost(task, len(examples), finished - started),
        "taiyi_baseline": baseline_info or {},
        PER_TYPE_KEY: {task: scored.per_type},
    }
    # Written without this machine's paths: the checkpoint and encoder folders by their models'
    # names (the identity the caller recorded), the data directory as a placeholder.
    identity = (metadata or {}).get("model_identity") or {}
    location = ((baseline_info or {}).get("encoder") or {}).get("location")
    encoder_folder = {location: identity["base"]["name"]} if isinstance(location, str) and identity.get("base") else {}
    date_id = new_date_id()
    path = results_file(Path(results_dir) / model_slug(model_name) / date_id, date_id)
    return write_run_files(path, portable_results(results, encoder_folder), {task: scored.samples})


def _sample_records(
    spec: DatasetSpec,
    examples: Sequence[Example],
    predictions: Sequence[Prediction],
    scores: Sequence[UnitScore],
    data_source: str,
    inputs: Sequence[str] | None,
    extra_unit_values: Sequence[dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    """The samples lines: lm-eval's fields, the per-unit metric values, the verdicts and grounding
    lm-eval's taiyi_* tasks log (taiyi_bench.harness.verdicts), the family's own values, the prediction."""
    names = [*scoring.metric_names(spec), *analysis_metric_names(spec)]
    records = []
    for index, (example, prediction, score) in enumerate(zip(examples, predictions, scores, strict=True)):
        extra = extra_unit_values[index] if extra_unit_values else {}
        prompt = inputs[index] if inputs is not None else example.text or example.question
        doc = lm_eval_doc(example, data_source)
        target = render_answer(spec, example)
        response = render_prediction(spec, example, prediction)
        record = {
            "doc_id": index,
            "doc": doc,
            "target": target,
            "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"model_source": MODEL_SOURCE}}},
            "resps": [[response]],
            "filtered_resps": [response],
            "filter": FILTER,
            "metrics": [*names, *extra],
            "doc_hash": hash_string(json.dumps(doc, indent=2, ensure_ascii=False)),
            "prompt_hash": hash_string(prompt),
            "target_hash": hash_string(str(target)),
            **scoring.unit_metric_values(spec, score),
            **unit_analysis_values(spec, example, prediction, score),
            **extra,
            "prediction": {
                "entities": sorted(prediction.entities), "relations": sorted(prediction.relations),
                "labels": sorted(prediction.labels), "choice": prediction.choice,
            },
            "score_detail": score.detail,
        }
        if prediction.spans is not None:  # a span model's own offsets: what the occurrence-level rule scored
            record["prediction"]["spans"] = sorted(prediction.spans)
        records.append(record)
    return records


def recorded_prediction(record: dict[str, Any]) -> tuple[Example, Prediction] | None:
    """The unit and the prediction a samples line of `_sample_records` holds (None: the line is
    not one of a discriminative run)."""
    example, recorded = record_example(record), record.get("prediction")
    if example is None or not isinstance(recorded, dict):
        return None
    spans = recorded.get("spans")
    return example, Prediction(
        entities={tuple(x) for x in recorded.get("entities", [])}, relations={tuple(x) for x in recorded.get("relations", [])},
        labels=set(recorded.get("labels", [])), choice=recorded.get("choice"),
        spans=None if spans is None else frozenset(tuple(x) for x in spans),
    )


def _metric_list(spec: DatasetSpec, extra_metrics: dict[str, float] | None) -> list[dict[str, Any]]:
    return [
        *({"metric": name, "higher_is_better": name != "parse_fail"} for name in scoring.metric_names(spec)),
        *({"metric": name, "higher_is_better": ANALYSIS_HIGHER_IS_BETTER[name]} for name in analysis_metric_names(spec)),
        *({"metric": name, "higher_is_better": True} for name in extra_metrics or {}),
    ]


def _metric_entry(spec: DatasetSpec, samples: Sequence[dict[str, Any]], extra_metrics: dict[str, float] | None) -> dict[str, Any]:
    """`results[task]` as lm-eval writes it: each metric aggregated over the samples, with its
    standard error (lm-eval's built-in `mean` has one; the custom aggregations get "N/A")."""
    task = spec.task_name
    entry: dict[str, Any] = {"name": task, "alias": task, "sample_len": len(samples)}
    for name in scoring.metric_names(spec):
        values = [s[name] for s in samples]
        aggregation = scoring.aggregation_of(spec, name)  # "score": the headline's
        entry[f"{name},{FILTER}"] = float(aggregation(values))
        stderr = mean_stderr([float(v) for v in values]) if aggregation is scoring.mean and len(values) > 1 else "N/A"
        entry[f"{name}_stderr,{FILTER}"] = stderr
    aggregated = {name: ANALYSIS_AGGREGATIONS[name]([s[name] for s in samples]) for name in analysis_metric_names(spec)}
    for name, value in [*aggregated.items(), *((n, float(v)) for n, v in (extra_metrics or {}).items())]:
        entry[f"{name},{FILTER}"] = value
        entry[f"{name}_stderr,{FILTER}"] = "N/A"
    return entry


def _data_files(
    spec: DatasetSpec, split: str, data_source: str, metadata: dict[str, Any] | None,
    data_files: Sequence[os.PathLike | str] | None, data_root: os.PathLike | str | None,
) -> list[tuple[Path, Path]]:
    """(file, root) of each evaluation file read; when the caller does not say, the split's files
    under the data directory the metadata names (the samples for a samples run)."""
    if data_files is not None:
        return [(Path(path), Path(data_root) if data_root is not None else Path(path).parent) for path in data_files]
    data_dir = (metadata or {}).get("data_dir")
    root = SAMPLES_DIR if data_source == "samples" or not data_dir else Path(data_dir)
    try:
        return [(path, root) for path in split_files(spec, split, root)]
    except (DataNotFoundError, KeyError):
        return []


def _environment() -> dict[str, Any]:
    """The environment fields lm-eval records (commit, platform, library versions)."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for package in ("transformers", "lm_eval", "torch"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "git_hash": provenance.git_commit(),
        "pretty_env_info": f"{platform.platform()}; python {platform.python_version()}; torch {versions['torch']}",
        "transformers_version": versions["transformers"],
        "lm_eval_version": versions["lm_eval"],
        "upper_git_hash": None,
    }
