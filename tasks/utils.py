"""Glue between the taiyi_* YAMLs and the harness (lm-eval loads this file by path).

Everything of substance lives in `harness`: readers, prompts, parsers and scorers are shared
with the baselines and fine-tuning, so this file only names them for the YAMLs. What differs
between sets comes from the set's registry entry (`harness/registry.py`), carried by the task.
"""

from __future__ import annotations

import logging
from typing import Any

from lm_eval.api.task import ConfigurableTask

from taiyi_bench.harness import provenance, scoring
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.lmeval import tasks as lm_eval_tasks
from taiyi_bench.harness.lmeval.preflight import whole_number
from taiyi_bench.harness.lmeval.templates import template_name
from taiyi_bench.harness.prompts import PROMPT_VERSION
from taiyi_bench.harness.registry import DatasetSpec, get_spec
from taiyi_bench.harness.verdicts import ANALYSIS_AGGREGATIONS

logger = logging.getLogger("taiyi-bench")

load_task_dataset = lm_eval_tasks.load_task_dataset
doc_to_text = lm_eval_tasks.doc_to_text
doc_to_target = lm_eval_tasks.doc_to_target
process_results = lm_eval_tasks.process_results


class TaiyiTask(ConfigurableTask):
    """A ConfigurableTask that records how its numbers were made.

    Its metadata, which lm-eval copies into the results file, carries the shared provenance keys
    (`taiyi_bench.harness.provenance.task_metadata`): where the documents and the few-shot pool
    came from (so a run on the bundled samples can never pass for a real one), the variant, the
    versions of the code, prompts and scoring rules, the data files' checksums, the budget and, for
    a fine-tuned adapter, what its training data held of the set (`contamination`).
    The set's spec, variant included, comes with the documents (`load_task_dataset`) and is the
    one the prompts, the parser and the scorer get (`spec`).

    Budget: the task's own `max_gen_toks` (the registry's, unless the YAML sets one) is what the
    model gets. A reasoning model's `--metadata '{"thinking_allowance": N}'` adds N to it. A
    global `--gen_kwargs max_gen_toks=M` (lm-eval applies it to every task through `set_config`)
    replaces it: where M is smaller, a warning names this task and the metadata says `budget.cut`.
    """

    spec: DatasetSpec | None = None
    _adapter: str | None = None  # the `peft` folder evaluated, read before the metadata is made portable

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        # lm-eval reports `metadata.version` under `versions`: the prompt version.
        config["metadata"] = {**(config.get("metadata") or {}), "version": PROMPT_VERSION}
        super().__init__(config=config, **kwargs)
        metadata = self.config.metadata if isinstance(self.config.metadata, dict) else {}
        self._thinking_allowance = whole_number(metadata.get("thinking_allowance", 0), "--metadata thinking_allowance")
        if not isinstance(self.config.generation_kwargs, dict):
            self.config.generation_kwargs = {}
        generation = self.config.generation_kwargs
        if generation.get("max_gen_toks") is None and self.spec is not None:
            generation["max_gen_toks"] = self.spec.max_gen_toks
        own = generation.get("max_gen_toks")
        self._task_budget = int(own) if own is not None else None
        self._budget_source = "task"
        if self._thinking_allowance and self._task_budget is not None:
            generation["max_gen_toks"] = self._task_budget + self._thinking_allowance
            self._budget_source = "thinking_allowance"
        self._record_metadata()

    def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().download(dataset_kwargs, **kwargs)
        evaluation = getattr(self.dataset, "evaluation", None)
        if evaluation is not None:
            self.spec = evaluation.spec
        else:  # documents not built by load_task_dataset: the set the YAML names, default form
            self.spec = get_spec(str((self.config.dataset_kwargs or {}).get("taiyi_set", self.config.task)))
        self._check_metric_list()
        if lm_eval_tasks.data_source_of(self.dataset) == "samples":
            lm_eval_tasks.warn_samples_once(self.config.task)

    def _check_metric_list(self) -> None:
        """The YAML's metric_list (from the task-type template it includes) must name exactly the
        metrics the scorer returns for this set."""
        listed = [m.get("metric") for m in self.config.metric_list or [] if isinstance(m, dict)]
        wanted = list(scoring.metric_names(self.spec))
        if listed != wanted:
            raise ConfigError(
                f"taiyi-bench: task {self.config.task}: its YAML's metric_list is {listed}, but the scorer returns "
                f"{wanted} for {self.spec.display_name}. Include the template of its task type "
                f"({template_name(self.spec)}) and do not override metric_list."
            )

    # lm-eval calls these for every document; the YAML's functions get the task's own spec, so a
    # variant chosen by --metadata (5-option MCMLE) reaches the prompt, the parser and the scorer.
    def _harness_function(self, given: Any, configured: Any, ours: Any) -> bool:
        """Whether lm-eval would call our own function (not a user's override or a prompt)."""
        return (given or configured) is ours and getattr(self, "prompt", None) is None

    def doc_to_text(self, doc: Any, doc_to_text: Any = None) -> Any:
        if self._harness_function(doc_to_text, self.config.doc_to_text, lm_eval_tasks.doc_to_text):
            return lm_eval_tasks.doc_to_text(doc, self.spec)
        return super().doc_to_text(doc, doc_to_text)

    def doc_to_target(self, doc: Any, doc_to_target: Any = None) -> Any:
        if self._harness_function(doc_to_target, self.config.doc_to_target, lm_eval_tasks.doc_to_target):
            return lm_eval_tasks.doc_to_target(doc, self.spec)
        return super().doc_to_target(doc, doc_to_target)

    def process_results(self, doc: Any, results: Any) -> dict[str, Any]:
        if self._harness_function(None, self.config.process_results, lm_eval_tasks.process_results):
            return lm_eval_tasks.process_results(doc, results, self.spec)
        return super().process_results(doc, results)

    # The per-unit verdicts and grounding are analysis values, not scores: not in metric_list,
    # aggregated here (`verdicts` -> the count of each verdict, `ungrounded_rate` -> a share).
    def aggregation(self) -> dict:
        return {**super().aggregation(), **ANALYSIS_AGGREGATIONS}

    def higher_is_better(self) -> dict:
        return {**super().higher_is_better(), **lm_eval_tasks.analysis_higher_is_better(self.spec)}

    def set_config(self, key: str, value: Any, update: bool = False) -> None:
        """lm-eval's overrides (`--gen_kwargs`, `--num_fewshot`) land here after the task is built;
        the metadata is brought up to date, and a budget cut is said out loud."""
        if key == "generation_kwargs" and isinstance(value, dict) and "max_gen_toks" in value:
            effective = whole_number(value["max_gen_toks"], "--gen_kwargs max_gen_toks")
            value = {**value, "max_gen_toks": effective}
            intended = None if self._task_budget is None else self._task_budget + self._thinking_allowance
            if intended is not None and effective < intended:
                logger.warning(lm_eval_tasks.budget_cut_warning(
                    self.config.task, intended, effective, f"a global max_gen_toks={effective} (--gen_kwargs)"
                ))
            self._budget_source = "gen_kwargs"
        super().set_config(key, value, update=update)
        if key in ("generation_kwargs", "num_fewshot"):
            self._record_metadata()

    def build_all_requests(self, *, limit: int | None = None, samples: list[int] | None = None, **kwargs: Any) -> None:
        """lm-eval passes --limit (already a count) or --samples here, after the task is built: one
        that leaves units out makes the results say `completeness: limited`."""
        self._evaluated_units = len(samples) if samples is not None else None if limit is None else int(limit)
        super().build_all_requests(limit=limit, samples=samples, **kwargs)
        self._record_metadata()

    def _record_metadata(self) -> None:
        # lm-eval copies the model args (`pretrained`, `peft`), `data_dir` and the YAML's path into
        # the metadata: recorded as the model's identity and placeholders, never this machine's paths.
        metadata = self.config.metadata if isinstance(self.config.metadata, dict) else {}
        if "model_identity" not in metadata:  # the first call: `peft` still names the adapter's folder
            self._adapter = metadata.get("peft") if isinstance(metadata.get("peft"), str) else None
        self.config.metadata = provenance.portable_task_metadata(metadata)
        dataset = getattr(self, "dataset", None)
        evaluation = getattr(dataset, "evaluation", None)
        if evaluation is None:  # not built by load_task_dataset: only what the documents say
            if dataset is not None:
                self.config.metadata["data_source"] = lm_eval_tasks.data_source_of(dataset)
                self.config.metadata["eval_units"] = len(dataset["test"])
            return
        pool = dataset.pool if (self.config.num_fewshot or 0) > 0 else None  # only a pool that was shown counts
        generation = self.config.generation_kwargs if isinstance(self.config.generation_kwargs, dict) else {}
        effective = generation.get("max_gen_toks")
        files = [(path, split.root) for split in (evaluation, pool) if split is not None for path in split.paths]
        self.config.metadata.update(provenance.task_metadata(
            evaluation.spec, evaluation.split, data_source=evaluation.source, eval_units=len(evaluation.examples),
            fewshot_source=pool.source if pool is not None else None, files=files,
            budget=provenance.budget_record(
                self._task_budget, None if effective is None else int(effective), self._budget_source, self._thinking_allowance
            ),
            thinking_allowance=self._thinking_allowance, evaluated_units=getattr(self, "_evaluated_units", None),
            adapter=self._adapter,
        ))


# The aggregations the generated templates name (`!function utils.<name>`): every function of the
# metric table (taiyi_bench.harness.scoring.METRICS) other than lm-eval's own `mean`.
globals().update({m.aggregation.__name__: m.aggregation for m in scoring.METRICS if m.aggregation is not scoring.mean})
