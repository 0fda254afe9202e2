"""What the taiyi_* task YAMLs call: documents in, prompts out, text back in, metrics out.

Each lm-eval doc is {"id", "dataset", "split", "data_source", "example"}, where "example" is
the `Example` as JSON. Keeping the record as one JSON string (rather than Arrow columns) keeps
variable-key fields (options, concept mentions) intact and makes the samples log self-contained.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import datasets
import yaml

from harness.errors import DataNotFoundError
from harness.loading import LoadedSplit, load_split
from harness.parsers import parse_output
from harness.paths import bundled_dir
from harness.prompts import render_answer, render_prompt
from harness.records import Example
from harness.registry import get_spec
from harness.scoring import score_unit, unit_metric_values

logger = logging.getLogger("taiyi-bench")

SAMPLES_BANNER = (
    "\n" + "!" * 78 + "\n"
    "!! taiyi-bench: {task} runs on the BUNDLED SAMPLES written by the team, not the real test set.\n"
    "!! Its scores say nothing about the model. Set TAIYI_DATA_DIR or pass --metadata '{{\"data_dir\": \"...\"}}'.\n"
    + "!" * 78
)

def _to_docs(examples: list[Example], source: str) -> list[dict[str, Any]]:
    return [
        {
            "id": ex.id,
            "dataset": ex.dataset,
            "split": ex.split,
            "data_source": source,
            "example": json.dumps(ex.to_dict(), ensure_ascii=False),
        }
        for ex in examples
    ]

class TaiyiDatasetDict(datasets.DatasetDict):
    """The DatasetDict of a taiyi_* task, remembering the splits it was built from (their files
    and data roots go into the results' provenance)."""

    evaluation: LoadedSplit | None = None
    pool: LoadedSplit | None = None  # the few-shot pool, None when there is none


def load_task_dataset(taiyi_set: str, data_dir: str | None = None, mcmle_options: int = 4, **_: Any) -> TaiyiDatasetDict:
    """lm-eval `custom_dataset`: the eval split as "test" and a few-shot pool as "train".

    lm-eval calls it with every `--metadata` key (and, under `simple_evaluate`, the model_args
    too) plus the task's dataset_kwargs (`taiyi_set`): `data_dir` and `mcmle_options` are used,
    the rest (thinking_allowance, pretrained, ...) ignored. The few-shot pool is the set's train
    split; where the data directory lacks one, the bundled samples' train split is used, said in
    the log and recorded as the run's `fewshot_source`.
    """
    spec = get_spec(taiyi_set)
    evaluation = load_split(spec.key, spec.eval_split, data_dir, mcmle_options=int(mcmle_options))
    splits = {"test": datasets.Dataset.from_list(_to_docs(evaluation.examples, evaluation.source))}
    try:
        pool = load_split(spec.key, "train", data_dir, mcmle_options=int(mcmle_options))
    except (DataNotFoundError, KeyError):
        pool = load_split(spec.key, "train", None, mcmle_options=int(mcmle_options)) if evaluation.source == "data" else None
        if pool is not None:
            logger.warning("%s: no train split in the data directory; few-shot examples come from the bundled samples", spec.task_name)
    if pool is not None:
        splits["train"] = datasets.Dataset.from_list(_to_docs(pool.examples, pool.source))
    dataset = TaiyiDatasetDict(splits)
    dataset.evaluation, dataset.pool = evaluation, pool
    return dataset

@lru_cache(maxsize=4096)
def _example(serialised: str) -> Example:
    return Example.from_dict(json.loads(serialised))

def doc_example(doc: dict[str, Any]) -> Example:
    return _example(doc["example"])

def doc_to_text(doc: dict[str, Any]) -> str:
    example = doc_example(doc)
    return render_prompt(get_spec(example.dataset), example)

def doc_to_target(doc: dict[str, Any]) -> str:
    example = doc_example(doc)
    return render_answer(get_spec(example.dataset), example)

def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """Parse the generation and score it against the doc's gold (per-unit metric values)."""
    example = doc_example(doc)
    spec = get_spec(example.dataset)
    prediction = parse_output(spec, results[0] if results else "", options=example.options or None)
    return unit_metric_values(spec, score_unit(spec, example, prediction))

def data_source_of(dataset: datasets.DatasetDict) -> str:
    return dataset["test"][0]["data_source"] if len(dataset["test"]) else "empty"


class _TaskYamlLoader(yaml.SafeLoader):
    """Reads the task YAMLs without importing their `!function` hooks."""


_TaskYamlLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


@lru_cache(maxsize=1)
def task_budgets(tasks_folder: str | None = None) -> dict[str, int]:
    """Each taiyi_* task's own generation budget (`generation_kwargs.max_gen_toks` of its YAML)."""
    folder = Path(tasks_folder) if tasks_folder else bundled_dir("tasks")
    budgets = {}
    for path in sorted(folder.glob("taiyi_*.yaml")):
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskYamlLoader) or {}
        tokens = (config.get("generation_kwargs") or {}).get("max_gen_toks")
        if "task" in config and tokens is not None:
            budgets[config["task"]] = int(tokens)
    return budgets


def budget_cuts(max_gen_toks: int, tasks: list[str] | None = None, thinking_allowance: int = 0) -> dict[str, int]:
    """{task: its own budget (+ thinking allowance)} for each task a global `max_gen_toks` would cut."""
    chosen = task_budgets()
    if tasks is not None:
        chosen = {task: budget for task, budget in chosen.items() if task in tasks}
    return {task: budget + thinking_allowance for task, budget in chosen.items() if max_gen_toks < budget + thinking_allowance}


def budget_cut_warning(task: str, budget: int, effective: int, origin: str) -> str:
    """The one warning text for a task whose budget a global setting cuts."""
    return (
        f"taiyi-bench: {origin} cuts {task}'s generation budget from {budget} to {effective} tokens: "
        "long answers will be truncated and score lower. The results record it (metadata budget.cut) "
        "and the leaderboard marks the cell 'budget cut'. Leave max_gen_toks out to keep each task's own budget."
    )
