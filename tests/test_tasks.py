"""The taiyi_* tasks (one per registered set) through lm-eval's own evaluator, with scripted models."""

from __future__ import annotations

import re
from functools import cache

import lm_eval
import pytest
from lm_eval.tasks import TaskManager
from pytest import approx

from taiyi_bench.harness.lmeval.plugin import tasks_dir
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.prompts import PROMPT_VERSION, render_answer
from taiyi_bench.harness.registry import PAPER_SETS, REGISTRY, get_spec, iter_specs
from taiyi_bench.harness.scoring import headline_metric_name, metric_names
from taiyi_bench.harness.verdicts import analysis_metric_names

from scripted_lm import ScriptedLM, constant_lm, oracle_lm
from task_files import metric_list_names, read_task_yaml

ALL_TASKS = [spec.task_name for spec in iter_specs()]
CJK = re.compile(r"[\u4e00-\u9fff]")


def _evaluate(model, tasks, metadata=None, **kwargs):
    return lm_eval.simple_evaluate(
        model=model, tasks=tasks, task_manager=TaskManager(metadata=metadata), log_samples=True, **kwargs
    )


def _metrics(out, task):
    return {k.split(",")[0]: v for k, v in out["results"][task].items() if k.endswith(",none") and "stderr" not in k}


@pytest.fixture(scope="module")
def oracle_on_samples():
    model = oracle_lm()
    return model, _evaluate(model, ALL_TASKS)


def _text_ceiling(spec) -> float:
    from taiyi_bench.harness.records import Prediction
    from taiyi_bench.harness.scoring import aggregate, score_unit

    examples = load_split(spec.key).examples
    units = [score_unit(spec, ex, Prediction(entities={(e.type, e.mention) for e in ex.entities})) for ex in examples]
    return aggregate(spec, units)["strict_occurrence_micro_f1"]


def test_oracle_scores_one_everywhere_on_the_samples(oracle_on_samples):
    _, out = oracle_on_samples
    assert sorted(out["results"]) == sorted(ALL_TASKS)
    for task in ALL_TASKS:
        spec = get_spec(task)
        metrics = _metrics(out, task)
        # the scores, and beside them the analysis values (taiyi_bench.harness.verdicts): all matched, nothing made up
        analysis = {name: metrics.pop(name) for name in analysis_metric_names(spec)}
        assert set(metrics) == set(metric_names(spec)), task
        for name, value in metrics.items():
            if name == "strict_occurrence_micro_f1":
                # Gold written as text places each mention at every occurrence, tagged or not: the
                # ceiling of generated text by this rule, which the oracle reaches exactly.
                assert value == approx(_text_ceiling(spec)) and value > 0.9, (task, name, value)
                continue
            assert value == (0.0 if name == "parse_fail" else 1.0), (task, name, value)
        assert set(analysis["verdicts"]) == {"matched"} and analysis.get("ungrounded_rate", 0.0) == 0.0, task
        assert out["configs"][task]["metadata"]["data_source"] == "samples"
        assert out["configs"][task]["metadata"]["version"] == PROMPT_VERSION
        # every unit was evaluated and logged with its per-unit values
        assert len(out["samples"][task]) == len(load_split(spec.key).examples) > 0


def test_prompts_are_in_the_language_of_the_set(oracle_on_samples):
    model, out = oracle_on_samples
    for task in ALL_TASKS:
        spec = get_spec(task)
        prompt = out["samples"][task][0]["arguments"][0][0]
        instruction = prompt.split("\n")[0] if spec.task_type != "qa" else prompt
        if spec.language == "zh":
            assert CJK.search(instruction), (task, instruction)
        else:
            assert "Text:" in prompt or "Question:" in prompt, (task, prompt)
            # the English instruction itself has no Chinese (the label names are English too)
            assert not CJK.search(prompt.split("Text:")[0].split("Question:")[0]), (task, prompt)


@pytest.mark.parametrize("output", ["", "   \n\t ", "I cannot help with that request."])
def test_unparseable_output_is_an_empty_prediction_counted_in_parse_fail(output):
    out = _evaluate(constant_lm(output), ALL_TASKS)
    for task in ALL_TASKS:
        metrics = _metrics(out, task)
        assert metrics["parse_fail"] == 1.0, (task, output)
        assert metrics[headline_metric_name(get_spec(task))] == 0.0


def test_oracle_scores_one_on_the_real_splits(shared_data_dir):
    present = [s.task_name for s in iter_specs() if (shared_data_dir / s.data_subdir).is_dir()]
    # The data at hand: every set of the paper but CHEMDNER (a set registered since may be absent too).
    assert set(PAPER_SETS) - {get_spec(task).key for task in present} == {"chemdner"}
    out = _evaluate(oracle_lm(), present, metadata={"data_dir": str(shared_data_dir)})
    for task in present:
        spec = get_spec(task)
        metrics = _metrics(out, task)
        assert metrics[headline_metric_name(spec)] == 1.0, task
        assert metrics["parse_fail"] == 0.0, task
        meta = out["configs"][task]["metadata"]
        assert meta["data_source"] == "data"
        assert meta["eval_units"] == spec.expected[spec.eval_split].units


def test_five_option_mcmle_is_a_metadata_parameter(shared_data_dir):
    out = _evaluate(oracle_lm(), ["taiyi_medqa_mcmle"], metadata={"data_dir": str(shared_data_dir), "mcmle_options": 5})
    assert _metrics(out, "taiyi_medqa_mcmle")["acc"] == 1.0
    prompt = out["samples"]["taiyi_medqa_mcmle"][0]["arguments"][0][0]
    assert "\nE. " in prompt


def test_few_shot_demonstrations_come_from_the_train_split():
    model = ScriptedLM(lambda doc, _prompt: oracle_lm()._respond(doc, _prompt))
    out = _evaluate(model, ["taiyi_ncbi_disease", "taiyi_kuake_qic"], num_fewshot=2)
    for task in ("taiyi_ncbi_disease", "taiyi_kuake_qic"):
        assert _metrics(out, task)[headline_metric_name(get_spec(task))] == 1.0
    train_answers = {render_answer(get_spec("ncbi_disease"), ex) for ex in load_split("ncbi_disease", "train").examples}
    prompt = next(p for p in model.prompts if "Disease" in p)
    assert sum(answer in prompt for answer in train_answers) >= 2
    assert prompt.count("Text:") == 3  # two demonstrations + the unit


@cache
def _task_yaml(task: str) -> dict:
    """The task's YAML with its task-type template included, as lm-eval reads it."""
    return read_task_yaml(tasks_dir() / f"{task}.yaml")


def test_task_files_agree_with_the_registry_and_scorers():
    files = sorted(p.stem for p in tasks_dir().glob("taiyi_*.yaml"))
    assert files == sorted(ALL_TASKS)
    for task in ALL_TASKS:
        cfg = _task_yaml(task)
        spec = get_spec(task)
        assert cfg["dataset_kwargs"]["taiyi_set"] == spec.key
        assert metric_list_names(cfg) == list(metric_names(spec))
        assert cfg["generation_kwargs"]["do_sample"] is False


def test_generation_budget_covers_the_longest_gold_answer(shared_data_dir):
    """max_gen_toks >= the longest gold answer of the real eval split, counted with SmolLM2's
    tokenizer (byte-level BPE that spends several tokens per Chinese character: an upper bound
    for the tokenizers of current bilingual LLMs). QA needs only the option letter."""
    from transformers import AutoTokenizer

    from taiyi_bench.harness.local_models import smollm2_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    for spec in REGISTRY.values():
        budget = spec.max_gen_toks
        if spec.task_type == "qa":
            assert budget >= 16
            continue
        if not (shared_data_dir / spec.data_subdir).is_dir():
            continue
        longest = max(len(tokenizer(render_answer(spec, ex))["input_ids"]) for ex in load_split(spec.key, data_dir=shared_data_dir).examples)
        assert budget >= longest, (spec.key, budget, longest)
