"""Baselines of taiyi-bench, scored by the same code as every LLM run (taiyi_bench.harness.scoring): BERT-style
encoders fine-tuned per set (`families`, `taiyi baseline train|predict`) and general LLMs, one YAML file
per model in `baselines/llm/` run through lm-eval (`llm_registry`, `llm_run`, `taiyi baseline
list|run|new|validate`). See baselines/README.md.
"""
