"""The shared-contract keys every results file records per task (`taiyi_bench.harness.provenance`
writes them for LLM runs, `baselines/results.py` for BERT runs), and which of them a task lacks."""

from __future__ import annotations

from typing import Any

# The keys `provenance.task_metadata` writes, and those of its `provenance` entry.
METADATA_KEYS = frozenset({
    "data_source", "eval_units", "expected_units", "completeness", "fewshot_source", "variant", "prompt_version",
    "budget", "thinking_allowance", "provenance",
})
PROVENANCE_KEYS = frozenset({"taiyi_bench_version", "git_commit", "git_dirty", "scoring_rules_version", "data_files"})


def missing_keys(metadata: dict[str, Any]) -> list[str]:
    """The provenance keys a task's results metadata lacks (an older results file lacks them all)."""
    missing = sorted(METADATA_KEYS - set(metadata))
    inner = metadata.get("provenance")
    if isinstance(inner, dict):
        missing += [f"provenance.{key}" for key in sorted(PROVENANCE_KEYS - set(inner))]
    return missing
