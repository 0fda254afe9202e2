"""Resuming `taiyi baseline run` (baselines/README.md, "Resume"): which of the requested sets a
model has already done, by `taiyi_resume_key` (a digest of the config file's text and the lm-eval
command without --tasks, --output_path and --use_cache) in a results file of its output folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from taiyi_bench.baselines.llm_registry import LLMBaseline
from taiyi_bench.baselines.llm_run import Invocation
from taiyi_bench.harness.errors import DataNotFoundError
from taiyi_bench.harness.loading import split_files
from taiyi_bench.harness.paths import SAMPLES_DIR, resolve_data_dir
from taiyi_bench.harness.prompts import PROMPT_VERSION
from taiyi_bench.harness.provenance import SAMPLES_PREFIX, data_file_key, file_sha256
from taiyi_bench.harness.registry import DatasetSpec
from taiyi_bench.harness.results_io import RESULTS_GLOB, newest_results, read_results, write_results
from taiyi_bench.harness.scoring import SCORING_RULES_VERSION

RESUME_KEY = "taiyi_resume_key"
# Which sets run, where the files go, a cache of answers: none of them changes a set's result.
_NOT_IN_KEY = ("--tasks", "--output_path", "--use_cache")


def resume_key(config: LLMBaseline, invocation: Invocation) -> str:
    argv = list(invocation.argv)
    for option in _NOT_IN_KEY:
        if option in argv:
            at = argv.index(option)
            del argv[at : at + 2]
    return hashlib.sha256(json.dumps([config.path.read_text(encoding="utf-8"), argv]).encode()).hexdigest()


def done_sets(output_path: Path, key: str, specs: list[DatasetSpec], data_dir: str | os.PathLike | None) -> dict[str, Path]:
    """Task name -> the results file, for each of `specs` done under `key`, scored under the current
    prompt and scoring-rules versions, from data files whose recorded checksums still hold."""
    done: dict[str, Path] = {}
    for path in sorted(Path(output_path).glob(f"**/{RESULTS_GLOB}")):
        try:
            data = read_results(path)
        except (OSError, ValueError):
            continue
        if data.get(RESUME_KEY) != key:
            continue
        for spec in specs:
            metadata = ((data.get("configs") or {}).get(spec.task_name) or {}).get("metadata") or {}
            if spec.task_name in (data.get("results") or {}) and _same_inputs(spec, metadata, data_dir):
                done[spec.task_name] = path
    return done


def _same_inputs(spec: DatasetSpec, metadata: dict[str, Any], data_dir: str | os.PathLike | None) -> bool:
    recorded = metadata.get("provenance") or {}
    files = recorded.get("data_files") or {}
    if metadata.get("prompt_version") != PROMPT_VERSION or recorded.get("scoring_rules_version") != SCORING_RULES_VERSION:
        return False
    root = resolve_data_dir(data_dir) or SAMPLES_DIR
    try:  # the files this set reads now were read then, and nothing read then has changed since
        now = {data_file_key(path, root) for path in split_files(spec, spec.eval_split, root)}
        return now <= files.keys() and all(
            file_sha256(SAMPLES_DIR / name.removeprefix(SAMPLES_PREFIX) if name.startswith(SAMPLES_PREFIX) else root / name)
            == digest
            for name, digest in files.items()
        )
    except (OSError, DataNotFoundError):
        return False


def mark_done(output_path: Path, key: str) -> None:
    """Record `key` in the results file a run just wrote under `output_path`."""
    path = newest_results(output_path)
    if path is not None:
        data = read_results(path)
        data[RESUME_KEY] = key
        write_results(path, data)
