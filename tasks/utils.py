"""Glue between the taiyi_* YAMLs and the harness (lm-eval loads this file by path).

Everything of substance lives in `harness`: readers, prompts, parsers and scorers are shared
with the baselines and fine-tuning, so this file only names them for the YAMLs.
"""

from __future__ import annotations

import logging
from typing import Any

from lm_eval.api.task import ConfigurableTask

from harness import lm_eval_tasks, scoring

logger = logging.getLogger("taiyi-bench")

load_task_dataset = lm_eval_tasks.load_task_dataset
doc_to_text = lm_eval_tasks.doc_to_text
doc_to_target = lm_eval_tasks.doc_to_target
process_results = lm_eval_tasks.process_results


class TaiyiTask(ConfigurableTask):
    """A ConfigurableTask that records where its documents came from.

    The data source ("data" or "samples") goes into the task's metadata, which lm-eval copies
    into the results file, so a run on the bundled samples can never pass for a real one.
    """

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(config=config, **kwargs)

    def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().download(dataset_kwargs, **kwargs)
        source = lm_eval_tasks.data_source_of(self.dataset)
        if not isinstance(self.config.metadata, dict):
            self.config.metadata = {}
        self.config.metadata["data_source"] = source
        self.config.metadata["eval_units"] = len(self.dataset["test"])
        if source == "samples":
            logger.warning(lm_eval_tasks.SAMPLES_BANNER.format(task=self.config.task))


# Aggregations named by the YAMLs' metric_list (per-unit values: [tp, fp, fn] for micro
# metrics, {type: [tp, fp, fn]} for macro_f1_over_types).
micro_f1 = scoring.micro_f1
micro_precision = scoring.micro_precision
micro_recall = scoring.micro_recall
macro_f1_over_types = scoring.macro_f1_over_types
