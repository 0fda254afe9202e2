"""What the taiyi_* task YAMLs call: documents in, prompts out, text back in, metrics out.

Each lm-eval doc is {"id", "dataset", "split", "data_source", "example"}, where "example" is
the `Example` as JSON. Keeping the record as one JSON string (rather than Arrow columns) keeps
variable-key fields (options, concept mentions) intact and makes the samples log self-contained.

The spec is resolved once per task: `load_task_dataset` resolves the set and its variant from
the task's `taiyi_set` and lm-eval's `--metadata`, the loader returns it with the documents
(`TaiyiDatasetDict.evaluation.spec`), and the task (`tasks/utils.py:TaiyiTask`) hands it to
`doc_to_text`, `doc_to_target` and `process_results`. Called without one (scripts, tests), they
fall back to the set's default form in the registry.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

import datasets

from taiyi_bench.harness import provenance
from taiyi_bench.harness.errors import DataNotFoundError
from taiyi_bench.harness.lmeval.errors import install_excepthook
from taiyi_bench.harness.lmeval.preflight import data_dir_value, require_units
from taiyi_bench.harness.loading import LoadedSplit, load_split
from taiyi_bench.harness.parsers import parse_output
from taiyi_bench.harness.prompts import render_answer, render_prompt
from taiyi_bench.harness.records import Example
from taiyi_bench.harness.registry import DatasetSpec, get_spec, iter_specs
from taiyi_bench.harness.scoring import score_unit, unit_metric_values
from taiyi_bench.harness.verdicts import (
    ANALYSIS_HIGHER_IS_BETTER,
    analysis_metric_names,
    unit_analysis_values,
)

logger = logging.getLogger("taiyi-bench")
install_excepthook()  # `lm_eval` prints a bad data file as one line (taiyi_bench.harness.lmeval.errors)

SAMPLES_BANNER = (
    "\n" + "!" * 78 + "\n"
    "!! taiyi-bench: {task} runs on the BUNDLED SAMPLES written by the team, not the real {split} set.\n"
    "!! Its scores say nothing about the model. Set TAIYI_DATA_DIR or pass --metadata '{{\"data_dir\": \"...\"}}'.\n"
    + "!" * 78
)


def _to_docs(examples: list[Example], source: str) -> list[dict[str, Any]]:
    return [{"id": ex.id, "dataset": ex.dataset, "split": ex.split, "data_source": source,
             "example": json.dumps(ex.to_dict(), ensure_ascii=False)} for ex in examples]


class TaiyiDatasetDict(datasets.DatasetDict):
    """The DatasetDict of a taiyi_* task, remembering the splits it was built from (their files
    and data roots go into the results' provenance)."""

    evaluation: LoadedSplit | None = None
    pool: LoadedSplit | None = None  # the few-shot pool, None when there is none


def load_task_dataset(taiyi_set: str, data_dir: Any = None, **options: Any) -> TaiyiDatasetDict:
    """lm-eval `custom_dataset`: the eval split as "test" and a few-shot pool as "train".

    lm-eval calls it with every `--metadata` key (and, under `simple_evaluate`, the model_args
    too) plus the task's dataset_kwargs (`taiyi_set`); only `data_dir` and the set's variant
    option are read here (a key nobody reads is refused by `preflight`, before the model loads).
    The few-shot pool is the set's train split; where the data directory lacks one, the bundled
    samples' train split is used, said in the log and recorded as the run's `fewshot_source`.
    """
    spec = get_spec(taiyi_set, options)
    data_dir = data_dir_value(data_dir)  # {"data_dir": 5} is one line, not a TypeError from pathlib
    evaluation = load_split(spec, spec.eval_split, data_dir)
    _check_evaluation_split(evaluation)
    splits = {"test": datasets.Dataset.from_list(_to_docs(evaluation.examples, evaluation.source))}
    try:
        pool = load_split(spec, "train", data_dir)
    except (DataNotFoundError, KeyError):
        pool = load_split(spec, "train", None) if evaluation.source == "data" else None
        if pool is not None:
            logger.warning("%s: no train split in the data directory; few-shot examples come from the bundled samples", spec.task_name)
    if pool is not None:
        splits["train"] = datasets.Dataset.from_list(_to_docs(pool.examples, pool.source))
    dataset = TaiyiDatasetDict(splits)
    dataset.evaluation, dataset.pool = evaluation, pool
    return dataset


def _check_evaluation_split(evaluation: LoadedSplit) -> None:
    """Stop on an empty evaluation split (naming the file) before lm-eval indexes into it, and
    warn when the data is not the official split: the results record it (`completeness`) and
    the leaderboard keeps such cells out of its averages."""
    spec = evaluation.spec
    require_units(evaluation)
    check = provenance.check_completeness(
        spec, evaluation.split, data_source=evaluation.source, eval_units=len(evaluation.examples),
        files=[(path, evaluation.root) for path in evaluation.paths],
    )
    if check.status in provenance.DATA_PROBLEMS:
        logger.warning(
            "taiyi-bench: %s is not the official split (%s); its results will be marked %r and left out of "
            "leaderboard averages. Check the file with `taiyi data check`.",
            spec.task_name, "; ".join(check.problems), check.status,
        )


@lru_cache(maxsize=4096)
def _example(serialised: str) -> Example:
    return Example.from_dict(json.loads(serialised))


def doc_example(doc: dict[str, Any]) -> Example:
    return _example(doc["example"])


def _spec(example: Example, spec: DatasetSpec | None) -> DatasetSpec:
    return spec if spec is not None else get_spec(example.dataset)


def doc_to_text(doc: dict[str, Any], spec: DatasetSpec | None = None) -> str:
    example = doc_example(doc)
    return render_prompt(_spec(example, spec), example)


def doc_to_target(doc: dict[str, Any], spec: DatasetSpec | None = None) -> str:
    example = doc_example(doc)
    return render_answer(_spec(example, spec), example)


def process_results(doc: dict[str, Any], results: list[str], spec: DatasetSpec | None = None) -> dict[str, Any]:
    """Parse the generation and score it against the doc's gold (per-unit metric values)."""
    example = doc_example(doc)
    spec = _spec(example, spec)
    prediction = parse_output(spec, results[0] if results else "", options=example.options or None)
    unit = score_unit(spec, example, prediction)
    # Beside the metrics, the unit's verdicts and grounding (taiyi_bench.harness.verdicts): plain JSON objects
    # in the samples file. lm-eval aggregates them with `ANALYSIS_AGGREGATIONS` (TaiyiTask).
    return {**unit_metric_values(spec, unit), **unit_analysis_values(spec, example, prediction, unit)}


def analysis_higher_is_better(spec: DatasetSpec | None) -> dict[str, bool | None]:
    names = analysis_metric_names(spec) if spec is not None else tuple(ANALYSIS_HIGHER_IS_BETTER)
    return {name: ANALYSIS_HIGHER_IS_BETTER[name] for name in names}


_BANNER_SHOWN: set[str] = set()


def warn_samples_once(task: str) -> None:
    """The samples banner, once per process (lm-eval builds a task several times per run); later
    tasks on the samples get one plain log line."""
    if not _BANNER_SHOWN:
        logger.warning(SAMPLES_BANNER.format(task=task, split=get_spec(task).eval_split))
    elif task not in _BANNER_SHOWN:
        logger.info("taiyi-bench: %s also runs on the BUNDLED SAMPLES", task)
    _BANNER_SHOWN.add(task)


def data_source_of(dataset: datasets.DatasetDict) -> str:
    return dataset["test"][0]["data_source"] if len(dataset["test"]) else "empty"


def task_budgets() -> dict[str, int]:
    """Each taiyi_* task's own generation budget (the registry's `max_gen_toks`)."""
    return {spec.task_name: spec.max_gen_toks for spec in iter_specs()}


def budget_cuts(max_gen_toks: int, tasks: list[str] | None = None, thinking_allowance: int = 0) -> dict[str, int]:
    """{task: its own budget (+ thinking allowance)} for each task a global `max_gen_toks` would cut."""
    return {task: budget + thinking_allowance for task, budget in task_budgets().items()
            if (tasks is None or task in tasks) and max_gen_toks < budget + thinking_allowance}


def budget_cut_warning(task: str, budget: int, effective: int, origin: str) -> str:
    """The one warning text for a task whose budget a global setting cuts."""
    return (
        f"taiyi-bench: {origin} cuts {task}'s generation budget from {budget} to {effective} tokens: "
        "long answers will be truncated and score lower. The results record it (metadata budget.cut) "
        "and the leaderboard marks the cell 'budget cut'. Leave max_gen_toks out to keep each task's own budget."
    )
