"""Baselines of taiyi-bench.

Two families, scored by the same code as every LLM run (harness.scoring):

* discriminative: BERT-style encoders fine-tuned per set (token classification, entity-marker
  pair classification, sequence and multiple-choice classification) - `baselines.families`,
  driven by `taiyi baseline train|predict`;
* general LLMs: one YAML file per model in `baselines/llm/`, each turned into one lm-eval
  invocation on the taiyi_* tasks - `baselines.llm_registry`, `baselines.llm_run`, driven by
  `taiyi baseline list|run|new|validate`.

See baselines/README.md.
"""
