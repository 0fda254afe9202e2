"""Two scripted lm-eval runs over the same units for the error-analysis tests: one with planted
errors, one answering the gold (the oracle). Both go through `lm_eval.simple_evaluate` and lm-eval's
own `EvaluationTracker`, so the files are exactly what `lm_eval --log_samples` writes.

Planted (bundled samples, first units of each set):
  CMeEE dev-0   "支气管哮喘" answered as the shorter "哮喘" (boundary), "沙丁胺醇" typed 临床表现
                instead of 药物 (wrong type)
  CMeEE dev-1   "血小板计数" left out (missed), "鼻出血" as a disease (spurious, in the text),
                "糖尿病" as a disease (spurious, nowhere in the text: hallucinated)
  CMeIE dev-0   [社区获得性肺炎, 咳嗽] written [咳嗽, 社区获得性肺炎] (reversed)
  CMeIE dev-1   奥美拉唑 under 手术治疗 instead of 药物治疗 (wrong relation)
  LitCovid 1st  gold Treatment, answered "Treatment; Prevention" (extra label)
  USMLE test-0  gold A, answered B (wrong option); test-2 empty output (parse failure)
Every other unit is answered with its gold.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import lm_eval
from lm_eval.loggers import EvaluationTracker
from lm_eval.tasks import TaskManager

from taiyi_bench.harness.lmeval.plugin import tasks_dir
from taiyi_bench.harness.lmeval.tasks import doc_example, doc_to_target
from taiyi_bench.harness.prompts import render_answer
from taiyi_bench.harness.records import Entity, Relation
from taiyi_bench.harness.registry import get_spec

from scripted_lm import ScriptedLM

TASKS = ["taiyi_cmeee", "taiyi_cmeie", "taiyi_litcovid", "taiyi_medqa_usmle"]
LIMIT = 3


def _answer(doc: dict[str, Any], entities=None, relations=None, labels=None) -> str:
    example = doc_example(doc)
    changed = dataclasses.replace(
        example,
        entities=example.entities if entities is None else entities,
        relations=example.relations if relations is None else relations,
        labels=example.labels if labels is None else labels,
    )
    return render_answer(get_spec(example.dataset), changed)


def planted_answer(doc: dict[str, Any], _prompt: str) -> str:
    example = doc_example(doc)
    key = (example.dataset, example.id)
    if key == ("cmeee", "dev-0"):
        return _answer(doc, entities=[Entity("dis", "哮喘"), Entity("sym", "沙丁胺醇")])
    if key == ("cmeee", "dev-1"):
        return _answer(doc, entities=[
            Entity("sym", "反复鼻出血"), Entity("bod", "鼻"), Entity("dis", "鼻出血"), Entity("dis", "糖尿病"),
        ])
    if key == ("cmeie", "dev-0"):
        relations = [Relation(r.tail, r.relation, r.head) if r.tail == "咳嗽" else r for r in example.relations]
        return _answer(doc, relations=relations)
    if key == ("cmeie", "dev-1"):
        relations = [Relation(r.head, "手术治疗", r.tail) if r.tail == "奥美拉唑" else r for r in example.relations]
        return _answer(doc, relations=relations)
    if example.dataset == "litcovid" and example.labels == ["Treatment"]:
        return _answer(doc, labels=["Treatment", "Prevention"])
    if key == ("medqa_usmle", "test-0"):
        return f"B. {example.options['B']}"
    if key == ("medqa_usmle", "test-2"):
        return ""
    return doc_to_target(doc)


def evaluate(model: ScriptedLM, output_path: Path, name: str) -> Path:
    """Run the tasks with `model` and save results and samples as lm-eval's CLI does; returns the
    results file."""
    tracker = EvaluationTracker(output_path=str(output_path))
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    out = lm_eval.simple_evaluate(
        model=model, tasks=TASKS, task_manager=manager, limit=LIMIT, log_samples=True, evaluation_tracker=tracker,
    )
    samples = out.pop("samples")
    tracker.save_results_aggregated(results=out, samples=samples)
    for task, records in samples.items():
        tracker.save_results_samples(task_name=task, samples=records)
    (results,) = Path(output_path).glob("**/results_*.json")
    data = json.loads(results.read_text(encoding="utf-8"))
    data["model_name"] = name  # a scripted model has no name lm-eval could record
    results.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return results


def samples_of(results: Path, task: str) -> list[dict[str, Any]]:
    (path,) = results.parent.glob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
