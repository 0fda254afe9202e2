"""Baselines of taiyi-bench.

Two families, scored by the same code as every LLM run (taiyi_bench.harness.scoring):

* discriminative: BERT-style encoders fine-tuned per set (token classification, entity-marker
  pair classification, sequence and multiple-choice classification) - `taiyi_bench.baselines.families`,
  driven by `taiyi baseline train|predict`;
* general LLMs: one YAML file per model in `baselines/llm/`, each turned into one lm-eval
  invocation on the taiyi_* tasks - `taiyi_bench.baselines.llm_registry`, `taiyi_bench.baselines.llm_run`, driven by
  `taiyi baseline list|run|new|validate`.

See baselines/README.md.
"""
